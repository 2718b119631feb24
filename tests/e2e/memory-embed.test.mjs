// memory-embed.test.mjs - memory vectors from an OpenAI-compatible
// /v1/embeddings endpoint (--memory-embed llm, issue 17): the scripted
// server (fixtures/openai-server.mjs) answers bag-of-words vectors the test
// computes itself, so the expected ranking is known. Writes and searches
// through the REST routes and the memory MCP tools; vector and hybrid rank
// the expected item first; a write waiting for a slow endpoint holds up
// no other request; an endpoint that fails, is slow, answers
// malformed JSON, a wrong dimension or an error quoting the key gives the
// error table's answer and stores nothing; switching the model (a restart
// with another --llm-embed-model, then --memory-embed builtin) re-embeds
// the items in the background, in batches; the API key never appears in a
// response or a log line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAosd, assertErrorShape, sleep } from './lib.mjs';
import { startOpenAI } from './openai.mjs';

const KEY = 'sk-embedtest-4f1c9a0b7e2d6c3a58b1';
const DIM = 256;
const WORDS = { embeddings: [{ words: true, dim: DIM, repeat: true }] };
let llm, aos;
const seen = []; // every response text, searched for the key at the end

// The fixture's bag of words (openai-server.mjs wordsVector), normalised.
function wordIndex(word, dim) {
  let h = 2166136261;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619) >>> 0;
  return h % dim;
}
function vec(text, dim = DIM) {
  const v = new Array(dim).fill(0);
  for (const w of text.toLowerCase().match(/[a-z0-9]+/g) || []) v[wordIndex(w, dim)] += 1;
  const n = Math.hypot(...v);
  return n ? v.map((x) => x / n) : v;
}
const cos = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);

const ITEMS = [
  'rotate the database credentials every month',
  'the office coffee machine is cleaned on fridays',
  'deploy the frontend with the blue green script',
  'new hires get a laptop and a badge on day one',
];
const QUERY = 'how often do we rotate database credentials';

function args(model = 'emb-a', extra = []) {
  return ['--llm-base-url', llm.url, '--llm-model', 'chat-m', '--llm-embed-model', model,
    '--memory-embed', 'llm', '--llm-timeout-ms', '1500', '--llm-retries', '1', ...extra];
}

async function api(method, path, body, token) {
  const r = await aos.api(method, path, body, token);
  seen.push(r.text);
  return r;
}
const put = (body) => api('POST', '/api/memory/items', body);
const search = (p) => api('GET', `/api/memory/search?${new URLSearchParams(p)}`);
const mcp = (tool, a) => api('POST', '/mcp/call', { server: 'memory', tool, args: a });
const embedCalls = async () => (await llm.requests()).filter((r) => r.path === '/v1/embeddings');

const ids = [];

before(async () => {
  llm = await startOpenAI(WORDS, { apiKey: KEY });
  aos = await startAosd({ args: args(), env: { AOS_LLM_API_KEY: KEY } });
});
after(async () => {
  const logs = aos ? aos.logs() : '';
  if (aos) {
    const { code } = await aos.stop();
    await aos.cleanup();
    assert.equal(code, 0, logs.slice(-2000));
    assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
  }
  if (llm) llm.stop();
});

test('--memory-embed llm needs --llm-embed-model', async () => {
  await assert.rejects(startAosd({ args: ['--llm-base-url', llm.url, '--llm-model', 'm',
    '--memory-embed', 'llm'] }), /exited 1[\s\S]*--memory-embed llm needs --llm-base-url and --llm-embed-model/);
  await assert.rejects(startAosd({ args: ['--memory-embed', 'fancy'] }), /exited 2/);
});

test('a write embeds its text at the endpoint with the model, the key in the header only', async () => {
  await llm.clearRequests();
  for (const text of ITEMS) {
    const r = await put({ text, project_id: 'emb', tags: ['t'] });
    assert.equal(r.status, 201, r.text);
    ids.push(r.body.id);
  }
  const calls = await embedCalls();
  assert.equal(calls.length, ITEMS.length);
  assert.deepEqual(calls.map((c) => c.body.input), ITEMS.map((t) => [t]));
  for (const c of calls) {
    assert.equal(c.body.model, 'emb-a');
    assert.equal(c.headers.authorization, `Bearer ${KEY}`);
  }
});

test('vector search ranks the expected item first, with the cosine the test predicts', async () => {
  const q = vec(QUERY);
  const want = ITEMS.map((t, i) => ({ i, s: cos(q, vec(t)) })).sort((a, b) => b.s - a.s);
  assert.equal(want[0].i, 0); // the set is built so that item 0 wins
  assert.ok(want[0].s > want[1].s + 0.1);
  const r = await search({ q: QUERY, mode: 'vector', project_id: 'emb' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.model, 'emb-a');
  assert.equal(r.body.results[0].id, ids[0]);
  assert.ok(Math.abs(r.body.results[0].scores.vector - want[0].s) < 1e-5,
    `${r.body.results[0].scores.vector} vs ${want[0].s}`);
  const last = (await embedCalls()).at(-1);
  assert.deepEqual(last.body.input, [QUERY]);
});

test('hybrid search fuses both lists; keyword search does not call the endpoint', async () => {
  const h = await search({ q: QUERY, mode: 'hybrid', project_id: 'emb' });
  assert.equal(h.status, 200, h.text);
  assert.equal(h.body.results[0].id, ids[0]);
  assert.ok(h.body.results[0].ranks.keyword >= 1 && h.body.results[0].ranks.vector === 1);
  const before = (await embedCalls()).length;
  const k = await search({ q: 'coffee', mode: 'keyword', project_id: 'emb' });
  assert.equal(k.body.results[0].id, ids[1]);
  assert.equal(k.body.model, null);
  assert.equal((await embedCalls()).length, before);
});

test('the memory MCP tools take the same path', async () => {
  const p = await mcp('memory.put', { text: 'the quarterly security audit checklist lives in the wiki', project_id: 'emb' });
  assert.equal(p.status, 200, p.text);
  const id = p.body.structuredContent.id;
  const s = await mcp('memory.search', { q: 'security audit checklist', mode: 'vector', project_id: 'emb' });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.body.structuredContent.results[0].id, id);
  assert.equal(s.body.structuredContent.model, 'emb-a');
  // an update of the text embeds the new text; one of the tags alone does not call
  const n0 = (await embedCalls()).length;
  const u = await mcp('memory.put', { id, tags: ['audit'] });
  assert.equal(u.status, 200, u.text);
  assert.equal((await embedCalls()).length, n0);
  const s2 = await mcp('memory.search', { q: 'security audit checklist', mode: 'vector', project_id: 'emb' });
  assert.equal(s2.body.structuredContent.results[0].id, id); // its vector kept
  const u2 = await mcp('memory.put', { id, text: 'parking permits are renewed in january' });
  assert.equal(u2.status, 200, u2.text);
  assert.deepEqual((await embedCalls()).at(-1).body.input, ['parking permits are renewed in january']);
  const s3 = await mcp('memory.search', { q: 'parking permits', mode: 'vector', project_id: 'emb' });
  assert.equal(s3.body.structuredContent.results[0].id, id);
  ids.push(id);
  ITEMS.push('parking permits are renewed in january');
});

async function refused(step, status, code, match) {
  await llm.script({ embeddings: [{ ...step, repeat: true }] });
  const text = `unique${status}${code}marker ${Math.random().toString(36).slice(2)}`;
  const c = await put({ text, project_id: 'emb' });
  assertErrorShape(assert, c, status, code);
  assert.match(c.body.error.message, match);
  // nothing stored: not by keyword, not in the list
  const k = await search({ q: text.split(' ')[0], mode: 'keyword', project_id: 'emb' });
  assert.deepEqual(k.body.results, []);
  const all = await api('GET', '/api/memory/items?project_id=emb&limit=100');
  assert.equal(all.body.items.length, ids.length);
  // a search that needs a vector fails the same way; keyword search still works
  const s = await search({ q: 'database', mode: 'hybrid', project_id: 'emb' });
  assertErrorShape(assert, s, status, code);
  const mc = await mcp('memory.put', { text, project_id: 'emb' });
  assert.ok(mc.status >= 400 || mc.body.error, mc.text);
  return c;
}

test('a write waiting for a slow endpoint holds no thread of the loop', async () => {
  await llm.script({ embeddings: [{ delay_ms: 1200, words: true, dim: DIM, repeat: true }] });
  const t0 = Date.now();
  const slow = put({ text: 'a slow note about kubernetes upgrades', project_id: 'emb' });
  await sleep(100); // the write is waiting for its vector
  const k = await search({ q: 'coffee', mode: 'keyword', project_id: 'emb' });
  const health = await api('GET', '/api/memory/items?project_id=emb&limit=1');
  const fast = Date.now() - t0;
  assert.equal(k.status, 200);
  assert.equal(health.status, 200);
  assert.ok(fast < 900, `other requests took ${fast} ms while the write waited`);
  const w = await slow;
  assert.equal(w.status, 201, w.text);
  assert.ok(Date.now() - t0 >= 1200);
  ids.push(w.body.id);
  ITEMS.push('a slow note about kubernetes upgrades');
  await llm.script(WORDS);
});

test('a failing, slow or malformed endpoint: the error table answer, nothing stored', async () => {
  await refused({ status: 500 }, 502, 'upstream_error', /emb-a.*http 500/);
  await refused({ status: 200, body: 'not json' }, 502, 'upstream_error', /emb-a.*malformed JSON/);
  await refused({ status: 200, body: { data: [] } }, 502, 'upstream_error', /emb-a.*0 embeddings for 1/);
  await refused({ delay_ms: 4000, words: true, dim: DIM }, 504, 'timeout', /emb-a/);
  // an error body quoting what the client sent as its key: never passed on
  const c = await refused({ status: 401, body: { error: { message: 'Incorrect API key provided: {{header:authorization}}', code: 'invalid_api_key' } } },
    502, 'upstream_auth', /emb-a/);
  assert.ok(!c.text.includes(KEY.slice(3, 15)));
  // the endpoint down: nothing listens there any more
  await llm.script(WORDS);
});

test('a vector of another dimension is refused, naming both', async () => {
  await llm.script({ embeddings: [{ words: true, dim: 100, repeat: true }] });
  const c = await put({ text: 'a text of the wrong size', project_id: 'emb' });
  assertErrorShape(assert, c, 502, 'upstream_error');
  assert.match(c.body.error.message, /emb-a.*100 dimensions.*256/);
  const s = await search({ q: QUERY, mode: 'vector', project_id: 'emb' });
  assertErrorShape(assert, s, 502, 'upstream_error');
  assert.match(s.body.error.message, /100 dimensions.*256/);
  const all = await api('GET', '/api/memory/items?project_id=emb&limit=100');
  assert.equal(all.body.items.length, ids.length);
  await llm.script(WORDS);
  assert.equal((await put({ text: 'works again', project_id: 'other' })).status, 201);
});

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last.ok) return last;
    await sleep(200);
  }
  assert.fail(`${what}: ${JSON.stringify(last)}`);
}

test('switching the model re-embeds every item in the background, in batches', async () => {
  const dir = aos.dataDir;
  const { code } = await aos.stop();
  assert.equal(code, 0);
  assert.doesNotMatch(aos.logs(), /AddressSanitizer|LeakSanitizer|runtime error/);
  assert.ok(!aos.logs().includes(KEY));
  const live = ids.length + 1; // 'works again'
  // the model refuses one text (400): the others are re-embedded all the same
  await llm.script({ embeddings: [{ match: 'parking', status: 400, repeat: true },
                                   { words: true, dim: 64, repeat: true }] });
  await llm.clearRequests();
  aos = await startAosd({ dataDir: dir, args: args('emb-b'), env: { AOS_LLM_API_KEY: KEY } });
  const q64 = vec(QUERY, 64);
  const want = ITEMS.map((t, i) => ({ i, s: cos(q64, vec(t, 64)) })).sort((a, b) => b.s - a.s);
  assert.equal(want[0].i, 0);
  await until('re-embedded with emb-b', async () => {
    const r = await search({ q: QUERY, mode: 'vector', project_id: 'emb' });
    return { ok: r.status === 200 && r.body.results[0]?.id === ids[0] &&
             Math.abs(r.body.results[0].scores.vector - want[0].s) < 1e-5, body: r.body };
  });
  const calls = (await embedCalls()).filter((c) => c.body.input.length > 1 || c.body.input[0] !== QUERY);
  assert.ok(calls.every((c) => c.body.model === 'emb-b'));
  const texts = calls.flatMap((c) => c.body.input);
  assert.equal(new Set(texts).size, live, JSON.stringify(texts)); // each live item
  assert.ok(calls.some((c) => c.body.input.length > 1), 'batched');
  await until('the pass ended', async () => ({ ok: /re-embedded \d+ item\(s\) with model emb-b/.test(aos.logs()) }));
  assert.match(aos.logs(), /item \d+ has no vector of model emb-b \(found by keyword only\): .*http 400/);
  const parking = ids[4];
  // (a query naming 'parking' would be refused by this endpoint too)
  const pv = await search({ q: 'permits renewed in january', mode: 'vector', project_id: 'emb' });
  assert.ok(!pv.body.results.some((x) => x.id === parking), JSON.stringify(pv.body));
  const pk = await search({ q: 'permits renewed in january', mode: 'hybrid', project_id: 'emb' });
  const hit = pk.body.results.find((x) => x.id === parking);
  assert.ok(hit && hit.ranks.keyword === 1 && hit.ranks.vector === null, JSON.stringify(pk.body));

  // back to the built-in embedding: re-embedded again, no call
  await aos.stop();
  await llm.clearRequests();
  aos = await startAosd({ dataDir: dir, args: ['--llm-base-url', llm.url, '--llm-model', 'chat-m', '--llm-embed-model', 'emb-b'], env: { AOS_LLM_API_KEY: KEY } });
  await until('re-embedded with aos-hash-v1', async () => {
    const r = await search({ q: 'rotate database credentials', mode: 'vector', project_id: 'emb' });
    return { ok: r.body.model === 'aos-hash-v1' && r.body.results[0]?.id === ids[0], body: r.body };
  });
  await until('the refused item re-embedded too', async () => {
    const r = await search({ q: 'parking permits renewed', mode: 'vector', project_id: 'emb' });
    return { ok: r.body.results[0]?.id === ids[4], body: r.body };
  });
  assert.deepEqual(await embedCalls(), []);
});

test('the API key never appears in a response or a log line', async () => {
  for (const t of seen) assert.ok(!t.includes(KEY) && !t.includes(KEY.slice(-12)), t);
  assert.ok(!aos.logs().includes(KEY));
});
