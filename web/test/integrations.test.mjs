// integrations.test.mjs - G2 on the Integrations page in a real browser
// against a real aosd: an MCP server over https on loopback with a
// self-signed certificate this test makes with openssl, added from the page
// with that certificate as its CA bundle; its transport and TLS details
// (verification, the CA bundle, the certificate's subject, issuer and
// expiry as the handshake gave them, checked against the API and the
// certificate); an entry with a token, a header and a URL with credentials
// whose secrets never reach the page; its other fields edited from the
// page (PATCH: the fields not changed, secrets included, stay); Chinese,
// axe-core, no console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setup, axe, checkLanguage, setLang, SHOTS, ROOT, join } from './lib.mjs';
import { backendEntry } from '../../tests/e2e/lib.mjs';

let env, owner, dir, cert, tls;

function startHttps(certFile, keyFile) {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, [join(ROOT, 'tests/e2e/fixtures/https-server.mjs')], {
      env: { ...process.env, TLS_CERT: certFile, TLS_KEY: keyFile, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let out = '', err = '';
    proc.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => rej(new Error(`https-server did not start:\n${err}`)), 15000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^(\d+)\n/);
      if (m) { clearTimeout(t); res({ proc, port: Number(m[1]) }); }
    });
    proc.on('exit', (code) => { clearTimeout(t); rej(new Error(`https-server exited ${code}:\n${err}`)); });
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aos-ui-tls-'));
  cert = join(dir, 'cert.pem');
  // self-signed, for 127.0.0.1 only, valid 2 days
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/O=AOS UI test/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', cert], { stdio: 'ignore' });
  tls = await startHttps(cert, join(dir, 'key.pem'));
  env = await setup();
  owner = await env.newPage();
});
after(async () => {
  await env?.close();
  if (tls) try { process.kill(-tls.proc.pid, 'SIGTERM'); } catch {}
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const waitEntry = async (name, pred) => {
  for (let i = 0; i < 200; i++) {
    const r = (await env.aos.api('GET', `/mcp/registry/${name}`)).body;
    if (pred(r)) return r;
    await new Promise((x) => setTimeout(x, 100));
  }
  throw new Error(`${name} never got there`);
};

test('G2: an https server added from the page; its transport, TLS and certificate details', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/integrations');
  await page.locator('tr[data-server="aos"]').waitFor();
  // a built-in server: what it is, nothing to edit, no TLS
  await page.locator('tr[data-server="aos"] button.link').click();
  const b = page.locator('[data-testid="server-details"][data-server="aos"]');
  assert.equal(await b.locator('[data-testid="d-target"]').innerText(), 'builtin:aos');
  assert.equal(await b.locator('[data-testid="d-tls"], [data-testid="edit-server"]').count(), 0);
  await page.locator('tr[data-server="aos"] button.link').click();
  const url = `https://127.0.0.1:${tls.port}/mcp`;
  await page.locator('[data-testid="add-form"] input[name="kind"]').nth(1).check();
  await page.fill('[data-testid="add-name"]', 'tls');
  await page.fill('[data-testid="add-url"]', url);
  await page.fill('[data-testid="add-ca"]', cert);
  await page.click('[data-testid="add-submit"]');
  const row = page.locator('tr[data-server="tls"]');
  await row.locator('[data-testid="health"]', { hasText: 'healthy' }).waitFor({ timeout: 30000 });
  const api = await waitEntry('tls', (r) => r.health?.peer_cert);
  assert.equal(api.ca_file, cert);
  await row.locator('button.link').click();
  const d = page.locator('[data-testid="server-details"][data-server="tls"]');
  await d.locator('[data-testid="d-subject"]').waitFor();
  assert.equal(await d.locator('[data-testid="d-transport"]').innerText(), 'streamable-http');
  assert.equal(await d.locator('[data-testid="d-url"]').innerText(), url);
  assert.match(await d.locator('[data-testid="d-tls"]').innerText(), /verified/);
  assert.equal(await d.locator('[data-testid="d-ca"]').innerText(), cert);
  // the certificate as the handshake gave it: the page shows the API's,
  // and the API's is the one openssl made
  const pc = api.health.peer_cert;
  assert.equal(await d.locator('[data-testid="d-subject"]').innerText(), pc.subject);
  assert.equal(await d.locator('[data-testid="d-issuer"]').innerText(), pc.issuer);
  assert.match(pc.subject, /CN ?= ?127\.0\.0\.1/);
  assert.match(pc.subject, /AOS UI test/);
  assert.equal(pc.issuer, pc.subject, 'self-signed');
  const end = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-enddate'], { encoding: 'utf8' }).trim().replace(/^notAfter=/, '');
  assert.equal(Date.parse(pc.not_after), Date.parse(end), `${pc.not_after} vs ${end}`);
  const exp = await d.locator('[data-testid="d-expiry"]').innerText();
  assert.ok(exp.includes(pc.not_after.replace(/\s+/g, ' ')), exp);
  assert.match(exp, /days to expiry: [12]\b/);
  await axe(page, '/integrations, an https server\'s details');
  await page.screenshot({ path: join(SHOTS, 'integrations-en-light-tls.png'), fullPage: true });
  noProblems();
});

test('G2: the secrets of an entry never reach the page; its fields edited, the rest kept', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  const url = `https://127.0.0.1:${tls.port}/mcp?key=q-SECRET-3`;
  const r = await aos.api('POST', '/mcp/registry', {
    name: 'creds', url, ca_file: cert, auth_token: 'tok-SECRET-1', headers: { 'X-Api-Key': 'hdr-SECRET-2' }, timeout_ms: 7000,
  });
  assert.equal(r.status, 201, r.text);
  await waitEntry('creds', (x) => x.health?.state === 'ready');
  await page.goto(env.aos.url + '/integrations');
  await page.locator('tr[data-server="creds"] button.link').click();
  const d = page.locator('[data-testid="server-details"][data-server="creds"]');
  await d.waitFor();
  assert.match(await d.locator('[data-testid="d-token"]').innerText(), /set/);
  assert.match(await d.innerText(), /X-Api-Key/);
  assert.equal(await d.locator('[data-testid="d-timeout"]').innerText(), '7000 ms');
  // edit: description, timeout and one limit; the rest stays
  await d.locator('[data-testid="edit-server"]').click();
  const f = d.locator('[data-testid="edit-form"]');
  assert.equal(await f.locator('input[name="auth_token"]').inputValue(), '', 'a secret is never filled in');
  await f.locator('input[name="description"]').fill('the edited one');
  await f.locator('input[name="timeout_ms"]').fill('9000');
  await f.locator('summary').click();
  await f.locator('input[name="limit-rate_per_s"]').fill('25');
  await axe(page, '/integrations, the edit form');
  const html = await page.content();
  assert.doesNotMatch(html, /SECRET/, 'no secret in the page');
  await f.locator('[data-testid="edit-save"]').click();
  await d.locator('[data-testid="d-timeout"]', { hasText: '9000 ms' }).waitFor();
  const after = (await aos.api('GET', '/mcp/registry/creds')).body;
  assert.equal(after.description, 'the edited one');
  assert.equal(after.timeout_ms, 9000);
  assert.equal(after.limits.rate_per_s, 25);
  assert.equal(after.limits.max_concurrency, 64, 'the other limits as they were');
  assert.equal(after.has_auth_token, true);
  assert.deepEqual(after.header_names, ['X-Api-Key']);
  assert.equal(after.ca_file, cert);
  assert.equal(after.url, r.body.url, 'the URL (its stored credentials) kept');
  // the upstream still works with what was kept: a call through the gateway
  await waitEntry('creds', (x) => x.health?.state === 'ready');
  const call = await aos.api('POST', '/mcp/call', { server: 'creds', tool: 'echo', args: { message: 'still there' } });
  assert.equal(call.status, 200, call.text);
  assert.doesNotMatch(await page.content(), /SECRET/);
  noProblems();
});

test('G2: a stdio entry: its command, env names and passthrough shown; edited, its env kept', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  const e = backendEntry('ev3', 'everything', { env: { EXAMPLE_KEY: 'env-SECRET-4' } });
  const r = await aos.api('POST', '/mcp/registry', e);
  assert.equal(r.status, 201, r.text);
  await waitEntry('ev3', (x) => x.health?.state === 'ready');
  await page.goto(env.aos.url + '/integrations');
  await page.locator('tr[data-server="ev3"] button.link').click();
  const d = page.locator('[data-testid="server-details"][data-server="ev3"]');
  await d.waitFor();
  assert.equal(await d.locator('[data-testid="d-transport"]').innerText(), 'stdio');
  assert.equal(await d.locator('[data-testid="d-command"]').innerText(), [e.command, ...e.args].join(' '));
  assert.match(await d.innerText(), /EXAMPLE_KEY/);
  assert.equal(await d.locator('[data-testid="d-tls"]').count(), 0, 'no TLS for stdio');
  await d.locator('[data-testid="edit-server"]').click();
  const f = d.locator('[data-testid="edit-form"]');
  await f.locator('textarea[name="env_passthrough"]').fill('LANG\nTZ');
  await f.locator('input[name="description"]').fill('ev3 edited');
  assert.doesNotMatch(await page.content(), /SECRET/);
  await f.locator('[data-testid="edit-save"]').click();
  await f.waitFor({ state: 'detached' });
  const after = (await aos.api('GET', '/mcp/registry/ev3')).body;
  assert.deepEqual(after.env_passthrough, ['LANG', 'TZ']);
  assert.equal(after.description, 'ev3 edited');
  assert.deepEqual(after.args, e.args);
  assert.deepEqual(after.env_keys, ['EXAMPLE_KEY'], 'the env (a secret) kept');
  await waitEntry('ev3', (x) => x.health?.state === 'ready');
  noProblems();
});

test('G2 in Chinese: no English left, axe-core', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/integrations');
  await setLang(page, 'zh-CN');
  await page.locator('tr[data-server="tls"] button.link').click();
  await page.locator('[data-testid="server-details"] [data-testid="d-subject"]').waitFor();
  await checkLanguage(page, 'zh-CN', '/integrations details');
  await axe(page, '/integrations details in zh-CN');
  await page.screenshot({ path: join(SHOTS, 'integrations-zh-CN-light-tls.png'), fullPage: true });
  await setLang(page, 'en');
  noProblems();
});
