// projects.test.mjs - the Projects page in a real browser against a real
// aosd: P1 the task list filtered by status and project, a waiting task
// cancelled; P2 a run's steps with their outputs, its artifacts previewed,
// its trace, log lines and events, updated live while it waits for an
// approval; a long run's 20,000 events and log lines windowed and paged
// as the window scrolls; P4 the replay
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
  await page.locator('[data-testid="rerun-form"]').waitFor();
  await axe(page, '/projects re-run form');
  await page.click('[data-testid="rerun-submit"]');
  await page.waitForURL((u) => u.searchParams.get('trace') && u.searchParams.get('trace') !== traces.done);
  const again = new URL(page.url()).searchParams.get('trace');
  await page.locator('[data-testid="run"] [data-testid="run-status"]', { hasText: 'done' }).waitFor();
  const ep = (await env.aos.api('GET', `/api/episodes/${again}`)).body;
  assert.equal(ep.rerun_of, traces.done);
  assert.equal(ep.from_step, 'middle');
  await page.locator(`tr[data-trace="${again}"]`).waitFor({ timeout: 10000 });
  noProblems();
});

test('P4: a re-run from a chosen step with changed inputs (the inputs form)', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  const r = await aos.api('POST', '/api/run', {
    goal: 'greet twice', project_id: 'shop', inputs: { who: 'ann', times: 2 },
    dsl: 'step first: aos__echo message="hello ${inputs.who}"\nstep second: aos__echo message="bye ${inputs.who} x${inputs.times}"',
  });
  assert.equal(r.status, 201, r.text);
  const tr = r.body.trace_id;
  await page.goto(`${aos.url}/projects?trace=${tr}`);
  const run = page.locator('[data-testid="run"]');
  await run.locator('[data-testid="run-status"]', { hasText: 'done' }).waitFor({ timeout: 20000 });
  await run.locator('[data-testid="rerun-second"]').click();
  const form = page.locator('[data-testid="rerun-form"]');
  // the form starts with the run's inputs
  assert.equal(await form.locator('input[data-input="who"]').inputValue(), 'ann');
  assert.equal(await form.locator('input[data-input="times"]').inputValue(), '2');
  // a JSON member that is not JSON is refused in the page, nothing sent
  const jobs = (await aos.api('GET', '/api/jobs?limit=50')).body.jobs.length;
  await form.locator('input[data-input="times"]').fill('three');
  await page.click('[data-testid="rerun-submit"]');
  await form.locator('.error').waitFor();
  assert.equal((await aos.api('GET', '/api/jobs?limit=50')).body.jobs.length, jobs);
  await form.locator('input[data-input="times"]').fill('3');
  await form.locator('input[data-input="who"]').fill('bob');
  await axe(page, '/projects re-run with inputs');
  await page.click('[data-testid="rerun-submit"]');
  await page.waitForURL((u) => u.searchParams.get('trace') && u.searchParams.get('trace') !== tr);
  const again = new URL(page.url()).searchParams.get('trace');
  await page.locator('[data-testid="run"] [data-testid="run-status"]', { hasText: 'done' }).waitFor({ timeout: 20000 });
  const ep = (await aos.api('GET', `/api/episodes/${again}`)).body;
  assert.equal(ep.rerun_of, tr);
  assert.equal(ep.from_step, 'second');
  assert.deepEqual(ep.spec.inputs, { who: 'bob', times: 3 });
  const st = Object.fromEntries(ep.steps.map((s) => [s.id, s]));
  assert.equal(st.first.status, 'reused'); // its recorded result, "hello ann"
  const out = JSON.stringify(st.second.attempts[st.second.attempts.length - 1].output);
  assert.match(out, /bye bob x3/);
  noProblems();
});

test('P2: a long run: its 20,000 events and 1,500 log lines windowed and paged, every one reachable by scrolling', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  // a run of its own with 20,000 more events and 1,500 log lines (the
  // episode route gives them 1,000 a page)
  const run = await aos.api('POST', '/api/run', { goal: 'a long run', project_id: 'shop', dsl: 'step s1: aos__echo message="long"' });
  assert.equal(run.status, 201, run.text);
  const tr = run.body.trace_id;
  let own, ownLines;
  for (let i = 0; i < 200 && !own; i++) { // done, and its steps' lines in the log
    const e = (await aos.api('GET', `/api/episodes/${tr}`)).body;
    if (e.status === 'done' && e.logs.some((l) => l.message === 'step s1 finished')) { own = e.events.length; ownLines = e.logs.length; }
    else await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(own > 0, 'the run finished');
  const EVENTS = 20000, LINES = 1500;
  for (let i = 0; i < EVENTS; i += 1000) {
    const evs = Array.from({ length: 1000 }, (_, j) => ({ type: `long.step${String(i + j).padStart(5, '0')}`, trace_id: tr }));
    assert.equal((await aos.api('POST', '/api/events', evs)).status, 201);
  }
  const lines = Array.from({ length: LINES }, (_, j) => ({ message: `long line ${j}`, level: 'info', topic: 'long', trace_id: tr }));
  assert.equal((await aos.api('POST', '/api/logs', lines)).status < 300, true);
  for (let i = 0; i < 300; i++) { // the log service writes in batches
    const l = (await aos.api('GET', `/api/episodes/${tr}?logs_before=${Number.MAX_SAFE_INTEGER}&limit=1`)).body.logs;
    if (l[0]?.message === `long line ${LINES - 1}`) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.goto(aos.url + `/projects?trace=${tr}`);
  const ev = page.locator('[data-testid="run-events"]');
  await ev.locator('li').first().waitFor();
  const box = page.locator('.windowed', { has: ev });
  assert.equal(Number(await box.getAttribute('data-count')), 1000);
  await page.locator('h3', { hasText: 'Events (1000+)' }).waitFor();
  // only the rows in view (and a few either side) are in the DOM
  const inDom = await ev.locator('li').count();
  assert.ok(inDom > 5 && inDom < 60, `${inDom} event rows in the DOM`);
  assert.ok(await page.locator('[data-testid="run-logs"] tbody tr.row1').count() < 60);
  // scrolled to the end again and again: the next pages come, to the last event
  const total = own + EVENTS;
  const pages = [];
  for (let k = 0; k < 40; k++) {
    const n = Number(await box.getAttribute('data-count'));
    pages.push(n);
    if (n === total) break;
    await box.evaluate((b) => { b.scrollTop = b.scrollHeight; });
    await page.waitForFunction((n) => Number(document.querySelector('.windowed:has([data-testid="run-events"])').dataset.count) > n, n);
  }
  assert.equal(pages.at(-1), total, `the pages loaded: ${pages}`);
  assert.ok(pages.length >= 20, `a page at a time: ${pages}`);
  assert.equal(await box.getAttribute('data-more'), 'no');
  await page.locator('h3', { hasText: `Events (${total})` }).waitFor();
  await box.evaluate((b) => { b.scrollTop = b.scrollHeight; });
  await ev.locator('li', { hasText: `long.step${EVENTS - 1}` }).waitFor();
  const newest = (await aos.api('GET', `/api/episodes/${tr}?before=${Number.MAX_SAFE_INTEGER}&limit=1`)).body.events[0];
  assert.equal(await ev.locator('li').last().getAttribute('data-event'), String(newest.id));
  assert.ok(await ev.locator('li').count() < 60);
  // every event once, in order: the rows the window shows at a few offsets
  for (const at of [0.1, 0.5, 0.9]) {
    await box.evaluate((b, at) => { b.scrollTop = b.scrollHeight * at; }, at);
    await page.waitForFunction((at) => {
      const b = document.querySelector('.windowed:has([data-testid="run-events"])');
      const li = b.querySelector('li[data-event]');
      return li && Number(b.querySelector('ol').getAttribute('start')) > 1 && Math.abs(Number(b.querySelector('ol').getAttribute('start')) / Number(b.dataset.count) - at) < 0.05;
    }, at);
    const ids = (await ev.locator('li').evaluateAll((xs) => xs.map((x) => Number(x.dataset.event))));
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], 'in id order, none twice');
  }
  const logs = page.locator('.windowed', { has: page.locator('[data-testid="run-logs"]') });
  for (let k = 0; k < 5 && !(await page.locator('[data-testid="run-logs"] tr', { hasText: `long line ${LINES - 1}` }).count()); k++) {
    const n = Number(await logs.getAttribute('data-count'));
    await logs.evaluate((b) => { b.scrollTop = b.scrollHeight; });
    await page.waitForFunction((n) => {
      const b = document.querySelector('.windowed:has([data-testid="run-logs"])');
      return Number(b.dataset.count) > n || [...b.querySelectorAll('tr')].some((r) => r.textContent.includes('long line 1499'));
    }, n);
  }
  await page.locator('[data-testid="run-logs"] tr', { hasText: `long line ${LINES - 1}` }).waitFor();
  assert.equal(Number(await logs.getAttribute('data-count')), ownLines + LINES);
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
