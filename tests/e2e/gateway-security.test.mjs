// gateway-security.test.mjs - regression tests of the gateway's security
// defects found by the attack probe of issue 12, one test per defect:
// what a stdio child inherits, the DNS-rebinding check, the names of the
// built-in servers, what an upstream's failure shows, progress tokens, and
// header values that would end a line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startAosd, backendEntry, waitReady, TOKEN, ROOT } from './lib.mjs';

const MASTER_KEY = randomBytes(32).toString('base64');
let aos;
before(async () => {
  aos = await startAosd({
    env: {
      AOS_BOOTSTRAP_TOKEN: TOKEN, AOS_MASTER_KEY: MASTER_KEY,
      GWSEC_PASSED: 'passed-through-value', GWSEC_NOT_PASSED: 'not-passed-value',
    },
  });
});
after(async () => { await aos?.cleanup(); });

const call = (server, tool, args = {}) => aos.api('POST', '/mcp/call', { server, tool, args });

test('a stdio child gets a minimal environment, never aosd\'s secrets (item 1)', async () => {
  const getEnv = async () => {
    await waitReady(aos, 'envy');
    const g = await call('envy', 'get-env');
    assert.equal(g.status, 200, g.text);
    assert.ok(!g.text.includes(TOKEN), 'the bootstrap token reached the child');
    assert.ok(!g.text.includes(MASTER_KEY), 'the master key reached the child');
    return JSON.parse(g.body.content[0].text);
  };
  const entry = backendEntry('envy', 'everything', { env: { OWN_VAR: 'own-value' } });
  assert.equal((await aos.api('POST', '/mcp/registry', entry)).status, 201);
  let env = await getEnv();
  assert.deepEqual(Object.keys(env).filter((k) => k.startsWith('AOS_')), []);
  assert.equal(env.OWN_VAR, 'own-value');
  assert.equal(env.GWSEC_PASSED, undefined);
  assert.equal(env.GWSEC_NOT_PASSED, undefined);
  assert.equal(env.PATH, process.env.PATH);
  // an allowlist in the entry for anything else
  const r = await aos.api('POST', '/mcp/registry', { ...entry, env_passthrough: ['GWSEC_PASSED'] });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.env_passthrough, ['GWSEC_PASSED']);
  env = await getEnv();
  assert.equal(env.GWSEC_PASSED, 'passed-through-value');
  assert.equal(env.GWSEC_NOT_PASSED, undefined);
  assert.equal(env.OWN_VAR, 'own-value');
  // nor can the child read them from aosd's process (same user)
  for (const f of ['environ', 'cmdline']) {
    const text = readFileSync(`/proc/${aos.proc.pid}/${f}`, 'latin1');
    assert.ok(!text.includes(TOKEN), `the bootstrap token is in aosd's /proc/pid/${f}`);
    assert.ok(!text.includes(MASTER_KEY), `the master key is in aosd's /proc/pid/${f}`);
  }
  // aosd's own variables are never passed on, even when asked for
  const bad = await aos.api('POST', '/mcp/registry', backendEntry('envy2', 'everything', {
    env_passthrough: ['AOS_BOOTSTRAP_TOKEN'],
  }));
  assert.equal(bad.status, 400, bad.text);
  assert.match(bad.body.error.message, /AOS_/);
});

test('header values with a line break are refused with a clear 400 (item 11)', async () => {
  const before = (await aos.api('GET', '/mcp/registry')).body.servers.length;
  for (const [headers, want] of [
    [{ 'X-Api-Key': 'k\r\nX-Injected: 1' }, /headers\.X-Api-Key.*line break/],
    [{ 'X-Api-Key': 'k\n' }, /line break/],
    [{ 'Bad Name': 'v' }, /invalid name/],
    [{ Host: 'evil.example' }, /invalid name 'Host'/],
  ]) {
    const r = await aos.api('POST', '/mcp/registry', { name: 'crlf', url: 'http://127.0.0.1:9/mcp', headers });
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error.message, want);
  }
  const t = await aos.api('POST', '/mcp/registry', { name: 'crlf', url: 'http://127.0.0.1:9/mcp', auth_token: 'a\r\nb' });
  assert.equal(t.status, 400, t.text);
  const e = await aos.api('POST', '/mcp/registry', { name: 'crlf', command: 'x', env: { 'A=B': 'v' } });
  assert.equal(e.status, 400, e.text);
  const u = await aos.api('POST', '/mcp/registry', { name: 'crlf', url: 'http://127.0.0.1:9/mcp\r\nX: y' });
  assert.equal(u.status, 400, u.text);
  assert.equal((await aos.api('GET', '/mcp/registry')).body.servers.length, before, 'nothing was stored');
});

// ---- DNS rebinding (item 2) ----
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

// fetch() will not send a Host of our choosing; node:http will
function postMcp(target, headers) {
  return new Promise((resolve, reject) => {
    const u = new URL(target.url);
    const req = http.request({
      host: u.hostname, port: u.port, path: '/mcp', method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(JSON.stringify(INIT));
  });
}

test('Host and Origin must name loopback exactly or be listed (item 2)', async () => {
  const port = new URL(aos.url).port;
  const refused = [
    '127.0.0.1.evil.example', `127.0.0.1.evil.example:${port}`, '127.evil.example', '127.0.0.1evil',
    'localhost.evil.example', 'evil.example', '127.1', '0x7f.0.0.1', '[::1].evil.example',
    `127.0.0.1:${port}x`, '127.0.0.1:', `127.0.0.1:${port}/x`, '[::2]',
  ];
  for (const host of refused) assert.equal(await postMcp(aos, { Host: host }), 403, `Host: ${host}`);
  const accepted = [`127.0.0.1:${port}`, '127.0.0.1', '127.5.6.7', `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '[0:0:0:0:0:0:0:1]'];
  for (const host of accepted) assert.equal(await postMcp(aos, { Host: host }), 200, `Host: ${host}`);
  const origins = {
    null: 403, 'http://127.0.0.1.evil.example': 403, 'http://evil.example': 403, [`http://127.0.0.1:${port}/x`]: 403,
    'file://': 403, [`http://127.0.0.1:${port}`]: 200, 'https://localhost': 200, [`http://[::1]:${port}`]: 200,
  };
  for (const [origin, want] of Object.entries(origins)) assert.equal(await postMcp(aos, { Origin: origin }), want, `Origin: ${origin}`);
});

test('--allowed-hosts and --allowed-origins match exactly; "null" admits Origin: null', async () => {
  const b = await startAosd({ args: ['--allowed-hosts', 'mcp.example', '--allowed-origins', 'https://app.example,null'] });
  try {
    assert.equal(await postMcp(b, { Host: 'mcp.example' }), 200);
    assert.equal(await postMcp(b, { Host: `MCP.example:${new URL(b.url).port}` }), 200);
    for (const host of ['mcp.example.evil', 'xmcp.example', 'evil.mcp.example']) assert.equal(await postMcp(b, { Host: host }), 403, host);
    assert.equal(await postMcp(b, { Origin: 'https://app.example' }), 200);
    assert.equal(await postMcp(b, { Origin: 'https://app.example.evil' }), 403);
    assert.equal(await postMcp(b, { Origin: 'null' }), 200);
  } finally { await b.cleanup(); }
});

// ---- built-in names (item 7) ----
test('the built-in servers\' names are reserved: no entry takes one, none is deleted (item 7)', async () => {
  const c = await startAosd();
  try {
    for (const name of ['logs', 'aos', 'Logs']) {
      const r = await c.api('POST', '/mcp/registry', backendEntry(name));
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      assert.match(r.body.error.message, /built-in/);
    }
    const imp = await c.api('POST', '/mcp/registry/import', { mcpServers: { logs: { command: 'x' } } });
    assert.equal(imp.status, 400, imp.text);
    for (const name of ['logs', 'aos']) {
      const d = await c.api('DELETE', `/mcp/registry/${name}`);
      assert.equal(d.status, 400, `${name}: ${d.text}`);
      assert.equal((await c.api('GET', `/mcp/registry/${name}`)).body.builtin, true);
    }
    // an entry stored under a reserved name by an older aosd is ignored at
    // start: the built-in stays
    assert.equal((await c.api('POST', '/mcp/registry', { name: 'stale', command: '/bin/true', enabled: false })).status, 201);
    await c.stop();
    execFileSync('sqlite3', [join(c.dataDir, 'aos.db'), "UPDATE mcp_registry SET name = 'logs' WHERE name = 'stale'"]);
    const d = await startAosd({ dataDir: c.dataDir });
    try {
      const logs = (await d.api('GET', '/mcp/registry/logs')).body;
      assert.equal(logs.builtin, true, JSON.stringify(logs));
      assert.match(d.logs(), /registry entry 'logs' ignored/);
      const q = await d.api('POST', '/mcp/call', { server: 'logs', tool: 'logs.query', args: { limit: 1 } });
      assert.equal(q.status, 200, q.text);
    } finally { await d.stop(); }
  } finally { await c.cleanup(); }
});

// ---- malformed requests and the breaker (item 10) ----
test('a malformed _meta is refused with -32602, never sent, never counted (item 10)', async () => {
  const name = 'meta';
  assert.equal((await aos.api('POST', '/mcp/registry', {
    name, command: process.execPath, args: [join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs')],
    timeout_ms: 30000, limits: { breaker_failures: 1 },
  })).status, 201);
  await waitReady(aos, name);
  const H = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json' };
  const post = async (path, body, sid) => {
    const r = await fetch(aos.url + path, {
      method: 'POST', headers: sid ? { ...H, 'Mcp-Session-Id': sid } : H, body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000), // the upstream would drop it: no answer for timeout_ms
    });
    return { sid: r.headers.get('mcp-session-id'), json: await r.json() };
  };
  for (const path of [`/mcp/servers/${name}`, '/mcp']) {
    const tool = path === '/mcp' ? `${name}__echo` : 'echo';
    const { sid } = await post(path, INIT);
    const bad = [
      { name: tool, arguments: { message: 'x' }, _meta: { progressToken: { a: 1 } } },
      { name: tool, arguments: { message: 'x' }, _meta: { progressToken: true } },
      { name: tool, arguments: { message: 'x' }, _meta: 'x' },
    ];
    for (const params of bad) {
      const r = await post(path, { jsonrpc: '2.0', id: 2, method: 'tools/call', params }, sid);
      assert.equal(r.json.error?.code, -32602, `${path} ${JSON.stringify(params)}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.message, /_meta/);
    }
    if (path !== '/mcp') {
      const arr = await post(path, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: [tool] }, sid);
      assert.equal(arr.json.error?.code, -32602, JSON.stringify(arr.json));
    }
    // spec-valid tokens (string or number) go through
    for (const progressToken of ['tok', 7, 1.5]) {
      const ok = await post(path, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: tool, arguments: { message: 'ok' }, _meta: { progressToken } } }, sid);
      assert.equal(ok.json.result?.content?.[0]?.text, 'Echo: ok', JSON.stringify(ok.json));
    }
  }
  const h = (await aos.api('GET', `/mcp/registry/${name}`)).body.health;
  assert.equal(h.breaker, 'closed', JSON.stringify(h));
  assert.equal(h.status, 'healthy', JSON.stringify(h));
});

// ---- what an upstream's failure shows (item 8) ----
test('an upstream\'s error page and the credentials in its url are never shown (item 8)', async () => {
  const page = 'INTERNAL-PAGE-CONTENT: db password is hunter2';
  const srv = http.createServer((req, res) => { req.resume(); res.writeHead(500, { 'Content-Type': 'text/html' }); res.end(page); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const url = `http://user:pw-url-secret@127.0.0.1:${srv.address().port}/mcp?api_key=key-url-secret&v=1`;
    const r = await aos.api('POST', '/mcp/registry', { name: 'ssrf', url, timeout_ms: 2000 });
    assert.equal(r.status, 201, r.text);
    let h;
    const t0 = Date.now();
    do { h = (await aos.api('GET', '/mcp/registry/ssrf')).body; } while (!h.health.last_error && Date.now() - t0 < 10000);
    assert.match(h.health.last_error, /http 500 Internal Server Error/);
    assert.equal(h.url, `http://[REDACTED]@127.0.0.1:${srv.address().port}/mcp?api_key=[REDACTED]&v=[REDACTED]`);
    assert.equal(h.base_url, h.url);
    const call = await aos.api('POST', '/mcp/call', { server: 'ssrf', tool: 'x', args: {} });
    assert.ok(call.status >= 400, call.text);
    const list = await aos.api('GET', '/mcp/registry');
    const logs = await aos.api('GET', '/api/logs?limit=1000');
    const audit = await aos.api('GET', '/audit/logs');
    assert.equal(logs.status, 200, logs.text);
    assert.equal(audit.status, 200, audit.text);
    assert.match(audit.text, /ssrf/);
    for (const [what, text] of [['registry', JSON.stringify(h) + list.text], ['call', call.text], ['logs', logs.text], ['audit', audit.text], ['stderr', aos.logs()]]) {
      for (const secret of ['INTERNAL-PAGE', 'hunter2', 'pw-url-secret', 'key-url-secret']) {
        assert.ok(!text.includes(secret), `${secret} in ${what}`);
      }
    }
  } finally {
    await aos.api('DELETE', '/mcp/registry/ssrf');
    srv.close();
  }
});

// ---- the logs redact what the registry keeps sealed (item 9) ----
test('an entry\'s env, header and token values are redacted in the logs (item 9)', async () => {
  const envValue = 'env-value-0123456789', headerValue = 'header-value-9876543210', token = 'auth-token-5555555555';
  const r = await aos.api('POST', '/mcp/registry', {
    name: 'noisy', command: '/bin/sh', args: ['-c', 'echo "child says token is $NOISY_TOKEN" >&2; exec cat >/dev/null'],
    env: { NOISY_TOKEN: envValue },
  });
  assert.equal(r.status, 201, r.text);
  const h = await aos.api('POST', '/mcp/registry', {
    name: 'hdrs', url: 'http://127.0.0.1:9/mcp', headers: { 'X-Key': headerValue }, auth_token: token,
  });
  assert.equal(h.status, 201, h.text);
  let items = [];
  const t0 = Date.now();
  while (!items.length && Date.now() - t0 < 10000) {
    items = (await aos.api('GET', `/api/logs?${new URLSearchParams({ source: 'upstream:noisy', q: 'child' })}`)).body.items;
  }
  assert.equal(items[0]?.message, 'child says token is [REDACTED]', JSON.stringify(items));
  // whatever else mentions them is redacted too, e.g. a published entry
  const topic = `item9-${Date.now()}`;
  const p = await aos.api('POST', '/api/logs', [{ message: `got ${headerValue} and ${token} and ${envValue}`, topic }]);
  assert.ok(p.status < 300, p.text);
  const got = (await aos.api('GET', `/api/logs?topic=${topic}`)).body.items;
  assert.equal(got[0]?.message, 'got [REDACTED] and [REDACTED] and [REDACTED]', JSON.stringify(got));
  const bytes = Buffer.concat(['aos.db', 'aos.db-wal'].map((f) => join(aos.dataDir, f)).filter((f) => existsSync(f)).map((f) => readFileSync(f)));
  for (const v of [envValue, headerValue, token]) assert.equal(bytes.indexOf(v), -1, `${v} is in the database`);
  await aos.api('DELETE', '/mcp/registry/noisy');
  await aos.api('DELETE', '/mcp/registry/hdrs');
});
