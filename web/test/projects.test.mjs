// projects.test.mjs - the Projects page in a real browser against a real
// aosd: P1 the task list filtered by status and project, a waiting task
// cancelled; P2 a run's steps with their outputs, its artifacts previewed,
// its trace, log lines and events, updated live while it waits for an
// approval; a long run's events and log lines windowed; P4 the replay
// stepped through and a re-run from a middle step; Chinese and
// axe-core; no console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, axe, checkLanguage, setLang, SHOTS, join } from './lib.mjs';

let env, owner;
const traces = {};
before(async () => {
  env = await setup();
  owner = await env.newPage();
  const run = async (key, body) => {
    const r = await env.aos.api('POST', '/api/run', body);
    assert.equal(r.status, 201, r.text);
    traces[key] = r.body.trace_id;
  };
  await run('done', {
    goal: 'clean the sales file', project_id: 'shop',
    dsl: 'step hello: aos__echo message="first"\nstep middle: aos__echo message="second"\nstep bye: aos__echo message="third"',
    files: [{ name: 'sales.csv', content: 'month,revenue\njan,10\n' }],
  });
  await run('waiting', { goal: 'wait for me', project_id: 'ops', dsl: 'step a: aos__echo message="x"\napprove gate: "go on?"\nstep b: aos__echo message="after"' });
  await run('cancel', { goal: 'cancel me', project_id: 'ops', dsl: 'approve gate: "never"\nstep b: aos__echo message="y"' });
  for (const k of ['waiting', 'cancel']) {
    for (let i = 0; i < 100; i++) {
      const e = await env.aos.api('GET', `/api/episodes/${traces[k]}`);
      if (e.body.status === 'waiting') break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
after(async () => { await env?.close(); });

const rows = (page) => page.locator('[data-testid="jobs"] tbody tr');
const filter = (page, s) => page.locator(`[data-testid="status-filter"] input[value="${s}"]`).check();

test('P1: the task list, filtered by status and project; a waiting task cancelled', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/projects');
  await page.locator(`tr[data-trace="${traces.done}"]`).waitFor();
  assert.equal(await rows(page).count(), 3);
  await page.locator('[data-testid="conn"].conn-live').waitFor();
  await axe(page, '/projects');
  // live: a task accepted now shows up with its value event, well before
  // the list's 15 s timer
  const fresh = await env.aos.api('POST', '/api/run', { goal: 'fresh-1', project_id: 'shop', dsl: 'step s: aos__echo message="live"' });
  assert.equal(fresh.status, 201, fresh.text);
  await page.locator(`tr[data-trace="${fresh.body.trace_id}"][data-status="done"]`).waitFor({ timeout: 10000 });
  await filter(page, 'waiting');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="jobs"] tbody tr')].every((r) => r.dataset.status === 'waiting'));
  assert.equal(await rows(page).count(), 2);
  await filter(page, 'done');
  await page.waitForFunction(() => { const r = document.querySelectorAll('[data-testid="jobs"] tbody tr'); return r.length === 2 && [...r].every((x) => x.dataset.status === 'done'); });
  await filter(page, 'all');
  await page.locator(`tr[data-trace="${traces.cancel}"]`).waitFor();
  await page.fill('[data-testid="project-filter"]', 'shop');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="jobs"] tbody tr').length === 2);
  await page.fill('[data-testid="project-filter"]', '');
  const row = page.locator(`tr[data-trace="${traces.cancel}"]`);
  await row.locator('[data-testid="job-cancel"]').click();
  await page.locator(`tr[data-trace="${traces.cancel}"][data-status="cancelled"]`).waitFor();
  assert.equal((await env.aos.api('GET', `/api/episodes/${traces.cancel}`)).body.status, 'cancelled');
  noProblems();
});

test('P2: a run live - its steps, the approval decided elsewhere, the outputs', async () => {
  const { page, noProblems } = owner;
  await page.locator(`tr[data-trace="${traces.waiting}"] button.link`).click();
  const run = page.locator('[data-testid="run"]');
  await run.locator('[data-testid="run-status"]', { hasText: 'waiting' }).waitFor();
  assert.match(page.url(), new RegExp(`trace=${traces.waiting}`));
  const r = await env.aos.api('POST', '/agent/approve', { trace_id: traces.waiting, step_id: 'gate', decision: 'approve', comment: 'from the test' });
  assert.equal(r.status, 200, r.text);
  // polled while not finished: done without a reload
  await run.locator('[data-testid="run-status"]', { hasText: 'done' }).waitFor();
  await run.locator('li[data-step="b"][data-status="done"]').waitFor();
  await run.locator('li[data-step="b"] summary').click();
  assert.match(await run.locator('li[data-step="b"] [data-testid="step-output"]').innerText(), /Echo: after/);
  assert.match(await run.innerText(), /from the test/);
  noProblems();
});

test('P2/P4: artifacts and trace; the replay stepped; a re-run from a middle step', async () => {
  const { page, noProblems } = owner;
  const lg = await env.aos.api('POST', '/api/logs', { entries: [{ level: 'warn', message: 'disk nearly full during the run', source: 'ui-test', trace_id: traces.done }] });
  assert.equal(lg.status, 201, lg.text);
  await page.goto(env.aos.url + `/projects?trace=${traces.done}`);
  const run = page.locator('[data-testid="run"]');
  await run.locator('[data-testid="run-status"]', { hasText: 'done' }).waitFor();
  // the trace's log lines and events
  await run.locator('[data-testid="run-logs"] tr.log-warn', { hasText: 'disk nearly full during the run' }).waitFor();
  await run.locator('h3', { hasText: /^Events \(\d+\)$/ }).waitFor();
  assert.match(await run.locator('[data-testid="run-events"]').innerText(), /task\.acceptance[\s\S]*task\.receipt/);
  assert.deepEqual(await run.locator('[data-testid="steps"] > li').evaluateAll((l) => l.map((x) => x.dataset.step)), ['plan', 'hello', 'middle', 'bye']);
  await run.locator('[data-testid="artifact"]', { hasText: 'sales.csv' }).click();
  const table = page.locator('[data-testid="csv-table"]');
  await table.waitFor();
  assert.deepEqual(await table.locator('th').allInnerTexts(), ['month', 'revenue']);
  await run.locator('[data-testid="run-trace"]').click();
  await page.locator('[data-testid="spans"] li > span', { hasText: /^step middle$/ }).waitFor();
  await axe(page, '/projects run');
  // replay: frame by frame, nothing called again
  await page.click('[data-testid="replay-toggle"]');
  await page.locator('[data-testid="replay-step"]', { hasText: 'plan' }).waitFor();
  await page.click('[data-testid="replay-next"]');
  await page.locator('[data-testid="replay-step"]', { hasText: 'hello' }).waitFor();
  assert.match(await page.locator('[data-testid="replay-output"]').innerText(), /Echo: first/);
  await page.click('[data-testid="replay-next"]');
  await page.locator('[data-testid="replay-step"]', { hasText: 'middle' }).waitFor();
  assert.match(await page.locator('[data-testid="replay-pos"]').innerText(), /3 of 4/);
  await page.click('[data-testid="replay-prev"]');
  await page.locator('[data-testid="replay-step"]', { hasText: 'hello' }).waitFor();
  await axe(page, '/projects replay');
  await page.screenshot({ path: join(SHOTS, 'projects-en-light-run.png'), fullPage: true });
  // re-run from the middle step: a new trace, opened
  await run.locator('[data-testid="rerun-middle"]').click();
  await page.waitForURL((u) => u.searchParams.get('trace') && u.searchParams.get('trace') !== traces.done);
  const again = new URL(page.url()).searchParams.get('trace');
  await page.locator('[data-testid="run"] [data-testid="run-status"]', { hasText: 'done' }).waitFor();
  const ep = (await env.aos.api('GET', `/api/episodes/${again}`)).body;
  assert.equal(ep.rerun_of, traces.done);
  assert.equal(ep.from_step, 'middle');
  await page.locator(`tr[data-trace="${again}"]`).waitFor({ timeout: 10000 });
  noProblems();
});

test('P2: a long run: its events and log lines windowed, every one reachable by scrolling', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  // a run of its own with 1,200 more events and 1,000 log lines (the
  // episode route gives at most 1,000 of each)
  const run = await aos.api('POST', '/api/run', { goal: 'a long run', project_id: 'shop', dsl: 'step s1: aos__echo message="long"' });
  assert.equal(run.status, 201, run.text);
  const tr = run.body.trace_id;
  for (let i = 0; i < 1200; i += 600) {
    const evs = Array.from({ length: 600 }, (_, j) => ({ type: `long.step${String(i + j).padStart(4, '0')}`, trace_id: tr }));
    assert.equal((await aos.api('POST', '/api/events', evs)).status, 201);
  }
  const lines = Array.from({ length: 1000 }, (_, j) => ({ message: `long line ${j}`, level: 'info', topic: 'long', trace_id: tr }));
  assert.equal((await aos.api('POST', '/api/logs', lines)).status < 300, true);
  await page.goto(aos.url + `/projects?trace=${tr}`);
  const ev = page.locator('[data-testid="run-events"]');
  await ev.locator('li').first().waitFor();
  const box = page.locator('.windowed', { has: ev });
  const n = Number(await box.getAttribute('data-count'));
  assert.equal(n, 1000);
  await page.locator('h3', { hasText: 'Events (1000)' }).waitFor();
  // only the rows in view (and a few either side) are in the DOM
  const inDom = await ev.locator('li').count();
  assert.ok(inDom > 5 && inDom < 60, `${inDom} event rows in the DOM`);
  assert.ok(await page.locator('[data-testid="run-logs"] tbody tr.row1').count() < 60);
  // scrolled to the end: the last rows rendered, the first ones gone
  await box.evaluate((b) => { b.scrollTop = b.scrollHeight; });
  const lastType = (await aos.api('GET', `/api/episodes/${tr}`)).body.events.at(-1).type;
  await ev.locator('li', { hasText: lastType }).waitFor();
  assert.ok(await ev.locator('li').count() < 60);
  const logs = page.locator('.windowed', { has: page.locator('[data-testid="run-logs"]') });
  await logs.evaluate((b) => { b.scrollTop = b.scrollHeight; });
  await page.locator('[data-testid="run-logs"] tr', { hasText: 'long line 999' }).waitFor();
  assert.equal(await page.locator('[data-testid="run-logs"] tr', { hasText: 'long line 0' }).count(), 0);
  await axe(page, '/projects long run');
  noProblems();
});

test('in Chinese, no English left', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + `/projects?trace=${traces.done}`);
  await setLang(page, 'zh-CN');
  await page.locator('[data-testid="run"]').waitFor();
  await checkLanguage(page, 'zh-CN', '/projects');
  await axe(page, '/projects zh-CN');
  await page.screenshot({ path: join(SHOTS, 'projects-zh-CN-light-run.png'), fullPage: true });
  await setLang(page, 'en');
  noProblems();
});
