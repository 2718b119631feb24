// teardown.test.mjs - a client session that used a per-client server ends
// in each of the three ways a session ends (DELETE /mcp, idle expiry,
// SIGTERM), with aosd at --log-level debug, where closing the session's own
// upstream logs which session it belonged to: aosd must keep running (or
// exit 0 on SIGTERM) with no sanitizer report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startAosd, waitReady, sleep, TOKEN, ROOT } from './lib.mjs';

const entry = {
  name: 'pc', command: process.execPath, args: [join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs')],
  session_mode: 'per-client',
};
const H = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json' };

async function rpc(aos, body, sid) {
  const r = await fetch(aos.url + '/mcp', {
    method: 'POST', headers: sid ? { ...H, 'Mcp-Session-Id': sid } : H, body: JSON.stringify(body),
  });
  return { status: r.status, sid: r.headers.get('mcp-session-id'), json: await r.json() };
}

// A session on /mcp whose call started its own upstream of 'pc'; returns
// the session id and that upstream's pid.
async function sessionWithOwnUpstream(aos) {
  const init = await rpc(aos, { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'td', version: '1' } } });
  assert.equal(init.status, 200);
  const r = await rpc(aos, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'pc__pid', arguments: {} } }, init.sid);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const pid = Number(r.json.result.content[0].text);
  const shared = (await aos.api('GET', '/mcp/registry/pc')).body.health.pid;
  assert.notEqual(pid, shared, 'the call went to the session\'s own upstream');
  return { sid: init.sid, pid };
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function gone(pid, ms = 5000) {
  const t0 = Date.now();
  while (alive(pid) && Date.now() - t0 < ms) await sleep(50);
  return !alive(pid);
}

function noSanitizerReport(aos) {
  assert.doesNotMatch(aos.logs(), /runtime error|AddressSanitizer|LeakSanitizer|SEGV/);
}

// After the session ended: its child is gone, aosd still serves, then
// stops cleanly.
async function survived(aos, pid) {
  assert.ok(await gone(pid), `the session's child ${pid} was stopped`);
  assert.equal((await aos.api('GET', '/healthz')).status, 200, 'aosd still serves');
  const { code } = await aos.stop();
  assert.equal(code, 0, aos.logs().slice(-2000));
  noSanitizerReport(aos);
}

async function start(args = []) {
  const aos = await startAosd({ args: ['--log-level', 'debug', ...args] });
  assert.equal((await aos.api('POST', '/mcp/registry', entry)).status, 201);
  await waitReady(aos, 'pc');
  return aos;
}

test('DELETE /mcp of a session with its own upstream, at debug level', async () => {
  const aos = await start();
  try {
    const { sid, pid } = await sessionWithOwnUpstream(aos);
    const del = await fetch(aos.url + '/mcp', { method: 'DELETE', headers: { ...H, 'Mcp-Session-Id': sid } });
    assert.equal(del.status, 200);
    await survived(aos, pid);
  } finally { await aos.cleanup(); }
});

test('idle expiry of a session with its own upstream, at debug level', { timeout: 60000 }, async () => {
  const aos = await start(['--session-idle', '1']);
  try {
    const { sid, pid } = await sessionWithOwnUpstream(aos);
    // the sweep runs every 10 s
    const t0 = Date.now();
    while (!aos.logs().includes(`session ${sid} expired`) && Date.now() - t0 < 25000) await sleep(200);
    assert.ok(aos.logs().includes(`session ${sid} expired`), 'the session expired');
    await survived(aos, pid);
  } finally { await aos.cleanup(); }
});

test('SIGTERM with a session that has its own upstream, at debug level', async () => {
  const aos = await start();
  try {
    const { pid } = await sessionWithOwnUpstream(aos);
    const { code, signal } = await aos.stop('SIGTERM');
    assert.equal(signal, null, aos.logs().slice(-2000));
    assert.equal(code, 0, aos.logs().slice(-2000));
    assert.ok(await gone(pid), `the session's child ${pid} was stopped`);
    noSanitizerReport(aos);
  } finally { await aos.cleanup(); }
});
