#!/usr/bin/env node
// langgraph_peer.mjs - the peer of bench/orchestrator: LangGraph.js
// (@langchain/langgraph) with its SQLite checkpointer
// (@langchain/langgraph-checkpoint-sqlite, better-sqlite3, WAL, synchronous
// NORMAL as compiled by better-sqlite3), running the same work as aosd in
// the same run. Versions pinned in package-lock.json beside it.
//
// The graph: a StateGraph of 4 nodes a -> b -> c -> d, each adding 1 to a
// counter; compiled with SqliteSaver on a file database; each task is a new
// thread_id. Durability "sync" by default: a step's checkpoint is written
// before the next step starts, as aosd commits a step before the next one
// (--durability async is LangGraph's default: the write is not awaited).
//
//   tasks    --db F --conc C --seconds S --warmup W [--durability sync|async]
//            a promise pool of C invocations in a closed loop; after the
//            warm-up, tasks finished inside the measured window, their
//            latency, and the time of every SqliteSaver.put and putWrites
//            (wrapped); then the pool drains (every task started ends).
//   inflight --db F --count N
//            N threads invoked at once; node b never returns (a tool that
//            sleeps): once all N are in b, the checkpoint after a is durable
//            and "inflight=N" is printed; then it waits to be killed.
//   resume   --db F --count N --t0-ms MS
//            a new process after kill -9: invoke(null) on each of the N
//            threads at once; the time until all N have re-entered node b
//            (LangGraph runs the interrupted node again), from MS (the
//            caller's clock before it started this process) and from this
//            process's own start.
//   init     --db F
//            the checkpointer's empty tables only (the baseline of the
//            database size).
//   replay   --db F --steps N --rounds R
//            one thread of N steps (one node looping N times), then
//            getStateHistory of it, R times: the time to read it all back.
//
// Output: one line of key=value pairs per mode.
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import { performance } from 'node:perf_hooks';

function args() {
  const out = { mode: process.argv[2] };
  for (let i = 3; i < process.argv.length; i += 2) {
    const k = process.argv[i];
    const v = process.argv[i + 1];
    if (!k?.startsWith('--') || v === undefined) usage();
    out[k.slice(2)] = v;
  }
  return out;
}
function usage() {
  console.error('usage: langgraph_peer.mjs tasks|inflight|resume|replay --db FILE [options] (see the top of the file)');
  process.exit(2);
}
function num(a, k, dflt) {
  if (a[k] === undefined) {
    if (dflt === undefined) usage();
    return dflt;
  }
  const n = Number(a[k]);
  if (!Number.isFinite(n) || n < 0) usage();
  return n;
}
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))] : 0);
const sortNum = (v) => Float64Array.from(v).sort();
const cpuS = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const f = (x, d = 3) => Number(x).toFixed(d);

const State = Annotation.Root({ n: Annotation({ reducer: (_, b) => b, default: () => 0 }) });

// The saver with put and putWrites timed while `on` is set.
function timedSaver(db) {
  const saver = SqliteSaver.fromConnString(db);
  const t = { on: false, put: [], writes: [] };
  const put = saver.put.bind(saver);
  const putWrites = saver.putWrites.bind(saver);
  saver.put = async (...a) => {
    const t0 = performance.now();
    try { return await put(...a); } finally { if (t.on) t.put.push(performance.now() - t0); }
  };
  saver.putWrites = async (...a) => {
    const t0 = performance.now();
    try { return await putWrites(...a); } finally { if (t.on) t.writes.push(performance.now() - t0); }
  };
  return { saver, t };
}

let nodesRun = 0;
const inc = (s) => { nodesRun++; return { n: s.n + 1 }; };

function fourSteps(saver, b = inc) {
  return new StateGraph(State)
    .addNode('a', inc).addNode('b', b).addNode('c', inc).addNode('d', inc)
    .addEdge(START, 'a').addEdge('a', 'b').addEdge('b', 'c').addEdge('c', 'd').addEdge('d', END)
    .compile({ checkpointer: saver });
}

async function modeTasks(a) {
  const conc = num(a, 'conc'), secs = num(a, 'seconds'), warm = num(a, 'warmup', 2);
  const durability = a.durability ?? 'sync';
  if (durability !== 'sync' && durability !== 'async') usage();
  const { saver, t } = timedSaver(a.db);
  const graph = fourSteps(saver);
  // The phase comes from the clock, read by the workers themselves: the
  // invocations chain promises without ever yielding to the timers (the
  // checkpointer is synchronous), so a setTimeout would never fire.
  const start = performance.now();
  let phase = 0; // 0 warm-up, 1 measured, 2 draining
  let c0 = 0, t0 = 0, wall = 0, cpu = 0;
  const phaseNow = () => {
    const now = performance.now();
    if (phase === 0 && now - start >= warm * 1000) {
      phase = 1; t.on = true; c0 = cpuS(); t0 = now;
    }
    if (phase === 1 && now - t0 >= secs * 1000) {
      phase = 2; t.on = false; wall = (now - t0) / 1000; cpu = cpuS() - c0;
    }
    return phase;
  };
  let done = 0, total = 0, errors = 0, seq = 0, firstErr = null;
  const lat = [];
  async function worker(w) {
    while (phaseNow() < 2) {
      const ph = phase;
      const s0 = performance.now();
      try {
        const out = await graph.invoke({ n: 0 }, { configurable: { thread_id: `t${w}-${seq++}` }, durability });
        if (out.n !== 4) throw new Error(`the counter is ${out.n}, not 4`);
      } catch (e) {
        errors++;
        firstErr ??= e;
        continue;
      }
      total++;
      if (ph === 1 && phaseNow() === 1) {
        done++;
        lat.push(performance.now() - s0);
      }
    }
  }
  await Promise.all(Array.from({ length: conc }, (_, w) => worker(w)));
  if (firstErr) console.error(`langgraph_peer: ${firstErr.stack ?? firstErr}`);
  const l = sortNum(lat), p = sortNum(t.put), w = sortNum(t.writes);
  console.log(`mode=tasks conc=${conc} durability=${durability} tasks=${done} secs=${f(wall)} tps=${f(done / wall, 1)} ` +
    `p50_ms=${f(pct(l, 0.5))} p99_ms=${f(pct(l, 0.99))} max_ms=${f(l.length ? l[l.length - 1] : 0)} errors=${errors} ` +
    `total_tasks=${total} nodes_run=${nodesRun} put_n=${p.length} put_p50_us=${f(pct(p, 0.5) * 1e3, 1)} ` +
    `put_p99_us=${f(pct(p, 0.99) * 1e3, 1)} writes_n=${w.length} writes_p50_us=${f(pct(w, 0.5) * 1e3, 1)} ` +
    `writes_p99_us=${f(pct(w, 0.99) * 1e3, 1)} cpu_s=${f(cpu, 2)}`);
  return errors ? 1 : 0;
}

async function modeInflight(a) {
  const count = num(a, 'count');
  const saver = SqliteSaver.fromConnString(a.db);
  let entered = 0;
  const block = () => {
    if (++entered === count) console.log(`mode=inflight inflight=${count}`);
    return new Promise(() => {}); // a tool that never answers
  };
  const graph = fourSteps(saver, block);
  for (let i = 0; i < count; i++)
    graph.invoke({ n: 0 }, { configurable: { thread_id: `r${i}` }, durability: 'sync' }).catch((e) => {
      console.error(`langgraph_peer: ${e.stack ?? e}`);
      process.exit(1);
    });
  setInterval(() => {}, 1 << 30); // until killed
  return null;
}

async function modeResume(a) {
  const count = num(a, 'count'), t0ms = num(a, 't0-ms');
  const saver = SqliteSaver.fromConnString(a.db);
  const ready = performance.now(); // modules loaded, saver open
  let entered = 0;
  await new Promise((resolve, reject) => {
    const block = () => {
      if (++entered === count) resolve();
      return new Promise(() => {});
    };
    const graph = fourSteps(saver, block);
    for (let i = 0; i < count; i++)
      graph.invoke(null, { configurable: { thread_id: `r${i}` }, durability: 'sync' }).catch(reject);
  });
  const now = performance.now();
  const n = saver.db.prepare("SELECT count(DISTINCT thread_id) AS n FROM checkpoints WHERE thread_id LIKE 'r%'").get().n;
  console.log(`mode=resume resumed=${entered} threads=${n} from_exec_ms=${f(Date.now() - t0ms, 1)} ` +
    `from_process_start_ms=${f(now, 1)} from_ready_ms=${f(now - ready, 1)}`);
  process.exit(0);
}

async function modeReplay(a) {
  const steps = num(a, 'steps'), rounds = num(a, 'rounds', 10);
  const saver = SqliteSaver.fromConnString(a.db);
  const graph = new StateGraph(State)
    .addNode('inc', inc)
    .addEdge(START, 'inc')
    .addConditionalEdges('inc', (s) => (s.n >= steps ? END : 'inc'))
    .compile({ checkpointer: saver });
  const config = { configurable: { thread_id: `replay-${steps}` } };
  const r0 = performance.now();
  const out = await graph.invoke({ n: 0 }, { ...config, recursionLimit: steps + 10, durability: 'sync' });
  const runMs = performance.now() - r0;
  if (out.n !== steps) throw new Error(`the counter is ${out.n}, not ${steps}`);
  const times = [];
  let snaps = 0;
  for (let r = 0; r < rounds + 1; r++) {
    const t0 = performance.now();
    let k = 0;
    for await (const s of graph.getStateHistory(config)) if (s) k++;
    if (r > 0) times.push(performance.now() - t0); // the first warms the caches
    snaps = k;
  }
  const t = sortNum(times);
  console.log(`mode=replay steps=${steps} snapshots=${snaps} run_ms=${f(runMs, 1)} p50_ms=${f(pct(t, 0.5))} ` +
    `min_ms=${f(t[0])} max_ms=${f(t[t.length - 1])} rounds=${rounds}`);
  return 0;
}

async function modeInit(a) {
  SqliteSaver.fromConnString(a.db).setup();
  return 0;
}

const a = args();
if (!a.db) usage();
const modes = { init: modeInit, tasks: modeTasks, inflight: modeInflight, resume: modeResume, replay: modeReplay };
if (!modes[a.mode]) usage();
const rc = await modes[a.mode](a);
if (rc !== null) process.exit(rc);
