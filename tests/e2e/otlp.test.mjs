// otlp.test.mjs - OTLP/HTTP both ways (issue 18).
// Export: aosd sends its spans to a real OTLP/HTTP receiver written here
// (node:http, decoding protobuf with protobufjs from the vendored
// opentelemetry-proto definitions, and OTLP/JSON): the spans arrive as
// GET /api/traces shows them - names, parents, attributes - under the
// resource service.name/version/instance.id; endpoint, protocol and
// headers (one a runtime secret, never logged) come from flags or from the
// stored settings; a receiver down for 30 s loses nothing within the queue
// bound and the drops beyond it are counted on /metrics.
// Ingest: the OpenTelemetry JS SDK's own exporters (http/json and
// http/protobuf) send to aosd's /v1/traces and the spans show in
// GET /api/traces; /v1/logs takes JSON and protobuf (gzip too) into the log
// service; malformed bodies get 400, refused spans a partial_success; a
// 200 means stored (aosd killed right after keeps it). A 503 with
// Retry-After is retried no sooner, a 400 drops the batch (counted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { context, trace, SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { startAosd, waitReady, ROOT, TOKEN, sleep, assertErrorShape } from './lib.mjs';

const PROTO_DIR = join(ROOT, 'third_party/opentelemetry-proto');
const FIXTURE = join(ROOT, 'tests/e2e/fixtures/trace-server.mjs');
const root = new protobuf.Root();
root.resolvePath = (origin, target) => (target.startsWith('/') ? target : join(PROTO_DIR, target));
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto',
  'opentelemetry/proto/collector/logs/v1/logs_service.proto'], { keepCase: true });
const TraceReq = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const TraceResp = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const LogsReq = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');

const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
const pick = (o, camel, snake) => (o?.[camel] !== undefined ? o[camel] : o?.[snake]);
const idHex = (v) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : Buffer.from(v).toString('hex'));

// AnyValue (OTLP/JSON or protobufjs object) -> a JS value
function anyValue(v) {
  if (!v) return undefined;
  let x;
  if ((x = pick(v, 'stringValue', 'string_value')) !== undefined) return x;
  if ((x = pick(v, 'intValue', 'int_value')) !== undefined) return Number(x);
  if ((x = pick(v, 'doubleValue', 'double_value')) !== undefined) return Number(x);
  if ((x = pick(v, 'boolValue', 'bool_value')) !== undefined) return x;
  return JSON.stringify(v);
}
const attrs = (list) => Object.fromEntries((list || []).map((kv) => [kv.key, anyValue(kv.value)]));

// An ExportTraceServiceRequest (either form) -> flat spans with their resource
function normalize(req) {
  const out = [];
  for (const rs of pick(req, 'resourceSpans', 'resource_spans') || []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of pick(rs, 'scopeSpans', 'scope_spans') || []) {
      for (const s of ss.spans || []) {
        out.push({
          traceId: idHex(pick(s, 'traceId', 'trace_id')),
          spanId: idHex(pick(s, 'spanId', 'span_id')),
          parentSpanId: idHex(pick(s, 'parentSpanId', 'parent_span_id')) || null,
          name: s.name,
          kind: Number(s.kind ?? 0),
          flags: Number(s.flags ?? 0),
          start: String(pick(s, 'startTimeUnixNano', 'start_time_unix_nano')),
          end: String(pick(s, 'endTimeUnixNano', 'end_time_unix_nano')),
          status: Number(s.status?.code ?? 0),
          attributes: attrs(s.attributes),
          resource,
          scope: ss.scope?.name,
        });
      }
    }
  }
  return out;
}

// The OTLP/HTTP receiver: every span it got, and every request's headers.
class Receiver {
  constructor() { this.spans = []; this.requests = []; this.sockets = new Set(); this.answers = []; }
  async start(port = 0) {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const ct = req.headers['content-type'] || '';
        this.requests.push({ path: req.url, headers: req.headers, at: Date.now() });
        const answer = this.answers.shift(); // a scripted failure: [status, headers]
        if (answer) { res.writeHead(answer[0], answer[1] || {}).end('no'); return; }
        let spans;
        try {
          if (ct.startsWith('application/x-protobuf')) {
            spans = normalize(TraceReq.toObject(TraceReq.decode(body), { longs: String }));
          } else {
            spans = normalize(JSON.parse(body.toString()));
          }
        } catch (e) {
          res.writeHead(400).end(String(e));
          return;
        }
        if (req.url !== '/v1/traces') { res.writeHead(404).end(); return; }
        this.spans.push(...spans);
        if (ct.startsWith('application/x-protobuf')) {
          res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
          res.end(Buffer.from(TraceResp.encode(TraceResp.create({})).finish()));
        } else {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
        }
      });
    });
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise((r) => this.server.listen(port, '127.0.0.1', r));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
  }
  // Down for real: the listening socket and every connection closed.
  async stop() {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
  of(traceId) { return this.spans.filter((s) => s.traceId === traceId); }
}

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// An upstream MCP server over stdio (the trace fixture), for calls that
// make a SERVER span and its CLIENT child.
async function addUpstream(aos) {
  const r = await aos.api('POST', '/mcp/registry', { name: 'tstdio', transport: 'stdio', command: process.execPath, args: [FIXTURE] });
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'tstdio');
}

// A tool call through aosd's REST gateway under the caller's trace
// (traceparent): a SERVER span, and the CLIENT span of the upstream call.
async function call(aos, traceId, parentId) {
  const r = await aos.api('POST', '/mcp/call', { server: 'tstdio', tool: 'context', args: {} }, TOKEN,
    { traceparent: `00-${traceId}-${parentId}-01` });
  assert.equal(r.status, 200, r.text);
}

function flatten(nodes, out = []) {
  for (const n of nodes) { out.push(n); flatten(n.children || [], out); }
  return out;
}

async function stored(aos, traceId) {
  const r = await aos.api('GET', `/api/traces/${traceId}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

// The spans of traceId that aosd stored arrive at the receiver as they are.
async function checkExported(aos, rx, traceId, parentId) {
  const t = await stored(aos, traceId);
  assert.ok(t.span_count >= 1, JSON.stringify(t));
  const got = await until(`${t.span_count} spans of ${traceId}`, () => rx.of(traceId).length >= t.span_count && rx.of(traceId));
  assert.equal(got.length, t.span_count);
  const byId = Object.fromEntries(got.map((s) => [s.spanId, s]));
  const kinds = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };
  for (const s of flatten(t.spans)) {
    const e = byId[s.span_id];
    assert.ok(e, `span ${s.span_id} (${s.name}) was exported`);
    assert.equal(e.name, s.name);
    assert.equal(e.parentSpanId, s.parent_span_id);
    assert.equal(e.kind, kinds[s.kind]);
    assert.equal(e.start, s.start_time_unix_nano);
    assert.equal(e.end, s.end_time_unix_nano);
    assert.deepEqual(e.attributes, s.attributes);
    assert.equal(e.flags & 1, 1, 'the W3C sampled flag');
    assert.equal(e.resource['service.name'], 'aosd');
    assert.match(String(e.resource['service.version']), /^\d+\.\d+/);
    assert.match(String(e.resource['service.instance.id']), /^[0-9a-f]{32}$/);
  }
  if (parentId) { // a call: the caller's span is the SERVER span's parent
    const server = got.find((s) => s.kind === 2);
    assert.equal(server.parentSpanId, parentId);
    assert.equal(server.name, 'tools/call context');
    assert.equal(server.attributes['gen_ai.tool.name'], 'context');
    assert.equal(server.attributes['aos.mcp.server'], 'tstdio');
  }
  return got;
}

// A run of two steps: invoke_workflow > step > tools/call, all exported
// with their parents.
async function checkRun(aos, rx) {
  const r = await aos.api('POST', '/api/run', { goal: 'exported', plan: { steps: [
    { id: 'a', tool: 'aos__echo', args: { message: 'x' } }, { id: 'b', tool: 'aos__echo', args: { message: 'y' } }] } });
  assert.equal(r.status, 201, r.text);
  const tid = r.body.trace_id;
  await until('the run\'s spans', async () => {
    const t = await stored(aos, tid);
    return t.spans.length === 1 && t.spans[0].name === 'invoke_workflow exported' &&
      flatten(t.spans).length >= 5;
  });
  const got = await checkExported(aos, rx, tid);
  const root = got.find((s) => s.name === 'invoke_workflow exported');
  assert.equal(root.parentSpanId, null);
  const steps = got.filter((s) => s.parentSpanId === root.spanId).map((s) => s.name).sort();
  assert.deepEqual(steps, ['step a', 'step b']);
  for (const step of got.filter((s) => s.name.startsWith('step '))) {
    const tool = got.find((s) => s.parentSpanId === step.spanId);
    assert.equal(tool.name, 'tools/call aos__echo');
    assert.equal(tool.attributes['gen_ai.operation.name'], 'execute_tool');
  }
}

// Stops aosd: a clean exit, no sanitizer report (leaks fail the exit code).
async function finish(aos) {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-3000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
}

async function metric(aos, name, labels = '') {
  const r = await aos.api('GET', '/metrics');
  assert.equal(r.status, 200);
  const line = r.text.split('\n').find((l) => l.startsWith(name + (labels ? `{${labels}}` : '') + ' '));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('export http/json (flags): spans, parents, attributes and resource reach the receiver', async () => {
  const rx = new Receiver();
  await rx.start();
  const aos = await startAosd({ args: ['--trace-sample', '1', '--otlp-endpoint', rx.url,
    '--otlp-protocol', 'http/json', '--otlp-flush-ms', '100'] });
  try {
    await addUpstream(aos);
    const tid = hex(32), pid = hex(16);
    await call(aos, tid, pid);
    await checkExported(aos, rx, tid, pid);
    await checkRun(aos, rx);
    const req = rx.requests.find((q) => q.path === '/v1/traces');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.ok(await metric(aos, 'aos_otlp_export_spans_total') >= 2);
  } finally {
    await finish(aos);
    await rx.stop();
  }
});

test('export http/protobuf from the stored settings, with headers (one a runtime secret, never logged)', async () => {
  const rx = new Receiver();
  await rx.start();
  const SECRET = `otlp-key-${hex(24)}`;
  const first = await startAosd({ keep: true });
  let aos;
  try {
    let r = await first.api('PUT', '/config/runtime/OTLP_KEY', { value: SECRET, purpose: 'the OTLP receiver' });
    assert.ok(r.status === 200 || r.status === 201, r.text);
    r = await first.api('PUT', '/config/system', {
      'otel.endpoint': rx.url, 'otel.protocol': 'http/protobuf',
      'otel.headers': { 'x-team': 'e2e', Authorization: { secret: 'OTLP_KEY' } },
    });
    assert.equal(r.status, 200, r.text);
    r = await first.api('PUT', '/config/system', { 'otel.protocol': 'grpc' });
    assert.equal(r.status, 400, r.text);
    const { code } = await first.stop();
    assert.equal(code, 0, first.logs().slice(-3000));
    aos = await startAosd({ dataDir: first.dataDir, args: ['--trace-sample', '1', '--otlp-flush-ms', '100'] });
    await addUpstream(aos);
    const tid = hex(32), pid = hex(16);
    await call(aos, tid, pid);
    await checkExported(aos, rx, tid, pid);
    await checkRun(aos, rx);
    const req = rx.requests.find((q) => q.path === '/v1/traces');
    assert.equal(req.headers['content-type'], 'application/x-protobuf');
    assert.equal(req.headers['x-team'], 'e2e');
    assert.equal(req.headers.authorization, SECRET);
    const cfg = await aos.api('GET', '/config/system');
    assert.ok(!cfg.text.includes(SECRET));
    assert.ok(!aos.logs().includes(SECRET) && !first.logs().includes(SECRET), 'the secret is not logged');
  } finally {
    await finish(aos);
    await rx.stop();
  }
});

test('receiver down for 30 s: nothing lost within the queue bound, the drops beyond it counted', { timeout: 120000 }, async () => {
  const QUEUE = 20;
  const rx = new Receiver();
  await rx.start();
  const aos = await startAosd({ env: { AOS_OTLP_ENDPOINT: rx.url }, // the variable, as the flag elsewhere
    args: ['--trace-sample', '1', '--otlp-queue', String(QUEUE), '--otlp-flush-ms', '100', '--otlp-backoff-max-ms', '2000'] });
  try {
    await addUpstream(aos);
    const warm = hex(32);
    await call(aos, warm, hex(16));
    const warmN = (await stored(aos, warm)).span_count;
    await until('the warm-up spans', () => rx.of(warm).length >= warmN);
    const before = rx.spans.length;
    await rx.stop();
    const downAt = Date.now();
    // calls while the receiver is down, until more spans than the queue holds
    const traces = [];
    let produced = 0;
    while (produced < QUEUE + 15) {
      const tid = hex(32);
      await call(aos, tid, hex(16));
      const n = (await stored(aos, tid)).span_count;
      traces.push({ tid, n });
      produced += n;
    }
    await sleep(Math.max(0, 30000 - (Date.now() - downAt)));
    assert.equal(rx.spans.length, before, 'nothing arrived while the receiver was down');
    await rx.start(rx.port);
    await until(`${QUEUE} queued spans`, () => rx.spans.length - before >= QUEUE, 30000);
    await sleep(1500); // nothing more comes
    const got = rx.spans.slice(before);
    assert.equal(got.length, QUEUE, 'exactly the queue bound arrived');
    // the first spans made are the ones kept (FIFO): whole traces, in order
    let left = QUEUE;
    for (const { tid, n } of traces) {
      const want = Math.min(n, left);
      assert.equal(rx.of(tid).length, want, `trace ${tid}`);
      left -= want;
    }
    assert.equal(await metric(aos, 'aos_otlp_export_spans_dropped_total', 'reason="queue"'), produced - QUEUE);
    assert.ok(await metric(aos, 'aos_otlp_export_retries_total') >= 1);
    assert.match(aos.logs(), /OTLP export of \d+ spans failed/);
    // and it keeps working
    const after = hex(32), pid = hex(16);
    await call(aos, after, pid);
    await checkExported(aos, rx, after, pid);
  } finally {
    await finish(aos);
    await rx.stop().catch(() => {});
  }
});

test('export: 503 with Retry-After is tried again no sooner; a 400 drops the batch, counted', async () => {
  const rx = new Receiver();
  await rx.start();
  const aos = await startAosd({ args: ['--trace-sample', '1', '--otlp-endpoint', rx.url,
    '--otlp-flush-ms', '100', '--otlp-backoff-max-ms', '1000'] });
  try {
    await addUpstream(aos);
    rx.answers.push([503, { 'Retry-After': '3' }]);
    const tid = hex(32), pid = hex(16);
    await call(aos, tid, pid);
    await checkExported(aos, rx, tid, pid);
    const [first, second] = rx.requests;
    assert.equal(rx.requests.length, 2);
    assert.ok(second.at - first.at >= 2900, `tried again after ${second.at - first.at} ms, not before Retry-After`);
    rx.answers.push([400]);
    const lost = hex(32);
    await call(aos, lost, hex(16));
    await until('the refused batch', () => rx.requests.length === 3);
    await sleep(2500); // not tried again
    assert.equal(rx.requests.length, 3);
    assert.equal(rx.of(lost).length, 0);
    const n = (await stored(aos, lost)).span_count;
    assert.equal(await metric(aos, 'aos_otlp_export_spans_dropped_total', 'reason="rejected"'), n);
    const again = hex(32), pid2 = hex(16);
    await call(aos, again, pid2);
    await checkExported(aos, rx, again, pid2);
  } finally {
    await finish(aos);
    await rx.stop();
  }
});

test('ingest: the OpenTelemetry JS SDK exporters (http/json, http/protobuf) send to /v1/traces', async () => {
  const aos = await startAosd();
  try {
    for (const [label, Exporter] of [['json', JsonExporter], ['proto', ProtoExporter]]) {
      const exporter = new Exporter({ url: `${aos.url}/v1/traces`, headers: { Authorization: `Bearer ${TOKEN}` } });
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': `js-agent-${label}`, 'service.version': '1.2.3' }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      });
      const tracer = provider.getTracer('e2e-tracer');
      const parent = tracer.startSpan('plan', { attributes: { 'gen_ai.operation.name': 'invoke_agent' } });
      const ctx = trace.setSpan(context.active(), parent);
      const child = tracer.startSpan('chat gpt-x', {
        kind: SpanKind.CLIENT, attributes: { 'gen_ai.request.model': 'gpt-x', 'gen_ai.usage.input_tokens': 12, ok: true, ratio: 0.5 },
      }, ctx);
      child.addEvent('retry', { attempt: 2 });
      child.setStatus({ code: 2, message: 'rate limited' });
      child.end();
      parent.end();
      await provider.forceFlush();
      await provider.shutdown();
      const tid = parent.spanContext().traceId;
      const t = await until(`the ${label} trace`, async () => {
        const r = await aos.api('GET', `/api/traces/${tid}`);
        return r.status === 200 && r.body.span_count === 2 && r.body;
      });
      assert.equal(t.spans.length, 1);
      const p = t.spans[0];
      assert.equal(p.name, 'plan');
      assert.equal(p.span_id, parent.spanContext().spanId);
      assert.equal(p.attributes['gen_ai.operation.name'], 'invoke_agent');
      assert.equal(p.attributes['otel.scope.name'], 'e2e-tracer');
      const c = p.children[0];
      assert.equal(c.name, 'chat gpt-x');
      assert.equal(c.parent_span_id, p.span_id);
      assert.equal(c.kind, 'CLIENT');
      assert.equal(c.attributes['gen_ai.request.model'], 'gpt-x');
      assert.equal(c.attributes['gen_ai.usage.input_tokens'], 12);
      assert.equal(c.attributes.ok, true);
      assert.equal(c.attributes.ratio, 0.5);
      assert.equal(c.status.code, 'ERROR');
      assert.equal(c.status.message, 'rate limited');
      assert.equal(c.events[0].name, 'retry');
      const res = t.resources.find((x) => x.id === c.resource_id);
      assert.equal(res.attributes['service.name'], `js-agent-${label}`);
      assert.equal(res.attributes['service.version'], '1.2.3');
    }
    assert.equal(await metric(aos, 'aos_otlp_ingest_accepted_total', 'signal="traces"'), 4);
  } finally {
    await finish(aos);
  }
});

function post(aos, path, body, headers = {}, token = TOKEN) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  return fetch(aos.url + path, { method: 'POST', headers: h, body });
}

test('ingest: malformed bodies get 400, refused spans a partial_success, gzip and both encodings', async () => {
  const aos = await startAosd();
  try {
    const now = BigInt(Date.now()) * 1000000n;
    const tid = hex(32);
    const span = (spanId, extra = {}) => ({
      traceId: tid, spanId, name: `s-${spanId}`, kind: 1,
      startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000000n), ...extra,
    });
    const body = (spans) => ({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'raw' } }] }, scopeSpans: [{ spans }] }] });

    // malformed: 400 with the error shape, nothing stored
    for (const [ct, b] of [['application/json', '{"resourceSpans": ['], ['application/json', '[]'],
      ['application/x-protobuf', Buffer.from([0xff, 0xff, 0xff, 0xff])]]) {
      const r = await post(aos, '/v1/traces', b, { 'Content-Type': ct });
      const text = await r.text();
      assertErrorShape(assert, { status: r.status, body: JSON.parse(text) }, 400, 'invalid_argument');
    }
    let r = await post(aos, '/v1/traces', JSON.stringify(body([span(hex(16))])), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    assert.equal(r.status, 400, 'a body that says gzip and is not');
    r = await post(aos, '/v1/traces', '{}', { 'Content-Type': 'text/plain' });
    assert.equal(r.status, 415);
    r = await post(aos, '/v1/traces', '{}', { 'Content-Type': 'application/json' }, null);
    assert.equal(r.status, 401);
    assert.equal((await aos.api('GET', `/api/traces/${tid}`)).status, 404);

    // partial success: the bad spans are counted, the good ones stored
    const good = hex(16);
    r = await post(aos, '/v1/traces', gzipSync(JSON.stringify(body([
      span(good, { attributes: [{ key: 'note', value: { stringValue: 'sent Bearer abcdefghijklmnop0123456789' } }] }),
      span('0000000000000000'), span(hex(16), { traceId: 'zz' }), span(hex(16), { kind: 9 }),
      span(hex(16), { parentSpanId: good, attributes: [{ key: 'big', value: { stringValue: 'x'.repeat(10000) } }] }),
    ]))), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    assert.equal(r.status, 200);
    const ps = await r.json();
    assert.equal(ps.partialSuccess.rejectedSpans, '3');
    assert.match(ps.partialSuccess.errorMessage, /spans\[1\]: span_id/);
    let t = await stored(aos, tid);
    assert.equal(t.span_count, 2);
    assert.equal(t.spans[0].children[0].attributes.big.length, 4096, 'a value is cut at 4096 bytes');
    assert.ok(t.spans[0].attributes.note.startsWith('sent '));
    assert.ok(!t.spans[0].attributes.note.includes('abcdefghijklmnop0123456789'), 'redacted as aosd\'s own spans');

    // protobuf: the answer is protobuf too
    const tid2 = hex(32);
    const pb = TraceReq.encode(TraceReq.fromObject({ resource_spans: [{ scope_spans: [{ spans: [
      { trace_id: Buffer.from(tid2, 'hex'), span_id: Buffer.from(hex(16), 'hex'), name: 'pb', kind: 2,
        start_time_unix_nano: String(now), end_time_unix_nano: String(now + 5n) },
      { trace_id: Buffer.from(tid2, 'hex'), span_id: Buffer.alloc(3), name: 'bad' },
    ] }] }] })).finish();
    r = await post(aos, '/v1/traces', gzipSync(pb), { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/x-protobuf');
    const resp = TraceResp.toObject(TraceResp.decode(Buffer.from(await r.arrayBuffer())), { longs: String });
    assert.equal(resp.partial_success.rejected_spans, '1');
    t = await stored(aos, tid2);
    assert.equal(t.spans[0].name, 'pb');
  } finally {
    await finish(aos);
  }
});

test('ingest: durable before the 200 - killed right after, the spans and log lines are there', async () => {
  const first = await startAosd({ keep: true });
  let aos;
  try {
    const now = BigInt(Date.now()) * 1000000n;
    const tid = hex(32);
    const spans = Array.from({ length: 100 }, (_, i) => ({ traceId: tid, spanId: hex(16), name: `s${i}`,
      startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1n) }));
    let r = await post(first, '/v1/traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }),
      { 'Content-Type': 'application/json' });
    assert.equal(r.status, 200);
    r = await post(first, '/v1/logs', JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [
      { timeUnixNano: String(now), traceId: tid, body: { stringValue: 'kept' } }] }] }] }), { 'Content-Type': 'application/json' });
    assert.equal(r.status, 200);
    await first.stop('SIGKILL');
    aos = await startAosd({ dataDir: first.dataDir });
    assert.equal((await stored(aos, tid)).span_count, 100);
    const q = await aos.api('GET', `/api/logs?traceId=${tid}`);
    assert.equal(q.body.items.length, 1);
  } finally {
    await finish(aos);
  }
});

test('ingest: /v1/logs in JSON and protobuf lands in the log service, linked to its trace', async () => {
  const aos = await startAosd();
  try {
    const now = BigInt(Date.now()) * 1000000n;
    const tid = hex(32), sid = hex(16);
    const r1 = await post(aos, '/v1/logs', JSON.stringify({ resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'js-agent' } }] },
      scopeLogs: [{ scope: { name: 'agent.logger' }, logRecords: [
        { timeUnixNano: String(now), severityNumber: 17, body: { stringValue: 'tool failed: password=hunter2hunter2' },
          traceId: tid, spanId: sid, attributes: [{ key: 'attempt', value: { intValue: '3' } }] },
        { timeUnixNano: String(now), traceId: 'not-hex', body: { stringValue: 'refused' } },
      ] }] }] }), { 'Content-Type': 'application/json' });
    assert.equal(r1.status, 200);
    const b1 = await r1.json();
    assert.equal(b1.partialSuccess.rejectedLogRecords, '1');

    const pb = LogsReq.encode(LogsReq.fromObject({ resource_logs: [{
      resource: { attributes: [{ key: 'service.name', value: { string_value: 'py-agent' } }] },
      scope_logs: [{ log_records: [{ time_unix_nano: String(now), severity_number: 9,
        body: { kvlist_value: { values: [{ key: 'k', value: { int_value: 1 } }] } },
        trace_id: Buffer.from(tid, 'hex') }] }] }] })).finish();
    const r2 = await post(aos, '/v1/logs', pb, { 'Content-Type': 'application/x-protobuf' });
    assert.equal(r2.status, 200);

    const q = await aos.api('GET', `/api/logs?traceId=${tid}&order=asc`);
    assert.equal(q.status, 200, q.text);
    assert.equal(q.body.items.length, 2);
    const [a, b] = q.body.items;
    assert.equal(a.source, 'otlp:js-agent');
    assert.equal(a.topic, 'agent.logger');
    assert.equal(a.level, 'error');
    assert.equal(a.span_id, sid);
    assert.equal(a.attributes.attempt, 3);
    assert.ok(!a.message.includes('hunter2hunter2'), 'redacted like any log line');
    assert.equal(b.source, 'otlp:py-agent');
    assert.equal(b.level, 'info');
    assert.deepEqual(JSON.parse(b.message), { k: 1 });
    const bad = await post(aos, '/v1/logs', 'nope', { 'Content-Type': 'application/json' });
    assert.equal(bad.status, 400);
  } finally {
    await finish(aos);
  }
});
