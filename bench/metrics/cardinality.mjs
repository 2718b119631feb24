// bench/metrics/cardinality.mjs - the metric-cardinality probe of issue 12,
// item 4, bounded: a fresh aosd (build/aosd) with server-everything over
// stdio gets N tool calls (default 18,000) that each name a tool nobody
// registered, through POST /mcp/call, C at a time (default 16). Meanwhile
// /healthz is asked every 50 ms; afterwards /metrics is read once.
//
// Prints one line: calls/s of the probe, /healthz p50/p99/max during it,
// aosd's peak RSS, and the size, series count and read time of /metrics.
// Before the fix this probe made /metrics 315 MB, 4.7 s per scrape, RSS
// 721 MB. Loopback only; aosd and its child are stopped on exit.
//
// Env: BENCH_N (18000), BENCH_CONC (16), BENCH_BUILD (<repo>/build). The
// server is started by the repository's tests/tools/mcp-server.sh, or,
// where that is missing, by $AOS_SHARED/tools/mcp/stdio-backend.sh.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const N = Number(process.env.BENCH_N || 18000);
const CONC = Number(process.env.BENCH_CONC || 16);
const AOSD = join(process.env.BENCH_BUILD || join(ROOT, 'build'), 'aosd');
const OWN = join(ROOT, 'tests/tools/mcp-server.sh');
const SERVER = existsSync(OWN) ? OWN
  : join(process.env.AOS_SHARED || resolve(ROOT, '../shared'), 'tools/mcp/stdio-backend.sh');
const TOKEN = 'bench-owner-token-0123456789abcdef';
const H = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };

const dir = mkdtempSync(join(tmpdir(), 'aos-card-'));
const aosd = spawn(AOSD, ['--listen', '127.0.0.1:0', '--data-dir', dir, '--bootstrap-token', TOKEN,
  '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'ignore'] });
const stop = () => { try { aosd.kill('SIGTERM'); } catch { /* gone */ } rmSync(dir, { recursive: true, force: true }); };
process.on('exit', stop);
process.on('SIGINT', () => process.exit(130));

const url = await new Promise((res, rej) => {
  let out = '';
  const t = setTimeout(() => rej(new Error('aosd did not start')), 15000);
  aosd.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/ready: (https?:\/\/[^/\s]+)\//);
    if (m) { clearTimeout(t); res(m[1]); }
  });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rss = () => Number(readFileSync(`/proc/${aosd.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

await fetch(`${url}/mcp/registry`, { method: 'POST', headers: H, body: JSON.stringify({
  name: 'everything', transport: 'stdio', command: SERVER, args: ['everything'] }) });
for (let i = 0; i < 600; i++) {
  const h = await (await fetch(`${url}/mcp/registry/everything`, { headers: H })).json();
  if (h.health?.state === 'ready' && h.health.tools > 0) break;
  await sleep(100);
}

let done = false, peak = rss();
const health = [];
const watch = (async () => {
  while (!done) {
    const t0 = performance.now();
    await (await fetch(`${url}/healthz`)).text();
    health.push(performance.now() - t0);
    peak = Math.max(peak, rss());
    await sleep(50);
  }
})();
const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: CONC }, async () => {
  while (next < N) {
    const i = next++;
    const r = await fetch(`${url}/mcp/call`, { method: 'POST', headers: H,
      body: JSON.stringify({ server: 'everything', tool: `probe-${i}-${'x'.repeat(24)}` }) });
    await r.text();
  }
}));
const secs = (performance.now() - t0) / 1000;
done = true;
await watch;
const s0 = performance.now();
const text = await (await fetch(`${url}/metrics`, { headers: H })).text();
const scrape = performance.now() - s0;
peak = Math.max(peak, rss());
const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
health.sort((a, b) => a - b);
const q = (p) => health[Math.min(health.length - 1, Math.floor(p * health.length))].toFixed(1);
console.log(`cardinality: ${N} unknown tool names at ${(N / secs).toFixed(0)} calls/s; /healthz p50 ${q(0.5)} ms, ` +
  `p99 ${q(0.99)} ms, max ${q(1 - 1e-9)} ms (${health.length} probes); RSS peak ${(peak / 1024).toFixed(0)} MB; ` +
  `/metrics ${text.length} bytes, ${series} samples, read in ${scrape.toFixed(1)} ms; ` +
  `names in it: ${text.includes('probe-') ? 'YES' : 'none'}`);
process.exit(0);
