// agents-live.test.mjs - running agents (issue 15): an agent created from a
// template, its tools bound, started with 2 replicas of the runtime shipped
// with aosd (`aosd agent`), registered on the gateway and called through
// /mcp with the SDK client; a replica killed with SIGKILL is restarted and
// the bus says so; a release of v2 while a client calls in a loop fails no
// call, and so does the rollback to v1; its logs tailed over SSE (bearer
// token and cookie session); a call outside its tool mapping refused by
// aosd; stop revokes its token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startAosd, assertErrorShape, sseClient, sleep, TOKEN } from './lib.mjs';

let aos;
before(async () => { aos = await startAosd(); });
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-3000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function agent(name) {
  const r = await aos.api('GET', `/agents/${name}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

async function connect(path) {
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(aos.url + path), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  });
  await client.connect(transport);
  return client;
}

// An agent whose SOP echoes its input through the built-in aos__echo: the
// one tool of its mapping.
const SOP = 'step e: aos__echo message=${inputs.input}';

test('start with 2 replicas, register, call through /mcp, kill -9, release, rollback, logs, refusal, stop', async () => {
  const c = await aos.api('POST', '/agents', {
    name: 'echoer', template: 'shell-runner', replicas: 2,
    config: { sop: SOP, tools: ['aos__echo'], concurrency: 4, env: { ECHO_SECRET: 'agent-env-secret-5521' } },
  });
  assert.equal(c.status, 201, c.text);
  const id = c.body.id;
  assert.equal(c.body.status, 'stopped');

  // the value events, from before anything starts
  const events = sseClient(aos, '/agent/events');
  await events.opened;

  const s = await aos.api('POST', `/agents/${id}/start`);
  assert.equal(s.status, 200, s.text);
  assertErrorShape(assert, await aos.api('POST', `/agents/${id}/start`), 409, 'conflict');
  const running = await until('2 replicas ready', async () => {
    const a = await agent('echoer');
    return a.status === 'running' && a.live_replicas.length === 2 && a ? a : null;
  });
  assert.equal(running.load, 0);
  const pids = running.live_replicas.map((r) => r.pid);
  assert.equal(new Set(pids).size, 2);
  assert.ok(pids.every((p) => p > 0));
  assert.match(running.run_id, /^[0-9a-f]{32}$/);

  // the runs
  const runs = await aos.api('GET', '/agents/echoer/runs');
  assert.equal(runs.status, 200, runs.text);
  assert.equal(runs.body.runs[0].status, 'running');

  // register: a server of the gateway
  const reg = await aos.api('POST', '/agents/echoer/register-mcp');
  assert.equal(reg.status, 200, reg.text);
  assert.equal(reg.body.route_prefix, '/agents/echoer/mcp');
  assert.equal(reg.body.registered, true);
  assertErrorShape(assert, await aos.api('POST', '/mcp/registry', { name: 'echoer', transport: 'stdio', command: '/bin/true' }), 409, 'conflict');
  const list = await aos.api('GET', '/mcp/registry');
  assert.ok(list.body.servers.some((x) => x.name === 'echoer' && x.transport === 'agent'));

  // aggregated /mcp: echoer__run_task
  const mcp = await connect('/mcp');
  const tools = await mcp.listTools();
  assert.ok(tools.tools.some((t) => t.name === 'echoer__run_task'), JSON.stringify(tools.tools.map((t) => t.name)));
  const r1 = await mcp.callTool({ name: 'echoer__run_task', arguments: { input: 'hello' } });
  assert.ok(!r1.isError, JSON.stringify(r1));
  assert.equal(r1.content[0].text, 'Echo: hello');
  assert.equal(r1.structuredContent.version, '1');

  // the trace goes through: the runtime's tool calls are under run_task's span
  const tid = [...Array(32)].map(() => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
  const tr = await aos.api('POST', '/mcp/call', { server: 'echoer', tool: 'run_task', args: { input: 'traced' } },
    TOKEN, { traceparent: `00-${tid}-00f067aa0ba902b7-01` });
  assert.equal(tr.status, 200, tr.text);
  const spans = await until('the spans of the trace', async () => {
    const t = await aos.api('GET', `/api/traces/${tid}`);
    if (t.status !== 200) return null;
    const all = [];
    const walk = (xs) => { for (const x of xs) { all.push(x); walk(x.children || []); } };
    walk(t.body.spans);
    return all.some((x) => x.name === 'tools/call echo') && all.some((x) => x.name === 'tools/call run_task') ? all : null;
  });
  const outer = spans.find((x) => x.name === 'tools/call run_task');
  let inner = spans.find((x) => x.name === 'tools/call echo');
  while (inner && inner.span_id !== outer.span_id) inner = spans.find((x) => x.span_id === inner.parent_span_id);
  assert.ok(inner, 'the echo call is under run_task: ' + JSON.stringify(spans.map((x) => [x.name, x.span_id, x.parent_span_id])));

  // /agents/<name>/mcp: the agent alone, unprefixed
  const own = await connect('/agents/echoer/mcp');
  const r2 = await own.callTool({ name: 'run_task', arguments: { input: 'direct' } });
  assert.equal(r2.content[0].text, 'Echo: direct');

  // least in-flight: 8 concurrent calls reach both replicas
  const spread = await Promise.all([...Array(8)].map((_, i) =>
    mcp.callTool({ name: 'echoer__run_task', arguments: { input: `c${i}` } })));
  assert.ok(spread.every((x) => !x.isError));
  assert.equal(new Set(spread.map((x) => x.structuredContent.pid)).size, 2, 'both replicas served');

  // outside the mapping: aosd refuses the agent's token, not the runtime
  const out = await mcp.callTool({ name: 'echoer__run_task', arguments: { dsl: 'step q: logs__query q=x' } });
  assert.equal(out.isError, true);
  assert.match(out.content[0].text, /HTTP 403/);
  assert.match(out.content[0].text, /may not call 'logs__query'/);

  // kill -9 a replica: restarted, recovery.start/done on the bus
  process.kill(pids[0], 'SIGKILL');
  await until('a new replica', async () => {
    const a = await agent('echoer');
    const live = a.live_replicas.filter((r) => r.state === 'ready');
    return live.length === 2 && !live.some((r) => r.pid === pids[0]) ? a : null;
  });
  await events.waitFor((x) => x.events.some((e) => e.type === 'recovery.start' && e.payload.agent === 'echoer'), 10000, 'recovery.start');
  await events.waitFor((x) => x.events.some((e) => e.type === 'recovery.done' && e.payload.agent === 'echoer'), 10000, 'recovery.done');
  const crashed = await agent('echoer');
  assert.match(crashed.errors[0].message, /signal 9/);
  assert.equal(crashed.stats.restarts >= 1, true);

  // its metrics: replicas, health, restarts, calls (promtool passes), and
  // the metric history has them
  const mt = (await aos.api('GET', '/metrics')).text;
  assert.match(mt, /^aos_agent_replicas_desired\{agent="echoer"\} 2$/m);
  assert.match(mt, /^aos_agent_replicas_running\{agent="echoer"\} 2$/m);
  assert.match(mt, /^aos_agent_health\{agent="echoer"\} 0$/m);
  assert.match(mt, /^aos_agent_calls_in_flight\{agent="echoer"\} 0$/m);
  assert.match(mt, /^aos_agent_restarts_total\{agent="echoer"\} [1-9]\d*$/m);
  // r1, the traced call, the direct one and 8 spread; the call outside the mapping failed
  assert.ok(Number(mt.match(/^aos_agent_calls_total\{agent="echoer",outcome="ok"\} (\d+)$/m)?.[1]) >= 11, mt);
  assert.match(mt, /^aos_agent_calls_total\{agent="echoer",outcome="error"\} 1$/m);
  const prom = spawnSync('promtool', ['check', 'metrics'], { input: mt, encoding: 'utf8' });
  assert.equal(prom.status, 0, `promtool: ${prom.stdout}${prom.stderr}`);
  const hist = await until('the history of aos_agent_replicas_running', async () => {
    const q = await aos.api('GET', `/api/metrics/query?${new URLSearchParams({ name: 'aos_agent_replicas_running', from: String(Math.floor(Date.now() / 1000) - 120), step: '1' })}`);
    const sr = q.status === 200 && q.body.series.find((x) => x.labels.agent === 'echoer');
    return sr && sr.points.some(([, v]) => v === 2) ? sr : null;
  });
  assert.equal(hist.type, 'gauge');

  // release v2 while a client calls in a loop: no call fails
  const p = await aos.api('PATCH', '/agents/echoer', { config: { sop: 'step e: aos__echo message="v2 ${inputs.input}"' } });
  assert.equal(p.body.latest_version, 2);
  let stop = false, calls = 0;
  const failures = [];
  const versions = new Set();
  const loop = (async () => {
    while (!stop) {
      try {
        const x = await mcp.callTool({ name: 'echoer__run_task', arguments: { input: 'loop' } });
        if (x.isError) failures.push(x.content[0].text); else versions.add(x.structuredContent.version);
      } catch (e) { failures.push(String(e)); }
      calls++;
    }
  })();
  await sleep(200);
  const rel = await aos.api('POST', '/agents/echoer/release', { version: 2 });
  assert.equal(rel.status, 200, rel.text);
  const v2 = await until('all replicas on v2', async () => {
    const a = await agent('echoer');
    return a.live_replicas.length === 2 && a.live_replicas.every((r) => r.version === 2 && r.state === 'ready') ? a : null;
  }, 30000);
  assert.equal(v2.version, 2);
  await sleep(200);
  // roll back to v1 the same way
  const back = await aos.api('POST', '/agents/echoer/release', { version: 1 });
  assert.equal(back.status, 200, back.text);
  await until('all replicas on v1', async () => {
    const a = await agent('echoer');
    return a.live_replicas.length === 2 && a.live_replicas.every((r) => r.version === 1 && r.state === 'ready') ? a : null;
  }, 30000);
  await sleep(200);
  stop = true;
  await loop;
  assert.deepEqual(failures, [], `${failures.length} of ${calls} calls failed`);
  assert.ok(calls > 10, `only ${calls} calls`);
  assert.ok(versions.has('1') && versions.has('2'), [...versions].join());
  const after = await mcp.callTool({ name: 'echoer__run_task', arguments: { input: 'x' } });
  assert.equal(after.content[0].text, 'Echo: x');

  // scale to 1 and back to 2
  const sc = await aos.api('POST', '/agents/echoer/scale', { replicas: 1 });
  assert.equal(sc.status, 200, sc.text);
  await until('1 replica', async () => ((await agent('echoer')).live_replicas.length === 1 ? 1 : null));
  await aos.api('POST', '/agents/echoer/scale', { replicas: 2 });
  await until('2 replicas', async () => {
    const a = await agent('echoer');
    return a.status === 'running' && a.live_replicas.length === 2 ? a : null;
  });

  // logs: the last lines, then live (bearer token). A replica's stderr
  // lines reach the log service a moment after aosd reads them, so lines
  // may still arrive from what happened before a tail opens (the replica
  // the scale started): "past" is what was stored before the request, and
  // a live line is the one of a process started after it, known by its pid.
  const SOURCE = 'upstream:agent:echoer';
  const stored = async (source) => {
    const q = new URLSearchParams({ order: 'desc', limit: '1000', ...(source ? { source } : {}) });
    const r = await aos.api('GET', `/api/logs?${q}`);
    assert.equal(r.status, 200, r.text);
    return r.body.items;
  };
  // kills the newest replica; its restart's pid once it is ready again
  const killNewest = async () => {
    const { replica, pid } = (await agent('echoer')).live_replicas[0];
    process.kill(pid, 'SIGKILL');
    const again = await until(`replica ${replica} restarted`, async () => {
      const r = (await agent('echoer')).live_replicas.find((x) => x.replica === replica);
      return r && r.state === 'ready' && r.pid !== pid ? r : null;
    });
    return again.pid;
  };
  const readyOf = (pid) => (e) => e.source === SOURCE && e.attributes?.pid === pid && /: ready \(pid/.test(e.message);
  const pastId = (await stored(SOURCE))[0].id;
  const tail = sseClient(aos, '/agents/echoer/logs?tail=5');
  await tail.opened;
  assert.equal(tail.status, 200);
  await tail.waitFor((x) => x.named.length >= 5, 10000, '5 lines');
  const lines = () => tail.named.filter((e) => e.event === 'log').map((e) => e.data);
  assert.ok(lines().every((e) => e.source === SOURCE), JSON.stringify(lines()));
  const ids = lines().map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'oldest first');
  assert.ok(ids.filter((id) => id <= pastId).length <= 5, `the last 5 lines of the past, no more: ${ids}`);
  // the first five are the source's last five up to the fifth: none skipped
  const upTo = (await stored(SOURCE)).filter((e) => e.id <= ids[4]).slice(0, 5).map((e) => e.id).reverse();
  assert.deepEqual(ids.slice(0, 5), upTo, 'the last 5 lines as stored');
  const restarted = await killNewest();
  await tail.waitFor(() => lines().some(readyOf(restarted)), 15000, 'a live line');
  tail.close();
  assertErrorShape(assert, await aos.api('GET', '/agents/echoer/logs?tail=-1'), 400, 'invalid_argument');

  // the same with a browser's cookie session (a Viewer user), tail=0: live only
  const u = await aos.api('POST', '/auth/users', { name: 'watcher', password: 'watcher-pw-12345', role: 'viewer' });
  assert.equal(u.status, 201, u.text);
  const li = await fetch(aos.url + '/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'watcher', password: 'watcher-pw-12345' }) });
  assert.equal(li.status, 200);
  const cookie = li.headers.get('set-cookie').match(/^(aos_session=[^;]+)/)[1];
  const csrf = (await li.json()).csrf_token;
  const newest = (await stored(null))[0].id; // of any source: "now"
  const ac = new AbortController();
  const cs = await fetch(aos.url + '/agents/echoer/logs?tail=0', { headers: { Cookie: cookie, Accept: 'text/event-stream' }, signal: ac.signal });
  assert.equal(cs.status, 200);
  assert.match(cs.headers.get('content-type'), /text\/event-stream/);
  let text = '';
  const reading = (async () => {
    const dec = new TextDecoder();
    try { for await (const chunk of cs.body) text += dec.decode(chunk); } catch { /* aborted */ }
  })();
  const got = () => text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  const restarted2 = await killNewest();
  await until('a live line over the cookie session', async () => got().some(readyOf(restarted2)));
  ac.abort();
  await reading;
  assert.deepEqual(got().filter((e) => e.id <= newest), [], 'tail=0 sends nothing of the past');
  assert.ok(got().every((e) => e.source === SOURCE), JSON.stringify(got()));
  // a Viewer may read, not operate
  const vs = await fetch(aos.url + '/agents/echoer/stop', { method: 'POST', headers: { Cookie: cookie, 'X-CSRF-Token': csrf } });
  assert.equal(vs.status, 403);
  assert.equal((await vs.json()).error.code, 'forbidden');
  await until('2 ready again', async () => {
    const a = await agent('echoer');
    return a.status === 'running' && a.live_replicas.every((r) => r.state === 'ready') ? a : null;
  });
  assert.ok(!aos.logs().includes('agent-env-secret-5521'), 'env values stay out of the logs');

  await mcp.close();
  await own.close();

  // stop: replicas gone, token revoked, run closed, status stopped
  const st = await aos.api('POST', `/agents/${id}/stop`);
  assert.equal(st.status, 200, st.text);
  const stopped = await until('stopped', async () => {
    const a = await agent('echoer');
    return a.status === 'stopped' && a.live_replicas.length === 0 ? a : null;
  });
  assert.equal(stopped.load, 0);
  for (const pid of pids.slice(1)) assert.throws(() => process.kill(pid, 0));
  const toks = await aos.api('GET', '/auth/tokens');
  const mine = toks.body.tokens.filter((t) => t.name === 'agent:echoer');
  assert.ok(mine.length >= 3, 'a token per start and per release');
  await until('tokens revoked', async () => {
    const t = await aos.api('GET', '/auth/tokens');
    return t.body.tokens.filter((x) => x.name === 'agent:echoer').every((x) => x.revoked) ? 1 : null;
  });
  const runs2 = await aos.api('GET', '/agents/echoer/runs');
  assert.equal(runs2.body.runs[0].status, 'stopped');
  assert.ok(runs2.body.runs[0].stats.calls > 10);
  // a stopped but registered agent answers 503
  const r3 = await aos.api('POST', '/mcp/call', { server: 'echoer', tool: 'run_task', args: { input: 'x' } });
  assertErrorShape(assert, r3, 503, 'unavailable');

  const audit = await aos.api('GET', '/audit/logs?resource=agent:echoer&limit=100');
  const actions = (audit.body.entries || audit.body.logs || audit.body.items || []).map((e) => e.action);
  for (const a of ['agent.start', 'agent.register', 'agent.release', 'agent.rollback', 'agent.scale', 'agent.stop'])
    assert.ok(actions.includes(a), `${a} audited: ${actions.join()}`);
  events.close();
});

test('AOS_* env names are refused; stop of a stopped agent changes nothing (remote agents: agents-remote.test.mjs)', async () => {
  const c = await aos.api('POST', '/agents', { name: 'far', type: 'remote', config: { url: 'http://127.0.0.1:9/mcp' } });
  assert.equal(c.status, 201, c.text);
  assert.equal((await agent('far')).status, 'stopped');
  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'sneaky', config: { env: { AOS_AGENT_URL: 'http://evil' } } }), 400, 'invalid_argument');
  assert.equal((await aos.api('GET', '/agents/sneaky')).status, 404);
  const s = await aos.api('POST', '/agents/far/stop');
  assert.equal(s.status, 200, s.text);
  assert.equal(s.body.status, 'stopped');
  assertErrorShape(assert, await aos.api('POST', '/agents/nope/start'), 404, 'not_found');
  assertErrorShape(assert, await aos.api('POST', '/agents/nope/register-mcp'), 404, 'not_found');
  assertErrorShape(assert, await aos.api('GET', '/agents/nope/logs'), 404, 'not_found');
  assert.equal((await aos.api('DELETE', '/agents/far')).status, 200);
});

test('repeated crashes raise anomaly.detected; status crashed', async () => {
  const c = await aos.api('POST', '/agents', { name: 'crasher', config: { sop: SOP, tools: ['aos__echo'] } });
  assert.equal(c.status, 201, c.text);
  const events = sseClient(aos, '/agent/events');
  await events.opened;
  assert.equal((await aos.api('POST', '/agents/crasher/start')).status, 200);
  for (let i = 0; i < 3; i++) {
    const a = await until('a ready replica', async () => {
      const x = await agent('crasher');
      return x.live_replicas[0] && x.live_replicas[0].state === 'ready' ? x : null;
    });
    process.kill(a.live_replicas[0].pid, 'SIGKILL');
    // its only replica down: crashed until it is back (the back-off grows)
    await until('crashed', async () => ((await agent('crasher')).status === 'crashed' ? 1 : null));
  }
  const a = await agent('crasher');
  assert.equal(a.errors.length, 3);
  assert.ok(a.errors.every((e) => /signal 9/.test(e.message)), JSON.stringify(a.errors));
  await until('running again', async () => ((await agent('crasher')).status === 'running' ? 1 : null));
  await events.waitFor((x) => x.events.some((e) => e.type === 'anomaly.detected' && e.payload.agent === 'crasher'), 10000, 'anomaly.detected');
  assertErrorShape(assert, await aos.api('DELETE', '/agents/crasher'), 409, 'conflict');
  assert.equal((await aos.api('POST', '/agents/crasher/stop')).status, 200);
  assert.equal((await aos.api('DELETE', '/agents/crasher')).status, 200);
  events.close();
});

test('env from a runtime secret and a project variable: in the process, never shown; a missing one fails the start', async () => {
  const V1 = 'agent-rt-secret-8d41c7e2b9';
  const V2 = 'agent-var-secret-3f9a06d17c';
  const PLAIN = 'plain-env-value-6611aa';
  for (const [name, value] of [['AG_RT', V1], ['AG_VAR_SECRET', V2]]) {
    const r = await aos.api('PUT', `/config/runtime/${name}`, { value, purpose: 'agents e2e' });
    assert.ok(r.status === 200 || r.status === 201, r.text);
  }
  const pv = await aos.api('PUT', '/projects/agp/vars/AG_TOKEN', { secret: 'AG_VAR_SECRET' });
  assert.ok(pv.status === 200 || pv.status === 201, pv.text);
  const events = sseClient(aos, '/agent/events');
  await events.opened;

  const env = { FROM_SECRET: { secret: 'AG_RT' }, FROM_VAR: { var: 'AG_TOKEN' }, PLAIN };
  const c = await aos.api('POST', '/agents', { name: 'keyed', config: { sop: SOP, tools: ['aos__echo'], project_id: 'agp', env } });
  assert.equal(c.status, 201, c.text);
  assert.deepEqual(c.body.config.env_names.sort(), ['FROM_SECRET', 'FROM_VAR', 'PLAIN']);
  assert.deepEqual(c.body.config.env_refs, { FROM_SECRET: { secret: 'AG_RT' }, FROM_VAR: { var: 'AG_TOKEN' } });
  assert.equal((await aos.api('POST', '/agents/keyed/start')).status, 200);
  const a = await until('running', async () => {
    const x = await agent('keyed');
    return x.status === 'running' ? x : null;
  });
  // the process has the values
  const environ = readFileSync(`/proc/${a.live_replicas[0].pid}/environ`, 'latin1').split('\0');
  assert.ok(environ.includes(`FROM_SECRET=${V1}`), 'the runtime secret');
  assert.ok(environ.includes(`FROM_VAR=${V2}`), 'the project variable\'s secret');
  assert.ok(environ.includes(`PLAIN=${PLAIN}`), 'the sealed value');
  const r = await aos.api('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: { message: 'x' } });
  assert.equal(r.status, 200, r.text);
  // a new version (a PATCH that changes the prompt) keeps the references
  assert.equal((await aos.api('PATCH', '/agents/keyed', { config: { prompt: 'v2' } })).status, 200);

  // nothing shows a value: answers, versions and diffs, runs, audit, events, logs
  const shown = [];
  for (const path of ['/agents', '/agents/keyed', '/agents/keyed/versions', '/agents/keyed/runs',
    '/audit/logs?resource=agent:keyed&limit=100', '/api/logs?limit=1000', '/agent/events/history?limit=500'])
    shown.push((await aos.api('GET', path)).text);
  shown.push(JSON.stringify(events.events), aos.logs());
  for (const v of [V1, V2, PLAIN])
    assert.ok(!shown.some((t) => t.includes(v)), `${v} shown`);
  assert.equal((await aos.api('POST', '/agents/keyed/stop')).status, 200);

  // a secret that is gone: the start fails saying which, and nothing is stored
  const runs = (await aos.api('GET', '/agents/keyed/runs')).body.runs.length;
  assert.equal((await aos.api('DELETE', '/config/runtime/AG_RT')).status, 200);
  const s1 = await aos.api('POST', '/agents/keyed/start');
  assertErrorShape(assert, s1, 400, 'invalid_argument');
  assert.match(s1.body.error.message, /runtime secret 'AG_RT' not found \(in env\.FROM_SECRET\)/);
  assert.equal((await agent('keyed')).status, 'stopped');
  assert.equal((await aos.api('GET', '/agents/keyed/runs')).body.runs.length, runs);
  // a variable that is gone likewise
  assert.ok((await aos.api('PUT', '/config/runtime/AG_RT', { value: V1 })).status < 300);
  assert.equal((await aos.api('DELETE', '/projects/agp/vars/AG_TOKEN')).status, 200);
  const s2 = await aos.api('POST', '/agents/keyed/start');
  assertErrorShape(assert, s2, 400, 'invalid_argument');
  assert.match(s2.body.error.message, /project 'agp' has no variable 'AG_TOKEN'/);
  assert.equal((await agent('keyed')).status, 'stopped');

  // references are checked when written
  for (const bad of [{ X: { secret: '' } }, { X: { secret: 'a b' } }, { X: { secret: 'ok', var: 'ok' } }, { X: { name: 'ok' } }, { X: { var: 'V' } }])
    assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'badref', config: { env: bad } }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'badref', config: { project_id: 'a b' } }), 400, 'invalid_argument');
  assert.equal((await aos.api('DELETE', '/agents/keyed')).status, 200);
  events.close();
});

test('agent.status events; a rotated runtime secret rolls the replicas with no failed call, a deleted one keeps them; unregister-mcp', async () => {
  const R = ['rot-secret-one-91c2aa', 'rot-secret-two-4be7d0', 'rot-secret-three-77f1e3'];
  assert.ok((await aos.api('PUT', '/config/runtime/AG_ROT', { value: R[0] })).status < 300);
  const events = sseClient(aos, '/agent/events');
  await events.opened;
  const c = await aos.api('POST', '/agents', { name: 'rotor', replicas: 2, config: { sop: SOP, tools: ['aos__echo'], env: { ROT: { secret: 'AG_ROT' } } } });
  assert.equal(c.status, 201, c.text);
  const id = c.body.id;
  assert.equal((await aos.api('POST', '/agents/rotor/register-mcp')).status, 200);
  assert.equal((await aos.api('POST', '/agents/rotor/start')).status, 200);
  const running = await until('running', async () => {
    const a = await agent('rotor');
    return a.status === 'running' && a.live_replicas.length === 2 ? a : null;
  });
  // every status change is a value event: one card per agent, each change a version of it
  const statuses = () => events.events.filter((e) => e.type === 'agent.status' && e.payload.agent_id === id);
  await events.waitFor(() => statuses().some((e) => e.payload.status === 'running'), 10000, 'agent.status running');
  const [st1, st2] = statuses();
  assert.equal(st1.topic, 'agents');
  assert.equal(st1.card_id, `agent:${id}`);
  assert.deepEqual([st1.payload.previous, st1.payload.status], ['stopped', 'starting']);
  assert.deepEqual([st2.payload.previous, st2.payload.status], ['starting', 'running']);
  assert.equal(st2.payload.agent, 'rotor');
  assert.equal(st2.payload.ready, 2);
  assert.equal(st2.payload.replicas, 2);
  assert.equal(st2.severity, 'info');
  assert.ok(st2.card_version > st1.card_version);
  const hist = (await aos.api('GET', '/agent/events/history?limit=200')).body;
  const items = hist.events;
  assert.ok(items.some((e) => e.type === 'agent.status' && e.card_id === `agent:${id}`), 'kept in the history');

  const environOf = (pid) => readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
  for (const r of running.live_replicas) assert.ok(environOf(r.pid).includes(`ROT=${R[0]}`));

  // rotated while a client calls in a loop: replaced one at a time, no call fails
  const mcp = await connect('/mcp');
  let stop = false, calls = 0;
  const failures = [];
  const loop = (async () => {
    while (!stop) {
      try {
        const x = await mcp.callTool({ name: 'rotor__run_task', arguments: { input: 'rot' } });
        if (x.isError) failures.push(x.content[0].text);
      } catch (e) { failures.push(String(e)); }
      calls++;
    }
  })();
  await sleep(200);
  const old = new Set(running.live_replicas.map((r) => r.pid));
  assert.ok((await aos.api('PUT', '/config/runtime/AG_ROT', { value: R[1] })).status < 300);
  const rolled = await until('replicas with the new value', async () => {
    const a = await agent('rotor');
    return a.live_replicas.length === 2 && a.live_replicas.every((r) => r.state === 'ready' && !old.has(r.pid)) ? a : null;
  }, 30000);
  for (const r of rolled.live_replicas) assert.ok(environOf(r.pid).includes(`ROT=${R[1]}`), 'the new value');
  assert.equal(rolled.version, 1, 'the same version');
  await sleep(200);

  // deleted: no replica can open it, the running ones keep serving, the errors say so
  const kept = new Set(rolled.live_replicas.map((r) => r.pid));
  assert.equal((await aos.api('DELETE', '/config/runtime/AG_ROT')).status, 200);
  const noted = await until('the deletion in its errors', async () => {
    const a = await agent('rotor');
    return a.errors.some((e) => /runtime secret 'AG_ROT' was deleted/.test(e.message)) &&
      a.errors.some((e) => /unable to start: .*AG_ROT/.test(e.message)) ? a : null;
  });
  assert.deepEqual(new Set(noted.live_replicas.filter((r) => r.state === 'ready').map((r) => r.pid)), kept);
  assert.equal(noted.status, 'running');
  await sleep(200);
  // set again: they roll to it
  assert.ok((await aos.api('PUT', '/config/runtime/AG_ROT', { value: R[2] })).status < 300);
  const again = await until('replicas with the value set again', async () => {
    const a = await agent('rotor');
    return a.live_replicas.length === 2 && a.live_replicas.every((r) => r.state === 'ready' && !kept.has(r.pid)) ? a : null;
  }, 30000);
  for (const r of again.live_replicas) assert.ok(environOf(r.pid).includes(`ROT=${R[2]}`));
  await sleep(200);
  stop = true;
  await loop;
  assert.deepEqual(failures, [], `${failures.length} of ${calls} calls failed`);
  assert.ok(calls > 10, `only ${calls} calls`);

  // unregister: out of the gateway, still running; registered again later
  const un = await aos.api('POST', '/agents/rotor/unregister-mcp');
  assert.equal(un.status, 200, un.text);
  assert.equal(un.body.route_prefix, null);
  assert.equal(un.body.registered, false);
  assert.equal(un.body.status, 'running');
  assert.ok(!(await mcp.listTools()).tools.some((t) => t.name.startsWith('rotor__')));
  assertErrorShape(assert, await aos.api('GET', '/mcp/registry/rotor'), 404, 'not_found');
  assert.notEqual((await aos.api('POST', '/mcp/call', { server: 'rotor', tool: 'run_task', args: { input: 'x' } })).status, 200);
  const un2 = await aos.api('POST', '/agents/rotor/unregister-mcp');
  assert.equal(un2.status, 200, 'again: nothing changes');
  const audit = (await aos.api('GET', '/audit/logs?resource=agent:rotor&limit=100')).body;
  assert.equal(audit.items.filter((x) => x.action === 'agent.unregister').length, 1, JSON.stringify(audit).slice(0, 500));
  assertErrorShape(assert, await aos.api('POST', '/agents/no-such/unregister-mcp'), 404, 'not_found');
  assert.equal((await aos.api('POST', '/agents/rotor/register-mcp')).status, 200);
  const back = await mcp.callTool({ name: 'rotor__run_task', arguments: { input: 'back' } });
  assert.equal(back.content[0].text, 'Echo: back');
  await mcp.close();

  assert.equal((await aos.api('POST', '/agents/rotor/stop')).status, 200);
  await events.waitFor(() => statuses().some((e) => e.payload.status === 'stopped'), 10000, 'agent.status stopped');
  // no value of the secret anywhere
  const shown = [JSON.stringify(events.events), aos.logs()];
  for (const path of ['/agents/rotor', '/agents/rotor/versions', '/agents/rotor/runs', '/api/logs?limit=1000'])
    shown.push((await aos.api('GET', path)).text);
  for (const v of R) assert.ok(!shown.some((t) => t.includes(v)), `${v} shown`);
  assert.equal((await aos.api('DELETE', '/agents/rotor')).status, 200);
  assert.equal((await aos.api('DELETE', '/config/runtime/AG_ROT')).status, 200);
  events.close();
});

test('an agent that ran when aosd stopped runs again after a restart, still registered', async () => {
  const c = await aos.api('POST', '/agents', { name: 'keeper', replicas: 1, config: { sop: SOP, tools: ['aos__echo'] } });
  assert.equal(c.status, 201, c.text);
  assert.equal((await aos.api('POST', '/agents/keeper/register-mcp')).status, 200);
  assert.equal((await aos.api('POST', '/agents/keeper/start')).status, 200);
  const first = await until('running', async () => {
    const a = await agent('keeper');
    return a.status === 'running' ? a : null;
  });
  const pid = first.live_replicas[0].pid;
  const dataDir = aos.dataDir;
  const { code } = await aos.stop();
  assert.equal(code, 0, aos.logs().slice(-3000));
  assert.doesNotMatch(aos.logs(), /AddressSanitizer|LeakSanitizer|runtime error/);
  assert.throws(() => process.kill(pid, 0), 'its replica ended with aosd');
  aos = await startAosd({ dataDir });
  const again = await until('running again', async () => {
    const a = await agent('keeper');
    return a.status === 'running' ? a : null;
  });
  assert.notEqual(again.run_id, first.run_id);
  const runs = await aos.api('GET', '/agents/keeper/runs');
  assert.deepEqual(runs.body.runs.map((r) => r.status), ['running', 'aborted']);
  const r = await aos.api('POST', '/mcp/call', { server: 'keeper', tool: 'run_task', args: { input: 'back' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.content[0].text, 'Echo: back');
  // the previous start's token was revoked at the stop, this one is live
  const toks = (await aos.api('GET', '/auth/tokens')).body.tokens.filter((t) => t.name === 'agent:keeper');
  assert.equal(toks.length, 2);
  assert.equal(toks.filter((t) => !t.revoked).length, 1);
  // the names of minted tokens are aosd's
  assertErrorShape(assert, await aos.api('POST', '/auth/tokens', { name: 'agent:keeper' }), 400, 'invalid_argument');

  // aosd killed: its replica ends with its stdin, and the next start revokes
  // the token it could not
  const pid2 = again.live_replicas[0].pid;
  const tokId = toks.find((t) => !t.revoked).id;
  await aos.stop('SIGKILL');
  await until('the orphan replica gone', async () => { try { process.kill(pid2, 0); return null; } catch { return 1; } }, 10000);
  aos = await startAosd({ dataDir });
  await until('the dead start\'s token revoked', async () => {
    const t = (await aos.api('GET', '/auth/tokens')).body.tokens.find((x) => x.id === tokId);
    return t.revoked ? 1 : null;
  });
  const third = await until('running a third time', async () => {
    const a = await agent('keeper');
    return a.status === 'running' ? a : null;
  });
  assert.equal((await aos.api('POST', '/mcp/call', { server: 'keeper', tool: 'run_task', args: { input: '3' } })).status, 200);
  assert.equal((await aos.api('POST', '/agents/keeper/stop')).status, 200);
  assert.ok(third.run_id);
});
