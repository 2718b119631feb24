// memory-hnsw.test.mjs - the memory service builds its HNSW graph in the
// background past --memory-hnsw-min-items (issue 17): searches answer with
// the scans before and during the build and with the graph after
// ("index" in the answer says which: the graph walks the int8 codes and
// re-ranks with float32), with the same ranking on the
// labelled set; items written after the swap are in the graph. The graph
// is saved beside the database (memory-hnsw.graph) when built and at exit
// when it changed; a restart reads it back (the changes made meanwhile
// applied) instead of building; a damaged file is ignored with a log line
// and the graph built and saved again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startAosd, ROOT } from './lib.mjs';

const SET = JSON.parse(readFileSync(join(ROOT, 'tests/e2e/fixtures/memory-set.json'), 'utf8'));
const MIN = 60;
const ARGS = ['--memory-hnsw-min-items', String(MIN), '--memory-hnsw-threads', '2',
  '--memory-hnsw-m', '12', '--memory-hnsw-efc', '80', '--memory-hnsw-ef', '40'];
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
    assert.match(aos.logs(), new RegExp(`building the HNSW graph of ${MIN} vectors in 2 thread\\(s\\) \\(M 12, efConstruction 80, reading its file first\\)`));
    assert.match(aos.logs(), /no HNSW graph file at .*memory-hnsw\.graph yet/);
    await checkSet(aos, ids, 'hnsw_int8');
    // saved when built (the builder thread saves it after the swap)
    const file = join(dataDir, 'memory-hnsw.graph');
    for (let t = 0; !existsSync(file); t++) {
      assert.ok(t < 200, 'the graph was not saved');
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(statSync(file).size > 64);
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
    // saved when built, and again at exit (the add and delete changed it)
    assert.equal(aos.logs().match(/HNSW graph saved to .*memory-hnsw\.graph/g)?.length, 2, aos.logs().slice(-3000));
    // a restart reads the graph from its file instead of building it
    const again = await startAosd({ args: ARGS, dataDir });
    try {
      await waitForGraph(again, 'filler topic');
      await checkSet(again, ids, 'hnsw_int8');
      assert.match(again.logs(), new RegExp(`HNSW graph read from .*: ${MIN} of its ${MIN} nodes match`));
      assert.doesNotMatch(again.logs(), /ignored/);
    } finally { await expectClean(again); }
    // a damaged file (one byte flipped) is ignored, the graph built and saved again
    const bytes = readFileSync(file);
    bytes[66] ^= 0x55; // the first node's id: only the checksum can tell
    writeFileSync(file, bytes);
    const third = await startAosd({ args: ARGS, dataDir });
    try {
      await waitForGraph(third, 'filler topic');
      await checkSet(third, ids, 'hnsw_int8');
      assert.match(third.logs(), /HNSW graph file .*memory-hnsw\.graph ignored: checksum mismatch; building the graph/);
      for (let t = 0; !/HNSW graph saved to/.test(third.logs()); t++) {
        assert.ok(t < 200, 'the rebuilt graph was not saved');
        await new Promise((res) => setTimeout(res, 50));
      }
    } finally { await expectClean(third); }
    // other settings (M): the file is ignored, the graph built with them
    const fourth = await startAosd({ args: ARGS.map((a) => (a === '12' ? '8' : a)), dataDir });
    try {
      await waitForGraph(fourth, 'filler topic');
      assert.match(fourth.logs(), /ignored: made for 384 dims, M 12, efConstruction 80; the index has 384 dims, M 8/);
    } finally { await expectClean(fourth); }
  } catch (e) {
    await aos.stop().catch(() => {});
    throw e;
  }
});

test('bad settings of the graph are refused at start', async () => {
  for (const [flag, value] of [['--memory-hnsw-threads', '0'], ['--memory-hnsw-threads', '9'], ['--memory-hnsw-min-items', '100000001'],
    ['--memory-hnsw-m', '1'], ['--memory-hnsw-m', '65'], ['--memory-hnsw-efc', '0'], ['--memory-hnsw-efc', '4097'], ['--memory-hnsw-ef', '4097']]) {
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
