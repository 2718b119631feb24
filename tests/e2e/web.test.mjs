// web.test.mjs - how aosd serves the browser UI (src/api/api.c): index.html
// at / and at every page's path, revalidated (no-cache); the hashed assets
// cached for good; the brotli or gzip copy chosen by Accept-Encoding
// (br > gzip > identity, q=0 refuses) with Vary and Content-Encoding, the
// same bytes once decoded; ETag and 304; a Content-Security-Policy; no
// route shadowed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { startAosd } from './lib.mjs';

let aos;
before(async () => { aos = await startAosd(); });
after(async () => {
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

// A raw GET (fetch would decode the body and add its own Accept-Encoding).
function get(path, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(aos.url + path, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

test('index.html at / and at each page of the UI, revalidated every time', async () => {
  const root = await get('/');
  assert.equal(root.status, 200);
  assert.match(root.headers['content-type'], /^text\/html/);
  assert.equal(root.headers['cache-control'], 'no-cache');
  assert.match(root.headers['content-security-policy'], /default-src 'self'/);
  assert.equal(root.headers['x-content-type-options'], 'nosniff');
  assert.match(root.body.toString(), /<script type="module" src="\/ui\/app\.[A-Z0-9]+\.js">/);
  for (const p of ['/telemetry', '/projects', '/memory', '/settings', '/integrations', '/ui/index.html']) {
    const r = await get(p);
    assert.equal(r.status, 200, p);
    assert.deepEqual(r.body, root.body, p);
  }
  // /agents is a page and an API route: a browser navigating gets the page,
  // an API call the list of agents
  const page = await get('/agents', { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
  assert.equal(page.status, 200);
  assert.deepEqual(page.body, root.body);
  assert.equal((await get('/agents')).status, 401);
  const list = await aos.api('GET', '/agents');
  assert.equal(list.status, 200, list.text);
  assert.match(list.headers.get('content-type'), /json/);
  assert.ok(Array.isArray(list.body.agents ?? list.body), list.text);
  // the API around them is untouched
  assert.equal((await get('/healthz')).status, 200);
  assert.equal((await get('/api/jobs')).status, 401);
  assert.equal((await get('/ui/nothing.js')).status, 404);
});

test('hashed assets: immutable, br > gzip > identity by Accept-Encoding, same bytes, ETag and 304', async () => {
  const html = (await get('/')).body.toString();
  const js = html.match(/src="(\/ui\/app\.[A-Z0-9]+\.js)"/)[1];
  const css = html.match(/href="(\/ui\/app\.[A-Z0-9]+\.css)"/)[1];
  for (const path of [js, css]) {
    const plain = await get(path);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(plain.headers['vary'], 'Accept-Encoding');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.match(plain.headers['content-type'], path.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);

    const br = await get(path, { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.ok(br.body.length < plain.body.length);
    assert.deepEqual(brotliDecompressSync(br.body), plain.body);

    for (const ae of ['gzip', 'br;q=0, gzip', 'GZIP;q=0.5, br;q=0.0']) {
      const gz = await get(path, { 'Accept-Encoding': ae });
      assert.equal(gz.headers['content-encoding'], 'gzip', ae);
      assert.deepEqual(gunzipSync(gz.body), plain.body);
    }
    for (const ae of ['identity', 'gzip;q=0, br;q=0', 'deflate']) {
      const id = await get(path, { 'Accept-Encoding': ae });
      assert.equal(id.headers['content-encoding'], undefined, ae);
      assert.deepEqual(id.body, plain.body);
    }
    assert.equal((await get(path, { 'Accept-Encoding': '*' })).headers['content-encoding'], 'br');

    // each variant its own ETag; a match is a 304 without a body
    assert.notEqual(br.headers.etag, plain.headers.etag);
    const nm = await get(path, { 'Accept-Encoding': 'br', 'If-None-Match': br.headers.etag });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.length, 0);
    assert.equal(nm.headers.etag, br.headers.etag);
    assert.equal((await get(path, { 'Accept-Encoding': 'br', 'If-None-Match': plain.headers.etag })).status, 200);
  }
  // the precompressed copies are not files of their own
  assert.equal((await get(js + '.br')).status, 404);
  assert.equal((await get(js + '.gz')).status, 404);
});
