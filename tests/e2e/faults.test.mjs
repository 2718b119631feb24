// faults.test.mjs - an upstream that dies mid-call or hangs: the caller gets
// a clear error within its timeout, the child is restarted, other servers
// keep working, and aosd shuts down cleanly with its children.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startAosd, backendEntry, waitReady, sleep, ROOT } from './lib.mjs';

const faulty = { name: 'faulty', command: process.execPath, args: [join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs')], timeout_ms: 1500 };
let aos;
before(async () => {
  aos = await startAosd();
  assert.equal((await aos.api('POST', '/mcp/registry', faulty)).status, 201);
  assert.equal((await aos.api('POST', '/mcp/registry', backendEntry('everything'))).status, 201);
  await waitReady(aos, 'faulty');
  await waitReady(aos, 'everything');
});
after(async () => { await aos?.cleanup(); });

const call = (server, tool, args = {}) => aos.api('POST', '/mcp/call', { server, tool, args });

test('an upstream that dies mid-call: clear error, restarted, others unaffected', async () => {
  const pid1 = (await aos.api('GET', '/mcp/registry/faulty')).body.health.pid;
  const t0 = Date.now();
  const [crash, other] = await Promise.all([call('faulty', 'crash'), call('everything', 'echo', { message: 'ok' })]);
  assert.equal(crash.status, 502, crash.text);
  assert.equal(crash.body.error.code, 'upstream_error');
  assert.match(crash.body.error.message, /faulty/);
  assert.ok(Date.now() - t0 < 1500, 'the error came fast, not at the timeout');
  assert.equal(other.status, 200);
  const h = await waitReady(aos, 'faulty', 30000);
  assert.notEqual(h.health.pid, pid1, 'a new child was started');
  const again = await call('faulty', 'echo', { message: 'back' });
  assert.equal(again.body.content[0].text, 'Echo: back');
});

test('a hanging upstream: timeout error at timeout_ms, the server stays usable', async () => {
  const t0 = Date.now();
  const r = await call('faulty', 'hang');
  const dt = Date.now() - t0;
  assert.equal(r.status, 504, r.text);
  assert.equal(r.body.error.code, 'timeout');
  assert.ok(dt >= 1400 && dt < 4000, `timed out after ${dt} ms`);
  const ok = await call('faulty', 'echo', { message: 'still here' });
  assert.equal(ok.body.content[0].text, 'Echo: still here');
});

test('slow calls do not block other calls', async () => {
  const slow = call('faulty', 'slow', { ms: 800 });
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) {
    const r = await call('everything', 'echo', { message: `n${i}` });
    assert.equal(r.body.content[0].text, `Echo: n${i}`);
  }
  assert.ok(Date.now() - t0 < 800, 'fast calls finished while the slow one ran');
  assert.equal((await slow).body.content[0].text, 'slow done');
});

test('SIGTERM: clean exit, children stopped', async () => {
  const pids = [];
  for (const n of ['faulty', 'everything']) pids.push((await aos.api('GET', `/mcp/registry/${n}`)).body.health.pid);
  const { code } = await aos.stop('SIGTERM');
  assert.equal(code, 0);
  await sleep(300);
  for (const pid of pids) {
    let alive = true;
    try { process.kill(pid, 0); } catch { alive = false; }
    assert.equal(alive, false, `child ${pid} still alive`);
  }
});
