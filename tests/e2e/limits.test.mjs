// limits.test.mjs - the HTTP server under abuse (issue 12, items 5, 6 and
// the Authorization part of 11), each on a real aosd over raw loopback
// sockets:
// - a flood of idle connections does not keep /healthz from answering: the
//   oldest idle connections make room, per address and in all; connections
//   busy with a request (streams) are never closed for it, and a new one is
//   refused at once when there is nothing to close;
// - a connection has 10 s to send its first request head, sending half a
//   head or a byte at a time included; kept-alive connections and streams
//   are not cut by it;
// - a request is authorized on its head: the 401 (and 404, 405, 413, 503)
//   comes before any body byte is read, and unauthenticated uploads do not
//   grow aosd's memory;
// - the bytes of request bodies held at once have a global cap;
// - the Authorization header is parsed exactly (no NUL byte, no junk, one
//   header, bounded token).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAosd, TOKEN, sleep } from './lib.mjs';

function target(aos) {
  const u = new URL(aos.url);
  return { host: u.hostname, port: Number(u.port) };
}

// A raw connection that records what it receives and when it closes.
function open(aos) {
  return new Promise((resolve, reject) => {
    const s = net.connect(target(aos));
    const c = { s, data: Buffer.alloc(0), closed: false, closedAt: 0, openedAt: Date.now(), waiters: [] };
    const wake = () => { for (const w of c.waiters.splice(0)) w(); };
    s.on('data', (d) => { c.data = Buffer.concat([c.data, d]); wake(); });
    s.on('error', () => {});
    s.on('close', () => { c.closed = true; c.closedAt = Date.now(); wake(); });
    s.once('connect', () => resolve(c));
    s.once('error', reject);
  });
}

// Waits until pred(c) holds; false after ms.
async function until(c, pred, ms) {
  const end = Date.now() + ms;
  while (!pred(c)) {
    const left = end - Date.now();
    if (left <= 0) return false;
    await new Promise((r) => { const t = setTimeout(r, left); c.waiters.push(() => { clearTimeout(t); r(); }); });
  }
  return true;
}

// The first complete response in c.data: { status, head, body } or null.
function response(c) {
  const text = c.data.toString('latin1');
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return null;
    const head = text.slice(at, end);
    const status = Number(head.slice(9, 12));
    if (status >= 100 && status < 200) { at = end + 4; continue; } // interim
    const m = head.match(/\r\ncontent-length:\s*(\d+)/i);
    const len = m ? Number(m[1]) : 0;
    if (text.length < end + 4 + len) return null;
    return { status, head, body: text.slice(end + 4, end + 4 + len), interim: at > 0 };
  }
}

// Sends raw bytes on a new connection and waits for the response.
async function raw(aos, bytes, ms = 5000) {
  const c = await open(aos);
  const t0 = Date.now();
  c.s.write(bytes);
  const ok = await until(c, (x) => response(x) || x.closed, ms);
  const r = response(c);
  return { c, r, ms: Date.now() - t0, timedOut: !ok };
}

async function healthz(aos, ms = 5000) {
  const x = await raw(aos, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', ms);
  x.c.s.destroy();
  return x;
}

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return Number(m[1]);
}

const sseHead = `GET /agent/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nAccept: text/event-stream\r\n\r\n`;

async function openStream(aos) {
  const c = await open(aos);
  c.s.write(sseHead);
  assert.ok(await until(c, (x) => x.data.includes('\r\n\r\n'), 5000), 'stream opened');
  assert.match(c.data.toString(), /^HTTP\/1\.1 200/);
  return c;
}

const uploadHead = (len, token, extra = '') =>
  `POST /api/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
  (token ? `Authorization: Bearer ${token}\r\n` : '') + extra + `Content-Length: ${len}\r\n\r\n`;

test('4,200 idle connections do not keep /healthz from answering (default limits)', async () => {
  const aos = await startAosd();
  const conns = [];
  try {
    let settled = 0, failed = 0;
    await new Promise((resolve) => {
      for (let i = 0; i < 4200; i++) {
        const s = net.connect(target(aos));
        s.on('error', () => {});
        conns.push(s);
        const done = () => { if (++settled === 4200) resolve(); };
        s.once('connect', done);
        s.once('error', () => { failed++; done(); });
      }
    });
    assert.ok(failed < 100, `${failed} of 4,200 connects failed`);
    for (let i = 0; i < 5; i++) {
      const h = await healthz(aos, 5000);
      assert.ok(!h.timedOut && h.r, `/healthz did not answer within 5 s (try ${i + 1})`);
      assert.equal(h.r.status, 200);
    }
  } finally {
    for (const s of conns) s.destroy();
    const { code } = await aos.stop();
    await aos.cleanup();
    assert.equal(code, 0, aos.logs().slice(-2000));
  }
});

for (const [what, args, limit] of [
  ['per address', ['--http-max-conns-per-ip', '8'], 8],
  ['in all', ['--http-max-conns', '8', '--http-max-conns-per-ip', '0'], 8],
]) {
  test(`past the connection limit ${what}, the oldest idle connections make room; busy ones stay`, async () => {
    const aos = await startAosd({ args: [...args, '--events-heartbeat-ms', '200'] });
    const idle = [];
    const streams = [];
    try {
      streams.push(await openStream(aos));
      for (let i = 0; i < 20; i++) {
        idle.push(await open(aos));
        await sleep(20);
      }
      await sleep(500);
      const open_ = idle.map((c, i) => (c.closed ? -1 : i)).filter((i) => i >= 0);
      // the stream holds one slot; the newest idle ones hold the others
      assert.deepEqual(open_, [...Array(limit - 1).keys()].map((k) => 20 - (limit - 1) + k));
      const h = await healthz(aos);
      assert.equal(h.r?.status, 200, 'a new client is served');
      const before = streams[0].data.length;
      assert.ok(await until(streams[0], (x) => x.data.length > before, 3000), 'the stream still gets heartbeats');
      assert.equal(streams[0].closed, false);

      // every slot busy with a stream: a new connection is refused at once
      for (const c of idle) c.s.destroy();
      while (streams.length < limit) streams.push(await openStream(aos));
      const extra = await open(aos);
      extra.s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.ok(await until(extra, (x) => x.closed, 3000), 'refused rather than left waiting');
      assert.equal(response(extra), null);
      for (const c of streams) assert.equal(c.closed, false, 'no stream was closed');
      streams.pop().s.destroy();
      await sleep(300);
      assert.equal((await healthz(aos)).r?.status, 200, 'served again once a slot is free');
    } finally {
      for (const c of [...idle, ...streams]) c.s.destroy();
      await aos.cleanup();
    }
  });
}

test('a connection has 10 s to send its first request head; kept-alive ones and streams stay', async () => {
  const aos = await startAosd({ args: ['--events-heartbeat-ms', '1000'] });
  let trickle;
  const all = [];
  try {
    const half = await open(aos);
    half.s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const slow = await open(aos);
    const head = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ' + 'a'.repeat(200);
    let i = 0;
    trickle = setInterval(() => { if (!slow.closed && i < head.length) slow.s.write(head[i++]); }, 250);
    const kept = await open(aos);
    kept.s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.ok(await until(kept, (x) => response(x), 5000));
    const stream = await openStream(aos);
    all.push(half, slow, kept, stream);

    assert.ok(await until(half, (x) => x.closed, 14000), 'half a head: closed');
    assert.ok(await until(slow, (x) => x.closed, 3000), 'a byte at a time: closed');
    for (const c of [half, slow]) {
      const after = c.closedAt - c.openedAt;
      assert.ok(after >= 9000 && after <= 13000, `closed after ${after} ms`);
    }
    assert.equal(kept.closed, false, 'a kept-alive connection has the idle timeout');
    assert.equal(stream.closed, false, 'a stream is not cut');
    const seen = stream.data.length;
    assert.ok(await until(stream, (x) => x.data.length > seen, 3000), 'the stream still gets heartbeats');
    kept.data = Buffer.alloc(0);
    kept.s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.ok(await until(kept, (x) => response(x), 5000));
    assert.equal(response(kept).status, 200, 'the kept connection still serves');
  } finally {
    clearInterval(trickle);
    for (const c of all) c.s.destroy();
    await aos.cleanup();
  }
});

test('a request is answered from its head, before any body byte is read', async () => {
  const aos = await startAosd();
  try {
    // unauthenticated: 401 at once, and the connection is closed
    let x = await raw(aos, uploadHead(10_000_000, null), 3000);
    assert.equal(x.r?.status, 401, `no early 401 (${x.ms} ms)`);
    assert.match(x.r.head, /\r\nwww-authenticate: Bearer/i);
    assert.equal(JSON.parse(x.r.body).error.code, 'unauthorized');
    assert.ok(await until(x.c, (c) => c.closed, 2000), 'closed after the early answer');
    x.c.s.destroy();
    // Expect: 100-continue gets the 401 instead of the go-ahead
    x = await raw(aos, uploadHead(10_000_000, 'not-a-token', 'Expect: 100-continue\r\n'), 3000);
    assert.equal(x.r?.status, 401);
    assert.equal(x.r.interim, false, 'no 100 Continue before the 401');
    x.c.s.destroy();
    // too large for the route (16 MiB), with a valid token: 413 at once
    x = await raw(aos, uploadHead(17 << 20, TOKEN), 3000);
    assert.equal(x.r?.status, 413);
    assert.equal(JSON.parse(x.r.body).error.code, 'too_large');
    x.c.s.destroy();
    // no such route, and a public route (which takes no body)
    x = await raw(aos, 'POST /no/such/route HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n', 3000);
    assert.equal(x.r?.status, 404);
    x.c.s.destroy();
    x = await raw(aos, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n', 3000);
    assert.equal(x.r?.status, 413);
    x.c.s.destroy();
    x = await raw(aos, 'DELETE /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n', 3000);
    assert.equal(x.r?.status, 405);
    x.c.s.destroy();
    // a small body with the head is still fine
    const body = JSON.stringify({ entries: [{ message: 'early', source: 'limits' }] });
    x = await raw(aos, uploadHead(Buffer.byteLength(body), TOKEN) + body, 5000);
    assert.equal(x.r?.status, 201, x.r?.body);
    x.c.s.destroy();

    // 30 unauthenticated uploads that send 2 MiB and stall: aosd's memory stays
    const pid = aos.proc.pid;
    const rss0 = rssKiB(pid);
    const chunk = Buffer.alloc(2 << 20, 0x61);
    const ups = [];
    for (let i = 0; i < 30; i++) {
      const c = await open(aos);
      c.s.write(uploadHead(16 << 20, null));
      c.s.write(chunk);
      ups.push(c);
    }
    await Promise.all(ups.map((c) => until(c, (y) => response(y) || y.closed, 5000)));
    await sleep(500);
    const grown = rssKiB(pid) - rss0;
    for (const c of ups) {
      assert.equal(response(c)?.status ?? 401, 401);
      c.s.destroy();
    }
    assert.ok(grown < 24 * 1024, `RSS grew by ${grown} KiB`);
  } finally {
    await aos.cleanup();
  }
});

test('the bytes of request bodies held at once are capped (--http-body-memory)', async () => {
  const aos = await startAosd({ args: ['--max-body', String(1 << 20), '--http-body-memory', String(4 << 20)] });
  const held = [];
  try {
    const len = 3 << 19; // 1.5 MiB
    for (let i = 0; i < 2; i++) {
      const c = await open(aos);
      c.s.write(uploadHead(len, TOKEN));
      c.s.write(Buffer.alloc(64 << 10, 0x20));
      held.push(c);
    }
    await sleep(300);
    for (const c of held) assert.equal(response(c), null, 'the stalled uploads wait for their bodies');
    // a third would pass the cap: 503 at once, with Retry-After
    let x = await raw(aos, uploadHead(len, TOKEN), 3000);
    assert.equal(x.r?.status, 503, `no early 503 (${x.ms} ms)`);
    assert.equal(JSON.parse(x.r.body).error.code, 'unavailable');
    assert.match(x.r.head, /\r\nretry-after: \d+/i);
    x.c.s.destroy();
    // chunked: counted as it arrives, refused once past the cap
    const c = await open(aos);
    c.s.write(uploadHead(0, TOKEN).replace('Content-Length: 0', 'Transfer-Encoding: chunked'));
    const piece = Buffer.alloc(256 << 10, 0x20);
    for (let i = 0; i < 8; i++) c.s.write(`${piece.length.toString(16)}\r\n${piece.toString()}\r\n`);
    c.s.write('0\r\n\r\n');
    assert.ok(await until(c, (y) => response(y), 5000));
    assert.equal(response(c).status, 503);
    c.s.destroy();
    // larger than the cap itself: it could never fit
    x = await raw(aos, uploadHead(5 << 20, TOKEN), 3000);
    assert.equal(x.r?.status, 413);
    x.c.s.destroy();
    // the stalled uploads go away: their share is free again
    for (const h of held) h.s.destroy();
    await sleep(300);
    const entries = [];
    while (JSON.stringify(entries).length < len - 1000) entries.push({ message: 'x'.repeat(1000), source: 'limits' });
    const r = await aos.api('POST', '/api/logs', { entries });
    assert.equal(r.status, 201, r.text);
  } finally {
    for (const h of held) h.s.destroy();
    await aos.cleanup();
  }
});

test('the Authorization header is parsed exactly', async () => {
  const aos = await startAosd();
  try {
    const get = (auth) => aos.api('GET', '/mcp/registry', undefined, null, auth === undefined ? {} : { Authorization: auth });
    for (const ok of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `Bearer  ${TOKEN}`, `Bearer ${TOKEN} `]) {
      assert.equal((await get(ok)).status, 200, JSON.stringify(ok));
    }
    for (const bad of [`Bearer ${TOKEN} junk`, `Bearer ${TOKEN},`, `Bearer\t${TOKEN}`, `Bearer${TOKEN}`,
      `BearerX ${TOKEN}`, 'Bearer', 'Bearer ', `Basic ${Buffer.from('a:b').toString('base64')}`,
      `Bearer ${TOKEN}${'a'.repeat(400)}`, `Token ${TOKEN}`, '']) {
      const r = await get(bad);
      assert.equal(r.status, 401, `${JSON.stringify(bad)}: ${r.text}`);
      assert.equal(r.body.error.code, 'unauthorized');
    }
    // a NUL byte in a header is refused, not cut there
    const nul = (h) => `GET /mcp/registry HTTP/1.1\r\nHost: 127.0.0.1\r\n${h}\r\nConnection: close\r\n\r\n`;
    for (const h of [`Authorization: Bearer ${TOKEN}\0junk`, `Authorization: Bearer ${TOKEN}\0`,
      `X-Other: a\0b\r\nAuthorization: Bearer ${TOKEN}`]) {
      const x = await raw(aos, nul(h));
      assert.equal(x.r?.status, 400, JSON.stringify(h));
      x.c.s.destroy();
    }
    // and it is the last header too
    let x = await raw(aos, `GET /mcp/registry HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\0junk\r\n\r\n`);
    assert.equal(x.r?.status, 400);
    x.c.s.destroy();
    // two Authorization headers: refused, whichever comes first
    for (const pair of [[TOKEN, 'other'], ['other', TOKEN]]) {
      x = await raw(aos, `GET /mcp/registry HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${pair[0]}\r\n` +
        `Authorization: Bearer ${pair[1]}\r\nConnection: close\r\n\r\n`);
      assert.equal(x.r?.status, 400, JSON.stringify(pair));
      x.c.s.destroy();
    }
    // the good form over a raw socket, for contrast
    x = await raw(aos, nul(`Authorization: Bearer ${TOKEN}`));
    assert.equal(x.r?.status, 200);
    x.c.s.destroy();
  } finally {
    await aos.cleanup();
  }
  // a bootstrap token no header could carry is refused at start (and aosd
  // exits on a start-up error rather than hang with its store open)
  const dataDir = mkdtempSync(join(tmpdir(), 'aos-e2e-'));
  try {
    await assert.rejects(startAosd({ dataDir, args: ['--bootstrap-token', 'sixteen chars or more, spaced'] }),
      /aosd exited 1:[\s\S]*16 to 256 visible ASCII characters/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a body too large for its route gets its 413, not a reset (the body is read and dropped)', async () => {
  const aos = await startAosd();
  try {
    const big = JSON.stringify({ name: 'big', command: 'x', description: 'x'.repeat(2 << 20) });
    for (let i = 0; i < 20; i++) {
      const r = await aos.api('POST', '/mcp/registry', big);
      assert.equal(r.status, 413, `attempt ${i}: ${r.text}`);
      assert.equal(r.body.error.code, 'too_large');
    }
  } finally {
    await aos.cleanup();
  }
});

test('request heads up to 8 KiB and bodies of megabytes pass the connection\'s memory pool (16 KiB)', async () => {
  const aos = await startAosd();
  try {
    // one kept-alive connection: a large head, then a large body, then both
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = (method, path, headers, body) => new Promise((resolve, reject) => {
      const r = http.request(aos.url + path, { method, agent, headers: { Authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(parts).toString() }));
      });
      r.on('error', reject);
      r.end(body);
    });
    const pad = { 'X-Pad-1': 'a'.repeat(2000), 'X-Pad-2': 'b'.repeat(2000), 'X-Pad-3': 'c'.repeat(2000), 'X-Pad-4': 'd'.repeat(2000) };
    assert.equal((await req('GET', '/healthz', pad)).status, 200);
    const message = 'm'.repeat(3 << 20);
    const body = JSON.stringify({ server: 'aos', tool: 'echo', args: { message } });
    for (const headers of [{}, pad]) {
      const r = await req('POST', '/mcp/call', { 'Content-Type': 'application/json', ...headers }, body);
      assert.equal(r.status, 200, r.text.slice(0, 200));
      assert.ok(r.text.includes(message), 'the whole message came back');
    }
    // past what the pool holds: refused with 431, not a reset
    assert.equal((await req('GET', '/healthz', { 'X-Pad': 'e'.repeat(20000) })).status, 431);
    agent.destroy();
  } finally {
    await aos.cleanup();
  }
});
