// lib.mjs - shared helpers of the end-to-end tests: start a real aosd on a
// free loopback port with a temporary data dir, talk REST to it, and find
// the test tooling (tests/tools: reference MCP servers and clients).
import { spawn } from 'node:child_process';
import http from 'node:http';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const AOSD = process.env.AOSD_BIN || join(ROOT, 'build/aosd');
export const TOOLS = join(ROOT, 'tests/tools');
export const TOKEN = 'e2e-owner-token-0123456789abcdef';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CRASH_SIGNALS = ['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT'];

// Starts aosd; resolves when it printed its URL. opts.dataDir reuses a dir.
export async function startAosd(opts = {}) {
  const dataDir = opts.dataDir || mkdtempSync(join(tmpdir(), 'aos-e2e-'));
  const args = ['--listen', opts.listen || '127.0.0.1:0', '--data-dir', dataDir,
    '--bootstrap-token', TOKEN, ...(opts.args || [])];
  const proc = spawn(opts.bin || AOSD, args, {
    env: { ...process.env, ...(opts.env || {}) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  let sent = null; // the signal stop() sent, if any
  const url = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`aosd did not start:\n${err}`)), 15000);
    const check = () => {
      const m = out.match(/ready: (https?:\/\/[^/\s]+)\//);
      if (m) { clearTimeout(t); res(m[1]); }
    };
    proc.stdout.on('data', check);
    exited.then(({ code }) => { clearTimeout(t); rej(new Error(`aosd exited ${code}:\n${err}`)); });
    check();
  });
  const aos = {
    url, dataDir, proc, exited,
    stdout: () => out, logs: () => err,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) { sent = signal; proc.kill(signal); }
      return exited;
    },
    // Stops aosd; fails if it crashed (a signal such as SIGSEGV that no one
    // sent it), which a test that passed may not have noticed.
    async cleanup() {
      const { signal } = await aos.stop();
      if (!opts.dataDir && !opts.keep) rmSync(dataDir, { recursive: true, force: true });
      if (CRASH_SIGNALS.includes(signal) && signal !== sent) throw new Error(`aosd died of ${signal}:\n${err.slice(-4000)}`);
    },
    // REST call with the owner token; returns { status, headers, body(json|text) }
    async api(method, path, body, token = TOKEN, extraHeaders = {}) {
      const headers = { ...extraHeaders };
      if (token) headers.Authorization = `Bearer ${token}`;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const r = await fetch(url + path, {
        method, headers, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
      });
      const text = await r.text();
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      return { status: r.status, headers: r.headers, body: json ?? text, text };
    },
  };
  return aos;
}

// A registry entry for a reference server over stdio (tests/tools/mcp-server.sh
// everything|fixture).
export function backendEntry(name, which = 'everything', extra = {}) {
  return { name, transport: 'stdio', command: join(TOOLS, 'mcp-server.sh'), args: [which], ...extra };
}

// Starts fixtures/report-server.mjs (an MCP server over HTTP whose tool
// "report" answers with the request's headers and its environment) on a
// free loopback port: resolves to the child, with .port set.
export async function startReportServer() {
  const child = spawn(process.execPath, [join(ROOT, 'tests/e2e/fixtures/report-server.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.port = await new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; const m = out.match(/^(\d+)\n/); if (m) res(Number(m[1])); });
    child.on('exit', (code) => rej(new Error(`report-server exited ${code}`)));
  });
  return child;
}

// Polls GET /mcp/registry/:name until its state is ready and its tools are listed.
export async function waitReady(aos, name, timeoutMs = 60000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeoutMs) {
    last = await aos.api('GET', `/mcp/registry/${name}`);
    const h = last.body?.health;
    if (h?.state === 'ready' && (h.tools === undefined || h.tools > 0)) return last.body;
    await sleep(100);
  }
  throw new Error(`server ${name} not ready: ${JSON.stringify(last?.body)}`);
}

export function assertErrorShape(assert, r, status, code) {
  assert.equal(r.status, status, `status ${r.status}: ${r.text}`);
  assert.equal(typeof r.body?.error?.message, 'string', r.text);
  if (code) assert.equal(r.body.error.code, code, r.text);
}

// An SSE client on node:http (it can stop reading, like a stalled
// browser tab). events: [{id, ...envelope, at}] for unnamed events; named:
// [{event, data}] (e.g. overflow); comments: count of ':' lines. With
// paused: true nothing is read from the socket until resume().
export function sseClient(target, path, { headers = {}, token = TOKEN, paused = false } = {}) {
  const s = { events: [], named: [], comments: 0, status: 0, ended: false, buf: '' };
  let waiters = [];
  const notify = () => { waiters = waiters.filter((w) => !w()); };
  const onData = (chunk) => {
    s.buf += chunk;
    let i, at = 0;
    while ((i = s.buf.indexOf('\n\n', at)) >= 0) {
      const block = s.buf.slice(at, i);
      at = i + 2;
      let id, event, data;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) { s.comments++; continue; }
        const c = line.indexOf(':');
        const k = c < 0 ? line : line.slice(0, c);
        const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (k === 'id') id = v; else if (k === 'event') event = v; else if (k === 'data') data = v;
      }
      if (data === undefined) continue;
      if (event) s.named.push({ event, data: JSON.parse(data) });
      else {
        const ev = JSON.parse(data);
        assert.equal(String(ev.id), id, 'the SSE id is the event id');
        s.events.push({ ...ev, at: Date.now() });
      }
    }
    s.buf = s.buf.slice(at);
    notify();
  };
  s.opened = new Promise((resolve, reject) => {
    s.req = http.get(target.url + path, {
      agent: false,
      headers: { Accept: 'text/event-stream', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    }, (res) => {
      s.res = res;
      s.status = res.statusCode;
      res.setEncoding('utf8');
      res.on('end', () => { s.ended = true; notify(); });
      res.on('error', () => { s.ended = true; notify(); });
      if (!paused) res.on('data', onData);
      else res.pause();
      resolve(s);
    });
    s.req.on('error', (e) => { s.ended = true; notify(); reject(e); });
  });
  s.resume = () => { s.res.on('data', onData); s.res.resume(); };
  s.close = () => { s.req.destroy(); };
  s.ids = () => s.events.map((e) => e.id);
  s.waitFor = (pred, ms = 10000, what = 'condition') => new Promise((resolve, reject) => {
    const check = () => { if (pred(s)) { resolve(s); return true; } return false; };
    if (check()) return;
    const t = setTimeout(() => {
      waiters = waiters.filter((w) => w !== w2);
      reject(new Error(`timed out waiting for ${what}: ${s.events.length} events, ended=${s.ended}`));
    }, ms);
    const w2 = () => { if (check()) { clearTimeout(t); return true; } return false; };
    waiters.push(w2);
  });
  return s;
}

export { existsSync };
