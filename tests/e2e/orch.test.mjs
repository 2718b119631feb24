// orch.test.mjs - the orchestrator through its API alone: tasks submitted
// as plans and DSL, run against real MCP servers (server-everything and the
// faulty fixture over stdio), watched as value events on /agent/events,
// approved, aborted, downgraded, retried, cancelled, replayed and re-run;
// the Chat Hub's send; the errors of bad specs.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startAosd, backendEntry, waitReady, sleep, sseClient, ROOT } from './lib.mjs';

const FAULTY = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'aos-orch-'));

let aos;
const streams = [];
afterEach(() => { for (const s of streams.splice(0)) s.close(); });
before(async () => {
  aos = await startAosd();
  for (const e of [backendEntry('ev'),
    { name: 'fx', command: process.execPath, args: [FAULTY], limits: { retries: 0 } }]) {
    const r = await aos.api('POST', '/mcp/registry', e);
    assert.equal(r.status, 201, r.text);
  }
  await Promise.all(['ev', 'fx'].map((n) => waitReady(aos, n)));
});
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

async function run(spec) {
  const r = await aos.api('POST', '/api/run', spec);
  assert.equal(r.status, 201, r.text);
  assert.match(r.body.trace_id, /^[0-9a-f]{32}$/);
  assert.ok(r.body.job_id > 0);
  return r.body;
}

// The value events of a trace, from its first, live.
function watch(trace) {
  const s = sseClient(aos, `/agent/events?trace_id=${trace}&after=0`);
  streams.push(s);
  s.types = () => s.events.map((e) => e.type);
  s.until = (type, n = 1) => s.waitFor((x) => x.events.filter((e) => e.type === type).length >= n,
    20000, `${n} ${type}`);
  return s;
}

async function episode(trace) {
  const r = await aos.api('GET', `/api/episodes/${trace}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

const stepOf = (ep, id) => ep.steps.find((s) => s.id === id);
const text = (v) => JSON.stringify(v);

test('two tool steps around an approval gate: value events in order, approve once, receipt', async () => {
  const { trace_id: trace, job_id: job } = await run({
    goal: 'echo, ask, add',
    plan: { steps: [
      { id: 's1', tool: 'ev__echo', args: { message: 'one' } },
      { id: 'gate', approval: { message: 'Go on after ${s1.result}?', timeout_s: 600 } },
      { id: 's2', tool: 'ev__get-sum', args: { a: 2, b: 3 } },
    ] },
  });
  const ev = watch(trace);
  await ev.until('approval.request');
  const ask = ev.events.find((e) => e.type === 'approval.request');
  assert.equal(ask.payload.step, 'gate');
  assert.equal(ask.payload.message, 'Go on after Echo: one?');
  assert.deepEqual(ask.payload.decisions, ['approve', 'continue', 'downgrade', 'abort']);
  assert.equal(ev.types()[0], 'task.acceptance');
  const jobs = await aos.api('GET', '/api/jobs?status=waiting');
  assert.ok(jobs.body.jobs.some((j) => j.id === job), text(jobs.body));
  // a decision the gate does not know, then a good one, then a second one
  const bad = await aos.api('POST', '/agent/approve', { trace_id: trace, step_id: 'gate', decision: 'maybe' });
  assert.equal(bad.status, 400, bad.text);
  const ok = await aos.api('POST', '/agent/approve', { trace_id: trace, step_id: 'gate', decision: 'approve', comment: 'fine' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.decision, 'approve');
  const again = await aos.api('POST', '/agent/approve', { trace_id: trace, step_id: 'gate', decision: 'abort' });
  assert.equal(again.status, 409, again.text);
  await ev.until('task.receipt');
  const types = ev.types();
  assert.ok(types.indexOf('approval.request') < types.indexOf('task.receipt'));
  // the decision is a new version of the request's card
  const asked = ev.events.find((e) => e.type === 'approval.request');
  const decided = ev.events.find((e) => e.type === 'approval.decided');
  assert.ok(decided, JSON.stringify(types));
  assert.equal(decided.card_id, asked.card_id);
  assert.ok(decided.card_version > asked.card_version);
  assert.deepEqual([decided.payload.step, decided.payload.decision, decided.payload.comment, decided.payload.actor],
    ['gate', 'approve', 'fine', 'token:owner']);
  const receipt = ev.events.find((e) => e.type === 'task.receipt');
  assert.equal(receipt.payload.status, 'done');
  assert.deepEqual(receipt.payload.summary, { done: 3, failed: 0, skipped: 0 });
  assert.equal(receipt.payload.links.episode, `/api/episodes/${trace}`);
  // ids only grow: the order the bus gives is the order they were written
  const ids = ev.ids().map(Number);
  assert.deepEqual([...ids].sort((a, b) => a - b), ids);
  const ep = await episode(trace);
  assert.equal(ep.status, 'done');
  assert.match(text(stepOf(ep, 's2').attempts[0].output), /5/);
  assert.equal(stepOf(ep, 'gate').attempts[0].output.decision, 'approve');
  assert.equal(ep.approvals[0].status, 'decided');
  assert.equal(ep.approvals[0].comment, 'fine');
  // the executor ran each step once, in order, with its idempotency key
  assert.deepEqual(ep.steps.map((s) => s.id), ['plan', 's1', 'gate', 's2']);
  assert.equal(stepOf(ep, 's1').attempts[0].idempotency_key, `${trace}:s1:1`);
  // a registered server's tool waits for its intent to be durable: its
  // start is an event of its own, before its end
  const st = ep.events.filter((e) => e.type.startsWith('step.')).map((e) => `${e.type} ${e.payload.step}`);
  assert.deepEqual(st, ['step.started s1', 'step.finished s1', 'step.started s2', 'step.finished s2']);
  assert.equal(ep.events.find((e) => e.type === 'step.started').payload.idempotency_key, `${trace}:s1:1`);
  // a tool of a registered server may use the task's workspace: it was made
  assert.ok(existsSync(join(aos.dataDir, 'workspaces', trace)));
});

test('a step that fails, then succeeds on retry: anomaly, recovery.start, recovery.done', async () => {
  const marker = join(scratch, 'fail-once');
  const { trace_id: trace } = await run({
    plan: { steps: [{ id: 'f', tool: 'fx__fail-once', args: { marker }, retry: { max: 2, backoff_ms: 100 } }] },
  });
  const ev = watch(trace);
  await ev.until('task.receipt');
  const types = ev.types();
  for (const t of ['anomaly.detected', 'recovery.start', 'recovery.done'])
    assert.ok(types.includes(t), `${t} in ${types}`);
  assert.ok(types.indexOf('anomaly.detected') < types.indexOf('recovery.start'));
  assert.ok(types.indexOf('recovery.start') < types.indexOf('recovery.done'));
  const anomaly = ev.events.find((e) => e.type === 'anomaly.detected');
  assert.equal(anomaly.payload.step, 'f');
  assert.equal(anomaly.payload.retrying, true);
  assert.match(anomaly.payload.fingerprint, /^[0-9a-f]{16}$/);
  assert.equal(ev.events.find((e) => e.type === 'task.receipt').payload.status, 'done');
  const f = stepOf(await episode(trace), 'f');
  assert.deepEqual(f.attempts.map((a) => a.status), ['failed', 'done']);
  assert.deepEqual(f.attempts.map((a) => a.idempotency_key), [`${trace}:f:1`, `${trace}:f:2`]);
});

test('a fallback that names a tool runs it in the failed step\'s stead, with its arguments', async () => {
  // fail-once fails the first call with a marker, answers the second
  const marker = join(scratch, 'fallback-tool');
  const { trace_id: trace } = await run({
    plan: { steps: [{ id: 'f', tool: 'fx__fail-once', args: { marker }, fallback: 'fx__fail-once' }] },
    constraints: { approval: 'never' },
  });
  const ev = watch(trace);
  await ev.until('task.receipt');
  assert.equal(ev.events.find((e) => e.type === 'task.receipt').payload.status, 'done', JSON.stringify(ev.types()));
  const ep = await episode(trace);
  assert.deepEqual(stepOf(ep, 'f').attempts.map((a) => a.status), ['failed']);
  const alt = stepOf(ep, 'f-fallback');
  assert.deepEqual(alt.attempts.map((a) => a.status), ['done']);
  assert.deepEqual(alt.attempts[0].input, { marker });
  assert.equal(ep.plan.steps.at(-1).tool, 'fx__fail-once');
});

test('abort at a gate ends the task; downgrade goes on and skips what asked not to run', async () => {
  const gated = (extra = []) => ({ plan: { steps: [
    { id: 'gate', approval: { message: 'Proceed?' } },
    { id: 'full', tool: 'ev__echo', args: { message: 'full' }, when: "${gate.decision} != 'downgrade'" },
    ...extra,
  ] } });
  const a = await run(gated());
  const ea = watch(a.trace_id);
  await ea.until('approval.request');
  assert.equal((await aos.api('POST', '/agent/approve', { trace_id: a.trace_id, step_id: 'gate', decision: 'abort' })).status, 200);
  await ea.until('task.receipt');
  const ra = ea.events.find((e) => e.type === 'task.receipt').payload;
  assert.equal(ra.status, 'failed');
  assert.match(ra.error, /aborted at 'gate'/);
  assert.equal(stepOf(await episode(a.trace_id), 'full'), undefined, 'nothing after an abort');

  const d = await run(gated([{ id: 'after', tool: 'ev__echo', args: { message: 'after' } }]));
  const ed = watch(d.trace_id);
  await ed.until('approval.request');
  assert.equal((await aos.api('POST', '/agent/approve', { trace_id: d.trace_id, step_id: 'gate', decision: 'downgrade' })).status, 200);
  await ed.until('task.receipt');
  const rd = ed.events.find((e) => e.type === 'task.receipt').payload;
  assert.equal(rd.status, 'done');
  assert.equal(rd.downgraded, true);
  const ep = await episode(d.trace_id);
  assert.equal(stepOf(ep, 'full').status, 'skipped');
  assert.equal(stepOf(ep, 'after').status, 'done');
});

test('a failed step asks a person: downgrade goes on without it; with approval "never" it fails', async () => {
  const failing = { id: 'bad', tool: 'ev__get-sum', args: { a: 'not a number' } };
  const t = await run({ plan: { steps: [failing, { id: 'next', tool: 'ev__echo', args: { message: 'n' } }] } });
  const ev = watch(t.trace_id);
  await ev.until('approval.request');
  const ask = ev.events.find((e) => e.type === 'approval.request').payload;
  assert.equal(ask.step, 'bad');
  assert.equal(ask.failure, true);
  assert.deepEqual(ask.decisions, ['continue', 'downgrade', 'abort']);
  assert.ok(ev.types().includes('anomaly.detected'));
  assert.equal((await aos.api('POST', '/agent/approve', { trace_id: t.trace_id, step_id: 'bad', decision: 'approve' })).status, 400);
  assert.equal((await aos.api('POST', '/agent/approve', { trace_id: t.trace_id, step_id: 'bad', decision: 'downgrade' })).status, 200);
  await ev.until('task.receipt');
  const r = ev.events.find((e) => e.type === 'task.receipt').payload;
  assert.equal(r.status, 'done');
  assert.equal(r.downgraded, true);
  assert.deepEqual(r.summary, { done: 1, failed: 1, skipped: 0 });

  const n = await run({ plan: { steps: [failing] }, constraints: { approval: 'never' } });
  const en = watch(n.trace_id);
  await en.until('task.receipt');
  const rn = en.events.find((e) => e.type === 'task.receipt').payload;
  assert.equal(rn.status, 'failed');
  assert.match(rn.error, /step 'bad' failed/);
  assert.ok(!en.types().includes('approval.request'));
});

test('cancel a running job: the call in flight is cancelled at the server', async () => {
  const count = async () => Number((await aos.api('POST', '/mcp/call', { server: 'fx', tool: 'cancellations', args: {} })).body.content[0].text);
  const before = await count();
  const { trace_id: trace, job_id: job } = await run({ plan: { steps: [{ id: 'slow', tool: 'fx__slow', args: { ms: 30000 } }] } });
  for (let i = 0; i < 100; i++) {
    const ep = await episode(trace);
    if (stepOf(ep, 'slow')?.status === 'running') break;
    await sleep(50);
  }
  await sleep(200); // the call is at the server
  const r = await aos.api('POST', `/api/jobs/${job}/cancel`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'cancelled');
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) { await sleep(50); after = await count(); }
  assert.equal(after, before + 1, 'the server saw notifications/cancelled');
  const ep = await episode(trace);
  assert.equal(ep.status, 'cancelled');
  assert.equal((await aos.api('POST', `/api/jobs/${job}/cancel`)).status, 404);
  assert.equal((await aos.api('POST', '/api/jobs/abc/cancel')).status, 400);
});

test('replay reads the run back; a re-run from the middle step reuses what came before', async () => {
  const file = join(scratch, 'count-rerun');
  const steps = ['s1', 's2', 's3'].map((id) => ({ id, tool: 'fx__count', args: { file, tag: `${id}-\${inputs.round}` } }));
  const { trace_id: trace } = await run({ inputs: { round: 'a' }, plan: { steps },
    files: [{ name: 'in.csv', content: 'a,b\n' }, { name: 'raw.bin', content_base64: 'AP8BAg==' }] });
  const ev = watch(trace);
  await ev.until('task.receipt');
  const replay = await aos.api('GET', `/api/episodes/${trace}/replay`);
  assert.equal(replay.status, 200, replay.text);
  assert.deepEqual(replay.body.frames.map((f) => f.step), ['plan', 's1', 's2', 's3']);
  assert.match(text(replay.body.scope.steps.s3.result), /3/);
  const half = await aos.api('GET', `/api/episodes/${trace}/replay?upto=2`);
  assert.deepEqual(Object.keys(half.body.scope.steps), ['s1']);
  const lines = () => readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);
  assert.deepEqual(lines(), ['s1-a', 's2-a', 's3-a']);
  // replay called nothing
  assert.equal(lines().length, 3);

  const r = await aos.api('POST', `/api/episodes/${trace}/rerun`, { from_step: 's2', inputs: { round: 'b' } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.rerun_of, trace);
  assert.notEqual(r.body.trace_id, trace);
  const ev2 = watch(r.body.trace_id);
  await ev2.until('task.receipt');
  assert.deepEqual(lines(), ['s1-a', 's2-a', 's3-a', 's2-b', 's3-b']);
  const ep = await episode(r.body.trace_id);
  assert.equal(ep.rerun_of, trace);
  assert.equal(stepOf(ep, 's1').status, 'reused');
  assert.equal(stepOf(ep, 's2').status, 'done');
  // the re-run starts from the workspace the original left
  const arts = ev2.events.find((e) => e.type === 'task.receipt').payload.artifacts;
  assert.deepEqual(arts.map((a) => [a.name, a.size]).sort(), [['in.csv', 4], ['raw.bin', 4]]);
  const bad = await aos.api('POST', `/api/episodes/${trace}/rerun`, { from_step: 'nope' });
  assert.equal(bad.status, 400, bad.text);
  assert.equal((await aos.api('POST', `/api/episodes/${'0'.repeat(32)}/rerun`, {})).status, 404);
});

test('bad specs, plans and DSL get clear errors and start nothing', async () => {
  const before = (await aos.api('GET', '/api/jobs?limit=1000')).body.jobs.length;
  const cases = [
    [{}, /goal, a plan or dsl/],
    [{ goal: 'x', surprise: 1 }, /unknown member 'surprise'/],
    [{ plan: { steps: [{ id: 's1', tool: 'not-aggregated' }] } }, /steps\[0\] \(s1\)\.tool/],
    [{ plan: { steps: [{ id: 's1', tool: 'ev__echo', retry: { max: 99 } }] } }, /retry/],
    [{ dsl: 'step s1: ev__echo message="unterminated' }, /^1:\d+: /],
    [{ goal: 'x', env: ['API_KEY'] }, /secret/],
    [{ goal: 'x', constraints: { deadline: 'tomorrow' } }, /deadline/],
    [{ goal: 'x', constraints: { deadline: '2026-02-30T10:00:00Z' } }, /deadline/],
    [{ goal: 'x', scheduled_at: '2026-12-07T10:00:00' }, /scheduled_at.*zone/],
    [{ dsl: 'step s1: ev__echo', files: [{ name: 'x.bin', content_base64: 'not base64!' }] }, /files\[0\] \(x\.bin\): content_base64 is not base64/],
    [{ dsl: 'step s1: ev__echo', files: [{ name: 'a', content: '1' }, { name: 'a', content: '2' }] }, /named twice/],
    [{ plan: { steps: [{ id: 's1', tool: 'ev__echo' }] }, constraints: { tools: ['files__*'] } }, /s1/],
    // no model is configured here to judge a result
    [{ plan: { steps: [{ id: 's1', tool: 'ev__echo', check: { llm: 'is it polite?' } }] } }, /s1\)\.check\.llm: no model/],
    [{ dsl: 'step s1: ev__echo message="hi"\n  check llm "is it polite?"' }, /check\.llm: no model/],
  ];
  for (const [spec, why] of cases) {
    const r = await aos.api('POST', '/api/run', spec);
    assert.ok(r.status === 400 || r.status === 403, `${text(spec)}: ${r.status} ${r.text}`);
    assert.match(r.body.error.message, why, text(spec));
  }
  assert.equal((await aos.api('GET', '/api/jobs?limit=1000')).body.jobs.length, before);
  assert.equal((await aos.api('GET', '/api/jobs?status=nope')).status, 400);
  assert.equal((await aos.api('GET', `/api/episodes/${'0'.repeat(32)}`)).status, 404);
  assert.equal((await aos.api('GET', '/api/episodes/NOTHEX')).status, 400);
});

// A time written with a +14:00 offset: the wall clock there.
function at14(ms) {
  return new Date(ms + 14 * 3600e3).toISOString().replace('Z', '+14:00');
}

async function jobStatus(a, id) {
  const r = await a.api('GET', '/api/jobs?limit=1000');
  return r.body.jobs.find((j) => j.id === id)?.status;
}

test('scheduled_at with a zone offset starts the task at that instant, not hours off', async () => {
  const due = Date.now() + 2500;
  const { job_id: job, trace_id: trace } = await run({
    plan: { steps: [{ id: 's1', tool: 'ev__echo', args: { message: 'on time' } }] },
    scheduled_at: at14(due),
  });
  const stored = (await aos.api('GET', '/api/jobs?limit=1000')).body.jobs.find((j) => j.id === job);
  assert.equal(stored.scheduled_at, new Date(due).toISOString(), 'stored in UTC');
  assert.equal(await jobStatus(aos, job), 'queued');
  const ev = watch(trace);
  await ev.until('task.receipt');
  assert.ok(Date.now() >= due - 50, 'not before its time');
  assert.equal(await jobStatus(aos, job), 'done');
});

test('a scheduled task still queued when aosd restarts keeps waiting for its time', async () => {
  const dataDir = mkdtempSync(join(scratch, 'sched-'));
  let a = await startAosd({ dataDir });
  try {
    const plan = { steps: [{ id: 's1', tool: 'files__write', args: { path: 'x.txt', content: 'x' } }] };
    const later = await a.api('POST', '/api/run', { plan, scheduled_at: at14(Date.now() + 3600e3) });
    assert.equal(later.status, 201, later.text);
    const soon = await a.api('POST', '/api/run', { plan, scheduled_at: at14(Date.now() + 1500) });
    assert.equal(soon.status, 201, soon.text);
    assert.equal((await a.stop()).code, 0);
    a = await startAosd({ dataDir });
    const t0 = Date.now();
    while (await jobStatus(a, soon.body.job_id) !== 'done' && Date.now() - t0 < 15000) await sleep(100);
    assert.equal(await jobStatus(a, soon.body.job_id), 'done');
    assert.equal(await jobStatus(a, later.body.job_id), 'queued', 'an hour early after a restart');
  } finally {
    await a.cleanup();
  }
});

test('chat: a message becomes a task, and its conversation keeps both sides', async () => {
  const r = await aos.api('POST', '/api/chat/send', { message: 'call ev__echo with {"message": "from chat"}' });
  assert.equal(r.status, 201, r.text);
  assert.match(r.body.trace_id, /^[0-9a-f]{32}$/);
  assert.equal(r.body.events[0].type, 'task.acceptance');
  assert.match(r.body.reply, /ev__echo/);
  const ev = watch(r.body.trace_id);
  await ev.until('task.receipt');
  const c = await aos.api('GET', `/api/chat/conversations/${r.body.conversation_id}`);
  assert.equal(c.status, 200, c.text);
  assert.deepEqual(c.body.messages.map((m) => m.role), ['user', 'assistant']);
  assert.equal(c.body.messages[0].trace_id, r.body.trace_id);
  // the same conversation, a message no planner understands: a reply, no task
  const n = await aos.api('POST', '/api/chat/send', { conversation_id: r.body.conversation_id, message: 'make me a sandwich' });
  assert.equal(n.status, 200, n.text);
  assert.equal(n.body.trace_id, null);
  assert.match(n.body.reply, /could not make a plan/);
  const c2 = await aos.api('GET', `/api/chat/conversations/${r.body.conversation_id}`);
  assert.equal(c2.body.messages.length, 4);
  const list = await aos.api('GET', '/api/chat/conversations');
  assert.ok(list.body.conversations.some((x) => x.id === r.body.conversation_id && x.messages === 4));
  assert.equal((await aos.api('POST', '/api/chat/send', {})).status, 400);
});

test('chat: a multipart message brings its files into the task\'s workspace, bytes as sent', async () => {
  const { TOKEN } = await import('./lib.mjs');
  const post = (form) => fetch(aos.url + '/api/chat/send', { method: 'POST', body: form, headers: { Authorization: `Bearer ${TOKEN}` } })
    .then(async (r) => ({ status: r.status, body: await r.json() }));
  const bin = Uint8Array.from([0, 255, 1, 254, 0x80, 10, 13, 0]);
  const form = new FormData();
  form.set('dsl', 'step s1: ev__echo message="files attached"');
  form.set('message', 'with two files');
  form.set('inputs', '{"n": 2}');
  form.append('file', new Blob(['month,revenue\n1,10\n']), 'data.csv');
  form.append('file', new Blob([bin]), 'C:\\Users\\me\\blob.bin');
  const r = await post(form);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const ev = watch(r.body.trace_id);
  await ev.until('task.receipt');
  const receipt = ev.events.find((e) => e.type === 'task.receipt').payload;
  assert.equal(receipt.status, 'done');
  assert.deepEqual(receipt.artifacts.map((a) => [a.name, a.size]).sort(), [['blob.bin', 8], ['data.csv', 19]]);
  const got = await fetch(aos.url + receipt.artifacts.find((a) => a.name === 'blob.bin').url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bin);
  const c = await aos.api('GET', `/api/chat/conversations/${r.body.conversation_id}`);
  assert.equal(c.body.messages[0].content, 'with two files');
  // the stored spec keeps the files' names and sizes, their bytes are the workspace's
  assert.deepEqual((await episode(r.body.trace_id)).spec.files,
    [{ name: 'data.csv', size: 19 }, { name: 'blob.bin', size: 8 }]);
  // refused, and nothing started: a field it does not know, JSON that is not, a hidden file, a body cut short
  const before = (await aos.api('GET', '/api/jobs?limit=1000')).body.jobs.length;
  const bad = [
    [[['message', 'hi'], ['surprise', '1']], 400, /unknown form field 'surprise'/],
    [[['dsl', 'step s1: ev__echo'], ['inputs', '{nope']], 400, /form field 'inputs'/],
    [[['message', 'a'], ['message', 'b']], 400, /given twice/],
    // a message the chat keeps, with the assistant's answer why nothing runs
    [[['dsl', 'step s1: ev__echo'], ['file', new Blob(['x']), '.env']], 200, /files\[0\]/],
  ];
  for (const [fields, status, why] of bad) {
    const f = new FormData();
    for (const [k, v, name] of fields) name ? f.append(k, v, name) : f.append(k, v);
    const x = await post(f);
    assert.equal(x.status, status, JSON.stringify(x.body));
    assert.match(x.body.error.message, why);
    if (status === 200) assert.equal(x.body.trace_id, null);
  }
  const cut = await fetch(aos.url + '/api/chat/send', { method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'multipart/form-data; boundary=XyZ' },
    body: '--XyZ\r\nContent-Disposition: form-data; name="message"\r\n\r\nhello' });
  assert.equal(cut.status, 400, await cut.text());
  assert.equal((await aos.api('GET', '/api/jobs?limit=1000')).body.jobs.length, before);
});

test('an artifact of the workspace is served, and nothing outside it', async () => {
  const { trace_id: trace } = await run({
    files: [{ name: 'data.csv', content: 'month,revenue\njan,3\n' }],
    plan: { steps: [{ id: 'm', milestone: 'files in place' }] },
  });
  const ev = watch(trace);
  await ev.until('task.receipt');
  const receipt = ev.events.find((e) => e.type === 'task.receipt').payload;
  assert.deepEqual(receipt.artifacts.map((a) => [a.name, a.type, a.size]), [['data.csv', 'text/csv', 20]]);
  const got = await fetch(aos.url + receipt.artifacts[0].url, { headers: { Authorization: `Bearer ${(await import('./lib.mjs')).TOKEN}` } });
  assert.equal(got.status, 200);
  assert.equal(await got.text(), 'month,revenue\njan,3\n');
  assert.match(got.headers.get('content-security-policy'), /sandbox/);
  for (const name of ['..%2Faos.db', '.hidden', 'missing.csv'])
    assert.ok([400, 404].includes((await aos.api('GET', `/api/episodes/${trace}/artifacts/${name}`)).status), name);
  assert.ok(existsSync(join(aos.dataDir, 'workspaces', trace, 'data.csv')));
});

test('a run is one trace: invoke_workflow, a span per step attempt, the tool call under it', async () => {
  const { trace_id: trace } = await run({
    goal: 'traced',
    plan: { steps: [
      { id: 'a', tool: 'ev__echo', args: { message: 'x' } },
      { id: 'b', tool: 'aos__echo', args: { message: 'y' } },
    ] },
  });
  const ev = watch(trace);
  await ev.until('task.receipt');
  let tree;
  for (let i = 0; i < 50; i++) { // spans are written within ~100 ms of their end
    const r = await aos.api('GET', `/api/traces/${trace}`);
    if (r.status === 200 && r.body.spans.length === 1 && r.body.spans[0].children?.length === 2) { tree = r.body; break; }
    await sleep(100);
  }
  assert.ok(tree, 'the tree of the run');
  const root = tree.spans[0];
  assert.equal(root.name, 'invoke_workflow traced');
  assert.equal(root.attributes['gen_ai.operation.name'], 'invoke_workflow');
  assert.deepEqual(root.children.map((s) => s.name), ['step a', 'step b']);
  const [a, b] = root.children;
  assert.equal(a.children[0].name, 'tools/call ev__echo');
  assert.equal(a.children[0].kind, 'CLIENT');
  assert.equal(a.children[0].attributes['gen_ai.tool.call.id'], `${trace}:a:1`);
  assert.equal(b.children[0].name, 'tools/call aos__echo');
  const ep = await episode(trace);
  assert.ok(ep.spans.length >= 5, JSON.stringify(ep.spans.map((s) => s.name)));
});

test('each group commit is measured: its time and its transitions in /metrics', async () => {
  const metric = (text, name) => {
    const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
  };
  const read = async () => {
    const r = await aos.api('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.text, /^aos_orch_commit_seconds_bucket\{le="5e-05"\} \d+$/m);
    return {
      commits: metric(r.text, 'aos_orch_commit_seconds_count'),
      seconds: metric(r.text, 'aos_orch_commit_seconds_sum'),
      counted: metric(r.text, 'aos_orch_commit_transitions_count'),
      transitions: metric(r.text, 'aos_orch_commit_transitions_sum'),
    };
  };
  const before = await read();
  const { trace_id: trace } = await run({ plan: { steps: [
    { id: 'a', tool: 'aos__echo', args: { message: 'a' } },
    { id: 'b', tool: 'aos__echo', args: { message: 'b' } },
  ] } });
  await watch(trace).until('task.receipt');
  const after = await read();
  // acceptance; start with a's start; a's end with b's start; b's end with the finish
  assert.ok(after.transitions - before.transitions >= 4, text({ before, after }));
  assert.ok(after.commits - before.commits >= 1, text({ before, after }));
  assert.ok(after.commits - before.commits <= after.transitions - before.transitions);
  // one observation of each histogram per commit
  assert.equal(after.counted - before.counted, after.commits - before.commits);
  assert.ok(after.seconds > before.seconds, text({ before, after }));
});

test("aosd's own read-only steps do not wait for a commit each; the events still come in order", async () => {
  const metric = (t, name) => Number(t.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? 0);
  const read = async () => {
    const r = await aos.api('GET', '/metrics');
    return { commits: metric(r.text, 'aos_orch_commit_seconds_count'),
      transitions: metric(r.text, 'aos_orch_commit_transitions_sum') };
  };
  const N = 12;
  const before = await read();
  const { trace_id: trace } = await run({ plan: { steps: Array.from({ length: N }, (_, k) => (
    { id: `e${k}`, tool: 'aos__echo', args: { message: k ? `\${e${k - 1}.result}` : 'x' } })) } });
  await watch(trace).until('task.receipt');
  const after = await read();
  const tx = after.transitions - before.transitions, commits = after.commits - before.commits;
  // acceptance, the start, one per step: N + 2 transitions, and a step's
  // start does not wait for a commit of its own: the acceptance commits
  // (the 201 waits for it), then the whole run in one commit
  assert.ok(tx >= N + 2, text({ before, after }));
  assert.ok(commits <= 3, `${commits} commits for ${tx} transitions`);
  // a step whose start and end share a commit is one record: one
  // step.finished (with its tool and key; no step.started), in plan order,
  // and its attempt's row written once with the start's input, time and
  // key and the end's output - each result the next one's input
  const ep = await episode(trace);
  const steps = ep.events.filter((e) => e.type.startsWith('step.')).map((e) => `${e.type} ${e.payload.step}`);
  assert.deepEqual(steps, Array.from({ length: N }, (_, k) => `step.finished e${k}`));
  for (const e of ep.events.filter((x) => x.type === 'step.finished')) {
    assert.equal(e.payload.tool, 'aos__echo', text(e));
    assert.equal(e.payload.idempotency_key, `${trace}:${e.payload.step}:1`, text(e));
    assert.equal(e.payload.attempt, 1, text(e));
  }
  assert.equal(ep.status, 'done');
  for (let k = 0; k < N; k++) {
    const [a, ...more] = ep.steps.find((s) => s.id === `e${k}`).attempts;
    assert.equal(more.length, 0);
    assert.equal(a.status, 'done', text(a));
    assert.deepEqual(a.input, { message: k ? 'Echo: '.repeat(k) + 'x' : 'x' }, text(a));
    assert.ok(a.started_at && a.finished_at && a.started_at <= a.finished_at, text(a));
    assert.equal(a.idempotency_key, `${trace}:e${k}:1`, text(a));
  }
  assert.equal(ep.steps.find((s) => s.id === `e${N - 1}`).attempts[0].output.content[0].text,
    'Echo: '.repeat(N) + 'x');
  // the progress card's burst is one event per commit: the newest, N of N
  const prog = ep.events.filter((e) => e.type === 'task.progress.milestone');
  assert.ok(prog.length >= 1 && prog.length <= 2, text(prog));
  assert.deepEqual([prog.at(-1).payload.done, prog.at(-1).payload.total], [N, N]);
  // no tool that could use a workspace ran: none was made
  assert.ok(!existsSync(join(aos.dataDir, 'workspaces', trace)));
});

test('a transition that fails in a group commit undoes only itself; the others of the commit are written', async () => {
  // A goal of control characters is 6 bytes each in JSON: its acceptance
  // event is past the bus's 64 KiB, which only the store finds, inside the
  // commit. Sent with others at once, it shares their group commit: the
  // commit runs without a savepoint per transition, is undone, and runs
  // again with one each, so that this acceptance alone fails.
  const jobs = async () => (await aos.api('GET', '/api/jobs?limit=500')).body.jobs.length;
  const before = await jobs();
  const plan = { steps: [{ id: 'a', tool: 'aos__echo', args: { message: 'a' } },
    { id: 'b', tool: 'aos__echo', args: { message: '${a.result}' } }] };
  const specs = Array.from({ length: 13 }, (_, k) => (k === 6
    ? { goal: '\u0001'.repeat(12000), plan }
    : { goal: `batch ${k}`, plan }));
  const sent = await Promise.all(specs.map((s) => aos.api('POST', '/api/run', s)));
  const bad = sent[6];
  assert.equal(bad.status, 400, bad.text);
  assert.match(bad.body.error.message, /payload.*larger/);
  const good = sent.filter((_, k) => k !== 6);
  for (const r of good) assert.equal(r.status, 201, r.text);
  for (const r of good) {
    await watch(r.body.trace_id).until('task.receipt');
    const ep = await episode(r.body.trace_id);
    assert.equal(ep.status, 'done', text(ep));
    assert.equal(ep.steps.find((s) => s.id === 'b').attempts[0].output.content[0].text, 'Echo: Echo: a');
  }
  assert.equal(await jobs(), before + 12);
});

test('a workspace of many files: the receipt lists what fits, says how many, the episode lists them all', async () => {
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const { trace_id: trace } = await run({ plan: { steps: [{ id: 'gate', approval: { message: 'files?' } }] } });
  const ev = watch(trace);
  await ev.until('approval.request');
  // 600 files with long names: their listing is larger than an event may be
  const ws = join(aos.dataDir, 'workspaces', trace);
  mkdirSync(ws, { recursive: true }); // made by the first tool that writes there
  const names = [];
  for (let i = 0; i < 600; i++) {
    const name = `result ${String(i).padStart(3, '0')} ${'x'.repeat(100)}#.csv`;
    writeFileSync(join(ws, name), 'a,b\n');
    names.push(name);
  }
  const ok = await aos.api('POST', '/agent/approve', { trace_id: trace, step_id: 'gate', decision: 'approve' });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  await ev.until('task.receipt');
  const receipt = ev.events.find((e) => e.type === 'task.receipt').payload;
  assert.equal(receipt.status, 'done');
  assert.equal(receipt.artifacts_total, 600);
  assert.ok(receipt.artifacts.length > 10 && receipt.artifacts.length < 600, String(receipt.artifacts.length));
  // sorted by name, the first ones; each link works although the name has a space and a '#'
  assert.deepEqual(receipt.artifacts.map((a) => a.name), names.slice(0, receipt.artifacts.length));
  const first = receipt.artifacts[0];
  assert.equal(first.type, 'text/csv');
  const got = await fetch(aos.url + first.url, { headers: { Authorization: `Bearer ${(await import('./lib.mjs')).TOKEN}` } });
  assert.equal(got.status, 200, first.url);
  assert.equal(await got.text(), 'a,b\n');
  const ep = await episode(trace);
  assert.equal(ep.artifacts.length, 600);
  assert.deepEqual(ep.artifacts.map((a) => a.name), names);
});
