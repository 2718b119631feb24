// peer_node.mjs - the Node.js peer of bench/events: the value-event fan-out
// as a Node gateway would write it, with node:http and nothing else, driven
// by the same load generator (events_load.c) as aosd and the C ceiling.
//
//   GET  /healthz                    200
//   GET  /agent/events[?trace_id=X]  text/event-stream (chunked), a greeting,
//                                    then every event (of trace X when given)
//   POST /api/events                 JSON.parse the body, 201, then res.write
//                                    the frame to every matching subscriber
//
// Like the ceiling it keeps nothing on disk and checks no token: it is the
// in-memory fan-out of a typical Node service, not a durable bus. The frame
// has aosd's envelope, so the bytes on the wire match.
//
// Usage: node peer_node.mjs [--port 3332]   (127.0.0.1 only)
import http from 'node:http';

const argv = process.argv.slice(2);
const port = Number(argv[argv.indexOf('--port') + 1] || 3332);
const all = new Set(); // subscribers without a filter
const byTrace = new Map(); // trace_id -> Set of subscribers
let nextId = 1;

function send(res, frame) {
  if (!res.writableEnded) res.write(frame);
}

function publish(ev) {
  const id = nextId++;
  const env = {
    id,
    trace_id: ev.trace_id ?? null,
    topic: null,
    type: ev.type,
    severity: 'info',
    payload: ev.payload ?? {},
    created_at: new Date().toISOString(),
    card_id: 'card_' + id.toString(16).padStart(24, '0'),
    card_version: 1,
    project_id: null,
  };
  const frame = `id: ${id}\ndata: ${JSON.stringify(env)}\n\n`;
  for (const res of all) send(res, frame);
  const set = env.trace_id && byTrace.get(env.trace_id);
  if (set) for (const res of set) send(res, frame);
  return id;
}

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer({ noDelay: true, keepAliveTimeout: 60000 }, (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/healthz') {
    res.end('ok');
  } else if (req.method === 'GET' && url.pathname === '/agent/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    res.write('retry: 1000\n: aos value events\n\n');
    const trace = url.searchParams.get('trace_id');
    let set = all;
    if (trace) {
      set = byTrace.get(trace);
      if (!set) byTrace.set(trace, (set = new Set()));
    }
    set.add(res);
    req.socket.setNoDelay(true);
    res.on('close', () => set.delete(res));
  } else if (req.method === 'POST' && url.pathname === '/api/events') {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      let ev;
      try {
        ev = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        reply(res, 400, '{"error":{"code":"invalid","message":"body is not JSON"}}');
        return;
      }
      reply(res, 201, JSON.stringify({ ids: [publish(ev)] }));
    });
  } else {
    res.writeHead(404);
    res.end();
  }
});
server.maxConnections = 100000;
server.listen(port, '127.0.0.1', () => console.error(`peer_node: 127.0.0.1:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
