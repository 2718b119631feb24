// quota.test.mjs - a server's quota count outlives a restart of aosd (same
// data dir): a clean stop keeps the exact count, a crash keeps at least the
// calls that went (at most a block of 1 % of the quota more), a changed
// registry entry keeps the count, and a count of an earlier day is not
// today's. Real aosd processes, stopped with SIGTERM or killed with SIGKILL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { startAosd, waitReady, ROOT, TOKEN } from './lib.mjs';

const FIXTURE = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');
const dirs = [];
const running = new Set();
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir) {
  const a = await startAosd({ dataDir });
  running.add(a);
  return a;
}

// Stops aosd: SIGTERM must end it cleanly (exact count written); SIGKILL is a crash.
async function stop(a, signal = 'SIGTERM') {
  const { code, signal: sig } = await a.stop(signal);
  running.delete(a);
  if (signal === 'SIGTERM') {
    assert.equal(code, 0, a.logs().slice(-2000));
    assert.doesNotMatch(a.logs(), /AddressSanitizer|LeakSanitizer|runtime error/);
  } else {
    assert.equal(sig, 'SIGKILL');
  }
}

function dataDir() {
  const d = mkdtempSync(join(tmpdir(), 'aos-e2e-quota-'));
  dirs.push(d);
  return d;
}

const entry = (name, limits) => ({ name, command: process.execPath, args: [FIXTURE], limits });
const call = (a, server) => a.api('POST', '/mcp/call', { server, tool: 'echo', args: { message: 'x' } });
const used = async (a, name) => (await a.api('GET', `/mcp/registry/${name}`)).body.health.quota_used;

// n calls that must all be let through
async function spend(a, name, n) {
  for (let i = 0; i < n; i++) {
    const r = await call(a, name);
    assert.equal(r.status, 200, r.text);
  }
}

// One MCP tool call on /mcp (the count is the server's, whatever the path).
async function mcpCall(a, tool) {
  const H = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json' };
  const init = await fetch(`${a.url}/mcp`, {
    method: 'POST', headers: H,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'q', version: '1' } } }),
  });
  const sid = init.headers.get('mcp-session-id');
  await init.text();
  const r = await fetch(`${a.url}/mcp`, {
    method: 'POST', headers: { ...H, 'Mcp-Session-Id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: { message: 'm' } } }),
  });
  return r.json();
}

test('a clean restart keeps the day\'s count: what is left of the quota is right', async () => {
  const dir = dataDir();
  let a = await start(dir);
  assert.equal((await a.api('POST', '/mcp/registry', entry('q5', { quota: 5 }))).status, 201);
  await waitReady(a, 'q5');
  await spend(a, 'q5', 2);
  assert.ok((await mcpCall(a, 'q5__echo')).result);
  assert.equal(await used(a, 'q5'), 3);
  await stop(a);

  a = await start(dir);
  await waitReady(a, 'q5');
  assert.equal(await used(a, 'q5'), 3);
  await spend(a, 'q5', 2);
  const r = await call(a, 'q5');
  assert.equal(r.status, 429, r.text);
  assert.match(r.body.error.message, /quota of 5 calls per day used up/);
  const m = await mcpCall(a, 'q5__echo');
  assert.equal(m.error.code, -32029);
  await stop(a);
});

test('after a crash the count is never below the calls that went, at most a block above', async () => {
  const dir = dataDir();
  let a = await start(dir);
  // 5 a day: blocks of 1, every call is stored before it goes;
  // 1,000 a day: blocks of 10
  for (const e of [entry('small', { quota: 5 }), entry('large', { quota: 1000 })])
    assert.equal((await a.api('POST', '/mcp/registry', e)).status, 201);
  await Promise.all([waitReady(a, 'small'), waitReady(a, 'large')]);
  await spend(a, 'small', 3);
  await spend(a, 'large', 3);
  await stop(a, 'SIGKILL');

  a = await start(dir);
  await Promise.all([waitReady(a, 'small'), waitReady(a, 'large')]);
  assert.equal(await used(a, 'small'), 3);
  assert.equal(await used(a, 'large'), 10); // the block reserved before the first call went
  await spend(a, 'small', 2);
  assert.equal((await call(a, 'small')).status, 429);
  // a clean stop writes the exact count again
  await spend(a, 'large', 12); // 22: the block of 11..20 and the next
  await stop(a);
  a = await start(dir);
  await waitReady(a, 'large');
  assert.equal(await used(a, 'large'), 22);
  await stop(a);
});

test('changing the registry entry keeps the count; the new limit applies to it', async () => {
  const dir = dataDir();
  const a = await start(dir);
  assert.equal((await a.api('POST', '/mcp/registry', entry('edit', { quota: 5 }))).status, 201);
  await waitReady(a, 'edit');
  await spend(a, 'edit', 2);
  const put = await a.api('POST', '/mcp/registry', entry('edit', { quota: 3 }));
  assert.equal(put.status, 200, put.text);
  await waitReady(a, 'edit');
  assert.equal(await used(a, 'edit'), 2);
  await spend(a, 'edit', 1);
  assert.equal((await call(a, 'edit')).status, 429);
  await stop(a);
});

test('a count of an earlier day is not today\'s', async () => {
  const dir = dataDir();
  let a = await start(dir);
  assert.equal((await a.api('POST', '/mcp/registry', entry('daily', { quota: 2 }))).status, 201);
  await waitReady(a, 'daily');
  await spend(a, 'daily', 2);
  assert.equal((await call(a, 'daily')).status, 429);
  await stop(a);
  // the stored period as if it were yesterday's (yyyymmdd; any other day will do)
  const db = join(dir, 'aos.db');
  const row = execFileSync('sqlite3', [db, "SELECT period || ' ' || value FROM counters WHERE name = 'quota:daily'"]).toString().trim();
  const [period, value] = row.split(' ').map(Number);
  assert.equal(value, 2);
  const d = new Date();
  assert.equal(period, d.getUTCFullYear() * 10000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate());
  execFileSync('sqlite3', [db, `UPDATE counters SET period = ${period - 1} WHERE name = 'quota:daily'`]);

  a = await start(dir);
  await waitReady(a, 'daily');
  assert.equal(await used(a, 'daily'), 0);
  await spend(a, 'daily', 2);
  assert.equal((await call(a, 'daily')).status, 429);
  await stop(a);
});
