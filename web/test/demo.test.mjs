// demo.test.mjs - the acceptance demo of SPEC §12 through the UI alone, in
// a real browser, on a fresh data dir with the embedded defaults (SQLite,
// no LLM key: the offline planner runs the Action DSL). Every step is a
// click or a keystroke in the pages; the API is read only to check what
// the page says.
//   1. Agents: a local agent from the csv-analyst template, its tools bound
//      (aos__echo picked from the registry) and its SOP set, the new
//      version released (its diff confirmed), started (a real `aosd agent`
//      replica), registered in the MCP gateway (seen on Integrations).
//   2. Chat Hub: a task that cleans an uploaded CSV, asks the agent about
//      it, waits for an approval, plots it (the column asked for is not
//      there: an anomaly, and the fallback plots the right one) and lists
//      the workspace; the cards arrive live (acceptance, progress,
//      approval, anomaly); the approval decided from its card; the
//      receipt with the artifacts: the cleaned CSV as a table, the chart
//      as an image.
//   3. The run's trace timing and logs: in the receipt's trace panel and
//      the Projects run (checked against /api/traces and /api/logs); in
//      Projects the run replayed step by step and re-run from a middle
//      step, the re-run done; then Monitor: the run's waterfall (its tool
//      calls as rows) and its log lines (the failed plot step's among them).
// Screenshots of each stage go to build/screenshots/demo-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, axe, SHOTS, join } from './lib.mjs';

let env, owner;
before(async () => { env = await setup(); owner = await env.newPage(); });
after(async () => { await env?.close(); });

// The demo's CSV: a BOM, ';' separated, padded cells, mixed date and
// number formats, an empty row and a duplicate one.
const SALES = '\ufeffdate ; region ; amount ; share\n' +
  '2025-01-05 ; 北区 ; "1,200.50" ; 10%\n' +
  '2025年1月20日 ; 南区 ; ¥800 ; 5%\n' +
  '2025/2/3 ; 北区 ; 1,000 ; 7.5%\n' +
  ' ; ; ; \n' +
  '2025/2/3 ; 北区 ; 1,000 ; 7.5%\n' +
  '2025-02-14 ; 南区 ; (300) ; 2%\n' +
  '2025-03-01 ; 北区 ; 2,500 ; 20%\n';

const TASK = [
  'step clean: csv__clean path="sales.csv" output="clean.csv"',
  'milestone cleaned: "CSV cleaned"',
  'step review: analyst__run_task input="${clean.result.rows_out} rows kept of ${clean.result.rows_in}"',
  'approve gate: "Plot the cleaned sales by month?"',
  'step plot: viz__plot path="clean.csv" kind="bar" x="date" y="revenue" output="chart.svg"; fallback plot_amount',
  'step plot_amount: viz__plot path="clean.csv" kind="bar" x="date" y="amount" group_by="region" bucket="month" agg="sum" output="chart.svg" title="Sales by month"',
  'step list: files__list',
].join('\n');

const shot = (page, name) => page.screenshot({ path: join(SHOTS, `demo-${name}.png`), fullPage: true });
const PATHS = { chat: '/', agents: '/agents', integrations: '/integrations', projects: '/projects' };
const nav = async (page, p) => { await page.click(`nav [data-page="${p}"]`); await page.waitForURL((u) => u.pathname === PATHS[p]); };

let trace;

test('§12.1 Agents: a local agent created from a template, tools bound, released, started, registered', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await page.goto(aos.url + '/');
  await nav(page, 'agents');
  await page.click('[data-testid="agent-new"]');
  await page.fill('[data-testid="agent-name"]', 'analyst');
  await page.selectOption('[data-testid="agent-template"]', 'csv-analyst');
  await page.locator('[data-testid="template-info"]', { hasText: 'csv__*' }).waitFor();
  await page.click('[data-testid="agent-create"]');
  const view = page.locator('[data-testid="agent"]');
  await view.locator('h2', { hasText: 'analyst' }).waitFor();
  // bind tools: aos__echo from the registry's tools, beside the template's
  await page.locator('[data-testid="agent-config"] summary').click();
  await page.fill('[data-testid="tool-filter"]', 'aos__echo');
  await page.locator('[data-testid="tool-pick"] input[data-tool="aos__echo"]').check();
  await page.locator('[data-testid="agent-tools"] .tag', { hasText: 'aos__echo' }).waitFor();
  await page.fill('[data-testid="agent-sop"]', 'step note: aos__echo message="analyst: ${inputs.input}"');
  await page.click('[data-testid="agent-save"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: 'version 2' }).waitFor();
  // release v2: the diff from the live v1 first
  await page.click('[data-testid="release-2"]');
  await page.locator('[data-testid="release-modal"] [data-testid="diff"] .add', { hasText: 'aos__echo' }).first().waitFor();
  await page.click('[data-testid="release-confirm"]');
  await page.locator('[data-testid="versions"] tr[data-version="2"] [data-testid="live"]').waitFor();
  // start: a real replica of the runtime, ready; its "ready" line in the live logs
  await page.click('[data-testid="agent-start"]');
  await view.locator('[data-testid="agent-status"][data-status="running"]').waitFor({ timeout: 30000 });
  await page.locator('[data-testid="replicas"] tr[data-state="ready"][data-version="2"]').waitFor();
  await page.locator('[data-testid="agent-log-lines"] tr', { hasText: /agent analyst v2 replica \d+: ready/ }).first().waitFor();
  // register in the MCP gateway
  await page.click('[data-testid="agent-register"]');
  await page.locator('[data-testid="agent-registered"]', { hasText: 'analyst__run_task' }).waitFor();
  await axe(page, 'demo: the agent running');
  await shot(page, '1-agent');
  // what the page says is what aosd has
  const a = (await aos.api('GET', '/agents/analyst')).body;
  assert.equal(a.status, 'running');
  assert.equal(a.running_version, 2);
  assert.ok(a.config.tools.includes('aos__echo'), JSON.stringify(a.config.tools));
  assert.equal(a.registered, true);
  // Integrations lists it as a server of the gateway
  await nav(page, 'integrations');
  await page.locator('tr[data-server="analyst"]').waitFor();
  assert.match(await page.locator('tr[data-server="analyst"]').innerText(), /agent/);
  noProblems();
});

test('§12.2 Chat Hub: the task, its cards live, the approval from its card, the receipt and its artifacts', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await nav(page, 'chat');
  await page.locator('[data-testid="conn"].conn-live').waitFor();
  await page.check('[data-testid="mode-dsl"]');
  await page.fill('[data-testid="composer"]', TASK);
  await page.setInputFiles('[data-testid="attach"]', [{ name: 'sales.csv', mimeType: 'text/csv', buffer: Buffer.from(SALES) }]);
  await page.click('[data-testid="send"]');
  const card = (type) => page.locator(`[data-testid="cards"] article[data-type="${type}"]`);
  await card('task.acceptance').waitFor();
  trace = (await card('task.acceptance').getAttribute('data-card')).split(':')[1];
  assert.match(trace, /^[0-9a-f]{32}$/);
  const mine = (type) => page.locator(`[data-testid="cards"] article[data-type="${type}"][data-card*="${trace}"]`);
  await mine('task.progress.milestone').waitFor();
  // the approval card: the task waits for it
  const approval = mine('approval.request');
  await approval.waitFor({ timeout: 30000 });
  assert.match(await approval.innerText(), /Plot the cleaned sales by month\?/);
  assert.equal((await aos.api('GET', `/api/episodes/${trace}`)).body.status, 'waiting');
  // the progress card says how far it got: clean and the agent's review done
  assert.match(await mine('task.progress.milestone').innerText(), /review|cleaned/);
  await shot(page, '2-approval');
  await approval.locator('[data-testid="approval-comment"]').fill('the 5 rows look right');
  await approval.locator('button[data-decision="approve"]').click();
  await approval.locator('[data-testid="decided"]').waitFor();
  // the plot of a column that is not there: an anomaly card, live
  const anomaly = mine('anomaly.detected');
  await anomaly.waitFor({ timeout: 30000 });
  assert.match(await anomaly.innerText(), /plot/);
  // the receipt: done, with the artifacts
  const receipt = page.locator(`article[data-card="task:${trace}"][data-type="task.receipt"]`);
  await receipt.waitFor({ timeout: 30000 });
  assert.match(await receipt.innerText(), /done/);
  for (const n of ['clean.csv', 'chart.svg', 'sales.csv']) await receipt.locator('[data-testid="artifact"]', { hasText: n }).waitFor();
  // the cleaned CSV as a table
  await receipt.locator('[data-testid="artifact"]', { hasText: 'clean.csv' }).click();
  const table = page.locator('[data-testid="csv-table"]');
  await table.waitFor();
  assert.deepEqual(await table.locator('th').allInnerTexts(), ['date', 'region', 'amount', 'share']);
  assert.equal(await table.locator('tbody tr').count(), 5);
  assert.deepEqual(await table.locator('tbody tr').first().locator('td').allInnerTexts(), ['2025-01-05', '北区', '1200.50', '0.1']);
  // the chart as an image
  await receipt.locator('[data-testid="artifact"]', { hasText: 'chart.svg' }).click();
  await page.locator('[data-testid="workspace"] img.artifact-img').waitFor();
  await page.waitForFunction(() => (document.querySelector('[data-testid="workspace"] img.artifact-img')?.naturalWidth || 0) > 100);
  await axe(page, 'demo: the receipt');
  await shot(page, '3-receipt');
  // what the cards said is what happened
  const ep = (await aos.api('GET', `/api/episodes/${trace}`)).body;
  assert.equal(ep.status, 'done');
  const st = Object.fromEntries(ep.steps.map((s) => [s.id, s.status]));
  assert.equal(st.clean, 'done');
  assert.equal(st.review, 'done');
  assert.equal(st.plot, 'failed');
  assert.equal(st.plot_amount, 'done');
  assert.match(JSON.stringify(ep.steps.find((s) => s.id === 'review')), /analyst: 5 rows kept of 7/);
  assert.match(JSON.stringify(ep.approvals), /the 5 rows look right/);
  noProblems();
});

test('§12.3 the run\'s trace timing and logs; in Projects replayed and re-run from a middle step', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  // the trace, as the receipt's panel shows it: the agent's own tool call
  // is in the task's trace, under the step that called the agent
  const receipt = page.locator(`article[data-card="task:${trace}"][data-type="task.receipt"]`);
  await receipt.locator('[data-testid="trace-link"]').click();
  const spans = page.locator('[data-testid="spans"]');
  await spans.locator('li', { hasText: /tools\/call (analyst__)?run_task/ }).first().waitFor();
  await spans.locator('li', { hasText: /tools\/call (aos__)?echo/ }).first().waitFor();
  assert.match(await spans.innerText(), /\d+(\.\d+)? ms/);
  const tr = (await aos.api('GET', `/api/traces/${trace}`)).body;
  const all = [];
  const walk = (xs) => { for (const x of xs) { all.push(x); walk(x.children || []); } };
  walk(tr.spans);
  for (const n of [/^tools\/call csv__clean$/, /^tools\/call (analyst__)?run_task$/, /^tools\/call (aos__)?echo$/, /^tools\/call viz__plot$/])
    assert.ok(all.some((s) => n.test(s.name)), `${n} in ${all.map((s) => s.name)}`);
  // the agent's echo is under the task's call of its run_task
  const up = [];
  for (let x = all.find((s) => /echo$/.test(s.name)); x; x = all.find((s) => s.span_id === x.parent_span_id)) up.push(x.name);
  assert.equal(up[1], 'step review', `the agent's call is in the task's trace, under the step that called it: ${up}`);
  // the receipt opens the run in Projects
  await receipt.locator('[data-testid="open-run"]').click();
  await page.waitForURL((u) => u.pathname === '/projects' && u.search.includes(trace));
  const run = page.locator('[data-testid="run"]');
  await run.locator('[data-testid="run-status"]', { hasText: 'done' }).waitFor();
  for (const s of ['clean', 'review', 'gate', 'plot', 'plot_amount', 'list']) await run.locator(`[data-testid="steps"] li[data-step="${s}"]`).waitFor();
  // its logs: the lines of the trace, as /api/logs has them
  const logs = (await aos.api('GET', `/api/logs?trace_id=${trace}&limit=1000`)).body.items;
  for (const s of ['clean', 'review', 'plot', 'plot_amount', 'list']) assert.ok(logs.some((l) => l.message.startsWith(`step ${s} finished`) || l.message.startsWith(`step ${s} failed`)), `${s} in the run's log: ${logs.map((l) => l.message)}`);
  await page.locator('[data-testid="run-logs"] tr', { hasText: 'step plot failed' }).waitFor();
  await page.locator('[data-testid="run-logs"] tr', { hasText: 'step review started (analyst__run_task)' }).waitFor();
  assert.equal(Number(await page.locator('.windowed:has([data-testid="run-logs"])').getAttribute('data-count')), logs.length);
  // its trace timing from the run page
  await run.locator('[data-testid="run-trace"]').click();
  await page.locator('[data-testid="spans"] li', { hasText: /tools\/call viz__plot/ }).first().waitFor();
  await shot(page, '4-projects');
  // replay: frame by frame, nothing called again
  const jobsBefore = (await aos.api('GET', '/api/jobs?limit=50')).body.jobs.length;
  await page.click('[data-testid="replay-toggle"]');
  const rp = page.locator('[data-testid="replay"]');
  await rp.waitFor();
  await rp.locator('[data-testid="replay-step"]', { hasText: /^plan$|^clean$/ }).waitFor();
  const frames = [];
  for (let i = 0; i < 20; i++) {
    frames.push(await rp.locator('[data-testid="replay-step"]').innerText());
    if (await rp.locator('[data-testid="replay-next"]').isDisabled()) break;
    const pos = await rp.locator('[data-testid="replay-pos"]').innerText();
    await rp.locator('[data-testid="replay-next"]').click();
    await page.waitForFunction((p) => document.querySelector('[data-testid="replay-pos"]')?.textContent !== p, pos);
  }
  for (const s of ['clean', 'review', 'gate', 'plot', 'plot_amount', 'list']) assert.ok(frames.includes(s), `${s} in the replay: ${frames}`);
  assert.equal((await aos.api('GET', '/api/jobs?limit=50')).body.jobs.length, jobsBefore, 'the replay ran nothing');
  // re-run from a middle step: the plot (the steps before reuse their results)
  await run.locator('[data-testid="rerun-plot"]').click();
  await page.click('[data-testid="rerun-submit"]'); // the original inputs
  await page.waitForURL((u) => u.search.includes('trace=') && !u.search.includes(trace));
  const again = new URL(page.url()).searchParams.get('trace');
  await page.locator('[data-testid="run"] [data-testid="run-status"]', { hasText: 'done' }).waitFor({ timeout: 30000 });
  await page.locator('[data-testid="run"] [data-testid="run-artifacts"] [data-testid="artifact"]', { hasText: 'chart.svg' }).waitFor();
  await page.locator('[data-testid="run"] p', { hasText: `re-run of ${trace.slice(0, 8)}` }).waitFor();
  await axe(page, 'demo: the re-run');
  await shot(page, '5-rerun');
  const ep = (await aos.api('GET', `/api/episodes/${again}`)).body;
  assert.equal(ep.status, 'done');
  assert.equal(ep.rerun_of, trace);
  assert.equal(ep.from_step, 'plot');
  const st = Object.fromEntries(ep.steps.map((s) => [s.id, s.status]));
  assert.equal(st.clean, 'reused');
  assert.equal(st.review, 'reused');
  assert.equal(st.plot_amount, 'done');
  assert.equal(ep.approvals.length, 0, 'the re-run asked for no approval again');
  // Monitor: the run's waterfall and its log lines, as the pages show them
  await page.click('nav a[data-page="monitor"]');
  await page.waitForURL((u) => u.pathname === '/telemetry');
  await page.goto(aos.url + `/telemetry?tab=traces&trace=${trace}`);
  await page.locator('[data-testid="waterfall"]').waitFor();
  const wf = page.locator('[data-testid="wf-rows"]');
  await wf.locator('li[data-name="tools/call viz__plot"]').first().waitFor();
  await wf.locator('li[data-name="tools/call csv__clean"]').first().waitFor();
  await axe(page, 'demo: the run in Monitor');
  await shot(page, '6-monitor-trace');
  await page.goto(aos.url + `/telemetry?tab=logs&logs_trace=${trace}`);
  await page.locator('[data-testid="log-results"] tr', { hasText: 'step plot failed' }).waitFor();
  await page.locator('[data-testid="log-results"] tr', { hasText: 'step clean finished' }).waitFor();
  await shot(page, '7-monitor-logs');
  // the agent kept running through it all
  assert.equal((await aos.api('GET', '/agents/analyst')).body.status, 'running');
  noProblems();
});
