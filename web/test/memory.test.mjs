// memory.test.mjs - the Memory page in a real browser against a real aosd:
// R3 items created, found by keyword, semantic and hybrid search with
// their score parts, filtered by tag, edited (a new version, the audit
// trail), deleted and restored from the deleted view; browsed with no
// query (newest first, "see more" pages, a tag filter, items deleted
// elsewhere restored); R1 the profile saved; R2 a blueprint
// created, saved as a second version, the two versions' diff, instantiated
// and run as a task; the project variable library; both languages and
// axe-core on every tab; no console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, axe, checkLanguage, setLang, SHOTS, join } from './lib.mjs';

let env, owner;
before(async () => { env = await setup(); owner = await env.newPage(); });
after(async () => { await env?.close(); });

const tab = (p, k) => p.locator(`[role="tab"][data-tab="${k}"]`).click();

async function newItem(page, project, text, tags) {
  await page.click('[data-testid="mem-new"]');
  await page.fill('[data-testid="item-project"]', project);
  await page.fill('[data-testid="item-text"]', text);
  await page.fill('[data-testid="item-tags"]', tags);
  await page.click('[data-testid="item-save"]');
  await page.locator('[data-testid="item-form"]').waitFor({ state: 'detached' });
}

async function search(page, q, mode, tags = '') {
  const f = page.locator('[data-testid="mem-search"]');
  await f.locator('[data-testid="mem-q"]').fill(q);
  await f.locator('[data-testid="mem-mode"]').selectOption(mode);
  await f.locator('input[name="tags"]').fill(tags);
  await f.locator('button[type="submit"]').click();
  await page.locator('[data-testid="mem-results"], .results + p, h2:has-text("result")').first().waitFor();
  await page.waitForTimeout(50);
  return page.locator('[data-testid="mem-results"] > li');
}

test('R3: items created, searched three ways with score parts, edited, deleted, restored', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await page.goto(aos.url + '/memory');
  await page.locator('[data-testid="mem-search"]').waitFor();
  await axe(page, '/memory items');
  await newItem(page, 'ui', 'Refund requests are answered within 30 days', 'policy, billing');
  await newItem(page, 'ui', 'The rotation of API keys happens every quarter', 'security');
  await newItem(page, 'ui', '向量检索的召回率很高', 'cn');
  // keyword: exact words only, the keyword part and rank shown
  let rows = await search(page, 'refund', 'keyword');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-results"] > li').length === 1);
  assert.match(await rows.first().innerText(), /Refund requests/);
  assert.match(await rows.first().locator('[data-testid="scores"]').innerText(), /Keyword [-\d.e]+ \(#1\)/);
  // semantic: stems match (rotating -> rotation), the vector part shown
  rows = await search(page, 'rotating keys', 'vector');
  await page.locator('[data-testid="mem-results"] > li', { hasText: 'rotation of API keys' }).waitFor();
  assert.match(await rows.first().locator('[data-testid="scores"]').innerText(), /Semantic 0\.\d+ \(#1\)/);
  // hybrid with a tag filter; Chinese bigrams
  rows = await search(page, '检索', 'hybrid', 'cn');
  await page.locator('[data-testid="mem-results"] > li', { hasText: '向量检索' }).waitFor();
  assert.match(await rows.first().locator('[data-testid="scores"]').innerText(), /RRF 0\.\d+/);
  rows = await search(page, 'refund', 'keyword', 'security');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-results"] > li').length === 0);
  // edit: a new version, and its audit trail
  rows = await search(page, 'refund', 'hybrid');
  const item = page.locator('[data-testid="mem-results"] > li', { hasText: 'Refund requests' });
  await item.locator('[data-testid="mem-edit"]').click();
  await page.fill('[data-testid="item-text"]', 'Refund requests are answered within 14 days');
  await page.click('[data-testid="item-save"]');
  await page.locator('[data-testid="mem-results"] > li', { hasText: '14 days' }).waitFor();
  const id = Number(await page.locator('[data-testid="mem-results"] > li', { hasText: '14 days' }).getAttribute('data-item'));
  const got = await aos.api('GET', `/api/memory/items/${id}`);
  assert.equal(got.body.version, 2);
  assert.deepEqual(got.body.tags, ['billing', 'policy']);
  await page.locator('[data-testid="mem-results"] > li', { hasText: '14 days' }).locator('[data-testid="mem-trail"]').click();
  await page.locator('[data-testid="trail"] tr[data-action="memory.item.update"]').waitFor();
  assert.equal(await page.locator('[data-testid="trail"] tr[data-action="memory.item.create"]').count(), 1);
  await axe(page, '/memory trail modal');
  await page.locator('[data-testid="modal"] button', { hasText: 'Close' }).click();
  // delete: gone from the results; the deleted view has it, restored there
  await page.locator('[data-testid="mem-results"] > li', { hasText: '14 days' }).locator('[data-testid="mem-delete"]').click();
  await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid="mem-results"] > li')].some((l) => l.innerText.includes('14 days')));
  assert.ok((await aos.api('GET', `/api/memory/items/${id}`)).body.deleted_at);
  await page.selectOption('[data-testid="mem-show"]', 'deleted');
  const gone = page.locator('[data-testid="mem-deleted"] li', { hasText: '14 days' });
  await gone.waitFor();
  assert.match(await gone.locator('[data-testid="deleted-at"]').innerText(), /^deleted /);
  assert.equal(await gone.locator('[data-testid="mem-edit"], [data-testid="mem-delete"]').count(), 0);
  await gone.locator('[data-testid="mem-restore"]').click();
  await gone.waitFor({ state: 'detached' });
  assert.equal((await aos.api('GET', `/api/memory/items/${id}`)).body.deleted_at, null);
  // back to the current items: the query typed before applies again
  await page.selectOption('[data-testid="mem-show"]', 'live');
  await page.locator('[data-testid="mem-results"] > li', { hasText: '14 days' }).waitFor();
  await page.click('[data-testid="mem-clear"]');
  await page.locator('[data-testid="mem-list"] li', { hasText: '14 days' }).waitFor();
  assert.equal(await page.inputValue('[data-testid="mem-q"]'), '');
  await axe(page, '/memory results');
  await page.screenshot({ path: join(SHOTS, 'memory-en-light-items.png'), fullPage: true });
  noProblems();
});

test('R3: browsing with no query: newest first, see more, tag filter, any deleted item restored', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  // 120 items through the API, every third one tagged "third"; five of
  // them deleted through the API, not in this page
  const ids = [];
  for (let i = 0; i < 120; i++) {
    const r = await aos.api('POST', '/api/memory/items', { project_id: 'browse', text: `browse item ${i}`, tags: i % 3 === 0 ? ['third', 'b'] : ['b'] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    ids.push(r.body.id);
  }
  const deleted = [ids[3], ids[10], ids[50], ids[100], ids[119]];
  for (const id of deleted) assert.equal((await aos.api('DELETE', `/api/memory/items/${id}`)).status, 200);
  await page.goto(aos.url + '/memory');
  const shown = () => page.locator('[data-testid="mem-items"] > li');
  const texts = async () => (await shown().allInnerTexts()).map((x) => (x.match(/browse item (\d+)/) || [])[1]).filter(Boolean).map(Number);
  // the first page: the newest 50, newest first, the deleted ones absent
  await page.locator('[data-testid="mem-list"]').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-items"] > li').length === 50);
  let got = await texts();
  assert.equal(got[0], 118);
  assert.deepEqual(got, [...got].sort((a, b) => b - a));
  assert.ok(!got.includes(100) && !got.includes(119));
  assert.match(await page.locator('[data-testid="mem-list"] h2').innerText(), /50 shown/);
  // see more: the next 50, then the rest (the other tests' items too), then the end
  await page.click('[data-testid="mem-more"]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-items"] > li').length === 100);
  await page.click('[data-testid="mem-more"]');
  await page.locator('[data-testid="mem-end"]').waitFor();
  got = await texts();
  assert.equal(got.length, 115);
  assert.deepEqual(new Set(got), new Set([...Array(120).keys()].filter((i) => !deleted.includes(ids[i]))));
  assert.equal(new Set(await page.locator('[data-testid="mem-items"] > li').evaluateAll((l) => l.map((x) => x.dataset.item))).size, await shown().count());
  // a tag filter: typed, then a tag clicked in a row
  await page.fill('[data-testid="mem-tags"]', 'third, b');
  await page.locator('[data-testid="mem-search"] button[type="submit"]').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-items"] > li').length === 39);
  assert.ok((await texts()).every((i) => i % 3 === 0));
  await page.locator('[data-testid="mem-end"]').waitFor();
  await page.fill('[data-testid="mem-tags"]', '');
  await page.locator('[data-testid="mem-search"] button[type="submit"]').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-items"] > li').length === 50);
  await shown().filter({ hasText: 'browse item 117' }).locator('button.tag', { hasText: 'third' }).click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-items"] > li').length === 39);
  assert.equal(await page.inputValue('[data-testid="mem-tags"]'), 'third');
  await axe(page, '/memory list');
  // the deleted view: the five deleted through the API, any one restored
  await page.fill('[data-testid="mem-tags"]', '');
  await page.selectOption('[data-testid="mem-show"]', 'deleted');
  await page.locator('[data-testid="mem-deleted"]').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="mem-deleted"] li').length === 5);
  assert.ok(await page.locator('[data-testid="mem-q"]').isDisabled());
  const item = page.locator(`[data-testid="mem-deleted"] li[data-item="${ids[10]}"]`);
  await item.locator('[data-testid="mem-restore"]').click();
  await item.waitFor({ state: 'detached' });
  assert.equal(await page.locator('[data-testid="mem-deleted"] li').count(), 4);
  const r = await aos.api('GET', `/api/memory/items/${ids[10]}`);
  assert.equal(r.body.deleted_at, null);
  assert.equal(r.body.version, 3);
  await axe(page, '/memory deleted');
  await page.screenshot({ path: join(SHOTS, 'memory-en-light-deleted.png'), fullPage: true });
  await page.selectOption('[data-testid="mem-show"]', 'live');
  await page.locator('[data-testid="mem-list"]').waitFor();
  noProblems();
});

test('R1: the profile saved', async () => {
  const { page, noProblems } = owner;
  await tab(page, 'profile');
  const f = page.locator('[data-testid="profile-form"]');
  await f.waitFor();
  await f.locator('select[name="language"]').selectOption('zh-CN');
  await f.locator('input[name="timezone"]').fill('Asia/Shanghai');
  await f.locator('textarea[name="preferences"]').fill('{"units": "metric"}');
  await f.locator('[data-testid="profile-save"]').click();
  await f.locator('[role="status"]').waitFor();
  const p = (await env.aos.api('GET', '/api/memory/profile')).body;
  assert.deepEqual(p.profile, { language: 'zh-CN', timezone: 'Asia/Shanghai', preferences: { units: 'metric' } });
  assert.equal(p.version, 1);
  // bad JSON: said so, nothing sent
  await f.locator('textarea[name="preferences"]').fill('{nope');
  await f.locator('[data-testid="profile-save"]').click();
  await page.locator('[role="alert"]').waitFor();
  assert.equal((await env.aos.api('GET', '/api/memory/profile')).body.version, 1);
  await axe(page, '/memory profile');
  noProblems();
});

test('R2: a blueprint, a second version, the diff, instantiated and run', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await tab(page, 'blueprints');
  await page.click('[data-testid="bp-new"]');
  const f = page.locator('[data-testid="bp-form"]');
  await f.locator('input[name="project_id"]').fill('ui');
  await f.locator('input[name="name"]').fill('echo-file');
  await f.locator('input[name="description"]').fill('first');
  await f.locator('textarea[name="spec"]').fill(JSON.stringify({ goal: 'echo ${params.file}', dsl: 'step s1: aos__echo message="${params.file}"' }));
  await f.locator('textarea[name="params"]').fill(JSON.stringify({ file: { description: 'a file', required: true } }));
  await f.locator('button[type="submit"]').click();
  await page.locator('[data-testid="blueprint"] h2', { hasText: 'echo-file' }).waitFor();
  const spec = JSON.parse(await page.locator('[data-testid="bp-spec"]').inputValue());
  spec.dsl = 'step s1: aos__echo message="v2 ${params.file}"';
  await page.fill('[data-testid="bp-spec"]', JSON.stringify(spec, null, 2));
  await page.click('[data-testid="bp-save"]');
  await page.locator('[data-testid="blueprint"] h2 .badge', { hasText: 'v2' }).waitFor();
  const diff = page.locator('[data-testid="diff"]');
  await diff.waitFor();
  assert.match(await diff.locator('.del').innerText(), /message=\\"\$\{params\.file\}/);
  assert.match(await diff.locator('.add').innerText(), /v2 \$\{params\.file\}/);
  // the same version on both sides: no difference
  await page.selectOption('[data-testid="ver-a"]', '2');
  await page.locator('[data-testid="diff"]', { hasText: 'No difference' }).waitFor();
  await axe(page, '/memory blueprint');
  await page.screenshot({ path: join(SHOTS, 'memory-en-light-blueprint.png'), fullPage: true });
  await page.fill('[data-testid="bp-iparams"]', '{"file": "sales.csv"}');
  await page.click('[data-testid="bp-instantiate"]');
  assert.match(await page.locator('[data-testid="bp-result"]').innerText(), /v2 sales\.csv/);
  await page.click('[data-testid="bp-run"]');
  await page.locator('[data-testid="bp-ran"]').waitFor();
  const jobs = (await aos.api('GET', '/api/jobs?limit=5')).body.jobs;
  assert.ok(jobs.some((j) => /echo sales\.csv/.test(JSON.stringify(j))), JSON.stringify(jobs).slice(0, 500));
  noProblems();
});

test('R2: the project variable library names secrets', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  assert.equal((await aos.api('PUT', '/config/runtime/UI_DB', { value: 'pw-ui-4714', purpose: 'db', scope: 'project:ui' })).status, 201);
  await page.reload();
  await tab(page, 'vars');
  await page.fill('[data-testid="vars-project"]', 'ui');
  await page.locator('[data-testid="vars-project"]').press('Enter');
  const f = page.locator('[data-testid="var-form"]');
  await f.waitFor();
  await f.locator('input[name="name"]').fill('DB_PASSWORD');
  await f.locator('select[name="secret"]').selectOption('UI_DB');
  await f.locator('input[name="purpose"]').fill('the database');
  await f.locator('button[type="submit"]').click();
  await page.locator('tr[data-var="DB_PASSWORD"]').waitFor();
  const v = (await aos.api('GET', '/projects/ui/vars')).body.vars;
  assert.deepEqual(v.map((x) => [x.name, x.secret]), [['DB_PASSWORD', 'UI_DB']]);
  assert.doesNotMatch(await page.content(), /pw-ui-4714/);
  await axe(page, '/memory vars');
  await page.locator('tr[data-var="DB_PASSWORD"] button.danger').click();
  await page.locator('tr[data-var="DB_PASSWORD"]').waitFor({ state: 'detached' });
  noProblems();
});

test('every tab in Chinese, no English left', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/memory');
  await setLang(page, 'zh-CN');
  await search(page, 'refund', 'hybrid');
  await checkLanguage(page, 'zh-CN', '/memory items');
  await page.click('[data-testid="mem-clear"]');
  await page.locator('[data-testid="mem-more"]').waitFor();
  await checkLanguage(page, 'zh-CN', '/memory list');
  await page.selectOption('[data-testid="mem-show"]', 'deleted');
  await page.locator('[data-testid="mem-deleted"] [data-testid="deleted-at"]').first().waitFor();
  await checkLanguage(page, 'zh-CN', '/memory deleted');
  await axe(page, '/memory deleted zh-CN');
  await page.screenshot({ path: join(SHOTS, 'memory-zh-light-deleted.png'), fullPage: true });
  await page.selectOption('[data-testid="mem-show"]', 'live');
  for (const k of ['profile', 'blueprints', 'vars']) {
    await tab(page, k);
    await page.locator('[role="tabpanel"] form, [role="tabpanel"] ul').first().waitFor();
    await checkLanguage(page, 'zh-CN', `/memory ${k}`);
    await axe(page, `/memory ${k} zh-CN`);
  }
  await setLang(page, 'en');
  noProblems();
});
