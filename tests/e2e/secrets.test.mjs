// secrets.test.mjs - aosd's own secrets never leave it. aosd starts with
// AOS_BOOTSTRAP_TOKEN, AOS_MASTER_KEY and AOS_LLM_API_KEY in its environment (the
// token also as a flag) at --log-level debug, fronting a stdio server that reports its
// environment (server-everything's get-env) and an HTTP server that reports
// the headers it was sent and its environment (fixtures/report-server.mjs).
// Both are called over REST and MCP, a call fails often enough to raise an
// anomaly; then none of the secrets may be found anywhere: the responses, the
// registry, GET /api/logs, the /agent/events history, /metrics, aosd's
// stdout and stderr, what /proc shows of aosd, its database files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startAosd, startReportServer, backendEntry, waitReady, TOKEN, ROOT } from './lib.mjs';

const MASTER_KEY = randomBytes(32).toString('base64');
const LLM_KEY = `sk-llm-${randomBytes(16).toString('hex')}`;
const SECRETS = { 'the bootstrap token': TOKEN, 'the master key': MASTER_KEY,
                  'the LLM API key': LLM_KEY };
const UPSTREAM_TOKEN = 'upstream-token-0123456789';

let fixture, aos;
before(async () => {
  fixture = await startReportServer();
  aos = await startAosd({
    args: ['--log-level', 'debug', '--llm-base-url', 'http://127.0.0.1:9/v1', '--llm-model', 'm'],
    env: { AOS_BOOTSTRAP_TOKEN: TOKEN, AOS_MASTER_KEY: MASTER_KEY, AOS_LLM_API_KEY: LLM_KEY },
  });
});
after(async () => {
  await aos?.cleanup();
  fixture?.kill();
});

function assertNoSecret(what, text) {
  for (const [name, value] of Object.entries(SECRETS))
    assert.ok(!String(text).includes(value), `${name} is in ${what}`);
}

async function mcpCall(name) {
  const client = new Client({ name: 'secrets-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(aos.url + '/mcp'), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  try {
    return JSON.stringify([await client.listTools(), await client.callTool({ name, arguments: {} })]);
  } finally { await client.close(); }
}

test('neither the bootstrap token, the master key nor the LLM key is found anywhere', async () => {
  const seen = []; // [what, text]
  const api = async (method, path, body) => {
    const r = await aos.api(method, path, body);
    seen.push([`${method} ${path}`, r.text]);
    return r;
  };
  assert.equal((await api('POST', '/mcp/registry', backendEntry('everything', 'everything', {
    env: { ENTRY_VAR: 'entry-value' },
  }))).status, 201);
  assert.equal((await api('POST', '/mcp/registry', {
    name: 'report', url: `http://127.0.0.1:${fixture.port}/mcp`,
    headers: { 'X-Entry': 'entry-header' }, auth_token: UPSTREAM_TOKEN,
  })).status, 201);
  await waitReady(aos, 'everything');
  await waitReady(aos, 'report');

  // what the stdio child runs with
  const env = JSON.parse((await api('POST', '/mcp/call', { server: 'everything', tool: 'get-env' })).body.content[0].text);
  assert.equal(env.ENTRY_VAR, 'entry-value');
  assert.deepEqual(Object.keys(env).filter((k) => k.startsWith('AOS_')), []);
  // what the HTTP server was sent: the entry's own token and headers
  const rep = JSON.parse((await api('POST', '/mcp/call', { server: 'report', tool: 'report' })).body.content[0].text);
  assert.equal(rep.headers.authorization, `Bearer ${UPSTREAM_TOKEN}`);
  assert.equal(rep.headers['x-entry'], 'entry-header');
  seen.push(['the stdio child\'s environment', JSON.stringify(env)], ['the HTTP server\'s report', JSON.stringify(rep)]);

  // over MCP as well
  seen.push(['MCP get-env', await mcpCall('everything__get-env')], ['MCP report', await mcpCall('report__report')]);
  // failures: errors, tool.error events, an anomaly
  for (let i = 0; i < 4; i++) await api('POST', '/mcp/call', { server: 'report', tool: 'no-such-tool' });
  await api('POST', '/mcp/call', { server: 'everything', tool: 'get-env', args: { x: 1 } });

  await api('GET', '/mcp/registry');
  await api('GET', '/mcp/registry/report');
  await api('GET', '/metrics');
  await api('GET', '/agent/events/history?limit=500');
  await api('GET', '/audit/logs');
  // every log entry, page by page
  let cursor, pages = 0;
  do {
    const r = await api('GET', `/api/logs?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200, r.text);
    cursor = r.body.next_cursor;
  } while (cursor && ++pages < 200);
  for (const f of ['environ', 'cmdline']) seen.push([`/proc/<aosd>/${f}`, readFileSync(`/proc/${aos.proc.pid}/${f}`, 'latin1')]);

  const { code } = await aos.stop();
  assert.equal(code, 0);
  seen.push(['aosd\'s stderr', aos.logs()], ['aosd\'s stdout', aos.stdout()]);
  for (const f of ['aos.db', 'aos.db-wal'].map((n) => join(aos.dataDir, n)).filter((p) => existsSync(p)))
    seen.push([f, readFileSync(f, 'latin1')]);
  for (const [what, text] of seen) assertNoSecret(what, text);
  // the search does look: the debug log is there, the token worked, the
  // LLM client was made with its key
  assert.match(aos.logs(), /"level":"debug"/);
  assert.match(aos.logs(), /LLM client: model m/);
});
