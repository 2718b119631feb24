// redact.test.mjs - redaction (src/redact) reaching what aosd stores and
// sends: log entries, value events, audit diffs and error messages, with the
// stored secrets' values (the Owner token, a registry header unsealed at
// load) and the built-in patterns; --redact-patterns turns e-mail and phone
// numbers on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAosd, backendEntry, waitReady, TOKEN } from './lib.mjs';

const HEADER = 'hdr-value-7f3a9c2e51d04b88';
const AKIA = 'AKIAABCDEFGHIJKLMNOP';
const CNID = '11010519491231002X';
const MAIL = 'zhang.san@example.com';
const PHONE = '13812345678';
const SKEY = 'sk-abcdefghijklmnop0123456789';
let aos, withPii;
before(async () => {
  aos = await startAosd();
  withPii = await startAosd({ args: ['--redact-patterns', '+email,+phone'] });
});
after(async () => { await aos?.cleanup(); await withPii?.cleanup(); });

const leaks = (text, values) => values.filter((v) => text.includes(v));

test('log entries: stored values and patterns are redacted before they are stored', async () => {
  const msg = `token ${TOKEN} key ${AKIA} id ${CNID} mail ${MAIL} tel ${PHONE} \u4efb\u52a1`;
  const r = await aos.api('POST', '/api/logs', { entries: [{ message: msg, topic: 'redact-e2e', attributes: { note: `again ${CNID}`, password: 'p4ss-w0rd' } }] });
  assert.equal(r.status, 201, r.text);
  const q = await aos.api('GET', '/api/logs?topic=redact-e2e');
  assert.equal(q.status, 200, q.text);
  const e = q.body.items[0];
  assert.equal(e.message, `token [REDACTED] key [REDACTED] id [REDACTED] mail ${MAIL} tel ${PHONE} \u4efb\u52a1`);
  assert.deepEqual(e.attributes, { note: 'again [REDACTED]', password: '[REDACTED]' });
});

test('value events: the payload is redacted before it is stored and sent', async () => {
  const tr = `redact-${process.pid}`;
  const r = await aos.api('POST', '/api/events', { type: 'task.acceptance', trace_id: tr, payload: { goal: `use ${TOKEN}`, nested: [{ key: AKIA }], plain: 'ok' } });
  assert.equal(r.status, 201, r.text);
  const h = await aos.api('GET', `/agent/events/history?trace_id=${tr}`);
  assert.equal(h.status, 200, h.text);
  assert.deepEqual(h.body.events[0].payload, { goal: 'use [REDACTED]', nested: [{ key: '[REDACTED]' }], plain: 'ok' });
});

test('error messages quote what they refused, redacted', async () => {
  for (const name of [TOKEN, AKIA, `x-${CNID}`]) {
    const r = await aos.api('GET', `/mcp/registry/${encodeURIComponent(name)}`);
    assert.equal(r.status, 404, r.text);
    assert.deepEqual(leaks(r.text, [TOKEN, AKIA, CNID]), [], r.text);
    assert.match(r.body.error.message, /\[REDACTED\]/);
  }
});

test('a registry header value unsealed at load is redacted from then on', async () => {
  const e = backendEntry('redhdr', 'everything', { env: { SOME_KEY: HEADER } });
  const r = await aos.api('POST', '/mcp/registry', e);
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'redhdr');
  const p = await aos.api('POST', '/api/logs', { entries: [{ message: `env was ${HEADER}!`, topic: 'redact-hdr' }] });
  assert.equal(p.status, 201, p.text);
  const q = await aos.api('GET', '/api/logs?topic=redact-hdr');
  assert.equal(q.body.items[0].message, 'env was [REDACTED]!');
});

test('a registry entry\'s values are forgotten once it is replaced or deleted', async () => {
  const [V1, V2] = ['reg-old-value-93b1c7e4a0d2', 'reg-new-value-5e8f2a61c4b7'];
  let n = 0;
  const logged = async (v) => {
    const topic = `reg-forget-${n++}`;
    const p = await aos.api('POST', '/api/logs', { entries: [{ message: `saw ${v}.`, topic }] });
    assert.equal(p.status, 201, p.text);
    return (await aos.api('GET', `/api/logs?topic=${topic}`)).body.items[0].message;
  };
  // the old server stops after its replacement is in: poll for the change
  const settles = async (v, want) => {
    let got;
    for (let i = 0; i < 50 && (got = await logged(v)) !== want; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(got, want, v);
  };
  let r = await aos.api('POST', '/mcp/registry', backendEntry('regforget', 'everything', { env: { K: V1 } }));
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'regforget');
  assert.equal(await logged(V1), 'saw [REDACTED].');
  // restarts and reloads must not count the value again
  for (let i = 0; i < 2; i++) {
    r = await aos.api('POST', '/mcp/registry', backendEntry('regforget', 'everything', { env: { K: V1 } }));
    assert.ok(r.status === 200 || r.status === 201, r.text);
    await waitReady(aos, 'regforget');
  }
  r = await aos.api('POST', '/mcp/registry', backendEntry('regforget', 'everything', { env: { K: V2 } }));
  assert.ok(r.status === 200 || r.status === 201, r.text);
  await waitReady(aos, 'regforget');
  assert.equal(await logged(V2), 'saw [REDACTED].');
  await settles(V1, `saw ${V1}.`);
  r = await aos.api('DELETE', '/mcp/registry/regforget');
  assert.ok(r.status === 200 || r.status === 204, r.text);
  await settles(V2, `saw ${V2}.`);
});

test('audit diffs are redacted before they are hashed and stored', async () => {
  // (the token's own row keeps the name it was given: that is its data)
  const r = await aos.api('POST', '/auth/tokens', { name: `ci ${SKEY}`, role: 'viewer' });
  assert.equal(r.status, 201, r.text);
  const a = await aos.api('GET', '/audit/logs?action=auth.token.create');
  assert.equal(a.body.items[0].diff.name, 'ci [REDACTED]');
  assert.equal((await aos.api('GET', '/audit/verify')).body.ok, true);
});

test('--redact-patterns +email,+phone redacts addresses and numbers too', async () => {
  const r = await withPii.api('POST', '/api/logs', { entries: [{ message: `mail ${MAIL} tel ${PHONE} and +86 138 1234 5678.`, topic: 'pii' }] });
  assert.equal(r.status, 201, r.text);
  const q = await withPii.api('GET', '/api/logs?topic=pii');
  assert.equal(q.body.items[0].message, 'mail [REDACTED] tel [REDACTED] and [REDACTED].');
});

test('a runtime secret is redacted once set and after a restart, and forgotten once deleted', async () => {
  const VALUE = 'rt-secret-4c1d8e07b2a9f356';
  const one = await startAosd();
  const logged = async (a, topic) => {
    const p = await a.api('POST', '/api/logs', { entries: [{ message: `saw ${VALUE}.`, topic }] });
    assert.equal(p.status, 201, p.text);
    const q = await a.api('GET', `/api/logs?topic=${topic}`);
    return q.body.items[0].message;
  };
  let two;
  try {
    const put = await one.api('PUT', '/config/runtime/RT_REDACT', { value: VALUE, purpose: 'e2e' });
    assert.ok(put.status === 200 || put.status === 201, put.text);
    assert.equal(await logged(one, 'rt-set'), 'saw [REDACTED].');
    await one.stop();
    two = await startAosd({ dataDir: one.dataDir });
    assert.equal(await logged(two, 'rt-restart'), 'saw [REDACTED].');
    const del = await two.api('DELETE', '/config/runtime/RT_REDACT');
    assert.equal(del.status, 200, del.text);
    // no longer a secret aosd holds: the redactor let it go
    assert.equal(await logged(two, 'rt-deleted'), `saw ${VALUE}.`);
  } finally {
    await two?.cleanup();
    await one.cleanup();
  }
});

test('nothing stored holds the values', async () => {
  await aos.stop();
  const files = ['aos.db', 'aos.db-wal'].map((f) => { try { return readFileSync(join(aos.dataDir, f)); } catch { return Buffer.alloc(0); } });
  for (const v of [AKIA, CNID, HEADER]) for (const f of files) assert.ok(!f.includes(v), `${v} is in the database`);
  // the owner token is stored as a hash only; the header sealed
  for (const f of files) assert.ok(!f.includes(TOKEN));
});
