// memory-hnsw.test.mjs - the memory service builds its HNSW graph in the
// background past --memory-hnsw-min-items (issue 17): searches answer with
// the scans before and during the build and with the graph after
// ("index" in the answer says which: the graph walks the int8 codes and
// re-ranks with float32), with the same ranking on the
// labelled set; items written after the swap are in the graph; a restart
// builds the graph again at load.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAosd, ROOT } from './lib.mjs';

const SET = JSON.parse(readFileSync(join(ROOT, 'tests/e2e/fixtures/memory-set.json'), 'utf8'));
const MIN = 60;
const ARGS = ['--memory-hnsw-min-items', String(MIN), '--memory-hnsw-threads', '2'];
let dataDir;

after(async () => {
  if (dataDir) {
    const { rmSync } = await import('node:fs');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

async function expectClean(aos) {
  const { code } = await aos.stop();
  const logs = aos.logs();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error/);
}

const search = (aos, params) =>
  aos.api('GET', `/api/memory/search?${new URLSearchParams({ mode: 'vector', k: '5', ...params })}`);

// every non-hard query of the labelled set finds its expected item first
async function checkSet(aos, ids, index) {
  for (const { q, relevant, hard } of SET.queries) {
    const r = await search(aos, { q, project_id: 'set' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.index, index, q);
    const got = r.body.results.map((x) => x.id);
    if (hard) assert.ok(got.slice(0, 3).includes(ids[relevant[0]]), q);
    else assert.equal(got[0], ids[relevant[0]], q);
  }
}

async function waitForGraph(aos, q) {
  const deadline = Date.now() + 60000;
  for (;;) {
    const r = await search(aos, { q });
    assert.equal(r.status, 200, r.text);
    if (r.body.index === 'hnsw_int8') return;
    assert.equal(r.body.index, 'exact'); // the scan answers meanwhile
    assert.ok(Date.now() < deadline, 'the graph was not in use within 60 s');
    await new Promise((res) => setTimeout(res, 50));
  }
}

test('past the threshold the graph is built in the background and then answers', async () => {
  const aos = await startAosd({ args: ARGS });
  dataDir = aos.dataDir;
  try {
    const ids = {};
    for (const it of SET.items) {
      const r = await aos.api('POST', '/api/memory/items', { text: it.text, project_id: 'set', tags: it.tags, subject: it.key });
      assert.equal(r.status, 201, r.text);
      ids[it.key] = r.body.id;
    }
    // below the threshold: the exact scan, and no build
    await checkSet(aos, ids, 'exact');
    assert.doesNotMatch(aos.logs(), /building the HNSW graph/);
    // filler notes past it
    for (let i = 0; SET.items.length + i < MIN; i++) {
      const r = await aos.api('POST', '/api/memory/items', { text: `filler note ${i} about topic ${i % 7} number ${i * 13}`, project_id: 'fill' });
      assert.equal(r.status, 201, r.text);
    }
    await waitForGraph(aos, 'filler topic');
    assert.match(aos.logs(), new RegExp(`building the HNSW graph of ${MIN} vectors in 2 thread`));
    await checkSet(aos, ids, 'hnsw_int8');
    // written after the swap: in the graph; deleted: gone from it
    const late = await aos.api('POST', '/api/memory/items', { text: 'zeppelin hangar inventory for the airship fleet', project_id: 'late' });
    assert.equal(late.status, 201, late.text);
    let r = await search(aos, { q: 'zeppelin airship hangar', project_id: 'late' });
    assert.equal(r.body.index, 'hnsw_int8');
    assert.deepEqual(r.body.results.map((x) => x.id), [late.body.id]);
    assert.equal((await aos.api('DELETE', `/api/memory/items/${late.body.id}`)).status, 200);
    r = await search(aos, { q: 'zeppelin airship hangar', project_id: 'late' });
    assert.deepEqual(r.body.results, []);
    // keyword search used no vector index
    r = await search(aos, { q: 'filler', mode: 'keyword' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.index, null);
    await expectClean(aos);
    // a restart loads the vectors and builds the graph again
    const again = await startAosd({ args: ARGS, dataDir });
    try {
      await waitForGraph(again, 'filler topic');
      await checkSet(again, ids, 'hnsw_int8');
    } finally { await expectClean(again); }
  } catch (e) {
    await aos.stop().catch(() => {});
    throw e;
  }
});

test('bad settings of the graph are refused at start', async () => {
  for (const [flag, value] of [['--memory-hnsw-threads', '0'], ['--memory-hnsw-threads', '9'], ['--memory-hnsw-min-items', '100000001']]) {
    let err;
    try {
      const aos = await startAosd({ args: [flag, value] });
      await aos.stop();
      await aos.cleanup();
    } catch (e) { err = e; }
    assert.ok(err, `${flag} ${value} was accepted`);
    assert.match(String(err.message || err), new RegExp(flag));
  }
});
