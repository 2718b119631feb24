// agents-remote.test.mjs - remote agents (issue 15): an MCP server over
// Streamable HTTP (the reference server-everything) as a remote agent.
// aosd health-checks it (initialize, then pings; unknown / healthy /
// unhealthy in GET /agents/:id, the transitions as value events),
// register-mcp makes it a server of the gateway (its tools as
// "<name>__<tool>" through the gateway's isolation: metrics, breaker,
// limits), start and stop turn its routing on and off, and its calls are
// refused with a clear message while it is stopped or unhealthy. The server
// is killed mid-test: unhealthy, then healthy again once it is back.
// A server that needs a bearer token (fixtures/trace-server.mjs with
// REQUIRE_BEARER): unhealthy without it; with config.auth_token and
// config.headers naming runtime secrets, healthy and callable, the values
// never shown; a rotated token reaches its route, a deleted one holds it;
// unregister-mcp takes it out of the gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startAosd, assertErrorShape, sseClient, sleep, TOKEN, TOOLS, ROOT } from './lib.mjs';

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

let aos, remote, port;

async function startRemote() {
  remote = spawn(join(TOOLS, 'mcp-server.sh'), ['everything', 'http'], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'ignore'], detached: true,
  });
  for (let i = 0; i < 300; i++) {
    try { await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'GET' }); return; } catch { await sleep(100); }
  }
  throw new Error('server-everything did not listen');
}

async function killRemote() {
  const p = remote;
  remote = null;
  const gone = new Promise((r) => p.once('exit', r));
  process.kill(-p.pid, 'SIGKILL');
  await gone;
}

before(async () => {
  port = await freePort();
  await startRemote();
  aos = await startAosd();
});
after(async () => {
  if (remote) try { process.kill(-remote.pid, 'SIGKILL'); } catch { /* gone */ }
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

const call = (message) => aos.api('POST', '/mcp/call', { server: 'far', tool: 'echo', args: { message } });

test('a remote agent: health checks, register-mcp, routing on start, refused while stopped or unhealthy, back when healthy', async () => {
  const url = `http://127.0.0.1:${port}/mcp`;
  const c = await aos.api('POST', '/agents', { name: 'far', type: 'remote', config: { url, health_interval_ms: 200 } });
  assert.equal(c.status, 201, c.text);
  assert.equal(c.body.status, 'stopped');
  assert.equal(c.body.health.state, 'unknown');
  assert.equal(c.body.config.url, url);

  // registered while stopped: a server of the gateway whose calls are refused
  const reg = await aos.api('POST', '/agents/far/register-mcp');
  assert.equal(reg.status, 200, reg.text);
  assert.equal(reg.body.route_prefix, '/agents/far/mcp');
  const entry = (await aos.api('GET', '/mcp/registry/far')).body;
  assert.equal(entry.agent, true);
  assert.equal(entry.transport, 'streamable-http');
  const refused = await call('x');
  assertErrorShape(assert, refused, 503, 'unavailable');
  assert.match(refused.body.error.message, /agent 'far' is stopped/);
  // the registry does not change an agent's server
  assertErrorShape(assert, await aos.api('POST', '/mcp/registry', { name: 'far', transport: 'streamable-http', url }), 409, 'conflict');
  assertErrorShape(assert, await aos.api('PATCH', '/mcp/registry/far', { enabled: false }), 409, 'conflict');
  assertErrorShape(assert, await aos.api('DELETE', '/mcp/registry/far'), 409, 'conflict');

  const events = sseClient(aos, '/agent/events');
  await events.opened;

  // start: checked (initialize, pings) and routed
  const s = await aos.api('POST', '/agents/far/start');
  assert.equal(s.status, 200, s.text);
  const up = await until('healthy', async () => {
    const a = await agent('far');
    return a.health.state === 'healthy' && a.health.latency_ms !== undefined ? a : null;
  });
  assert.equal(up.status, 'running');
  assert.equal(up.health.interval_ms, 200);
  assert.ok(up.health.checks >= 2, JSON.stringify(up.health));
  assert.deepEqual(up.live_replicas, []);
  assert.match(up.run_id, /^[0-9a-f]{32}$/);

  // its tools through the gateway: /mcp/call, the aggregated /mcp, its own route
  const r1 = await call('over the gateway');
  assert.equal(r1.status, 200, r1.text);
  assert.equal(r1.body.content[0].text, 'Echo: over the gateway');
  const mcp = new Client({ name: 'e2e', version: '1' });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(`${aos.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  const tools = (await mcp.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes('far__echo') && tools.includes('far__get-sum'), JSON.stringify(tools));
  const r2 = await mcp.callTool({ name: 'far__get-sum', arguments: { a: 2, b: 3 } });
  assert.match(r2.content[0].text, /5/);
  const own = new Client({ name: 'e2e', version: '1' });
  await own.connect(new StreamableHTTPClientTransport(new URL(`${aos.url}/agents/far/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  assert.equal((await own.callTool({ name: 'echo', arguments: { message: 'own' } })).content[0].text, 'Echo: own');
  // the gateway's isolation counted them
  const m = await aos.api('GET', '/metrics');
  assert.match(m.text, /aos_mcp_calls_total\{server="far",tool="echo",outcome="ok"\} [2-9]/);
  assert.match(m.text, /^aos_agent_health\{agent="far"\} 0$/m);
  assert.doesNotMatch(m.text, /aos_agent_replicas_desired\{agent="far"\}/);

  // the server dies: unhealthy, calls refused at once, the events say so
  await killRemote();
  const down = await until('unhealthy', async () => {
    const a = await agent('far');
    return a.health.state === 'unhealthy' ? a : null;
  });
  assert.equal(down.status, 'crashed');
  assert.ok(down.health.last_error, JSON.stringify(down.health));
  assert.match(down.errors.at(-1).message, /^unhealthy: /);
  const t0 = Date.now();
  const r3 = await call('while down');
  assertErrorShape(assert, r3, 503, 'unavailable');
  assert.match(r3.body.error.message, /agent 'far' is unhealthy: /);
  assert.ok(Date.now() - t0 < 2000, 'refused at once, not after a timeout');
  await assert.rejects(mcp.callTool({ name: 'far__echo', arguments: { message: 'x' } }), /unhealthy/);
  const m2 = (await aos.api('GET', '/metrics')).text;
  assert.match(m2, /^aos_agent_health\{agent="far"\} 2$/m);
  assert.match(m2, /^aos_agent_restarts_total\{agent="far"\} [1-9]\d*$/m);
  assert.match(m2, /^aos_mcp_rejected_total\{server="far",reason="agent"\} [1-9]/m);
  await events.waitFor((x) => x.events.some((e) => e.type === 'anomaly.detected' && e.payload.agent === 'far' && e.payload.kind === 'agent.unhealthy'), 10000, 'anomaly.detected');
  await events.waitFor((x) => x.events.some((e) => e.type === 'recovery.start' && e.payload.agent === 'far'), 10000, 'recovery.start');

  // back: healthy again (the checks back off while it is down), calls flow
  await startRemote();
  const back = await until('healthy again', async () => {
    const a = await agent('far');
    return a.health.state === 'healthy' ? a : null;
  }, 30000);
  assert.equal(back.status, 'running');
  await events.waitFor((x) => x.events.some((e) => e.type === 'recovery.done' && e.payload.agent === 'far' && e.payload.downtime_ms > 0), 10000, 'recovery.done');
  const r4 = await call('back');
  assert.equal(r4.status, 200, r4.text);
  assert.equal(r4.body.content[0].text, 'Echo: back');
  await mcp.close();
  await own.close();

  // stop: no routing, no checks
  const st = await aos.api('POST', '/agents/far/stop');
  assert.equal(st.status, 200, st.text);
  const stopped = await agent('far');
  assert.equal(stopped.status, 'stopped');
  assert.equal(stopped.health.state, 'unknown');
  const r5 = await call('stopped');
  assertErrorShape(assert, r5, 503, 'unavailable');
  assert.match(r5.body.error.message, /agent 'far' is stopped/);
  const runs = (await aos.api('GET', '/agents/far/runs')).body.runs;
  assert.equal(runs[0].status, 'stopped');

  // deleted: its server goes with it
  assert.equal((await aos.api('DELETE', '/agents/far')).status, 200);
  assertErrorShape(assert, await aos.api('GET', '/mcp/registry/far'), 404, 'not_found');
  events.close();
});

test('a remote agent nothing answers is unhealthy from the start; health_interval_ms is for remote agents', async () => {
  const dead = await freePort();
  const c = await aos.api('POST', '/agents', { name: 'nowhere', type: 'remote', config: { url: `http://127.0.0.1:${dead}/mcp`, health_interval_ms: 100 } });
  assert.equal(c.status, 201, c.text);
  assert.equal((await aos.api('POST', '/agents/nowhere/start')).status, 200);
  const a = await until('unhealthy', async () => {
    const x = await agent('nowhere');
    return x.health.state === 'unhealthy' ? x : null;
  });
  assert.equal(a.status, 'crashed');
  assert.match(a.health.last_error, /connect|refused|reach/i);
  assert.equal((await aos.api('POST', '/agents/nowhere/stop')).status, 200);
  assert.equal((await aos.api('DELETE', '/agents/nowhere')).status, 200);
  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'local1', config: { health_interval_ms: 500 } }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'far2', type: 'remote', config: { url: 'http://127.0.0.1:9/mcp', health_interval_ms: 10 } }), 400, 'invalid_argument');
});

test('a remote agent with credentials from runtime secrets: refused without them, healthy and callable with them, rotated, deleted, unregistered', async () => {
  const T = ['remote-bearer-one-5c1d9e', 'remote-bearer-two-a83f20'];
  const KEY = 'remote-header-key-0b77e1';
  const srv = spawn(process.execPath, [join(ROOT, 'tests/e2e/fixtures/trace-server.mjs'), '--http'], {
    env: { ...process.env, PORT: '0', REQUIRE_BEARER: T.join(',') }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const sport = await new Promise((res, rej) => {
      srv.stdout.once('data', (d) => res(Number(String(d).trim())));
      srv.once('exit', (code) => rej(new Error(`trace-server exited ${code}`)));
    });
    const url = `http://127.0.0.1:${sport}/mcp`;
    for (const [name, value] of [['RA_TOKEN', T[0]], ['RA_KEY', KEY]])
      assert.ok((await aos.api('PUT', `/config/runtime/${name}`, { value })).status < 300);

    // without credentials: unhealthy (401), its calls refused
    assert.equal((await aos.api('POST', '/agents', { name: 'bare', type: 'remote', config: { url, health_interval_ms: 200 } })).status, 201);
    assert.equal((await aos.api('POST', '/agents/bare/register-mcp')).status, 200);
    assert.equal((await aos.api('POST', '/agents/bare/start')).status, 200);
    const bare = await until('unhealthy', async () => {
      const a = await agent('bare');
      return a.health.state === 'unhealthy' ? a : null;
    });
    assert.equal(bare.status, 'crashed');
    assert.match(bare.health.last_error, /401|unauthori/i);
    assertErrorShape(assert, await aos.api('POST', '/mcp/call', { server: 'bare', tool: 'context', args: {} }), 503, 'unavailable');

    // with them: healthy, and each call carries them
    const config = { url, health_interval_ms: 200, auth_token: { secret: 'RA_TOKEN' }, headers: { 'X-Api-Key': { secret: 'RA_KEY' }, 'X-Tenant': 'acme' } };
    const c = await aos.api('POST', '/agents', { name: 'locked', type: 'remote', config });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.config.has_auth_token, true);
    assert.deepEqual(c.body.config.auth_token_ref, { secret: 'RA_TOKEN' });
    assert.deepEqual(c.body.config.header_names.sort(), ['X-Api-Key', 'X-Tenant']);
    assert.deepEqual(c.body.config.header_refs, { 'X-Api-Key': { secret: 'RA_KEY' } });
    assert.equal(c.body.config.headers, undefined);
    assert.equal((await aos.api('POST', '/agents/locked/register-mcp')).status, 200);
    assert.equal((await aos.api('POST', '/agents/locked/start')).status, 200);
    await until('healthy', async () => ((await agent('locked')).health.state === 'healthy' ? 1 : null));
    const seen = async () => {
      const r = await aos.api('POST', '/mcp/call', { server: 'locked', tool: 'context', args: {} });
      assert.equal(r.status, 200, r.text);
      return JSON.parse(r.body.content[0].text).headers;
    };
    const h1 = await seen();
    assert.equal(h1.authorization, `Bearer ${T[0]}`);
    assert.equal(h1['x-api-key'], KEY);
    assert.equal(h1['x-tenant'], 'acme');
    const entry = (await aos.api('GET', '/mcp/registry/locked')).body;
    assert.equal(entry.has_auth_token, true);
    assert.deepEqual(entry.header_names.sort(), ['X-Api-Key', 'X-Tenant']);

    // rotated: the route and the checks use the new token
    assert.ok((await aos.api('PUT', '/config/runtime/RA_TOKEN', { value: T[1] })).status < 300);
    const h2 = await until('the new token on its calls', async () => {
      const h = await seen();
      return h.authorization === `Bearer ${T[1]}` ? h : null;
    });
    assert.equal(h2['x-api-key'], KEY);
    assert.equal((await agent('locked')).health.state, 'healthy');

    // deleted: unhealthy, calls held, the error names the secret (never a value)
    assert.equal((await aos.api('DELETE', '/config/runtime/RA_TOKEN')).status, 200);
    const held = await until('unhealthy without its token', async () => {
      const a = await agent('locked');
      return a.health.state === 'unhealthy' ? a : null;
    });
    assert.match(held.health.last_error, /RA_TOKEN/);
    const r = await aos.api('POST', '/mcp/call', { server: 'locked', tool: 'context', args: {} });
    assertErrorShape(assert, r, 503, 'unavailable');
    assert.match(r.body.error.message, /RA_TOKEN/);
    // and a start checks it first, like env's secrets
    assert.equal((await aos.api('POST', '/agents/locked/stop')).status, 200);
    const s2 = await aos.api('POST', '/agents/locked/start');
    assertErrorShape(assert, s2, 400, 'invalid_argument');
    assert.match(s2.body.error.message, /runtime secret 'RA_TOKEN' not found/);
    assert.equal((await agent('locked')).status, 'stopped');

    // credentials are for remote agents, and well-formed
    for (const bad of [{ auth_token: { var: 'X' } }, { auth_token: '' }, { headers: { Authorization: 'x' } }, { headers: { 'Bad Name': 'x' } }, { headers: { 'X-A': 'a\r\nb' } }, { headers: [] }])
      assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'badcred', type: 'remote', config: { url, ...bad } }), 400, 'invalid_argument');
    assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'badcred', config: { auth_token: { secret: 'RA_KEY' } } }), 400, 'invalid_argument');

    // unregister: out of the gateway, the agent stays
    const un = await aos.api('POST', '/agents/bare/unregister-mcp');
    assert.equal(un.status, 200, un.text);
    assert.equal(un.body.route_prefix, null);
    assertErrorShape(assert, await aos.api('GET', '/mcp/registry/bare'), 404, 'not_found');
    assert.equal((await agent('bare')).status, 'crashed', 'still started, still checked');

    // no value anywhere
    const shown = [aos.logs()];
    for (const path of ['/agents/locked', '/agents/locked/versions', '/mcp/registry/locked', '/mcp/registry', '/api/logs?limit=1000', '/agent/events/history?limit=500'])
      shown.push((await aos.api('GET', path)).text);
    for (const v of [...T, KEY]) assert.ok(!shown.some((t) => t.includes(v)), `${v} shown`);
    for (const n of ['bare', 'locked']) {
      assert.equal((await aos.api('POST', `/agents/${n}/stop`)).status, 200);
      assert.equal((await aos.api('DELETE', `/agents/${n}`)).status, 200);
    }
    assert.equal((await aos.api('DELETE', '/config/runtime/RA_KEY')).status, 200);
  } finally {
    srv.kill('SIGKILL');
  }
});
