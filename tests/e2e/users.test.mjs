// users.test.mjs - users, password logins and browser sessions end to end
// (issue 16): users created and changed by the Owner token; login and
// logout with the session cookie (its attributes); /auth/me with the
// cookie and its CSRF token; CSRF and Origin checks on state-changing
// requests; role limits of a Viewer user; SSE streams (/agent/events,
// /api/logs/stream) read with the cookie, closed at once by logout,
// disable and password change; idle and absolute expiry (short flags);
// wrong passwords, unknown names answered alike, back-off and lockout with
// Retry-After; TOTP enrolment, login with a code, a code never taken twice;
// the last Owner; bad input changing nothing; audit rows; and no password,
// session secret, CSRF token or TOTP secret in the logs, the audit log or
// the database files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { startAosd, sleep, TOKEN } from './lib.mjs';

let aos;
const PW = { admin: 'admin-Secret-pw-7731', viewer: 'viewer-Secret-pw-4412', t: 'totp-Secret-pw-9925' };
const seen = []; // secrets the server gave or took: none may appear in logs or files

before(async () => { aos = await startAosd(); });
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  for (const s of [...Object.values(PW), ...seen]) assert.ok(!logs.includes(s), 'a secret in the log');
  for (const f of readdirSync(aos.dataDir)) {
    if (!f.startsWith('aos.db')) continue;
    const bytes = readFileSync(join(aos.dataDir, f)).toString('latin1');
    for (const s of [...Object.values(PW), ...seen]) assert.ok(!bytes.includes(s), `a secret in ${f}`);
  }
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

// A request with a cookie session (no token); returns {status, headers, body, text}.
async function req(target, method, path, { cookie, csrf, origin, body, headers = {} } = {}) {
  const h = { ...headers };
  if (cookie) h.Cookie = cookie;
  if (csrf) h['X-CSRF-Token'] = csrf;
  if (origin) h.Origin = origin;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(target.url + path, {
    method, headers: h, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, body: json, text };
}

async function login(target, name, password, extra = {}) {
  const r = await req(target, 'POST', '/auth/login', { body: { name, password, ...extra } });
  if (r.status !== 200) return r;
  const set = r.headers.get('set-cookie');
  const m = set.match(/^aos_session=([^;]+)/);
  seen.push(m[1], r.body.csrf_token);
  return { ...r, cookie: `aos_session=${m[1]}`, csrf: r.body.csrf_token, set };
}

async function mkUser(target, body, token = TOKEN) {
  const r = await target.api('POST', '/auth/users', body, token);
  assert.equal(r.status, 201, r.text);
  return r.body;
}

// An SSE stream read with fetch and the Cookie header (node has no
// EventSource); ended resolves when the server closes it.
async function sseWithCookie(target, path, cookie) {
  const ac = new AbortController();
  const r = await fetch(target.url + path, { headers: { Cookie: cookie, Accept: 'text/event-stream' }, signal: ac.signal });
  const s = { status: r.status, type: r.headers.get('content-type') || '', text: '', close: () => ac.abort() };
  s.ended = (async () => {
    if (!r.body) return;
    const dec = new TextDecoder();
    try { for await (const chunk of r.body) s.text += dec.decode(chunk); } catch { /* aborted */ }
  })();
  return s;
}

async function within(p, ms, what) {
  let t;
  const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms); });
  try { return await Promise.race([p, timeout]); } finally { clearTimeout(t); }
}

const hotp = (key, counter) => {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const off = mac[19] & 15;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1e6).padStart(6, '0');
};
const base32decode = (s) => {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, acc = 0;
  const out = [];
  for (const c of s) {
    acc = (acc << 5) | alpha.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((acc >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
};

let admin, viewer;

test('the Owner token creates users; the list shows them without secrets', async () => {
  admin = await mkUser(aos, { name: 'Admin.One', password: PW.admin, role: 'admin' });
  assert.equal(admin.name, 'admin.one', 'names are lowercase');
  viewer = await mkUser(aos, { name: 'viewer', password: PW.viewer, role: 'viewer' });
  const l = await aos.api('GET', '/auth/users');
  assert.equal(l.status, 200, l.text);
  const names = l.body.users.map((u) => u.name).sort();
  assert.deepEqual(names, ['admin.one', 'viewer']);
  assert.doesNotMatch(l.text, /password_hash|argon|totp_secret/);
  assert.equal(l.body.users.find((u) => u.name === 'viewer').has_password, true);
  // the same name again (any case) is a conflict
  const dup = await aos.api('POST', '/auth/users', { name: 'VIEWER', password: 'another-pw-123' });
  assert.equal(dup.status, 409, dup.text);
});

test('login sets an HttpOnly SameSite=Strict cookie; /auth/me works with it; logout ends it', async () => {
  const s = await login(aos, 'ADMIN.one', PW.admin);
  assert.equal(s.status, 200, s.text);
  assert.match(s.set, /; Path=\/; /);
  assert.match(s.set, /; HttpOnly/);
  assert.match(s.set, /; SameSite=Strict/);
  assert.doesNotMatch(s.set, /Secure/, 'plain HTTP without --cookie-secure');
  assert.match(s.set, /Max-Age=43200/);
  assert.equal(s.body.user.role, 'admin');
  assert.equal(typeof s.body.csrf_token, 'string');
  const me = await req(aos, 'GET', '/auth/me', { cookie: s.cookie });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.body.kind, 'user');
  assert.equal(me.body.id, admin.id);
  assert.equal(me.body.csrf_token, s.csrf);
  assert.ok(me.body.session.id.startsWith('ses_'));
  // a GET needs no CSRF token; an admin route works with the cookie
  const l = await req(aos, 'GET', '/auth/users', { cookie: s.cookie });
  assert.equal(l.status, 200, l.text);
  const out = await req(aos, 'POST', '/auth/logout', { cookie: s.cookie, csrf: s.csrf });
  assert.equal(out.status, 200, out.text);
  assert.match(out.headers.get('set-cookie'), /^aos_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict/);
  const again = await req(aos, 'GET', '/auth/me', { cookie: s.cookie });
  assert.equal(again.status, 401, again.text);
  // forged and malformed cookies
  for (const cookie of ['aos_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'aos_session=short', 'aos_session=a; aos_session=b']) {
    const r = await req(aos, 'GET', '/auth/me', { cookie });
    assert.equal(r.status, 401, `${cookie}: ${r.text}`);
  }
  // a cookie that is not ours is no session: 401 as without one
  const other = await req(aos, 'GET', '/auth/me', { cookie: 'theme=dark' });
  assert.equal(other.status, 401);
  const audit = await aos.api('GET', '/audit/logs');
  const actions = audit.body.items.map((x) => x.action);
  assert.ok(actions.includes('auth.login') && actions.includes('auth.logout') && actions.includes('auth.user.create'), audit.text.slice(0, 400));
});

// Requests on one kept-alive connection (an http.Agent of one socket):
// {status, body, port} where port is the client's end, to see the reuse.
function keptAlive(target) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const u = new URL(target.url);
  const send = (method, path, headers = {}) => new Promise((resolve, reject) => {
    const r = http.request({ host: u.hostname, port: u.port, method, path, agent, headers }, (res) => {
      let text = '';
      const port = res.socket.localPort;
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text, port }));
    });
    r.on('error', reject);
    r.end();
  });
  return { send, close: () => agent.destroy() };
}

test('a kept-alive connection reuses its session lookup, and logout, disable and a new cookie still count at once', async () => {
  const u = await mkUser(aos, { name: 'keeper', password: 'keeper-Secret-pw-1', role: 'viewer' });
  const c = keptAlive(aos);
  try {
    const a = await login(aos, 'keeper', 'keeper-Secret-pw-1');
    const b = await login(aos, 'keeper', 'keeper-Secret-pw-1');
    const first = await c.send('GET', '/auth/me', { Cookie: a.cookie });
    assert.equal(first.status, 200, first.text);
    const same = await c.send('GET', '/auth/me', { Cookie: a.cookie });
    assert.equal(same.status, 200);
    assert.equal(same.port, first.port, 'one connection');
    // another cookie on the same connection is its own session
    const other = await c.send('GET', '/auth/me', { Cookie: b.cookie });
    assert.equal(other.status, 200);
    assert.notEqual(JSON.parse(other.text).session.id, JSON.parse(first.text).session.id);
    // a forged cookie after a good one (a 401 may close the connection)
    const forged = await c.send('GET', '/auth/me', { Cookie: `aos_session=${'A'.repeat(43)}` });
    assert.equal(forged.status, 401, forged.text);
    const warm = await c.send('GET', '/auth/me', { Cookie: a.cookie });
    assert.equal(warm.status, 200);
    assert.equal((await c.send('GET', '/auth/me', { Cookie: a.cookie })).port, warm.port);
    // logout from another connection: the kept-alive one is refused at once
    const out = await req(aos, 'POST', '/auth/logout', { cookie: a.cookie, csrf: a.csrf });
    assert.equal(out.status, 200, out.text);
    const gone = await c.send('GET', '/auth/me', { Cookie: a.cookie });
    assert.equal(gone.status, 401, gone.text);
    assert.equal(gone.port, warm.port, 'still the same connection');
    // the user disabled: its other session ends at once too
    const bw = await c.send('GET', '/auth/me', { Cookie: b.cookie });
    assert.equal(bw.status, 200);
    assert.equal((await c.send('GET', '/auth/me', { Cookie: b.cookie })).port, bw.port);
    assert.equal((await aos.api('PATCH', `/auth/users/${u.id}`, { disabled: true })).status, 200);
    const off = await c.send('GET', '/auth/me', { Cookie: b.cookie });
    assert.equal(off.status, 401, off.text);
    assert.equal(off.port, bw.port, 'still the same connection');
  } finally {
    c.close();
  }
});

test("a browser session's tool call may use a runtime secret its user may use", async () => {
  const u = await mkUser(aos, { name: 'secret.user', password: 'secret-user-pw-1', role: 'admin' });
  assert.equal((await aos.api('PUT', '/config/runtime/USERS_HDR', { value: 'users-header-value-1' })).status < 300, true);
  const s = await login(aos, 'secret.user', 'secret-user-pw-1');
  // a name that does not resolve: the secret is opened before the look-up
  const call = (cookie, csrf) => req(aos, 'POST', '/mcp/call', { cookie, csrf, origin: aos.url,
    body: { server: 'http', tool: 'get', args: { url: 'http://users.invalid/', headers: { 'X-K': { secret: 'USERS_HDR' } } } } });
  const r = await call(s.cookie, s.csrf);
  assert.equal(r.status, 200, r.text);
  assert.doesNotMatch(r.text, /USERS_HDR|users-header-value/);
  // its user disabled: the session ends, and so does the call
  assert.equal((await aos.api('PATCH', `/auth/users/${u.id}`, { disabled: true })).status, 200);
  assert.equal((await call(s.cookie, s.csrf)).status, 401);
});

test('CSRF: a state-changing cookie request needs the token and this origin; bearer requests need neither', async () => {
  const s = await login(aos, 'admin.one', PW.admin);
  const body = { name: 'csrf-victim', password: 'whatever-pw-123' };
  const count = async () => (await aos.api('GET', '/auth/users')).body.users.length;
  const n0 = await count();
  const none = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, body });
  assert.equal(none.status, 403, none.text);
  assert.equal(none.body.error.code, 'csrf_failed');
  const wrong = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, csrf: s.csrf.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')), body });
  assert.equal(wrong.status, 403, wrong.text);
  assert.equal(wrong.body.error.code, 'csrf_failed');
  const evil = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, csrf: s.csrf, origin: 'http://evil.example', body });
  assert.equal(evil.status, 403, evil.text);
  assert.equal(evil.body.error.code, 'csrf_failed');
  const nul = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, csrf: s.csrf, origin: 'null', body });
  assert.equal(nul.status, 403, nul.text);
  assert.equal(await count(), n0, 'refused requests changed nothing');
  // the CSRF token of another session does not do
  const s2 = await login(aos, 'viewer', PW.viewer);
  const cross = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, csrf: s2.csrf, body });
  assert.equal(cross.status, 403, cross.text);
  const ok = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, csrf: s.csrf, origin: aos.url, body });
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.body.created_by, `user:${admin.id}`);
  assert.equal(await count(), n0 + 1);
  const del = await aos.api('DELETE', `/auth/users/${ok.body.id}`); // a token: no CSRF
  assert.equal(del.status, 200, del.text);
  // a login from another origin is refused too
  const l = await req(aos, 'POST', '/auth/login', { origin: 'http://evil.example', body: { name: 'viewer', password: PW.viewer } });
  assert.equal(l.status, 403, l.text);
});

test('a Viewer user reads but may not change anything, nor give itself more', async () => {
  const s = await login(aos, 'viewer', PW.viewer);
  assert.equal((await req(aos, 'GET', '/api/jobs', { cookie: s.cookie })).status, 200);
  const mk = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, csrf: s.csrf, body: { name: 'x1', password: 'whatever-pw-123' } });
  assert.equal(mk.status, 403, mk.text);
  assert.equal(mk.body.error.code, 'forbidden');
  const tok = await req(aos, 'POST', '/auth/tokens', { cookie: s.cookie, csrf: s.csrf, body: { name: 't' } });
  assert.equal(tok.status, 403, tok.text);
  const pub = await req(aos, 'POST', '/api/events', { cookie: s.cookie, csrf: s.csrf, body: { type: 'x.y', data: {} } });
  assert.equal(pub.status, 403, pub.text);
  // a grant on a user (principal user:<id>) takes effect on its open session
  const g = await aos.api('POST', '/rbac/grants', { principal: `user:${viewer.id}`, role: 'admin', resource: 'system' });
  assert.equal(g.status, 201, g.text);
  assert.equal((await req(aos, 'GET', '/auth/users', { cookie: s.cookie })).status, 200);
  assert.equal((await aos.api('DELETE', `/rbac/grants/${g.body.id}`)).status, 200);
  assert.equal((await req(aos, 'GET', '/auth/users', { cookie: s.cookie })).status, 403);
});

test('an Admin user may not create or raise an Owner, nor change one', async () => {
  const s = await login(aos, 'admin.one', PW.admin);
  const mk = await req(aos, 'POST', '/auth/users', { cookie: s.cookie, csrf: s.csrf, body: { name: 'boss', password: 'whatever-pw-123', role: 'owner' } });
  assert.equal(mk.status, 403, mk.text);
  const up = await req(aos, 'PATCH', `/auth/users/${viewer.id}`, { cookie: s.cookie, csrf: s.csrf, body: { role: 'owner' } });
  assert.equal(up.status, 403, up.text);
  const self = await req(aos, 'PATCH', `/auth/users/${admin.id}`, { cookie: s.cookie, csrf: s.csrf, body: { role: 'owner' } });
  assert.equal(self.status, 403, self.text);
  const owner = await mkUser(aos, { name: 'owner2', password: 'owner2-pw-12345', role: 'owner' });
  const ch = await req(aos, 'PATCH', `/auth/users/${owner.id}`, { cookie: s.cookie, csrf: s.csrf, body: { disabled: true } });
  assert.equal(ch.status, 403, ch.text);
  const rm = await req(aos, 'DELETE', `/auth/users/${owner.id}`, { cookie: s.cookie, csrf: s.csrf });
  assert.equal(rm.status, 403, rm.text);
  assert.equal((await aos.api('DELETE', `/auth/users/${owner.id}`)).status, 200);
});

test('SSE with the cookie; logout, disable and a new password close the open streams at once', async () => {
  const s1 = await login(aos, 'viewer', PW.viewer);
  const ev = await sseWithCookie(aos, '/agent/events', s1.cookie);
  assert.equal(ev.status, 200);
  assert.match(ev.type, /text\/event-stream/);
  const logs = await sseWithCookie(aos, '/api/logs/stream', s1.cookie);
  assert.equal(logs.status, 200);
  const s2 = await login(aos, 'viewer', PW.viewer);
  const ev2 = await sseWithCookie(aos, '/agent/events', s2.cookie);
  // logging out one session ends its streams, not the other session's
  assert.equal((await req(aos, 'POST', '/auth/logout', { cookie: s1.cookie, csrf: s1.csrf })).status, 200);
  await within(ev.ended, 5000, 'the events stream closed by logout');
  await within(logs.ended, 5000, 'the logs stream closed by logout');
  const still = await Promise.race([ev2.ended.then(() => 'ended'), sleep(300).then(() => 'open')]);
  assert.equal(still, 'open');
  // disabling the user ends its other sessions and their streams
  const d = await aos.api('PATCH', `/auth/users/${viewer.id}`, { disabled: true });
  assert.equal(d.status, 200, d.text);
  await within(ev2.ended, 5000, 'the stream closed by disable');
  assert.equal((await req(aos, 'GET', '/auth/me', { cookie: s2.cookie })).status, 401);
  const refused = await login(aos, 'viewer', PW.viewer);
  assert.equal(refused.status, 401, 'a disabled user cannot log in');
  assert.equal((await aos.api('PATCH', `/auth/users/${viewer.id}`, { disabled: false })).status, 200);
  // a new password ends the sessions too; the old one no longer works
  const s3 = await login(aos, 'viewer', PW.viewer);
  assert.equal(s3.status, 200, s3.text);
  const ev3 = await sseWithCookie(aos, '/agent/events', s3.cookie);
  PW.viewer2 = 'viewer-Next-pw-5531';
  assert.equal((await aos.api('PATCH', `/auth/users/${viewer.id}`, { password: PW.viewer2 })).status, 200);
  await within(ev3.ended, 5000, 'the stream closed by a new password');
  assert.equal((await req(aos, 'GET', '/auth/me', { cookie: s3.cookie })).status, 401);
  assert.equal((await login(aos, 'viewer', PW.viewer2)).status, 200);
});

test('a user changes its own password with the current one; its sessions end', async () => {
  const u = await mkUser(aos, { name: 'hal', password: 'hal-pw-1234567', role: 'viewer' });
  const s = await login(aos, 'hal', 'hal-pw-1234567');
  const other = await login(aos, 'hal', 'hal-pw-1234567');
  const ev = await sseWithCookie(aos, '/agent/events', other.cookie);
  // a token has no current password to give
  assert.equal((await aos.api('POST', '/auth/password', { current: 'x', password: 'whatever-1234' })).status, 400);
  for (const b of [{ current: 'hal-pw-1234567' }, { current: 'hal-pw-1234567', password: 'short' }, { current: 1, password: 'long-enough-1' }, { current: 'hal-pw-1234567', password: 'long-enough-1', x: 1 }]) {
    const r = await req(aos, 'POST', '/auth/password', { cookie: s.cookie, csrf: s.csrf, body: b });
    assert.equal(r.status, 400, `${JSON.stringify(b)}: ${r.text}`);
  }
  const nocsrf = await req(aos, 'POST', '/auth/password', { cookie: s.cookie, body: { current: 'hal-pw-1234567', password: 'hal-new-pw-8888' } });
  assert.equal(nocsrf.status, 403, nocsrf.text);
  const wrong = await req(aos, 'POST', '/auth/password', { cookie: s.cookie, csrf: s.csrf, body: { current: 'not-it-at-all', password: 'hal-new-pw-8888' } });
  assert.equal(wrong.status, 403, wrong.text);
  assert.equal((await req(aos, 'GET', '/auth/me', { cookie: s.cookie })).status, 200, 'a wrong current password ends nothing');
  PW.hal = 'hal-new-pw-9999';
  const ok = await req(aos, 'POST', '/auth/password', { cookie: s.cookie, csrf: s.csrf, body: { current: 'hal-pw-1234567', password: PW.hal } });
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.headers.get('set-cookie'), /^aos_session=; Path=\/; Max-Age=0/);
  await within(ev.ended, 5000, 'the other session\'s stream closed');
  assert.equal((await req(aos, 'GET', '/auth/me', { cookie: s.cookie })).status, 401);
  assert.equal((await req(aos, 'GET', '/auth/me', { cookie: other.cookie })).status, 401);
  assert.equal((await login(aos, 'hal', 'hal-pw-1234567')).status, 401);
  assert.equal((await login(aos, 'hal', PW.hal)).status, 200);
  const audit = await aos.api('GET', '/audit/logs');
  assert.ok(audit.body.items.some((x) => x.action === 'auth.password.change' && x.actor === `user:${u.id}`), audit.text.slice(0, 300));
});

test('bad input gets a clear 400 (or 413) and changes nothing', async () => {
  const before = (await aos.api('GET', '/auth/users')).text;
  const bad = [
    { name: 'u1', password: 'long-enough-pw', color: 'red' },
    { name: 'u1' },
    { name: 'u1', password: 'short' },
    { name: 'u1', password: 12345678901 },
    { name: '', password: 'long-enough-pw' },
    { name: 'a b', password: 'long-enough-pw' },
    { name: 'x'.repeat(65), password: 'long-enough-pw' },
    { name: 'u1', password: 'long-enough-pw', role: 'god' },
    { name: 'u1', password: 'long-enough-pw', disabled: 'yes' },
    { name: 'u1', password: 'long-enough-pw', grants: [{ role: 'viewer', resource: 'bad*pattern' }] },
    { name: 'u1', password: 'long-enough-pw', grants: 'all' },
    [1, 2],
  ];
  for (const b of bad) {
    const r = await aos.api('POST', '/auth/users', b);
    assert.equal(r.status, 400, `${JSON.stringify(b).slice(0, 80)}: ${r.text}`);
    assert.equal(typeof r.body.error.message, 'string');
  }
  const nojson = await aos.api('POST', '/auth/users', '{"name":');
  assert.equal(nojson.status, 400);
  const big = await aos.api('POST', '/auth/users', { name: 'u1', password: 'p'.repeat(70000) });
  assert.equal(big.status, 413, big.text);
  for (const b of [{ colour: 1 }, {}, { role: 'nobody' }, { password: 'short' }, { disabled: 1 }]) {
    const r = await aos.api('PATCH', `/auth/users/${viewer.id}`, b);
    assert.equal(r.status, 400, `${JSON.stringify(b)}: ${r.text}`);
  }
  assert.equal((await aos.api('PATCH', '/auth/users/usr_none', { disabled: true })).status, 404);
  for (const b of [{ name: 'viewer' }, { name: 'viewer', password: 'x', extra: 1 }, { name: 'viewer', password: 7 }, { name: 'viewer', password: 'x', totp: 123456 }]) {
    const r = await req(aos, 'POST', '/auth/login', { body: b });
    assert.equal(r.status, 400, `${JSON.stringify(b)}: ${r.text}`);
  }
  assert.equal((await aos.api('GET', '/auth/users')).text, before);
});

test('TOTP: enrol with a first code; then login needs a code, and a code is taken once', async () => {
  const u = await mkUser(aos, { name: 'totp.user', password: PW.t, role: 'admin' });
  const s = await login(aos, 'totp.user', PW.t);
  const me = async (cookie) => (await req(aos, 'GET', '/auth/me', { cookie })).body.totp_enabled;
  assert.equal(await me(s.cookie), false);
  // only the user itself enrols (the Owner token may not read its secret)
  assert.equal((await aos.api('POST', `/auth/users/${u.id}/totp`)).status, 403);
  const e = await req(aos, 'POST', `/auth/users/${u.id}/totp`, { cookie: s.cookie, csrf: s.csrf });
  assert.equal(e.status, 200, e.text);
  assert.match(e.body.uri, /^otpauth:\/\/totp\/AOS:totp\.user\?secret=[A-Z2-7]+&issuer=AOS/);
  seen.push(e.body.secret);
  const key = base32decode(e.body.secret);
  assert.equal(key.length, 20);
  const step = Math.floor(Date.now() / 30000);
  const wrong = await req(aos, 'POST', `/auth/users/${u.id}/totp/confirm`, { cookie: s.cookie, csrf: s.csrf, body: { code: hotp(key, step + 5) } });
  assert.equal(wrong.status, 400, wrong.text);
  const ok = await req(aos, 'POST', `/auth/users/${u.id}/totp/confirm`, { cookie: s.cookie, csrf: s.csrf, body: { code: hotp(key, step) } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(await me(s.cookie), true, '/auth/me says two-factor is on');
  const need = await login(aos, 'totp.user', PW.t);
  assert.equal(need.status, 401);
  assert.match(need.body.error.message, /TOTP code is required/);
  // the step of the confirmation is used: the next one is accepted once
  const used = await login(aos, 'totp.user', PW.t, { totp: hotp(key, step) });
  assert.equal(used.status, 401, used.text);
  const next = hotp(key, step + 1);
  const good = await login(aos, 'totp.user', PW.t, { totp: next });
  assert.equal(good.status, 200, good.text);
  const replay = await login(aos, 'totp.user', PW.t, { totp: next });
  assert.equal(replay.status, 401, replay.text);
  const l = await aos.api('GET', '/auth/users');
  assert.equal(l.body.users.find((x) => x.id === u.id).totp_enabled, true);
  assert.doesNotMatch(l.text, new RegExp(e.body.secret));
  // an Admin (here the Owner token) may turn it off for a lost device
  assert.equal((await aos.api('DELETE', `/auth/users/${u.id}/totp`)).status, 200);
  const after = await login(aos, 'totp.user', PW.t);
  assert.equal(after.status, 200);
  assert.equal(await me(after.cookie), false);
  const audit = await aos.api('GET', '/audit/logs');
  assert.doesNotMatch(audit.text, new RegExp(`${e.body.secret}|${PW.t}`));
});

test('wrong passwords and unknown names get the same answer; failures back off, then lock, with Retry-After', async () => {
  const b = await startAosd({ args: ['--login-lockout-after', '4', '--login-lockout', '3'] });
  try {
    await mkUser(b, { name: 'carol', password: 'carol-pw-123456' });
    await mkUser(b, { name: 'dave', password: 'dave-pw-1234567' });
    // the same answer whether the user exists or not, after the same work
    // (both hash the password): the fastest of three of each, a success
    // between rounds forgetting the failures
    const tu = [], tw = [];
    for (let i = 0; i < 3; i++) {
      let t0 = Date.now();
      const unknown = await req(b, 'POST', '/auth/login', { body: { name: 'nobody', password: 'carol-pw-123456' } });
      tu.push(Date.now() - t0);
      t0 = Date.now();
      const wrong = await req(b, 'POST', '/auth/login', { body: { name: 'carol', password: 'not-her-password' } });
      tw.push(Date.now() - t0);
      assert.equal(unknown.status, 401, unknown.text);
      assert.equal(wrong.status, 401, wrong.text);
      assert.deepEqual(unknown.body, wrong.body);
      assert.equal((await login(b, 'carol', 'carol-pw-123456')).status, 200);
    }
    const mu = Math.min(...tu), mw = Math.min(...tw);
    assert.ok(mu * 3 > mw && mw * 3 > mu, `unknown ${tu} ms vs wrong ${tw} ms`);
    // two failures cost nothing ('nobody' has two of its own now)
    assert.equal((await req(b, 'POST', '/auth/login', { body: { name: 'carol', password: 'bad-pw-1111' } })).status, 401);
    assert.equal((await req(b, 'POST', '/auth/login', { body: { name: 'carol', password: 'bad-pw-2222' } })).status, 401);
    // third failure (from this address): a wait of 1 s before the next try
    assert.equal((await req(b, 'POST', '/auth/login', { body: { name: 'carol', password: 'bad-pw-3333' } })).status, 401);
    const early = await req(b, 'POST', '/auth/login', { body: { name: 'carol', password: 'carol-pw-123456' } });
    assert.equal(early.status, 429, early.text);
    assert.equal(early.body.error.code, 'rate_limited');
    assert.equal(early.headers.get('retry-after'), '1');
    await sleep(1100);
    // fourth failure: locked for 3 s, the name and the address (dave too)
    assert.equal((await req(b, 'POST', '/auth/login', { body: { name: 'carol', password: 'bad-pw-4444' } })).status, 401);
    const locked = await req(b, 'POST', '/auth/login', { body: { name: 'carol', password: 'carol-pw-123456' } });
    assert.equal(locked.status, 429, locked.text);
    assert.equal(locked.headers.get('retry-after'), '3');
    const other = await req(b, 'POST', '/auth/login', { body: { name: 'dave', password: 'dave-pw-1234567' } });
    assert.equal(other.status, 429, 'the address is locked too');
    await sleep(Number(locked.headers.get('retry-after')) * 1000 + 100);
    const after = await login(b, 'carol', 'carol-pw-123456');
    assert.equal(after.status, 200, after.text);
    assert.match(b.logs(), /locked for 3 s/);
  } finally {
    await b.cleanup();
  }
});

test('sessions end after the idle time and after the absolute time', async () => {
  const b = await startAosd({ args: ['--login-idle', '1', '--login-max-age', '3'] });
  try {
    await mkUser(b, { name: 'erin', password: 'erin-pw-1234567', role: 'viewer' });
    const idle = await login(b, 'erin', 'erin-pw-1234567');
    assert.match(idle.set, /Max-Age=3;/);
    assert.equal((await req(b, 'GET', '/auth/me', { cookie: idle.cookie })).status, 200);
    await sleep(1300);
    const gone = await req(b, 'GET', '/auth/me', { cookie: idle.cookie });
    assert.equal(gone.status, 401, gone.text);
    // busy all the time: still ends at the absolute expiry
    const busy = await login(b, 'erin', 'erin-pw-1234567');
    const t0 = Date.now();
    let last = 200;
    while (Date.now() - t0 < 3600 && last === 200) {
      last = (await req(b, 'GET', '/auth/me', { cookie: busy.cookie })).status;
      if (last === 200) await sleep(400);
    }
    assert.equal(last, 401);
    assert.ok(Date.now() - t0 >= 2500, `ended after ${Date.now() - t0} ms, before the absolute expiry`);
  } finally {
    await b.cleanup();
  }
});

test('the last Owner cannot be deleted, demoted or disabled; revoking the owner token then leaves the user', async () => {
  const b = await startAosd();
  try {
    const root = await mkUser(b, { name: 'root', password: 'root-pw-1234567', role: 'owner' }, TOKEN);
    const s = await login(b, 'root', 'root-pw-1234567');
    // with the owner token alive, root is not the last Owner
    const rv = await req(b, 'DELETE', '/auth/tokens/owner', { cookie: s.cookie, csrf: s.csrf });
    assert.equal(rv.status, 200, rv.text);
    for (const [m, body] of [['PATCH', { role: 'admin' }], ['PATCH', { disabled: true }], ['DELETE', undefined]]) {
      const r = await req(b, m, `/auth/users/${root.id}`, { cookie: s.cookie, csrf: s.csrf, body });
      assert.equal(r.status, 409, `${m} ${JSON.stringify(body)}: ${r.text}`);
    }
    assert.equal((await req(b, 'GET', '/auth/me', { cookie: s.cookie })).body.role, 'owner');
  } finally {
    await b.cleanup();
  }
});

test('an MCP session is bound to the principal that opened it', async () => {
  const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bind', version: '1' } } };
  const H = { Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' };
  const other = await aos.api('POST', '/auth/tokens', { name: 'other', role: 'admin' });
  assert.equal(other.status, 201, other.text);
  const post = async (token, body, sid) => {
    const r = await fetch(`${aos.url}/mcp`, { method: 'POST', headers: { ...H, Authorization: `Bearer ${token}`, ...(sid ? { 'Mcp-Session-Id': sid } : {}) }, body: JSON.stringify(body) });
    return { status: r.status, sid: r.headers.get('mcp-session-id'), text: await r.text() };
  };
  const init = await post(TOKEN, INIT);
  assert.equal(init.status, 200, init.text);
  const sid = init.sid;
  const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
  assert.equal((await post(TOKEN, list, sid)).status, 200);
  const stolen = await post(other.body.token, list, sid);
  assert.equal(stolen.status, 404, stolen.text);
  assert.match(stolen.text, /session/i);
  const del = await fetch(`${aos.url}/mcp`, { method: 'DELETE', headers: { Authorization: `Bearer ${other.body.token}`, 'Mcp-Session-Id': sid } });
  assert.equal(del.status, 404, 'another principal cannot end it either');
  assert.equal((await post(TOKEN, list, sid)).status, 200, 'the opener still uses it');
  // the other token's own session ends with the token
  const mine = await post(other.body.token, INIT);
  assert.equal(mine.status, 200);
  assert.equal((await aos.api('DELETE', `/auth/tokens/${other.body.id}`)).status, 200);
  assert.equal((await post(other.body.token, list, mine.sid)).status, 401);
});

test('password hashing runs off the loop: other requests are answered while logins hash', async () => {
  // one login alone: about one Argon2id hash
  const t = Date.now();
  assert.equal((await login(aos, 'admin.one', PW.admin)).status, 200);
  const one = Date.now() - t;
  let settled = false;
  const logins = Promise.all(Array.from({ length: 8 }, () => login(aos, 'admin.one', PW.admin)))
    .finally(() => { settled = true; });
  // /healthz, one after another, for as long as the logins hash
  const ms = [];
  while (!settled) {
    const t0 = Date.now();
    assert.equal((await req(aos, 'GET', '/healthz')).status, 200);
    ms.push(Date.now() - t0);
  }
  for (const r of await logins) assert.equal(r.status, 200, r.text);
  // a loop that hashed would hold most of them for a hash; here most wait
  // for nothing (a few for the CPU the hashes take)
  ms.sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)];
  console.log(`one login ${one} ms; ${ms.length} /healthz during 8 logins, median ${median} ms`);
  assert.ok(ms.length >= 8, `only ${ms.length} /healthz answered while 8 logins hashed`);
  assert.ok(median * 4 < one, `the median /healthz took ${median} ms, one login ${one} ms`);
});

test('the cookie is Secure over HTTPS, and with --cookie-secure behind a TLS proxy', async () => {
  const plain = await startAosd({ args: ['--cookie-secure'] });
  try {
    await mkUser(plain, { name: 'fay', password: 'fay-pw-12345678', role: 'viewer' });
    const s = await login(plain, 'fay', 'fay-pw-12345678');
    assert.equal(s.status, 200, s.text);
    assert.match(s.set, /; Secure$/);
  } finally { await plain.cleanup(); }
  const dir = mkdtempSync(join(tmpdir(), 'aos-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const tls = await startAosd({ args: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')] });
    try {
      const curl = (...args) => execFileSync('curl', ['-s', '--cacert', join(dir, 'cert.pem'), ...args], { encoding: 'utf8' });
      curl('-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Content-Type: application/json',
        '-d', JSON.stringify({ name: 'gus', password: 'gus-pw-12345678', role: 'viewer' }), `${tls.url}/auth/users`);
      const head = curl('-D', '-', '-o', '/dev/null', '-H', 'Content-Type: application/json',
        '-d', JSON.stringify({ name: 'gus', password: 'gus-pw-12345678' }), `${tls.url}/auth/login`);
      const set = head.split('\r\n').find((l) => /^set-cookie:/i.test(l));
      assert.ok(set, head);
      assert.match(set, /HttpOnly; SameSite=Strict; Secure$/);
      seen.push(set.match(/aos_session=([^;]+)/)[1]);
    } finally { await tls.cleanup(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
