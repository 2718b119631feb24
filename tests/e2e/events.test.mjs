// events.test.mjs - the event bus and the value-event stream with real
// clients: an SSE reader on node:http (it can stop reading, like a stalled
// browser tab) against a real aosd. Whitelist, filters, resume after a
// reconnect and after a restart (ids counted and compared with the store),
// the 1-second aggregation window, a slow consumer cut off while a fast one
// gets everything, history paging, publishing and its checks.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { startAosd, sleep, assertErrorShape, sseClient, TOKEN } from './lib.mjs';

const VALUE = new Set(['task.acceptance', 'task.progress.milestone', 'task.receipt',
  'approval.request', 'anomaly.detected', 'recovery.start', 'recovery.done']);
const uid = (p) => `${p}-${randomUUID().slice(0, 8)}`;

let aos;
const streams = []; // every client a test opened: closed after it, pass or fail
afterEach(() => { for (const x of streams.splice(0)) x.close(); });
before(async () => {
  aos = await startAosd({ args: ['--events-heartbeat-ms', '300', '--events-buffer', '65536'] });
});
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  // a clean stop: streams, subscriptions and pending jobs all released (a
  // sanitizer build reports leaks and errors here)
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

// An SSE client on node:http (lib.mjs), closed after each test.
function sse(target, path, opts) {
  const s = sseClient(target, path, opts);
  streams.push(s);
  return s;
}

async function publish(target, events) {
  const r = await target.api('POST', '/api/events', events);
  assert.equal(r.status, 201, r.text);
  return r.body.ids;
}

async function metric(target, name) {
  const r = await fetch(`${target.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const m = (await r.text()).match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// All value events of a trace, oldest first, paged through the history route.
async function history(target, trace) {
  const out = [];
  let before = '';
  for (;;) {
    const r = await target.api('GET', `/agent/events/history?trace_id=${trace}&limit=500${before}`);
    assert.equal(r.status, 200, r.text);
    out.push(...r.body.events);
    if (r.body.next_before === null) break;
    before = `&before=${r.body.next_before}`;
  }
  return out.reverse();
}

// What the test published itself: the Analyzer answers an anomaly with
// the next version of its card (topic "analyzer"), which these tests do
// not count.
const own = (x) => x.events.filter((e) => e.topic !== 'analyzer');
const ownIds = (x) => own(x).map((e) => e.id);

test('only whitelisted value events are streamed, live and in replay', async () => {
  const tr = uid('wl');
  const s = sse(aos, `/agent/events?trace_id=${tr}`);
  await s.opened;
  assert.equal(s.status, 200);
  assert.match(s.res.headers['content-type'], /^text\/event-stream/);
  const types = ['exec.step', 'task.acceptance', 'log.entry', 'task.progress.milestone', 'span.end',
    'task.receipt', 'approval.request', 'anomaly.detected', 'plan.created', 'recovery.start',
    'recovery.done', 'task.progress'];
  const ids = await publish(aos, types.map((type, i) => ({ type, trace_id: tr, payload: { i } })));
  assert.ok(ids.every((id) => Number.isInteger(id)), 'every event got an id');
  const valueIds = ids.filter((_, i) => VALUE.has(types[i]));
  assert.equal(valueIds.length, 7);
  await s.waitFor((x) => own(x).length >= 7);
  await sleep(300); // nothing else may follow
  assert.deepEqual(ownIds(s), valueIds);
  assert.ok(s.events.every((e) => VALUE.has(e.type)));
  for (const e of own(s)) {
    assert.equal(e.trace_id, tr);
    assert.equal(typeof e.card_id, 'string');
    assert.equal(e.card_version, 1);
    assert.match(e.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(e.severity, 'info');
  }
  // a replay from before them applies the same whitelist
  const r = sse(aos, `/agent/events?trace_id=${tr}&after=${ids[0] - 1}`);
  await r.waitFor((x) => own(x).length >= 7);
  await sleep(200);
  assert.deepEqual(ownIds(r), valueIds);
  // and so does the unfiltered stream
  const all = sse(aos, `/agent/events?after=${ids[0] - 1}`);
  await all.waitFor((x) => x.ids().includes(valueIds[6]));
  assert.deepEqual(ownIds(all).filter((id) => id <= ids.at(-1)), valueIds);
  for (const x of [s, r, all]) x.close();
});

test('filters: trace_id and project', async () => {
  const A = uid('ta'), B = uid('tb'), P = uid('pp'), Q = uid('pq');
  const sA = sse(aos, `/agent/events?trace_id=${A}`);
  const sP = sse(aos, `/agent/events?project=${P}`);
  const sAP = sse(aos, `/agent/events?trace_id=${A}&project=${P}`);
  const sAll = sse(aos, '/agent/events');
  await Promise.all([sA.opened, sP.opened, sAP.opened, sAll.opened]);
  const spec = [[A, P], [A, Q], [B, P], [B, Q], [A, null], [null, P]];
  const ids = await publish(aos, spec.map(([t, p], i) => ({
    type: 'task.acceptance', ...(t ? { trace_id: t } : {}), ...(p ? { project_id: p } : {}), payload: { i },
  })));
  const pick = (...ix) => ix.map((i) => ids[i]);
  await sAll.waitFor((x) => x.ids().includes(ids[5]));
  await sleep(300);
  assert.deepEqual(sA.ids(), pick(0, 1, 4));
  assert.deepEqual(sP.ids(), pick(0, 2, 5));
  assert.deepEqual(sAP.ids(), pick(0));
  assert.deepEqual(sAll.ids(), ids);
  assert.equal(sP.events[0].project_id, P);
  for (const x of [sA, sP, sAP, sAll]) x.close();
});

test('resume after a reconnect: Last-Event-ID or ?after=, no loss, no duplicate', async () => {
  const tr = uid('rc');
  const batch = (n, from) => Array.from({ length: n }, (_, i) => ({
    type: i % 4 === 3 ? 'exec.step' : 'task.acceptance', trace_id: tr, payload: { n: from + i },
  }));
  const isValue = (b) => b.map((e) => VALUE.has(e.type));
  const b1 = batch(40, 0);
  const ids1 = (await publish(aos, b1)).filter((_, i) => isValue(b1)[i]);
  const s1 = sse(aos, `/agent/events?trace_id=${tr}&after=${ids1[0] - 1}`);
  await s1.waitFor((x) => x.events.length >= 10);
  s1.close();
  const lastSeen = s1.events.at(-1).id;
  // published while the client is away
  const b2 = batch(40, 40);
  const ids2 = (await publish(aos, b2)).filter((_, i) => isValue(b2)[i]);
  // the reconnect carries Last-Event-ID; it wins over the ?after= of the first URL
  const s2 = sse(aos, `/agent/events?trace_id=${tr}&after=${ids1[0] - 1}`, { headers: { 'Last-Event-ID': String(lastSeen) } });
  const all = [...ids1, ...ids2];
  await s2.waitFor((x) => x.ids().includes(ids2.at(-1)));
  // and it goes on live
  const b3 = batch(8, 80);
  const ids3 = (await publish(aos, b3)).filter((_, i) => isValue(b3)[i]);
  all.push(...ids3);
  await s2.waitFor((x) => x.ids().includes(ids3.at(-1)));
  await sleep(200);
  const got = [...s1.ids(), ...s2.ids()];
  assert.deepEqual(got, all, 'every value event once, in order');
  assert.equal(new Set(got).size, got.length);
  assert.equal(s2.ids()[0], all.find((id) => id > lastSeen));

  // ?after= alone
  const s3 = sse(aos, `/agent/events?trace_id=${tr}&after=${ids2[4]}`);
  await s3.waitFor((x) => x.ids().includes(ids3.at(-1)));
  assert.deepEqual(s3.ids(), all.filter((id) => id > ids2[4]));
  // a long replay while new events keep coming: the hand-over from replay
  // to live neither drops nor repeats any
  const big = [];
  for (let k = 0; k < 12; k++) big.push(...await publish(aos, batch(100, 100 + k * 100).map((e) => ({ ...e, type: 'task.acceptance' }))));
  const s4 = sse(aos, `/agent/events?trace_id=${tr}&after=${ids1[0] - 1}`);
  const during = [];
  for (let k = 0; k < 10; k++) {
    during.push(...await publish(aos, [{ type: 'task.receipt', trace_id: tr, payload: { k } }]));
    await sleep(5);
  }
  const expected = [...all, ...big, ...during];
  await s4.waitFor((x) => x.ids().includes(during.at(-1)), 20000, 'the replay and the live tail');
  await sleep(300);
  assert.equal(s4.events.length, expected.length);
  assert.deepEqual(s4.ids(), expected);
  s4.close();
  // a bad id is refused
  const bad = await aos.api('GET', '/agent/events?after=x1', undefined, TOKEN);
  assertErrorShape(assert, bad, 400, 'invalid_argument');
  const bad2 = sse(aos, '/agent/events', { headers: { 'Last-Event-ID': '-5' } });
  await bad2.opened;
  assert.equal(bad2.status, 400);
  for (const x of [s2, s3, bad2]) x.close();
});

test('resume across an aosd restart: no loss, no duplicate, folds kept', async () => {
  const a1 = await startAosd({ keep: true });
  const dataDir = a1.dataDir;
  let a2;
  try {
    const tr = uid('rs');
    const ev = (n) => ({ type: 'task.receipt', trace_id: tr, payload: { n } });
    const idsA = await publish(a1, Array.from({ length: 40 }, (_, i) => ev(i)));
    const s1 = sse(a1, `/agent/events?trace_id=${tr}&after=0`);
    await s1.waitFor((x) => x.events.length === 40);
    s1.close();
    const lastSeen = s1.events.at(-1).id;
    assert.deepEqual(s1.ids(), idsA);
    const idsB = await publish(a1, Array.from({ length: 20 }, (_, i) => ev(40 + i)));
    // a milestone written at once, and one folded, pending at shutdown
    const m = await publish(a1, [
      { type: 'task.progress.milestone', trace_id: tr, payload: { step: 1 } },
      { type: 'task.progress.milestone', trace_id: tr, payload: { step: 2 } },
    ]);
    assert.ok(Number.isInteger(m[0]));
    assert.equal(m[1], null, 'the second milestone is folded');
    const open = sse(a1, '/agent/events'); // still connected at shutdown
    await open.opened;
    const { code } = await a1.stop();
    assert.equal(code, 0, a1.logs().slice(-2000));
    await open.waitFor((x) => x.ended, 5000, 'the stream to end at shutdown');

    a2 = await startAosd({ dataDir });
    const idsC = await publish(a2, Array.from({ length: 20 }, (_, i) => ev(60 + i)));
    assert.ok(idsC[0] > m[0], 'ids keep growing across the restart');
    const s2 = sse(a2, `/agent/events?trace_id=${tr}`, { headers: { 'Last-Event-ID': String(lastSeen) } });
    await s2.waitFor((x) => x.events.length >= 20 + 2 + 20, 10000, 'the replay');
    await sleep(300);
    const stored = (await history(a2, tr)).map((e) => e.id);
    assert.deepEqual(s2.ids(), stored.filter((id) => id > lastSeen));
    assert.equal(s2.events.length, 20 + 2 + 20);
    for (const id of [...idsB, m[0], ...idsC]) assert.ok(s2.ids().includes(id), `id ${id} delivered`);
    const ms = s2.events.filter((e) => e.type === 'task.progress.milestone');
    assert.deepEqual(ms.map((e) => [e.card_version, e.payload.step]), [[1, 1], [2, 2]],
      'the folded milestone was written after the restart as version 2');
    s2.close();
  } finally {
    await a1.stop();
    if (a2) assert.equal((await a2.stop()).code, 0, a2.logs().slice(-2000));
    await a2?.cleanup();
  }
});

test('aggregation: 1,000 milestones of one card in a second become a handful of versions', async (t) => {
  const tr = uid('ag'), other = uid('ag2');
  const s = sse(aos, `/agent/events?trace_id=${tr}`);
  const o = sse(aos, `/agent/events?trace_id=${other}`);
  await Promise.all([s.opened, o.opened]);
  const t0 = Date.now();
  let urgentSent = 0;
  for (let k = 0; k < 20; k++) {
    const batch = Array.from({ length: 50 }, (_, i) => ({
      type: 'task.progress.milestone', trace_id: tr, payload: { step: k * 50 + i },
    }));
    if (k === 10) {
      // approvals and anomalies in the middle of a burst are not held back
      urgentSent = Date.now();
      await publish(aos, [{ type: 'approval.request', trace_id: other, payload: { q: 'ok?' } },
        { type: 'anomaly.detected', trace_id: other, severity: 'error' }]);
    }
    await publish(aos, batch);
  }
  const burst = Date.now() - t0;
  // on a loaded machine the burst may spill into a second window: one more
  // version per extra second, never one per milestone
  if (burst >= 1000) t.diagnostic(`the burst took ${burst} ms, more than one window`);
  const most = Math.ceil(burst / 1000) + 2;
  await o.waitFor((x) => own(x).length === 2, 2000);
  assert.ok(own(o)[1].at - urgentSent < 500, 'approval and anomaly came at once');
  assert.deepEqual(own(o).map((e) => e.type), ['approval.request', 'anomaly.detected']);

  await s.waitFor((x) => x.events.some((e) => e.payload.step === 999), 5000, 'the final state');
  await sleep(1500); // nothing more is coming
  const v = s.events;
  assert.ok(v.length >= 2 && v.length <= most, `${v.length} versions for a ${burst} ms burst`);
  assert.ok(v.every((e) => e.card_id === `progress:${tr}`), 'one card');
  v.forEach((e, i) => assert.equal(e.card_version, i + 1));
  assert.equal(v.at(-1).payload.step, 999, 'the final version holds the last payload');
  assert.equal(v[0].payload.step, 0, 'the first milestone was not delayed');
  // written a window apart; received so, give or take delivery jitter
  for (let i = 1; i < v.length; i++)
    assert.ok(v[i].at - v[i - 1].at >= 750, `versions ${v[i - 1].at} and ${v[i].at} are a window apart`);
  // the store agrees with what was streamed
  assert.deepEqual((await history(aos, tr)).map((e) => e.id), s.ids());
  s.close();
  o.close();
});

test('a slow consumer is cut off with a resume hint; a fast one gets everything', async () => {
  const tr = uid('slow');
  const cut0 = await metric(aos, 'aos_events_slow_subscribers_total');
  const slow = sse(aos, `/agent/events?trace_id=${tr}`, { paused: true });
  const fast = sse(aos, `/agent/events?trace_id=${tr}`);
  await Promise.all([slow.opened, fast.opened]);
  const blob = 'x'.repeat(8000);
  const ids = [];
  let worstPost = 0;
  // 4 publishers at once, 10 batches of 100 events (800 kB) each
  await Promise.all([0, 1, 2, 3].map(async (lane) => {
    for (let k = 0; k < 10; k++) {
      const t = Date.now();
      ids.push(...await publish(aos, Array.from({ length: 100 }, (_, i) => ({
        type: 'task.receipt', trace_id: tr, payload: { n: (lane * 10 + k) * 100 + i, blob },
      }))));
      worstPost = Math.max(worstPost, Date.now() - t);
    }
  }));
  ids.sort((a, b) => a - b);
  await fast.waitFor((x) => x.events.length === ids.length, 60000, 'the fast client');
  assert.deepEqual(fast.ids(), ids);
  // publishing finished while the slow client still read nothing: it never
  // waited on it (a loaded machine makes single POSTs slow, hence the margin)
  assert.ok(worstPost < 10000, `worst POST ${worstPost} ms`);
  const t0 = Date.now();
  while (await metric(aos, 'aos_events_slow_subscribers_total') <= cut0 && Date.now() - t0 < 10000) await sleep(100);
  assert.equal(await metric(aos, 'aos_events_slow_subscribers_total'), cut0 + 1);

  // the slow client, reading again, finds a prefix, the overflow event, the end
  slow.resume();
  await slow.waitFor((x) => x.ended, 30000, 'the end of the slow stream');
  assert.equal(slow.named.length, 1);
  assert.equal(slow.named[0].event, 'overflow');
  const resumeAfter = slow.named[0].data.resume_after;
  assert.ok(slow.events.length > 0 && slow.events.length < ids.length, `${slow.events.length} before the cut`);
  assert.deepEqual(slow.ids(), ids.slice(0, slow.events.length));
  assert.equal(resumeAfter, slow.events.at(-1).id);
  // and resuming from there completes it
  const again = sse(aos, `/agent/events?trace_id=${tr}`, { headers: { 'Last-Event-ID': String(resumeAfter) } });
  await again.waitFor((x) => x.ids().includes(ids.at(-1)), 30000, 'the rest');
  assert.deepEqual([...slow.ids(), ...again.ids()], ids);
  fast.close();
  again.close();
});

test('history pages newest first through value events only', async () => {
  const tr = uid('hist');
  const events = Array.from({ length: 35 }, (_, i) => ({
    type: i % 7 === 3 ? 'exec.step' : 'task.acceptance', trace_id: tr, payload: { i },
  }));
  const ids = await publish(aos, events);
  const valueIds = ids.filter((_, i) => VALUE.has(events[i].type));
  assert.equal(valueIds.length, 30);
  const pages = [];
  let before = '';
  for (;;) {
    const r = await aos.api('GET', `/agent/events/history?trace_id=${tr}&limit=12${before}`);
    assert.equal(r.status, 200, r.text);
    pages.push(r.body.events.map((e) => e.id));
    if (r.body.next_before === null) break;
    assert.equal(r.body.next_before, r.body.events.at(-1).id);
    before = `&before=${r.body.next_before}`;
  }
  assert.deepEqual(pages.map((p) => p.length), [12, 12, 6]);
  assert.deepEqual(pages.flat(), [...valueIds].reverse());
  // without a trace filter: the newest value events overall, before an id
  const r = await aos.api('GET', `/agent/events/history?before=${valueIds[5]}&limit=3`);
  assert.deepEqual(r.body.events.map((e) => e.id), [valueIds[4], valueIds[3], valueIds[2]]);
  assert.ok(r.body.events.every((e) => VALUE.has(e.type)));
  for (const q of ['limit=0', 'limit=501', 'before=abc', 'limit=-1'])
    assertErrorShape(assert, await aos.api('GET', `/agent/events/history?${q}`), 400, 'invalid_argument');
});

test('publishing checks every event first and writes all or nothing', async () => {
  const tr = uid('pub');
  const bad = [
    [{ trace_id: tr }, /'type' is required/],
    [{ type: 'task.receipt', trace_id: tr, severity: 'loud' }, /'severity'/],
    [{ type: 'task.receipt', trace_id: tr, payload: [1] }, /'payload'/],
    [{ type: 'task.receipt', trace_id: tr, id: 5 }, /assigned by the bus/],
    [{ type: 'task.receipt', trace_id: tr, extra: 1 }, /unknown member/],
    [[{ type: 'task.receipt', trace_id: tr }, { type: 'Bad Type', trace_id: tr }], /event 1: 'type'/],
    [[], /1 to 1000/],
  ];
  for (const [body, msg] of bad) {
    const r = await aos.api('POST', '/api/events', body);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.match(r.body.error.message, msg);
  }
  assertErrorShape(assert, await aos.api('POST', '/api/events', '{nope'), 400, 'parse_error');
  assert.deepEqual(await history(aos, tr), [], 'nothing of the bad requests was written');

  const r = await aos.api('POST', '/api/events', { type: 'approval.request', trace_id: tr, card_id: `ap-${tr}`, project_id: 'p9', severity: 'warning', topic: 'approvals', payload: { step: 'deploy' } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.ids.length, 1);
  assert.deepEqual(r.body.events[0], { id: r.body.ids[0], type: 'approval.request', card_id: `ap-${tr}`, card_version: 1, folded: false });
  // the same card again is its next version
  const r2 = await aos.api('POST', '/api/events', { type: 'approval.request', trace_id: tr, card_id: `ap-${tr}`, payload: { step: 'deploy', state: 'approved' } });
  assert.equal(r2.body.events[0].card_version, 2);
  const h = await history(aos, tr);
  assert.deepEqual(h.map((e) => [e.id, e.card_version]), [[r.body.ids[0], 1], [r2.body.ids[0], 2]]);
  assert.equal(h[0].topic, 'approvals');
  assert.equal(h[0].project_id, 'p9');
  assert.deepEqual(h[0].payload, { step: 'deploy' });
});

test('tokens are required; heartbeats keep the stream alive', async () => {
  assertErrorShape(assert, await aos.api('GET', '/agent/events', undefined, null), 401, 'unauthorized');
  assertErrorShape(assert, await aos.api('GET', '/agent/events/history', undefined, null), 401, 'unauthorized');
  assertErrorShape(assert, await aos.api('POST', '/api/events', { type: 'task.receipt' }, null), 401, 'unauthorized');
  const s = sse(aos, `/agent/events?trace_id=${uid('hb')}`);
  await s.opened;
  await s.waitFor((x) => x.comments >= 3, 3000, 'heartbeats'); // the greeting + 2 heartbeats
  assert.equal(s.events.length, 0);
  s.close();
  const t0 = Date.now();
  while (await metric(aos, 'aos_events_streams') !== 0 && Date.now() - t0 < 3000) await sleep(50);
  assert.equal(await metric(aos, 'aos_events_streams'), 0, 'closed streams are dropped');
});
