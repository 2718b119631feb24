// agents.mjs - the agent parts of bench/sandbox (issue 15) against a real
// aosd, loopback only, bounded in rounds and time:
//
//   start-to-ready  POST /agents/:id/start of a 1-replica agent of the
//                   built-in runtime (`aosd agent`) until GET /agents/:id
//                   says running (polled every ms), then stop and wait for
//                   the replica to be gone; ROUNDS times (target p50
//                   <= 100 ms)
//   release         2 replicas, CALLERS clients calling <agent>__run_task
//                   through POST /mcp/call in a loop (keep-alive), a release
//                   of v2 and a rollback to v1 meanwhile: failed calls
//                   (target 0), calls/s, latency, each release's duration
//
// Usage: node agents.mjs --aosd PATH [--rounds N] [--callers N]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';

const TOKEN = 'bench-agents-owner-token-0123456789';
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const AOSD = opt('--aosd');
const ROUNDS = Math.min(Number(opt('--rounds', 30)), 200);
const CALLERS = Math.min(Number(opt('--callers', 8)), 64);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};
const fmt = (x) => x.toFixed(1);

if (!AOSD) {
  console.error('usage: node agents.mjs --aosd PATH [--rounds N] [--callers N]');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
let base;
function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(base + path, {
      method, agent, timeout: 30000,
      headers: { Authorization: `Bearer ${TOKEN}`, ...(data ? { 'Content-Type': 'application/json' } : {}) },
    }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { t += d; });
      res.on('end', () => {
        let j;
        try { j = JSON.parse(t); } catch { j = t; }
        resolve({ status: res.statusCode, body: j });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

async function until(what, fn, ms, every = 1) {
  const end = now() + ms;
  while (now() < end) {
    const v = await fn();
    if (v) return v;
    if (every) await sleep(every);
  }
  throw new Error(`timed out: ${what}`);
}

const dir = mkdtempSync(join(tmpdir(), 'aos-bench-agents-'));
const aosd = spawn(AOSD, ['--listen', '127.0.0.1:0', '--data-dir', dir, '--bootstrap-token', TOKEN,
  '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
let errText = '';
aosd.stderr.on('data', (d) => { errText = (errText + d).slice(-20000); });
const stopAll = () => { try { aosd.kill('SIGTERM'); } catch { /* gone */ } };
process.on('SIGINT', () => { stopAll(); process.exit(130); });

try {
  base = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`aosd did not start: ${errText}`)), 20000);
    aosd.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/ready: (http:\/\/[^/\s]+)\//);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    aosd.on('exit', (c) => reject(new Error(`aosd exited ${c}: ${errText}`)));
  });

  const sop = 'step e: aos__echo message=${inputs.input}';
  let r = await api('POST', '/agents', { name: 'bench', replicas: 1, config: { sop, tools: ['aos__echo'], concurrency: 16 } });
  if (r.status !== 201) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
  r = await api('POST', '/agents/bench/register-mcp');
  if (r.status !== 200) throw new Error(`register-mcp: ${r.status} ${JSON.stringify(r.body)}`);
  const get = async () => (await api('GET', '/agents/bench')).body;

  // ---- start-to-ready -------------------------------------------------------
  const ready = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = now();
    r = await api('POST', '/agents/bench/start');
    if (r.status !== 200) throw new Error(`start: ${r.status} ${JSON.stringify(r.body)}`);
    await until('running', async () => ((await get()).status === 'running'), 10000);
    ready.push(now() - t0);
    await api('POST', '/agents/bench/stop');
    await until('stopped', async () => {
      const a = await get();
      return a.status === 'stopped' && a.live_replicas.length === 0;
    }, 10000, 5);
    await sleep(20);
  }
  console.log(`start-to-ready (1 replica, ${ROUNDS} rounds): p50 ${fmt(pct(ready, 50))} ms, ` +
    `p99 ${fmt(pct(ready, 99))} ms, max ${fmt(Math.max(...ready))} ms (target p50 <= 100 ms)`);

  // ---- a release and a rollback of 2 replicas under load ----------------------------
  await api('POST', '/agents/bench/scale', { replicas: 2 });
  await api('POST', '/agents/bench/start');
  await until('2 running', async () => ((await get()).status === 'running'), 10000, 5);
  let stop = false, calls = 0;
  const failures = [], lat = [];
  const caller = async () => {
    while (!stop) {
      const t0 = now();
      try {
        const x = await api('POST', '/mcp/call', { server: 'bench', tool: 'run_task', args: { input: 'x' } });
        if (x.status !== 200 || x.body.isError) failures.push(`${x.status} ${JSON.stringify(x.body).slice(0, 200)}`);
      } catch (e) { failures.push(String(e)); }
      lat.push(now() - t0);
      calls++;
    }
  };
  const t0 = now();
  const load = [...Array(CALLERS)].map(caller);
  await sleep(1000);
  const rel = [];
  await api('PATCH', '/agents/bench', { config: { sop: 'step e: aos__echo message="v2 ${inputs.input}"' } });
  for (const v of [2, 1]) {
    const s = now();
    r = await api('POST', '/agents/bench/release', { version: v });
    if (r.status !== 200) throw new Error(`release: ${r.status} ${JSON.stringify(r.body)}`);
    await until(`v${v} everywhere`, async () => {
      const a = await get();
      return a.live_replicas.length === 2 && a.live_replicas.every((x) => x.version === v && x.state === 'ready');
    }, 30000, 5);
    rel.push(now() - s);
    await sleep(1000);
  }
  stop = true;
  await Promise.all(load);
  const secs = (now() - t0) / 1000;
  console.log(`release under load (2 replicas, ${CALLERS} callers, v1 -> v2 -> v1): ${calls} calls, ` +
    `${failures.length} failed (target 0), ${fmt(calls / secs)} calls/s, ` +
    `latency p50 ${fmt(pct(lat, 50))} ms p99 ${fmt(pct(lat, 99))} ms max ${fmt(Math.max(...lat))} ms; ` +
    `release ${fmt(rel[0])} ms, rollback ${fmt(rel[1])} ms`);
  for (const f of failures.slice(0, 5)) console.log(`  failed: ${f}`);
  await api('POST', '/agents/bench/stop');
  process.exitCode = failures.length ? 1 : 0;
} catch (e) {
  console.error(String(e));
  process.exitCode = 1;
} finally {
  stopAll();
  await new Promise((r) => (aosd.exitCode !== null ? r() : aosd.on('exit', r)));
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
}
