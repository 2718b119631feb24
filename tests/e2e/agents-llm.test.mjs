// agents-llm.test.mjs - an agent whose run_task is a task of the
// orchestrator (config.planner "orchestrator"): the configured LLM (a real
// HTTP server speaking the OpenAI chat-completions protocol, scripted by
// the test: fixtures/openai-server.mjs) plans from the agent's prompt, its
// SOP and the call's input, with the agent's tools only; the task runs in
// the agent's project, and run_task answers with the plan's result. A plan
// that names a tool outside the mapping is refused by aosd, not by the
// agent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAosd, assertErrorShape, sleep } from './lib.mjs';
import { startOpenAI } from './openai.mjs';

const KEY = 'sk-agents-llm-test-key-0123456789abcdef';
let aos, llm;
before(async () => {
  llm = await startOpenAI({}, { apiKey: KEY });
  aos = await startAosd({
    args: ['--llm-base-url', llm.url, '--llm-model', 'agent-model', '--llm-retries', '0'],
    env: { AOS_LLM_API_KEY: KEY },
  });
});
after(async () => {
  llm?.stop();
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-3000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const submit = (plan) => ({ tool_calls: [{ id: 'call_1', name: 'submit_plan', arguments: plan }], usage: { prompt_tokens: 100, completion_tokens: 50 } });
const runTask = (args) => aos.api('POST', '/mcp/call', { server: 'greeter', tool: 'run_task', args });

test('run_task through the orchestrator: the LLM plans from the prompt, SOP and input, with the agent\'s tools', async () => {
  const c = await aos.api('POST', '/agents', {
    name: 'greeter',
    config: {
      prompt: 'You greet people by name.', sop: 'Echo a greeting for the person named in the input.',
      tools: ['aos__echo'], planner: 'orchestrator', project_id: 'greetings',
    },
  });
  assert.equal(c.status, 201, c.text);
  assert.equal((await aos.api('POST', '/agents/greeter/register-mcp')).status, 200);
  assert.equal((await aos.api('POST', '/agents/greeter/start')).status, 200);
  await until('running', async () => (await aos.api('GET', '/agents/greeter')).body.status === 'running');

  await llm.clearRequests();
  await llm.script({ chat: [submit({ steps: [{ id: 'greet', tool: 'aos__echo', args: { message: 'Hello, ${inputs.input}!' } }] })] });
  const r = await runTask({ input: 'Ada' });
  assert.equal(r.status, 200, r.text);
  assert.ok(!r.body.isError, r.text);
  assert.equal(r.body.content[0].text, 'Echo: Hello, Ada!');
  assert.equal(r.body.structuredContent.planner, 'llm');
  const trace = r.body.structuredContent.trace_id;
  assert.match(trace, /^[0-9a-f]{32}$/);

  // what the model was asked: the agent's prompt, SOP and input, its tools only
  const [req] = await llm.requests();
  assert.equal(req.headers.authorization, `Bearer ${KEY}`);
  assert.equal(req.body.model, 'agent-model');
  const asked = req.body.messages.map((m) => m.content).join('\n');
  assert.match(asked, /You greet people by name\./);
  assert.match(asked, /Echo a greeting for the person named in the input\./);
  assert.match(asked, /Input: Ada/);
  assert.match(req.body.messages[0].content, /aos__echo/);
  assert.doesNotMatch(req.body.messages[0].content, /logs__query|shell__run/);

  // a task of the agent's project, limited to its tools, done
  const ep = await aos.api('GET', `/api/episodes/${trace}`);
  assert.equal(ep.status, 200, ep.text);
  assert.equal(ep.body.status, 'done');
  assert.equal(ep.body.spec.project_id, 'greetings');
  assert.deepEqual(ep.body.spec.constraints.tools, ['aos__echo']);
  assert.match(ep.body.spec.title, /^agent greeter v1$/);
});

test('a plan outside the agent\'s tools is refused by aosd; the call says why', async () => {
  // the model insists on a tool the agent may not call (once, and again
  // when told why); the offline planner knows no such goal
  await llm.clearRequests();
  const bad = submit({ steps: [{ id: 'peek', tool: 'logs__query', args: { q: 'x' } }] });
  await llm.script({ chat: [bad, bad] });
  const r = await runTask({ input: 'Grace' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.isError, true, r.text);
  assert.match(r.body.content[0].text, /^task [0-9a-f]{32} failed: /);
  assert.match(r.body.content[0].text, /logs__query/);
  assert.ok((await llm.requests()).length >= 1);
});

test('config.planner: "orchestrator" needs a project and a local agent', async () => {
  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'np', config: { planner: 'orchestrator' } }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'np', config: { planner: 'llm' } }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'np', type: 'remote', config: { url: 'http://127.0.0.1:9/mcp', planner: 'orchestrator', project_id: 'p' } }), 400, 'invalid_argument');
  assert.equal((await aos.api('POST', '/agents/greeter/stop')).status, 200);
});
