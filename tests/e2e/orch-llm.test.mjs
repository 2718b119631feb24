// orch-llm.test.mjs - the LLM planner against a real HTTP server speaking
// the OpenAI chat-completions protocol, scripted by the test
// (fixtures/openai-server.mjs): a goal becomes the plan the model submits,
// its tokens are priced into the task's cost, an invalid plan goes back to
// the model once, a failing model leaves the goal to the offline planner,
// and a goal nobody can plan ends the task; the Critic asks the model
// whether a result meets a step's check.llm, and a "no" goes to the Reviser.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAosd, backendEntry, waitReady, sleep, sseClient } from './lib.mjs';
import { startOpenAI } from './openai.mjs';

const KEY = 'sk-orch-llm-test-key-0123456789abcdef';
let aos, llm;
const streams = [];
afterEach(() => { for (const s of streams.splice(0)) s.close(); });
before(async () => {
  llm = await startOpenAI({}, { apiKey: KEY });
  aos = await startAosd({
    // the tests here count the model's requests: the Analyzer asks nothing
    args: ['--llm-base-url', llm.url, '--llm-model', 'planner-model', '--llm-retries', '0',
      '--llm-price-in-cny', '0.01', '--llm-price-out-cny', '0.02', '--analyzer-llm', 'false'],
    env: { AOS_LLM_API_KEY: KEY },
  });
  assert.equal((await aos.api('POST', '/mcp/registry', backendEntry('ev'))).status, 201);
  await waitReady(aos, 'ev');
});
after(async () => {
  llm?.stop();
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, new RegExp(KEY.slice(3, 20)), 'the key never reaches a log line');
});

function watch(trace) {
  const s = sseClient(aos, `/agent/events?trace_id=${trace}&after=0`);
  streams.push(s);
  s.until = (type) => s.waitFor((x) => x.events.some((e) => e.type === type), 30000,
    `${type} (seen: ${JSON.stringify(s.events.map((e) => [e.type, e.payload]))})`);
  s.get = (type) => s.events.find((e) => e.type === type);
  // what went wrong, when a task did not end as it should
  s.story = () => JSON.stringify(s.events.map((e) => [e.type, e.payload]));
  return s;
}

const submit = (plan, usage) => ({
  tool_calls: [{ id: 'call_1', name: 'submit_plan', arguments: plan }],
  usage: usage ?? { prompt_tokens: 1000, completion_tokens: 500 },
});

async function run(goal) {
  const r = await aos.api('POST', '/api/run', { goal });
  assert.equal(r.status, 201, r.text);
  return r.body.trace_id;
}

test('a goal becomes the plan the model submits; its tokens are the task\'s cost', async () => {
  await llm.clearRequests();
  await llm.script({ chat: [submit({ steps: [{ id: 'say', tool: 'ev__echo', args: { message: 'planned by the model' } }] })] });
  const trace = await run('say something nice');
  const ev = watch(trace);
  await ev.until('task.receipt');
  const receipt = ev.get('task.receipt').payload;
  assert.equal(receipt.status, 'done', ev.story());
  // 1,000 tokens in at 0.01, 500 out at 0.02 per 1,000
  assert.ok(Math.abs(receipt.cost_cny - 0.02) < 1e-9, String(receipt.cost_cny));
  assert.equal(ev.get('task.acceptance').payload.planner, 'llm');
  const ep = (await aos.api('GET', `/api/episodes/${trace}`)).body;
  assert.ok(Math.abs(ep.cost_cny - 0.02) < 1e-9);
  const plan = ep.steps.find((s) => s.id === 'plan').attempts[0];
  assert.equal(plan.input.planner, 'llm');
  assert.equal(plan.input.model, 'planner-model');
  assert.equal(plan.output.input_tokens, 1000);
  assert.match(JSON.stringify(ep.steps.find((s) => s.id === 'say').attempts[0].output), /planned by the model/);
  // what the model was asked: the tools it may use, the function to answer with
  const [req] = await llm.requests();
  assert.equal(req.headers.authorization, `Bearer ${KEY}`);
  assert.match(req.headers.traceparent, new RegExp(`^00-${trace}-`));
  assert.equal(req.body.model, 'planner-model');
  assert.equal(req.body.tools[0].function.name, 'submit_plan');
  assert.match(req.body.messages[0].content, /ev__echo/);
  assert.match(req.body.messages[1].content, /say something nice/);
  // the model call is a span of the task
  let chat;
  for (let i = 0; i < 50 && !chat; i++) {
    const t = await aos.api('GET', `/api/traces/${trace}`);
    chat = JSON.stringify(t.body).includes('"chat planner-model"') ? t.body : null;
    if (!chat) await sleep(100);
  }
  assert.ok(chat, 'a chat span');
  assert.match(JSON.stringify(chat), /"gen_ai.usage.input_tokens":1000/);
});

test('an invalid plan goes back to the model once, with the reason', async () => {
  await llm.clearRequests();
  await llm.script({ chat: [
    submit({ steps: [{ id: 'x', tool: 'nowhere__nothing' }] }, { prompt_tokens: 100, completion_tokens: 100 }),
    submit({ steps: [{ id: 'ok', tool: 'ev__echo', args: { message: 'second try' } }] }, { prompt_tokens: 100, completion_tokens: 100 }),
  ] });
  const trace = await run('try twice');
  const ev = watch(trace);
  await ev.until('task.receipt');
  assert.equal(ev.get('task.receipt').payload.status, 'done', ev.story());
  const reqs = await llm.requests();
  assert.equal(reqs.length, 2);
  const last = reqs[1].body.messages.at(-1);
  assert.equal(last.role, 'tool');
  assert.equal(last.tool_call_id, 'call_1');
  assert.match(last.content, /not valid/);
  // both calls count: 200 in, 200 out
  assert.ok(Math.abs(ev.get('task.receipt').payload.cost_cny - (0.2 * 0.01 + 0.2 * 0.02)) < 1e-9);
});

test('a failing model leaves the goal to the offline planner; a goal nobody plans fails the task', async () => {
  await llm.script({ chat: [{ status: 500, repeat: true }] });
  const t1 = await run('call ev__echo with {"message": "offline after all"}');
  const e1 = watch(t1);
  await e1.until('task.receipt');
  assert.equal(e1.get('task.receipt').payload.status, 'done', e1.story());
  const ep = (await aos.api('GET', `/api/episodes/${t1}`)).body;
  const plan = ep.steps.find((s) => s.id === 'plan').attempts[0];
  assert.equal(plan.output.planner, 'offline');
  assert.match(plan.output.llm_error, /model failed/);

  await llm.script({ chat: [{ content: 'I would rather not.' }, { content: 'Still no.' }] });
  const t2 = await run('make me a sandwich');
  const e2 = watch(t2);
  await e2.until('task.receipt');
  const r2 = e2.get('task.receipt').payload;
  assert.equal(r2.status, 'failed');
  assert.match(r2.error, /unable to plan/);
  assert.equal(e2.get('anomaly.detected').payload.kind, 'planning');
});

const verdict = (pass, reason) => ({
  tool_calls: [{ id: 'call_v', name: 'verdict', arguments: { pass, reason } }],
  usage: { prompt_tokens: 200, completion_tokens: 50 },
});

test('the Critic asks the model about check.llm; its verdict and cost are the step\'s', async () => {
  await llm.clearRequests();
  await llm.script({ chat: [verdict(true, 'it greets the reader')] });
  const r = await aos.api('POST', '/api/run', { plan: { steps: [
    { id: 'hi', tool: 'ev__echo', args: { message: 'hello, reader' }, check: { llm: 'a greeting' } }] } });
  assert.equal(r.status, 201, r.text);
  const trace = r.body.trace_id;
  const ev = watch(trace);
  await ev.until('task.receipt');
  const receipt = ev.get('task.receipt').payload;
  assert.equal(receipt.status, 'done', ev.story());
  // 200 in at 0.01, 50 out at 0.02 per 1,000
  const cost = 0.2 * 0.01 + 0.05 * 0.02;
  assert.ok(Math.abs(receipt.cost_cny - cost) < 1e-9, String(receipt.cost_cny));
  // step events are the episode's (topic task), not the Chat Hub's
  const ep = (await aos.api('GET', `/api/episodes/${trace}`)).body;
  const fin = ep.events.find((e) => e.type === 'step.finished' && e.payload.step === 'hi');
  assert.equal(fin.payload.critique.pass, true, JSON.stringify(ep.events));
  assert.equal(fin.payload.critique.reason, 'it greets the reader');
  // what the Critic asked: the requirement, the tool, its arguments and result
  const [req] = await llm.requests();
  assert.equal(req.body.tools[0].function.name, 'verdict');
  assert.match(req.body.messages[1].content, /Requirement: a greeting/);
  assert.match(req.body.messages[1].content, /Tool: ev__echo/);
  assert.match(req.body.messages[1].content, /hello, reader/);
  assert.match(req.headers.traceparent, new RegExp(`^00-${trace}-`));
  const att = ep.steps.find((s) => s.id === 'hi').attempts[0];
  assert.ok(Math.abs(att.cost_cny - cost) < 1e-9, JSON.stringify(att));
});

// A budget breach names the costliest steps: in the receipt, in the
// task's anomaly, and in the Analyzer's suggestion on that anomaly's card.
test('over its budget a task stops; the receipt, the anomaly and the Analyzer name the costliest steps', async () => {
  await llm.clearRequests();
  await llm.script({ chat: [verdict(true, 'fine'), verdict(true, 'fine')] });
  const r = await aos.api('POST', '/api/run', { plan: { steps: [
    { id: 'one', tool: 'ev__echo', args: { message: 'a' }, check: { llm: 'anything' } },
    { id: 'two', tool: 'ev__echo', args: { message: 'b' }, check: { llm: 'anything' } },
    { id: 'three', tool: 'ev__echo', args: { message: 'c' } }] }, constraints: { budget_cny: 0.004 } });
  assert.equal(r.status, 201, r.text);
  const trace = r.body.trace_id;
  const ev = watch(trace);
  await ev.until('task.receipt');
  const receipt = ev.get('task.receipt').payload;
  assert.equal(receipt.status, 'failed', ev.story());
  assert.match(receipt.error, /over the budget/);
  // 0.003 CNY per verdict (200 in at 0.01, 50 out at 0.02 per 1,000)
  assert.deepEqual(receipt.costliest.map((c) => c.step), ['one', 'two']);
  assert.ok(receipt.costliest.every((c) => Math.abs(c.cost_cny - 0.003) < 1e-9), JSON.stringify(receipt.costliest));
  const anomaly = ev.events.find((e) => e.type === 'anomaly.detected' && e.payload.kind === 'budget' && e.topic !== 'analyzer');
  assert.ok(anomaly, ev.story());
  assert.deepEqual(anomaly.payload.costliest.map((c) => c.step), ['one', 'two']);
  await ev.waitFor((x) => x.events.some((e) => e.topic === 'analyzer' && e.card_id === anomaly.card_id), 30000, ev.story());
  const sg = ev.events.find((e) => e.topic === 'analyzer' && e.card_id === anomaly.card_id).payload.suggestion;
  assert.equal(sg.rule, 'budget_breach');
  assert.deepEqual(sg.costliest.map((c) => c.step), ['one', 'two']);
  assert.match(sg.detail, /one \(0\.0030 CNY\), two \(0\.0030 CNY\)/);
  // the failed receipt has no card of its own: the anomaly's says it
  assert.ok(!ev.events.some((e) => e.topic === 'analyzer' && e.card_id !== anomaly.card_id), ev.story());
});

test('a "no" from the Critic fails the attempt: the Reviser retries the tool, the next verdict passes', async () => {
  await llm.clearRequests();
  await llm.script({ chat: [verdict(false, 'not polite enough'), verdict(true, 'better')] });
  const r = await aos.api('POST', '/api/run', { plan: { steps: [
    { id: 'ask', tool: 'ev__echo', args: { message: 'give it' }, check: { llm: 'polite' },
      retry: { max: 1, backoff_ms: 10 } }] } });
  assert.equal(r.status, 201, r.text);
  const ev = watch(r.body.trace_id);
  await ev.until('task.receipt');
  assert.equal(ev.get('task.receipt').payload.status, 'done', ev.story());
  const ep = (await aos.api('GET', `/api/episodes/${r.body.trace_id}`)).body;
  const failed = ep.events.find((e) => e.type === 'step.failed');
  assert.match(failed.payload.error, /the critic says no: not polite enough/);
  assert.equal(failed.payload.critique.pass, false);
  assert.equal(ev.get('anomaly.detected').payload.kind, 'step_failure');
  assert.ok(ev.get('recovery.done'), ev.story());
  const atts = ep.steps.find((s) => s.id === 'ask').attempts;
  assert.deepEqual(atts.map((a) => a.status), ['failed', 'done']);
  assert.equal(atts[0].error.code, 'critique_failed');
  assert.equal((await llm.requests()).length, 2);
});

test('a model that cannot judge fails the check with the reason', async () => {
  await llm.script({ chat: [{ content: 'Looks fine to me, probably.' }] });
  const r = await aos.api('POST', '/api/run', { plan: { steps: [
    { id: 'j', tool: 'ev__echo', args: { message: 'x' }, check: { llm: 'anything' } }] },
    constraints: { approval: 'never' } });
  assert.equal(r.status, 201, r.text);
  const ev = watch(r.body.trace_id);
  await ev.until('task.receipt');
  const rc = ev.get('task.receipt').payload;
  assert.equal(rc.status, 'failed', ev.story());
  assert.match(rc.error, /not a verdict/);
});

test('a job cancelled while the model plans ends at once', async () => {
  await llm.script({ chat: [{ hang: true }] });
  const r = await aos.api('POST', '/api/run', { goal: 'think forever' });
  assert.equal(r.status, 201);
  for (let i = 0; i < 100 && (await llm.requests()).every((q) => !JSON.stringify(q.body).includes('think forever')); i++) await sleep(50);
  const c = await aos.api('POST', `/api/jobs/${r.body.job_id}/cancel`);
  assert.equal(c.status, 200, c.text);
  const ep = (await aos.api('GET', `/api/episodes/${r.body.trace_id}`)).body;
  assert.equal(ep.status, 'cancelled');
});
