// audit.test.mjs - the audit log: GET /audit/logs's filters and cursor, and
// GET /audit/verify finding rows edited, deleted or re-hashed with the
// sqlite3 shell, with aosd stopped and while it runs (WAL).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startAosd, assertErrorShape } from './lib.mjs';

let aos;
before(async () => { aos = await startAosd(); });
after(async () => { await aos?.cleanup(); });

const sql = (q) => execFileSync('sqlite3', ['-cmd', '.timeout 5000', join(aos.dataDir, 'aos.db'), q]).toString().trim();

async function makeToken(name, role = 'viewer') {
  const r = await aos.api('POST', '/auth/tokens', { name, role });
  assert.equal(r.status, 201, r.text);
  return r.body;
}

test('state changes are audited, and /audit/logs filters them', async () => {
  const made = [];
  for (let i = 0; i < 5; i++) made.push(await makeToken(`audit-${i}`));
  assert.equal((await aos.api('DELETE', `/auth/tokens/${made[0].id}`)).status, 200);
  const g = await aos.api('POST', '/rbac/grants', { principal: `token:${made[1].id}`, role: 'viewer', resource: 'task:t1' });
  assert.equal(g.status, 201, g.text);

  const all = await aos.api('GET', '/audit/logs?limit=500');
  assert.equal(all.status, 200, all.text);
  for (const it of all.body.items) {
    assert.match(it.hash, /^[0-9a-f]{64}$/);
    assert.match(it.prev_hash, /^[0-9a-f]{64}$/);
  }
  assert.equal(all.body.next_cursor, null);
  // newest first, each linked to the one before it
  for (let i = 0; i + 1 < all.body.items.length; i++) assert.equal(all.body.items[i].prev_hash, all.body.items[i + 1].hash);

  const creates = await aos.api('GET', '/audit/logs?action=auth.token.create');
  assert.equal(creates.body.items.length, 5, creates.text);
  const auth = await aos.api('GET', '/audit/logs?action=auth.*');
  assert.ok(auth.body.items.some((i) => i.action === 'auth.token.revoke'));
  assert.ok(auth.body.items.some((i) => i.action === 'auth.bootstrap'));
  assert.ok(auth.body.items.every((i) => i.action.startsWith('auth.')));
  const byActor = await aos.api('GET', '/audit/logs?actor=token:owner&resource=rbac_grants/');
  assert.equal(byActor.body.items.length, 1, byActor.text);
  assert.equal(byActor.body.items[0].action, 'rbac.grant.create');
  assert.equal((await aos.api('GET', '/audit/logs?actor=token:nobody')).body.items.length, 0);

  // the cursor walks every row once, newest first
  const seen = [];
  let cursor = '';
  for (let n = 0; n < 20; n++) {
    const p = await aos.api('GET', `/audit/logs?limit=2${cursor ? '&cursor=' + cursor : ''}`);
    assert.equal(p.status, 200, p.text);
    seen.push(...p.body.items.map((i) => i.id));
    if (!p.body.next_cursor) break;
    cursor = p.body.next_cursor;
  }
  assert.deepEqual(seen, all.body.items.map((i) => i.id));

  // the time range: [from, to), dates or times with a zone
  const ts = all.body.items[0].created_at;
  const inRange = await aos.api('GET', `/audit/logs?from=${encodeURIComponent(ts)}`);
  assert.ok(inRange.body.items.length >= 1 && inRange.body.items.every((i) => i.created_at >= ts));
  assert.equal((await aos.api('GET', '/audit/logs?to=2000-01-01')).body.items.length, 0);
  assert.equal((await aos.api('GET', '/audit/logs?from=2000-01-01&to=2999-12-31T00:00:00%2B08:00')).body.items.length, all.body.items.length);
});

test('bad filters get 400 naming the field', async () => {
  const bad = [
    ['limit=0', 'limit'], ['limit=abc', 'limit'], ['cursor=-3', 'cursor'], ['cursor=x1', 'cursor'],
    ['before=0', 'before'], ['from=yesterday', 'from'], ['to=2025-13-01', 'to'],
    ['from=2025-02-30', 'from'], ['from=2025-01-01T10:00:00', 'from'],
    ['from=2025-01-02&to=2025-01-01', 'to'], ['actor=', 'actor'], ['action=%01x', 'action'],
    ['resource=' + 'r'.repeat(300), 'resource'],
  ];
  for (const [q, field] of bad) {
    const r = await aos.api('GET', `/audit/logs?${q}`);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.ok(r.body.error.message.includes(`'${field}'`), `${q}: ${r.text}`);
  }
  for (const q of ['from=0', 'from=x', 'to=-1', 'from=5&to=2']) assertErrorShape(assert, await aos.api('GET', `/audit/verify?${q}`), 400, 'invalid_argument');
});

test('/audit/verify says ok with the count, and checks a range', async () => {
  const r = await aos.api('GET', '/audit/verify');
  assert.equal(r.status, 200, r.text);
  const n = Number(sql('SELECT COUNT(*) FROM audit_logs'));
  assert.equal(r.body.ok, true, r.text);
  assert.equal(r.body.checked, n);
  assert.equal(r.body.head.id, n);
  assert.equal(r.body.head.hash, sql(`SELECT hash FROM audit_logs WHERE id = ${n}`));
  const part = await aos.api('GET', '/audit/verify?from=2&to=4');
  assert.equal(part.body.ok, true, part.text);
  assert.equal(part.body.checked, 3);
});

test('a row edited with sqlite3 while aosd runs is named', async () => {
  const before = sql("SELECT actor FROM audit_logs WHERE id = 3");
  sql("UPDATE audit_logs SET actor = 'mallory' WHERE id = 3");
  const r = await aos.api('GET', '/audit/verify');
  assert.equal(r.body.ok, false, r.text);
  assert.equal(r.body.broken.id, 3, r.text);
  assert.equal(r.body.checked, 2);
  assert.match(r.body.broken.reason, /row 3: its fields do not give its hash/);
  assert.match(aos.logs(), /the audit chain is broken: row 3/);
  sql(`UPDATE audit_logs SET actor = '${before}' WHERE id = 3`);
  assert.equal((await aos.api('GET', '/audit/verify')).body.ok, true);
});

test('a row edited with aosd stopped is named after a restart', async () => {
  await aos.stop();
  sql(`UPDATE audit_logs SET diff = '{"name":"forged"}' WHERE id = 4`);
  aos = await startAosd({ dataDir: aos.dataDir });
  const r = await aos.api('GET', '/audit/verify');
  assert.equal(r.body.ok, false, r.text);
  assert.equal(r.body.broken.id, 4, r.text);
});

test('a row deleted in the middle is found at the row after it', async () => {
  sql('DELETE FROM audit_logs WHERE id = 6');
  const r = await aos.api('GET', '/audit/verify?from=5');
  assert.equal(r.body.ok, false, r.text);
  assert.equal(r.body.broken.id, 7, r.text);
  assert.match(r.body.broken.reason, /rows 6 to 6 are missing/);
});

test('a changed hash is named', async () => {
  const n = Number(sql('SELECT MAX(id) FROM audit_logs'));
  sql(`UPDATE audit_logs SET hash = '${'ab'.repeat(32)}' WHERE id = ${n}`);
  const r = await aos.api('GET', `/audit/verify?from=${n}`);
  assert.equal(r.body.ok, false, r.text);
  assert.equal(r.body.broken.id, n, r.text);
});

test('new rows keep chaining after the tampering, and no route edits or deletes rows', async () => {
  for (const m of ['DELETE', 'PUT', 'PATCH', 'POST']) {
    const r = await aos.api(m, '/audit/logs');
    assert.ok([404, 405].includes(r.status), `${m} /audit/logs: ${r.status}`);
  }
  // the next row follows the head, which kept the hash the last row had
  // before it was forged
  const n = Number(sql('SELECT MAX(id) FROM audit_logs'));
  const head = sql('SELECT last_hash FROM audit_head');
  assert.notEqual(head, sql(`SELECT hash FROM audit_logs WHERE id = ${n}`));
  await makeToken('after-tamper');
  assert.equal(sql(`SELECT prev_hash FROM audit_logs WHERE id = ${n + 1}`), head);
});

test('task submit, approval and cancel are audited in their transactions', async () => {
  const gate = { steps: [{ id: 'gate', approval: { message: 'go?', timeout_s: 600 } }] };
  const a = await aos.api('POST', '/api/run', { goal: 'audited approve', plan: gate });
  assert.equal(a.status, 201, a.text);
  const b = await aos.api('POST', '/api/run', { goal: 'audited cancel', plan: gate });
  assert.equal(b.status, 201, b.text);
  const waiting = async (job) => {
    for (let i = 0; i < 200; i++) {
      const j = await aos.api('GET', '/api/jobs?status=waiting');
      if (j.body.jobs.some((x) => x.id === job)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`job ${job} never waited`);
  };
  await waiting(a.body.job_id);
  await waiting(b.body.job_id);
  const ok = await aos.api('POST', '/agent/approve', { trace_id: a.body.trace_id, step_id: 'gate', decision: 'approve', comment: 'fine' });
  assert.equal(ok.status, 200, ok.text);
  const c = await aos.api('POST', `/api/jobs/${b.body.job_id}/cancel`);
  assert.equal(c.status, 200, c.text);
  const rows = (await aos.api('GET', '/audit/logs?action=task.*')).body.items;
  const of = (trace) => rows.filter((r) => r.resource === `tasks/${trace}`).map((r) => r.action).sort();
  assert.deepEqual(of(a.body.trace_id), ['task.decide', 'task.submit']);
  assert.deepEqual(of(b.body.trace_id), ['task.cancel', 'task.submit']);
  const decide = rows.find((r) => r.action === 'task.decide');
  assert.equal(decide.actor, 'token:owner');
  assert.deepEqual(decide.diff, { step: 'gate', decision: 'approve', comment: 'fine' });
  assert.equal((await aos.api('GET', `/audit/verify?from=${rows.at(-1).id}`)).body.ok, true);
});

test('--audit-retention-days: the setting is shown, aosd starts its sweep and stops cleanly', async () => {
  const a = await startAosd({ args: ['--audit-retention-days', '400'] });
  try {
    const r = await a.api('GET', '/config/system');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.settings['audit.retention_days'], 400);
    assert.equal(r.body.sources['audit.retention_days'], 'flag');
    // nothing is 400 days old: the chain is whole
    assert.equal((await a.api('GET', '/audit/verify')).body.ok, true);
  } finally {
    const { code } = await a.stop();
    assert.equal(code, 0, a.logs().slice(-2000));
    assert.doesNotMatch(a.logs(), /AddressSanitizer|LeakSanitizer|runtime error/);
    await a.cleanup();
  }
});
