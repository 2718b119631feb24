// transports.test.mjs - remote upstreams over the transports other than
// plain-HTTP Streamable HTTP (see remote.test.mjs), each a real SDK server:
// Streamable HTTP behind TLS, verified against a CA the test makes itself
// (registry field ca_file), and the legacy HTTP+SSE transport of 2024-11-05
// (transport "sse"). The SDK client calls both through aosd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startAosd, waitReady, sleep, TOKEN } from './lib.mjs';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const UPSTREAM_TOKEN = 'legacy-upstream-token-42';

// Starts a fixture server (node, in its own process group); resolves with
// { proc, port } once it printed its port.
function startFixture(file, env) {
  const proc = spawn(process.execPath, [join(FIXTURES, file)], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${file} did not start:\n${err}`)), 15000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^(\d+)\n/);
      if (m) { clearTimeout(t); res({ proc, port: Number(m[1]) }); }
    });
    proc.on('exit', (code) => { clearTimeout(t); rej(new Error(`${file} exited ${code}:\n${err}`)); });
  });
}

function stopFixture(f) {
  if (f) try { process.kill(-f.proc.pid, 'SIGTERM'); } catch {}
}

// A CA and a server certificate for 127.0.0.1 signed by it.
function makeCertificates(dir) {
  const ossl = (...args) => execFileSync('openssl', args, { stdio: 'ignore' });
  const p = (f) => join(dir, f);
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=aos e2e test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', p('ca.key'), '-out', p('ca.pem'));
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
    '-keyout', p('server.key'), '-out', p('server.csr'));
  writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n'
    + 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-days', '1', '-extfile', p('server.ext'), '-out', p('server.pem'));
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

async function sdkClient(url, opts = {}) {
  const client = new Client({ name: 'e2e-transports', version: '1' },
    { capabilities: opts.sampling ? { sampling: {} } : {} });
  if (opts.sampling) client.setRequestHandler(CreateMessageRequestSchema, opts.sampling);
  await client.connect(new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  return client;
}

// Polls GET /mcp/registry/:name until pred(health) holds.
async function waitHealth(aos, name, pred, timeoutMs = 20000) {
  const t0 = Date.now();
  let h;
  while (Date.now() - t0 < timeoutMs) {
    h = (await aos.api('GET', `/mcp/registry/${name}`)).body?.health;
    if (h && pred(h)) return h;
    await sleep(100);
  }
  throw new Error(`server ${name}: ${JSON.stringify(h)}`);
}

let aos, dir, certs, tlsServer, legacyServer;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aos-transports-'));
  certs = makeCertificates(dir);
  tlsServer = await startFixture('https-server.mjs', { TLS_CERT: certs.cert, TLS_KEY: certs.key });
  legacyServer = await startFixture('legacy-sse-server.mjs', { TOKEN: UPSTREAM_TOKEN });
  aos = await startAosd();
});
after(async () => {
  await aos?.cleanup();
  stopFixture(tlsServer);
  stopFixture(legacyServer);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('Streamable HTTP over TLS, verified with the per-server CA bundle', async () => {
  const url = `https://127.0.0.1:${tlsServer.port}/mcp`;
  const r = await aos.api('POST', '/mcp/registry', { name: 'tls', transport: 'streamable-http', url, ca_file: certs.ca });
  assert.equal(r.status, 201, r.text);
  const entry = await waitReady(aos, 'tls');
  assert.equal(entry.ca_file, certs.ca);
  // the server's certificate from the handshake (CURLINFO_CERTINFO)
  const pc = entry.health.peer_cert;
  assert.ok(pc, JSON.stringify(entry.health));
  assert.match(pc.subject, /CN ?= ?127\.0\.0\.1/, pc.subject);
  assert.match(pc.issuer, /CN ?= ?aos e2e test CA/, pc.issuer);
  const notAfter = Date.parse(pc.not_after);
  assert.ok(notAfter > Date.now() && notAfter < Date.now() + 2 * 86400e3, pc.not_after); // -days 1
  assert.ok(Date.parse(pc.not_before) <= Date.now() + 60e3, pc.not_before);

  const agg = await sdkClient(`${aos.url}/mcp`);
  try {
    const res = await agg.callTool({ name: 'tls__echo', arguments: { message: 'over tls' } });
    assert.equal(res.content[0].text, 'Echo: over tls');
  } finally { await agg.close(); }
  const one = await sdkClient(`${aos.url}/mcp/servers/tls`);
  try {
    const { tools } = await one.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['echo']);
    const res = await one.callTool({ name: 'echo', arguments: { message: 'direct' } });
    assert.equal(res.content[0].text, 'Echo: direct');
  } finally { await one.close(); }
});

test('TLS without the CA bundle: not ready, and the error names the certificate', async () => {
  const url = `https://127.0.0.1:${tlsServer.port}/mcp`;
  const r = await aos.api('POST', '/mcp/registry', { name: 'untrusted', transport: 'streamable-http', url, timeout_ms: 3000 });
  assert.equal(r.status, 201, r.text);
  const h = await waitHealth(aos, 'untrusted', (x) => x.last_error);
  assert.notEqual(h.state, 'ready');
  assert.match(h.last_error, /certificate/i, h.last_error);
  const call = await aos.api('POST', '/mcp/call', { server: 'untrusted', tool: 'echo', args: { message: 'x' } });
  assert.ok([502, 503, 504].includes(call.status), call.text);
  await sleep(500);
  assert.notEqual((await aos.api('GET', '/mcp/registry/untrusted')).body.health.state, 'ready');

  // verification cannot be switched off, and a CA bundle is an absolute path
  // that only applies to remote servers
  const off = await aos.api('POST', '/mcp/registry', { name: 'insecure', url, insecure: true });
  assert.equal(off.status, 400, off.text);
  const rel = await aos.api('POST', '/mcp/registry', { name: 'relative', url, ca_file: 'ca.pem' });
  assert.equal(rel.status, 400, rel.text);
  assert.match(rel.text, /ca_file/);
  const stdio = await aos.api('POST', '/mcp/registry', { name: 'stdio-ca', command: 'true', ca_file: certs.ca });
  assert.equal(stdio.status, 400, stdio.text);
});

test('a legacy HTTP+SSE server (2024-11-05): SDK client calls through aosd', async () => {
  const url = `http://127.0.0.1:${legacyServer.port}/sse`;
  const r = await aos.api('POST', '/mcp/registry', { name: 'legacy', transport: 'sse', url, auth_token: UPSTREAM_TOKEN });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.transport, 'sse');
  assert.equal(r.body.has_auth_token, true);
  await waitReady(aos, 'legacy');

  const call = await aos.api('POST', '/mcp/call', { server: 'legacy', tool: 'echo', args: { message: 'rest' } });
  assert.equal(call.status, 200, call.text);
  assert.equal(call.body.content[0].text, 'Echo: rest');

  const sampling = async () => ({ model: 'm', role: 'assistant', content: { type: 'text', text: 'from-the-client' } });
  const agg = await sdkClient(`${aos.url}/mcp`, { sampling });
  try {
    const res = await agg.callTool({ name: 'legacy__echo', arguments: { message: 'aggregated' } });
    assert.equal(res.content[0].text, 'Echo: aggregated');
    // a server->client request travels up the legacy stream and back by POST
    const s = await agg.callTool({ name: 'legacy__sample', arguments: {} });
    assert.equal(s.content[0].text, 'sampled: from-the-client');
  } finally { await agg.close(); }
  const one = await sdkClient(`${aos.url}/mcp/servers/legacy`);
  try {
    assert.equal(one.getServerVersion().name, 'legacy-sse');
    const res = await one.callTool({ name: 'echo', arguments: { message: 'direct' } });
    assert.equal(res.content[0].text, 'Echo: direct');
  } finally { await one.close(); }
});
