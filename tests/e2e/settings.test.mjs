// settings.test.mjs - system settings, runtime secrets and the IP allowlist
// (issue 16) against a real aosd: GET/PUT /config/system (schema, bad
// input changing nothing, dry_run, restart keys, persistence, flags
// winning), runtime secrets (write-only values, bad input, a sealed value
// moved to another row not opening, master-key rotation, the two-person
// rule), a task whose env names a secret getting its value in its tool's
// request alone, and the IP allowlist (flag and policy, lock-out refused).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAosd, waitReady, sseClient, assertErrorShape, ROOT, TOKEN } from './lib.mjs';
import { startOpenAI } from './openai.mjs';

const FAULTY = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'aos-settings-'));
const VALUE = `sk-settings-${randomBytes(12).toString('hex')}`;
const VALUE2 = `sk-other-${randomBytes(12).toString('hex')}`;
const VALUE3 = `sk-pending-${randomBytes(12).toString('hex')}`;
const LLM_KEY = `sk-llm-settings-${randomBytes(12).toString('hex')}`;
const ALL_VALUES = [VALUE, VALUE2, VALUE3, LLM_KEY];

let aos, dataDir;
const seen = []; // every response body, searched for values at the end
const crashes = [];

async function api(method, path, body, token = TOKEN) {
  const r = await aos.api(method, path, body, token);
  seen.push(`${method} ${path} ${r.status} ${r.text}`);
  return r;
}

async function start(args = [], env = {}) {
  aos = await startAosd({ dataDir, args, env });
  return aos;
}

async function stop() {
  const { code, signal } = await aos.stop();
  const logs = aos.logs();
  seen.push(logs, aos.stdout());
  if (/AddressSanitizer|LeakSanitizer|runtime error/.test(logs) || code !== 0)
    crashes.push(`exit ${code} ${signal}: ${logs.slice(-3000)}`);
}

async function mint(role, name = role) {
  const r = await api('POST', '/auth/tokens', { name, role });
  assert.equal(r.status, 201, r.text);
  return r.body.token;
}

async function systemSnapshot() {
  const r = await api('GET', '/config/system');
  assert.equal(r.status, 200, r.text);
  return r.body;
}

async function auditCount() {
  const r = await api('GET', '/audit/logs?limit=500');
  assert.equal(r.status, 200, r.text);
  return r.body.items.length;
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'aos-settings-data-'));
  await start();
  const r = await api('POST', '/mcp/registry', { name: 'fx', command: process.execPath, args: [FAULTY],
    env: { FIXTURE_ENV_TOKEN: 'registry-env-value-0123456789' } });
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'fx');
});

after(async () => {
  if (aos) await stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
  assert.deepEqual(crashes, []);
});

test('GET /config/system: every key with its value, source and schema; Viewer may read, not change', async () => {
  const s = await systemSnapshot();
  for (const k of ['llm.base_url', 'llm.model', 'llm.api_key_secret', 'llm.price_in_cny', 'otel.endpoint',
    'otel.headers', 'otel.sample_ratio', 'database.url', 'gateway.session_idle_s', 'http.max_body',
    'security.two_person_secrets', 'security.ip_allowlist', 'audit.retention_days'])
    assert.ok(k in s.settings, `${k} in settings`);
  assert.equal(s.sources['gateway.session_idle_s'], 'default');
  assert.equal(s.settings['audit.retention_days'], 0, 'audit rows are kept for ever by default');
  const ret = s.schema.find((k) => k.key === 'audit.retention_days');
  assert.equal(ret.flag, '--audit-retention-days');
  assert.equal(ret.live, false);
  assert.deepEqual(s.settings['security.ip_allowlist'], []);
  assert.equal(s.settings['security.two_person_secrets'], false);
  const idle = s.schema.find((k) => k.key === 'gateway.session_idle_s');
  assert.equal(idle.type, 'integer');
  assert.equal(idle.live, false);
  assert.equal(idle.flag, '--session-idle');
  const viewer = await mint('viewer');
  assert.equal((await api('GET', '/config/system', undefined, viewer)).status, 200);
  assertErrorShape(assert, await api('PUT', '/config/system', { 'gateway.session_idle_s': 60 }, viewer), 403);
  assertErrorShape(assert, await api('GET', '/config/system', undefined, null), 401);
});

test('PUT /config/system: bad input gets 400 naming the field and changes nothing', async () => {
  const before = await systemSnapshot();
  const audits = await auditCount();
  const bad = [
    [{ 'gateway.session_idle_s': 'sixty' }, 'gateway.session_idle_s'],
    [{ 'gateway.session_idle_s': 0 }, 'gateway.session_idle_s'],
    [{ 'gateway.session_idle_s': 1.5 }, 'gateway.session_idle_s'],
    [{ 'otel.sample_ratio': 1.5 }, 'otel.sample_ratio'],
    [{ 'llm.temperature': 'hot' }, 'llm.temperature'],
    [{ 'llm.base_url': 'ftp://x' }, 'llm.base_url'],
    [{ 'llm.model': 'x'.repeat(201) }, 'llm.model'],
    [{ 'security.two_person_secrets': 'yes' }, 'security.two_person_secrets'],
    [{ 'security.ip_allowlist': ['127.0.0.1/33'] }, 'security.ip_allowlist[0]'],
    [{ 'security.ip_allowlist': '127.0.0.1' }, 'security.ip_allowlist'],
    [{ 'otel.headers': { 'bad name': 'x' } }, 'otel.headers'],
    [{ 'database.url': 'postgres://u:p@h/db' }, 'database.url'],
    [{ 'llm.api_key_secret': 'no-such-secret' }, 'llm.api_key_secret'],
    [{ 'gateway.session_idle_s': 60, nonsense: 1 }, 'nonsense'],
    [{ 'llm.base_url': 'http://127.0.0.1:9/v1' }, 'llm.model'],
    [{}, 'no setting'],
    [[1, 2], 'object'],
  ];
  for (const [body, field] of bad) {
    const r = await api('PUT', '/config/system', body);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.ok(r.body.error.message.includes(field), `${JSON.stringify(body)}: ${r.text}`);
  }
  const raw = await aos.api('PUT', '/config/system', '{"gateway.session_idle_s": 60');
  assertErrorShape(assert, raw, 400);
  const huge = await aos.api('PUT', '/config/system', JSON.stringify({ 'llm.model': 'x'.repeat(300 << 10) }));
  assertErrorShape(assert, huge, 413);
  assert.deepEqual(await systemSnapshot(), before);
  assert.equal(await auditCount(), audits);
});

test('PUT /config/system?dry_run=1 gives the diff and applies nothing', async () => {
  const before = await systemSnapshot();
  const r = await api('PUT', '/config/system?dry_run=1', { 'gateway.session_idle_s': 61, 'llm.price_in_cny': 0.5 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.dry_run, true);
  assert.deepEqual(r.body.diff['gateway.session_idle_s'], { from: 1800, to: 61 });
  assert.deepEqual(r.body.diff['llm.price_in_cny'], { from: 0, to: 0.5 });
  assert.ok(r.body.restart_required.includes('gateway.session_idle_s'));
  assert.deepEqual(await systemSnapshot(), before);
});

test('PUT /config/system applies, lists restart keys, is audited, and survives a restart', async () => {
  const audits = await auditCount();
  const r = await api('PUT', '/config/system', { 'gateway.session_idle_s': 62, 'security.two_person_secrets': false,
    'otel.endpoint': 'http://127.0.0.1:4318', 'otel.headers': { 'x-team': 'a' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.dry_run, false);
  assert.deepEqual(r.body.diff['gateway.session_idle_s'], { from: 1800, to: 62 });
  assert.ok(!('security.two_person_secrets' in r.body.diff), 'an unchanged key is no change');
  assert.deepEqual(r.body.restart_required.sort(), ['gateway.session_idle_s', 'otel.endpoint', 'otel.headers']);
  let s = await systemSnapshot();
  assert.equal(s.settings['gateway.session_idle_s'], 62);
  assert.equal(s.sources['gateway.session_idle_s'], 'stored');
  assert.ok(s.restart_pending.includes('gateway.session_idle_s'));
  assert.equal(await auditCount(), audits + 1);
  const audit = (await api('GET', '/audit/logs?limit=1')).body;
  assert.match(JSON.stringify(audit), /settings\.system\.update/);
  await stop();
  await start();
  s = await systemSnapshot();
  assert.equal(s.settings['gateway.session_idle_s'], 62);
  assert.equal(s.sources['gateway.session_idle_s'], 'stored');
  assert.deepEqual(s.restart_pending, []);
  // null: back to the default
  const back = await api('PUT', '/config/system', { 'gateway.session_idle_s': null, 'otel.headers': null, 'otel.endpoint': null });
  assert.equal(back.status, 200, back.text);
  assert.deepEqual(back.body.diff['gateway.session_idle_s'], { from: 62, to: 1800 });
  assert.equal((await systemSnapshot()).sources['gateway.session_idle_s'], 'default');
  await waitReady(aos, 'fx');
});

test('a flag wins over stored settings: its key is shown as such and PUT is refused', async () => {
  await stop();
  await start(['--session-idle', '77', '--llm-base-url', 'http://127.0.0.1:9/v1', '--llm-model', 'm'],
    { AOS_LLM_API_KEY: 'sk-flag-key-0123456789abcdef' });
  const s = await systemSnapshot();
  assert.equal(s.sources['llm.model'], 'flag');
  assert.equal(s.sources['llm.api_key_secret'], 'flag');
  assertErrorShape(assert, await api('PUT', '/config/system', { 'llm.model': 'other' }), 409);
  // a key from the flag is gone once the client holds it: LLM changes wait for a restart
  const price = await api('PUT', '/config/system', { 'llm.price_in_cny': 2 });
  assert.equal(price.status, 200, price.text);
  assert.deepEqual(price.body.restart_required, ['llm.price_in_cny']);
  assert.equal((await api('PUT', '/config/system', { 'llm.price_in_cny': null })).status, 200);
  assert.equal(s.settings['gateway.session_idle_s'], 77);
  assert.equal(s.sources['gateway.session_idle_s'], 'flag');
  const r = await api('PUT', '/config/system', { 'gateway.session_idle_s': 90 });
  assertErrorShape(assert, r, 409, 'conflict');
  assert.match(r.body.error.message, /--session-idle/);
  await stop();
  await start();
  await waitReady(aos, 'fx');
});

test('runtime secrets: write-only values, bad input changing nothing', async () => {
  let r = await api('PUT', '/config/runtime/API_KEY', { value: VALUE, purpose: 'the fixture API' });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.body, { name: 'API_KEY', scope: 'system', purpose: 'the fixture API', created: true });
  r = await api('PUT', '/config/runtime/OTHER', { value: VALUE2, scope: 'project:p1' });
  assert.equal(r.status, 201, r.text);
  r = await api('PUT', '/config/runtime/OTHER', { value: VALUE2, scope: 'project:p1', purpose: 'again' });
  assert.equal(r.status, 200, r.text);
  const list = await api('GET', '/config/runtime');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.secrets.map((x) => [x.name, x.scope, x.purpose]),
    [['API_KEY', 'system', 'the fixture API'], ['OTHER', 'project:p1', 'again']]);
  for (const x of list.body.secrets) {
    assert.ok(x.last_rotated && x.created_at && x.created_by);
    assert.ok(!('value' in x) && !('sealed' in x));
  }
  const viewer = await mint('viewer', 'viewer2');
  assert.equal((await api('GET', '/config/runtime', undefined, viewer)).status, 200);
  assertErrorShape(assert, await api('PUT', '/config/runtime/X1', { value: 'v' }, viewer), 403);
  const audits = await auditCount();
  const bad = [
    ['/config/runtime/X1', {}, 'value'],
    ['/config/runtime/X1', { value: 5 }, 'value'],
    ['/config/runtime/X1', { value: '' }, 'value'],
    ['/config/runtime/X1', { value: 'v', colour: 'red' }, 'colour'],
    ['/config/runtime/X1', { value: 'v', scope: 'galaxy' }, 'scope'],
    ['/config/runtime/X1', { value: 'v', purpose: 7 }, 'purpose'],
    ['/config/runtime/X1', { value: 'v'.repeat(70000) }, 'value'],
    ['/config/runtime/bad%20name', { value: 'v' }, 'name'],
    ['/config/runtime/X1', [], 'object'],
  ];
  assertErrorShape(assert, await api('PUT', '/config/runtime/X1', { value: 'v'.repeat(200 << 10) }), 413);
  for (const [path, body, what] of bad) {
    const b = await api('PUT', path, body);
    assertErrorShape(assert, b, 400);
    assert.ok(b.body.error.message.includes(what), `${path} ${JSON.stringify(body).slice(0, 80)}: ${b.text}`);
  }
  assertErrorShape(assert, await api('DELETE', '/config/runtime/NOPE'), 404);
  assert.equal(await auditCount(), audits);
  assert.equal((await api('GET', '/config/runtime')).body.secrets.length, 2);
  // the LLM key is a reference to a secret of scope system, never a value
  assertErrorShape(assert, await api('PUT', '/config/system', { 'llm.api_key_secret': 'OTHER' }), 400);
  r = await api('PUT', '/config/system', { 'llm.api_key_secret': 'API_KEY' });
  assert.equal(r.status, 200, r.text);
  assertErrorShape(assert, await api('DELETE', '/config/runtime/API_KEY'), 409);
  assert.equal((await api('PUT', '/config/system', { 'llm.api_key_secret': null })).status, 200);
});

test('project variables refer to secrets by name', async () => {
  let r = await api('PUT', '/projects/p1/vars/TOKEN_A', { secret: 'OTHER', purpose: 'for p1' });
  assert.equal(r.status, 200, r.text);
  assertErrorShape(assert, await api('PUT', '/projects/p2/vars/TOKEN_A', { secret: 'OTHER' }), 400); // scope p1 only
  assertErrorShape(assert, await api('PUT', '/projects/p1/vars/TOKEN_B', { secret: 'NOPE' }), 400);
  assertErrorShape(assert, await api('PUT', '/projects/p1/vars/1BAD', { secret: 'OTHER' }), 400);
  assertErrorShape(assert, await api('PUT', '/projects/p1/vars/TOKEN_B', { secret: 'OTHER', x: 1 }), 400);
  r = await api('GET', '/projects/p1/vars');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.vars.map((v) => [v.name, v.scope, v.purpose, v.secret]), [['TOKEN_A', 'project', 'for p1', 'OTHER']]);
  assert.equal((await api('DELETE', '/projects/p1/vars/TOKEN_A')).status, 200);
  assertErrorShape(assert, await api('DELETE', '/projects/p1/vars/TOKEN_A'), 404);
});

async function runTask(spec, token = TOKEN) {
  const r = await api('POST', '/api/run', spec, token);
  if (r.status !== 201) return r;
  const trace = r.body.trace_id;
  const ev = sseClient(aos, `/agent/events?trace_id=${trace}&after=0`);
  try {
    await ev.waitFor((x) => x.events.some((e) => e.type === 'task.receipt'), 30000, 'task.receipt');
    const receipt = ev.events.find((e) => e.type === 'task.receipt');
    seen.push(JSON.stringify(ev.events));
    const ep = await api('GET', `/api/episodes/${trace}`);
    return { status: 201, trace, receipt, episode: ep.body };
  } finally { ev.close(); }
}

const envTask = (file, secret = 'API_KEY', extra = {}) => ({
  plan: { steps: [{ id: 'dump', tool: 'fx__env-dump', args: { file }, retry: { max: 0 } }] },
  env: { API_KEY: { secret } }, constraints: { approval: 'never', tools: ['fx__*'] }, ...extra,
});

test('a task whose env names a secret gets its value in its tool call only', async () => {
  const file = join(scratch, 'env1.json');
  const t = await runTask(envTask(file));
  assert.equal(t.status, 201);
  assert.equal(t.receipt.payload.status, 'done', JSON.stringify(t.episode).slice(0, 2000));
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { API_KEY: VALUE });
  // a call of a task without env carries none
  const plain = join(scratch, 'env0.json');
  const t0 = await runTask({ plan: { steps: [{ id: 'dump', tool: 'fx__env-dump', args: { file: plain } }] } });
  assert.equal(t0.receipt.payload.status, 'done');
  assert.equal(readFileSync(plain, 'utf8'), 'null');
  // a secret of another project's scope is not opened
  const f2 = join(scratch, 'env2.json');
  const t2 = await runTask(envTask(f2, 'OTHER', { project_id: 'p9' }));
  assert.equal(t2.receipt.payload.status, 'failed');
  assert.ok(!existsSync(f2));
  assert.match(JSON.stringify(t2.episode), /runtime secret 'OTHER' not found/);
  const f3 = join(scratch, 'env3.json');
  const t3 = await runTask(envTask(f3, 'OTHER', { project_id: 'p1' }));
  assert.equal(t3.receipt.payload.status, 'done');
  assert.deepEqual(JSON.parse(readFileSync(f3, 'utf8')), { API_KEY: VALUE2 });
  // bad env, and a submitter without a right on the secret
  for (const env of [{ API_KEY: 'literal' }, { '1X': { secret: 'API_KEY' } }, { A: { secret: 'API_KEY', x: 1 } }, ['x']])
    assertErrorShape(assert, await api('POST', '/api/run', { ...envTask(file), env }), 400);
  const r = await api('POST', '/auth/tokens', { name: 'narrow-env', role: 'none',
    grants: [{ role: 'operator', resource: 'tool:fx__*' }, { role: 'operator', resource: 'task:*' }] });
  assert.equal(r.status, 201, r.text);
  const denied = await api('POST', '/api/run', envTask(file), r.body.token);
  assertErrorShape(assert, denied, 403);
  assert.match(denied.body.error.message, /this token may not use runtime secret 'API_KEY' \(in env\.API_KEY\)/);
  const g = await api('POST', '/rbac/grants', { principal: `token:${r.body.id}`, role: 'operator', resource: 'secret:API_KEY' });
  assert.equal(g.status, 201, g.text);
  const ok = await runTask(envTask(join(scratch, 'env4.json')), r.body.token);
  assert.equal(ok.status, 201);
  assert.equal(ok.receipt.payload.status, 'done');
});

test('a task\'s env may name a variable of its project, resolved to its secret at submission', async () => {
  let r = await api('PUT', '/projects/p1/vars/UPSTREAM_KEY', { secret: 'OTHER', purpose: 'e2e' });
  assert.equal(r.status, 200, r.text);
  const file = join(scratch, 'var1.json');
  const spec = { ...envTask(file), env: { API_KEY: { var: 'UPSTREAM_KEY' } }, project_id: 'p1' };
  const t = await runTask(spec);
  assert.equal(t.status, 201);
  assert.equal(t.receipt.payload.status, 'done', JSON.stringify(t.episode).slice(0, 2000));
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { API_KEY: VALUE2 });
  // the stored spec says what the variable was resolved to, never a value
  assert.deepEqual(t.episode.spec.env, { API_KEY: { var: 'UPSTREAM_KEY', secret: 'OTHER' } });
  r = await api('POST', '/api/run', { ...spec, project_id: undefined });
  assertErrorShape(assert, r, 400);
  assert.match(r.body.error.message, /project_id/);
  for (const [extra, why] of [[{ env: { API_KEY: { var: 'NOPE' } } }, /no variable 'NOPE'/],
    [{ project_id: 'p9' }, /project 'p9' has no variable 'UPSTREAM_KEY'/],
    [{ env: { API_KEY: { var: 'bad name' } } }, /env\.API_KEY/]]) {
    r = await api('POST', '/api/run', { ...spec, ...extra });
    assertErrorShape(assert, r, 400);
    assert.match(r.body.error.message, why);
  }
  assert.equal((await api('DELETE', '/projects/p1/vars/UPSTREAM_KEY')).status, 200);
});

test('a sealed value copied into another row does not open there', async () => {
  await stop();
  const db = join(dataDir, 'aos.db');
  execFileSync('sqlite3', [db, "UPDATE runtime_secrets SET sealed = (SELECT sealed FROM runtime_secrets WHERE name = 'API_KEY') WHERE name = 'OTHER'"]);
  await start();
  await waitReady(aos, 'fx');
  const f = join(scratch, 'moved.json');
  const t = await runTask(envTask(f, 'OTHER', { project_id: 'p1' }));
  assert.equal(t.receipt.payload.status, 'failed');
  assert.ok(!existsSync(f), 'the tool was not called');
  assert.match(JSON.stringify(t.episode), /does not open/);
  // the row it came from still opens
  const g = join(scratch, 'orig.json');
  assert.equal((await runTask(envTask(g))).receipt.payload.status, 'done');
  assert.deepEqual(JSON.parse(readFileSync(g, 'utf8')), { API_KEY: VALUE });
  // a new value repairs the row
  assert.equal((await api('PUT', '/config/runtime/OTHER', { value: VALUE2, scope: 'project:p1' })).status, 200);
});

test('master-key rotation reseals every value; they open after a restart', async () => {
  const keyFile = join(dataDir, 'master.key');
  const oldKey = readFileSync(keyFile, 'utf8');
  const db = join(dataDir, 'aos.db');
  const sealedBefore = execFileSync('sqlite3', [db, "SELECT sealed FROM runtime_secrets ORDER BY name"]).toString();
  const envBefore = execFileSync('sqlite3', [db, "SELECT config FROM mcp_registry WHERE name = 'fx'"]).toString();
  const operator = await mint('operator', 'op-rot');
  assertErrorShape(assert, await api('POST', '/config/runtime/rotate-master-key', undefined, operator), 403);
  const admin = await mint('admin', 'admin-rot');
  assertErrorShape(assert, await api('POST', '/config/runtime/rotate-master-key', undefined, admin), 403);
  const r = await api('POST', '/config/runtime/rotate-master-key');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.resealed.secrets, 2);
  assert.ok(r.body.resealed.registry_values >= 1, r.text);
  assert.notEqual(readFileSync(keyFile, 'utf8'), oldKey);
  assert.ok(!existsSync(keyFile + '.next'));
  assert.notEqual(execFileSync('sqlite3', [db, "SELECT sealed FROM runtime_secrets ORDER BY name"]).toString(), sealedBefore);
  assert.notEqual(execFileSync('sqlite3', [db, "SELECT config FROM mcp_registry WHERE name = 'fx'"]).toString(), envBefore);
  // used at once, and after a restart with only the new key on disk
  const f1 = join(scratch, 'rot1.json');
  assert.equal((await runTask(envTask(f1))).receipt.payload.status, 'done');
  assert.deepEqual(JSON.parse(readFileSync(f1, 'utf8')), { API_KEY: VALUE });
  await stop();
  await start();
  await waitReady(aos, 'fx');
  const f2 = join(scratch, 'rot2.json');
  assert.equal((await runTask(envTask(f2, 'OTHER', { project_id: 'p1' }))).receipt.payload.status, 'done');
  assert.deepEqual(JSON.parse(readFileSync(f2, 'utf8')), { API_KEY: VALUE2 });
  assert.match(JSON.stringify((await api('GET', '/audit/logs?limit=5')).body), /secret\.master_key\.rotate/);
});

test('two-person rule: a change waits for a second Admin or Owner; the requester cannot approve it', async () => {
  const admin = await mint('admin', 'second-admin');
  assert.equal((await api('PUT', '/config/system', { 'security.two_person_secrets': true })).status, 200);
  let r = await api('PUT', '/config/runtime/PENDING_ONE', { value: VALUE3, purpose: 'needs two' });
  assert.equal(r.status, 202, r.text);
  const id = r.body.pending;
  assert.match(id, /^chg_/);
  assert.ok(!(await api('GET', '/config/runtime')).body.secrets.some((x) => x.name === 'PENDING_ONE'));
  // the waiting value is sealed too, bound to its change
  const row = execFileSync('sqlite3', [join(dataDir, 'aos.db'), `SELECT sealed FROM secret_changes WHERE id = '${id}'`]).toString();
  assert.match(row, /^v2:/);
  assert.ok(!row.includes(VALUE3));
  const pending = await api('GET', '/config/runtime/pending');
  assert.equal(pending.status, 200);
  assert.deepEqual(pending.body.pending.map((p) => [p.id, p.op, p.name]), [[id, 'put', 'PENDING_ONE']]);
  const self = await api('POST', `/config/runtime/pending/${id}/approve`);
  assertErrorShape(assert, self, 403);
  assert.match(self.body.error.message, /another Admin or Owner/);
  const viewer = await mint('viewer', 'viewer3');
  assertErrorShape(assert, await api('POST', `/config/runtime/pending/${id}/approve`, undefined, viewer), 403);
  r = await api('POST', `/config/runtime/pending/${id}/approve`, undefined, admin);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.decision, 'approved');
  const listed = (await api('GET', '/config/runtime')).body;
  assert.ok(listed.secrets.some((x) => x.name === 'PENDING_ONE' && x.purpose === 'needs two'));
  assert.equal(listed.pending, 0);
  assertErrorShape(assert, await api('POST', `/config/runtime/pending/${id}/approve`, undefined, admin), 404);
  const f = join(scratch, 'pending.json');
  assert.equal((await runTask(envTask(f, 'PENDING_ONE'))).receipt.payload.status, 'done');
  assert.deepEqual(JSON.parse(readFileSync(f, 'utf8')), { API_KEY: VALUE3 });
  // a delete waits too; the requester may withdraw it
  r = await api('DELETE', '/config/runtime/PENDING_ONE', undefined, admin);
  assert.equal(r.status, 202, r.text);
  assert.equal((await api('POST', `/config/runtime/pending/${r.body.pending}/reject`, undefined, admin)).status, 200);
  assert.ok((await api('GET', '/config/runtime')).body.secrets.some((x) => x.name === 'PENDING_ONE'));
  r = await api('DELETE', '/config/runtime/PENDING_ONE', undefined, admin);
  assert.equal((await api('POST', `/config/runtime/pending/${r.body.pending}/approve`)).status, 200);
  assert.ok(!(await api('GET', '/config/runtime')).body.secrets.some((x) => x.name === 'PENDING_ONE'));
  assert.equal((await api('PUT', '/config/system', { 'security.two_person_secrets': false })).status, 200);
  const audit = JSON.stringify((await api('GET', '/audit/logs?limit=20')).body);
  for (const a of ['secret.change.request', 'secret.change.approve', 'secret.change.reject']) assert.ok(audit.includes(a), a);
});

test('IP allowlist in the policy: a change that would lock the caller out is refused', async () => {
  const before = await systemSnapshot();
  let r = await api('PUT', '/config/system', { 'security.ip_allowlist': ['10.0.0.0/8', '2001:db8::/32'] });
  assertErrorShape(assert, r, 409, 'conflict');
  assert.match(r.body.error.message, /lock out your own address 127\.0\.0\.1/);
  assert.deepEqual(await systemSnapshot(), before);
  r = await api('PUT', '/config/system', { 'security.ip_allowlist': ['10.0.0.0/8', '127.0.0.0/8'] });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.restart_required, []);
  assert.equal((await api('GET', '/healthz')).status, 200);
  assert.equal((await api('PUT', '/config/system', { 'security.ip_allowlist': [] })).status, 200);
});

test('redaction patterns in the policy: validated, applied at once, audited', async () => {
  const before = await systemSnapshot();
  assert.equal(before.settings['security.redact_patterns'], 'default');
  const sch = before.schema.find((k) => k.key === 'security.redact_patterns');
  assert.equal(sch.live, true);
  assert.equal(sch.flag, '--redact-patterns');
  for (const [bad, word] of [['keys,nope', 'nope'], ['+emial', 'emial'], ['', null], [7, null], [['email'], null]]) {
    const r = await api('PUT', '/config/system', { 'security.redact_patterns': bad });
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.match(r.body.error.message, word ? new RegExp(`security.redact_patterns.*'${word}'`) : /security.redact_patterns/);
  }
  assert.deepEqual(await systemSnapshot(), before);
  // e-mail addresses are not redacted by default; with +email they are, at once
  const line = async (topic) => {
    const p = await api('POST', '/api/logs', [{ message: 'contact ada.lovelace@example.com now', topic }]);
    assert.ok(p.status < 300, p.text);
    return (await api('GET', `/api/logs?topic=${topic}`)).body.items[0]?.message;
  };
  assert.equal(await line(`redact-a-${Date.now()}`), 'contact ada.lovelace@example.com now');
  let r = await api('PUT', '/config/system', { 'security.redact_patterns': '+email' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.restart_required, []);
  assert.deepEqual(r.body.diff['security.redact_patterns'], { from: 'default', to: '+email' });
  assert.equal(await line(`redact-b-${Date.now()}`), 'contact [REDACTED] now');
  const audit = await api('GET', '/audit/logs?action=settings.system.update&limit=5');
  assert.ok(audit.body.items.some((x) => JSON.stringify(x.diff).includes('security.redact_patterns')), audit.text.slice(0, 500));
  // back to the default: addresses pass again
  assert.equal((await api('PUT', '/config/system', { 'security.redact_patterns': null })).status, 200);
  assert.equal((await systemSnapshot()).settings['security.redact_patterns'], 'default');
  assert.equal(await line(`redact-c-${Date.now()}`), 'contact ada.lovelace@example.com now');
});

test('IP allowlist from the flag: everything refused before auth, routing or body', async () => {
  await stop();
  await start(['--ip-allowlist', '10.0.0.0/8,::2']);
  for (const [method, path, token] of [['GET', '/healthz', null], ['GET', '/', null], ['GET', '/config/system', TOKEN],
    ['POST', '/mcp', TOKEN], ['GET', '/no/such/route', null], ['PUT', '/config/system', 'forged-token']]) {
    const r = await aos.api(method, path, method === 'GET' ? undefined : { x: 1 }, token);
    assertErrorShape(assert, r, 403, 'ip_not_allowed');
    assert.match(r.body.error.message, /not in the IP allowlist/);
  }
  await stop();
  await start(['--ip-allowlist', '127.0.0.1, ::1']);
  assert.equal((await api('GET', '/healthz')).status, 200);
  const s = await systemSnapshot();
  assert.equal(s.sources['security.ip_allowlist'], 'flag');
  assert.deepEqual(s.settings['security.ip_allowlist'], ['127.0.0.1', '::1']);
  assertErrorShape(assert, await api('PUT', '/config/system', { 'security.ip_allowlist': ['127.0.0.0/8'] }), 409);
  await stop();
  let failed = false;
  try { await start(['--ip-allowlist', '127.0.0.1/99']); } catch (e) { failed = /ip-allowlist/.test(String(e)); }
  assert.ok(failed, 'a bad --ip-allowlist stops aosd at start');
  aos = null;
  await start();
  await waitReady(aos, 'fx');
});

test('the LLM provider from stored settings, its key a runtime secret, changed live', async () => {
  const llm = await startOpenAI({ chat: [{ content: 'unused', repeat: true }] }, { apiKey: LLM_KEY });
  try {
    const submit = (model) => ({ chat: [{ repeat: true, usage: { prompt_tokens: 10, completion_tokens: 5 },
      tool_calls: [{ id: 'c1', name: 'submit_plan', arguments: { steps: [{ id: 'say', tool: 'fx__echo', args: { message: model } }] } }] }] });
    await llm.script(submit('m'));
    assert.equal((await api('PUT', '/config/runtime/LLM_KEY', { value: LLM_KEY, purpose: 'model server' })).status, 201);
    // no LLM yet: turning it on waits for a restart
    let r = await api('PUT', '/config/system', { 'llm.base_url': llm.url, 'llm.model': 'model-one',
      'llm.api_key_secret': 'LLM_KEY', 'llm.retries': 0 });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.restart_required.includes('llm.base_url'), r.text);
    await stop();
    await start();
    await waitReady(aos, 'fx');
    const goal = async () => {
      const t = await runTask({ goal: 'say hello', constraints: { approval: 'never' } });
      assert.equal(t.receipt.payload.status, 'done', JSON.stringify(t.episode).slice(0, 1500));
    };
    await goal();
    let reqs = await llm.requests();
    assert.equal(reqs.at(-1).body.model, 'model-one');
    assert.equal(reqs.at(-1).headers.authorization, `Bearer ${LLM_KEY}`);
    // live: the next plan uses the new model and price, no restart
    r = await api('PUT', '/config/system', { 'llm.model': 'model-two', 'llm.price_in_cny': 1 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.restart_required, []);
    await llm.clearRequests();
    await goal();
    reqs = await llm.requests();
    assert.equal(reqs.at(-1).body.model, 'model-two');
    assert.equal(reqs.at(-1).headers.authorization, `Bearer ${LLM_KEY}`);
    // a new value of the secret is a new key for the client, at once
    const NEW = `${LLM_KEY}-2`;
    ALL_VALUES.push(NEW);
    assert.equal((await api('PUT', '/config/runtime/LLM_KEY', { value: NEW })).status, 200);
    await llm.clearRequests();
    await api('POST', '/api/run', { goal: 'say hello again', constraints: { approval: 'never' } });
    for (let i = 0; i < 100 && !(await llm.requests()).length; i++) await new Promise((res) => setTimeout(res, 100));
    assert.equal((await llm.requests()).at(-1).headers.authorization, `Bearer ${NEW}`);
  } finally {
    llm.stop();
    await api('PUT', '/config/system', { 'llm.base_url': null, 'llm.api_key_secret': null, 'llm.model': null,
      'llm.retries': null, 'llm.price_in_cny': null });
  }
});

test('no route, log, event, audit row or stored text ever holds a secret value', async () => {
  seen.push(JSON.stringify((await api('GET', '/audit/logs?limit=500')).body));
  seen.push(JSON.stringify((await api('GET', '/api/logs?limit=1000')).body));
  seen.push(JSON.stringify((await api('GET', '/config/runtime')).body));
  seen.push(JSON.stringify((await api('GET', '/config/system')).body));
  seen.push((await aos.api('GET', '/metrics')).text);
  await stop();
  for (const f of ['aos.db', 'aos.db-wal']) {
    const p = join(dataDir, f);
    if (existsSync(p)) seen.push(readFileSync(p).toString('latin1'));
  }
  const all = seen.join('\n');
  for (const v of ALL_VALUES) assert.ok(!all.includes(v), `a secret value leaked: ${v.slice(0, 10)}...`);
  await start();
});
