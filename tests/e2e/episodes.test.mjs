// episodes.test.mjs - GET /api/episodes/:trace a page at a time: a run's
// events (after=/before= by event id) and log lines (logs_after=/
// logs_before= by log id), limit rows of each; the cursors of the pages
// either side (null where no row is), walked forwards and backwards over
// 2,500 events and 1,200 log lines of one trace interleaved with another
// trace's; the bounds (past either end, limit 1 and 1,000) and bad input.
// A run's own steps are lines of aosd's log under its trace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAosd, assertErrorShape, sleep } from './lib.mjs';

let aos;
before(async () => { aos = await startAosd(); });
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function get(trace, q = '') {
  const r = await aos.api('GET', `/api/episodes/${trace}${q}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

async function task(goal) {
  const r = await aos.api('POST', '/api/run', { goal, plan: { steps: [{ id: 's1', tool: 'aos__echo', args: { message: goal } }] } });
  assert.equal(r.status, 201, r.text);
  const trace = r.body.trace_id;
  await until(`${goal} done`, async () => (await get(trace)).status === 'done');
  // and its steps' lines in aosd's log, under its trace
  await until(`${goal}'s log lines`, async () => (await get(trace)).logs.some((l) => /^step s1 finished$/.test(l.message)));
  return trace;
}

const EVENTS = 2500, LOGS = 1200;
let trace, other, own, ownLogs, allEvents, allLogs;

test('a run with 2,500 events and 1,200 log lines, another run\'s between them', async () => {
  trace = await task('paged');
  other = await task('other');
  own = (await get(trace)).events.length;
  assert.ok(own > 0, 'the run has events of its own');
  ownLogs = (await get(trace)).logs.length;
  assert.deepEqual((await get(trace)).logs.map((l) => [l.message, l.level, l.source]),
    [['step s1 started (aos__echo)', 'info', 'aosd'], ['step s1 finished', 'info', 'aosd']]);
  for (let i = 0; i < EVENTS; i += 500) {
    const body = [];
    for (let j = i; j < i + 500; j++) {
      body.push({ type: 'task.step.trace', trace_id: trace, topic: 'paging', severity: 'info', payload: { i: j } });
      if (j % 5 === 0) body.push({ type: 'task.step.trace', trace_id: other, topic: 'paging', severity: 'info', payload: { other: j } });
    }
    const r = await aos.api('POST', '/api/events', body);
    assert.equal(r.status, 201, r.text);
  }
  for (let i = 0; i < LOGS; i += 600) {
    const entries = [];
    for (let j = i; j < i + 600; j++) {
      entries.push({ message: `paged line ${j}`, level: 'info', topic: 'paging', trace_id: trace });
      if (j % 3 === 0) entries.push({ message: `other line ${j}`, level: 'info', topic: 'paging', trace_id: other });
    }
    const r = await aos.api('POST', '/api/logs', { entries });
    assert.equal(r.status, 201, r.text);
  }
  // the log service writes in batches: wait for the last line
  await until('the log lines stored', async () =>
    (await get(trace, `?logs_before=${Number.MAX_SAFE_INTEGER}&limit=1`)).logs[0]?.message === `paged line ${LOGS - 1}`);
});

test('the first page: the oldest 1,000 of each, in id order, and the cursor to the next', async () => {
  const ep = await get(trace);
  assert.equal(ep.events.length, 1000);
  assert.equal(ep.logs.length, 1000);
  for (const xs of [ep.events, ep.logs])
    for (let i = 1; i < xs.length; i++) assert.ok(xs[i].id > xs[i - 1].id, 'ascending ids');
  assert.ok(ep.events.every((e) => e.trace_id === trace));
  assert.ok(ep.logs.every((l) => l.trace_id === trace));
  assert.equal(ep.events_next_before, null, 'nothing before the first');
  assert.equal(ep.events_next_after, ep.events[999].id);
  assert.equal(ep.logs_next_before, null);
  assert.equal(ep.logs_next_after, ep.logs[999].id);
  // the rest of the episode is all there, whatever the cursors
  assert.equal(ep.status, 'done');
  assert.ok(ep.steps.some((s) => s.id === 's1'));
});

// every page from a cursor on, following next_<dir>; the rows in id order
async function walk(kind, dir, start, limit) {
  const rows = [];
  let cur = start, pages = 0;
  for (;;) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cur != null) q.set(kind === 'events' ? dir : `logs_${dir}`, String(cur));
    const ep = await get(trace, '?' + q);
    const page = ep[kind];
    assert.ok(page.length <= limit, `${page.length} <= ${limit}`);
    for (let i = 1; i < page.length; i++) assert.ok(page[i].id > page[i - 1].id, 'a page is in id order');
    pages++;
    if (dir === 'after') rows.push(...page); else rows.unshift(...page);
    cur = ep[`${kind}_next_${dir}`];
    if (cur == null) break;
    assert.equal(cur, dir === 'after' ? page[page.length - 1].id : page[0].id, 'the cursor is the page\'s end');
    assert.ok(pages < 100, 'the walk ends');
  }
  return { rows, pages };
}

test('events: forwards with after= and backwards with before= reach every one, once', async () => {
  const fwd = await walk('events', 'after', null, 1000);
  assert.equal(fwd.rows.length, own + EVENTS);
  assert.equal(fwd.pages, Math.ceil((own + EVENTS) / 1000));
  assert.equal(new Set(fwd.rows.map((e) => e.id)).size, fwd.rows.length, 'no event twice');
  for (let i = 1; i < fwd.rows.length; i++) assert.ok(fwd.rows[i].id > fwd.rows[i - 1].id);
  assert.ok(fwd.rows.every((e) => e.trace_id === trace), 'the other trace\'s events are not in it');
  assert.deepEqual(fwd.rows.filter((e) => e.topic === 'paging').map((e) => e.payload.i), [...Array(EVENTS).keys()]);
  allEvents = fwd.rows.map((e) => e.id);
  // backwards from past the newest: the newest page first
  const last = allEvents[allEvents.length - 1];
  const newest = await get(trace, `?before=${last + 1_000_000}&limit=300`);
  assert.deepEqual(newest.events.map((e) => e.id), allEvents.slice(-300));
  assert.equal(newest.events_next_after, null, 'nothing after the newest');
  assert.equal(newest.events_next_before, allEvents[allEvents.length - 300]);
  const back = await walk('events', 'before', last + 1, 700);
  assert.deepEqual(back.rows.map((e) => e.id), allEvents);
  // a page in the middle, both ways
  const mid = await get(trace, `?after=${allEvents[1499]}&limit=10`);
  assert.deepEqual(mid.events.map((e) => e.id), allEvents.slice(1500, 1510));
  assert.equal(mid.events_next_before, allEvents[1500]);
  assert.equal(mid.events_next_after, allEvents[1509]);
  const mid2 = await get(trace, `?before=${allEvents[1500]}&limit=10`);
  assert.deepEqual(mid2.events.map((e) => e.id), allEvents.slice(1490, 1500));
  // the events' cursors leave the log lines at their first page
  assert.equal(mid.logs.length, 10);
  assert.equal(mid.logs_next_before, null);
});

test('log lines: logs_after= and logs_before= page them on their own', async () => {
  const fwd = await walk('logs', 'after', null, 500);
  assert.equal(fwd.rows.length, ownLogs + LOGS);
  assert.deepEqual(fwd.rows.slice(ownLogs).map((l) => l.message), [...Array(LOGS).keys()].map((j) => `paged line ${j}`));
  allLogs = fwd.rows.map((l) => l.id);
  const back = await walk('logs', 'before', allLogs.at(-1) + 1, 333);
  assert.deepEqual(back.rows.map((l) => l.id), allLogs);
  const both = await get(trace, `?after=${allEvents[0]}&logs_before=${allLogs[10]}&limit=5`);
  assert.deepEqual(both.events.map((e) => e.id), allEvents.slice(1, 6));
  assert.deepEqual(both.logs.map((l) => l.id), allLogs.slice(5, 10));
});

test('bounds: past either end an empty page with no cursor; limit 1 and 1,000', async () => {
  const end = await get(trace, `?after=${allEvents[allEvents.length - 1]}&logs_after=${allLogs.at(-1)}`);
  assert.deepEqual(end.events, []);
  assert.deepEqual(end.logs, []);
  for (const k of ['events_next_before', 'events_next_after', 'logs_next_before', 'logs_next_after']) assert.equal(end[k], null, k);
  const start = await get(trace, `?before=${allEvents[0]}&logs_before=${allLogs[0]}`);
  assert.deepEqual(start.events, []);
  assert.deepEqual(start.logs, []);
  const one = await get(trace, '?limit=1&after=0');
  assert.deepEqual(one.events.map((e) => e.id), [allEvents[0]]);
  assert.equal(one.events_next_after, allEvents[0]);
  assert.equal(one.logs.length, 1);
  assert.equal((await get(trace, '?limit=1000')).events.length, 1000);
  // a run with fewer events than a page: all of them, no cursor either way
  const small = await get(other, '?limit=1000&logs_after=0');
  assert.ok(small.events.length < 1000);
  assert.equal(small.events_next_after, null);
  assert.equal(small.events_next_before, null);
});

test('bad input: a clear 400 and nothing else', async () => {
  for (const q of ['after=-1', 'after=x', 'after=', 'before=0', 'before=1.5', 'limit=0', 'limit=1001', 'limit=ten',
    'logs_after=-3', 'logs_before=0', `after=1&before=${allEvents[5]}`, 'logs_after=1&logs_before=9']) {
    const r = await aos.api('GET', `/api/episodes/${trace}?${q}`);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.match(r.body.error.message, /after|before|limit/, q);
  }
  assert.match((await aos.api('GET', `/api/episodes/${trace}?after=1&before=9`)).body.error.message, /'after' or 'before', not both/);
  // a cursor on a run that does not exist is still a 404
  assertErrorShape(assert, await aos.api('GET', `/api/episodes/${'0'.repeat(32)}?after=5`), 404, 'not_found');
});
