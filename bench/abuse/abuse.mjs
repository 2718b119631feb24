// abuse.mjs - the abuse probes of issue 12 against a real aosd, each on a
// fresh process, loopback only, bounded in count and time; see run.sh.
//
//   flood        4,200 TCP connections that send nothing, held HOLD s
//   uploads      30 unauthenticated POST /api/logs declaring 16 MiB, each
//                sending all but the last byte, then stalling for HOLD s
//   uploads-auth the same with the Owner token (the body-memory cap)
//   cardinality  18,000 POST /mcp/call with unknown tool names (32 in
//                flight) to a real upstream (the repo's stdio fixture
//                tests/e2e/fixtures/faulty-server.mjs, its breaker off so
//                that every call reaches it), then 3 scrapes of GET /metrics
//
// During each probe a separate process asks GET /healthz on a fresh
// connection every 100 ms (5 s timeout, counted as 5 s); reported: its
// p50/p99/max and failures, the same over 2 s before the probe, aosd's RSS
// before and its peak (VmHWM), and what the probe saw.
//
// Usage: node abuse.mjs --aosd PATH [--port N] [--hold S] [--probes a,b]
//                       [-- extra aosd args]
//        node abuse.mjs --sample URL   (the sampler; stops when stdin ends)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const TOKEN = 'bench-abuse-owner-token-0123456789';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};

// ---- /healthz sampler (its own process: the probes keep this one busy) ----

function healthzOnce(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host, port });
    let buf = '', finished = false;
    const done = (ok) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ok, ms: ok ? Number(process.hrtime.bigint() - t0) / 1e6 : timeoutMs });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    s.on('data', (d) => { buf += d; if (/^HTTP\/1\.1 200[\s\S]*\r\n\r\n/.test(buf)) done(true); });
    s.on('error', () => done(false));
    s.on('close', () => done(/^HTTP\/1\.1 200/.test(buf)));
  });
}

async function sampler(url) {
  const u = new URL(url);
  const marks = [];
  let stop = false;
  process.stdin.on('data', (d) => { if (String(d).includes('mark')) marks.push(Date.now()); });
  process.stdin.on('end', () => { stop = true; });
  const samples = [];
  while (!stop) {
    const t = Date.now();
    const r = await healthzOnce(u.hostname, Number(u.port), 5000);
    samples.push({ t, ...r });
    const wait = 100 - (Date.now() - t);
    if (wait > 0) await sleep(wait);
  }
  process.stdout.write(JSON.stringify({ samples, marks }) + '\n');
}

// ---- helpers ------------------------------------------------------------------

function pct(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

function summary(samples) {
  const ms = samples.map((x) => x.ms);
  return { n: samples.length, failed: samples.filter((x) => !x.ok).length, p50: pct(ms, 50), p99: pct(ms, 99), max: Math.max(...ms, 0) };
}

function procStatus(pid, key) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${key}:\\s+(\\d+)`));
    return m ? Number(m[1]) : NaN;
  } catch { return NaN; }
}

async function startAosd(bin, port, extra) {
  const dataDir = mkdtempSync(join(tmpdir(), 'aos-bench-abuse-'));
  const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--bootstrap-token', TOKEN,
    '--log-level', 'warn', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err = (err + d).slice(-20000); });
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const t0 = Date.now();
  while (!/ready: /.test(out)) {
    if (proc.exitCode !== null || Date.now() - t0 > 15000) throw new Error(`aosd did not start: ${err}`);
    await sleep(50);
  }
  return {
    proc, url: `http://127.0.0.1:${port}`, logs: () => err,
    async stop() {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
      const r = await exited;
      clearTimeout(t);
      rmSync(dataDir, { recursive: true, force: true });
      return r;
    },
  };
}

function request(agent, port, method, path, body, token = TOKEN) {
  return new Promise((resolve) => {
    const headers = { Host: '127.0.0.1' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = Buffer.byteLength(body); }
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, bytes: n, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
      res.on('error', () => resolve({ status: 0, bytes: n, ms: 0 }));
    });
    req.on('error', () => resolve({ status: 0, bytes: 0, ms: 0 }));
    req.setTimeout(60000, () => req.destroy());
    req.end(body);
  });
}

// ---- the probes ---------------------------------------------------------------

const probes = {
  async flood(aos, port, hold) {
    const N = 4200;
    const socks = [];
    let connected = 0, failed = 0, closedByServer = 0;
    await new Promise((resolve) => {
      let settled = 0;
      const done = () => { if (++settled === N) resolve(); };
      for (let i = 0; i < N; i++) {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        s.once('connect', () => { s.up = true; connected++; done(); });
        s.once('error', () => { if (!s.up) { failed++; done(); } });
        s.on('close', () => { if (s.up && !s.ours) closedByServer++; });
        socks.push(s);
      }
      setTimeout(resolve, 30000); // bounded
    });
    const madeRoom = closedByServer;
    await sleep(hold * 1000);
    const still = socks.filter((s) => !s.destroyed && !s.closed).length;
    for (const s of socks) { s.ours = true; s.destroy(); }
    return `${connected} connected, ${failed} failed, ${madeRoom} closed by aosd to make room by then; ` +
      `after ${hold} s more ${still} still open (${closedByServer} closed by aosd in all)`;
  },

  async uploads(aos, port, hold, token = null) {
    const N = 30, LEN = 16 << 20;
    const body = Buffer.alloc(LEN - 1, 0x20);
    const statuses = {};
    const socks = [];
    for (let i = 0; i < N; i++) {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('close', () => { s.gone = true; });
      let head = '';
      s.on('data', (d) => {
        head += d;
        const m = head.match(/^HTTP\/1\.1 (\d+)/);
        if (m && !s.counted) { s.counted = true; statuses[m[1]] = (statuses[m[1]] || 0) + 1; }
      });
      s.on('connect', () => {
        s.write(`POST /api/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          (token ? `Authorization: Bearer ${token}\r\n` : '') + `Content-Length: ${LEN}\r\n\r\n`);
        s.write(body);
      });
      socks.push(s);
    }
    await sleep(hold * 1000);
    const answered = Object.entries(statuses).map(([k, v]) => `${v}x${k}`).join(' ') || 'none';
    // aosd answers from the head and closes; with body bytes it never read
    // still in flight the close is a reset, which can beat the answer
    const reset = socks.filter((s) => !s.counted && s.gone).length;
    const open = socks.filter((s) => !s.counted && !s.gone).length;
    for (const s of socks) s.destroy();
    return `answers read: ${answered}; ${reset} closed by aosd before their answer could be read; ` +
      `${open} still open, waiting for their last byte, after ${hold} s`;
  },

  async 'uploads-auth'(aos, port, hold) {
    return probes.uploads(aos, port, hold, TOKEN);
  },

  async cardinality(aos, port) {
    const N = 18000, CONC = 32;
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
    const fixture = resolve(dirname(fileURLToPath(import.meta.url)), '../../tests/e2e/fixtures/faulty-server.mjs');
    const reg = await request(agent, port, 'POST', '/mcp/registry', JSON.stringify({
      name: 'probe', transport: 'stdio', command: process.execPath, args: [fixture],
      limits: { retries: 0, breaker_failures: 100000, breaker_error_rate: 0 },
    }));
    if (reg.status !== 201) throw new Error(`registering the upstream: ${reg.status}`);
    for (let t0 = Date.now(); ; await sleep(200)) {
      if (Date.now() - t0 > 30000) throw new Error('the upstream did not become ready in 30 s');
      const r = await new Promise((res) => http.get({ host: '127.0.0.1', port, path: '/mcp/registry/probe', agent,
        headers: { Authorization: `Bearer ${TOKEN}` } }, (x) => { let b = ''; x.on('data', (d) => { b += d; }); x.on('end', () => res(b)); }));
      if (/"state":"ready"/.test(r)) break;
    }
    let next = 0;
    const statuses = {};
    const t0 = Date.now();
    await Promise.all(Array.from({ length: CONC }, async () => {
      while (next < N) {
        const i = next++;
        const r = await request(agent, port, 'POST', '/mcp/call', JSON.stringify({ server: 'probe', tool: `no-such-tool-${i}`, args: {} }));
        statuses[r.status] = (statuses[r.status] || 0) + 1;
      }
    }));
    const callS = (Date.now() - t0) / 1000;
    const scrapes = [];
    for (let i = 0; i < 3; i++) {
      const r = await request(agent, port, 'GET', '/metrics');
      scrapes.push(`${r.status}: ${(r.bytes / 1e6).toFixed(2)} MB in ${r.ms.toFixed(0)} ms`);
    }
    agent.destroy();
    const st = Object.entries(statuses).map(([k, v]) => `${v}x${k}`).join(' ');
    return `${N} calls in ${callS.toFixed(1)} s (${st}); /metrics: ${scrapes.join(', ')}`;
  },
};

// ---- main ---------------------------------------------------------------------

let current = null; // the aosd of the probe running, stopped on a signal
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (current) await current.stop().catch(() => {});
    process.exit(130);
  });
}

async function main() {
  const sampleUrl = opt('--sample');
  if (sampleUrl) {
    for (const sig of ['SIGINT', 'SIGTERM']) process.removeAllListeners(sig);
    return sampler(sampleUrl);
  }
  const bin = opt('--aosd');
  if (!bin) throw new Error('--aosd PATH is required');
  const port = Number(opt('--port', '3501'));
  const hold = Number(opt('--hold', '10'));
  const which = opt('--probes', 'flood,uploads,uploads-auth,cardinality').split(',');
  const dd = args.indexOf('--');
  const extra = dd >= 0 ? args.slice(dd + 1) : [];
  const self = fileURLToPath(import.meta.url);
  const rows = [];
  for (const name of which) {
    if (!probes[name]) throw new Error(`unknown probe ${name}`);
    const aos = await startAosd(bin, port, extra);
    current = aos;
    const pid = aos.proc.pid;
    await sleep(500);
    const rss0 = procStatus(pid, 'VmRSS');
    const smp = spawn(process.execPath, [self, '--sample', aos.url], { stdio: ['pipe', 'pipe', 'inherit'] });
    let sout = '';
    smp.stdout.on('data', (d) => { sout += d; });
    const sdone = new Promise((r) => smp.on('exit', r));
    await sleep(2000); // idle baseline
    smp.stdin.write('mark\n');
    let what;
    try {
      what = await probes[name](aos, port, hold);
    } catch (e) {
      what = `probe failed: ${e.message}`;
    }
    smp.stdin.end();
    await sdone;
    const peak = procStatus(pid, 'VmHWM');
    const { samples, marks } = JSON.parse(sout.trim().split('\n').pop());
    const base = summary(samples.filter((s) => s.t < marks[0]));
    const during = summary(samples.filter((s) => s.t >= marks[0]));
    const alive = aos.proc.exitCode === null;
    const { code, signal } = await aos.stop();
    current = null;
    rows.push({ name, rss0, peak, base, during, what, alive, code, signal });
    const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    console.log(`${name}: /healthz during p50 ${f(during.p50)} ms p99 ${f(during.p99)} ms max ${f(during.max)} ms, ` +
      `${during.failed}/${during.n} failed (idle p99 ${f(base.p99)} ms); RSS ${(rss0 / 1024).toFixed(0)} MB -> peak ` +
      `${(peak / 1024).toFixed(0)} MB; ${what}; aosd ${alive ? `exited ${code ?? signal} on SIGTERM` : 'DIED during the probe'}`);
  }
  return rows;
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
