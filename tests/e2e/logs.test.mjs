// logs.test.mjs - the log service with real clients: fetch for REST, an
// SSE reader over fetch for /api/logs/stream, a raw socket for a client that
// never reads, and the MCP SDK client for the built-in "logs" server. Each
// test writes under its own topic (or trace) so that aosd's own log lines,
// which land in the same store, never disturb the counts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startAosd, assertErrorShape, sleep, TOKEN } from './lib.mjs';

let aos;
before(async () => { aos = await startAosd(); });
after(async () => { await aos?.cleanup(); });

let seq = 0;
const uniq = (p) => `${p}-${process.pid}-${++seq}`;

async function publish(entries, a = aos) {
  const r = await a.api('POST', '/api/logs', { entries });
  assert.equal(r.status, 201, r.text);
  return r.body;
}

async function query(params, a = aos) {
  const r = await a.api('GET', `/api/logs?${new URLSearchParams(params)}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

// Every entry of a query, following next_cursor.
async function queryAll(params, a = aos) {
  const items = [];
  let cursor;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await query({ ...params, ...(cursor ? { cursor } : {}) }, a);
    items.push(...page.items);
    if (!page.next_cursor) return items;
    cursor = page.next_cursor;
  }
  throw new Error('too many pages');
}

async function until(what, fn, ms = 10000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// An SSE reader over fetch: events as {id, event, data}, comments counted.
function openStream(path, headers = {}) {
  const ctl = new AbortController();
  const s = { events: [], comments: [], status: 0, ended: false, close: () => ctl.abort() };
  s.ready = fetch(aos.url + path, {
    headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'text/event-stream', ...headers },
    signal: ctl.signal,
  }).then(async (r) => {
    s.status = r.status;
    s.headers = r.headers;
    if (r.status !== 200) { s.body = await r.text(); s.ended = true; return; }
    (async () => {
      const dec = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of r.body) {
          buf += dec.decode(chunk, { stream: true });
          let i, at = 0;
          while ((i = buf.indexOf('\n\n', at)) >= 0) {
            const block = buf.slice(at, i);
            at = i + 2;
            const ev = { event: 'message', data: '' };
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) s.comments.push(line);
              else if (line.startsWith('id: ')) ev.id = line.slice(4);
              else if (line.startsWith('event: ')) ev.event = line.slice(7);
              else if (line.startsWith('data: ')) ev.data += line.slice(6);
            }
            if (ev.data) { ev.json = JSON.parse(ev.data); s.events.push(ev); }
          }
          buf = buf.slice(at);
        }
      } catch { /* aborted */ }
      s.ended = true;
    })();
  });
  s.logs = () => s.events.filter((e) => e.event === 'log');
  return s;
}

const ids = (items) => items.map((e) => e.id);

test('ingest, then query by each filter', async () => {
  const topic = uniq('filters');
  const trace = uniq('trace');
  const r = await publish([
    { message: 'alpha started', level: 'debug', topic, source: 'svc-a', ts: '2025-01-01T00:00:00Z' },
    { message: 'alpha warned about disk', level: 'warn', topic, source: 'svc-a', trace_id: trace, ts: '2025-01-02T00:00:00Z' },
    { message: 'beta failed hard', level: 'error', topic, source: 'svc-b', trace_id: trace, span_id: 'span-1', ts: '2025-01-03T00:00:00+01:00', attributes: { code: 7, tags: ['x'] } },
    { message: 'beta recovered', topic, source: 'svc-b', ts: 1735948800000 /* 2025-01-04 */ },
  ]);
  assert.equal(r.accepted, 4);
  assert.equal(r.last_id - r.first_id, 3);

  const all = (await query({ topic })).items;
  assert.deepEqual(all.map((e) => e.message), ['beta recovered', 'beta failed hard', 'alpha warned about disk', 'alpha started']);
  const fail = all[1];
  assert.equal(fail.level, 'error');
  assert.equal(fail.ts, '2025-01-02T23:00:00.000Z');
  assert.deepEqual(fail.attributes, { code: 7, tags: ['x'] });
  assert.equal(fail.span_id, 'span-1');
  assert.equal(fail.trace_id, trace);
  assert.equal(all[0].ts, '2025-01-04T00:00:00.000Z');
  assert.equal(all[0].level, 'info');

  const m = async (p) => (await query({ topic, ...p })).items.map((e) => e.message);
  assert.deepEqual(await m({ level: 'warn' }), ['beta failed hard', 'alpha warned about disk']);
  assert.deepEqual(await m({ level: 'error' }), ['beta failed hard']);
  assert.deepEqual(await m({ level: 'trace' }), all.map((e) => e.message));
  assert.deepEqual(await query({ traceId: trace }).then((b) => b.items.map((e) => e.message)),
    ['beta failed hard', 'alpha warned about disk']);
  assert.deepEqual(await m({ source: 'svc-a' }), ['alpha warned about disk', 'alpha started']);
  assert.deepEqual(await m({ after: '2025-01-02T00:00:00Z' }), ['beta recovered', 'beta failed hard']);
  assert.deepEqual(await m({ before: '2025-01-02T00:00:00Z' }), ['alpha started']);
  assert.deepEqual(await m({ after: '2025-01-01T00:00:00Z', before: '2025-01-04T00:00:00Z' }),
    ['beta failed hard', 'alpha warned about disk']);
  assert.deepEqual(await m({ after: String(Date.parse('2025-01-03T12:00:00Z')) }), ['beta recovered']);
  assert.deepEqual(await m({ q: 'beta' }), ['beta recovered', 'beta failed hard']);
  assert.deepEqual(await m({ order: 'asc', source: 'svc-b' }), ['beta failed hard', 'beta recovered']);
});

test('queries see every entry on both sides of the index tail', async () => {
  // The indexes trail the table (0006_logs_index_tail.sql) and take the oldest
  // unindexed entries 1,000 at a time between inserts (src/logs/logs.c): 2,300
  // entries leave some indexed and some not; every filter finds all.
  const topic = uniq('tail');
  const trace = uniq('tail-trace');
  const word = `w${process.pid}x${seq}`;
  const entries = Array.from({ length: 2300 }, (_, i) => ({
    message: `${i % 3 === 0 ? word : 'other'} entry ${i}`,
    topic,
    trace_id: i % 2 ? trace : undefined,
    level: i % 5 === 0 ? 'error' : 'info',
    ts: 1735689600000 + i,
  }));
  for (let i = 0; i < entries.length; i += 500) await publish(entries.slice(i, i + 500));
  const want = (pred) => entries.filter(pred).length;
  assert.equal((await queryAll({ topic, limit: 500 })).length, 2300);
  assert.equal((await queryAll({ topic, level: 'error', limit: 500, order: 'asc' })).length,
    want((e) => e.level === 'error'));
  assert.equal((await queryAll({ traceId: trace, limit: 500 })).length, want((e) => e.trace_id));
  const hits = await queryAll({ q: word, limit: 100 });
  assert.equal(hits.length, want((e) => e.message.startsWith(word)));
  const ids = hits.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a)); // newest first, no duplicate
  assert.equal(new Set(ids).size, ids.length);
  assert.equal((await queryAll({ q: word, traceId: trace, limit: 500 })).length,
    want((e) => e.trace_id && e.message.startsWith(word)));
  const groups = (await query({ topic, q: word, group_by: 'level' })).groups;
  assert.equal(groups.reduce((n, g) => n + g.count, 0), want((e) => e.message.startsWith(word)));
});

test('full-text search: words, prefixes, phrases, and hostile input', async () => {
  const topic = uniq('fts');
  await publish([
    { message: 'Connection reset by peer (ECONNRESET)', topic },
    { message: 'connection refused: port 5432', topic },
    { message: 'disk-full on /dev/sda1', topic },
    { message: 'disk almost full', topic },
    { message: 'user_id=42 logged in', topic },
  ]);
  const m = async (q) => (await query({ topic, q })).items.map((e) => e.message).sort();
  assert.deepEqual(await m('connection'), ['Connection reset by peer (ECONNRESET)', 'connection refused: port 5432']);
  assert.deepEqual(await m('CONNECTION reset'), ['Connection reset by peer (ECONNRESET)']);
  assert.deepEqual(await m('conn*'), ['Connection reset by peer (ECONNRESET)', 'connection refused: port 5432']);
  assert.deepEqual(await m('disk-full'), ['disk-full on /dev/sda1']); // a phrase: adjacent tokens
  assert.deepEqual(await m('full disk'), ['disk almost full', 'disk-full on /dev/sda1']);
  assert.deepEqual(await m('econnreset'), ['Connection reset by peer (ECONNRESET)']);
  assert.deepEqual(await m('user_id=42'), ['user_id=42 logged in']);
  assert.deepEqual(await m('nothing-like-this'), []);
  // FTS5 syntax in q is only text: no 500, no injection
  for (const q of ['OR', 'NEAR(disk', 'a AND OR', 'col:x', '^x', 'x*y*', "'; DROP TABLE logs; --", 'disk" OR "x']) {
    const r = await aos.api('GET', `/api/logs?${new URLSearchParams({ topic, q })}`);
    assert.equal(r.status, 200, `${q}: ${r.text}`);
  }
  for (const q of ['"', '(', '*', '" -- ^']) { // nothing to search for
    const r = await aos.api('GET', `/api/logs?${new URLSearchParams({ topic, q })}`);
    assertErrorShape(assert, r, 400, 'invalid_argument');
  }
  assert.deepEqual(await m('disk" OR "x'), []); // the words disk, OR, x must all appear
  assertErrorShape(assert, await aos.api('GET', `/api/logs?q=${encodeURIComponent('*** --')}`), 400, 'invalid_argument');
});

test('cursor pagination: no overlap, no gap, both orders', async () => {
  const topic = uniq('pages');
  const want = [];
  for (let b = 0; b < 5; b++) {
    const r = await publish(Array.from({ length: 50 }, (_, i) => ({ message: `page entry ${b * 50 + i}`, topic })));
    for (let id = r.first_id; id <= r.last_id; id++) want.push(id);
  }
  // interleave unrelated writes: they must not shift the pages
  await publish([{ message: 'other', topic: uniq('other') }]);
  let got = [];
  let cursor;
  let pages = 0;
  do {
    const page = await query({ topic, limit: 17, ...(cursor ? { cursor } : {}) });
    assert.ok(page.items.length <= 17);
    got.push(...ids(page.items));
    cursor = page.next_cursor;
    pages++;
    if (pages === 3) await publish([{ message: 'late arrival', topic }]); // newer: not in a newest-first walk already started
  } while (cursor);
  assert.equal(pages, Math.ceil(250 / 17));
  assert.deepEqual(got, [...want].reverse());
  // oldest first
  got = ids(await queryAll({ topic, order: 'asc', limit: 33 }));
  assert.equal(new Set(got).size, got.length);
  assert.deepEqual(got.slice(0, 250), want);
  assert.equal(got.length, 251); // and the late arrival at the end
  // a last page that is exactly full says so: no empty extra page
  const exact = await query({ topic, limit: 251 });
  assert.equal(exact.items.length, 251);
  assert.equal(exact.next_cursor, null);
  assert.equal(exact.more, false);
  // a cursor is for one order only
  const first = await query({ topic, limit: 5 });
  assertErrorShape(assert, await aos.api('GET', `/api/logs?topic=${topic}&order=asc&cursor=${first.next_cursor}`), 400, 'invalid_argument');
});

test('group_by counts per topic, level and source', async () => {
  const source = uniq('grp');
  const entries = [];
  for (let i = 0; i < 7; i++) entries.push({ message: 'g', topic: 'grp.a', level: 'info', source });
  for (let i = 0; i < 3; i++) entries.push({ message: 'g', topic: 'grp.b', level: 'error', source });
  for (let i = 0; i < 2; i++) entries.push({ message: 'g', level: 'warn', source });
  await publish(entries);
  const g = async (by, extra = {}) => (await query({ source, group_by: by, ...extra })).groups;
  assert.deepEqual(await g('topic'), [{ key: 'grp.a', count: 7 }, { key: 'grp.b', count: 3 }, { key: null, count: 2 }]);
  assert.deepEqual(await g('level'), [{ key: 'info', count: 7 }, { key: 'error', count: 3 }, { key: 'warn', count: 2 }]);
  assert.deepEqual(await g('source'), [{ key: source, count: 12 }]);
  assert.deepEqual(await g('topic', { level: 'warn' }), [{ key: 'grp.b', count: 3 }, { key: null, count: 2 }]);
});

test('bad input is refused with 400 and changes nothing', async () => {
  const topic = uniq('bad');
  await publish([{ message: 'the only one', topic }]);
  const cases = [
    [[{ message: 'ok', topic }, { message: 'bad level', topic, level: 'loud' }], 1, 'level'],
    [[{ message: 'ok', topic }, { message: 'ok', topic }, { topic }], 2, 'message'],
    [[{ message: 'ok', topic, ts: 'yesterday' }], 0, 'ts'],
    [[{ message: 'ok', topic, attributes: 'no' }], 0, 'attributes'],
    [[{ message: 'ok', topic, trace_id: 'has space' }], 0, 'trace_id'],
    [[{ message: 'ok', topic, colour: 'red' }], 0, 'colour'],
    [[{ message: 'ok', topic }, 'not an object'], 1, undefined],
  ];
  for (const [entries, index, field] of cases) {
    const r = await aos.api('POST', '/api/logs', { entries });
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.equal(r.body.error.index, index, r.text);
    assert.equal(r.body.error.field, field, r.text);
    assert.match(r.body.error.message, new RegExp(`entries\\[${index}\\]`));
  }
  for (const body of ['{not json', '"text"', '{"entries":[]}', '{"entries":{}}', '{"entries":[{"message":"x"}],"extra":1}', '[]']) {
    const r = await aos.api('POST', '/api/logs', body);
    assert.equal(r.status, 400, `${body}: ${r.text}`);
  }
  assert.deepEqual((await query({ topic })).items.map((e) => e.message), ['the only one']);
  for (const qs of ['level=loud', 'limit=0', 'limit=1001', 'limit=x', 'cursor=garbage!', 'after=tuesday',
    'before=2025-13-01T00:00:00Z', 'group_by=message', 'order=sideways', 'traceId=a%20b', 'topic=']) {
    const r = await aos.api('GET', `/api/logs?${qs}`);
    assertErrorShape(assert, r, 400, 'invalid_argument');
  }
  assertErrorShape(assert, await aos.api('GET', '/api/logs', undefined, null), 401, 'unauthorized');
  assertErrorShape(assert, await aos.api('POST', '/api/logs', [{ message: 'x' }], null), 401, 'unauthorized');
});

// Issue 12, item 11: a filter that is not UTF-8 was dropped, and the query
// then returned everything.
test('a filter that is not UTF-8 is refused, naming it, not dropped', async () => {
  const topic = uniq('utf8');
  await publish([{ message: 'one entry', topic }]);
  for (const name of ['level', 'topic', 'source', 'q', 'traceId', 'trace_id', 'after', 'before', 'limit',
    'cursor', 'order', 'group_by']) {
    const r = await aos.api('GET', `/api/logs?${name === 'topic' ? '' : `topic=${topic}&`}${name}=%ff`);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.equal(r.body.error.field, name, r.text);
    assert.match(r.body.error.message, /UTF-8/, r.text);
  }
  const st = openStream(`/api/logs/stream?topic=ok&source=%c3%28`);
  await st.ready;
  assert.equal(st.status, 400, st.body);
  assert.equal(JSON.parse(st.body).error.field, 'source');
  const resume = openStream(`/api/logs/stream?topic=${topic}`, { 'Last-Event-ID': '1\xff' });
  await resume.ready;
  assert.equal(resume.status, 400, resume.body);
  assert.equal(JSON.parse(resume.body).error.field, 'Last-Event-ID');
  // valid UTF-8 still filters
  assert.equal((await query({ topic, q: 'één' })).items.length, 0);
  assert.equal((await query({ topic })).items.length, 1);
});

// Issue 12, item 11: an Operator could publish lines that pass for aosd's
// own or for a child's stderr.
test("only aosd writes the sources 'aosd' and 'upstream:*'", async () => {
  const topic = uniq('spoof');
  for (const source of ['aosd', 'AOSD', 'upstream:everything', 'Upstream:x']) {
    const entries = [{ message: 'fine', topic, source: 'agent-1' }, { message: 'spoofed', topic, source }];
    // the body scanned without a tree, the same as an object, then the MCP tool's forms
    for (const [path, body] of [['/api/logs', entries], ['/api/logs', JSON.stringify({ entries })],
      ['/mcp/logs/publish', { entries }]]) {
      const r = await aos.api('POST', path, body);
      assertErrorShape(assert, r, 403, 'forbidden');
      assert.equal(r.body.error.index, 1, r.text);
      assert.equal(r.body.error.field, 'source', r.text);
    }
    const viaCall = await aos.api('POST', '/mcp/call', { server: 'logs', tool: 'logs.publish', args: { entries } });
    assert.equal(viaCall.status, 403, viaCall.text);
  }
  assert.deepEqual((await query({ topic })).items, []);
  // names that only look alike are anyone's
  await publish([{ message: 'ok', topic, source: 'aosd-agent' }, { message: 'ok', topic, source: 'my upstream:x' }]);
  assert.equal((await query({ topic })).items.length, 2);
});

test('durable before the 2xx: entries survive a kill and a restart', async () => {
  const a = await startAosd();
  const topic = uniq('durable');
  try {
    const r = await a.api('POST', '/api/logs', { entries: Array.from({ length: 100 }, (_, i) => ({ message: `durable ${i}`, topic })) });
    assert.equal(r.status, 201, r.text);
    a.proc.kill('SIGKILL'); // no shutdown: only what was committed before the answer is there
    await a.exited;
    const b = await startAosd({ dataDir: a.dataDir });
    try {
      const items = await queryAll({ topic }, b);
      assert.equal(items.length, 100);
      assert.deepEqual(ids(items).reverse(), Array.from({ length: 100 }, (_, i) => r.body.first_id + i));
      // new ids continue after the old ones
      const r2 = await b.api('POST', '/api/logs', [{ message: 'after restart', topic }]);
      assert.ok(r2.body.first_id > r.body.last_id);
    } finally { await b.stop(); }
  } finally { await a.cleanup(); }
});

test('stream: live entries with filters, heartbeat, resume by Last-Event-ID and after_id', async () => {
  const topic = uniq('stream');
  const s = openStream(`/api/logs/stream?${new URLSearchParams({ topic, level: 'info' })}`);
  await s.ready;
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type'), /text\/event-stream/);
  await until('the stream to open', async () => s.comments.length > 0);
  const r1 = await publish([
    { message: 'one', topic }, { message: 'filtered out by level', topic, level: 'debug' },
    { message: 'other topic', topic: uniq('x') }, { message: 'two', topic, level: 'error' },
  ]);
  await until('two live entries', async () => s.logs().length >= 2);
  assert.deepEqual(s.logs().map((e) => e.json.message), ['one', 'two']);
  assert.deepEqual(s.logs().map((e) => Number(e.id)), [r1.first_id, r1.first_id + 3]);
  s.close();
  const lastSeen = s.logs().at(-1).id;

  // while nobody listens
  const missed = await publish([{ message: 'three', topic }, { message: 'four', topic, level: 'debug' }, { message: 'five', topic }]);
  // resume with the header an EventSource sends
  const s2 = openStream(`/api/logs/stream?${new URLSearchParams({ topic, level: 'info' })}`, { 'Last-Event-ID': lastSeen });
  await s2.ready;
  await until('the replay', async () => s2.logs().length >= 2);
  const live = await publish([{ message: 'six', topic }]);
  await until('live after replay', async () => s2.logs().length >= 3);
  await sleep(200);
  const got = s2.logs();
  assert.deepEqual(got.map((e) => e.json.message), ['three', 'five', 'six']);
  assert.deepEqual(got.map((e) => Number(e.id)), [missed.first_id, missed.first_id + 2, live.first_id]);
  s2.close();

  // ?after_id= from the start of this topic: everything, once, in order
  const s3 = openStream(`/api/logs/stream?${new URLSearchParams({ topic, after_id: '0' })}`);
  await s3.ready;
  await until('the full replay', async () => s3.logs().length >= 7);
  await sleep(200);
  assert.deepEqual(s3.logs().map((e) => e.json.message), ['one', 'filtered out by level', 'two', 'three', 'four', 'five', 'six']);
  s3.close();

  for (const qs of ['after_id=-1', 'level=loud', 'q=***']) {
    const bad = openStream(`/api/logs/stream?${qs}`);
    await bad.ready;
    assert.equal(bad.status, 400, qs);
  }
  const badHeader = openStream('/api/logs/stream', { 'Last-Event-ID': 'yesterday' });
  await badHeader.ready;
  assert.equal(badHeader.status, 400);
  assert.match(badHeader.body, /Last-Event-ID/);
});

test('stream: concurrent writers, a resume in the middle: every entry once, in id order', async () => {
  const topic = uniq('concurrent');
  const a = openStream(`/api/logs/stream?topic=${topic}`);
  await a.ready;
  await until('open', async () => a.comments.length > 0);
  const writes = [];
  let b;
  for (let i = 0; i < 40; i++) {
    writes.push(publish(Array.from({ length: 25 }, (_, k) => ({ message: `w${i}-${k}`, topic }))));
    if (i === 20) {
      // resume from what the first stream has seen so far, while batches are in flight
      const seen = a.logs().length ? a.logs().at(-1).id : '0';
      b = { from: Number(seen), s: openStream(`/api/logs/stream?topic=${topic}&after_id=${seen}`) };
    }
  }
  const results = await Promise.all(writes);
  const all = results.flatMap((r) => Array.from({ length: r.accepted }, (_, k) => r.first_id + k)).sort((x, y) => x - y);
  assert.equal(all.length, 1000);
  await until('stream a complete', async () => a.logs().length >= 1000);
  await until('stream b complete', async () => b.s.logs().length >= all.filter((id) => id > b.from).length);
  await sleep(300);
  assert.deepEqual(a.logs().map((e) => Number(e.id)), all);
  assert.deepEqual(b.s.logs().map((e) => Number(e.id)), all.filter((id) => id > b.from));
  a.close();
  b.s.close();
});

test('stream: a full-text filter matches live entries as the query does', async () => {
  const topic = uniq('streamq');
  const s = openStream(`/api/logs/stream?${new URLSearchParams({ topic, q: 'disk ful*' })}`);
  await s.ready;
  await until('open', async () => s.comments.length > 0);
  await publish([
    { message: 'disk full', topic }, { message: 'Disk-Fullness rising', topic }, { message: 'full disk', topic },
    { message: 'diskfull', topic }, { message: 'disk is fine', topic },
  ]);
  const viaQuery = (await query({ topic, q: 'disk ful*', order: 'asc' })).items.map((e) => e.message);
  await until('matches', async () => s.logs().length >= viaQuery.length);
  await sleep(200);
  assert.deepEqual(s.logs().map((e) => e.json.message), viaQuery);
  assert.deepEqual(viaQuery, ['disk full', 'Disk-Fullness rising', 'full disk']);
  s.close();
});

test('stream: heartbeat comment every 15 s', { timeout: 40000 }, async () => {
  const s = openStream(`/api/logs/stream?topic=${uniq('hb')}`);
  await s.ready;
  await until('a heartbeat', async () => s.comments.some((c) => c === ': ping'), 17000);
  s.close();
});

test('stream: a client that does not read is dropped, others are not', { timeout: 120000 }, async () => {
  const topic = uniq('slow');
  const { hostname, port } = new URL(aos.url);
  // a raw client: sends the request, then never reads
  const sock = net.connect({ host: hostname, port: Number(port) });
  await new Promise((r) => sock.on('connect', r));
  sock.write(`GET /api/logs/stream?topic=${topic} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
    `Authorization: Bearer ${TOKEN}\r\nAccept: text/event-stream\r\n\r\n`);
  sock.pause();
  const fast = openStream(`/api/logs/stream?topic=${topic}`);
  await fast.ready;
  await sleep(300);
  const big = 'x'.repeat(4000);
  let sent = 0;
  for (let b = 0; b < 40; b++) {
    await publish(Array.from({ length: 250 }, (_, i) => ({ message: `${big} ${b}-${i}`, topic })));
    sent += 250;
  }
  await until('the fast reader to get everything', async () => fast.logs().length >= sent, 60000);
  assert.equal(new Set(fast.logs().map((e) => e.id)).size, sent);
  // the slow one was ended: draining its socket now shows the end event
  sock.resume();
  let text = '';
  sock.on('data', (d) => { text += d.toString('latin1'); });
  await until('the slow stream to end', async () => /event: end/.test(text), 30000);
  assert.match(text, /slow consumer/);
  const ended = text.slice(text.indexOf('event: end'));
  const lastId = Number(/"last_id":(\d+)/.exec(ended)[1]);
  assert.ok(lastId > 0 && lastId < Number(fast.logs().at(-1).id));
  sock.destroy();
  fast.close();
});

test("aosd's own log lines and a child's stderr are in the log service", async () => {
  // the start-up line, captured from aos_log
  const own = await until('the listening line', async () => {
    const b = await query({ topic: 'aosd', q: 'listening' });
    return b.items.length ? b.items : null;
  });
  assert.equal(own[0].source, 'aosd');
  assert.equal(own[0].attributes.port, Number(new URL(aos.url).port));
  // a stdio child that writes to stderr
  const marker = uniq('childmarker').replace(/-/g, '');
  const name = uniq('noisy').replace(/-/g, '');
  const r = await aos.api('POST', '/mcp/registry', {
    name, transport: 'stdio', command: '/bin/sh', args: ['-c', `echo "${marker} from the child" >&2; exec cat >/dev/null`],
  });
  assert.ok(r.status === 201 || r.status === 200, r.text);
  const found = await until('the child stderr line', async () => {
    const b = await query({ q: marker });
    return b.items.length ? b.items : null;
  });
  assert.equal(found[0].message, `${marker} from the child`);
  assert.equal(found[0].topic, 'upstream');
  assert.equal(found[0].source, `upstream:${name}`);
  assert.equal(found[0].attributes.stream, 'stderr');
  const bySource = await query({ source: `upstream:${name}` });
  assert.ok(bySource.items.some((e) => e.message.includes(marker)));
  await aos.api('DELETE', `/mcp/registry/${name}`);
});

// Issue 12, item 11: a line that was not UTF-8 was lost in aos_log, for
// the log service and for aosd's stderr alike.
test("a child's stderr line that is not UTF-8 is kept, with U+FFFD", async () => {
  const marker = uniq('badbytes').replace(/-/g, '');
  const name = uniq('latin1').replace(/-/g, '');
  // \351 is é in Latin-1, a lone continuation byte in UTF-8; the long line
  // is cut by aos_log's limit (1023 bytes) inside a two-byte é
  const long = `${marker}L${'x'.repeat(1022 - marker.length - 1)}`;
  const r = await aos.api('POST', '/mcp/registry', {
    name, transport: 'stdio', command: '/bin/sh',
    args: ['-c', `printf '${marker} caf\\351 \\377 end\\n' >&2; printf '${long}\\303\\251\\303\\251\\n' >&2; exec cat >/dev/null`],
  });
  assert.ok(r.status === 201 || r.status === 200, r.text);
  try {
    const found = await until('the child stderr lines', async () => {
      const b = await query({ source: `upstream:${name}`, order: 'asc' });
      return b.items.length >= 2 ? b.items : null;
    });
    assert.equal(found[0].message, `${marker} caf\ufffd \ufffd end`);
    assert.equal(found[1].message, long, 'a character cut by the limit is dropped, not replaced');
    assert.ok(aos.logs().includes(`${marker} caf\ufffd \ufffd end`), 'and on aosd\'s stderr');
  } finally {
    await aos.api('DELETE', `/mcp/registry/${name}`);
  }
});

test('secrets are redacted before storage: not in the database file', async () => {
  const topic = uniq('redact');
  const bearer = 'Zm9vYmFyYmF6cXV4LXNlY3JldC10b2tlbi0x';
  const apiKey = 'sk-live-4f9a8b7c6d5e4f3a2b1c0d9e';
  const pw = 'hunter2-correct-horse';
  await publish([
    { message: `calling upstream with Authorization: Bearer ${bearer}`, topic },
    { message: `loaded key ${apiKey} for the run`, topic, attributes: { password: pw, note: `owner token ${TOKEN}`, n: 1 } },
  ]);
  const items = (await query({ topic, order: 'asc' })).items;
  assert.equal(items[0].message, 'calling upstream with Authorization: Bearer [REDACTED]');
  assert.equal(items[1].message, 'loaded key [REDACTED] for the run');
  assert.deepEqual(items[1].attributes, { password: '[REDACTED]', note: 'owner token [REDACTED]', n: 1 });
  // nothing in the files: table, full-text index, WAL
  const files = ['aos.db', 'aos.db-wal'].map((f) => join(aos.dataDir, f)).filter(existsSync);
  assert.ok(files.length > 0);
  const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
  for (const secret of [bearer, apiKey, pw, TOKEN, 'sk-live-4f9a']) {
    assert.equal(bytes.indexOf(secret), -1, `${secret} is in the database`);
  }
  // ...while what is not secret is there
  assert.ok(bytes.indexOf('for the run') >= 0);
});

async function mcpClient(path) {
  const client = new Client({ name: 'logs-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(aos.url + path), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  });
  await client.connect(transport);
  return client;
}

test('MCP: logs.publish, logs.query, logs.subscribe through /mcp', async () => {
  const c = await mcpClient('/mcp');
  try {
    const { tools } = await c.listTools();
    for (const n of ['logs__logs.publish', 'logs__logs.query', 'logs__logs.subscribe']) {
      const t = tools.find((x) => x.name === n);
      assert.ok(t, `${n} in ${tools.map((x) => x.name)}`);
      assert.equal(t.inputSchema.type, 'object');
    }
    const pub = tools.find((x) => x.name === 'logs__logs.publish');
    assert.deepEqual(pub.inputSchema.required, ['entries']);
    assert.equal(pub.inputSchema.properties.entries.items.properties.level.enum.length, 6);

    const topic = uniq('mcp');
    // subscribe first: no entries, a cursor at the newest
    const s0 = await c.callTool({ name: 'logs__logs.subscribe', arguments: { topic } });
    assert.equal(s0.isError, undefined);
    assert.deepEqual(s0.structuredContent.items, []);
    const cursor0 = s0.structuredContent.next_cursor;
    assert.equal(typeof cursor0, 'string');

    const p = await c.callTool({ name: 'logs__logs.publish', arguments: { entries: [
      { message: 'from an agent', topic, level: 'warn', trace_id: 'tr-mcp-1' },
      { message: 'second from the agent', topic },
    ] } });
    assert.equal(p.structuredContent.accepted, 2);
    assert.deepEqual(JSON.parse(p.content[0].text), p.structuredContent);

    const q = await c.callTool({ name: 'logs__logs.query', arguments: { topic, level: 'warn' } });
    assert.deepEqual(q.structuredContent.items.map((e) => e.message), ['from an agent']);
    const g = await c.callTool({ name: 'logs__logs.query', arguments: { topic, group_by: 'level' } });
    assert.deepEqual(g.structuredContent.groups, [{ key: 'info', count: 1 }, { key: 'warn', count: 1 }]);

    const s1 = await c.callTool({ name: 'logs__logs.subscribe', arguments: { topic, cursor: cursor0 } });
    assert.deepEqual(s1.structuredContent.items.map((e) => e.message), ['from an agent', 'second from the agent']);
    const s2 = await c.callTool({ name: 'logs__logs.subscribe', arguments: { topic, cursor: s1.structuredContent.next_cursor } });
    assert.deepEqual(s2.structuredContent.items, []);
    assert.equal(s2.structuredContent.next_cursor, s1.structuredContent.next_cursor);
    await c.callTool({ name: 'logs__logs.publish', arguments: { entries: [{ message: 'third', topic }] } });
    const s3 = await c.callTool({ name: 'logs__logs.subscribe', arguments: { topic, cursor: s2.structuredContent.next_cursor } });
    assert.deepEqual(s3.structuredContent.items.map((e) => e.message), ['third']);

    // bad arguments are the tool's error, for the model to read; nothing stored
    const bad = await c.callTool({ name: 'logs__logs.publish', arguments: { entries: [{ message: 'ok', topic }, { topic }] } });
    assert.equal(bad.isError, true);
    assert.match(bad.content[0].text, /entries\[1\]\.message/);
    const badq = await c.callTool({ name: 'logs__logs.query', arguments: { level: 'loud' } });
    assert.equal(badq.isError, true);
    const count = await c.callTool({ name: 'logs__logs.query', arguments: { topic } });
    assert.equal(count.structuredContent.items.length, 3);
  } finally { await c.close(); }

  const one = await mcpClient('/mcp/servers/logs');
  try {
    const { tools } = await one.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['logs.publish', 'logs.query', 'logs.subscribe']);
    const q = await one.callTool({ name: 'logs.query', arguments: { topic: 'aosd', limit: 1 } });
    assert.equal(q.structuredContent.items.length, 1);
  } finally { await one.close(); }
});

test('REST forms: POST /mcp/logs/publish, /query, /subscribe', async () => {
  const topic = uniq('restmcp');
  const s0 = await aos.api('POST', '/mcp/logs/subscribe', { topic });
  assert.equal(s0.status, 200, s0.text);
  const p = await aos.api('POST', '/mcp/logs/publish', { entries: [{ message: 'rest form', topic, source: 'curl' }] });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.body.accepted, 1);
  const q = await aos.api('POST', '/mcp/logs/query', { topic, source: 'curl' });
  assert.deepEqual(q.body.items.map((e) => e.message), ['rest form']);
  const s1 = await aos.api('POST', '/mcp/logs/subscribe', { topic, cursor: s0.body.next_cursor });
  assert.deepEqual(s1.body.items.map((e) => e.id), [p.body.first_id]);
  // the same tool through /mcp/call
  const viaCall = await aos.api('POST', '/mcp/call', { server: 'logs', tool: 'logs.query', args: { topic } });
  assert.equal(viaCall.status, 200, viaCall.text);
  assert.match(JSON.stringify(viaCall.body), /rest form/);

  const bad = await aos.api('POST', '/mcp/logs/publish', { entries: [{ message: 'x', level: 'nope' }] });
  assertErrorShape(assert, bad, 400, 'invalid_argument');
  assert.equal(bad.body.error.field, 'level');
  assertErrorShape(assert, await aos.api('POST', '/mcp/logs/query', { limit: -1 }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/mcp/logs/query', { unknown: 1 }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/mcp/logs/subscribe', '[1]'), 400, 'invalid_argument');
  assert.equal((await aos.api('POST', '/mcp/logs/query', { topic })).body.items.length, 1);
});

test('retention by row count and by age', { timeout: 60000 }, async () => {
  const a = await startAosd({ env: { AOS_LOG_RETENTION_ROWS: '100', AOS_LOG_RETENTION_CHECK: '1' } });
  try {
    const topic = uniq('retain');
    let last;
    for (let b = 0; b < 5; b++) {
      const r = await a.api('POST', '/api/logs', Array.from({ length: 100 }, (_, i) => ({ message: `r ${b} ${i}`, topic })));
      last = r.body.last_id;
    }
    const left = await until('retention', async () => {
      const items = await queryAll({ limit: 1000 }, a);
      return items.length <= 100 ? items : null;
    }, 15000);
    // the newest stayed
    assert.equal(left[0].id >= last, true);
    assert.ok(ids(left).includes(last));
    // the full-text index followed the table
    const fts = await queryAll({ q: 'r', topic }, a);
    assert.ok(fts.length <= 100);
  } finally { await a.cleanup(); }
  // by age: entries are created now, so 0 days would delete everything: use a
  // start with retention_days=1 and check entries of today stay
  const b = await startAosd({ env: { AOS_LOG_RETENTION_DAYS: '1', AOS_LOG_RETENTION_ROWS: '0', AOS_LOG_RETENTION_CHECK: '1' } });
  try {
    const topic = uniq('age');
    await b.api('POST', '/api/logs', [{ message: 'fresh', topic, ts: '2001-01-01T00:00:00Z' }]);
    await sleep(2500);
    assert.equal((await query({ topic }, b)).items.length, 1); // age counts from storage, not from ts
  } finally { await b.cleanup(); }
});

test('metrics show the log service', async () => {
  const r = await aos.api('GET', '/metrics');
  assert.match(r.text, /aos_logs_entries_total\{via="rest"\} \d+/);
  assert.match(r.text, /aos_logs_entries_total\{via="self"\} \d+/);
  assert.match(r.text, /aos_logs_streams \d+/);
});
