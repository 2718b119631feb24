// otlp_load.mjs - load for aosd's OTLP ingest, and a sink for its export.
//
//   node otlp_load.mjs --url http://127.0.0.1:PORT --token T [--conns 4]
//        [--seconds 8] [--warmup 2] [--batch 100]
//     C connections in a closed loop POST /v1/traces, each body an
//     ExportTraceServiceRequest (protobuf, made once with protobufjs from
//     third_party/opentelemetry-proto; a pool of 64 bodies with distinct
//     ids, cycled) of BATCH spans: a parent and its children, GenAI
//     attributes - the rows spans_limit.c inserts. Warm-up, then a
//     measured window; a span counts once its request got 200 (aosd answers
//     after the commit). Prints
//       otlp_load: N spans in S s = R spans/s, p50 X ms, p99 Y ms, errors E
//   node otlp_load.mjs --url U --token T --big-trace N [--fetches 10]
//     one trace of N spans (a root, 100 children, the rest their children,
//     the GenAI attributes above) posted in protobuf batches of 1,000 and
//     stored; then GET /api/traces/:id?limit=N (the waterfall's one fetch)
//     FETCHES times, each timed from the request to the body's last byte.
//     Prints
//       big_trace: N spans, fetch p50 X ms, max Y ms, body B bytes, errors E
//   node otlp_load.mjs --sink PORT
//     an OTLP/HTTP receiver that answers 200 to every request (the export
//     side of bench/telemetry); prints "sink: ready" once listening.
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

if (arg('sink')) {
  const server = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => res.writeHead(200, { 'Content-Type': req.headers['content-type'] || 'application/json' })
      .end(req.headers['content-type'] === 'application/json' ? '{}' : ''));
  });
  server.listen(Number(arg('sink')), '127.0.0.1', () => console.log('sink: ready'));
} else {
  const protobuf = createRequire(join(ROOT, 'tests/e2e/package.json'))('protobufjs');
  const PROTO = join(ROOT, 'third_party/opentelemetry-proto');
  const root = new protobuf.Root();
  root.resolvePath = (o, t) => (t.startsWith('/') ? t : join(PROTO, t));
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: true });
  const Req = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const url = new URL('/v1/traces', arg('url'));
  const token = arg('token');
  const CONNS = Number(arg('conns', 4)), SECS = Number(arg('seconds', 8));
  const WARMUP = Number(arg('warmup', 2)), BATCH = Number(arg('batch', 100));
  const kv = (key, v) => ({ key, value: typeof v === 'number' ? { int_value: v } : { string_value: v } });
  const now = BigInt(Date.now()) * 1000000n;

  async function bigTrace(N, FETCHES) {
    const tid = randomBytes(16), ids = Array.from({ length: N }, () => randomBytes(8));
    const parent = (i) => (i === 0 ? undefined : i <= 100 ? ids[0] : ids[1 + ((i - 101) % 100)]);
    const span = (i) => ({
      trace_id: tid, span_id: ids[i], parent_span_id: parent(i), name: i ? `execute_tool tool-${i % 13}` : 'invoke_workflow big',
      kind: i ? 3 : 1, flags: 1,
      start_time_unix_nano: String(now + BigInt(i) * 1000n), end_time_unix_nano: String(now + BigInt(i) * 1000n + 900n),
      attributes: [kv('gen_ai.operation.name', i ? 'execute_tool' : 'invoke_workflow'), kv('gen_ai.tool.name', `tool-${i % 13}`),
        kv('gen_ai.usage.input_tokens', i)],
    });
    const send = (body) => new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: {
        'Content-Type': 'application/x-protobuf', 'Content-Length': body.length, Authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`POST /v1/traces: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
    for (let at = 0; at < N; at += 1000) {
      const spans = [];
      for (let i = at; i < Math.min(N, at + 1000); i++) spans.push(span(i));
      await send(Buffer.from(Req.encode(Req.fromObject({ resource_spans: [{
        resource: { attributes: [kv('service.name', 'bench-big')] }, scope_spans: [{ scope: { name: 'bench' }, spans }] }] })).finish()));
    }
    const get = new URL(`/api/traces/${tid.toString('hex')}?limit=${N}`, arg('url'));
    const lat = [];
    let errors = 0, bytes = 0;
    for (let k = 0; k < FETCHES; k++) {
      const t = process.hrtime.bigint();
      const r = await fetch(get, { headers: { Authorization: `Bearer ${token}` } });
      const body = await r.text();
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (r.status !== 200 || JSON.parse(body).span_count !== N) { errors++; continue; }
      bytes = body.length;
      lat.push(ms);
    }
    lat.sort((a, b) => a - b);
    const p50 = lat.length ? lat[Math.floor(lat.length / 2)] : 0;
    console.log(`big_trace: ${N} spans, fetch p50 ${p50.toFixed(1)} ms, max ${(lat.at(-1) || 0).toFixed(1)} ms, ` +
      `body ${bytes} bytes, errors ${errors}`);
  }
  if (arg('big-trace')) {
    await bigTrace(Number(arg('big-trace')), Number(arg('fetches', 10)));
    process.exit(0);
  }
  const bodies = Array.from({ length: 64 }, () => {
    const tid = randomBytes(16), root0 = randomBytes(8);
    const spans = Array.from({ length: BATCH }, (_, i) => ({
      trace_id: tid, span_id: i ? randomBytes(8) : root0, parent_span_id: i ? root0 : undefined,
      name: `chat model-${i % 7}`, kind: 3, flags: 1,
      start_time_unix_nano: String(now + BigInt(i) * 1000n), end_time_unix_nano: String(now + BigInt(i) * 1000n + 500n),
      attributes: [kv('gen_ai.operation.name', 'chat'), kv('gen_ai.request.model', 'model-x'),
        kv('gen_ai.usage.input_tokens', 120)],
    }));
    return Buffer.from(Req.encode(Req.fromObject({ resource_spans: [{
      resource: { attributes: [kv('service.name', 'bench-agent')] },
      scope_spans: [{ scope: { name: 'bench' }, spans }] }] })).finish());
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  let measuring = false, stop = false, spans = 0, errors = 0, next = 0;
  const lat = [];
  const post = (body) => new Promise((resolve) => {
    const t = process.hrtime.bigint();
    const req = http.request(url, { method: 'POST', agent, headers: {
      'Content-Type': 'application/x-protobuf', 'Content-Length': body.length, Authorization: `Bearer ${token}` } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve({ ok: res.statusCode === 200, ms: Number(process.hrtime.bigint() - t) / 1e6 }));
    });
    req.on('error', () => resolve({ ok: false, ms: 0 }));
    req.end(body);
  });
  const worker = async () => {
    while (!stop) {
      const r = await post(bodies[next++ % bodies.length]);
      if (!measuring) continue;
      if (r.ok) { spans += BATCH; lat.push(r.ms); } else errors++;
    }
  };
  const workers = Array.from({ length: CONNS }, worker);
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  measuring = true;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, SECS * 1000));
  measuring = false;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  stop = true;
  await Promise.all(workers);
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
  console.log(`otlp_load: ${spans} spans in ${secs.toFixed(3)} s = ${Math.round(spans / secs)} spans/s, ` +
    `p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, errors ${errors}`);
}
