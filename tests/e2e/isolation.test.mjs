// isolation.test.mjs - one bad upstream must not hurt the others: rate
// limits, quotas, the concurrency limit and its queue, the circuit breaker,
// safe retries, health checks, error fingerprints and anomalies, and faults
// of real processes (garbage on stdout, notification floods).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startAosd, backendEntry, waitReady, sleep, ROOT, AOSD } from './lib.mjs';

const FIXTURE = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');
const faulty = (name, limits = {}, extra = {}) =>
  ({ name, command: process.execPath, args: [FIXTURE], limits, ...extra });

let aos;
before(async () => {
  aos = await startAosd();
  assert.equal((await aos.api('POST', '/mcp/registry', backendEntry('everything'))).status, 201);
  await waitReady(aos, 'everything');
});
after(async () => { await aos?.cleanup(); });

const call = (server, tool, args = {}) => aos.api('POST', '/mcp/call', { server, tool, args });
const register = async (entry) => {
  const r = await aos.api('POST', '/mcp/registry', entry);
  assert.ok(r.status === 201 || r.status === 200, r.text);
  await waitReady(aos, entry.name);
  return r.body;
};

test('limits are validated and shown with their defaults', async () => {
  const bad = await aos.api('POST', '/mcp/registry', faulty('x', { rate_per_s: -1 }));
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /rate_per_s/);
  const bad2 = await aos.api('POST', '/mcp/registry', faulty('x', { no_such_limit: 1 }));
  assert.equal(bad2.status, 400);
  const ok = await register(faulty('lim', { max_concurrency: 3 }));
  assert.equal(ok.limits.max_concurrency, 3);
  assert.equal(ok.limits.retries, 2);
  assert.equal(ok.limits.breaker_failures, 5);
});

test('rate limit: 429 with Retry-After on REST, a JSON-RPC error on MCP', async () => {
  await register(faulty('rated', { rate_per_s: 1, burst: 2 }));
  const a = await call('rated', 'echo', { message: '1' });
  const b = await call('rated', 'echo', { message: '2' });
  const c = await call('rated', 'echo', { message: '3' });
  assert.equal(a.status, 200); assert.equal(b.status, 200);
  assert.equal(c.status, 429, c.text);
  assert.equal(c.body.error.code, 'rate_limited');
  assert.ok(Number(c.headers.get('retry-after')) >= 1);
  // the other servers are not limited
  for (let i = 0; i < 10; i++) assert.equal((await call('everything', 'echo', { message: 'x' })).status, 200);
  const m = await aos.api('GET', '/metrics');
  assert.match(m.text, /aos_mcp_rejected_total\{server="rated",reason="rate"\} [1-9]/);
  await sleep(1100);
  assert.equal((await call('rated', 'echo', { message: '4' })).status, 200);
});

test('quota per day: refused once used up, with the time to the reset', async () => {
  await register(faulty('quota', { quota: 2 }));
  assert.equal((await call('quota', 'echo', { message: '1' })).status, 200);
  assert.equal((await call('quota', 'echo', { message: '2' })).status, 200);
  const r = await call('quota', 'echo', { message: '3' });
  assert.equal(r.status, 429);
  assert.match(r.body.error.message, /quota of 2 calls per day/);
  const after = Number(r.headers.get('retry-after'));
  assert.ok(after > 0 && after <= 86400, `retry-after ${after}`);
  const h = (await aos.api('GET', '/mcp/registry/quota')).body.health;
  assert.equal(h.quota_used, 2);
});

test('concurrency limit with a bounded queue', async () => {
  await register(faulty('narrow', { max_concurrency: 1, queue: 1 }));
  const t0 = Date.now();
  const first = call('narrow', 'slow', { ms: 600 });
  await sleep(100);
  const second = call('narrow', 'slow', { ms: 10 });   // waits in the queue
  await sleep(100);
  const third = await call('narrow', 'slow', { ms: 10 }); // queue full
  assert.equal(third.status, 503, third.text);
  assert.match(third.body.error.message, /busy/);
  assert.equal((await first).status, 200);
  const s = await second;
  assert.equal(s.status, 200);
  assert.ok(Date.now() - t0 >= 600, 'the queued call waited for the slot');
});

test('circuit breaker: opens after failures, fails fast, closes after a good probe', async () => {
  await register(faulty('brk', { breaker_failures: 2, breaker_cooldown_ms: 800, retries: 0 }, { timeout_ms: 300 }));
  assert.equal((await call('brk', 'hang')).status, 504);
  assert.equal((await call('brk', 'hang')).status, 504);
  const t0 = Date.now();
  const fast = await call('brk', 'echo', { message: 'x' });
  assert.equal(fast.status, 503, fast.text);
  assert.match(fast.body.error.message, /brk.*circuit breaker open/);
  assert.ok(Date.now() - t0 < 100, 'failed fast');
  assert.ok(Number(fast.headers.get('retry-after')) >= 1);
  assert.equal((await aos.api('GET', '/mcp/registry/brk')).body.health.breaker, 'open');
  assert.equal((await aos.api('GET', '/mcp/registry/brk')).body.health.status, 'down');
  // the neighbour is unaffected meanwhile
  assert.equal((await call('everything', 'echo', { message: 'fine' })).status, 200);
  await sleep(900);
  assert.equal((await aos.api('GET', '/mcp/registry/brk')).body.health.breaker, 'half-open');
  const probe = await call('brk', 'echo', { message: 'probe' });
  assert.equal(probe.status, 200, probe.text);
  assert.equal((await aos.api('GET', '/mcp/registry/brk')).body.health.breaker, 'closed');
  const m = await aos.api('GET', '/metrics');
  assert.match(m.text, /aos_mcp_breaker_state\{server="brk"\} 0/);
});

test('safe retries: an idempotent tool is retried after its server died; others are not', async () => {
  await register(faulty('retry', { retry_base_ms: 50 }));
  const marker = join(mkdtempSync(join(tmpdir(), 'aos-flaky-')), 'marker');
  const r = await call('retry', 'flaky', { marker });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.content[0].text, 'flaky ok');
  assert.match(aos.logs(), /retrying in \d+ ms/);
  // crash is not idempotent: one failure, no retry
  await waitReady(aos, 'retry');
  const c = await call('retry', 'crash');
  assert.equal(c.status, 502);
});

test('failures carry a stable fingerprint; repeats raise one anomaly per window', async () => {
  await register(faulty('fp', { retries: 0, breaker_failures: 100 }, { timeout_ms: 200 }));
  for (let i = 0; i < 4; i++) assert.equal((await call('fp', 'hang')).status, 504);
  const lines = aos.logs().split('\n').filter((l) => l.includes('"server":"fp"') && l.includes('call failed'));
  assert.ok(lines.length >= 4, lines.join('\n'));
  const fps = new Set(lines.map((l) => JSON.parse(l).fingerprint));
  assert.equal(fps.size, 1, 'the same failure has the same fingerprint');
  const fp = [...fps][0];
  assert.match(fp, /^[0-9a-f]{16}$/);
  const anomalies = aos.logs().split('\n').filter((l) => l.includes('"anomaly') && l.includes(fp));
  assert.equal(anomalies.length, 1, 'one anomaly for the window, not one per call');
  // and the Chat Hub's value-event stream carries that anomaly, once
  let cards = [];
  for (let i = 0; i < 50 && cards.length === 0; i++) {
    const h = await aos.api('GET', '/agent/events/history?limit=200');
    assert.equal(h.status, 200, h.text);
    // (the Analyzer's suggestion is the card's next version, topic "analyzer")
    cards = h.body.events.filter((e) => e.type === 'anomaly.detected' && e.payload.fingerprint === fp && e.topic !== 'analyzer');
    if (!cards.length) await sleep(100);
  }
  assert.equal(cards.length, 1, 'one anomaly.detected value event');
  assert.equal(cards[0].payload.server, 'fp');
  assert.equal(cards[0].topic, 'mcp');
});

test('health checks: status, latency and last error in the registry', async () => {
  await register(faulty('hc', { health_interval_ms: 150 }));
  await sleep(500);
  const h = (await aos.api('GET', '/mcp/registry/hc')).body.health;
  assert.equal(h.status, 'healthy');
  assert.equal(typeof h.latency_ms, 'number');
  const list = await aos.api('GET', '/mcp/registry');
  for (const s of list.body.servers) assert.ok(['healthy', 'degraded', 'down'].includes(s.health.status), JSON.stringify(s.health));
});

test('garbage on stdout and notification floods do not break a server or its neighbours', async () => {
  await register(faulty('noisy'));
  const g = await call('noisy', 'garbage');
  assert.equal(g.status, 200, g.text);
  assert.equal(g.body.content[0].text, 'after garbage');
  const flood = call('noisy', 'flood', { n: 20000 });
  const t0 = Date.now();
  for (let i = 0; i < 50; i++) assert.equal((await call('everything', 'echo', { message: `n${i}` })).status, 200);
  const fastDone = Date.now() - t0;
  const f = await flood;
  assert.equal(f.status, 200, f.text);
  assert.equal(f.body.content[0].text, 'flooded 20000');
  assert.ok(fastDone < 3000, `50 calls to the neighbour took ${fastDone} ms during the flood`);
});

test('an HTTP upstream that answers 500 or drops the connection: clear errors, breaker, recovery', async () => {
  const { spawn } = await import('node:child_process');
  const srv = spawn(process.execPath, [join(ROOT, 'tests/e2e/fixtures/https-server.mjs')], {
    env: { ...process.env, TLS_CERT: '', TLS_KEY: '', PORT: '0', FAULTS: '1' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise((res) => srv.stdout.once('data', (d) => res(Number(String(d).trim()))));
    await register({ name: 'web', transport: 'streamable-http', url: `http://127.0.0.1:${port}/mcp`,
      timeout_ms: 2000, limits: { retries: 0, breaker_failures: 2, breaker_cooldown_ms: 500 } });
    assert.equal((await call('web', 'echo', { message: 'ok' })).body.content[0].text, 'Echo: ok');
    const t0 = Date.now();
    const e500 = await call('web', 'http500');
    assert.equal(e500.status, 502, e500.text);
    assert.match(e500.body.error.message, /web.*500/);
    const drop = await call('web', 'drop');
    assert.equal(drop.status, 502, drop.text);
    assert.ok(Date.now() - t0 < 1500, 'errors came fast, not at the timeout');
    // two failures: the breaker is open; the neighbour is unaffected
    const fast = await call('web', 'echo', { message: 'x' });
    assert.equal(fast.status, 503, fast.text);
    assert.equal((await call('everything', 'echo', { message: 'y' })).status, 200);
    await sleep(600);
    let ok;
    for (let i = 0; i < 20 && !(ok && ok.status === 200); i++) {
      ok = await call('web', 'echo', { message: 'back' });
      if (ok.status !== 200) await sleep(200);
    }
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await aos.api('GET', '/mcp/registry/web')).body.health.breaker, 'closed');
  } finally { srv.kill(); }
});

test('calls naming unknown tools make a server list its tools at most once a second', async () => {
  await register(faulty('lister'));
  const count = async () => Number((await call('lister', 'list-calls')).body.content[0].text);
  await sleep(1100); // past the refresh of start-up
  const n0 = await count();
  const t0 = Date.now();
  for (let i = 0; i < 60; i++) assert.equal((await call('lister', `no-such-tool-${i}`)).status, 404);
  const secs = (Date.now() - t0) / 1000;
  const n1 = await count();
  assert.ok(n1 - n0 <= Math.ceil(secs) + 1, `${n1 - n0} tools/list for 60 calls in ${secs} s`);
});

test('an upstream error cannot claim aosd\'s own status or Retry-After', async () => {
  await register(faulty('spoofer'));
  const r = await call('spoofer', 'spoof-error');
  assert.equal(r.status, 502, r.text);
  assert.equal(r.body.error.code, 'upstream_error');
  assert.equal(r.headers.get('retry-after'), null);
});

test('1,000 faulted calls: file descriptors and memory stay flat, no leak at exit', async () => {
  await register(faulty('leak', { retries: 0, breaker_failures: 100000, breaker_error_rate: 0 }, { timeout_ms: 100 }));
  const pid = aos.proc.pid;
  const fds = () => readdirSync(`/proc/${pid}/fd`).length;
  const rss = () => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
  const faults = [
    ['hang', {}, 504],                 // timeout, notifications/cancelled upstream
    ['echo', {}, 200],                 // invalid arguments: a tool error result
    ['no-such-tool', {}, 404],         // unknown tool
    ['garbage', {}, 200],              // junk on the child's stdout
  ];
  const run = async (n) => {
    for (let i = 0; i < n; i += 25) {
      await Promise.all(Array.from({ length: 25 }, (_, j) => {
        const [tool, args, status] = faults[(i + j) % faults.length];
        return call('leak', tool, args).then((r) => assert.equal(r.status, status, `${tool}: ${r.text}`));
      }));
    }
  };
  await run(200); // warm-up: pools and caches reach their size
  const f0 = fds(), r0 = rss();
  await run(1000);
  await sleep(300);
  const r1 = rss();
  // extra connections the client opened during a burst close when idle
  // (undici keeps them 4 s): wait for that, a leak stays
  let f1 = fds();
  for (const t0 = Date.now(); f1 > f0 + 2 && Date.now() - t0 < 8000; f1 = fds()) await sleep(100);
  assert.ok(f1 <= f0 + 2, `file descriptors ${f0} -> ${f1}`);
  // under AddressSanitizer freed memory sits in quarantine: RSS says nothing
  // there, and LeakSanitizer checks the exit below instead
  if (!/asan/.test(AOSD)) assert.ok(r1 - r0 < 8 * 1024, `RSS ${r0} kB -> ${r1} kB`);
  assert.equal((await call('everything', 'echo', { message: 'still fine' })).status, 200);
  const { code } = await aos.stop();
  assert.equal(code, 0, `aosd exit code ${code}: ${aos.logs().slice(-3000)}`);
});
