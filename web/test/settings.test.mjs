// settings.test.mjs - the Settings page in a real browser against a real
// aosd: S1 a change reviewed as a diff in a modal (dry run) and then saved,
// the restart-required key marked; the IP allowlist; Secrets & Env (names
// and purposes only; add, rotate, delete; the two-person rule with a
// second Admin approving); custom roles made, granted and deleted on the
// Access tab; S3 redaction rules turned on through the diff
// and a log line then stored redacted; S2 users, a token shown once, grants; the audit
// log filtered and its chain verified; the master key rotated; a user's
// own account (two-factor set up and off, a new password ending the
// session); a Viewer without the actions; both
// languages and axe-core on every tab; no console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { setup, axe, checkLanguage, setLang, SHOTS, join } from './lib.mjs';

// RFC 4226/6238, as tests/e2e/users.test.mjs computes them
const base32decode = (s) => {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, acc = 0;
  const out = [];
  for (const c of s) {
    acc = (acc << 5) | alpha.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((acc >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
};
const hotp = (key, counter) => {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const off = mac[19] & 15;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1e6).padStart(6, '0');
};

let env, owner;

before(async () => {
  env = await setup();
  owner = await env.newPage();
});
after(async () => { await env?.close(); });

const tab = (p, k) => p.locator(`[role="tab"][data-tab="${k}"]`).click();

test('S1: a change is shown as a diff first, the restart key marked, then saved', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await page.goto(aos.url + '/settings');
  const form = page.locator('[data-testid="system-form"]');
  await form.waitFor();
  await axe(page, '/settings system');
  // every key of the schema has a field
  const sys = (await aos.api('GET', '/config/system')).body;
  assert.equal(await form.locator('[data-key]').count(), sys.schema.length);
  await form.locator('input[name="orch.max_running"]').fill('7');
  await form.locator('textarea[name="security.ip_allowlist"]').fill('127.0.0.0/8\n::1');
  await page.click('[data-testid="system-save"]');
  const modal = page.locator('[data-testid="modal"]');
  await modal.waitFor();
  // the dry run changed nothing yet
  assert.notEqual((await aos.api('GET', '/config/system')).body.settings['orch.max_running'], 7);
  const rows = modal.locator('[data-testid="diff-table"] tbody tr');
  assert.deepEqual((await rows.evaluateAll((r) => r.map((x) => x.dataset.key))).sort(), ['orch.max_running', 'security.ip_allowlist']);
  assert.match(await modal.locator('tr[data-key="orch.max_running"]').innerText(), /7/);
  assert.equal(await modal.locator('tr[data-key="orch.max_running"] .restart').count(), 1, 'needs a restart');
  assert.equal(await modal.locator('tr[data-key="security.ip_allowlist"] .restart').count(), 0, 'live');
  await axe(page, '/settings diff modal');
  await page.screenshot({ path: join(SHOTS, 'settings-en-light-diff.png') });
  await page.click('[data-testid="diff-confirm"]');
  await page.locator('[data-testid="system-msg"]').waitFor();
  const after = (await aos.api('GET', '/config/system')).body;
  assert.equal(after.settings['orch.max_running'], 7);
  assert.deepEqual(after.settings['security.ip_allowlist'], ['127.0.0.0/8', '::1']);
  assert.equal(after.sources['orch.max_running'], 'stored');
  await page.locator('[data-testid="restart-pending"]', { hasText: 'orch.max_running' }).waitFor();
  // a bad value: the server's message, nothing stored
  await form.locator('textarea[name="security.ip_allowlist"]').fill('not-a-range');
  await page.click('[data-testid="system-save"]');
  await page.locator('[role="alert"]', { hasText: 'security.ip_allowlist' }).waitFor();
  owner.expected(400);
  assert.deepEqual((await aos.api('GET', '/config/system')).body.settings['security.ip_allowlist'], ['127.0.0.0/8', '::1']);
  // the audit row of the change
  const audit = await aos.api('GET', '/audit/logs?action=settings.system.update');
  assert.equal(audit.body.items.length, 1);
  noProblems();
});

test('S3: redaction rules - a pattern turned on through the diff; a log line is then stored redacted', async () => {
  const { page } = owner;
  const { aos } = env;
  await page.goto(aos.url + '/settings');
  const form = page.locator('[data-testid="system-form"]');
  await form.waitFor();
  const rules = form.locator('[data-testid="redact-patterns"]');
  // the default: keys, bearer, url and cn_id on; e-mail and phone off
  const state = async () => Object.fromEntries(await rules.locator('input[type="checkbox"]').evaluateAll((xs) => xs.map((x) => [x.dataset.pattern, x.checked])));
  assert.deepEqual(await state(), { keys: true, bearer: true, url: true, email: false, phone: false, cn_id: true });
  // one line on a topic of its own, read back from GET /api/logs
  const line = async (n) => {
    const topic = `ui-redact-${n}-${Date.now()}`;
    assert.ok((await aos.api('POST', '/api/logs', [{ message: `mail ada${n}@example.com please`, topic }])).status < 300);
    const items = (await aos.api('GET', `/api/logs?topic=${topic}&limit=10`)).body.items;
    assert.equal(items.length, 1, JSON.stringify(items));
    return items[0].message;
  };
  assert.equal(await line(1), 'mail ada1@example.com please');
  await rules.locator('input[data-pattern="email"]').check();
  await page.click('[data-testid="system-save"]');
  const modal = page.locator('[data-testid="modal"]');
  await modal.waitFor();
  const rows = modal.locator('[data-testid="diff-table"] tbody tr');
  assert.deepEqual(await rows.evaluateAll((r) => r.map((x) => x.dataset.key)), ['security.redact_patterns']);
  assert.match(await modal.locator('tr[data-key="security.redact_patterns"]').innerText(), /keys,bearer,url,email,cn_id/);
  assert.equal(await modal.locator('tr[data-key="security.redact_patterns"] .restart').count(), 0, 'live');
  // nothing applied by the dry run
  assert.equal((await aos.api('GET', '/config/system')).body.settings['security.redact_patterns'], 'default');
  await page.click('[data-testid="diff-confirm"]');
  await page.locator('[data-testid="system-msg"]').waitFor();
  assert.equal((await aos.api('GET', '/config/system')).body.settings['security.redact_patterns'], 'keys,bearer,url,email,cn_id');
  assert.equal(await line(2), 'mail [REDACTED] please');
  await form.locator('[data-testid="redact-patterns"] input[data-pattern="email"]:checked').waitFor();
  await axe(page, '/settings redaction rules');
  // back to the default, through the API
  assert.equal((await aos.api('PUT', '/config/system', { 'security.redact_patterns': null })).status, 200);
});

test('Secrets & Env: names and purposes only; add, rotate, delete', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await tab(page, 'secrets');
  await page.click('[data-testid="secret-add"]');
  await page.fill('[data-testid="secret-name"]', 'UI_KEY');
  await page.fill('[data-testid="secret-value"]', 'sk-ui-value-never-shown-4711');
  await page.fill('[data-testid="secret-purpose"]', 'the browser test');
  await axe(page, '/settings secret modal');
  await page.click('[data-testid="secret-submit"]');
  const row = page.locator('tr[data-secret="UI_KEY"]');
  await row.waitFor();
  assert.match(await row.innerText(), /the browser test/);
  assert.doesNotMatch(await page.content(), /sk-ui-value/);
  await row.locator('[data-testid="rotate-UI_KEY"]').click();
  assert.equal(await page.locator('[data-testid="secret-name"]').getAttribute('readonly'), '');
  await page.fill('[data-testid="secret-value"]', 'sk-ui-rotated-4712');
  await page.click('[data-testid="secret-submit"]');
  await page.locator('[data-testid="secret-msg"]').waitFor();
  const audit = await aos.api('GET', '/audit/logs?action=secret.rotate');
  assert.equal(audit.body.items.length, 1, audit.text);
  await axe(page, '/settings secrets');
  await row.locator('[data-testid="delsecret-UI_KEY"]').click();
  await row.waitFor({ state: 'detached' });
  assert.ok(!(await aos.api('GET', '/config/runtime')).body.secrets.some((s) => s.name === 'UI_KEY'));
  noProblems();
});

test('S1: the LLM key is picked from the system secrets, never typed; tabs by keyboard', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  assert.equal((await aos.api('PUT', '/config/runtime/LLM_KEY', { value: 'sk-llm-4716', purpose: 'the LLM', scope: 'system' })).status, 201);
  assert.equal((await aos.api('PUT', '/config/runtime/PROJ_KEY', { value: 'sk-proj-4717', scope: 'project:p' })).status, 201);
  await page.goto(aos.url + '/settings');
  const sel = page.locator('select[name="llm.api_key_secret"]');
  await sel.locator('option[value="LLM_KEY"]').waitFor({ state: 'attached' });
  assert.equal(await sel.locator('option[value="PROJ_KEY"]').count(), 0, 'only scope system');
  await sel.selectOption('LLM_KEY');
  await page.click('[data-testid="system-save"]');
  await page.locator('[data-testid="diff-table"] tr[data-key="llm.api_key_secret"]', { hasText: 'LLM_KEY' }).waitFor();
  await page.click('[data-testid="diff-confirm"]');
  await page.locator('[data-testid="system-msg"]').waitFor();
  assert.equal((await aos.api('GET', '/config/system')).body.settings['llm.api_key_secret'], 'LLM_KEY');
  await page.reload();
  await page.waitForFunction(() => document.querySelector('select[name="llm.api_key_secret"]')?.value === 'LLM_KEY');
  // the tabs: arrow keys move the selection and the focus
  await page.locator('[role="tab"][data-tab="system"]').focus();
  await page.keyboard.press('ArrowRight');
  await page.locator('[role="tab"][data-tab="secrets"][aria-selected="true"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.dataset.tab), 'secrets');
  await page.keyboard.press('ArrowLeft');
  await page.locator('[role="tab"][data-tab="system"][aria-selected="true"]').waitFor();
  await page.locator('[data-testid="system-form"]').waitFor();
  noProblems();
});

test('the two-person rule: a change waits; its requester may not approve it, a second Admin does', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  assert.equal((await aos.api('PUT', '/config/system', { 'security.two_person_secrets': true })).status, 200);
  const admin2 = await aos.api('POST', '/auth/tokens', { name: 'second-admin', role: 'admin' });
  assert.equal(admin2.status, 201, admin2.text);
  await page.reload();
  await tab(page, 'secrets');
  await page.click('[data-testid="secret-add"]');
  await page.fill('[data-testid="secret-name"]', 'TWO_KEY');
  await page.fill('[data-testid="secret-value"]', 'sk-two-person-4713');
  await page.click('[data-testid="secret-submit"]');
  await page.locator('[data-testid="pending"] tr[data-pending="TWO_KEY"]').waitFor();
  assert.ok(!(await aos.api('GET', '/config/runtime')).body.secrets.some((s) => s.name === 'TWO_KEY'), 'not yet applied');
  // the requester's own approval is refused, and said so
  await page.click('[data-testid="approve-TWO_KEY"]');
  await page.locator('[role="alert"]').waitFor();
  owner.expected(403);
  const second = await env.newPage({ token: admin2.body.token });
  await second.page.goto(aos.url + '/settings');
  await tab(second.page, 'secrets');
  await second.page.click('[data-testid="approve-TWO_KEY"]');
  await second.page.locator('tr[data-secret="TWO_KEY"]').waitFor();
  assert.ok((await aos.api('GET', '/config/runtime')).body.secrets.some((s) => s.name === 'TWO_KEY'));
  second.noProblems();
  assert.equal((await aos.api('PUT', '/config/system', { 'security.two_person_secrets': false })).status, 200);
  noProblems();
});

test('S2: users, a token shown once, grants', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await page.reload();
  await tab(page, 'access');
  const tf = page.locator('[data-testid="token-form"]');
  await tf.locator('input[name="name"]').fill('ui-made');
  await tf.locator('select[name="role"]').selectOption('operator');
  await tf.locator('button[type="submit"]').click();
  const shown = page.locator('[data-testid="new-token"]');
  await shown.waitFor();
  const token = (await shown.innerText()).trim();
  const me = await fetch(aos.url + '/auth/me', { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(me.status, 200, 'the token shown works');
  assert.equal((await me.json()).role, 'operator');
  await axe(page, '/settings token modal');
  await page.locator('[data-testid="modal"] button.primary').click();
  await shown.waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(token), 'shown once: gone from the page');
  const trow = page.locator('tr[data-token="ui-made"]');
  await trow.waitFor();
  // a user
  const uf = page.locator('[data-testid="user-form"]');
  await uf.locator('input[name="name"]').fill('ui-user');
  await uf.locator('input[name="password"]').fill('a long enough passphrase 9');
  await uf.locator('button[type="submit"]').click();
  await page.locator('tr[data-user="ui-user"]').waitFor();
  // a grant on the new token
  const id = (await aos.api('GET', '/auth/tokens')).body.tokens.find((x) => x.name === 'ui-made').id;
  const gf = page.locator('[data-testid="grant-form"]');
  await gf.locator('input[name="principal"]').fill(`token:${id}`);
  await gf.locator('select[name="role"]').selectOption('viewer');
  await gf.locator('input[name="resource"]').fill('project:ui');
  await gf.locator('button[type="submit"]').click();
  await page.locator('tr[data-grant="project:ui"]').waitFor();
  assert.ok((await aos.api('GET', '/rbac/grants')).body.grants.some((g) => g.resource === 'project:ui' && g.principal === `token:${id}`));
  await axe(page, '/settings access');
  // revoke: the token stops working
  await trow.locator('[data-testid="revoke-ui-made"]').click();
  await trow.locator('text=revoked').waitFor();
  assert.equal((await fetch(aos.url + '/auth/me', { headers: { Authorization: `Bearer ${token}` } })).status, 401);
  noProblems();
});

test('Access: custom roles listed, created, offered in the grant picker, changed, deleted', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await page.reload();
  await tab(page, 'access');
  const rf = page.locator('[data-testid="role-form"]');
  await rf.locator('input[name="name"]').fill('ui-analyst');
  await rf.locator('input[name="description"]').fill('files tools, reads p1');
  await rf.locator('textarea[name="grants"]').fill('operator tool:files__*\nviewer project:p1');
  await rf.locator('button[type="submit"]').click();
  const row = page.locator('tr[data-role="ui-analyst"]');
  await row.waitFor();
  assert.match(await row.innerText(), /operator tool:files__\*; viewer project:p1/);
  const r = (await aos.api('GET', '/rbac/roles')).body.roles.find((x) => x.name === 'ui-analyst');
  assert.deepEqual(r.grants, [{ role: 'operator', resource: 'tool:files__*' }, { role: 'viewer', resource: 'project:p1' }]);
  // the built-in roles are listed too, without a delete button
  assert.equal(await page.locator('tr[data-role="admin"] button').count(), 0);
  // a bad role: the server's message, nothing made
  await rf.locator('input[name="name"]').fill('ui-bad');
  await rf.locator('textarea[name="grants"]').fill('operator nowhere');
  await rf.locator('button[type="submit"]').click();
  await page.locator('[role="alert"]', { hasText: "resource 'nowhere'" }).waitFor();
  owner.expected(400);
  assert.equal((await aos.api('GET', '/rbac/roles')).body.roles.some((x) => x.name === 'ui-bad'), false);
  // offered in the grant picker; the grant gives the role's rights
  const tok = await aos.api('POST', '/auth/tokens', { name: 'ui-role-holder', role: 'none' });
  assert.equal(tok.status, 201, tok.text);
  const gf = page.locator('[data-testid="grant-form"]');
  await gf.locator('input[name="principal"]').fill(`token:${tok.body.id}`);
  await gf.locator('select[name="role"]').selectOption('ui-analyst');
  await gf.locator('input[name="resource"]').fill('system');
  await gf.locator('button[type="submit"]').click();
  await page.locator('tr[data-grant="system"]', { hasText: 'ui-analyst' }).waitFor();
  const me = await (await fetch(aos.url + '/auth/me', { headers: { Authorization: `Bearer ${tok.body.token}` } })).json();
  assert.ok(me.effective_grants.some((g) => g.resource === 'tool:files__*' && g.role === 'operator'), JSON.stringify(me));
  await axe(page, '/settings access roles');
  // changed in place: the grant gives the new rights at once
  await row.locator('[data-testid="role-edit-ui-analyst"]').click();
  assert.equal(await rf.locator('input[name="name"]').inputValue(), 'ui-analyst');
  assert.equal(await rf.locator('textarea[name="grants"]').inputValue(), 'operator tool:files__*\nviewer project:p1');
  await rf.locator('textarea[name="grants"]').fill('operator tool:csv__*');
  await rf.locator('button[type="submit"]').click();
  await page.locator('tr[data-role="ui-analyst"]', { hasText: 'operator tool:csv__*' }).waitFor();
  const me2 = await (await fetch(aos.url + '/auth/me', { headers: { Authorization: `Bearer ${tok.body.token}` } })).json();
  assert.ok(me2.effective_grants.some((g) => g.resource === 'tool:csv__*'), JSON.stringify(me2));
  assert.ok(!me2.effective_grants.some((g) => g.resource === 'tool:files__*'), JSON.stringify(me2));
  // still granted: deleting is refused, with the server's reason
  await row.locator('[data-testid="role-delete-ui-analyst"]').click();
  await page.locator('[role="alert"]', { hasText: 'grant' }).waitFor();
  owner.expected(409);
  // the grant removed first, then the role goes
  await page.locator('tr[data-grant="system"]', { hasText: 'ui-analyst' }).locator('button').click();
  await page.locator('tr[data-grant="system"]', { hasText: 'ui-analyst' }).waitFor({ state: 'detached' });
  await row.locator('[data-testid="role-delete-ui-analyst"]').click();
  await row.waitFor({ state: 'detached' });
  assert.equal((await aos.api('GET', '/rbac/roles')).body.roles.some((x) => x.name === 'ui-analyst'), false);
  noProblems();
});

test('the audit log: filters and chain verification', async () => {
  const { page, noProblems } = owner;
  await tab(page, 'audit');
  await page.locator('[data-testid="audit"] tbody tr').first().waitFor();
  const f = page.locator('[data-testid="audit-filter"]');
  await f.locator('input[name="action"]').fill('secret.*');
  await f.locator('button[type="submit"]').click();
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="audit"] tbody tr')].every((r) => r.dataset.action.startsWith('secret.')));
  const actions = await page.locator('[data-testid="audit"] tbody tr').evaluateAll((r) => r.map((x) => x.dataset.action));
  for (const a of ['secret.create', 'secret.rotate', 'secret.delete', 'secret.change.request', 'secret.change.approve']) assert.ok(actions.includes(a), `${a} in ${actions}`);
  // a time range after every row: none; one that holds them: back
  await f.locator('input[name="action"]').fill('');
  await f.locator('input[name="since"]').fill('2999-01-01T00:00');
  await f.locator('button[type="submit"]').click();
  await page.locator('[data-testid="audit"]').waitFor({ state: 'detached' });
  await f.locator('input[name="since"]').fill('2000-01-01T00:00');
  await f.locator('input[name="until"]').fill('2999-01-01T00:00');
  await f.locator('input[name="action"]').fill('auth.bootstrap');
  await f.locator('button[type="submit"]').click();
  await page.locator('[data-testid="audit"] tr[data-action="auth.bootstrap"]').waitFor();
  await page.click('[data-testid="audit-verify"]');
  await page.locator('[data-testid="verify-result"].ok').waitFor();
  await axe(page, '/settings audit');
  await page.screenshot({ path: join(SHOTS, 'settings-en-light-audit.png'), fullPage: true });
  noProblems();
});

test('every tab in Chinese, no English left', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/settings');
  await setLang(page, 'zh-CN');
  for (const k of ['system', 'secrets', 'access', 'audit']) {
    await tab(page, k);
    await page.locator('[role="tabpanel"] table, [role="tabpanel"] form').first().waitFor();
    await checkLanguage(page, 'zh-CN', `/settings ${k}`);
    await axe(page, `/settings ${k} zh-CN`);
  }
  await page.screenshot({ path: join(SHOTS, 'settings-zh-CN-light-audit.png'), fullPage: true });
  await setLang(page, 'en');
  noProblems();
});

test('a Viewer sees the settings but none of the actions', async () => {
  const v = await env.aos.api('POST', '/auth/tokens', { name: 'set-viewer', role: 'viewer' });
  const { page, noProblems } = await env.newPage({ token: v.body.token });
  await page.goto(env.aos.url + '/settings');
  await page.locator('[data-testid="system-form"]').waitFor();
  await page.locator('[data-testid="no-admin"]').waitFor();
  assert.equal(await page.locator('[data-testid="system-save"]').count(), 0);
  assert.equal(await page.locator('[role="tab"]').count(), 2);
  assert.equal(await page.locator('input[name="orch.max_running"]').isDisabled(), true);
  await tab(page, 'secrets');
  await page.locator('tr[data-secret="TWO_KEY"]').waitFor();
  assert.equal(await page.locator('[data-testid="secret-add"], [data-testid^="rotate-"], [data-testid^="delsecret-"]').count(), 0);
  await axe(page, '/settings as a viewer');
  noProblems();
});

test('the Owner rotates the master key; the secrets still open', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await page.goto(aos.url + '/settings');
  await tab(page, 'secrets');
  await page.click('[data-testid="rotate-master"]');
  await page.locator('[data-testid="secret-msg"]', { hasText: /Rotated: \d+/ }).waitFor();
  const audit = await aos.api('GET', '/audit/logs?action=secret.master_key.rotate');
  assert.equal(audit.body.items.length, 1, audit.text);
  // a task naming a secret still gets it opened (TWO_KEY from the two-person test)
  const r = await aos.api('POST', '/api/run', { goal: 'uses a secret', dsl: 'step s: aos__echo message="x"', env: { K: { secret: 'TWO_KEY' } } });
  assert.equal(r.status, 201, r.text);
  noProblems();
});

test("a user's own account: two-factor on and off, a new password ends the session", async () => {
  const { aos } = env;
  const PASS = 'account-pass-phrase-1';
  const u = await aos.api('POST', '/auth/users', { name: 'acct', password: PASS, role: 'operator' });
  assert.equal(u.status, 201, u.text);
  const { page, problems } = await env.newPage({ token: null });
  await page.goto(aos.url + '/');
  await page.fill('input[name="name"]', 'acct');
  await page.fill('input[name="password"]', PASS);
  await page.click('form:has(input[name="password"]) button[type="submit"]');
  await page.locator('nav').waitFor();
  await page.goto(aos.url + '/settings');
  await tab(page, 'account');
  // /auth/me says two-factor is off: only setting it up is offered
  await page.locator('[data-testid="totp-state"]', { hasText: 'is off' }).waitFor();
  assert.equal(await page.locator('[data-testid="totp-off"]').count(), 0);
  await page.click('[data-testid="totp-enrol"]');
  const secret = (await page.locator('[data-testid="totp-secret"]').innerText()).trim();
  await axe(page, '/settings account');
  await page.fill('[data-testid="totp-code"]', hotp(base32decode(secret), Math.floor(Date.now() / 30000)));
  await page.click('[data-testid="totp-confirm"]');
  await page.locator('[data-testid="account-msg"]', { hasText: 'asks for a code' }).waitFor();
  const need = await fetch(aos.url + '/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'acct', password: PASS }) });
  assert.equal(need.status, 401, 'a code is now needed');
  // now on: only turning it off is offered
  await page.locator('[data-testid="totp-state"]', { hasText: 'is on' }).waitFor();
  assert.equal(await page.locator('[data-testid="totp-enrol"]').count(), 0);
  await page.click('[data-testid="totp-off"]');
  await page.locator('[data-testid="account-msg"]', { hasText: 'off' }).waitFor();
  await page.locator('[data-testid="totp-state"]', { hasText: 'is off' }).waitFor();
  await page.locator('[data-testid="totp-enrol"]').waitFor();
  const f = page.locator('[data-testid="password-form"]');
  await f.locator('input[name="current"]').fill(PASS);
  await f.locator('input[name="password"]').fill('account-pass-phrase-2');
  await f.locator('input[name="again"]').fill('account-pass-phrase-2');
  await f.locator('button[type="submit"]').click();
  await page.locator('[data-testid="token"]').waitFor(); // the sign-in page
  assert.equal(await page.locator('nav').count(), 0);
  const login = async (pw) => (await fetch(aos.url + '/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'acct', password: pw }) })).status;
  assert.equal(await login(PASS), 401);
  assert.equal(await login('account-pass-phrase-2'), 200);
  // the only console errors allowed: the stream's requests refused after the session ended
  assert.deepEqual(problems.filter((m) => !/status of 401/.test(m)), []);
});
