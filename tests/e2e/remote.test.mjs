// remote.test.mjs - upstreams over Streamable HTTP (server-everything's own
// HTTP mode on loopback) and aosd itself serving HTTPS with a certificate
// made by the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startAosd, waitReady, sleep, TOOLS, TOKEN } from './lib.mjs';

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

let aos, remote, port;
before(async () => {
  port = await freePort();
  remote = spawn(join(TOOLS, 'mcp-server.sh'), ['everything', 'http'], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'ignore'], detached: true,
  });
  for (let i = 0; i < 300; i++) {
    try { await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'GET' }); break; } catch { await sleep(100); }
  }
  aos = await startAosd();
});
after(async () => {
  await aos?.cleanup();
  if (remote) try { process.kill(-remote.pid, 'SIGTERM'); } catch {}
});

test('a Streamable HTTP upstream: REST call, SDK client with progress and sampling', async () => {
  const r = await aos.api('POST', '/mcp/registry', { name: 'remote', transport: 'streamable-http', url: `http://127.0.0.1:${port}/mcp` });
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'remote');
  const call = await aos.api('POST', '/mcp/call', { server: 'remote', tool: 'echo', args: { message: 'over http' } });
  assert.equal(call.status, 200, call.text);
  assert.equal(call.body.content[0].text, 'Echo: over http');

  const client = new Client({ name: 'e2e', version: '1' }, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    model: 'm', role: 'assistant', content: { type: 'text', text: 'remote-sampled' },
  }));
  await client.connect(new StreamableHTTPClientTransport(new URL(`${aos.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  try {
    const seen = [];
    const lr = await client.callTool({ name: 'remote__trigger-long-running-operation', arguments: { duration: 0.4, steps: 2 } },
      undefined, { onprogress: (p) => seen.push(p.progress) });
    assert.match(lr.content[0].text, /completed/);
    assert.deepEqual(seen, [1, 2]);
    const s = await client.callTool({ name: 'remote__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } });
    assert.match(JSON.stringify(s), /remote-sampled/);
  } finally { await client.close(); }
});

test('an unreachable remote: clear errors, no hang', async () => {
  const dead = await freePort();
  const r = await aos.api('POST', '/mcp/registry', { name: 'dead', transport: 'streamable-http', url: `http://127.0.0.1:${dead}/mcp`, timeout_ms: 2000 });
  assert.equal(r.status, 201, r.text);
  const t0 = Date.now();
  const call = await aos.api('POST', '/mcp/call', { server: 'dead', tool: 'echo', args: {} });
  assert.ok([502, 503, 504].includes(call.status), call.text);
  assert.ok(Date.now() - t0 < 5000);
  const h = (await aos.api('GET', '/mcp/registry/dead')).body.health;
  assert.notEqual(h.state, 'ready');
  assert.ok(h.last_error, JSON.stringify(h));
});

test('aosd serves HTTPS with a configured certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aos-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const tls = await startAosd({ args: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')] });
    try {
      assert.match(tls.url, /^https:/);
      const out = execFileSync('curl', ['-s', '--cacert', join(dir, 'cert.pem'), `${tls.url}/healthz`], { encoding: 'utf8' });
      assert.equal(JSON.parse(out).status, 'ok');
      const call = execFileSync('curl', ['-s', '--cacert', join(dir, 'cert.pem'), '-H', `Authorization: Bearer ${TOKEN}`,
        '-H', 'Content-Type: application/json', '-d', '{"server":"aos","tool":"echo","args":{"message":"tls"}}', `${tls.url}/mcp/call`], { encoding: 'utf8' });
      assert.equal(JSON.parse(call).content[0].text, 'Echo: tls');
      // plain HTTP to the HTTPS port does not get an answer
      const plain = spawnSyncStatus('curl', ['-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', tls.url.replace('https', 'http') + '/healthz']);
      assert.notEqual(plain, '200');
    } finally { await tls.cleanup(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

function spawnSyncStatus(cmd, args) {
  try { return execFileSync(cmd, args, { encoding: 'utf8' }); } catch (e) { return String(e.stdout || 'error'); }
}
