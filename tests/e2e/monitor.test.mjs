// monitor.test.mjs - the data behind Monitor (issue 18): /metrics covers
// HTTP, the gateway (OpenTelemetry's MCP metrics), the store, the sandbox
// and the process and passes promtool after real traffic; the built-in
// metric history answers GET /api/metrics/query from its rings; GET
// /api/traces finds traces by window, status, service and text and pages
// with a cursor; GET /api/topology shows aosd, the MCP server and its
// tools with call counts, errors and latency percentiles; the waterfall
// carries log lines; the Analyzer turns an anomaly into a suggestion.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAosd, backendEntry, waitReady, assertErrorShape, sleep, TOKEN, ROOT } from './lib.mjs';
import { startOpenAI } from './openai.mjs';

const FAULTY = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');

let aos, sessionOf = new Map();
before(async () => {
  aos = await startAosd({ args: ['--trace-sample', '1'] }); // search and topology read spans
  assert.equal((await aos.api('POST', '/mcp/registry', backendEntry('everything'))).status, 201);
  await waitReady(aos, 'everything');
});
after(async () => { await aos?.cleanup(); });

// A JSON-RPC exchange on /mcp of daemon a: { status, headers, body }.
async function rpc(a, msg) {
  const h = {
    Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json',
    'MCP-Protocol-Version': '2025-11-25',
  };
  if (sessionOf.get(a)) h['Mcp-Session-Id'] = sessionOf.get(a);
  const r = await fetch(a.url + '/mcp', { method: 'POST', headers: h, body: JSON.stringify(msg) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}

async function open(a) {
  if (sessionOf.get(a)) return;
  const r = await rpc(a, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'monitor-e2e', version: '1' } },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  sessionOf.set(a, r.headers.get('mcp-session-id'));
  await rpc(a, { jsonrpc: '2.0', method: 'notifications/initialized' });
}

// tools/call through /mcp; returns the trace id of aosd's span (traceparent).
async function call(name, args, id, a = aos) {
  await open(a);
  const r = await rpc(a, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const tp = r.headers.get('traceparent');
  assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  return { trace: tp.split('-')[1], body: r.body };
}

const sampleOf = (text, line) => {
  const l = text.split('\n').find((x) => x.startsWith(line + ' '));
  return l === undefined ? undefined : Number(l.slice(line.length + 1));
};

let okTraces = [], errTrace;
test('/metrics covers HTTP, MCP (OpenTelemetry names), store, sandbox and the process; promtool passes', async () => {
  for (let i = 0; i < 3; i++)
    okTraces.push((await call('everything__echo', { message: `m${i}` }, 10 + i)).trace);
  const bad = await call('everything__no-such-tool', {}, 20);
  assert.ok(bad.body.error || bad.body.result?.isError, JSON.stringify(bad.body));
  errTrace = bad.trace;
  const r = await aos.api('GET', '/metrics');
  assert.equal(r.status, 200);
  const t = r.text;
  // the process, as Prometheus' client libraries name it
  assert.ok(sampleOf(t, 'process_cpu_seconds_total') > 0, t);
  assert.ok(sampleOf(t, 'process_resident_memory_bytes') > 1 << 20);
  assert.ok(sampleOf(t, 'process_open_fds') >= 5);
  assert.ok(sampleOf(t, 'process_max_fds') >= sampleOf(t, 'process_open_fds'));
  assert.ok(sampleOf(t, 'process_threads') >= 2); // the loop and the store's worker at least
  const start = sampleOf(t, 'process_start_time_seconds');
  assert.ok(Math.abs(start - Date.now() / 1000) < 600, `start ${start}`);
  // HTTP by route pattern (not the path), method and status
  assert.match(t, /^http_server_request_duration_seconds_count\{http_request_method="POST",http_route="\/mcp",http_response_status_code="200"\} [1-9]/m);
  assert.match(t, /^http_server_request_duration_seconds_count\{http_request_method="GET",http_route="\/mcp\/registry\/:name",http_response_status_code="200"\} [1-9]/m);
  assert.ok(sampleOf(t, 'http_server_active_requests') >= 1); // this scrape
  assert.ok(sampleOf(t, 'aos_http_connections') >= 1);
  // MCP: aosd as the server of /mcp, and as the client of the upstream
  assert.match(t, /^mcp_server_operation_duration_seconds_count\{mcp_method_name="tools\/call",error_type="",network_transport="tcp"\} 3$/m);
  assert.match(t, /^mcp_server_operation_duration_seconds_count\{mcp_method_name="initialize",error_type="",network_transport="tcp"\} 1$/m);
  assert.match(t, /^mcp_client_operation_duration_seconds_count\{mcp_method_name="tools\/call",gen_ai_tool_name="echo",error_type="",server="everything"\} 3$/m);
  // (GenAI's gen_ai_client_* need an LLM: tests/unit/test_llm.c)
  // the store's worker
  assert.ok(sampleOf(t, 'aos_store_jobs_total{outcome="ok"}') > 0);
  assert.ok(sampleOf(t, 'aos_store_busy_seconds_total') > 0);
  assert.notEqual(sampleOf(t, 'aos_store_queue_depth'), undefined);
  // ... and how long its jobs took, by kind (the registry's and the rest: "other")
  assert.ok(sampleOf(t, 'aos_store_job_duration_seconds_count{kind="other"}') > 0, t);
  assert.ok(sampleOf(t, 'aos_store_job_duration_seconds_bucket{kind="other",le="0.005"}') <=
    sampleOf(t, 'aos_store_job_duration_seconds_count{kind="other"}'));
  assert.ok(sampleOf(t, 'aos_store_job_duration_max_seconds{kind="other"}') > 0);
  // the sandbox: a run through the shell tool is counted by its status
  assert.equal(sampleOf(t, 'aos_sandbox_max_running'), 8);
  assert.equal(sampleOf(t, 'aos_sandbox_runs_running'), 0);
  const run = await aos.api('POST', '/mcp/call', { server: 'shell', tool: 'run', args: { command: 'echo fine' } });
  assert.equal(run.status, 200, run.text);
  let after;
  for (let i = 0; i < 50; i++) {
    after = (await aos.api('GET', '/metrics')).text;
    if (sampleOf(after, 'aos_sandbox_runs_total{status="succeeded"}') === 1) break;
    await sleep(100);
  }
  assert.equal(sampleOf(after, 'aos_sandbox_runs_total{status="succeeded"}'), 1, after);
  assert.equal(sampleOf(after, 'aos_sandbox_run_duration_seconds_count'), 1);
  // already there: bus, orchestrator, traces, logs
  for (const name of ['aos_events_published_total', 'aos_tasks_total', 'aos_trace_spans_stored_total', 'aos_logs_entries_total'])
    assert.match(t, new RegExp(`^# TYPE ${name} counter$`, 'm'), name);
  const p = spawnSync('promtool', ['check', 'metrics'], { input: t, encoding: 'utf8' });
  assert.equal(p.status, 0, `promtool: ${p.stdout}${p.stderr}`);
});

test('the MCP server metric counts every request, also those whose trace is not sampled', async () => {
  const a = await startAosd({ args: ['--trace-sample', '0'] });
  try {
    for (let i = 0; i < 4; i++) await call('aos__echo', { message: 'x' }, 30 + i, a);
    const t = (await a.api('GET', '/metrics')).text;
    assert.match(t, /^mcp_server_operation_duration_seconds_count\{mcp_method_name="tools\/call",error_type="",network_transport="tcp"\} 4$/m);
    assert.equal(sampleOf(t, 'aos_trace_spans_stored_total'), undefined); // no span was kept
  } finally { await a.cleanup(); }
});

// Polls the history until fn(answer) holds (the sampler runs once a second).
async function untilQuery(q, fn, ms = 15000) {
  const t0 = Date.now();
  let r;
  while (Date.now() - t0 < ms) {
    r = await aos.api('GET', `/api/metrics/query?${new URLSearchParams(q)}`);
    if (r.status === 200 && fn(r.body)) return r.body;
    await sleep(250);
  }
  const m = (await aos.api('GET', '/metrics')).text.split('\n').filter((l) => /history|healthz.*_count/.test(l));
  const all = await aos.api('GET', `/api/metrics/query?name=${q.name}&fn=increase&from=${Number(q.from) - 60}&step=1`);
  assert.fail(`query ${JSON.stringify(q)} at ${Date.now() / 1000}: ${r?.text}\n${m.join('\n')}\nall: ${all.text}`);
}

test('GET /api/metrics/query: rates of counters, gauges and quantiles from the history', async () => {
  const from = Math.floor(Date.now() / 1000) - 5;
  const N = 7;
  for (let i = 0; i < N; i++)
    assert.equal((await aos.api('GET', '/healthz', undefined, null)).status, 200);
  const labels = 'http_route="/healthz",http_response_status_code="200"';
  // increases over the last minutes add up to exactly the requests made
  // (the route's series is new: counted from 0)
  const inc = await untilQuery({ name: 'http_server_request_duration_seconds_count', labels, fn: 'increase', from, step: 1 },
    (b) => b.series.length === 1 && b.series[0].points.reduce((a, [, v]) => a + v, 0) === N);
  assert.equal(inc.resolution, 1);
  assert.equal(inc.step, 1);
  assert.equal(inc.series[0].type, 'counter');
  assert.deepEqual(inc.series[0].labels, { http_request_method: 'GET', http_route: '/healthz', http_response_status_code: '200' });
  for (const [t] of inc.series[0].points) assert.ok(t >= from && Number.isInteger(t));
  // as a rate over 60 s points: increase / seconds sampled
  const rate = await aos.api('GET', `/api/metrics/query?name=http_server_request_duration_seconds_count&labels={${encodeURIComponent(labels)}}&fn=rate&from=${from}&step=60`);
  assert.equal(rate.status, 200, rate.text);
  assert.equal(rate.body.step, 60);
  assert.ok(rate.body.series[0].points.every(([, v]) => v > 0 && v <= N));
  // a gauge: the process's memory, one point a second (the sampler's), no rate
  const rss = await untilQuery({ name: 'process_resident_memory_bytes', from: from - 60, step: 1 }, (b) => b.series[0]?.points.length >= 3);
  assert.equal(rss.series[0].type, 'gauge');
  assert.ok(rss.series[0].points.every(([, v]) => v > 1 << 20));
  // quantiles of a histogram, per slot
  const q = await aos.api('GET', `/api/metrics/query?name=http_server_request_duration_seconds&labels=${encodeURIComponent(labels + ',quantile="0.99"')}&from=${from}`);
  assert.equal(q.status, 200, q.text);
  assert.equal(q.body.series.length, 1);
  assert.ok(q.body.series[0].points.length >= 1);
  assert.ok(q.body.series[0].points.every(([, v]) => v > 0 && v <= 10), q.text);
  // the history's own size is a metric, bounded
  const m = await aos.api('GET', '/metrics');
  const bytes = sampleOf(m.text, 'aos_metrics_history_bytes');
  assert.ok(bytes > 0 && bytes <= 512 * 23040, `${bytes}`);
  assert.ok(sampleOf(m.text, 'aos_metrics_history_sample_seconds') < 0.25);
  // bad queries: clear errors
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=aos_store_jobs_total'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=process_open_fds&fn=rate'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=process_open_fds&fn=median'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=process_open_fds&labels=a'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=process_open_fds&from=0&step=1'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=process_open_fds&from=20&to=10'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=process_open_fds&step=0'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=no_such_metric'), 404, 'not_found');
  assertErrorShape(assert, await aos.api('GET', '/api/metrics/query?name=process_open_fds', undefined, null), 401, 'unauthorized');
});

test('--metrics-history-series bounds the history; 0 turns it off', async () => {
  const small = await startAosd({ args: ['--metrics-history-series', '3'] });
  try {
    let t;
    for (let i = 0; i < 50; i++) {
      t = (await small.api('GET', '/metrics')).text;
      if (sampleOf(t, 'aos_metrics_history_series') === 3) break;
      await sleep(100);
    }
    assert.equal(sampleOf(t, 'aos_metrics_history_series'), 3, t);
    assert.ok(sampleOf(t, 'aos_metrics_history_series_dropped') > 50);
    assert.equal(sampleOf(t, 'aos_metrics_history_bytes'), 3 * 23040);
  } finally { await small.cleanup(); }
  const off = await startAosd({ env: { AOS_METRICS_HISTORY_SERIES: '0' } });
  try {
    await sleep(1500);
    assertErrorShape(assert, await off.api('GET', '/api/metrics/query?name=process_open_fds'), 503, 'unavailable');
    assert.equal(sampleOf((await off.api('GET', '/metrics')).text, 'aos_metrics_history_series'), 0);
  } finally { await off.cleanup(); }
});

// The history across a restart: what a daemon recorded is saved at its
// clean shutdown (and each minute) and read back by the next one on the
// same data dir, so a query for a range before the restart gets the
// points back - the 1 s ring's, the 1 min ring's and the 1 h ring's.
test('the metric history survives a restart; GET /api/metrics/names says what it holds', { timeout: 90000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'aos-e2e-'));
  let a = await startAosd({ dataDir });
  try {
    const from = Math.floor(Date.now() / 1000) - 2;
    const N = 5;
    for (let i = 0; i < N; i++) assert.equal((await a.api('GET', '/healthz', undefined, null)).status, 200);
    const name = 'http_server_request_duration_seconds_count';
    const labels = encodeURIComponent('{http_route="/healthz"}');
    const ask = (d, step, f = from) => d.api('GET', `/api/metrics/query?name=${name}&labels=${labels}&fn=increase&from=${f}&step=${step}`);
    let secs;
    for (let i = 0; i < 60; i++) { // the sampler runs once a second
      secs = await ask(a, 1);
      if (secs.status === 200 && secs.body.series[0]?.points.reduce((x, [, v]) => x + v, 0) === N) break;
      await sleep(250);
    }
    assert.equal(secs.body.series[0].points.reduce((x, [, v]) => x + v, 0), N, secs.text);
    const names = await a.api('GET', '/api/metrics/names');
    assert.equal(names.status, 200, names.text);
    const held = names.body.names.find((n) => n.name === name);
    assert.equal(held.type, 'counter');
    assert.ok(held.labels.some((l) => l.http_route === '/healthz'), JSON.stringify(held));
    assert.deepEqual(names.body.names.map((n) => n.name), [...names.body.names.map((n) => n.name)].sort());
    const pre = (await a.api('GET', '/api/metrics/names?prefix=process_')).body.names;
    assert.ok(pre.length > 0 && pre.every((n) => n.name.startsWith('process_')));
    assertErrorShape(assert, await a.api('GET', '/api/metrics/names', undefined, null), 401, 'unauthorized');
    const mins = (await ask(a, 60, from - 3600)).body, hours = (await ask(a, 3600, from - 86400 * 2)).body;
    assert.equal(mins.resolution, 60);
    assert.equal(hours.resolution, 3600);
    const stopped = Math.floor(Date.now() / 1000);
    await a.cleanup(); // SIGTERM: a clean shutdown saves the history
    a = await startAosd({ dataDir });
    // before any sample of the new process: the points come from the store
    const again = await ask(a, 1);
    assert.equal(again.status, 200, again.text);
    const before = (b) => b.series[0].points.filter(([t]) => t < stopped);
    assert.deepEqual(before(again.body), before(secs.body));
    assert.deepEqual((await ask(a, 60, from - 3600)).body.series, mins.series);
    assert.deepEqual((await ask(a, 3600, from - 86400 * 2)).body.series, hours.series);
    assert.ok((await a.api('GET', '/api/metrics/names')).body.names.some((n) => n.name === name));
  } finally {
    await a.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// Sampling at 0 with --trace-keep-errors: a trace that had an error is
// kept whole anyway (held until its error span ends, then stored), one
// that had none is not, and the Analyzer's "Trace" action names only a
// stored trace - it never 404s.
test('with --trace-sample 0 and --trace-keep-errors an error trace is still stored, and the Analyzer links to it', { timeout: 120000 }, async () => {
  const a = await startAosd({ args: ['--trace-sample', '0', '--trace-keep-errors'] });
  try {
    const ok = await a.api('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: { message: 'hi' } });
    assert.equal(ok.status, 200, ok.text);
    const okTrace = ok.headers.get('traceparent').split('-')[1];
    assert.match(ok.headers.get('traceparent'), /-00$/); // not sampled
    await timeoutStorm(a);
    const s = await slowpokeSuggestion(a);
    const link = s.actions.find((x) => x.label === 'Trace');
    assert.ok(link, JSON.stringify(s.actions));
    const tr = await a.api('GET', link.path);
    assert.equal(tr.status, 200, tr.text);
    assert.ok(tr.body.span_count >= 1, tr.text); // the gateway's SERVER span (unit tests: a whole tree)
    assert.match(tr.text, /"code":"ERROR"/);
    assert.match(tr.text, /"aos.principal":"token:/); // its attributes were recorded while held
    for (const x of s.actions.filter((y) => y.method === 'GET'))
      assert.equal((await a.api('GET', x.path)).status, 200, x.path);
    // the call without an error: not stored (held, then dropped)
    await sleep(300);
    assert.equal((await a.api('GET', `/api/traces/${okTrace}`)).status, 404);
    const m = (await a.api('GET', '/metrics')).text;
    assert.ok(sampleOf(m, 'aos_trace_tail_spans_total{outcome="kept"}') >= 2, m);
    assert.ok(sampleOf(m, 'aos_trace_tail_spans_held') >= 1, m);
  } finally { await a.cleanup(); }
});

// Without --trace-keep-errors (the default) an unsampled error trace is not
// stored, and the Analyzer offers no "Trace" action for it: none of its
// actions 404s.
test('with --trace-sample 0 and no keep, the Analyzer offers no Trace action that would 404', { timeout: 120000 }, async () => {
  const a = await startAosd({ args: ['--trace-sample', '0'] });
  try {
    await timeoutStorm(a);
    const s = await slowpokeSuggestion(a);
    assert.equal(s.actions.find((x) => x.label === 'Trace'), undefined, JSON.stringify(s.actions));
    for (const x of s.actions.filter((y) => y.method === 'GET'))
      assert.equal((await a.api('GET', x.path)).status, 200, x.path);
    const m = (await a.api('GET', '/metrics')).text;
    assert.equal(sampleOf(m, 'aos_trace_spans_stored_total'), undefined); // nothing kept
  } finally { await a.cleanup(); }
});

// Polls GET /api/traces until fn(body) holds (spans are written within ~100 ms).
async function untilSearch(qs, fn, ms = 10000) {
  const t0 = Date.now();
  let r;
  while (Date.now() - t0 < ms) {
    r = await aos.api('GET', `/api/traces?${qs}`);
    if (r.status === 200 && fn(r.body)) return r.body;
    await sleep(100);
  }
  assert.fail(`search ${qs}: ${r?.text}`);
}

test('GET /api/traces: search by window, status, service and text, paged by cursor', async () => {
  const all = await untilSearch('q=tools%2Fcall', (b) => okTraces.every((t) => b.traces.some((x) => x.trace_id === t)));
  const one = all.traces.find((x) => x.trace_id === okTraces[0]);
  assert.equal(one.name, 'tools/call everything__echo');
  assert.equal(one.service, 'aosd');
  assert.equal(one.kind, 'server');
  assert.equal(one.status, 'unset');
  assert.equal(one.error_count, 0);
  assert.ok(one.span_count >= 1);
  assert.ok(one.duration_ms > 0);
  assert.match(one.start_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // newest first
  for (let i = 1; i < all.traces.length; i++)
    assert.ok(all.traces[i - 1].start_unix_nano >= all.traces[i].start_unix_nano);
  // status
  const errs = await untilSearch('status=error', (b) => b.traces.some((x) => x.trace_id === errTrace));
  assert.ok(errs.traces.every((x) => x.status === 'error' && x.error_count >= 1));
  assert.ok(!errs.traces.some((x) => okTraces.includes(x.trace_id)));
  const oks = await aos.api('GET', '/api/traces?status=ok&q=everything__');
  assert.ok(oks.body.traces.some((x) => x.trace_id === okTraces[1]));
  assert.ok(!oks.body.traces.some((x) => x.trace_id === errTrace));
  // a trace id; case of the text ignored
  const byId = await aos.api('GET', `/api/traces?q=${okTraces[2].toUpperCase()}`);
  assert.deepEqual(byId.body.traces.map((x) => x.trace_id), [okTraces[2]]);
  assert.ok((await aos.api('GET', '/api/traces?q=TOOLS%2FCALL%20EVERYTHING__ECHO')).body.traces.length >= 3);
  // service
  assert.ok((await aos.api('GET', '/api/traces?service=aosd')).body.traces.length >= 4);
  assert.equal((await aos.api('GET', '/api/traces?service=elsewhere')).body.traces.length, 0);
  // a window in the past holds none of them
  const past = await aos.api('GET', '/api/traces?from=1000000000&to=1000003600');
  assert.equal(past.status, 200);
  assert.deepEqual(past.body.traces, []);
  assert.equal(past.body.next_cursor, null);
  // pages of 1, by cursor, until the end: each trace once, same order
  const seen = [];
  let cursor = null;
  for (let i = 0; i < 50; i++) {
    const r = await aos.api('GET', `/api/traces?q=everything__echo&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.traces.length <= 1);
    seen.push(...r.body.traces.map((x) => x.trace_id));
    cursor = r.body.next_cursor;
    if (!cursor) break;
  }
  assert.equal(cursor, null);
  const echo = all.traces.filter((x) => x.name === 'tools/call everything__echo').map((x) => x.trace_id);
  assert.deepEqual(seen, echo);
  // bad input
  for (const qs of ['limit=0', 'limit=101', 'status=maybe', 'cursor=nope', 'from=x', 'from=20&to=10', `q=${'x'.repeat(300)}`])
    assertErrorShape(assert, await aos.api('GET', `/api/traces?${qs}`), 400, 'invalid_argument');
});

test('GET /api/topology: aosd -> MCP server -> tools, with calls, errors and latency', async () => {
  const r = await aos.api('GET', '/api/topology');
  assert.equal(r.status, 200, r.text);
  const { nodes, edges } = r.body;
  const node = (id) => nodes.find((n) => n.id === id);
  assert.deepEqual(node('service:aosd'), { id: 'service:aosd', type: 'service', name: 'aosd' });
  assert.deepEqual(node('mcp_server:everything'), { id: 'mcp_server:everything', type: 'mcp_server', name: 'everything' });
  assert.equal(node('tool:everything/echo')?.type, 'tool');
  const edge = (s, t) => edges.find((e) => e.source === s && e.target === t);
  // who called: the test's token (by its name, never the token) as a
  // client node, with an edge to the server it called through the gateway
  const clients = nodes.filter((n) => n.type === 'client');
  assert.ok(clients.length >= 1, JSON.stringify(nodes));
  for (const c of clients) assert.ok(!JSON.stringify(c).includes(TOKEN), JSON.stringify(c));
  const byToken = clients.find((c) => c.name.startsWith('token:'));
  assert.ok(byToken, JSON.stringify(clients));
  // (the gateway's SERVER spans: the client is their caller, not aosd)
  const toServer = edge(byToken.id, 'mcp_server:everything');
  assert.ok(toServer, JSON.stringify(edges));
  assert.ok(toServer.calls >= 4, JSON.stringify(toServer)); // 3 echo + the failed call (+ lists)
  assert.ok(toServer.errors >= 1);
  assert.equal(toServer.error_rate, toServer.errors / toServer.calls);
  assert.equal(edge('service:aosd', 'mcp_server:everything'), undefined);
  const echo = edge('mcp_server:everything', 'tool:everything/echo');
  assert.equal(echo.calls, 3);
  assert.equal(echo.errors, 0);
  assert.ok(echo.p50_ms > 0 && echo.p50_ms <= echo.p95_ms && echo.p95_ms <= echo.p99_ms, JSON.stringify(echo));
  const missing = edge('mcp_server:everything', 'tool:everything/no-such-tool');
  assert.equal(missing?.errors, 1);
  assert.equal(r.body.truncated, false);
  assert.ok(r.body.spans >= 4);
  // a window before any of it: empty
  const past = await aos.api('GET', '/api/topology?from=1000000000&to=1000003600');
  assert.deepEqual([past.body.nodes, past.body.edges, past.body.spans], [[], [], 0]);
  assertErrorShape(assert, await aos.api('GET', '/api/topology?from=soon'), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('GET', '/api/topology', undefined, null), 401, 'unauthorized');
});

test('GET /api/traces/:traceId: each span carries its log lines, the others come beside the tree', async () => {
  await open(aos);
  const r = await rpc(aos, { jsonrpc: '2.0', id: 40, method: 'tools/call', params: { name: 'everything__echo', arguments: { message: 'logged' } } });
  assert.equal(r.status, 200);
  const [, trace, span] = r.headers.get('traceparent').split('-');
  const entries = [
    { message: 'inside the span', level: 'info', topic: 'monitor-e2e', trace_id: trace, span_id: span },
    { message: 'second inside', level: 'warn', topic: 'monitor-e2e', trace_id: trace, span_id: span },
    { message: 'of the trace only', level: 'info', topic: 'monitor-e2e', trace_id: trace },
    { message: 'another trace', level: 'info', topic: 'monitor-e2e', trace_id: 'f'.repeat(32), span_id: span },
  ];
  assert.equal((await aos.api('POST', '/api/logs', { entries })).status, 201);
  const t0 = Date.now();
  let body;
  while (Date.now() - t0 < 10000) {
    const g = await aos.api('GET', `/api/traces/${trace}`);
    if (g.status === 200 && g.body.logs?.length >= 1) { body = g.body; break; }
    await sleep(100);
  }
  assert.ok(body, 'the trace and its lines');
  const root = body.spans.find((s) => s.span_id === span);
  assert.ok(root, JSON.stringify(body.spans));
  assert.deepEqual(root.logs.map((l) => [l.message, l.level, l.span_id]), [['inside the span', 'info', span], ['second inside', 'warn', span]]);
  assert.deepEqual(body.logs.map((l) => l.message), ['of the trace only']);
  assert.equal(body.logs_truncated, false);
  // a span without lines has no "logs"
  const flat = (ss) => ss.flatMap((s) => [s, ...flat(s.children)]);
  assert.ok(flat(body.spans).filter((s) => s.span_id !== span).every((s) => s.logs === undefined));
});

// A task's call to a stdio server is a CLIENT span over the child's pipes
// (network.transport "pipe"); a call to a built-in has no network.
test('CLIENT spans of tool calls say their transport', async () => {
  const r = await aos.api('POST', '/api/run', { goal: 'transport', plan: { steps: [
    { id: 'a', tool: 'everything__echo', args: { message: 'x' } }, { id: 'b', tool: 'aos__echo', args: { message: 'y' } }] } });
  assert.equal(r.status, 201, r.text);
  const flat = (ss) => ss.flatMap((s) => [s, ...flat(s.children)]);
  let spans = [];
  for (let i = 0; i < 100; i++) {
    const g = await aos.api('GET', `/api/traces/${r.body.trace_id}`);
    spans = g.status === 200 ? flat(g.body.spans) : [];
    if (spans.filter((s) => s.name.startsWith('tools/call ')).length === 2) break;
    await sleep(100);
  }
  const stdio = spans.find((s) => s.name === 'tools/call everything__echo');
  assert.ok(stdio, JSON.stringify(spans.map((s) => s.name)));
  assert.equal(stdio.kind, 'CLIENT');
  assert.equal(stdio.attributes['network.transport'], 'pipe');
  const builtin = spans.find((s) => s.name === 'tools/call aos__echo');
  assert.equal(builtin.attributes['network.transport'], undefined);
});

// A timeout storm through a real upstream on daemon a: a server whose tool
// never answers (timeout_ms 200) called until the gateway raises an anomaly.
// The Analyzer's suggestion for the timeout storm's server, polled (it
// groups anomalies as they arrive).
async function slowpokeSuggestion(d) {
  for (let i = 0; i < 100; i++) {
    const r = await d.api('GET', '/api/analyzer/suggestions');
    assert.equal(r.status, 200, r.text);
    const s = r.body.suggestions.find((x) => x.server === 'slowpoke');
    if (s) return s;
    await sleep(100);
  }
  assert.fail('no suggestion for slowpoke');
}

async function timeoutStorm(a) {
  const entry = { name: 'slowpoke', command: process.execPath, args: [FAULTY], limits: { retries: 0, breaker_failures: 100 }, timeout_ms: 200 };
  assert.equal((await a.api('POST', '/mcp/registry', entry)).status, 201);
  await waitReady(a, 'slowpoke');
  for (let i = 0; i < 4; i++)
    assert.equal((await a.api('POST', '/mcp/call', { server: 'slowpoke', tool: 'hang', args: {} })).status, 504);
}

// The Analyzer: a failure pattern injected through a real upstream (a
// server whose tool never answers, timeout_ms 200) raises anomaly.detected;
// the Analyzer groups it by fingerprint and suggests raising timeout_ms or
// looking at the server's health, tied to the anomaly's card; a restart
// rebuilds the suggestion from the durable bus.
test('the Analyzer: a timeout storm becomes a suggestion on the anomaly card, also after a restart', { timeout: 120000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'aos-e2e-'));
  const args = ['--trace-sample', '1'];
  let a = await startAosd({ dataDir, args });
  try {
    await timeoutStorm(a);
    const find = slowpokeSuggestion;
    const s = await find(a);
    assert.equal(s.rule, 'timeout_storm');
    assert.equal(s.kind, 'anomaly');
    assert.equal(s.tool, 'hang');
    assert.equal(s.error, 'timeout');
    assert.match(s.fingerprint, /^[0-9a-f]{16}$/);
    assert.match(s.id, /^sg_[0-9a-f]{16}$/);
    assert.ok(s.count >= 1 && s.traces.length >= 1);
    assert.deepEqual(s.actions.slice(0, 2).map((x) => [x.method, x.path, x.field]),
      [['PATCH', '/mcp/registry/slowpoke', 'timeout_ms'], ['GET', '/mcp/registry/slowpoke', undefined]]);
    // the anomaly's card, and its next version: the same anomaly with the
    // suggestion, published by the Analyzer (topic "analyzer")
    const onCard = async (d) => {
      for (let i = 0; i < 100; i++) {
        const h = await d.api('GET', '/agent/events/history?limit=200');
        const card = h.body.events.find((e) => e.type === 'anomaly.detected' && e.topic !== 'analyzer' && e.payload.fingerprint === s.fingerprint);
        const versions = h.body.events.filter((e) => e.topic === 'analyzer' && e.card_id === card?.card_id);
        if (card && versions.length) return { card, versions };
        await sleep(100);
      }
      assert.fail('no suggestion on the anomaly card');
    };
    const { card, versions } = await onCard(a);
    assert.equal(s.card_id, card.card_id);
    assert.equal(versions.length, 1, 'one suggestion per card');
    const v = versions[0];
    assert.ok(v.card_version > card.card_version, 'a newer version of the same card');
    assert.equal(v.payload.fingerprint, s.fingerprint, 'the anomaly stays on the card');
    assert.equal(v.payload.server, 'slowpoke');
    assert.equal(v.payload.suggestion.rule, 'timeout_storm');
    assert.equal(v.payload.suggestion.id, s.id);
    assert.deepEqual(v.payload.suggestion.actions.slice(0, 1).map((x) => [x.method, x.path, x.field]),
      [['PATCH', '/mcp/registry/slowpoke', 'timeout_ms']]);
    assert.equal(v.trace_id, card.trace_id);
    // the Analyzer does not count its own events
    assert.equal((await find(a)).count, s.count);
    // its actions are real routes of aosd
    assert.equal((await a.api('GET', s.actions[1].path)).status, 200);
    const logs = await a.api('GET', s.actions.find((x) => x.label === 'Log lines').path);
    assert.equal(logs.status, 200, logs.text);
    assert.ok(logs.body.items.some((l) => /call failed/.test(l.message)), logs.text);
    assert.equal((await a.api('GET', s.actions.find((x) => x.label === 'Trace').path)).status, 200);
    for (const x of s.actions.filter((y) => y.method === 'GET'))
      assert.equal((await a.api('GET', x.path)).status, 200, x.path);
    // bounded list, clear errors
    assert.equal((await a.api('GET', '/api/analyzer/suggestions?limit=1')).body.suggestions.length, 1);
    assertErrorShape(assert, await a.api('GET', '/api/analyzer/suggestions?limit=0'), 400, 'invalid_argument');
    assertErrorShape(assert, await a.api('GET', '/api/analyzer/suggestions', undefined, null), 401, 'unauthorized');
    await a.cleanup();
    a = await startAosd({ dataDir, args });
    const again = await find(a);
    assert.equal(again.id, s.id);
    assert.equal(again.rule, 'timeout_storm');
    // read back at start: the groups come back, nothing is published again
    await sleep(500);
    const h2 = await a.api('GET', '/agent/events/history?limit=200');
    assert.equal(h2.body.events.filter((e) => e.topic === 'analyzer').length, 1);
  } finally {
    await a.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// With a model configured, the Analyzer asks it for a repair suggestion
// once per group: what the model got (the group's facts, the server's
// error message), its answer in the list and on a new version of the
// anomaly's card; a second burst of the same failure asks nothing more.
test("the Analyzer: the model's suggestion on the card and in the list", { timeout: 120000 }, async () => {
  const KEY = 'sk-analyzer-e2e-0123456789abcdef';
  const llm = await startOpenAI({ chat: [{ content: 'Raise timeout_ms of slowpoke to 5000 or fix its hang tool.', repeat: true }] }, { apiKey: KEY });
  const a = await startAosd({ args: ['--trace-sample', '1', '--llm-base-url', llm.url, '--llm-model', 'analyst-model', '--llm-retries', '0'],
    env: { AOS_LLM_API_KEY: KEY } });
  try {
    await timeoutStorm(a);
    let s;
    for (let i = 0; i < 100 && !s?.llm; i++) {
      const r = await a.api('GET', '/api/analyzer/suggestions');
      s = r.body.suggestions.find((x) => x.server === 'slowpoke');
      if (!s?.llm) await sleep(100);
    }
    assert.ok(s?.llm, 'the model\'s suggestion in the list');
    assert.equal(s.llm.text, 'Raise timeout_ms of slowpoke to 5000 or fix its hang tool.');
    assert.equal(s.rule, 'timeout_storm', 'the rule stays');
    const asked = (await llm.requests()).filter((r) => r.path.endsWith('/chat/completions'));
    assert.equal(asked.length, 1);
    const user = asked[0].body.messages.find((m) => m.role === 'user').content;
    const facts = JSON.parse(user);
    assert.equal(facts.server, 'slowpoke');
    assert.equal(facts.tool, 'hang');
    assert.equal(facts.rule, 'timeout_storm');
    assert.equal(facts.actions, undefined, 'no routes to the model');
    assert.equal(asked[0].headers.authorization, `Bearer ${KEY}`);
    // the card's newest version carries it
    let last;
    for (let i = 0; i < 100; i++) {
      const h = await a.api('GET', '/agent/events/history?limit=200');
      last = h.body.events.filter((e) => e.topic === 'analyzer' && e.payload.suggestion?.llm).at(0);
      if (last) break;
      await sleep(100);
    }
    assert.ok(last, 'a card version with the model\'s suggestion');
    assert.equal(last.payload.suggestion.llm.text, s.llm.text);
    assert.equal(last.card_id, s.card_id);
    assert.doesNotMatch(JSON.stringify(last), new RegExp(KEY));
    // a second burst: a new anomaly card gets the suggestion, the model is not asked again
    for (let i = 0; i < 4; i++)
      await a.api('POST', '/mcp/call', { server: 'slowpoke', tool: 'hang', args: {} });
    await sleep(1000);
    assert.equal((await llm.requests()).filter((r) => r.path.endsWith('/chat/completions')).length, 1);
  } finally {
    llm.stop();
    await a.cleanup();
  }
});
