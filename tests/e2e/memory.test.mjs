// memory.test.mjs - the memory service end to end (issue 17): items
// created, read, changed, deleted and restored with their audit rows; tag
// and project filters; grants per project (an Operator on p1 only neither
// reads nor finds p2's items); keyword search in Chinese and English;
// vector and hybrid ranking on the labelled set the tests ship
// (fixtures/memory-set.json); bad input refused with nothing changed;
// the vector index rebuilt from the store after a restart; and the MCP
// tools through /mcp/call, as the caller's principal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAosd, assertErrorShape, ROOT } from './lib.mjs';

const SET = JSON.parse(readFileSync(join(ROOT, 'tests/e2e/fixtures/memory-set.json'), 'utf8'));
let aos;

before(async () => { aos = await startAosd(); });
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

const put = (body, token) => aos.api('POST', '/api/memory/items', body, token);
const search = (params, token) => aos.api('GET', `/api/memory/search?${new URLSearchParams(params)}`, undefined, token);
const audit = async () => (await aos.api('GET', '/audit/logs?limit=500')).body.items;
const mcp = (tool, args, token) => aos.api('POST', '/mcp/call', { server: 'memory', tool, args }, token);

async function mint(name, grants, role = 'none') {
  const r = await aos.api('POST', '/auth/tokens', { name, role, grants });
  assert.equal(r.status, 201, r.text);
  return r.body.token;
}

test('create, read, update, soft delete and restore, each with its audit row', async () => {
  const c = await put({ text: 'Remember: the staging database is reset every Sunday.', project_id: 'crud', subject: 'staging', tags: ['db', 'Ops', 'db'], meta: { origin: 'test' } });
  assert.equal(c.status, 201, c.text);
  const item = c.body;
  assert.equal(item.project_id, 'crud');
  assert.equal(item.subject, 'staging');
  assert.deepEqual(item.tags, ['Ops', 'db']); // sorted, unique
  assert.deepEqual(item.meta, { origin: 'test' });
  assert.equal(item.source, 'token:owner');
  assert.equal(item.version, 1);
  assert.equal(item.deleted_at, null);
  assert.match(item.created_at, /^\d{4}-\d\d-\d\dT/);

  const g = await aos.api('GET', `/api/memory/items/${item.id}`);
  assert.equal(g.status, 200);
  assert.deepEqual(g.body, item);

  const u = await aos.api('PATCH', `/api/memory/items/${item.id}`, { text: 'The staging database is reset every Saturday.', tags: ['db'], subject: null });
  assert.equal(u.status, 200, u.text);
  assert.equal(u.body.text, 'The staging database is reset every Saturday.');
  assert.deepEqual(u.body.tags, ['db']);
  assert.equal(u.body.subject, null);
  assert.equal(u.body.version, 2);
  assert.deepEqual(u.body.meta, { origin: 'test' }); // untouched
  // the index follows the text: the new word is found, the old one is not
  assert.deepEqual((await search({ q: 'saturday', mode: 'keyword', project_id: 'crud' })).body.results.map((x) => x.id), [item.id]);
  assert.deepEqual((await search({ q: 'sunday', mode: 'keyword', project_id: 'crud' })).body.results, []);

  const d = await aos.api('DELETE', `/api/memory/items/${item.id}`);
  assert.equal(d.status, 200, d.text);
  assert.ok(d.body.deleted_at);
  // deleted: not found by any mode, still readable by id (to restore it)
  for (const mode of ['keyword', 'vector', 'hybrid'])
    assert.deepEqual((await search({ q: 'staging database saturday', mode, project_id: 'crud' })).body.results, [], mode);
  assert.equal((await aos.api('GET', `/api/memory/items/${item.id}`)).body.deleted_at, d.body.deleted_at);
  const again = await aos.api('DELETE', `/api/memory/items/${item.id}`);
  assertErrorShape(assert, again, 409, 'conflict');

  const r = await aos.api('POST', `/api/memory/items/${item.id}/restore`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.deleted_at, null);
  assert.equal(r.body.version, 4);
  for (const mode of ['keyword', 'vector', 'hybrid'])
    assert.equal((await search({ q: 'staging database saturday', mode, project_id: 'crud' })).body.results[0]?.id, item.id, mode);
  assertErrorShape(assert, await aos.api('POST', `/api/memory/items/${item.id}/restore`), 409, 'conflict');

  const rows = (await audit()).filter((a) => a.resource === `mem_items/${item.id}`);
  assert.deepEqual(rows.map((a) => a.action).reverse(),
    ['memory.item.create', 'memory.item.update', 'memory.item.delete', 'memory.item.restore']);
  for (const a of rows) {
    assert.equal(a.actor, 'token:owner');
    assert.equal(a.diff.project_id, 'crud');
    assert.ok(!JSON.stringify(a.diff).includes('Saturday'), 'the audit row holds the text\'s length, not the text');
  }
  assert.deepEqual(rows.find((a) => a.action === 'memory.item.update').diff.changed.sort(), ['subject', 'tags', 'text']);

  assertErrorShape(assert, await aos.api('GET', '/api/memory/items/999999'), 404, 'not_found');
  assertErrorShape(assert, await aos.api('GET', '/api/memory/items/abc'), 400, 'invalid_argument');
});

test('bad input is refused and changes nothing', async () => {
  const before = (await audit()).length;
  const bad = [
    [{ text: 'x', project_id: 'p', colour: 'red' }, /unknown field 'colour'/],
    [{ project_id: 'p' }, /'text'/],
    [{ text: '', project_id: 'p' }, /'text'/],
    [{ text: 42, project_id: 'p' }, /'text'/],
    [{ text: 'x' }, /'project_id'/],
    [{ text: 'x', project_id: 'a b' }, /'project_id'/],
    [{ text: 'x', project_id: 'p*' }, /'project_id'/],
    [{ text: 'x', project_id: 'p', tags: 'a' }, /'tags'/],
    [{ text: 'x', project_id: 'p', tags: ['a,b'] }, /tags\[0\]/],
    [{ text: 'x', project_id: 'p', tags: [''] }, /tags\[0\]/],
    [{ text: 'x', project_id: 'p', tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, /at most 32 tags/],
    [{ text: 'x', project_id: 'p', meta: [1] }, /'meta'/],
    [{ text: 'x', project_id: 'p', subject: 7 }, /'subject'/],
    [{ text: 'x'.repeat(32769), project_id: 'p' }, /longer than 32768/],
    [[1, 2], /object/],
  ];
  for (const [body, msg] of bad) {
    const r = await put(body);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.match(r.body.error.message, msg, JSON.stringify(body).slice(0, 80));
  }
  const big = await put({ text: 'x'.repeat(200 * 1024), project_id: 'p' });
  assert.equal(big.status, 413, big.text);
  const notJson = await put('{"text": ');
  assert.equal(notJson.status, 400);
  const c = await put({ text: 'bad input target', project_id: 'badin' });
  assert.equal(c.status, 201);
  const p = await aos.api('PATCH', `/api/memory/items/${c.body.id}`, { text: 'changed', bogus: 1 });
  assertErrorShape(assert, p, 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('PATCH', `/api/memory/items/${c.body.id}`, {}), 400, 'invalid_argument');
  assert.equal((await aos.api('GET', `/api/memory/items/${c.body.id}`)).body.version, 1);
  for (const [params, msg] of [
    [{}, /'q'/], [{ q: 'x', mode: 'fuzzy' }, /'mode'/], [{ q: 'x', k: '0' }, /'k'/],
    [{ q: 'x', k: '101' }, /'k'/], [{ q: 'x', k: '1e1' }, /'k'/], [{ q: 'x', k: '-3' }, /'k'/],
    [{ q: 'x'.repeat(1025) }, /'q'/], [{ q: 'x', tags: 'a,,b' }, /tags/], [{ q: 'x', project_id: 'no spaces' }, /'project_id'/],
  ]) {
    const r = await search(params);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.match(r.body.error.message, msg, JSON.stringify(params));
  }
  assert.equal((await audit()).length, before + 1); // only the one create
});

test('tag and project filters', async () => {
  const mk = async (text, project_id, tags) => (await put({ text, project_id, tags })).body.id;
  const a = await mk('filter fixture alpha note', 'fa', ['red', 'big']);
  const b = await mk('filter fixture alpha note too', 'fa', ['red']);
  const c = await mk('filter fixture alpha note three', 'fb', ['red', 'big']);
  for (const mode of ['keyword', 'vector', 'hybrid']) {
    const ids = async (p) => (await search({ q: 'filter fixture alpha', mode, ...p })).body.results.map((x) => x.id).sort((x, y) => x - y);
    assert.deepEqual(await ids({ project_id: 'fa' }), [a, b], mode);
    assert.deepEqual(await ids({ project_id: 'fb' }), [c], mode);
    assert.deepEqual(await ids({ tags: 'red,big' }), [a, c], mode);
    assert.deepEqual(await ids({ tags: 'big', project_id: 'fa' }), [a], mode);
    assert.deepEqual(await ids({ tags: 'nosuch' }), [], mode);
    assert.deepEqual(await ids({ project_id: 'nosuch' }), [], mode);
  }
  const k1 = await search({ q: 'filter fixture alpha', k: '1' });
  assert.equal(k1.body.results.length, 1);
});

test('the largest k with tags over more than a thousand items', async () => {
  // a tag filter asks the index for 20k candidates (2000 at k 100): with
  // the keyword list's 300 that was more rows than one read may take
  for (let i = 0; i < 1100; i += 50)
    await Promise.all(Array.from({ length: 50 }, (_, j) => put({ text: `bulk note number ${i + j} about filters`, project_id: 'bulk', tags: (i + j) % 10 ? ['plain'] : ['rare'] })));
  for (const mode of ['keyword', 'vector', 'hybrid']) {
    const big = await search({ q: 'bulk note filters', k: '100', tags: 'rare', mode });
    assert.equal(big.status, 200, `${mode}: ${big.text}`);
    assert.ok(big.body.results.length >= 90, `${mode}: ${big.body.results.length}`);
    assert.ok(big.body.results.every((x) => x.tags.includes('rare')));
  }
});

test('grants per project: an Operator on p1 only neither reads nor finds p2', async () => {
  const p1 = (await put({ text: 'grant fixture secret plan for p1', project_id: 'g-p1' })).body;
  const p2 = (await put({ text: 'grant fixture secret plan for p2', project_id: 'g-p2' })).body;
  // the memory tools themselves, and project g-p1
  const t = await mint('mem-p1', [{ role: 'operator', resource: 'project:g-p1' }, { role: 'operator', resource: 'tool:memory__*' }]);
  const v = await mint('mem-view-p1', [{ role: 'viewer', resource: 'project:g-p1' }]);

  assert.equal((await aos.api('GET', `/api/memory/items/${p1.id}`, undefined, t)).status, 200);
  // another project's item does not exist for this token
  assertErrorShape(assert, await aos.api('GET', `/api/memory/items/${p2.id}`, undefined, t), 404, 'not_found');
  assertErrorShape(assert, await aos.api('DELETE', `/api/memory/items/${p2.id}`, undefined, t), 404, 'not_found');
  assertErrorShape(assert, await aos.api('PATCH', `/api/memory/items/${p2.id}`, { text: 'mine' }, t), 404, 'not_found');
  for (const mode of ['keyword', 'vector', 'hybrid']) {
    const r = await search({ q: 'grant fixture secret plan', mode }, t);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.results.map((x) => x.project_id), ['g-p1'], mode);
  }
  assertErrorShape(assert, await search({ q: 'grant fixture', project_id: 'g-p2' }, t), 403, 'forbidden');
  // writes: allowed in p1, refused in p2 and when moving an item to p2
  const mine = await put({ text: 'written by the p1 operator', project_id: 'g-p1' }, t);
  assert.equal(mine.status, 201, mine.text);
  assert.match(mine.body.source, /^token:/);
  assert.notEqual(mine.body.source, 'token:owner');
  assertErrorShape(assert, await put({ text: 'nope', project_id: 'g-p2' }, t), 403, 'forbidden');
  assertErrorShape(assert, await aos.api('PATCH', `/api/memory/items/${mine.body.id}`, { project_id: 'g-p2' }, t), 403, 'forbidden');
  // a Viewer of p1 reads and searches, does not write
  assert.equal((await aos.api('GET', `/api/memory/items/${p1.id}`, undefined, v)).status, 200);
  assert.deepEqual((await search({ q: 'grant fixture' }, v)).body.results.map((x) => x.id), [p1.id]);
  assertErrorShape(assert, await aos.api('DELETE', `/api/memory/items/${p1.id}`, undefined, v), 403, 'forbidden');
  assertErrorShape(assert, await put({ text: 'nope', project_id: 'g-p1' }, v), 403, 'forbidden');
  // the same through MCP, as the caller's principal
  const ms = await mcp('memory.search', { q: 'grant fixture secret plan' }, t);
  assert.equal(ms.status, 200, ms.text);
  assert.deepEqual(ms.body.structuredContent.results.map((x) => x.project_id), ['g-p1']);
  const mg = await mcp('memory.get', { id: p2.id }, t);
  assert.notEqual(mg.status, 200, mg.text);
  assert.equal((await aos.api('GET', `/api/memory/items/${p2.id}`)).body.deleted_at, null);
});

test('the item list: newest first, by project and tags, deleted ones apart, paged, per project rights', async () => {
  const made = [];
  for (let i = 0; i < 5; i++) {
    const r = await put({ text: `list item ${i}`, project_id: i < 3 ? 'lst1' : 'lst2', tags: i % 2 ? ['odd', 'x'] : ['even', 'x'] });
    assert.equal(r.status, 201, r.text);
    made.push(r.body.id);
  }
  const list = async (q, token) => {
    const r = await aos.api('GET', `/api/memory/items?${new URLSearchParams(q)}`, undefined, token);
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  assert.deepEqual((await list({ project_id: 'lst1' })).items.map((i) => i.id), made.slice(0, 3).reverse());
  assert.deepEqual((await list({ project_id: 'lst1', tags: 'odd' })).items.map((i) => i.id), [made[1]]);
  assert.deepEqual((await list({ project_id: 'lst2', tags: 'even,x' })).items.map((i) => i.id), [made[4]]);
  // paging
  const p1 = await list({ project_id: 'lst1', limit: 2 });
  assert.deepEqual(p1.items.map((i) => i.id), [made[2], made[1]]);
  assert.equal(p1.next_before, made[1]);
  const p2 = await list({ project_id: 'lst1', limit: 2, before: p1.next_before });
  assert.deepEqual(p2.items.map((i) => i.id), [made[0]]);
  assert.equal(p2.next_before, null);
  // deleted items apart
  assert.equal((await aos.api('DELETE', `/api/memory/items/${made[0]}`)).status, 200);
  assert.deepEqual((await list({ project_id: 'lst1' })).items.map((i) => i.id), [made[2], made[1]]);
  assert.deepEqual((await list({ project_id: 'lst1', deleted: 'true' })).items.map((i) => i.id), [made[0]]);
  // a reader of lst2 only: without project_id it sees lst2's, lst1 is refused
  const tok = await mint('lister', [{ role: 'viewer', resource: 'project:lst2' }]);
  const mine = await list({}, tok);
  assert.ok(mine.items.length >= 2 && mine.items.every((i) => i.project_id === 'lst2'), JSON.stringify(mine));
  assert.equal((await aos.api('GET', '/api/memory/items?project_id=lst1', undefined, tok)).status, 403);
  // bad input
  for (const q of ['limit=0', 'limit=x', 'before=-1', 'deleted=yes', 'project_id=a%20b'])
    assertErrorShape(assert, await aos.api('GET', `/api/memory/items?${q}`), 400);
});

test('keyword search in Chinese and English', async () => {
  const zh = (await put({ text: '我们用向量检索来查找相似的笔记', project_id: 'kw' })).body.id;
  const en = (await put({ text: 'Indexing notes with BM25 ranking', project_id: 'kw' })).body.id;
  const mixed = (await put({ text: '把GPT模型的输出写进日志', project_id: 'kw' })).body.id;
  const ids = async (q) => (await search({ q, mode: 'keyword', project_id: 'kw' })).body.results.map((x) => x.id);
  assert.deepEqual(await ids('检索'), [zh]); // a two-character word inside a longer run
  assert.deepEqual(await ids('相似笔记'), [zh]);
  assert.deepEqual(await ids('bm25'), [en]); // case-blind
  assert.deepEqual(await ids('INDEXING'), [en]);
  assert.deepEqual(await ids('gpt'), [mixed]);
  assert.deepEqual(await ids('模型'), [mixed]);
  assert.deepEqual(await ids('天气'), []);
  assert.deepEqual(await ids('"*) OR NOT ('), []); // no FTS5 syntax gets through
  const r = await search({ q: '检索', mode: 'keyword', project_id: 'kw' });
  assert.ok(r.body.results[0].scores.keyword > 0);
  assert.equal(r.body.results[0].scores.vector, null);
  assert.equal(r.body.results[0].ranks.keyword, 1);
});

// Loads the labelled set into project "set"; returns key -> id.
async function loadSet() {
  const ids = {};
  for (const it of SET.items) {
    const r = await put({ text: it.text, project_id: 'set', tags: it.tags, subject: it.key });
    assert.equal(r.status, 201, r.text);
    ids[it.key] = r.body.id;
  }
  return ids;
}

test('vector and hybrid ranking on the labelled set: the expected item ranks first', async () => {
  const ids = await loadSet();
  const firsts = { keyword: 0, vector: 0, hybrid: 0 };
  for (const { q, relevant, hard } of SET.queries) {
    for (const mode of ['keyword', 'vector', 'hybrid']) {
      const r = await search({ q, mode, project_id: 'set', k: '10' });
      assert.equal(r.status, 200, r.text);
      const got = r.body.results.map((x) => x.id);
      if (got[0] === ids[relevant[0]]) firsts[mode]++;
      const why = `${mode} '${q}': ${JSON.stringify(r.body.results.map((x) => x.subject))}`;
      // a query marked hard (the fixture says why) needs the top 3
      if (mode !== 'keyword' && !hard) assert.equal(got[0], ids[relevant[0]], why);
      if (mode !== 'keyword' && hard) assert.ok(got.slice(0, 3).includes(ids[relevant[0]]), why);
      // score parts: each result says what it got from each list
      for (const x of r.body.results) {
        if (mode === 'hybrid') {
          assert.ok(x.scores.rrf > 0);
          assert.ok(Math.abs(x.scores.rrf - ((x.ranks.keyword ? 1 / (60 + x.ranks.keyword) : 0) + (x.ranks.vector ? 1 / (60 + x.ranks.vector) : 0))) < 1e-9);
        }
        if (mode === 'vector') assert.ok(x.scores.vector > 0 && x.scores.vector <= 1.0001);
      }
      const scores = r.body.results.map((x) => x.score);
      assert.deepEqual(scores, [...scores].sort((a, b) => b - a), 'best first');
    }
  }
  // reported, not asserted: keyword search misses paraphrases
  console.log(`labelled set, first result relevant: ${JSON.stringify(firsts)} of ${SET.queries.length}`);
});

test('the MCP tools: put, get, search, delete, restore', async () => {
  const tools = await aos.api('GET', '/mcp/registry/memory');
  assert.equal(tools.status, 200, tools.text);
  const p = await mcp('memory.put', { text: 'MCP wrote this note about kubernetes upgrades', project_id: 'mcp', tags: ['k8s'] });
  assert.equal(p.status, 200, p.text);
  const item = p.body.structuredContent;
  assert.equal(item.project_id, 'mcp');
  assert.deepEqual(JSON.parse(p.body.content[0].text), item);
  const u = await mcp('memory.put', { id: item.id, subject: 'cluster' });
  assert.equal(u.body.structuredContent.subject, 'cluster');
  assert.equal(u.body.structuredContent.version, 2);
  assert.equal((await mcp('memory.get', { id: item.id })).body.structuredContent.text, item.text);
  const s = await mcp('memory.search', { q: 'kubernetes upgrade', project_id: 'mcp', mode: 'hybrid', k: 3 });
  assert.equal(s.body.structuredContent.results[0].id, item.id);
  assert.equal((await mcp('memory.delete', { id: item.id })).body.structuredContent.deleted_at !== null, true);
  assert.deepEqual((await mcp('memory.search', { q: 'kubernetes', project_id: 'mcp' })).body.structuredContent.results, []);
  assert.equal((await mcp('memory.restore', { id: item.id })).body.structuredContent.deleted_at, null);
  // bad arguments: a tool error, nothing written
  const bad = await mcp('memory.put', { text: 'x', project_id: 'mcp', nope: 1 });
  assert.equal(bad.body.isError, true, bad.text);
  assert.match(bad.body.content[0].text, /unknown field 'nope'/);
  assert.equal((await mcp('memory.search', { q: 'x', k: 'ten' })).body.isError, true);
  assert.equal((await mcp('memory.get', { id: 'x' })).body.isError, true);
  const rows = (await audit()).filter((a) => a.resource === `mem_items/${item.id}`);
  assert.equal(rows.length, 4);
});

// A task's run of one memory tool step, to its end: [status, the step's output].
async function taskStep(tool, args, token, extra = {}) {
  const r = await aos.api('POST', '/api/run', { plan: { steps: [{ id: 'm', tool, args }] }, constraints: { approval: 'never', tools: ['memory__*'] }, ...extra }, token);
  assert.equal(r.status, 201, r.text);
  for (const end = Date.now() + 20000; Date.now() < end; await new Promise((res) => setTimeout(res, 100))) {
    const ep = await aos.api('GET', `/api/episodes/${r.body.trace_id}`);
    if (['done', 'failed'].includes(ep.body.status)) {
      const step = ep.body.steps.find((s) => s.id === 'm');
      return [ep.body.status, step?.attempts?.at(-1)];
    }
  }
  assert.fail('the task did not end');
}

test('a task calls the memory tools with its submitter\'s project rights', async () => {
  // the owner's task writes and finds an item
  let [status, att] = await taskStep('memory__memory.put', { text: 'a task wrote this about invoices', project_id: 'taskmem' });
  assert.equal(status, 'done', JSON.stringify(att));
  const id = att.output.structuredContent.id;
  [status, att] = await taskStep('memory__memory.search', { q: 'invoices', project_id: 'taskmem' });
  assert.equal(status, 'done', JSON.stringify(att));
  assert.equal(att.output.structuredContent.results[0].id, id);
  // a submitter of project tm1 only: its task writes in tm1, not in tm2
  const tok = await mint('taskmem-tm1', [{ role: 'operator', resource: 'project:tm1' }, { role: 'operator', resource: 'tool:memory__*' }]);
  [status, att] = await taskStep('memory__memory.put', { text: 'tm1 note', project_id: 'tm1' }, tok, { project_id: 'tm1' });
  assert.equal(status, 'done', JSON.stringify(att));
  [status, att] = await taskStep('memory__memory.put', { text: 'tm2 note', project_id: 'tm2' }, tok, { project_id: 'tm1' });
  assert.equal(status, 'failed', JSON.stringify(att));
  assert.deepEqual((await search({ q: 'note', project_id: 'tm2' })).body.results, []);
  assert.equal((await search({ q: 'note', project_id: 'tm1' })).body.results.length, 1);
});

test('the vector index is rebuilt from the store after a restart', async () => {
  const d = await startAosd();
  try {
    const a = await d.api('POST', '/api/memory/items', { text: 'persistent vector about glaciers melting', project_id: 'rs' });
    const b = await d.api('POST', '/api/memory/items', { text: 'deleted vector about glaciers', project_id: 'rs' });
    assert.equal((await d.api('DELETE', `/api/memory/items/${b.body.id}`)).status, 200);
    await d.stop();
    const e = await startAosd({ dataDir: d.dataDir });
    try {
      const r = await e.api('GET', `/api/memory/search?${new URLSearchParams({ q: 'glaciers', mode: 'vector' })}`);
      assert.deepEqual(r.body.results.map((x) => x.id), [a.body.id]);
      assert.match(e.logs(), /vector index: 1 item/);
    } finally { await e.stop(); }
  } finally { await d.cleanup(); }
});

test('profiles: each principal its own, validated, audited; also through MCP', async () => {
  const t = await mint('mem-profile', [{ role: 'operator', resource: 'tool:memory__*' }]);
  const empty = await aos.api('GET', '/api/memory/profile', undefined, t);
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual(empty.body.profile, {});
  assert.equal(empty.body.version, 0);
  const prof = { language: 'zh-CN', timezone: 'Asia/Shanghai', task_defaults: { priority: 2 }, notifications: { email: false } };
  const p = await aos.api('PUT', '/api/memory/profile', prof, t);
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(p.body.profile, prof);
  assert.equal(p.body.version, 1);
  assert.match(p.body.principal, /^token:/);
  // the owner's profile is another one
  assert.deepEqual((await aos.api('GET', '/api/memory/profile')).body.profile, {});
  assert.deepEqual((await aos.api('GET', '/api/memory/profile', undefined, t)).body.profile, prof);
  // bad input changes nothing
  for (const bad of [{ colour: 'x' }, { language: 'zh CN' }, { language: 7 }, { task_defaults: [] }, [1]]) {
    const r = await aos.api('PUT', '/api/memory/profile', bad, t);
    assertErrorShape(assert, r, 400, 'invalid_argument');
  }
  assert.equal((await aos.api('GET', '/api/memory/profile', undefined, t)).body.version, 1);
  const rows = (await audit()).filter((a) => a.action === 'memory.profile.put');
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0].diff.fields.sort(), ['language', 'notifications', 'task_defaults', 'timezone']);
  // MCP: read, then replace
  const g = await mcp('memory.profile', {}, t);
  assert.deepEqual(g.body.structuredContent.profile, prof);
  const s = await mcp('memory.profile', { set: { language: 'en' } }, t);
  assert.deepEqual(s.body.structuredContent.profile, { language: 'en' });
  assert.equal(s.body.structuredContent.version, 2);
  assert.equal((await mcp('memory.profile', { set: { nope: 1 } }, t)).body.isError, true);
});

test('constraints.memory: the top items go into the task\'s inputs, searched as the submitter', async () => {
  const want = (await put({ text: 'Constraint fixture: deployments need an approval from the on-call engineer', project_id: 'cm' })).body;
  await put({ text: 'Constraint fixture: the cafeteria menu', project_id: 'cm' });
  await put({ text: 'Constraint fixture: deployments elsewhere', project_id: 'cm-other' });
  const plan = { steps: [{ id: 's', tool: 'aos__echo', args: { message: 'go' } }] };
  const r = await aos.api('POST', '/api/run', { plan, constraints: { memory: { q: 'constraint fixture deployment approval', project_id: 'cm', k: 2 } } });
  assert.equal(r.status, 201, r.text);
  const ep = await aos.api('GET', `/api/episodes/${r.body.trace_id}`);
  const mem = ep.body.spec.inputs.memory;
  assert.equal(mem.length, 2);
  assert.equal(mem[0].id, want.id);
  assert.equal(mem[0].text, want.text);
  assert.deepEqual(Object.keys(mem[0]).sort(), ['id', 'score', 'subject', 'tags', 'text']);
  // q defaults to the goal; other inputs stay
  const g = await aos.api('POST', '/api/run', { goal: 'constraint fixture cafeteria', plan, inputs: { a: 1 }, constraints: { memory: { project_id: 'cm', mode: 'keyword' } } });
  assert.equal(g.status, 201, g.text);
  const gs = (await aos.api('GET', `/api/episodes/${g.body.trace_id}`)).body.spec;
  assert.equal(gs.inputs.a, 1);
  assert.match(gs.inputs.memory[0].text, /cafeteria/);
  // as the submitter: a token that may run tasks but not read cm is refused
  const t = await mint('cm-runner', [{ role: 'operator', resource: 'task:*' }, { role: 'operator', resource: 'tool:*' }, { role: 'viewer', resource: 'project:cm-other' }]);
  const f = await aos.api('POST', '/api/run', { plan, constraints: { memory: { q: 'deployments', project_id: 'cm' } } }, t);
  assertErrorShape(assert, f, 403, 'forbidden');
  // without a project it finds only what it may read
  const o = await aos.api('POST', '/api/run', { plan, constraints: { memory: { q: 'constraint fixture deployments' } } }, t);
  assert.equal(o.status, 201, o.text);
  const os = (await aos.api('GET', `/api/episodes/${o.body.trace_id}`)).body.spec;
  assert.deepEqual(os.inputs.memory.map((x) => x.text), ['Constraint fixture: deployments elsewhere']);
  // bad input: nothing submitted (the next job's id follows the last one's)
  for (const [c, msg] of [[{ k: 50 }, /'k' must be 1..20/], [{ q: 'x', bogus: 1 }, /unknown argument 'bogus'/], ['x', /must be an object/], [{ q: 'x', mode: 'psychic' }, /'mode'/]]) {
    const b = await aos.api('POST', '/api/run', { plan, constraints: { memory: c } });
    assertErrorShape(assert, b, 400, 'invalid_argument');
    assert.match(b.body.error.message, msg);
  }
  const clash = await aos.api('POST', '/api/run', { plan, inputs: { memory: 1 }, constraints: { memory: { q: 'x' } } });
  assertErrorShape(assert, clash, 400, 'invalid_argument');
  const next = await aos.api('POST', '/api/run', { plan });
  assert.equal(next.body.job_id, o.body.job_id + 1);
});

test('blueprints: versions with diffs, instantiation, rights per project, bad input', async () => {
  const spec = { goal: 'Deploy ${params.service} to ${params.env}', plan: { steps: [{ id: 's', tool: 'aos__echo', args: { message: '${params.service}' } }] }, priority: '${params.priority}' };
  const params = { service: { description: 'what to deploy', required: true }, env: { default: 'staging' }, priority: { default: 1 } };
  const c = await aos.api('POST', '/api/memory/blueprints', { project_id: 'bp', name: 'deploy', description: 'SOP: deploy a service', spec, params });
  assert.equal(c.status, 201, c.text);
  const bp = c.body;
  assert.equal(bp.version, 1);
  assert.equal(bp.diff, null);
  assert.deepEqual(bp.spec, spec);
  assertErrorShape(assert, await aos.api('POST', '/api/memory/blueprints', { project_id: 'bp', name: 'deploy', spec }), 409, 'conflict');

  // a new version: its diff names what changed
  const spec2 = { ...spec, goal: 'Deploy ${params.service} to ${params.env} carefully' };
  const u = await aos.api('PUT', `/api/memory/blueprints/${bp.id}`, { description: 'SOP v2', spec: spec2, params });
  assert.equal(u.status, 200, u.text);
  assert.equal(u.body.version, 2);
  assert.deepEqual(u.body.diff, [
    { op: 'replace', path: '/description', from: 'SOP: deploy a service', to: 'SOP v2' },
    { op: 'replace', path: '/spec/goal', from: spec.goal, to: spec2.goal },
  ]);
  const vs = await aos.api('GET', `/api/memory/blueprints/${bp.id}/versions`);
  assert.deepEqual(vs.body.versions.map((v) => v.version), [1, 2]);
  assert.equal(vs.body.versions[0].spec.goal, spec.goal);
  assert.equal((await aos.api('GET', `/api/memory/blueprints/${bp.id}`)).body.version, 2);

  // instantiation: whole-string references keep their type, others become text
  const i = await aos.api('POST', `/api/memory/blueprints/${bp.id}/instantiate`, { params: { service: 'billing', priority: 5 } });
  assert.equal(i.status, 200, i.text);
  assert.equal(i.body.version, 2);
  assert.deepEqual(i.body.spec, { goal: 'Deploy billing to staging carefully', plan: { steps: [{ id: 's', tool: 'aos__echo', args: { message: 'billing' } }] }, priority: 5 });
  const v1 = await aos.api('POST', `/api/memory/blueprints/${bp.id}/instantiate`, { params: { service: 'x' }, version: 1 });
  assert.equal(v1.body.spec.goal, 'Deploy x to staging');
  assert.equal(v1.body.spec.priority, 1);
  // the spec runs as a task
  const run = await aos.api('POST', '/api/run', i.body.spec);
  assert.equal(run.status, 201, run.text);
  for (const [body, msg] of [[{ params: {} }, /'service' is required/], [{ params: { nope: 1 } }, /no parameter 'nope'/], [{ params: { service: 'x' }, extra: 1 }, /unknown field 'extra'/], [{ version: 0 }, /'version'/]])
    assert.match((await aos.api('POST', `/api/memory/blueprints/${bp.id}/instantiate`, body)).body.error.message, msg);
  assertErrorShape(assert, await aos.api('POST', `/api/memory/blueprints/${bp.id}/instantiate`, { params: { service: 'x' }, version: 9 }), 404, 'not_found');

  // rights: a viewer of bp reads and instantiates, does not change; others do not see it
  const v = await mint('bp-viewer', [{ role: 'viewer', resource: 'project:bp' }]);
  const o = await mint('bp-other', [{ role: 'operator', resource: 'project:bp-other' }]);
  assert.equal((await aos.api('GET', `/api/memory/blueprints/${bp.id}`, undefined, v)).status, 200);
  assert.equal((await aos.api('POST', `/api/memory/blueprints/${bp.id}/instantiate`, { params: { service: 'y' } }, v)).status, 200);
  assertErrorShape(assert, await aos.api('PUT', `/api/memory/blueprints/${bp.id}`, { spec }, v), 403, 'forbidden');
  assertErrorShape(assert, await aos.api('GET', `/api/memory/blueprints/${bp.id}`, undefined, o), 404, 'not_found');
  assertErrorShape(assert, await aos.api('PUT', `/api/memory/blueprints/${bp.id}`, { spec }, o), 404, 'not_found');
  assertErrorShape(assert, await aos.api('POST', '/api/memory/blueprints', { project_id: 'bp', name: 'x', spec }, o), 403, 'forbidden');
  assert.deepEqual((await aos.api('GET', '/api/memory/blueprints', undefined, o)).body.blueprints, []);
  assert.deepEqual((await aos.api('GET', '/api/memory/blueprints?project_id=bp', undefined, v)).body.blueprints.map((b) => b.id), [bp.id]);

  // bad input changes nothing
  for (const [body, msg] of [
    [{ project_id: 'bp', name: 'n', spec: 'x' }, /'spec'/], [{ project_id: 'bp', name: 'a b', spec }, /'name'/],
    [{ project_id: 'bp', name: 'n', spec, params: { '1x': {} } }, /not a name/], [{ project_id: 'bp', name: 'n', spec, params: { a: { kind: 1 } } }, /unknown member 'kind'/],
    [{ project_id: 'bp', name: 'n', spec, colour: 1 }, /unknown field 'colour'/], [{ name: 'n', spec }, /'project_id'/],
  ]) {
    const r = await aos.api('POST', '/api/memory/blueprints', body);
    assertErrorShape(assert, r, 400, 'invalid_argument');
    assert.match(r.body.error.message, msg);
  }
  assertErrorShape(assert, await aos.api('PUT', `/api/memory/blueprints/${bp.id}`, { spec, name: 'rename' }), 400, 'invalid_argument');
  assert.equal((await aos.api('GET', `/api/memory/blueprints/${bp.id}`)).body.version, 2);
  const rows = (await audit()).filter((a) => a.resource === `mem_blueprints/${bp.id}`);
  assert.deepEqual(rows.map((a) => a.action).reverse(), ['memory.blueprint.create', 'memory.blueprint.update']);
});
