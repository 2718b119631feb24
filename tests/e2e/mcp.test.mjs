// mcp.test.mjs - the MCP endpoints with the official TypeScript SDK client
// (and raw fetches for the transport rules), aosd fronting the reference
// server-everything over stdio.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { startAosd, backendEntry, waitReady, TOKEN } from './lib.mjs';

let aos;
before(async () => {
  aos = await startAosd();
  const r = await aos.api('POST', '/mcp/registry', backendEntry('everything'));
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'everything');
});
after(async () => { await aos?.cleanup(); });

async function connect(path, { name = 'e2e', sampleText = 'sampled!' } = {}) {
  const client = new Client({ name, version: '1.0.0' },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
    model: 'e2e-model', role: 'assistant', content: { type: 'text', text: `${sampleText}` },
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada' } }));
  const transport = new StreamableHTTPClientTransport(new URL(aos.url + path), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  });
  await client.connect(transport);
  return client;
}

test('aggregated /mcp: tools of every server, namespaced', async () => {
  const c = await connect('/mcp');
  try {
    assert.equal(c.getServerVersion().name, 'aosd');
    const { tools } = await c.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('everything__echo'), names.join(','));
    assert.ok(names.includes('everything__get-sum'));
    assert.ok(names.includes('aos__echo'));
    assert.ok(!names.includes('echo'));
    const r = await c.callTool({ name: 'everything__echo', arguments: { message: 'hello' } });
    assert.equal(r.content[0].text, 'Echo: hello');
    const b = await c.callTool({ name: 'aos__echo', arguments: { message: 'built in' } });
    assert.equal(b.content[0].text, 'Echo: built in');
    await c.ping();
    const nope = await c.callTool({ name: 'everything__nope', arguments: {} });
    assert.equal(nope.isError, true);
    assert.match(nope.content[0].text, /nope/);
    await assert.rejects(c.callTool({ name: 'nosuchserver__echo', arguments: {} }), /unknown tool/);
  } finally { await c.close(); }
});

test('aggregated /mcp: resources, templates and prompts', async () => {
  const c = await connect('/mcp');
  try {
    const { resources } = await c.listResources();
    assert.ok(resources.length > 0);
    const read = await c.readResource({ uri: resources[0].uri });
    assert.ok(read.contents.length > 0);
    const { resourceTemplates } = await c.listResourceTemplates();
    assert.ok(resourceTemplates.length > 0);
    const { prompts } = await c.listPrompts();
    const simple = prompts.find((p) => p.name.startsWith('everything__') && !(p.arguments || []).some((a) => a.required));
    assert.ok(simple, JSON.stringify(prompts.map((p) => p.name)));
    const got = await c.getPrompt({ name: simple.name });
    assert.ok(got.messages.length > 0);
    await assert.rejects(c.readResource({ uri: 'nowhere://x' }), /not found/);
  } finally { await c.close(); }
});

test('progress notifications reach the caller', async () => {
  const c = await connect('/mcp');
  try {
    const seen = [];
    const r = await c.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
      undefined, { onprogress: (p) => seen.push(p.progress) });
    assert.match(r.content[0].text, /completed/);
    assert.deepEqual(seen, [1, 2, 3]);
  } finally { await c.close(); }
});

test('sampling and elicitation requests of the upstream are routed to the calling client', async () => {
  const c = await connect('/mcp', { sampleText: 'from-client-A' });
  try {
    const r = await c.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 10 } });
    assert.match(JSON.stringify(r), /from-client-A/);
    const e = await c.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
    assert.match(JSON.stringify(e), /Ada/);
  } finally { await c.close(); }
});

test('logging/setLevel and log messages', async () => {
  const c = await connect('/mcp');
  try {
    await c.setLoggingLevel('debug');
    const logs = [];
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params));
    await c.callTool({ name: 'everything__echo', arguments: { message: 'x' } });
    await assert.rejects(c.setLoggingLevel('loudest'), /log level/);
  } finally { await c.close(); }
});

test('per-server endpoint exposes one server unchanged', async () => {
  const c = await connect('/mcp/servers/everything');
  try {
    assert.match(c.getServerVersion().name, /everything/i);
    const { tools } = await c.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('echo'));
    assert.ok(!names.some((n) => n.includes('__')));
    const r = await c.callTool({ name: 'echo', arguments: { message: 'direct' } });
    assert.equal(r.content[0].text, 'Echo: direct');
    const s = await c.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } });
    assert.match(JSON.stringify(s), /sampled!/);
  } finally { await c.close(); }
  const b = await connect('/mcp/servers/aos');
  try {
    const { tools } = await b.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['echo']);
  } finally { await b.close(); }
});

// ---- the transport rules, with raw requests ----
const H = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

async function post(path, body, headers = {}) {
  const r = await fetch(aos.url + path, { method: 'POST', headers: { ...H, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json;
  // one message, as JSON or as one SSE event
  const payload = (r.headers.get('content-type') || '').startsWith('text/event-stream')
    ? text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('') : text;
  try { json = JSON.parse(payload); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, json, text };
}

test('transport: JSON replies when the client accepts only JSON', async () => {
  const r = await post('/mcp', init, { Accept: 'application/json' });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const sid = r.headers.get('mcp-session-id');
  const p = await post('/mcp', { jsonrpc: '2.0', id: 7, method: 'ping' }, { Accept: 'application/json', 'Mcp-Session-Id': sid });
  assert.deepEqual(JSON.parse(p.text), { jsonrpc: '2.0', id: 7, result: {} });
  const s = await post('/mcp', { jsonrpc: '2.0', id: 8, method: 'ping' }, { 'Mcp-Session-Id': sid });
  assert.match(s.headers.get('content-type'), /^text\/event-stream/);
  assert.match(s.text, /^event: message\ndata: \{.*"id":8.*\}\n\n$/s);
});

test('transport: sessions, version negotiation', async () => {
  const r = await post('/mcp', init);
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get('mcp-session-id');
  assert.match(sid, /^[0-9a-f]{32}$/);
  assert.equal(r.json.result.protocolVersion, '2025-06-18');
  const odd = await post('/mcp', { ...init, params: { ...init.params, protocolVersion: '1999-01-01' } });
  assert.equal(odd.json.result.protocolVersion, '2025-11-25');
  const n = await post('/mcp', { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'Mcp-Session-Id': sid });
  assert.equal(n.status, 202);
  const list = await post('/mcp', { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18' });
  assert.equal(list.status, 200);
  assert.ok(list.json.result.tools.length > 5);
  const del = await fetch(aos.url + '/mcp', { method: 'DELETE', headers: { ...H, 'Mcp-Session-Id': sid } });
  assert.equal(del.status, 200);
  const gone = await post('/mcp', { jsonrpc: '2.0', id: 3, method: 'tools/list' }, { 'Mcp-Session-Id': sid });
  assert.equal(gone.status, 404);
});

// A JSON-RPC error with the HTTP status and code AOS_ERR_MAP gives it.
function rpcError(x, status, code, id = null) {
  assert.equal(x.status, status, x.text);
  assert.equal(x.json?.jsonrpc, '2.0', x.text);
  assert.equal(x.json.id, id, x.text);
  assert.equal(x.json.error.code, code, x.text);
  assert.equal(typeof x.json.error.message, 'string');
  assert.ok(x.json.error.message.length > 0);
}

test('transport: malformed input gets JSON-RPC errors, never a hang', async () => {
  const r = await post('/mcp', init);
  const sid = r.headers.get('mcp-session-id');
  const S = { 'Mcp-Session-Id': sid };
  let x = await post('/mcp', '{"jsonrpc":', S);
  rpcError(x, 400, -32700);
  x = await post('/mcp', { jsonrpc: '1.0', id: 1, method: 'ping' }, S);
  rpcError(x, 400, -32600, 1);
  x = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'no/such/method' }, S);
  rpcError(x, 200, -32601, 1);
  x = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
  rpcError(x, 400, -32602, 1);
  // what the transport refuses: the status the MCP specification requires,
  // -32000 as the TypeScript SDK's transport answers
  x = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' });
  rpcError(x, 400, -32000);
  assert.match(x.json.error.message, /Mcp-Session-Id/);
  x = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'Mcp-Session-Id': 'f'.repeat(32) });
  rpcError(x, 404, -32000);
  assert.match(x.json.error.message, /session not found/);
  x = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { ...S, 'MCP-Protocol-Version': '1999-01-01' });
  rpcError(x, 400, -32000);
  assert.match(x.json.error.message, /MCP-Protocol-Version/);
  x = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { ...S, 'Content-Type': 'text/plain' });
  rpcError(x, 415, -32000);
  x = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { ...S, Accept: 'text/html' });
  rpcError(x, 406, -32000);
  x = await post('/mcp', [{ jsonrpc: '2.0', id: 1, method: 'ping' }], S);
  rpcError(x, 400, -32600);
  x = await post('/mcp/servers/nope', init);
  rpcError(x, 404, -32002);
  assert.match(x.json.error.message, /no MCP server named 'nope'/);
  // a session of one endpoint is not valid on another
  x = await post('/mcp/servers/everything', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, S);
  rpcError(x, 404, -32000);
  const other = async (method, headers) => {
    const res = await fetch(aos.url + '/mcp', { method, headers: { ...H, ...headers } });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: JSON.parse(text), text };
  };
  x = await other('GET', { ...S, Accept: 'application/json' });
  rpcError(x, 406, -32000);
  x = await other('GET', { Accept: 'text/event-stream' });
  rpcError(x, 400, -32000);
  x = await other('DELETE', { 'Mcp-Session-Id': 'f'.repeat(32) });
  rpcError(x, 404, -32000);
  x = await other('PUT', S);
  rpcError(x, 405, -32000);
  assert.equal(x.headers.get('allow'), 'GET, POST, DELETE');
  // an unknown resource: MCP's own code, with the uri
  x = await post('/mcp', { jsonrpc: '2.0', id: 5, method: 'resources/read', params: { uri: 'nope://x' } }, S);
  rpcError(x, 200, -32002, 5);
  assert.deepEqual(x.json.error.data, { uri: 'nope://x' });
});

// fetch() will not send a Host of our choosing; node:http will
function postWithHost(path, body, host) {
  return new Promise((resolve, reject) => {
    const u = new URL(aos.url + path);
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'POST', headers: { ...H, Host: host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('transport: DNS-rebinding protection on Host and Origin', async () => {
  assert.equal(await postWithHost('/mcp', init, 'evil.example.com'), 403);
  assert.equal(await postWithHost('/mcp', init, `localhost:${new URL(aos.url).port}`), 200);
  let x = await post('/mcp', init, { Origin: 'http://evil.example.com' });
  assert.equal(x.status, 403);
  assert.equal(x.json.error.code, -32003); /* AOS_EFORBIDDEN */
  x = await post('/mcp', init, { Origin: aos.url });
  assert.equal(x.status, 200);
});

test('transport: no token, no MCP (unless --mcp-anonymous from loopback)', async () => {
  const x = await post('/mcp', init, { Authorization: '' });
  assert.equal(x.status, 401);
  const anon = await startAosd({ args: ['--mcp-anonymous'] });
  try {
    const r = await fetch(anon.url + '/mcp', { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(init) });
    assert.equal(r.status, 200);
    // REST still needs a token
    assert.equal((await anon.api('GET', '/mcp/registry', undefined, null)).status, 401);
  } finally { await anon.cleanup(); }
});

test('list_changed of an upstream reaches clients and refreshes the aggregated list', async () => {
  const { join } = await import('node:path');
  const { ROOT } = await import('./lib.mjs');
  const r = await aos.api('POST', '/mcp/registry', { name: 'faulty', command: process.execPath, args: [join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs')] });
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'faulty');
  const c = await connect('/mcp');
  try {
    const { ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const changed = new Promise((res) => c.setNotificationHandler(ToolListChangedNotificationSchema, () => res(true)));
    // the SDK client opens its GET stream after initialize; give it a moment
    await new Promise((res) => setTimeout(res, 300));
    const added = await c.callTool({ name: 'faulty__add-tool', arguments: {} });
    assert.equal(added.content[0].text, 'added-1');
    assert.equal(await Promise.race([changed, new Promise((res) => setTimeout(() => res(false), 5000))]), true);
    let names = [];
    for (let i = 0; i < 50 && !names.includes('faulty__added-1'); i++) {
      names = (await c.listTools()).tools.map((t) => t.name);
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(names.includes('faulty__added-1'), names.join(','));
    assert.equal((await c.callTool({ name: 'faulty__added-1', arguments: {} })).content[0].text, 'added-1');
  } finally { await c.close(); }
});

test('a cancelled request is cancelled upstream too', async () => {
  const c = await connect('/mcp');
  try {
    const before = Number((await c.callTool({ name: 'faulty__cancellations', arguments: {} })).content[0].text);
    const ac = new AbortController();
    const p = c.callTool({ name: 'faulty__slow', arguments: { ms: 20000 } }, undefined, { signal: ac.signal });
    await new Promise((res) => setTimeout(res, 300));
    ac.abort();
    await assert.rejects(p);
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await new Promise((res) => setTimeout(res, 50));
      after = Number((await c.callTool({ name: 'faulty__cancellations', arguments: {} })).content[0].text);
    }
    assert.equal(after, before + 1, 'the upstream saw notifications/cancelled');
  } finally { await c.close(); }
});

test('per-client session mode: what the shared upstream asks or says never reaches a client', async () => {
  // Every upstream of this server asks its client for roots and sends it a
  // log line 1.5 s after initialization: the shared one (aosd's own, ready
  // before the client comes) while the client's slow call is in flight, and
  // the client's own one during that call too. Only the latter may reach the
  // client, and its answer must go back to that upstream.
  const { join } = await import('node:path');
  const { ROOT } = await import('./lib.mjs');
  const entry = {
    name: 'pcroots', command: process.execPath, args: [join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs')],
    env: { FAULTY_CLIENT_AFTER_MS: '1500' }, session_mode: 'per-client',
  };
  assert.equal((await aos.api('POST', '/mcp/registry', entry)).status, 201);
  await waitReady(aos, 'pcroots');
  const { ListRootsRequestSchema, LoggingMessageNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const c = await connect('/mcp/servers/pcroots');
  let asked = 0;
  const said = [];
  c.setRequestHandler(ListRootsRequestSchema, async () => {
    asked++;
    return { roots: [{ uri: 'file:///client-root', name: 'client' }] };
  });
  c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { said.push(String(n.params.data)); });
  try {
    const r = await c.callTool({ name: 'slow', arguments: { ms: 3000 } });
    assert.equal(r.content[0].text, 'slow done');
    assert.equal(asked, 1, 'only the client\'s own upstream asked it');
    const got = (await c.callTool({ name: 'roots', arguments: {} })).content[0].text;
    assert.match(got, /client-root/);
    const own = (await c.callTool({ name: 'pid', arguments: {} })).content[0].text;
    assert.deepEqual(said.filter((t) => t.startsWith('from pid')), [`from pid ${own}`]);
  } finally { await c.close(); }
});

test('per-client session mode: concurrent sampling requests reach the client that caused them', async () => {
  const r = await aos.api('POST', '/mcp/registry', { ...backendEntry('pc'), session_mode: 'per-client' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.session_mode, 'per-client');
  await waitReady(aos, 'pc');
  const a = await connect('/mcp', { sampleText: 'answer-of-A' });
  const b = await connect('/mcp/servers/pc', { sampleText: 'answer-of-B' });
  try {
    // both calls are in flight at once on the same server
    const [ra, rb] = await Promise.all([
      a.callTool({ name: 'pc__trigger-sampling-request', arguments: { prompt: 'a', maxTokens: 5 } }),
      b.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'b', maxTokens: 5 } }),
    ]);
    assert.match(JSON.stringify(ra), /answer-of-A/);
    assert.doesNotMatch(JSON.stringify(ra), /answer-of-B/);
    assert.match(JSON.stringify(rb), /answer-of-B/);
    assert.doesNotMatch(JSON.stringify(rb), /answer-of-A/);
  } finally { await a.close(); await b.close(); }
});

test('an upstream\'s answer reaches its caller with the caller\'s id in one well-formed frame, whatever its text holds', async () => {
  // aosd passes a plain answer on as the upstream wrote it, with the
  // caller's id spliced in (src/jsonrpc/scan.c), and parses the others:
  // both ways must give the caller its own id, the upstream's result, and
  // one SSE event on one data line.
  const { join } = await import('node:path');
  const { ROOT } = await import('./lib.mjs');
  const entry = { name: 'forge', command: process.execPath, args: [join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs')] };
  assert.equal((await aos.api('POST', '/mcp/registry', entry)).status, 201);
  await waitReady(aos, 'forge');
  const r = await post('/mcp/servers/forge', init);
  const sid = r.headers.get('mcp-session-id');
  assert.equal((await post('/mcp/servers/forge', { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'Mcp-Session-Id': sid })).status, 202);
  const metric = async (outcome) => {
    const m = await aos.api('GET', '/metrics');
    const line = m.text.split('\n').find((l) => l.startsWith('aos_mcp_calls_total{') && l.includes('server="forge"') && l.includes(`outcome="${outcome}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const t = (s) => `{"type":"text","text":"${s}"}`;
  const cases = [
    // [the line the upstream writes, the text the caller must get, isError]
    [`{"result":{"content":[${t('nested ids')}],"id":999,"structuredContent":{"id":"x"}},"jsonrpc":"2.0","id":$ID}`, 'nested ids'],
    [`{"jsonrpc":"2.0","id":$ID,"result":{"content":[${t('tool failed')}],"isError":true}}`, 'tool failed', true],
    [`{"jsonrpc":"2.0","\\u0069d":$ID,"result":{"content":[${t('escaped name')}]}}`, 'escaped name'],
    [`{"jsonrpc":"2.0","id":$ID,\r"result":{"content":[${t('carriage return')}]}}`, 'carriage return'],
    [`{"jsonrpc":"2.0","id":$ID,"result":{"content":[${t('a\\u2028b\\u0000c\\ud83d\\ude00')}]}}`, 'a\u2028b\u0000c\u{1f600}'],
    // jansson reads the last id (no call of ours): dropped, and the real answer follows
    [`{"jsonrpc":"2.0","id":$ID,"result":{"content":[${t('forged')}]},"id":999999}`, 'late'],
    // not JSON, then an answer to no call of ours: both dropped
    [`{"jsonrpc":"2.0","id":$ID,"result":{"content":[${t('cut')}]}`, 'late'],
    [`{"jsonrpc":"2.0","id":999998,"result":{"content":[${t('stray')}]}}`, 'late'],
  ];
  const errorsBefore = await metric('tool_error');
  let i = 0;
  await Promise.all(cases.map(async ([line, want, isError]) => {
    const id = i % 2 ? 1000 + i : `caller "${i}" \u2028 é`;
    i++;
    const a = await post('/mcp/servers/forge', { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'raw-answer', arguments: { lines: [line] } } }, { 'Mcp-Session-Id': sid });
    assert.equal(a.status, 200, a.text);
    assert.match(a.text, /^event: message\ndata: [^\r\n]*\n\n$/, `one event on one line: ${JSON.stringify(a.text)}`);
    assert.deepEqual(a.json.id, id);
    assert.equal(a.json.jsonrpc, '2.0');
    assert.equal(a.json.result.content[0].text, want);
    assert.equal(a.json.result.isError === true, !!isError);
  }));
  assert.equal(await metric('tool_error'), errorsBefore + 1);
  // the same through plain JSON answers
  const j = await post('/mcp/servers/forge', { jsonrpc: '2.0', id: 'json', method: 'tools/call', params: { name: 'raw-answer', arguments: { lines: [cases[0][0]] } } }, { 'Mcp-Session-Id': sid, Accept: 'application/json' });
  assert.match(j.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(JSON.parse(j.text).id, 'json');
  assert.equal(JSON.parse(j.text).result.content[0].text, 'nested ids');
});
