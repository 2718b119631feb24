// rbac.test.mjs - authorization end to end (issue 16, first slice): the
// route x role table of docs/rbac-routes.json checked against the server's
// own route list and called, route by route and MCP method by method, as
// Owner, Admin, Operator, Viewer, a token with narrow grants and no token;
// API tokens (create, list, expire, revoke, bad input, no escalation);
// grants added and removed; revocation closing open SSE streams and MCP
// sessions; the orchestrator checking a task's tools against its submitter;
// the anonymous MCP client as a Viewer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAosd, backendEntry, waitReady, sleep, sseClient, ROOT, TOKEN } from './lib.mjs';

const TABLE = JSON.parse(readFileSync(join(ROOT, 'docs/rbac-routes.json'), 'utf8'));
const FORBIDDEN_RPC = -32003;
let aos;
const tokens = {}; // principal -> token (none: null)

async function mint(body, as = TOKEN) {
  const r = await aos.api('POST', '/auth/tokens', body, as);
  assert.equal(r.status, 201, r.text);
  return r.body;
}

before(async () => {
  aos = await startAosd();
  const r = await aos.api('POST', '/mcp/registry', backendEntry('ev'));
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'ev');
  for (const [name, p] of Object.entries(TABLE.principals)) {
    if (p.bootstrap) tokens[name] = TOKEN;
    else if ('token' in p) tokens[name] = p.token;
    else tokens[name] = (await mint({ name, role: p.role, grants: p.grants })).token;
  }
});
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

// One request as token: the status, and for a stream only its head.
async function call(method, path, body, token, headers = {}, { full = false, base = aos } = {}) {
  const ac = new AbortController();
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(base.url + path, {
    method, headers: h, signal: ac.signal,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const ct = r.headers.get('content-type') || '';
  if (ct.includes('text/event-stream') && !full) {
    ac.abort();
    return { status: r.status, text: '' };
  }
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, body: json, text };
}

// ---- MCP over plain HTTP: initialize, then requests in the session ----
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'rbac', version: '1' } } };
const MCP_HEADERS = { Accept: 'application/json, text/event-stream' };

function rpcBody(r) {
  if (r.body !== undefined) return r.body;
  const data = r.text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
  return data.length ? JSON.parse(data[data.length - 1]) : undefined;
}

async function mcpOpen(endpoint, token) {
  const r = await call('POST', endpoint, INIT, token, MCP_HEADERS, { full: true });
  if (r.status !== 200) return { status: r.status };
  const sid = r.headers.get('mcp-session-id');
  assert.ok(sid, 'a session id');
  await call('POST', endpoint, { jsonrpc: '2.0', method: 'notifications/initialized' }, token, { ...MCP_HEADERS, 'Mcp-Session-Id': sid }, { full: true });
  return { status: 200, sid };
}

let rpcId = 10;
async function mcpCall(endpoint, sid, token, method, params) {
  const r = await call('POST', endpoint, { jsonrpc: '2.0', id: ++rpcId, method, params }, token, { ...MCP_HEADERS, 'Mcp-Session-Id': sid }, { full: true });
  return { status: r.status, msg: r.status === 200 ? rpcBody(r) : undefined, text: r.text };
}

test('the table lists every route of the server, with its permission and resource', async () => {
  const r = await aos.api('GET', '/rbac/routes');
  assert.equal(r.status, 200, r.text);
  const key = (x) => `${x.method} ${x.path}`;
  const server = new Map(r.body.routes.map((x) => [key(x), x]));
  const table = new Map(TABLE.routes.map((x) => [key(x), x]));
  for (const k of server.keys()) assert.ok(table.has(k), `route ${k} is missing from docs/rbac-routes.json`);
  for (const k of table.keys()) assert.ok(server.has(k), `docs/rbac-routes.json lists ${k}, which the server does not have`);
  for (const [k, s] of server) {
    assert.equal(table.get(k).permission, s.permission, `${k}: permission`);
    assert.equal(table.get(k).resource, s.resource, `${k}: resource`);
  }
  assert.equal(table.size, TABLE.routes.length, 'no route listed twice');
});

test('every route as every principal: allowed or denied as the table says', async () => {
  const wrong = [];
  for (const rt of TABLE.routes) {
    for (const [who, want] of Object.entries(rt.expect)) {
      const token = tokens[who];
      const rq = rt.request;
      // PAGE: a browser navigating (a GET that accepts text/html first)
      const method = rt.method === '*' ? 'POST' : rt.method === 'PAGE' ? 'GET' : rt.method;
      const accept = rq.stream ? { Accept: 'text/event-stream' } : rt.method === 'PAGE' ? { Accept: 'text/html' } : {};
      const r = rq.mcp
        ? await call('POST', rq.path, INIT, token, MCP_HEADERS)
        : await call(method, rq.path, rq.body, token, accept);
      const denied = r.status === 401 || r.status === 403;
      if (want === 'deny') {
        const status = token ? 403 : 401;
        if (r.status !== status) wrong.push(`${rt.method} ${rq.path} as ${who}: ${r.status}, want ${status} ${r.text.slice(0, 120)}`);
        else if (!r.body?.error?.code) wrong.push(`${rt.method} ${rq.path} as ${who}: no error body`);
      } else if (denied || r.status >= 500) {
        wrong.push(`${rt.method} ${rq.path} as ${who}: ${r.status}, want allowed ${r.text.slice(0, 160)}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('every MCP method in the table as every principal', async () => {
  const wrong = [];
  const sessions = {};
  for (const m of TABLE.mcp) {
    for (const [who, want] of Object.entries(m.expect)) {
      const token = tokens[who];
      const k = `${who} ${m.endpoint}`;
      sessions[k] ??= await mcpOpen(m.endpoint, token);
      const s = sessions[k];
      const what = `${m.endpoint} ${m.method} ${JSON.stringify(m.params).slice(0, 60)} as ${who}`;
      if (s.status !== 200) {
        if (want === 'allow' || s.status !== 401) wrong.push(`${what}: initialize ${s.status}`);
        continue;
      }
      const r = await mcpCall(m.endpoint, s.sid, token, m.method, m.params);
      const code = r.msg?.error?.code;
      if (r.status !== 200) wrong.push(`${what}: HTTP ${r.status} ${r.text.slice(0, 120)}`);
      else if (want === 'deny' && code !== FORBIDDEN_RPC) wrong.push(`${what}: ${JSON.stringify(r.msg).slice(0, 160)}, want forbidden`);
      else if (want === 'allow' && code === FORBIDDEN_RPC) wrong.push(`${what}: forbidden, want allowed`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('every built-in tool is in the table, and each is called as every principal both ways', async () => {
  const listed = async (who) => {
    const s = await mcpOpen('/mcp', tokens[who]);
    const r = await mcpCall('/mcp', s.sid, tokens[who], 'tools/list', {});
    return r.msg.result.tools.map((t) => t.name);
  };
  // the built-in tools are those that are not the test's upstream's
  const builtin = (await listed('owner')).filter((n) => !n.startsWith('ev__')).sort();
  const table = TABLE.tools.list.map((t) => t.name).sort();
  assert.deepEqual(builtin, table, 'docs/rbac-routes.json "tools" lists every built-in tool, and only those');
  const wrong = [];
  for (const [who, token] of Object.entries(tokens)) {
    const s = token === null ? { status: 401 } : await mcpOpen('/mcp', token);
    const visible = s.status === 200 ? await listed(who) : [];
    for (const t of TABLE.tools.list) {
      const want = t.expect[who];
      if (!want) { wrong.push(`${t.name}: no expectation for ${who}`); continue; }
      const what = `${t.name} as ${who}`;
      if ((want === 'allow') !== visible.includes(t.name)) wrong.push(`${what}: tools/list ${visible.includes(t.name) ? 'shows' : 'hides'} it, want ${want}`);
      if (s.status === 200) {
        const r = await mcpCall('/mcp', s.sid, token, 'tools/call', { name: t.name, arguments: {} });
        const code = r.msg?.error?.code;
        if (r.status !== 200) wrong.push(`${what}: HTTP ${r.status} ${r.text.slice(0, 120)}`);
        else if (want === 'deny' && code !== FORBIDDEN_RPC) wrong.push(`${what} on /mcp: ${JSON.stringify(r.msg).slice(0, 160)}, want forbidden`);
        else if (want === 'allow' && code === FORBIDDEN_RPC) wrong.push(`${what} on /mcp: forbidden, want allowed`);
      } else if (want === 'allow') {
        wrong.push(`${what}: initialize ${s.status}`);
      }
      const sep = t.name.indexOf('__');
      const rest = await call('POST', '/mcp/call', { server: t.name.slice(0, sep), tool: t.name.slice(sep + 2), args: {} }, token);
      const denied = rest.status === 401 || rest.status === 403;
      if (want === 'deny' && rest.status !== (token ? 403 : 401)) wrong.push(`${what} on /mcp/call: ${rest.status}, want ${token ? 403 : 401} ${rest.text.slice(0, 120)}`);
      else if (want === 'allow' && (denied || rest.status >= 500)) wrong.push(`${what} on /mcp/call: ${rest.status} ${rest.text.slice(0, 120)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('tools/list shows only the tools a token may call', async () => {
  const names = async (endpoint, who) => {
    const s = await mcpOpen(endpoint, tokens[who]);
    const r = await mcpCall(endpoint, s.sid, tokens[who], 'tools/list', {});
    return r.msg.result.tools.map((t) => t.name);
  };
  const all = await names('/mcp', 'owner');
  assert.ok(all.includes('ev__echo') && all.includes('aos__echo'), all.join(','));
  const narrow = await names('/mcp', 'narrow');
  assert.ok(narrow.length > 0 && narrow.includes('ev__echo'), narrow.join(','));
  assert.deepEqual(narrow, all.filter((n) => n.startsWith('ev__')));
  assert.deepEqual(await names('/mcp', 'viewer'), [], 'a Viewer may call no tool');
  assert.deepEqual(await names('/mcp/servers/ev', 'narrow'), narrow.map((n) => n.slice(4)));
  // the REST call is checked per tool as well
  const r = await call('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: { message: 'm' } }, tokens.narrow);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /aos__echo/);
});

test('tokens: listed with prefix, owner, grants, expiry and last use; the secret only once', async () => {
  const t = await mint({ name: 'lister', role: 'viewer', grants: [{ role: 'operator', resource: 'tool:ev__*' }], expires_in_s: 3600 });
  assert.match(t.token, /^aos_/);
  assert.equal(t.prefix, t.token.slice(0, 8));
  assert.equal((await call('GET', '/auth/me', undefined, t.token)).status, 200);
  const me = (await call('GET', '/auth/me', undefined, t.token)).body;
  assert.equal(me.id, t.id);
  assert.equal(me.role, 'viewer');
  assert.deepEqual(me.grants.map((g) => [g.role, g.resource]), [['operator', 'tool:ev__*']]);
  const list = await aos.api('GET', '/auth/tokens');
  assert.equal(list.status, 200);
  assert.ok(!list.text.includes(t.token), 'the list never holds a token');
  assert.ok(!/token_hash|"hash"/.test(list.text), 'nor a hash');
  const row = list.body.tokens.find((x) => x.id === t.id);
  assert.equal(row.prefix, t.prefix);
  assert.equal(row.owner, 'token:owner');
  assert.equal(row.name, 'lister');
  assert.deepEqual(row.grants.map((g) => [g.role, g.resource]), [['operator', 'tool:ev__*']]);
  assert.ok(row.last_used_at, 'last use recorded');
  const exp = Date.parse(row.expires_at);
  assert.ok(exp > Date.now() + 3500e3 && exp < Date.now() + 3700e3, row.expires_at);
  // audited, without the secret
  const audit = await aos.api('GET', '/audit/logs');
  assert.ok(audit.text.includes('auth.token.create'));
  assert.ok(!audit.text.includes(t.token));
});

test('tokens: bad input gets a clear error and changes nothing', async () => {
  const before = (await aos.api('GET', '/auth/tokens')).body.tokens.length;
  const grantsBefore = (await aos.api('GET', '/rbac/grants')).body.grants.length;
  const bad = [
    [{ name: 'x', role: 'viewer', extra: 1 }, /unknown field 'extra'/],
    [{ name: 5, role: 'viewer' }, /'name'/],
    [{ role: 'viewer' }, /'name'/],
    [{ name: 'x', role: 'superuser' }, /'role'/],
    [{ name: 'x', role: 3 }, /'role'/],
    [{ name: 'x', grants: {} }, /'grants'/],
    [{ name: 'x', grants: [{ role: 'operator' }] }, /resource/],
    [{ name: 'x', grants: [{ role: 'operator', resource: 'tool:a*b' }] }, /not allowed/],
    [{ name: 'x', grants: [{ role: 'operator', resource: 'files__*' }] }, /kind/],
    [{ name: 'x', grants: [{ role: 'operator', resource: 'user:x' }] }, /kind/],
    [{ name: 'x', grants: [{ role: 'boss', resource: 'tool:x' }] }, /role/],
    [{ name: 'x', grants: [{ role: 'viewer', resource: 'tool:x', why: 1 }] }, /unknown field 'why'/],
    [{ name: 'x', expires_in_s: 0 }, /expires_in_s/],
    [{ name: 'x', expires_in_s: '60' }, /expires_in_s/],
    [{ name: 'x', expires_in_s: 1.5 }, /expires_in_s/],
    // a good grant then a bad one: the token is not made at all
    [{ name: 'x', grants: [{ role: 'viewer', resource: 'task:a' }, { role: 'viewer', resource: 'task:' }] }, /name/],
  ];
  for (const [body, re] of bad) {
    const r = await aos.api('POST', '/auth/tokens', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.body.error.code, 'invalid_argument');
    assert.match(r.body.error.message, re, JSON.stringify(body));
  }
  for (const raw of ['not json', '[]', '"x"']) {
    const r = await aos.api('POST', '/auth/tokens', raw);
    assert.equal(r.status, 400, raw);
  }
  const g = await aos.api('POST', '/rbac/grants', { principal: 'token:nope', role: 'viewer', resource: 'task:a' });
  assert.equal(g.status, 400, g.text);
  const g2 = await aos.api('POST', '/rbac/grants', { principal: 'token:owner', role: 'viewer', resource: 'task:a*b' });
  assert.equal(g2.status, 400, g2.text);
  assert.equal((await aos.api('GET', '/auth/tokens')).body.tokens.length, before);
  assert.equal((await aos.api('GET', '/rbac/grants')).body.grants.length, grantsBefore);
});

test('tokens: forged, expired and revoked tokens are refused, each saying so', async () => {
  let r = await call('GET', '/auth/me', undefined, 'aos_' + 'A'.repeat(43));
  assert.equal(r.status, 401);
  assert.match(r.body.error.message, /invalid token/);
  const short = await mint({ name: 'short', role: 'viewer', expires_in_s: 3 });
  assert.equal((await call('GET', '/auth/me', undefined, short.token)).status, 200);
  await sleep(Date.parse(short.expires_at) - Date.now() + 100);
  r = await call('GET', '/auth/me', undefined, short.token);
  assert.equal(r.status, 401);
  assert.match(r.body.error.message, /expired/);
  const gone = await mint({ name: 'gone', role: 'viewer' });
  r = await aos.api('DELETE', `/auth/tokens/${gone.id}`);
  assert.equal(r.status, 200, r.text);
  r = await call('GET', '/auth/me', undefined, gone.token);
  assert.equal(r.status, 401);
  assert.match(r.body.error.message, /revoked/);
  // revoked once: a second time is not found
  assert.equal((await aos.api('DELETE', `/auth/tokens/${gone.id}`)).status, 404);
  const row = (await aos.api('GET', '/auth/tokens')).body.tokens.find((x) => x.id === gone.id);
  assert.equal(row.revoked, true);
});

test('nobody mints or grants more than they hold; only Owner and Admin manage tokens', async () => {
  const admin = tokens.admin;
  let r = await aos.api('POST', '/auth/tokens', { name: 'x', role: 'owner' }, admin);
  assert.equal(r.status, 403, r.text);
  r = await aos.api('POST', '/auth/tokens', { name: 'x', grants: [{ role: 'owner', resource: 'tool:ev__*' }] }, admin);
  assert.equal(r.status, 403, r.text);
  r = await aos.api('POST', '/auth/tokens', { name: 'x', role: 'operator', grants: [{ role: 'admin', resource: 'task:*' }] }, admin);
  assert.equal(r.status, 201, r.text);
  for (const who of ['operator', 'viewer', 'narrow']) {
    r = await aos.api('POST', '/auth/tokens', { name: 'x', role: 'viewer' }, tokens[who]);
    assert.equal(r.status, 403, `${who}: ${r.text}`);
  }
  // an Admin may not revoke the Owner; the last Owner token stays
  r = await aos.api('DELETE', '/auth/tokens/owner', undefined, admin);
  assert.equal(r.status, 403, r.text);
  r = await aos.api('DELETE', '/auth/tokens/owner');
  assert.equal(r.status, 409, r.text);
  assert.equal((await aos.api('GET', '/auth/me')).status, 200);
});

test('grants added and removed take effect at once', async () => {
  const t = await mint({ name: 'growing', role: 'none' });
  const callAos = () => call('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: { message: 'm' } }, t.token);
  assert.equal((await call('GET', '/auth/me', undefined, t.token)).status, 403, 'no rights at all');
  let r = await aos.api('POST', '/rbac/grants', { principal: `token:${t.id}`, role: 'operator', resource: 'tool:aos__echo' });
  assert.equal(r.status, 201, r.text);
  const gid = r.body.id;
  assert.equal((await callAos()).status, 200);
  assert.equal((await call('POST', '/mcp/call', { server: 'ev', tool: 'echo', args: { message: 'm' } }, t.token)).status, 403);
  r = await aos.api('DELETE', `/rbac/grants/${gid}`);
  assert.equal(r.status, 200, r.text);
  assert.equal((await callAos()).status, 403);
  assert.equal((await aos.api('DELETE', `/rbac/grants/${gid}`)).status, 404);
});

test('one kept-alive connection: each request\'s own token decides, revocation at once', async () => {
  // the authorizer remembers a connection's last token (to skip hashing it
  // again): another token, a forged one and a revocation must still count.
  // A refusal closes the connection, so each is sent right after a success
  // on the same one (checked by its local port).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (token, path = '/auth/me') => new Promise((resolve, reject) => {
    const rq = http.get(aos.url + path, { agent, headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      const port = res.socket.localPort;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, port, body: body ? JSON.parse(body) : undefined }));
    });
    rq.on('error', reject);
  });
  try {
    const a = await mint({ name: 'keep-a', role: 'viewer' });
    const b = await mint({ name: 'keep-b', role: 'none', grants: [{ role: 'viewer', resource: 'task:keep' }] });
    const ok = await get(a.token);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.id, a.id);
    let r = await get(b.token);
    assert.equal(r.body.id, b.id, 'the second token is its own principal');
    assert.equal(r.port, ok.port);
    r = await get(a.token, '/api/jobs');
    assert.equal(r.status, 200);
    assert.equal(r.port, ok.port);
    const forged = [a.token.slice(0, -1) + (a.token.endsWith('x') ? 'y' : 'x'), a.token + 'x', a.token.slice(0, -1), null];
    for (const f of forged) {
      const before = await get(a.token);
      assert.equal(before.status, 200);
      r = await get(f);
      assert.equal(r.status, 401, `${f}: ${JSON.stringify(r.body)}`);
      assert.equal(r.port, before.port, 'sent on the connection that knew the real token');
    }
    const before = await get(b.token);
    r = await get(b.token, '/api/jobs');
    assert.equal(r.status, 403, 'the same token, another route: its own rights');
    assert.equal(r.port, before.port);
    const last = await get(a.token);
    assert.equal(last.status, 200);
    assert.equal((await aos.api('DELETE', `/auth/tokens/${a.id}`)).status, 200);
    r = await get(a.token);
    assert.equal(r.status, 401);
    assert.match(r.body.error.message, /revoked/);
    assert.equal(r.port, last.port, 'revoked on the connection that knew it');
    assert.equal((await get(b.token)).status, 200);
  } finally { agent.destroy(); }
});

test('revocation closes the token\'s open SSE streams and refuses its MCP session', async () => {
  const t = await mint({ name: 'streamer', role: 'operator' });
  const events = sseClient(aos, '/agent/events', { token: t.token });
  await events.opened;
  assert.equal(events.status, 200);
  const logs = sseClient(aos, '/api/logs/stream', { token: t.token });
  await logs.opened;
  assert.equal(logs.status, 200);
  const other = sseClient(aos, '/agent/events', { token: tokens.operator });
  await other.opened;
  const s = await mcpOpen('/mcp', t.token);
  assert.equal(s.status, 200);
  assert.equal((await mcpCall('/mcp', s.sid, t.token, 'ping', {})).status, 200);
  // the session's own GET stream
  const mcpStream = sseClient(aos, '/mcp', { token: t.token, headers: { 'Mcp-Session-Id': s.sid, Accept: 'text/event-stream' } });
  await mcpStream.opened;
  assert.equal(mcpStream.status, 200);
  const r = await aos.api('DELETE', `/auth/tokens/${t.id}`);
  assert.equal(r.status, 200, r.text);
  await events.waitFor((x) => x.ended, 5000, 'the events stream to end');
  await logs.waitFor((x) => x.ended, 5000, 'the logs stream to end');
  await mcpStream.waitFor((x) => x.ended, 5000, 'the MCP stream to end');
  const after = await mcpCall('/mcp', s.sid, t.token, 'ping', {});
  assert.equal(after.status, 401, after.text);
  assert.equal(other.ended, false, 'another token\'s stream stays open');
  other.close();
});

test('a task\'s tools are checked against its submitter\'s grants', async () => {
  const t = await mint({ name: 'submitter', grants: [{ role: 'operator', resource: 'task:*' }, { role: 'operator', resource: 'tool:ev__*' }] });
  const spec = (tools) => ({
    dsl: 'step s1: ev__echo message="hi"',
    ...(tools ? { constraints: { tools } } : {}),
  });
  let r = await call('POST', '/api/run', spec(['ev__echo']), t.token);
  assert.equal(r.status, 201, r.text);
  r = await call('POST', '/api/run', spec(['ev__*']), t.token);
  assert.equal(r.status, 201, r.text);
  r = await call('POST', '/api/run', spec(['ev__echo', 'aos__echo']), t.token);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /aos__echo/);
  r = await call('POST', '/api/run', spec(['*']), t.token);
  assert.equal(r.status, 403, r.text);
  r = await call('POST', '/api/run', spec(null), t.token);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /constraints\.tools/);
  // an Operator on system may run any tool
  r = await call('POST', '/api/run', spec(null), tokens.operator);
  assert.equal(r.status, 201, r.text);
});

test('a grant on a project reaches its tasks: run, list, read, replay, cancel - and no other project\'s', async () => {
  const p1 = (await mint({ name: 'p1-operator', role: 'none', grants: [{ role: 'operator', resource: 'project:p1' }, { role: 'operator', resource: 'tool:ev__*' }] })).token;
  const p1view = (await mint({ name: 'p1-viewer', role: 'none', grants: [{ role: 'viewer', resource: 'project:p1' }] })).token;
  const gate = (id) => ({ steps: [{ id, approval: { message: 'wait', timeout_s: 600 } }] });
  // the owner runs one task in p2 and one in no project
  const other = await call('POST', '/api/run', { plan: gate('g'), project_id: 'p2' }, TOKEN);
  assert.equal(other.status, 201, other.text);
  const none = await call('POST', '/api/run', { plan: gate('g') }, TOKEN);
  assert.equal(none.status, 201, none.text);
  // run: only in p1, with a project_id
  let r = await call('POST', '/api/run', { plan: { steps: [{ id: 's', tool: 'ev__echo', args: { message: 'p1' } }] }, constraints: { tools: ['ev__*'] } }, p1);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /project_id/);
  r = await call('POST', '/api/run', { plan: gate('g'), project_id: 'p2', constraints: { tools: ['ev__*'] } }, p1);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /project 'p2'/);
  r = await call('POST', '/api/run', { plan: gate('g'), project_id: 'p1' }, p1view);
  assert.equal(r.status, 403, r.text);
  const mine = await call('POST', '/api/run', { plan: gate('g'), project_id: 'p1', constraints: { tools: ['ev__*'] } }, p1);
  assert.equal(mine.status, 201, mine.text);
  // list: p1's jobs only, for both
  for (const t of [p1, p1view]) {
    r = await call('GET', '/api/jobs?limit=500', undefined, t);
    assert.equal(r.status, 200, r.text);
    const traces = r.body.jobs.map((j) => j.trace_id);
    assert.ok(traces.includes(mine.body.trace_id), r.text.slice(0, 300));
    assert.ok(!traces.includes(other.body.trace_id) && !traces.includes(none.body.trace_id));
    assert.ok(r.body.jobs.every((j) => j.project_id === 'p1'));
  }
  // read and replay: p1's task, not the others
  for (const t of [p1, p1view]) {
    for (const path of ['', '/replay']) {
      assert.equal((await call('GET', `/api/episodes/${mine.body.trace_id}${path}`, undefined, t)).status, 200);
      for (const x of [other, none]) {
        r = await call('GET', `/api/episodes/${x.body.trace_id}${path}`, undefined, t);
        assert.equal(r.status, 403, r.text);
      }
    }
  }
  // artifacts: past authorization for p1's task (no such file), not for the others
  for (const t of [p1, p1view]) {
    assert.equal((await call('GET', `/api/episodes/${mine.body.trace_id}/artifacts/x.txt`, undefined, t)).status, 404);
    for (const x of [other, none]) assert.equal((await call('GET', `/api/episodes/${x.body.trace_id}/artifacts/x.txt`, undefined, t)).status, 403);
  }
  // approvals: p1's operator decides for p1's task only
  const decide = (x, t) => call('POST', '/agent/approve', { trace_id: x.body.trace_id, step_id: 'g', decision: 'continue' }, t);
  assert.equal((await decide(mine, p1view)).status, 403);
  assert.equal((await decide(other, p1)).status, 403);
  r = await decide(mine, p1);
  assert.equal(r.status, 200, r.text);
  // a re-run is a new task of the caller's: in p1 it may, p2's it may not
  r = await call('POST', `/api/episodes/${other.body.trace_id}/rerun`, {}, p1);
  assert.equal(r.status, 403, r.text);
  const again = await call('POST', `/api/episodes/${mine.body.trace_id}/rerun`, {}, p1);
  assert.equal(again.status, 201, again.text);
  // cancel: a viewer of p1 may not; p1's operator may cancel p1's job, not p2's
  const rerun = (await call('GET', '/api/jobs?limit=500', undefined, p1)).body.jobs.find((j) => j.trace_id === again.body.trace_id);
  assert.ok(rerun, 'the re-run is listed for p1');
  assert.equal((await call('POST', `/api/jobs/${rerun.id}/cancel`, undefined, p1view)).status, 403);
  assert.equal((await call('POST', `/api/jobs/${other.body.job_id}/cancel`, undefined, p1)).status, 403);
  r = await call('POST', `/api/jobs/${rerun.id}/cancel`, undefined, p1);
  assert.equal(r.status, 200, r.text);
  for (const x of [other, none]) assert.equal((await call('POST', `/api/jobs/${x.body.job_id}/cancel`, undefined, TOKEN)).status, 200);
});

test('--mcp-anonymous: a Viewer by default, logged at start; operator when configured', async () => {
  const b = await startAosd({ args: ['--mcp-anonymous'] });
  try {
    assert.match(b.logs(), /mcp-anonymous.*role 'viewer'/);
    const ep = '/mcp';
    const open = await call('POST', ep, INIT, null, MCP_HEADERS, { full: true, base: b });
    assert.equal(open.status, 200, open.text);
    const sid = open.headers.get('mcp-session-id');
    const list = await call('POST', ep, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, null, { ...MCP_HEADERS, 'Mcp-Session-Id': sid }, { full: true, base: b });
    assert.deepEqual(rpcBody(list).result.tools, []);
    const c = await call('POST', ep, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'aos__echo', arguments: { message: 'x' } } }, null, { ...MCP_HEADERS, 'Mcp-Session-Id': sid }, { full: true, base: b });
    assert.equal(rpcBody(c).error.code, FORBIDDEN_RPC);
    // REST routes still need a token
    assert.equal((await call('GET', '/api/jobs', undefined, null, {}, { base: b })).status, 401);
  } finally { await b.cleanup(); }
  const o = await startAosd({ args: ['--mcp-anonymous', '--mcp-anonymous-role', 'operator'] });
  try {
    assert.match(o.logs(), /role 'operator'/);
    const open = await fetch(o.url + '/mcp', { method: 'POST', headers: { 'Content-Type': 'application/json', ...MCP_HEADERS }, body: JSON.stringify(INIT) });
    const sid = open.headers.get('mcp-session-id');
    await open.text();
    const c = await fetch(o.url + '/mcp', { method: 'POST', headers: { 'Content-Type': 'application/json', ...MCP_HEADERS, 'Mcp-Session-Id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'aos__echo', arguments: { message: 'x' } } }) });
    const text = await c.text();
    assert.ok(!text.includes(String(FORBIDDEN_RPC)), text);
  } finally { await o.cleanup(); }
  const bad = startAosd({ args: ['--mcp-anonymous-role', 'admin'] });
  await assert.rejects(bad, /mcp-anonymous-role/);
});
