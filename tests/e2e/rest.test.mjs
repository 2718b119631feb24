// rest.test.mjs - aosd's REST surface with curl-like fetches: health,
// metrics (checked by promtool), auth, the registry (validation, secrets,
// persistence across restarts, import) and /mcp/call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAosd, backendEntry, waitReady, assertErrorShape, TOKEN } from './lib.mjs';

let aos;
before(async () => { aos = await startAosd(); });
after(async () => { await aos?.cleanup(); });

test('healthz answers without a token', async () => {
  const r = await aos.api('GET', '/healthz', undefined, null);
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'ok');
  assert.match(r.body.version, /^\d+\.\d+\.\d+/);
});

test('the root serves the embedded browser UI (web.test.mjs: its files and headers)', async () => {
  const r = await fetch(aos.url + '/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/html/);
  assert.match(await r.text(), /<title>AOS<\/title>[^]*src="\/ui\/app\.[A-Z0-9]+\.js"/);
  assert.equal((await fetch(aos.url + '/ui/no-such-file')).status, 404);
});

test('unknown routes and methods get JSON errors', async () => {
  assertErrorShape(assert, await aos.api('GET', '/nope'), 404, 'not_found');
  assertErrorShape(assert, await aos.api('PUT', '/mcp/registry'), 405, 'method_not_allowed');
});

test('the API needs a valid bearer token', async () => {
  assertErrorShape(assert, await aos.api('GET', '/mcp/registry', undefined, null), 401, 'unauthorized');
  assertErrorShape(assert, await aos.api('GET', '/mcp/registry', undefined, 'wrong-token-xxxxxxxx'), 401, 'unauthorized');
  const r = await aos.api('GET', '/mcp/registry');
  assert.equal(r.status, 200);
  // the built-in server is always there
  assert.ok(r.body.servers.some((s) => s.name === 'aos' && s.builtin));
});

test('registry rejects bad entries with clear errors and changes nothing', async () => {
  const bad = [
    ['{not json', 'parse_error', 400],
    [{ transport: 'stdio', command: 'x' }, 'invalid_argument', 400],            // no name
    [{ name: 'a__b', command: 'x' }, 'invalid_argument', 400],                  // separator in name
    [{ name: 'x', transport: 'stdio' }, 'invalid_argument', 400],               // no command
    [{ name: 'x', transport: 'streamable-http', url: 'ftp://h' }, 'invalid_argument', 400],
    [{ name: 'x', transport: 'carrier-pigeon', command: 'x' }, 'invalid_argument', 400],
    [{ name: 'x', command: 'x', timeout_ms: -5 }, 'invalid_argument', 400],
    [{ name: 'x', command: 'x', typo_field: 1 }, 'invalid_argument', 400],
    [{ name: 'aos', command: 'x' }, 'invalid_argument', 400],                   // built-in name
  ];
  for (const [body, code, status] of bad) {
    const r = await aos.api('POST', '/mcp/registry', body);
    assertErrorShape(assert, r, status, code);
  }
  const list = await aos.api('GET', '/mcp/registry');
  assert.deepEqual(list.body.servers.filter((s) => !s.builtin).map((s) => s.name), []);
});

test('a large body is refused with 413', async () => {
  const big = JSON.stringify({ name: 'big', command: 'x', description: 'x'.repeat(2 << 20) });
  const r = await aos.api('POST', '/mcp/registry', big);
  assertErrorShape(assert, r, 413, 'too_large');
});

test('secrets are write-only: never returned, never logged', async () => {
  const secret = 'sk-SECRET-VALUE-7f3a9c';
  const envSecret = 'ENV-SECRET-1d2e3f';
  const r = await aos.api('POST', '/mcp/registry', {
    name: 'remote1', transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp',
    auth_token: secret, headers: { 'X-Api-Key': 'HDR-SECRET-99' }, enabled: false,
  });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.has_auth_token, true);
  assert.deepEqual(r.body.header_names, ['X-Api-Key']);
  const r2 = await aos.api('POST', '/mcp/registry', {
    name: 'local1', command: '/bin/true', env: { API_KEY: envSecret }, enabled: false,
  });
  assert.equal(r2.status, 201, r2.text);
  assert.deepEqual(r2.body.env_keys, ['API_KEY']);
  // an update without auth_token keeps it
  const r3 = await aos.api('POST', '/mcp/registry', {
    name: 'remote1', transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', enabled: false,
    description: 'updated',
  });
  assert.equal(r3.status, 200, r3.text);
  assert.equal(r3.body.has_auth_token, true);
  assert.equal(r3.body.description, 'updated');
  const all = (await aos.api('GET', '/mcp/registry')).text + (await aos.api('GET', '/mcp/registry/remote1')).text
    + (await aos.api('GET', '/audit/logs')).text;
  for (const s of [secret, envSecret, 'HDR-SECRET-99']) {
    assert.ok(!all.includes(s), `secret ${s} leaked in a response`);
    assert.ok(!aos.logs().includes(s), `secret ${s} leaked in the logs`);
  }
  // and the database file holds them sealed, not in plain text
  const db = readFileSync(join(aos.dataDir, 'aos.db'));
  for (const s of [secret, envSecret, 'HDR-SECRET-99']) assert.ok(!db.includes(s), `secret ${s} stored in plain text`);
});

test('registry writes are audited', async () => {
  const r = await aos.api('GET', '/audit/logs?limit=10');
  assert.equal(r.status, 200, r.text);
  const actions = r.body.items.map((i) => i.action);
  assert.ok(actions.includes('mcp.registry.put'), JSON.stringify(r.body));
});

test('delete removes an entry; unknown names are 404', async () => {
  const r = await aos.api('DELETE', '/mcp/registry/local1');
  assert.equal(r.status, 200, r.text);
  assertErrorShape(assert, await aos.api('DELETE', '/mcp/registry/local1'), 404, 'not_found');
  assertErrorShape(assert, await aos.api('GET', '/mcp/registry/local1'), 404, 'not_found');
  assertErrorShape(assert, await aos.api('DELETE', '/mcp/registry/aos'), 400, 'invalid_argument');
});

test('/mcp/call reaches the built-in echo and validates its input', async () => {
  const r = await aos.api('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: { message: 'hi' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.content[0].text, 'Echo: hi');
  assertErrorShape(assert, await aos.api('POST', '/mcp/call', { server: 'nope', tool: 'echo' }), 404, 'not_found');
  assertErrorShape(assert, await aos.api('POST', '/mcp/call', { server: 'aos', tool: 'nope' }), 404, 'not_found');
  assertErrorShape(assert, await aos.api('POST', '/mcp/call', { server: 'aos' }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/mcp/call', '[1,2'), 400, 'parse_error');
  assertErrorShape(assert, await aos.api('POST', '/mcp/call', { server: 'remote1', tool: 'x' }), 503, 'unavailable');
});

test('import of a Claude Desktop mcpServers file, all or nothing', async () => {
  const bad = await aos.api('POST', '/mcp/registry/import', {
    mcpServers: { good: { command: '/bin/true' }, 'bad name!': { command: '/bin/true' } },
  });
  assertErrorShape(assert, bad, 400, 'invalid_argument');
  assert.equal((await aos.api('GET', '/mcp/registry/good')).status, 404);
  const r = await aos.api('POST', '/mcp/registry/import', {
    mcpServers: {
      everything: { command: backendEntry('x').command, args: ['everything'] },
      web: { type: 'http', url: 'http://127.0.0.1:9/mcp', disabled: true },
    },
  });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.imported.map((s) => s.name).sort(), ['everything', 'web']);
  const web = await aos.api('GET', '/mcp/registry/web');
  assert.equal(web.body.transport, 'streamable-http');
  assert.equal(web.body.enabled, false);
});

test('/mcp/call through a stdio upstream', async () => {
  await waitReady(aos, 'everything');
  const r = await aos.api('POST', '/mcp/call', { server: 'everything', tool: 'echo', args: { message: 'through' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.content[0].text, 'Echo: through');
  const sum = await aos.api('POST', '/mcp/call', { server: 'everything', tool: 'get-sum', args: { a: 2, b: 40 } });
  assert.equal(sum.status, 200, sum.text);
  assert.match(JSON.stringify(sum.body), /42/);
  assertErrorShape(assert, await aos.api('POST', '/mcp/call', { server: 'everything', tool: 'no-such-tool' }), 404, 'not_found');
});

test('/metrics is valid Prometheus text (promtool) and counts calls', async () => {
  const r = await aos.api('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/plain/);
  assert.match(r.text, /aos_mcp_calls_total\{server="everything",tool="echo",outcome="ok"\} [1-9]/);
  const p = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
  assert.equal(p.status, 0, `promtool: ${p.stdout}${p.stderr}`);
});

// Issue 12, item 4: /metrics was public.
test('/metrics needs a token, or an address allowed to scrape', async () => {
  assertErrorShape(assert, await aos.api('GET', '/metrics', undefined, null), 401, 'unauthorized');
  assertErrorShape(assert, await aos.api('GET', '/metrics', undefined, 'wrong-token-xxxxxxxx'), 401, 'unauthorized');
  assert.equal((await aos.api('GET', '/metrics')).status, 200);
  // Prometheus scrapes without a token, from the addresses it is told
  const open = await startAosd({ args: ['--metrics-allow', '10.0.0.0/8, 127.0.0.1/32,::1'] });
  try {
    const r = await open.api('GET', '/metrics', undefined, null);
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /^# TYPE aos_mcp_sessions gauge$/m);
    // a token, when sent, must still be valid; and only /metrics is open
    assertErrorShape(assert, await open.api('GET', '/metrics', undefined, 'wrong-token-xxxxxxxx'), 401, 'unauthorized');
    assertErrorShape(assert, await open.api('GET', '/api/logs', undefined, null), 401, 'unauthorized');
    assertErrorShape(assert, await open.api('GET', '/mcp/registry', undefined, null), 401, 'unauthorized');
  } finally { await open.cleanup(); }
  const elsewhere = await startAosd({ env: { AOS_METRICS_ALLOW: '10.0.0.0/8,fd00::/8' } });
  try {
    assertErrorShape(assert, await elsewhere.api('GET', '/metrics', undefined, null), 401, 'unauthorized');
  } finally { await elsewhere.cleanup(); }
  const bad = spawnSync(process.env.AOSD_BIN || join(process.cwd(), '../../build/aosd'),
    ['--listen', '127.0.0.1:0', '--data-dir', mkdtempSync(join(tmpdir(), 'aos-e2e-')), '--metrics-allow', '127.0.0.1/33'],
    { encoding: 'utf8', timeout: 20000 });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--metrics-allow: '127\.0\.0\.1\/33' is not an address or a range/);
});

// Series of one metric (lines of its family, HELP and TYPE aside).
const seriesOf = (text, name) => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

// Issue 12, item 4: tool names from clients became label values (18,000
// names: a 315 MB /metrics, 4.7 s per scrape). The probe, bounded: 2,000
// names nobody registered, through /mcp/call and through /mcp.
test('/metrics stays bounded: unknown tool names count as "other"', { timeout: 240000 }, async () => {
  const a = await startAosd();
  let client;
  try {
    assert.equal((await a.api('POST', '/mcp/registry', backendEntry('everything'))).status, 201);
    await waitReady(a, 'everything');
    const N = 2000;
    const names = Array.from({ length: N }, (_, i) => `probe-${i}-${'x'.repeat(40)}`);
    const viaRest = async (i) => {
      const r = await a.api('POST', '/mcp/call', { server: 'everything', tool: names[i] });
      assert.ok([404, 502, 503].includes(r.status), r.text);
    };
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    client = new Client({ name: 'metrics-probe', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
    }));
    const viaMcp = async (i) => {
      try { await client.callTool({ name: `everything__${names[i]}` }); } catch { /* an error answer is fine */ }
    };
    // eight at a time, half each way
    for (let i = 0; i < N; i += 8)
      await Promise.all(Array.from({ length: Math.min(8, N - i) }, (_, k) => ((i + k) % 2 ? viaMcp : viaRest)(i + k)));
    // known tools keep their own series
    assert.equal((await a.api('POST', '/mcp/call', { server: 'everything', tool: 'echo', args: { message: 'm' } })).status, 200);

    const t0 = Date.now();
    const r = await a.api('GET', '/metrics');
    const ms = Date.now() - t0;
    assert.equal(r.status, 200);
    const calls = seriesOf(r.text, 'aos_mcp_calls_total');
    const hist = seriesOf(r.text, 'aos_mcp_call_duration_seconds_count');
    assert.ok(!r.text.includes('probe-'), 'no client-chosen name is a label value');
    assert.match(r.text, /aos_mcp_calls_total\{server="everything",tool="echo",outcome="ok"\} 1\n/);
    const other = calls.filter((l) => l.includes('server="everything",tool="other"'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    assert.ok(other >= N * 0.9, `calls counted as other: ${other} of ${N}\n${calls.join('\n')}`);
    assert.ok(calls.length <= 20, `${calls.length} series of aos_mcp_calls_total`);
    assert.ok(hist.length <= 5, `${hist.length} series of aos_mcp_call_duration_seconds`);
    assert.ok(r.text.length < 64 * 1024, `/metrics is ${r.text.length} bytes`);
    console.log(`# probe: ${N} unknown names -> ${calls.length} call series, ${r.text.length} bytes, scrape ${ms} ms`);
    const p = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
    assert.equal(p.status, 0, `promtool: ${p.stdout}${p.stderr}`);
  } finally {
    await client?.close();
    await a.cleanup();
  }
});

// The limit of series per metric, from the configuration: label values
// past it count as "other", and the overflow is itself counted.
test('--metrics-max-series folds the series past the limit into "other"', async () => {
  const a = await startAosd({ args: ['--metrics-max-series', '2'] });
  try {
    for (const message of ['a', 'b', 'c'])
      assert.equal((await a.api('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: { message } })).status, 200);
    const logs = await a.api('POST', '/mcp/call', { server: 'logs', tool: 'logs.query', args: { limit: 1 } });
    assert.equal(logs.status, 200, logs.text);
    // a third list of label values: past the limit of 2
    const bad = await a.api('POST', '/mcp/call', { server: 'aos', tool: 'echo', args: {} });
    assertErrorShape(assert, bad, 400, 'invalid_argument');
    const r = await a.api('GET', '/metrics');
    const calls = seriesOf(r.text, 'aos_mcp_calls_total');
    assert.deepEqual(calls.map((l) => l.replace(/ \d+$/, '')), [
      'aos_mcp_calls_total{server="aos",tool="echo",outcome="ok"}',
      'aos_mcp_calls_total{server="logs",tool="logs.query",outcome="ok"}',
      'aos_mcp_calls_total{server="other",tool="other",outcome="other"}',
    ], calls.join('\n'));
    assert.match(r.text, /^aos_metrics_overflow_total\{metric="aos_mcp_calls_total"\} 1$/m);
    const p = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
    assert.equal(p.status, 0, `promtool: ${p.stdout}${p.stderr}`);
  } finally { await a.cleanup(); }
});

test('entries survive a restart and their servers come back', async () => {
  const dataDir = aos.dataDir;
  const { code } = await aos.stop();
  assert.equal(code, 0, 'clean exit on SIGTERM');
  aos = await startAosd({ dataDir, keep: true });
  const list = await aos.api('GET', '/mcp/registry');
  assert.deepEqual(list.body.servers.filter((s) => !s.builtin).map((s) => s.name), ['everything', 'remote1', 'web']);
  assert.equal(list.body.servers.find((s) => s.name === 'remote1').has_auth_token, true);
  await waitReady(aos, 'everything');
  const r = await aos.api('POST', '/mcp/call', { server: 'everything', tool: 'echo', args: { message: 'again' } });
  assert.equal(r.body.content[0].text, 'Echo: again');
  // the bootstrap token was stored once; the same token still works, no new one printed
  assert.ok(!aos.stdout().includes('owner token'));
});

test('config file and environment, with flags taking precedence', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aos-cfg-'));
  const cfg = join(dir, 'aos.json');
  writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:1', log_level: 'debug', 'data-dir': join(dir, 'd') }));
  // the file says port 1 (privileged, would fail); the flag overrides it
  const a = await startAosd({ args: ['--config', cfg], env: { AOS_LOG_LEVEL: 'warn' } });
  try {
    assert.equal((await a.api('GET', '/healthz', undefined, null)).status, 200);
    // env (warn) beat the file (debug): no info lines
    assert.ok(!a.logs().includes('"level":"info"'), a.logs().slice(0, 400));
  } finally { await a.cleanup(); }
  const bad = spawnSync(process.env.AOSD_BIN || join(process.cwd(), '../../build/aosd'), ['--no-such-flag'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown option/);
  const many = spawnSync(process.env.AOSD_BIN || join(process.cwd(), '../../build/aosd'),
    ['--http-writers', '65', '--data-dir', '/nonexistent-aos-e2e'], { encoding: 'utf8' });
  assert.equal(many.status, 2);
  assert.match(many.stderr, /--http-writers must be from 0 to 64/);
  const llm = spawnSync(process.env.AOSD_BIN || join(process.cwd(), '../../build/aosd'),
    ['--llm-base-url', 'http://127.0.0.1:9/v1', '--data-dir', '/nonexistent-aos-e2e'],
    { encoding: 'utf8' });
  assert.equal(llm.status, 2);
  assert.match(llm.stderr, /--llm-model is required with --llm-base-url/);
});

test('a start-up failure ends aosd with its reason, never a hang', async () => {
  const net = await import('node:net');
  const busy = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
  const { AOSD } = await import('./lib.mjs');
  try {
    const cases = [
      [['--listen', `127.0.0.1:${busy.address().port}`], /unable to listen/],
      [['--listen', '127.0.0.1:0', '--bootstrap-token', 'short'], /16 to 256 visible ASCII characters/],
      [['--listen', '127.0.0.1:0', '--llm-base-url', 'ftp://x/v1', '--llm-model', 'm'],
        /llm: base_url must be an http:\/\/ or https:\/\/ URL/],
    ];
    for (const [args, why] of cases) {
      const dir = mkdtempSync(join(tmpdir(), 'aos-e2e-fail-'));
      const t0 = Date.now();
      const r = spawnSync(AOSD, [...args, '--data-dir', dir], { timeout: 15000, encoding: 'utf8' });
      assert.equal(r.error, undefined, `aosd ${args.join(' ')} did not end: ${r.error}`);
      assert.equal(r.status, 1, r.stderr.slice(-2000));
      assert.match(r.stderr, why);
      assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
    }
  } finally { busy.close(); }
});

test('PATCH /mcp/registry/:name changes the fields given and keeps the rest, secrets included', async () => {
  const e = backendEntry('patchme', 'everything', { env: { PATCH_SECRET: 'patch-secret-value-1234' }, description: 'first' });
  assert.equal((await aos.api('POST', '/mcp/registry', e)).status, 201);
  await waitReady(aos, 'patchme');
  const env = async () => JSON.parse((await aos.api('POST', '/mcp/call', { server: 'patchme', tool: 'get-env' })).body.content[0].text);
  assert.equal((await env()).PATCH_SECRET, 'patch-secret-value-1234');
  // disable: the server stops, its calls are refused; the rest stays
  let r = await aos.api('PATCH', '/mcp/registry/patchme', { enabled: false });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.enabled, false);
  assert.equal(r.body.description, 'first');
  assert.deepEqual(r.body.env_keys, ['PATCH_SECRET']);
  assert.equal(r.body.command, e.command);
  assert.ok(!r.text.includes('patch-secret-value-1234'));
  assert.notEqual((await aos.api('POST', '/mcp/call', { server: 'patchme', tool: 'echo', args: { message: 'x' } })).status, 200);
  // enable with new limits and description: the same secret reaches the server
  r = await aos.api('PATCH', '/mcp/registry/patchme', { enabled: true, description: 'second', limits: { retries: 1 } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.limits.retries, 1);
  await waitReady(aos, 'patchme');
  assert.equal((await env()).PATCH_SECRET, 'patch-secret-value-1234');
  // a new value replaces it
  r = await aos.api('PATCH', '/mcp/registry/patchme', { env: { PATCH_SECRET: 'patch-secret-value-5678' } });
  assert.equal(r.status, 200, r.text);
  await waitReady(aos, 'patchme');
  assert.equal((await env()).PATCH_SECRET, 'patch-secret-value-5678');
  assert.equal((await aos.api('GET', '/mcp/registry/patchme')).body.description, 'second');
  // bad patches change nothing
  for (const [path, body, status] of [['/mcp/registry/patchme', { name: 'other' }, 400], ['/mcp/registry/patchme', { nope: 1 }, 400],
    ['/mcp/registry/patchme', { timeout_ms: 'soon' }, 400], ['/mcp/registry/patchme', [1], 400],
    ['/mcp/registry/absent', { enabled: false }, 404], ['/mcp/registry/aos', { enabled: false }, 400]])
    assert.equal((await aos.api('PATCH', path, body)).status, status, `${path} ${JSON.stringify(body)}`);
  assert.equal((await aos.api('GET', '/mcp/registry/patchme')).body.description, 'second');
  const audit = await aos.api('GET', '/audit/logs?resource=mcp_registry/patchme&limit=20');
  assert.ok(audit.body.items.length >= 4, audit.text);
  assert.ok(!audit.text.includes('patch-secret-value'), 'no value in the audit diffs');
  assert.equal((await aos.api('DELETE', '/mcp/registry/patchme')).status, 200);
});
