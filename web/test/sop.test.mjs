// sop.test.mjs - P3, the visual SOP editor on the Projects page, in a real
// browser against a real aosd: a blueprint with every field a step may
// carry opens in the editor and comes out as the same JSON (the round
// trip); a 3-step blueprint with an approval gate built through the
// editor (the tool picked from tools/list, its arguments from its input
// schema), saved (v1), reordered with the keyboard and saved again (v2),
// the diff between the two shown, v2 run, and the API agreeing at each
// step; Chinese, axe-core, no console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, axe, checkLanguage, setLang, SHOTS, join } from './lib.mjs';

let env, owner;
before(async () => {
  env = await setup();
  owner = await env.newPage();
});
after(async () => { await env?.close(); });

const editorJson = async (page) => {
  const d = page.locator('[data-testid="sop-editor"] details', { has: page.locator('[data-testid="sop-json"]') });
  if (!(await d.evaluate((e) => e.open))) await d.locator('summary').click();
  return JSON.parse(await page.locator('[data-testid="sop-json"]').innerText());
};

test('P3: a blueprint with every step field opens and saves as the same JSON (round trip)', async () => {
  const { page, noProblems } = owner;
  const body = {
    project_id: 'shop', name: 'rich', description: 'all the fields',
    params: { who: { description: 'whom to greet', default: 'world', required: false }, n: { default: 2 } },
    spec: {
      goal: 'greet ${params.who}', project_id: 'shop', inputs: { file: 'a.csv', rows: 3 }, constraints: { budget_cny: 1 },
      plan: { steps: [
        { id: 'hello', tool: 'aos__echo', args: { message: 'hi ${params.who}', extra: [1, { x: true }] },
          check: { non_empty: true, contains: 'hi', schema: { type: 'string' } }, retry: 2, timeout_ms: 5000, optional: false },
        { id: 'gate', approval: { message: 'go on with ${hello.result}?', timeout_s: 600, on_timeout: 'downgrade' } },
        { id: 'again', tool: 'aos__echo', args: { message: '${hello.result}' }, retry: { max: 1, backoff_ms: 100 }, fallback: 'aos__echo',
          when: "${gate.decision} != 'abort'" },
        { id: 'm1', milestone: 'greeted' },
      ] },
    },
  };
  const r = await env.aos.api('POST', '/api/memory/blueprints', body);
  assert.equal(r.status, 201, r.text);
  const id = r.body.id;
  const stored = (await env.aos.api('GET', `/api/memory/blueprints/${id}`)).body;
  const want = { description: stored.description, spec: stored.spec, params: stored.params };
  await page.goto(`${env.aos.url}/projects?tab=sop&bp=${id}`);
  await page.locator('[data-testid="sop-editor"][data-version="1"]').waitFor();
  await page.locator('[data-testid="sop-steps"] li[data-step="m1"]').waitFor();
  assert.deepEqual(await editorJson(page), want);
  // every step opened in the editor, nothing touched: still the same JSON
  for (const s of ['hello', 'gate', 'again', 'm1']) {
    await page.click(`[data-testid="sop-pick-${s}"]`);
    await page.locator(`[data-testid="sop-step"][data-step="${s}"]`).waitFor();
  }
  assert.deepEqual(await editorJson(page), want);
  assert.equal(await page.locator('[data-testid="sop-save"]').isDisabled(), true, 'nothing to save');
  // the fields show what the JSON says
  await page.click('[data-testid="sop-pick-hello"]');
  const st = page.locator('[data-testid="sop-step"]');
  assert.equal(await st.locator('input[name="message"]').inputValue(), 'hi ${params.who}');
  assert.equal(await st.locator('[data-testid="sop-check-nonempty"]').isChecked(), true);
  assert.equal(await st.locator('[data-testid="sop-check-contains"]').inputValue(), 'hi');
  assert.equal(await st.locator('[data-testid="sop-retry-max"] input').inputValue(), '2');
  assert.equal(await st.locator('[data-testid="sop-timeout-ms"] input').inputValue(), '5000');
  assert.deepEqual(JSON.parse(await st.locator('textarea[name="extra"]').inputValue()), [1, { x: true }]);
  // an edit changes its field only: retry 2 -> {max: 3}, contains removed
  await st.locator('[data-testid="sop-retry-max"] input').fill('3');
  await st.locator('[data-testid="sop-check-contains"]').fill('');
  const edited = structuredClone(want);
  edited.spec.plan.steps[0].retry = { max: 3 };
  delete edited.spec.plan.steps[0].check.contains;
  assert.deepEqual(await editorJson(page), edited);
  // a field that does not parse stops the save (the draft would not be what the page shows)
  await st.locator('textarea[name="extra"]').fill('[1, ');
  await page.click('[data-testid="sop-save"]');
  await page.locator('[data-testid="sop-editor"] .error', { hasText: 'valid value' }).first().waitFor();
  assert.equal((await env.aos.api('GET', `/api/memory/blueprints/${id}`)).body.version, 1);
  await st.locator('textarea[name="extra"]').fill('[1, {"x": true}]');
  assert.deepEqual(await editorJson(page), edited);
  await page.click('[data-testid="sop-save"]');
  await page.locator('[data-testid="sop-editor"][data-version="2"]').waitFor();
  const v2 = (await env.aos.api('GET', `/api/memory/blueprints/${id}`)).body;
  assert.equal(v2.version, 2);
  assert.deepEqual({ description: v2.description, spec: v2.spec, params: v2.params }, edited);
  assert.deepEqual(await editorJson(page), edited);
  // the API's TaskSpec check and plan validation accept it
  const inst = await env.aos.api('POST', `/api/memory/blueprints/${id}/instantiate`, { params: {} });
  assert.equal(inst.status, 200, inst.text);
  noProblems();
});

test('P3: a 3-step blueprint with an approval gate built in the editor, reordered, v2 diffed and run', async () => {
  const { page, noProblems } = owner;
  await page.goto(`${env.aos.url}/projects`);
  await page.click('[data-testid="prj-tab-sop"], #prj-tab-sop');
  await page.click('[data-testid="sop-new"]');
  await page.fill('[data-testid="sop-new-project"]', 'shop');
  await page.fill('[data-testid="sop-new-name"]', 'three');
  await page.fill('[data-testid="sop-goal"]', 'three steps');
  const st = page.locator('[data-testid="sop-step"]');
  // step 1: a tool from tools/list, its argument from the input schema
  await page.click('[data-testid="sop-add-tool"]');
  await st.locator('[data-testid="sop-tool"] option[value="aos__echo"]').waitFor({ state: 'attached' });
  await st.locator('[data-testid="sop-tool"]').selectOption('aos__echo');
  await st.locator('input[name="message"]').fill('one');
  // step 2: the approval gate
  await page.click('[data-testid="sop-add-approval"]');
  await st.locator('[data-testid="sop-approval-message"]').fill('go on?');
  await st.locator('[data-testid="sop-approval-ontimeout"]').selectOption('abort');
  // step 3: another tool step
  await page.click('[data-testid="sop-add-tool"]');
  await st.locator('[data-testid="sop-tool"]').selectOption('aos__echo');
  await st.locator('input[name="message"]').fill('three');
  await st.locator('[data-testid="sop-check-nonempty"]').check();
  // the references in scope of step 3 are offered in its text fields
  const offered = await st.locator('input[name="message"]').evaluate((i) => [...(i.list?.options || [])].map((o) => o.value));
  for (const r of ['${s1.result}', '${gate2.decision}', '${task.workspace}']) assert.ok(offered.includes(r), `${r} in ${offered}`);
  assert.ok(!offered.includes('${s3.result}'), 'not its own result');
  const ids = () => page.locator('[data-testid="sop-steps"] > li').evaluateAll((l) => l.map((x) => x.dataset.step));
  assert.deepEqual(await ids(), ['s1', 'gate2', 's3']);
  await axe(page, '/projects SOP editor (new)');
  await page.click('[data-testid="sop-save"]');
  await page.locator('[data-testid="sop-editor"][data-version="1"]').waitFor();
  const list = (await env.aos.api('GET', '/api/memory/blueprints?project_id=shop')).body.blueprints;
  const bp = list.find((b) => b.name === 'three');
  assert.ok(bp, JSON.stringify(list));
  const v1 = (await env.aos.api('GET', `/api/memory/blueprints/${bp.id}`)).body;
  assert.deepEqual(v1.spec, {
    goal: 'three steps',
    plan: { steps: [
      { id: 's1', tool: 'aos__echo', args: { message: 'one' } },
      { id: 'gate2', approval: { message: 'go on?', on_timeout: 'abort' } },
      { id: 's3', tool: 'aos__echo', args: { message: 'three' }, check: { non_empty: true } },
    ] },
  });
  assert.deepEqual(await editorJson(page), { description: v1.description, spec: v1.spec, params: v1.params });
  // reorder with the keyboard: s3 before the gate
  await page.focus('[data-testid="sop-pick-s3"]');
  await page.keyboard.press('Alt+ArrowUp');
  assert.deepEqual(await ids(), ['s1', 's3', 'gate2']);
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'sop-pick-s3'); // focus follows the step
  // and with the buttons: down and up again
  await page.click('[data-testid="sop-down-s1"]');
  assert.deepEqual(await ids(), ['s3', 's1', 'gate2']);
  await page.click('[data-testid="sop-up-s1"]');
  assert.deepEqual(await ids(), ['s1', 's3', 'gate2']);
  await page.click('[data-testid="sop-save"]');
  await page.locator('[data-testid="sop-editor"][data-version="2"]').waitFor();
  await page.locator('[data-testid="sop-msg"]', { hasText: 'version 2' }).waitFor();
  const v2 = (await env.aos.api('GET', `/api/memory/blueprints/${bp.id}`)).body;
  assert.equal(v2.version, 2);
  assert.deepEqual(v2.spec.plan.steps.map((s) => s.id), ['s1', 's3', 'gate2']);
  assert.deepEqual(await editorJson(page), { description: v2.description, spec: v2.spec, params: v2.params });
  const vers = (await env.aos.api('GET', `/api/memory/blueprints/${bp.id}/versions`)).body.versions;
  assert.deepEqual(vers.map((v) => v.version), [1, 2]);
  // the diff v1 -> v2: the gate's lines removed where it was and added after s3
  const diff = page.locator('[data-testid="sop-versions"] [data-testid="diff"]');
  await diff.waitFor();
  assert.ok(await diff.locator('.del').count() > 0 && await diff.locator('.add').count() > 0, await diff.innerText());
  assert.match(await diff.locator('.add, .del').allInnerTexts().then((x) => x.join('\n')), /gate2|s3/);
  await axe(page, '/projects SOP editor, v2 and its diff');
  await page.screenshot({ path: join(SHOTS, 'projects-en-light-sop.png'), fullPage: true });
  // run v2: it waits at the gate after s1 and s3 ran
  await page.locator('[data-testid="sop-run-version"]').selectOption('2');
  await page.click('[data-testid="sop-run-submit"]');
  await page.locator('[data-testid="sop-ran"]').waitFor();
  await page.click('[data-testid="sop-open-run"]');
  await page.waitForURL((u) => u.searchParams.get('trace'));
  const trace = new URL(page.url()).searchParams.get('trace');
  await page.locator('[data-testid="run"] [data-testid="run-status"]', { hasText: 'waiting' }).waitFor({ timeout: 20000 });
  let ep = (await env.aos.api('GET', `/api/episodes/${trace}`)).body;
  assert.deepEqual(ep.spec.plan.steps.map((s) => s.id), ['s1', 's3', 'gate2']);
  const ok = await env.aos.api('POST', '/agent/approve', { trace_id: trace, step_id: 'gate2', decision: 'approve', comment: 'sop test' });
  assert.equal(ok.status, 200, ok.text);
  await page.locator('[data-testid="run"] [data-testid="run-status"]', { hasText: 'done' }).waitFor({ timeout: 20000 });
  ep = (await env.aos.api('GET', `/api/episodes/${trace}`)).body;
  assert.equal(ep.status, 'done');
  const order = ep.steps.filter((s) => s.kind !== 'plan').map((s) => s.id);
  assert.deepEqual(order, ['s1', 's3', 'gate2']);
  noProblems();
});

test('P3: a version saved elsewhere since the editor opened is not overwritten', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  const bp = (await aos.api('GET', '/api/memory/blueprints?project_id=shop')).body.blueprints.find((b) => b.name === 'rich');
  await page.goto(`${aos.url}/projects?tab=sop&bp=${bp.id}`);
  await page.locator('[data-testid="sop-editor"][data-version="2"]').waitFor();
  const cur = (await aos.api('GET', `/api/memory/blueprints/${bp.id}`)).body;
  const put = await aos.api('PUT', `/api/memory/blueprints/${bp.id}`, { description: 'saved elsewhere', spec: cur.spec, params: cur.params });
  assert.equal(put.status, 200, put.text);
  await page.fill('[data-testid="sop-goal"]', 'my edit');
  await page.click('[data-testid="sop-save"]');
  await page.locator('[data-testid="sop-editor"] .error', { hasText: 'Version 3' }).waitFor();
  const now = (await aos.api('GET', `/api/memory/blueprints/${bp.id}`)).body;
  assert.equal(now.version, 3, 'nothing written over version 3');
  assert.equal(now.description, 'saved elsewhere');
  assert.notEqual(now.spec.goal, 'my edit');
  await page.click('[data-testid="sop-restart"]');
  await page.locator('[data-testid="sop-editor"][data-version="3"]').waitFor();
  assert.equal(await page.locator('[data-testid="sop-description"]').inputValue(), 'saved elsewhere');
  noProblems();
});

test('P3 for a Viewer: the steps and versions, read only, no run', async () => {
  const minted = await env.aos.api('POST', '/auth/tokens', { name: 'sop-viewer', role: 'viewer' });
  assert.equal(minted.status, 201, minted.text);
  const { page, noProblems } = await env.newPage({ token: minted.body.token });
  const bp = (await env.aos.api('GET', '/api/memory/blueprints?project_id=shop')).body.blueprints.find((b) => b.name === 'three');
  await page.goto(`${env.aos.url}/projects?tab=sop&bp=${bp.id}`);
  await page.locator('[data-testid="sop-editor"][data-version="2"]').waitFor();
  await page.locator('[data-testid="sop-steps"] li[data-step="gate2"]').waitFor();
  for (const x of ['sop-save', 'sop-add-tool', 'sop-new', 'sop-run', 'sop-up-s3', 'sop-remove-s3']) assert.equal(await page.locator(`[data-testid="${x}"]`).count(), 0, x);
  await page.click('[data-testid="sop-pick-s1"]');
  // (a Viewer's tools/list may not have the tool: its arguments are then JSON fields)
  assert.equal(await page.locator('[data-testid="sop-step"] [name="message"]').getAttribute('readonly'), '');
  await axe(page, '/projects SOP editor as a Viewer');
  noProblems();
});

test('P3 in Chinese: no English left, axe-core', async () => {
  const { page, noProblems } = owner;
  const list = (await env.aos.api('GET', '/api/memory/blueprints?project_id=shop')).body.blueprints;
  const bp = list.find((b) => b.name === 'three');
  await page.goto(`${env.aos.url}/projects?tab=sop&bp=${bp.id}`);
  await setLang(page, 'zh-CN');
  await page.locator('[data-testid="sop-editor"][data-version="2"]').waitFor();
  await page.click('[data-testid="sop-pick-gate2"]');
  await checkLanguage(page, 'zh-CN', '/projects SOP editor');
  await axe(page, '/projects SOP editor in zh-CN');
  await page.screenshot({ path: join(SHOTS, 'projects-zh-CN-light-sop.png'), fullPage: true });
  await setLang(page, 'en');
  noProblems();
});
