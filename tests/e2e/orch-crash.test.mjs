// orch-crash.test.mjs - kill -9 aosd while tasks run, start it again, and
// check what the tools saw. The tool (the faulty fixture's `count`) appends
// "<task>-<step> <idempotency key>" to a file that outlives every crash, so
// the file is the truth of what ran: every task finishes, every step ran at
// least once, a step ran twice only when it was in flight at a kill, and
// then with the same idempotency key both times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startAosd, waitReady, sleep, ROOT } from './lib.mjs';

const FAULTY = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');

test('kill -9 before, during and after steps: every task finishes, no step runs twice under two keys', { timeout: 240000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'aos-crash-'));
  const file = join(dataDir, 'calls.txt');
  const args = ['--orch-max-running', '4'];
  let aos = await startAosd({ dataDir, args });
  const r = await aos.api('POST', '/mcp/registry', { name: 'fx', command: process.execPath, args: [FAULTY], limits: { retries: 0 } });
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'fx');
  const N = 10, STEPS = 4;
  const traces = [];
  for (let i = 0; i < N; i++) {
    // before each counted step one of aosd's own read-only steps, whose
    // start is not waited for (docs/ORCHESTRATOR.md): after a crash the
    // store still holds a prefix of each task's moves
    const steps = Array.from({ length: STEPS }, (_, k) => [
      { id: `e${k}`, tool: 'aos__echo', args: { message: `t${i}-e${k}` } },
      {
        id: `s${k}`, tool: 'fx__count',
        // one long step per task: it is in flight when the kill comes
        args: { file, tag: `t${i}-s${k}`, ms: k === 1 ? 1500 : 40 + ((i * 37 + k * 11) % 120) },
      }]).flat();
    const s = await aos.api('POST', '/api/run', { plan: { steps }, constraints: { approval: 'never' } });
    assert.equal(s.status, 201, s.text);
    traces.push(s.body.trace_id);
  }
  // three crashes at different moments: some tasks queued (4 run at once),
  // some in a long step, some between steps
  for (const wait of [300, 900, 1700]) {
    await sleep(wait);
    aos.proc.kill('SIGKILL');
    await aos.exited;
    aos = await startAosd({ dataDir, args });
    await waitReady(aos, 'fx');
  }
  // every task ends, done
  const t0 = Date.now();
  let jobs;
  for (;;) {
    jobs = (await aos.api('GET', '/api/jobs?limit=100')).body.jobs;
    if (jobs.filter((j) => traces.includes(j.trace_id) && j.status === 'done').length === N) break;
    assert.ok(Date.now() - t0 < 120000, `not all done: ${JSON.stringify(jobs.map((j) => j.status))}`);
    await sleep(200);
  }
  // the tool's own record
  assert.ok(existsSync(file));
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' '));
  const seen = new Map();
  for (const [tag, key] of lines) {
    if (!seen.has(tag)) seen.set(tag, []);
    seen.get(tag).push(key);
  }
  let twice = 0;
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < STEPS; k++) {
      const keys = seen.get(`t${i}-s${k}`) || [];
      assert.ok(keys.length >= 1, `t${i}-s${k} never ran`);
      // once, and once more for each crash it was in flight at
      assert.ok(keys.length <= 4, `t${i}-s${k} ran ${keys.length} times: ${keys}`);
      // run again only as the same attempt: one key
      assert.equal(new Set(keys).size, 1, `t${i}-s${k} ran under several keys: ${keys}`);
      assert.equal(keys[0], `${traces[i]}:s${k}:1`);
      if (keys.length > 1) twice++;
    }
  }
  // at each crash at most the steps in flight (4 tasks at once) ran again
  assert.ok(twice <= 3 * 4, `${twice} steps ran again`);
  // the episodes say the same: each step done once, recovery events written
  let recovered = 0;
  for (const trace of traces) {
    const ep = (await aos.api('GET', `/api/episodes/${trace}`)).body;
    assert.equal(ep.status, 'done');
    for (let k = 0; k < STEPS; k++) {
      for (const id of [`e${k}`, `s${k}`]) {
        const st = ep.steps.find((s) => s.id === id);
        assert.equal(st.status, 'done');
        assert.equal(st.attempts.length, 1, `${trace} ${id}: ${JSON.stringify(st.attempts)}`);
      }
      assert.equal(ep.steps.find((s) => s.id === `e${k}`).attempts[0].output.content[0].text,
        `Echo: t${traces.indexOf(trace)}-e${k}`);
    }
    const types = ep.events.map((e) => e.type);
    if (types.includes('recovery.start')) {
      recovered++;
      assert.ok(types.includes('recovery.done'), types.join(','));
    }
  }
  assert.ok(recovered > 0, 'some task was running at a crash');
  const { code } = await aos.stop();
  assert.equal(code, 0, aos.logs().slice(-2000));
  await aos.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});
