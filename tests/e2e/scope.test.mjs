// scope.test.mjs - a grant on a project reaches its tasks' traces, chat
// and value events, and nothing of any other task (issue 16): a Viewer of
// p1 (no read on system) reads p1's traces, the messages of p1's tasks
// and their conversations, and gets on /agent/events (live and history)
// only the events of p1's tasks; other projects' tasks and tasks of no
// project are refused (403, 404 for a conversation) or left out. An
// Operator of p1 chats in p1 only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAosd, backendEntry, waitReady, sseClient, sleep, TOKEN } from './lib.mjs';

let aos;
let p1view, p1op, all, mine;
const T = {}; // p1, p2, none, mixed: trace ids

async function mint(body) {
  const r = await aos.api('POST', '/auth/tokens', body);
  assert.equal(r.status, 201, r.text);
  return r.body.token;
}

const receipt = (trace) => (s) => s.events.some((e) => e.trace_id === trace && e.type === 'task.receipt');

async function chat(token, body) {
  const r = await aos.api('POST', '/api/chat/send', body, token);
  assert.equal(r.status, 201, r.text);
  return r.body;
}

before(async () => {
  aos = await startAosd({ args: ['--trace-sample', '1'] }); // every task's spans are kept
  const r = await aos.api('POST', '/mcp/registry', backendEntry('ev'));
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'ev');
  p1view = await mint({ name: 'p1-viewer', role: 'none', grants: [{ role: 'viewer', resource: 'project:p1' }] });
  p1op = await mint({ name: 'p1-operator', role: 'none', grants: [{ role: 'operator', resource: 'project:p1' }, { role: 'operator', resource: 'tool:ev__*' }] });
  all = sseClient(aos, '/agent/events');
  mine = sseClient(aos, '/agent/events', { token: p1view });
  await Promise.all([all.opened, mine.opened]);
  assert.equal(mine.status, 200);
  // other tasks first: had the stream no filter, their events would come first
  const p2 = await chat(TOKEN, { message: 'call ev__echo with {"message": "p2"}', project_id: 'p2', conversation_id: 'conv-p2' });
  const none = await chat(TOKEN, { message: 'call ev__echo with {"message": "none"}', conversation_id: 'conv-none' });
  T.p2 = p2.trace_id;
  T.none = none.trace_id;
  await all.waitFor(receipt(T.p2), 30000, 'p2 receipt');
  await all.waitFor(receipt(T.none), 30000, 'no-project receipt');
  const p1 = await chat(p1op, { message: 'call ev__echo with {"message": "p1"}', project_id: 'p1', conversation_id: 'conv-p1', constraints: { tools: ['ev__*'] } });
  T.p1 = p1.trace_id;
  // the owner adds a p2 task to p1's conversation
  const mixed = await chat(TOKEN, { message: 'call ev__echo with {"message": "mixed"}', project_id: 'p2', conversation_id: 'conv-p1' });
  T.mixed = mixed.trace_id;
  await all.waitFor(receipt(T.mixed), 30000, 'mixed receipt');
  await mine.waitFor(receipt(T.p1), 30000, 'p1 receipt on the p1 stream');
});
after(async () => {
  all?.close();
  mine?.close();
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

test('the event stream of a project Viewer carries its projects\' task events only', async () => {
  for (const t of [T.p2, T.none, T.mixed]) assert.ok(all.events.some((e) => e.trace_id === t), `the owner sees ${t}`);
  assert.ok(mine.events.length >= 2, JSON.stringify(mine.events.map((e) => e.type)));
  const others = mine.events.filter((e) => e.trace_id !== T.p1);
  assert.deepEqual(others.map((e) => `${e.type} ${e.trace_id} ${e.project_id}`), []);
  assert.ok(mine.events.every((e) => e.project_id === 'p1'));
  // history: the same filter, newest first
  const h = await aos.api('GET', '/agent/events/history?limit=500', undefined, p1view);
  assert.equal(h.status, 200, h.text);
  assert.ok(h.body.events.length >= 2);
  assert.deepEqual(h.body.events.filter((e) => e.trace_id !== T.p1), []);
  const ho = await aos.api('GET', '/agent/events/history?limit=500');
  assert.ok(ho.body.events.some((e) => e.trace_id === T.p2));
  // a filter for another project finds nothing it may see
  const h2 = await aos.api('GET', '/agent/events/history?project=p2', undefined, p1view);
  assert.equal(h2.status, 200, h2.text);
  assert.deepEqual(h2.body.events, []);
  // a token with tool grants only has no stream at all
  const tools = await mint({ name: 'tools-only', role: 'none', grants: [{ role: 'operator', resource: 'tool:ev__*' }] });
  assert.equal((await aos.api('GET', '/agent/events/history', undefined, tools)).status, 403);
});

test('a project Viewer reads its projects\' traces and no other', async () => {
  let r;
  for (let i = 0; i < 50; i++) { // the task's spans are written once they end
    r = await aos.api('GET', `/api/traces/${T.p1}`, undefined, p1view);
    if (r.status !== 404) break;
    await sleep(100);
  }
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.trace_id, T.p1);
  assert.ok(r.body.span_count > 0);
  for (const t of [T.p2, T.none, T.mixed, '0af7651916cd43dd8448eb211c80319c']) {
    r = await aos.api('GET', `/api/traces/${t}`, undefined, p1view);
    assert.equal(r.status, 403, `${t}: ${r.text}`);
  }
  assert.equal((await aos.api('GET', `/api/traces/${T.p2}`)).status, 200);
  assert.equal((await aos.api('GET', `/api/traces/${T.p1.toUpperCase()}`, undefined, p1view)).status, 200);
});

test('chat: a project Viewer reads its projects\' messages and conversations only', async () => {
  let r = await aos.api('GET', '/api/chat/conversations/conv-p1', undefined, p1view);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.messages.map((m) => [m.role, m.trace_id]), [['user', T.p1], ['assistant', T.p1]]);
  assert.ok(r.body.messages.every((m) => m.project_id === 'p1'));
  const owner = await aos.api('GET', '/api/chat/conversations/conv-p1');
  assert.equal(owner.body.messages.length, 4);
  for (const id of ['conv-p2', 'conv-none', 'conv-nope']) {
    r = await aos.api('GET', `/api/chat/conversations/${id}`, undefined, p1view);
    assert.equal(r.status, 404, `${id}: ${r.text}`);
  }
  r = await aos.api('GET', '/api/chat/conversations', undefined, p1view);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.conversations.map((c) => [c.id, c.messages]), [['conv-p1', 2]]);
  const list = (await aos.api('GET', '/api/chat/conversations')).body.conversations;
  assert.deepEqual(list.map((c) => c.id).sort(), ['conv-none', 'conv-p1', 'conv-p2']);
  assert.equal(list.find((c) => c.id === 'conv-p1').messages, 4);
});

test('chat: a project Operator sends in its project only; a Viewer not at all', async () => {
  let r = await aos.api('POST', '/api/chat/send', { message: 'call ev__echo with {"message": "x"}', project_id: 'p2' }, p1op);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /project 'p2'/);
  r = await aos.api('POST', '/api/chat/send', { message: 'call ev__echo with {"message": "x"}' }, p1op);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /project_id/);
  r = await aos.api('POST', '/api/chat/send', { message: 'call ev__echo with {"message": "x"}', project_id: 'p1' }, p1view);
  assert.equal(r.status, 403, r.text);
});

test('a project grant removed stops the events of the open stream at once', async () => {
  const s = sseClient(aos, '/agent/events', { token: p1op });
  await s.opened;
  assert.equal(s.status, 200);
  const first = await chat(p1op, { message: 'call ev__echo with {"message": "before"}', project_id: 'p1', constraints: { tools: ['ev__*'] } });
  await s.waitFor(receipt(first.trace_id), 30000, 'receipt before the change');
  const me = (await aos.api('GET', '/auth/me', undefined, p1op)).body;
  const g = me.grants.find((x) => x.resource === 'project:p1');
  assert.equal((await aos.api('DELETE', `/rbac/grants/${g.id}`)).status, 200);
  const later = await chat(TOKEN, { message: 'call ev__echo with {"message": "after"}', project_id: 'p1' });
  await all.waitFor(receipt(later.trace_id), 30000, 'the owner sees it');
  await sleep(300);
  assert.ok(!s.events.some((e) => e.trace_id === later.trace_id), 'no event after the grant went');
  s.close();
});
