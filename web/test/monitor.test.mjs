// monitor.test.mjs - the Monitor page in a real browser against a real
// aosd (every span sampled) with real traffic: tool calls through the
// gateway (two failing), tasks (one failing, for the Analyzer), log lines
// tied to a task's trace and span, a trace of 10,000 spans ingested over
// OTLP/HTTP, and a timeout storm on a real MCP server that hangs.
// M1 the charts draw the metric history's points and the range picker
// changes the step asked for. M2 log search finds a known line and opens
// its trace; the live tail shows a line written after it opened (in a
// cookie session too, over EventSource). M3 the trace search finds the
// big trace; its waterfall nests the known spans, holds a window of rows
// (not 10,000), moves and folds by keyboard, shows a span's attributes
// and log lines; the topology draws /api/topology's nodes and edges.
// The Analyzer's suggestions open their trace and log lines, and an Admin
// raises a timed-out server's timeout_ms from one (a Viewer may not).
// Both languages and themes, phone width, a Viewer, axe-core; no console
// error. The page and uPlot load as a chunk only when Monitor opens.
// Waits for states, never for time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setup, axe, checkLanguage, setLang, setTheme, SHOTS, ROOT, join } from './lib.mjs';
import { waitReady } from '../../tests/e2e/lib.mjs';

const hex = (n) => randomBytes(n).toString('hex');
let env, owner;
const ids = {};
const until = async (what, fn, tries = 200) => {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/* A trace of 10,000 spans: "big root" > 99 "batch i" > 100 "item i.j"
 * each, posted to /v1/traces in five requests; item 7.7 failed. */
async function bigTrace() {
  const trace = hex(16), root = hex(8);
  const t0 = BigInt(Date.now() - 60000) * 1000000n;
  const ns = (ms) => String(t0 + BigInt(Math.round(ms * 1e6)));
  const spans = [{ traceId: trace, spanId: root, name: 'big root', kind: 2, startTimeUnixNano: ns(0), endTimeUnixNano: ns(5000), status: { code: 1 } }];
  for (let i = 0; i < 99; i++) {
    const b = hex(8);
    spans.push({ traceId: trace, spanId: b, parentSpanId: root, name: `batch ${i}`, kind: 1, startTimeUnixNano: ns(i * 50), endTimeUnixNano: ns(i * 50 + 45), attributes: [{ key: 'batch.index', value: { intValue: String(i) } }] });
    for (let j = 0; j < 100; j++) {
      spans.push({ traceId: trace, spanId: hex(8), parentSpanId: b, name: `item ${i}.${j}`, kind: 3, startTimeUnixNano: ns(i * 50 + j * 0.4), endTimeUnixNano: ns(i * 50 + j * 0.4 + 0.3), status: i === 7 && j === 7 ? { code: 2, message: 'item 7.7 broke' } : { code: 0 } });
    }
  }
  assert.equal(spans.length, 10000);
  const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-svc' } }] };
  for (let k = 0; k < spans.length; k += 2000) {
    const r = await env.aos.api('POST', '/v1/traces', { resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 'monitor-ui-test' }, spans: spans.slice(k, k + 2000) }] }] });
    assert.equal(r.status, 200, r.text);
  }
  return { trace, root };
}

before(async () => {
  env = await setup({ args: ['--trace-sample', '1'] }); // search and topology read sampled spans
  const { aos } = env;
  for (let i = 0; i < 4; i++) assert.equal((await aos.api('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: { message: `m${i}` } })).status, 200);
  assert.equal((await aos.api('POST', '/mcp/call', { server: 'aos', tool: 'no-such-tool', args: {} })).status, 404);
  assert.equal((await aos.api('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: {} })).status, 400); // a failed call
  const run = await aos.api('POST', '/api/run', { goal: 'monitor probe', dsl: 'step hello: aos__echo message="x"\nstep bye: aos__echo message="y"' });
  assert.equal(run.status, 201, run.text);
  ids.task = run.body.trace_id;
  const fail = await aos.api('POST', '/api/run', { goal: 'monitor failure', dsl: 'step broken: aos__nope' });
  assert.equal(fail.status, 201, fail.text);
  ids.failed = fail.body.trace_id;
  // the task's trace, done: the span of step hello gets a log line
  const tr = await until('the task trace', async () => {
    const r = await aos.api('GET', `/api/traces/${ids.task}`);
    return r.status === 200 && r.body.span_count >= 5 ? r.body : null;
  });
  const flat = [];
  const walk = (l) => { for (const s of l) { flat.push(s); walk(s.children || []); } };
  walk(tr.spans);
  ids.hello = flat.find((s) => s.name === 'step hello').span_id;
  ids.root = flat.find((s) => !s.parent_span_id).span_id;
  const lg = await aos.api('POST', '/api/logs', { entries: [
    { level: 'warn', message: 'disk nearly full during monitor probe', source: 'mon-test', trace_id: ids.task, span_id: ids.hello },
    { level: 'info', message: 'probe finished without span', source: 'mon-test', trace_id: ids.task },
  ] });
  assert.equal(lg.status, 201, lg.text);
  Object.assign(ids, { big: await bigTrace() });
  // the history has sampled the gateway's calls (once a second)
  await until('the metric history', async () => {
    const r = await aos.api('GET', `/api/metrics/query?name=aos_mcp_calls_total&fn=increase&from=${Math.floor(Date.now() / 1000) - 900}&step=5`);
    return r.status === 200 && r.body.series.some((s) => s.points.some((p) => p[1] > 0));
  });
  await until('the analyzer', async () => (await aos.api('GET', '/api/analyzer/suggestions')).body.suggestions?.length > 0);
  owner = await env.newPage();
});
after(async () => { await env?.close(); });

const tab = (page, k) => page.locator(`[role="tab"][data-tab="${k}"]`).click();

test('the Monitor is a chunk of its own, fetched when the page is first opened', async () => {
  const { page, noProblems } = await env.newPage(); // signed in on the Chat Hub
  const scripts = () => page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname).filter((p) => p.endsWith('.js')));
  await page.locator('.convs ul, .convs p').first().waitFor();
  const before = await scripts();
  await page.locator('nav a[data-page="monitor"]').click();
  await page.locator('[data-testid="chart-memory"]').waitFor();
  const added = (await scripts()).filter((p) => !before.includes(p));
  assert.equal(added.length, 1, `one chunk more: ${added}`);
  assert.match(added[0], /^\/ui\/chunk\.[A-Z0-9]+\.js$/);
  // uPlot is in it, not in what the first page loaded
  const has = async (path) => (await (await fetch(env.aos.url + path)).text()).includes('uplot');
  assert.equal(await has(added[0]), true);
  for (const p of before) assert.equal(await has(p), false, p);
  noProblems();
});

test('M1: charts of the metric history; the range picker sets the step', async () => {
  const { page, noProblems } = owner;
  const first = page.waitForResponse((r) => r.url().includes('/api/metrics/query') && r.url().includes('step=15'));
  const names = page.waitForResponse((r) => r.url().includes('/api/metrics/names'));
  const asked = [];
  const onReq = (r) => asked.push(new URL(r.url()));
  page.on('request', onReq);
  await page.goto(env.aos.url + '/telemetry');
  await names; // what the history holds, not a guess from /metrics
  await first; // 1 h (the default) at 15 s
  page.off('request', onReq);
  assert.equal(asked.filter((u) => u.pathname === '/metrics').length, 0);
  const held = new Set((await env.aos.api('GET', '/api/metrics/names')).body.names.map((n) => n.name));
  for (const u of asked.filter((u) => u.pathname === '/api/metrics/query'))
    assert.ok(held.has(u.searchParams.get('name')), u.searchParams.get('name'));
  for (const id of ['throughput', 'latency', 'errors', 'cpu', 'memory']) {
    await page.waitForFunction((id) => Number(document.querySelector(`[data-testid="chart-${id}"]`)?.dataset.points) > 0, id);
    assert.equal(await page.locator(`[data-testid="chart-${id}"] canvas`).count() > 0, true, id);
  }
  // the lines the API has: the gateway's calls (and a failure among them)
  const chart = page.locator('[data-testid="chart-throughput"]');
  assert.match(await chart.locator('.legend').innerText(), /HTTP requests[\s\S]*Gateway calls/);
  assert.match(await page.locator('[data-testid="chart-errors"] .legend').innerText(), /Gateway calls failed: [\d.]+ % \(peak [1-9]/);
  // the points drawn are the history's: the RSS line's last value is the API's
  const { from, to } = { to: Math.floor(Date.now() / 1000), from: Math.floor(Date.now() / 1000) - 3600 };
  const rss = await env.aos.api('GET', `/api/metrics/query?name=process_resident_memory_bytes&from=${from}&to=${to}&step=15`);
  assert.ok(rss.body.series[0].points.length > 0);
  assert.match(await page.locator('[data-testid="chart-memory"] .legend').innerText(), /Resident memory: [\d.,]+ [MG]iB/);
  // no LLM: no tokens, and the chart says so (the history is not asked)
  await page.locator('[data-testid="chart-tokens"] [data-testid="chart-empty"]').waitFor();
  // 15 min at 5 s; 24 h at 5 min
  const fine = page.waitForResponse((r) => r.url().includes('/api/metrics/query') && r.url().includes('step=5&'));
  await page.locator('[data-testid="range"] input[value="15m"]').check();
  await fine;
  const coarse = page.waitForResponse((r) => r.url().includes('/api/metrics/query') && r.url().includes('step=300'));
  await page.locator('[data-testid="range"] input[value="24h"]').check();
  await coarse;
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-throughput"]')?.dataset.points) > 0);
  await page.locator('[data-testid="range"] input[value="1h"]').check();
  await axe(page, '/telemetry metrics');
  await page.screenshot({ path: join(SHOTS, 'monitor-en-light-metrics.png'), fullPage: true });
  noProblems();
});

test('M2: log search finds a known line and opens its trace; the live tail shows a new line', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/telemetry');
  await tab(page, 'logs');
  await page.fill('[data-testid="log-q"]', 'disk nearly full');
  await page.selectOption('[data-testid="log-level"]', 'warn');
  await page.click('[data-testid="log-search"]');
  const row = page.locator('[data-testid="log-results"] tr', { hasText: 'disk nearly full during monitor probe' });
  // the one line of that text at warn or above (no other line lists)
  await page.waitForFunction(() => {
    const r = document.querySelectorAll('[data-testid="log-results"] tbody tr.row1');
    return r.length === 1 && r[0].innerText.includes('disk nearly full during monitor probe');
  });
  // filters: a source that has no line finds none
  await page.fill('[data-testid="log-source"]', 'nobody');
  await page.click('[data-testid="log-search"]');
  await page.locator('[data-testid="logs-none"]').waitFor();
  await page.fill('[data-testid="log-source"]', 'mon-test');
  await page.fill('[data-testid="log-q"]', '');
  await page.selectOption('[data-testid="log-level"]', '');
  await page.fill('[data-testid="log-trace"]', ids.task);
  await page.click('[data-testid="log-search"]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-results"] tbody tr.row1').length === 2);
  await axe(page, '/telemetry logs');
  // drill-down: the line's trace opens in the waterfall
  await row.locator('[data-testid="log-trace-link"]').click();
  await page.locator('[data-testid="waterfall"]').waitFor();
  assert.match(page.url(), new RegExp(`tab=traces&trace=${ids.task}`));
  await page.locator(`[data-testid="wf-rows"] li[data-name="step hello"][data-depth="1"][data-parent="${ids.root}"]`).waitFor();
  // the live tail: a line written after it opened shows without a reload
  await tab(page, 'logs');
  await page.fill('[data-testid="log-source"]', 'mon-tail');
  await page.click('[data-testid="tail-toggle"]');
  await page.locator('[data-testid="tail-state"][data-state="live"]').waitFor();
  await page.locator('[data-testid="tail-empty"]').waitFor();
  const r = await env.aos.api('POST', '/api/logs', { entries: [
    { level: 'info', message: 'not for this tail', source: 'elsewhere' },
    { level: 'error', message: 'tail line written after opening', source: 'mon-tail', trace_id: ids.task },
  ] });
  assert.equal(r.status, 201, r.text);
  await page.locator('[data-testid="tail-lines"] tr.log-error', { hasText: 'tail line written after opening' }).waitFor();
  assert.equal(await page.locator('[data-testid="tail-lines"] tbody tr.row1').count(), 1, 'the filter applies to the tail');
  await axe(page, '/telemetry live tail');
  await page.screenshot({ path: join(SHOTS, 'monitor-en-light-logs.png'), fullPage: true });
  await page.click('[data-testid="tail-toggle"]');
  noProblems();
});

test('M2: the live tail in a cookie session (EventSource), filtered by trace', async () => {
  const { aos } = env;
  const PASS = 'monitor-pass-phrase-1';
  assert.equal((await aos.api('POST', '/auth/users', { name: 'mon-op', password: PASS, role: 'operator' })).status, 201);
  const { page, noProblems } = await env.newPage({ token: null });
  await page.goto(aos.url + '/');
  await page.fill('input[name="name"]', 'mon-op');
  await page.fill('input[name="password"]', PASS);
  await page.click('form:has(input[name="password"]) button[type="submit"]');
  await page.locator('nav').waitFor();
  await page.goto(aos.url + `/telemetry?tab=logs&logs_trace=${ids.task}`);
  assert.equal(await page.inputValue('[data-testid="log-trace"]'), ids.task);
  await page.click('[data-testid="tail-toggle"]');
  await page.locator('[data-testid="tail-state"][data-state="live"]').waitFor();
  const r = await aos.api('POST', '/api/logs', { entries: [
    { level: 'info', message: 'cookie tail: another trace', source: 'mon-cookie', trace_id: ids.failed },
    { level: 'info', message: 'cookie tail: this trace', source: 'mon-cookie', trace_id: ids.task },
  ] });
  assert.equal(r.status, 201, r.text);
  await page.locator('[data-testid="tail-lines"] tr', { hasText: 'cookie tail: this trace' }).waitFor();
  assert.equal(await page.locator('[data-testid="tail-lines"] tbody tr.row1').count(), 1);
  noProblems();
});

test('M3: a trace of 10,000 spans - found, nested, windowed, keyboard; a span\'s attributes and log lines', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/telemetry?tab=traces');
  await page.fill('[data-testid="trace-q"]', 'big root');
  await page.click('[data-testid="trace-search"]');
  const row = page.locator(`[data-testid="traces"] tr[data-trace="${ids.big.trace}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /big root[\s\S]*big-svc[\s\S]*10000/);
  // status filter: the big trace has an error span, so "ok" leaves it out
  await page.selectOption('[data-testid="trace-status"]', 'ok');
  await page.fill('[data-testid="trace-q"]', '');
  await page.click('[data-testid="trace-search"]');
  await page.locator(`[data-testid="traces"] tr[data-trace="${ids.task}"]`).waitFor();
  assert.equal(await row.count(), 0);
  await page.selectOption('[data-testid="trace-status"]', '');
  await page.fill('[data-testid="trace-min"]', '4000'); // only the big trace lasts 5 s
  await page.click('[data-testid="trace-search"]');
  await row.waitFor();
  assert.equal(await page.locator('[data-testid="traces"] tbody tr').count(), 1);
  await axe(page, '/telemetry traces');
  await page.evaluate(() => {
    window.__longest = 0;
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); }).observe({ type: 'longtask' });
  });
  await row.locator('button.link').click();
  const wf = page.locator('[data-testid="waterfall"][data-spans="10000"]');
  await wf.waitFor({ timeout: 60000 });
  // nested: root, its batches, their items
  const rows = page.locator('[data-testid="wf-rows"]');
  assert.equal(await rows.getAttribute('data-count'), '10000');
  await rows.locator(`li[data-name="big root"][data-depth="0"][data-span="${ids.big.root}"]`).waitFor();
  const batch0 = rows.locator(`li[data-name="batch 0"][data-depth="1"][data-parent="${ids.big.root}"]`);
  await batch0.waitFor();
  const b0 = await batch0.getAttribute('data-span');
  await rows.locator(`li[data-name="item 0.0"][data-depth="2"][data-parent="${b0}"]`).waitFor();
  // a window, not 10,000 rows
  const inDom = await rows.locator('li').count();
  assert.ok(inDom > 10 && inDom < 100, `${inDom} rows in the DOM`);
  // the end of the trace is reached by scrolling, and by keyboard
  await rows.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await rows.locator('li[data-name="item 98.99"][data-depth="2"]').waitFor();
  assert.ok(await rows.locator('li').count() < 100);
  await rows.evaluate((el) => { el.scrollTop = 0; });
  await rows.locator('li[data-name="big root"] .wf-name').focus();
  await page.keyboard.press('End');
  await page.locator('[data-testid="span-details"] h2', { hasText: 'item 98.99' }).waitFor();
  await page.waitForFunction(() => document.activeElement?.closest('li')?.dataset.name === 'item 98.99');
  await page.keyboard.press('Home');
  await page.locator('[data-testid="span-details"] h2', { hasText: /^big root$/ }).waitFor();
  await page.waitForFunction(() => document.activeElement?.closest('li')?.dataset.name === 'big root');
  await page.keyboard.press('ArrowDown');
  await page.locator('[data-testid="span-details"] h2', { hasText: /^batch 0$/ }).waitFor();
  await page.waitForFunction(() => document.activeElement?.closest('li')?.dataset.name === 'batch 0');
  assert.match(await page.locator('[data-testid="span-attrs"]').innerText(), /batch\.index\s+0/);
  // fold batch 0: its 100 items leave the rows
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(() => document.querySelector('[data-testid="wf-rows"]').dataset.count === '9900');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => document.querySelector('[data-testid="wf-rows"]').dataset.count === '10000');
  const longest = await page.evaluate(() => window.__longest);
  test.diagnostic?.(`longest main-thread task opening 10,000 spans: ${Math.round(longest)} ms`);
  console.log(`# longest main-thread task opening 10,000 spans: ${Math.round(longest)} ms`);
  await page.screenshot({ path: join(SHOTS, 'monitor-en-light-waterfall.png') });
  // the failed item shows as an error with its message
  await page.goto(env.aos.url + `/telemetry?tab=traces&trace=${ids.big.trace}`);
  await wf.waitFor({ timeout: 60000 });
  await rows.evaluate((el) => { el.scrollTop = (1 + 7 * 101 + 1 + 7 - 5) * 24; }); // item 7.7, row 716
  await rows.locator('li.wf-error[data-name="item 7.7"] .wf-name').click();
  assert.match(await page.locator('[data-testid="span-status"]').innerText(), /ERROR: item 7\.7 broke/);
  // the task's trace: its log lines, in the span and in the list
  await page.goto(env.aos.url + `/telemetry?tab=traces&trace=${ids.task}`);
  await page.locator('[data-testid="waterfall"]').waitFor();
  await page.locator('[data-testid="wf-loglines"]', { hasText: 'probe finished without span' }).waitFor();
  await page.locator('[data-testid="wf-rows"] li[data-name="step hello"] .wf-name').click();
  assert.match(await page.locator('[data-testid="span-logs"]').innerText(), /disk nearly full during monitor probe/);
  assert.match(await page.locator('[data-testid="span-attrs"]').innerText(), /aos\.step\.id\s+hello/);
  await axe(page, '/telemetry waterfall');
  // from the waterfall to its log lines
  const n = (await env.aos.api('GET', `/api/logs?trace_id=${ids.task}`)).body.items.length;
  assert.ok(n >= 2);
  await page.click('[data-testid="wf-logs"]');
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="log-results"] tbody tr.row1').length === n, n);
  assert.equal(await page.inputValue('[data-testid="log-trace"]'), ids.task);
  noProblems();
});

test('M3: the topology draws /api/topology\'s nodes and edges', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/telemetry?tab=topology');
  const svg = page.locator('[data-testid="topology"]');
  await svg.waitFor();
  const topo = (await env.aos.api('GET', '/api/topology')).body;
  for (const id of ['service:aosd', 'service:big-svc', 'mcp_server:aos', 'tool:aos/echo']) {
    assert.ok(topo.nodes.some((n) => n.id === id), id);
    await svg.locator(`g[data-node="${id}"]`).waitFor();
  }
  // who called: the test's token as a client node, drawn, with an edge to the server
  const client = topo.nodes.find((n) => n.type === 'client' && n.name.startsWith('token:'));
  assert.ok(client, JSON.stringify(topo.nodes));
  assert.ok(topo.edges.some((e) => e.source === client.id && e.target === 'mcp_server:aos'));
  await svg.locator(`g.topo-client[data-node="${client.id}"]`).waitFor();
  await svg.locator(`g.topo-edge[data-source="${client.id}"][data-target="mcp_server:aos"]`).waitFor();
  assert.equal(await svg.locator('g.topo-node').count(), topo.nodes.length);
  const echo = topo.edges.find((e) => e.target === 'tool:aos/echo');
  const tr = page.locator(`[data-testid="topo-edges"] tr[data-target="tool:aos/echo"]`);
  assert.equal(await tr.getAttribute('data-calls'), String(echo.calls));
  assert.ok(echo.calls >= 4);
  // the failing call: an edge in the error colour with its count
  await svg.locator('g.topo-edge.topo-bad[data-target="tool:aos/no-such-tool"]').waitFor();
  assert.match(await svg.locator('g.topo-edge[data-target="tool:aos/no-such-tool"] text').textContent(), /1 calls, 1 errors/);
  await axe(page, '/telemetry topology');
  await page.screenshot({ path: join(SHOTS, 'monitor-en-light-topology.png'), fullPage: true });
  noProblems();
});

test('the Analyzer\'s suggestions and their actions', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/telemetry?tab=analyzer');
  const li = page.locator('[data-testid="suggestions"] li', { hasText: 'aos__nope' });
  await li.waitFor();
  await axe(page, '/telemetry analyzer');
  await li.locator(`[data-testid="suggestion-action"][data-path="/api/traces/${ids.failed}"]`).click();
  await page.locator('[data-testid="waterfall"]').waitFor();
  assert.match(page.url(), new RegExp(`trace=${ids.failed}`));
  await page.goto(env.aos.url + '/telemetry?tab=analyzer');
  await li.locator(`[data-testid="suggestion-action"][data-path="/api/logs?trace_id=${ids.failed}"]`).click();
  await page.locator('[data-testid="log-form"]').waitFor();
  assert.equal(await page.inputValue('[data-testid="log-trace"]'), ids.failed);
  noProblems();
});

test('the Analyzer: a timeout storm\'s "raise timeout_ms" done from the page (an Admin); a Viewer may not', async () => {
  const { aos } = env;
  const entry = { name: 'slowpoke', command: process.execPath, args: [join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs')], limits: { retries: 0, breaker_failures: 100 }, timeout_ms: 200 };
  assert.equal((await aos.api('POST', '/mcp/registry', entry)).status, 201);
  await waitReady(aos, 'slowpoke');
  // the gateway raises an anomaly at the third same failure within 60 s
  for (let i = 0; i < 3; i++) assert.equal((await aos.api('POST', '/mcp/call', { server: 'slowpoke', tool: 'hang', args: {} })).status, 504);
  await until('the timeout storm', async () => (await aos.api('GET', '/api/analyzer/suggestions')).body.suggestions.some((x) => x.rule === 'timeout_storm'));
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/telemetry?tab=analyzer');
  const li = page.locator('[data-testid="suggestions"] li[data-rule="timeout_storm"]');
  await li.locator('h3', { hasText: 'Calls to slowpoke/hang keep timing out' }).waitFor();
  await li.locator('[data-testid="suggestion-action"][data-path="/mcp/registry/slowpoke"]', { hasText: 'Raise timeout_ms' }).click();
  const form = li.locator('[data-testid="raise-form"]');
  await form.locator('input[name="v"]').fill('5000');
  await axe(page, '/telemetry analyzer, raising timeout_ms');
  await form.locator('button[type="submit"]').click();
  await page.locator('p.ok[role="status"]', { hasText: 'slowpoke: timeout_ms is now 5000.' }).waitFor();
  assert.equal((await aos.api('GET', '/mcp/registry/slowpoke')).body.timeout_ms, 5000);
  // the server's health: Integrations
  await li.locator('[data-testid="suggestion-action"]', { hasText: 'Server health' }).click();
  await page.waitForURL((u) => u.pathname === '/integrations');
  noProblems();
  // a Viewer sees the suggestion, not the Admin's action
  const v = await aos.api('POST', '/auth/tokens', { name: 'mon-viewer-2', role: 'viewer' });
  const viewer = await env.newPage({ token: v.body.token });
  await viewer.page.goto(env.aos.url + '/telemetry?tab=analyzer');
  const btn = viewer.page.locator('[data-testid="suggestions"] li[data-rule="timeout_storm"] [data-testid="suggestion-action"]', { hasText: 'Raise timeout_ms' });
  await btn.waitFor();
  assert.equal(await btn.isDisabled(), true);
  await axe(viewer.page, '/telemetry analyzer as a viewer');
  viewer.noProblems();
});

test('both languages and themes, phone width, a Viewer', async () => {
  const { page, noProblems } = owner;
  for (const l of ['zh-CN', 'en']) {
    await setLang(page, l);
    for (const th of ['dark', 'light']) {
      await setTheme(page, th);
      for (const k of ['metrics', 'logs', 'traces', 'topology', 'analyzer']) {
        await page.goto(env.aos.url + `/telemetry?tab=${k}`);
        await page.locator(`[role="tab"][data-tab="${k}"][aria-selected="true"]`).waitFor();
        const ready = { metrics: '[data-testid="chart-memory"][data-points]:not([data-points="0"])', logs: '[data-testid="log-results"], [data-testid="logs-none"]', traces: '[data-testid="traces"]', topology: '[data-testid="topology"]', analyzer: '[data-testid="suggestions"]' }[k];
        await page.locator(ready).first().waitFor();
        await checkLanguage(page, l, `/telemetry ${k} (${th})`);
        await axe(page, `/telemetry ${k} (${l}, ${th})`);
        if (k === 'metrics' || k === 'topology') await page.screenshot({ path: join(SHOTS, `monitor-${l}-${th}-${k}.png`), fullPage: true });
      }
    }
  }
  await page.goto(env.aos.url + `/telemetry?tab=traces&trace=${ids.task}`);
  await setLang(page, 'zh-CN');
  await page.locator('[data-testid="waterfall"] h2', { hasText: '瀑布图' }).waitFor();
  await checkLanguage(page, 'zh-CN', '/telemetry waterfall');
  await setLang(page, 'en');
  // phone width: the page never scrolls sideways
  await page.setViewportSize({ width: 390, height: 844 });
  for (const k of ['metrics', 'logs', 'traces', 'topology', 'analyzer']) {
    await page.goto(env.aos.url + `/telemetry?tab=${k}`);
    await page.locator(`[role="tab"][data-tab="${k}"][aria-selected="true"]`).waitFor();
    if (k === 'metrics') await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-cpu"]')?.dataset.points) > 0);
    if (k === 'topology') await page.locator('[data-testid="topology"]').waitFor();
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(w <= 390, `${k}: no sideways scrolling at phone width (${w} px)`);
    await page.screenshot({ path: join(SHOTS, `monitor-en-light-phone-${k}.png`), fullPage: true });
  }
  await page.goto(env.aos.url + `/telemetry?tab=traces&trace=${ids.big.trace}`);
  await page.locator('[data-testid="waterfall"][data-spans="10000"]').waitFor({ timeout: 60000 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= 390, 'the waterfall at phone width');
  await page.setViewportSize({ width: 1280, height: 860 });
  noProblems();
  // a Viewer reads every view
  const v = await env.aos.api('POST', '/auth/tokens', { name: 'mon-viewer', role: 'viewer' });
  assert.equal(v.status, 201, v.text);
  const viewer = await env.newPage({ token: v.body.token });
  await viewer.page.goto(env.aos.url + '/telemetry');
  await viewer.page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-throughput"]')?.dataset.points) > 0);
  await viewer.page.goto(env.aos.url + `/telemetry?tab=traces&trace=${ids.task}`);
  await viewer.page.locator('[data-testid="waterfall"]').waitFor();
  await axe(viewer.page, '/telemetry as a viewer');
  viewer.noProblems();
});
