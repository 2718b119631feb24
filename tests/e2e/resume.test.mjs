// resume.test.mjs - resumable SSE streams on the MCP endpoints (Streamable
// HTTP "Resumability and Redelivery", SSE polling of 2025-11-25): event
// ids, priming events, a client that loses its connection in the middle of
// a call and comes back with GET + Last-Event-ID for the rest (the answer
// too, even when it came while the client was away), the replay buffer's
// bounds, and aosd closing a slow call's connection so that the client
// polls (--mcp-sse-hold-ms). Raw fetch clients, so that every byte and
// every reconnection is the test's own; one official SDK client as well.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startAosd, backendEntry, waitReady, sleep, TOKEN, ROOT } from './lib.mjs';

const FAULTY = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');
const H = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

// An SSE response read as it comes: events ({id, event, data, retry}),
// comments skipped; `ended` once the server closed it (or we aborted).
class Sse {
  constructor(res, ac) {
    this.res = res; this.ac = ac; this.events = []; this.ended = false; this.waiters = [];
    this.done = this.pump();
  }
  async pump() {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of this.res.body) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { event: 'message' };
          let fields = 0;
          for (const line of block.split('\n')) {
            if (line === '' || line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const f = c < 0 ? line : line.slice(0, c);
            let v = c < 0 ? '' : line.slice(c + 1);
            if (v.startsWith(' ')) v = v.slice(1);
            fields++;
            if (f === 'id') ev.id = v;
            else if (f === 'event') ev.event = v;
            else if (f === 'retry') ev.retry = Number(v);
            else if (f === 'data') ev.data = ev.data === undefined ? v : `${ev.data}\n${v}`;
          }
          if (fields) { this.events.push(ev); this.wake(); }
        }
      }
    } catch { /* aborted, or the connection broke */ }
    this.ended = true;
    this.wake();
  }
  wake() { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
  // Resolves once pred(this) holds; fails after ms.
  async until(pred, ms = 15000, what = 'condition') {
    const t0 = Date.now();
    while (!pred(this)) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(this.events)}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }
  messages() { return this.events.filter((e) => e.data).map((e) => JSON.parse(e.data)); }
  abort() { this.ac.abort(); }
}

let aos, small, hold;

async function session(srv, path, protocolVersion = '2025-11-25', caps = {}) {
  const r = await fetch(srv.url + path, {
    method: 'POST', headers: H,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion, capabilities: caps, clientInfo: { name: 'raw', version: '1' } } }),
  });
  assert.equal(r.status, 200);
  await r.text();
  const sid = r.headers.get('mcp-session-id');
  const n = await fetch(srv.url + path, { method: 'POST', headers: { ...H, 'Mcp-Session-Id': sid }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  assert.equal(n.status, 202);
  return { srv, path, sid, protocolVersion };
}

// POSTs a request; the answer as an Sse (or JSON, when the server chose it).
async function post(s, body) {
  const ac = new AbortController();
  const r = await fetch(s.srv.url + s.path, {
    method: 'POST', signal: ac.signal, body: JSON.stringify(body),
    headers: { ...H, 'Mcp-Session-Id': s.sid, 'MCP-Protocol-Version': s.protocolVersion },
  });
  assert.equal(r.status, 200);
  if (!(r.headers.get('content-type') || '').startsWith('text/event-stream')) return { json: await r.json() };
  return new Sse(r, ac);
}

// GET with Last-Event-ID (or none): an Sse, or {status, body} on an error.
async function resume(s, lastId) {
  const ac = new AbortController();
  const headers = { Authorization: H.Authorization, Accept: 'text/event-stream', 'Mcp-Session-Id': s.sid, 'MCP-Protocol-Version': s.protocolVersion };
  if (lastId !== undefined) headers['Last-Event-ID'] = lastId;
  const r = await fetch(s.srv.url + s.path, { method: 'GET', signal: ac.signal, headers });
  if (r.status !== 200) return { status: r.status, body: await r.json() };
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  return new Sse(r, ac);
}

const call = (id, name, args, meta) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });
const seqOf = (id) => Number(id.split('-')[1]);
const streamOf = (id) => id.split('-')[0];

async function metric(srv, name) {
  const t = await (await fetch(`${srv.url}/metrics`, { headers: { Authorization: H.Authorization } })).text();
  const m = t.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

before(async () => {
  const servers = [backendEntry('ev'), { name: 'fx', command: process.execPath, args: [FAULTY] }];
  aos = await startAosd();
  small = await startAosd({ args: ['--mcp-replay-bytes', '3000', '--mcp-replay-total', '4096', '--mcp-replay-seconds', '3'] });
  hold = await startAosd({ args: ['--mcp-sse-hold-ms', '300'] });
  for (const a of [aos, small, hold])
    for (const e of servers) assert.equal((await a.api('POST', '/mcp/registry', e)).status, 201);
  await Promise.all([aos, small, hold].flatMap((a) => ['ev', 'fx'].map((n) => waitReady(a, n))));
});
after(async () => {
  // a clean stop: streams, connections and kept events all released (a
  // sanitizer build reports leaks and errors here)
  const stopped = [];
  for (const a of [aos, small, hold].filter(Boolean)) {
    const { code } = await a.stop();
    stopped.push({ code, logs: a.logs() });
    await a.cleanup();
  }
  for (const { code, logs } of stopped) {
    assert.equal(code, 0, logs.slice(-2000));
    assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
  }
});

for (const [path, tool, slow] of [['/mcp', 'ev__trigger-long-running-operation', 'fx__slow'],
  ['/mcp/servers/ev', 'trigger-long-running-operation', null], ['/mcp/servers/fx', null, 'slow']]) {
  if (tool) {
    test(`${path}: a client that drops mid-call resumes with Last-Event-ID and gets the rest, the answer too`, async () => {
      const s = await session(aos, path);
      const a = await post(s, call(1, tool, { duration: 1.2, steps: 3 }, { progressToken: 'tok' }));
      // a priming event first: an id, retry, no data
      await a.until((x) => x.events.length >= 2, 15000, 'priming + first progress');
      const [prime, first] = a.events;
      assert.equal(prime.data, '');
      assert.equal(prime.retry, 1000);
      assert.match(prime.id, /^\d+-1$/);
      assert.equal(first.id, `${streamOf(prime.id)}-2`);
      assert.equal(JSON.parse(first.data).params.progress, 1);
      assert.equal(JSON.parse(first.data).params.progressToken, 'tok');
      a.abort(); // the client loses the connection
      await sleep(1500); // the call ends meanwhile: its answer is kept
      const b = await resume(s, first.id);
      await b.until((x) => x.ended, 15000, 'the resumed stream to end');
      const msgs = b.messages();
      assert.deepEqual(msgs.slice(0, -1).map((m) => m.params.progress), [2, 3]);
      const answer = msgs.at(-1);
      assert.equal(answer.id, 1);
      assert.match(answer.result.content[0].text, /Long running operation completed/);
      // the ids go on where the client left off, on the same stream
      assert.deepEqual(b.events.map((e) => e.id), [3, 4, 5].map((n) => `${streamOf(prime.id)}-${n}`));
      // resuming from the last but one again replays the answer again
      const c = await resume(s, b.events.at(-2).id);
      await c.until((x) => x.ended);
      assert.deepEqual(c.messages().map((m) => m.id), [1]);
    });

    test(`${path}: resuming while the call runs carries the stream on, live`, async () => {
      const s = await session(aos, path);
      const a = await post(s, call(2, tool, { duration: 1, steps: 2 }, { progressToken: 7 }));
      await a.until((x) => x.events.length >= 1, 15000, 'priming');
      a.abort();
      const b = await resume(s, a.events[0].id);
      await b.until((x) => x.ended, 15000, 'the answer');
      const msgs = b.messages();
      assert.deepEqual(msgs.map((m) => m.params?.progress ?? m.id), [1, 2, 2]);
      assert.equal(msgs.at(-1).id, 2);
      assert.ok(msgs.at(-1).result);
    });
  }

  if (slow) {
    test(`${path}: a call without intermediate messages is primed once it takes a while, and its answer survives a lost connection`, async () => {
      const s = await session(aos, path);
      const a = await post(s, call(3, slow, { ms: 800 }));
      await a.until((x) => x.events.length >= 1, 15000, 'priming');
      assert.equal(a.events[0].data, '');
      a.abort();
      await sleep(1200);
      const b = await resume(s, a.events[0].id);
      await b.until((x) => x.ended, 15000, 'the answer');
      assert.deepEqual(b.messages(), [{ jsonrpc: '2.0', id: 3, result: { content: [{ type: 'text', text: 'slow done' }] } }]);
    });
  }
}

test('a fast call keeps its one-event answer: no stream, no priming', async () => {
  // priming waits for a call to take 20 ms; a slow machine may make an echo
  // that slow now and then, so one plain answer of five is enough
  const s = await session(aos, '/mcp');
  let plain = 0;
  for (let i = 0; i < 5; i++) {
    const r = await fetch(aos.url + '/mcp', {
      method: 'POST', headers: { ...H, 'Mcp-Session-Id': s.sid },
      body: JSON.stringify(call(4, 'fx__echo', { message: 'hi' })),
    });
    const text = await r.text();
    if (r.headers.get('content-length')) {
      assert.match(text, /^event: message\ndata: \{.*"id":4.*\}\n\n$/s);
      plain++;
    }
  }
  assert.ok(plain >= 1, 'every answer was a stream');
});

test('a client older than 2025-11-25 gets no priming event; its stream events still carry ids', async () => {
  const s = await session(aos, '/mcp/servers/ev', '2025-06-18');
  const a = await post(s, call(5, 'trigger-long-running-operation', { duration: 1, steps: 2 }, { progressToken: 'old' }));
  await a.until((x) => x.events.length >= 1, 15000, 'first progress');
  assert.equal(JSON.parse(a.events[0].data).params.progress, 1);
  assert.match(a.events[0].id, /^\d+-1$/);
  a.abort();
  const b = await resume(s, a.events[0].id);
  await b.until((x) => x.ended, 15000, 'the answer');
  assert.deepEqual(b.messages().map((m) => m.params?.progress ?? m.id), [2, 5]);
});

test('the GET stream: what came while it was away is replayed after its Last-Event-ID', async () => {
  const s = await session(aos, '/mcp');
  const g = await resume(s);
  await g.until((x) => x.events.length >= 1, 15000, 'priming');
  const prime = g.events[0];
  assert.equal(prime.data, '');
  assert.equal((await resume(s)).status, 409, 'one GET stream at a time');
  g.abort();
  await sleep(200);
  // a server's tool list changes while the client is away
  const other = await session(aos, '/mcp');
  const x = await post(other, call(6, 'fx__add-tool', {}));
  if (x.until) await x.until((y) => y.ended);
  const b = await resume(s, prime.id);
  await b.until((y) => y.messages().length >= 1, 15000, 'list_changed');
  assert.equal(b.messages()[0].method, 'notifications/tools/list_changed');
  assert.equal(b.events[0].id, `${streamOf(prime.id)}-${seqOf(prime.id) + 1}`);
  b.abort();
});

test('Last-Event-ID that is not ours, or of another stream or session, is refused and changes nothing', async () => {
  const s = await session(aos, '/mcp/servers/fx');
  const a = await post(s, call(7, 'slow', { ms: 600 }));
  await a.until((x) => x.events.length >= 1, 15000, 'priming');
  for (const bad of ['garbage', '1', '1-', '-1', '1-2-3', '99999999999-1', '1-1x', '+1-1']) {
    const r = await resume(s, bad);
    assert.equal(r.status, 400, bad);
    assert.equal(r.body.error.code, -32600, bad);
    assert.match(r.body.error.message, /not an event id/, bad);
  }
  for (const unknown of ['999-1', `${streamOf(a.events[0].id)}-99`]) {
    const r = await resume(s, unknown);
    assert.equal(r.status, 400, unknown);
    assert.match(r.body.error.message, /no such event/, unknown);
  }
  // another session's id names nothing here
  const t = await session(aos, '/mcp/servers/fx');
  const r = await resume(t, a.events[0].id);
  assert.equal(r.status, 400);
  // the refusals did not touch the stream: it still ends with its answer
  await a.until((x) => x.ended, 15000, 'the answer');
  assert.equal(a.messages().at(-1).id, 7);
  const gone = await fetch(aos.url + '/mcp/servers/fx', { method: 'GET', headers: { Authorization: H.Authorization, Accept: 'text/event-stream', 'Mcp-Session-Id': 'f'.repeat(32), 'Last-Event-ID': '1-1' } });
  assert.equal(gone.status, 404);
});

// A session on /mcp/servers/fx that asked for log lines, flooded with n.
async function flooded(srv, n) {
  const s = await session(srv, '/mcp/servers/fx');
  const lv = await post(s, { jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'info' } });
  if (lv.until) await lv.until((x) => x.ended);
  const a = await post(s, call(2, 'flood', { n }));
  await a.until((x) => x.ended, 30000, 'the flood');
  const evs = a.events.filter((e) => e.data);
  assert.equal(evs.length, n + 1); // n log lines and the answer
  assert.equal(JSON.parse(evs.at(-1).data).result.content[0].text, `flooded ${n}`);
  return { s, evs };
}

test('the replay buffer is bounded: old ids expire by bytes and by age, memory stays bounded', async () => {
  // --mcp-replay-bytes 3000 per session, --mcp-replay-total 4096, 3 s
  const { s, evs } = await flooded(small, 200);
  // the oldest are gone: resuming after one of them would skip events
  const old = await resume(s, evs[0].id);
  assert.equal(old.status, 400);
  assert.match(old.body.error.message, /no longer kept/);
  // the newest are there
  const recent = await resume(s, evs.at(-4).id);
  await recent.until((x) => x.ended);
  assert.deepEqual(recent.events.map((e) => e.id), evs.slice(-3).map((e) => e.id));
  const one = await metric(small, 'aos_mcp_replay_bytes');
  assert.ok(one > 2000 && one <= 3000, `replay bytes ${one}`);
  // two more sessions' events push out the first's: all together stay under 4096
  const t = await flooded(small, 100);
  await flooded(small, 100);
  const all = await metric(small, 'aos_mcp_replay_bytes');
  assert.ok(all > 3000 && all <= 4096, `replay bytes ${all}`);
  const r = await resume(s, evs.at(-4).id);
  assert.equal(r.status, 400, 'pushed out by the other sessions');
  // by age: after 3 s nothing is kept
  await sleep(3300);
  const aged = await resume(t.s, t.evs.at(-2).id);
  assert.equal(aged.status, 400);
  assert.equal(await metric(small, 'aos_mcp_replay_bytes'), 0);
});

test('--mcp-sse-hold-ms: aosd closes a slow call\'s connection, the client polls until the answer', async () => {
  const s = await session(hold, '/mcp');
  const a = await post(s, call(1, 'fx__slow', { ms: 1500 }));
  await a.until((x) => x.ended, 15000, 'aosd to close the POST');
  assert.equal(a.events.length, 1, 'only the priming event');
  let last = a.events[0].id;
  const answers = [];
  let connections = 1;
  while (!answers.length) {
    assert.ok(connections < 20, 'too many polls');
    const b = await resume(s, last);
    connections++;
    await b.until((x) => x.ended, 15000, 'the poll to end');
    for (const e of b.events) last = e.id;
    answers.push(...b.messages());
  }
  assert.ok(connections >= 4, `polled ${connections - 1} times`);
  assert.deepEqual(answers, [{ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'slow done' }] } }]);
  // a client older than 2025-11-25 cannot poll: its connection is held
  const o = await session(hold, '/mcp', '2025-06-18');
  const c = await post(o, call(2, 'fx__slow', { ms: 800 }));
  await c.until((x) => x.ended, 15000, 'the answer');
  assert.equal(c.messages().at(-1).id, 2);
});

test('the official SDK client follows aosd\'s polling to the answer', async () => {
  const client = new Client({ name: 'sdk', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(`${hold.url}/mcp`), { requestInit: { headers: { Authorization: H.Authorization } } });
  await client.connect(transport);
  try {
    const r = await client.callTool({ name: 'fx__slow', arguments: { ms: 1500 } });
    assert.equal(r.content[0].text, 'slow done');
  } finally { await client.close(); }
});
