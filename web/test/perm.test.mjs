// perm.test.mjs - role-aware pages for a principal with grants and no
// role on the ladder (web/src/perm.ts): a token of role none with Admin on
// project:x alone. The pages that need read on system say so and ask the
// API nothing (no 403, no console error), the event stream is not
// started; on Memory it may create an item in project x and manage x's
// variables, as the API allows; a token with Operator on system and on
// agent:* sees the Agents page without the Admin actions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, axe } from './lib.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.close(); });

test('Admin on one project only: no page it may not read is asked for; its project is managed', async () => {
  const { aos } = env;
  const t = await aos.api('POST', '/auth/tokens', { name: 'narrow', role: 'none', grants: [{ role: 'admin', resource: 'project:x' }] });
  assert.equal(t.status, 201, t.text);
  assert.equal((await aos.api('PUT', '/config/runtime/X_DB', { value: 'x-db-pw-4715', purpose: 'db', scope: 'project:x' })).status, 201);
  const { page, noProblems } = await env.newPage({ token: t.body.token });
  // signing in lands on the Chat Hub, which it may not read either
  for (const p of ['/', '/integrations', '/settings', '/agents', '/projects']) {
    await page.goto(aos.url + p);
    await page.locator('[data-testid="no-access"]').waitFor();
    await axe(page, `${p} without access`);
  }
  assert.doesNotMatch(await page.locator('[data-testid="conn"]').innerText(), /Live/, 'the stream is not started');
  await page.goto(aos.url + '/memory');
  await page.click('[data-testid="mem-new"]');
  await page.fill('[data-testid="item-project"]', 'x');
  await page.fill('[data-testid="item-text"]', 'a note of project x');
  await page.click('[data-testid="item-save"]');
  await page.locator('[data-testid="item-form"]').waitFor({ state: 'detached' });
  const found = await aos.api('GET', '/api/memory/search?q=note&project_id=x');
  assert.equal(found.body.results.length, 1);
  assert.equal(found.body.results[0].source, `token:${t.body.id}`);
  await page.locator('[role="tab"][data-tab="vars"]').click();
  await page.fill('[data-testid="vars-project"]', 'x');
  await page.locator('[data-testid="vars-project"]').press('Enter');
  const f = page.locator('[data-testid="var-form"]');
  await f.locator('input[name="name"]').fill('DB');
  await f.locator('input[name="secret"]').fill('X_DB');
  await f.locator('button[type="submit"]').click();
  await page.locator('tr[data-var="DB"]').waitFor();
  assert.deepEqual((await aos.api('GET', '/projects/x/vars')).body.vars.map((v) => v.secret), ['X_DB']);
  noProblems();
});

test('Operator on system and on every agent: the Agents page without the Admin actions', async () => {
  const { aos } = env;
  assert.equal((await aos.api('POST', '/agents', { name: 'seen', template: 'log-triage' })).status, 201);
  const t = await aos.api('POST', '/auth/tokens', { name: 'wide-op', role: 'none', grants: [{ role: 'operator', resource: 'system' }, { role: 'operator', resource: 'agent:*' }] });
  assert.equal(t.status, 201, t.text);
  const { page, noProblems } = await env.newPage({ token: t.body.token });
  await page.goto(aos.url + '/agents');
  await page.locator('tr[data-agent="seen"] button').click();
  await page.locator('[data-testid="agent-scale"]').waitFor();
  assert.equal(await page.locator('[data-testid="agent-new"], [data-testid="agent-save"], [data-testid="agent-delete"]').count(), 0);
  await page.goto(aos.url + '/settings');
  await page.locator('[data-testid="system-form"]').waitFor();
  assert.equal(await page.locator('[role="tab"]').count(), 2, 'no Admin tabs');
  noProblems();
});
