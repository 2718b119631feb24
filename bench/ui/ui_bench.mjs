// ui_bench.mjs - the browser UI under a full store (issue 19, bench/ui):
// a fresh aosd (build/aosd, its own data dir) seeded through its API with
// TASKS tasks (POST /api/run, each one echo step, run for real), LOGS log
// lines (POST /api/logs, batches of 1,000), CARDS value-event cards (POST
// /api/events, batches of 1,000) and one episode of EPISODE events (a
// task's trace, POST /api/events), then Debian's chromium (playwright-core)
// loading each page LOADS times with the browser cache off:
//
//   ready   ms from navigation start to the page's "ready" element (its
//           first meaningful content: the cards, the task rows, the run's
//           timeline ...) being in the DOM, plus the animation frame that
//           paints it (a MutationObserver in the page, performance.mark
//           'aos-ready'); p50, min and max of the loads
//   bytes   JavaScript and CSS transferred (gzipped on the wire), and the
//           API's JSON, per load (Chrome DevTools Protocol Network events)
//
// then the Chat Hub taking RATE events/s (new cards, posted 10 at a time)
// for SECONDS s, its frames counted two ways (--fps both, the default; or
// raf, or trace):
//
//   raf     requestAnimationFrame in the page counts frames: fps, frames
//           longer than 50 ms, the longest frame. The loop itself asks
//           for a frame every vsync, so this is the rate the main thread
//           could sustain.
//   trace   Chromium's tracing (CDP Tracing.start, categories
//           devtools.timeline and disabled-by-default-devtools.timeline
//           .frame, as DevTools' Performance panel records), no script in
//           the page: of the renderer of the page (TracingStartedInBrowser
//           names its process), DrawFrame and BeginFrame per second, and
//           the compositor's own verdict on each frame (PipelineReporter:
//           presented, no update desired, dropped); effective fps = the
//           vsync slots of the window (its length over the median
//           BeginFrame interval) less the dropped frames, per second - a
//           slot with nothing to update shows the right picture - and the
//           longest run of dropped frames.
//
// and whether the last card arrived. The same counts over SECONDS s with
// no events are printed beside them.
//
// Loopback only, bounded: every wait has a timeout, aosd and chromium are
// stopped and the data dir removed on exit.
//
// Usage: node ui_bench.mjs --aosd PATH [--port N] [--loads 5] [--tasks N]
//        [--logs N] [--cards N] [--episode N] [--rate N] [--seconds S]
//        [--fps both|raf|trace]
import { createRequire } from 'node:module';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { startAosd, TOKEN } from '../../tests/e2e/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../..');
const require = createRequire(join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : d; };
const num = (n, d) => { const v = Number(opt(n, d)); if (!Number.isInteger(v) || v < 0) throw new Error(`--${n} must be a whole number`); return v; };
const AOSD = opt('aosd', join(ROOT, 'build/aosd'));
const PORT = num('port', 3601);
const LOADS = Math.max(1, num('loads', 5));
const TASKS = num('tasks', 1000), LOGS = num('logs', 100000), CARDS = num('cards', 1000), EPISODE = num('episode', 20000);
const RATE = num('rate', 100), SECONDS = Math.max(1, num('seconds', 10));
const FPS = opt('fps', 'both');
if (!['both', 'raf', 'trace'].includes(FPS)) throw new Error('--fps must be both, raf or trace');
const TRACE_CATS = 'devtools.timeline,disabled-by-default-devtools.timeline,disabled-by-default-devtools.timeline.frame';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const log = (s) => process.stderr.write(`[ui-bench ${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}\n`);
const fmt = (n) => n.toLocaleString('en-US');
const kb = (b) => (b / 1024).toFixed(1);

let aos, browser;
const stop = async (code) => {
  await browser?.close().catch(() => {});
  if (aos) { await aos.stop(); await aos.cleanup().catch(() => {}); }
  process.exit(code);
};
process.on('SIGINT', () => stop(130));
process.on('SIGTERM', () => stop(143));

async function call(method, path, body, want = [200, 201]) {
  const r = await aos.api(method, path, body);
  if (!want.includes(r.status)) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

/* n jobs, at most k in flight. */
async function pool(n, k, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(k, n) }, async () => { while (i < n) await fn(i++); }));
}

async function until(what, ms, fn) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function seed() {
  const s = {};
  let t = Date.now();
  const traces = [];
  await pool(TASKS, 16, async (i) => {
    const r = await call('POST', '/api/run', {
      goal: `bench task ${i}`, project_id: `bench-${i % 10}`, constraints: { approval: 'never' },
      plan: { steps: [{ id: 's1', tool: 'aos__echo', args: { message: `bench task ${i}` } }] },
    });
    traces[i] = r.trace_id;
  });
  await until(`${TASKS} tasks to finish`, 300000, async () => {
    const open = await Promise.all(['queued', 'running', 'waiting'].map((st) => call('GET', `/api/jobs?status=${st}&limit=1`)));
    return open.every((x) => x.jobs.length === 0);
  });
  s.tasks = (Date.now() - t) / 1000;
  log(`${TASKS} tasks in ${s.tasks.toFixed(1)} s`);
  const episode = traces[0] || null;
  t = Date.now();
  for (let i = 0; i < EPISODE; i += 1000) {
    const n = Math.min(1000, EPISODE - i);
    await call('POST', '/api/events', Array.from({ length: n }, (_, j) => ({
      type: 'task.step.trace', trace_id: episode, topic: 'bench', severity: 'info', payload: { i: i + j, note: `step event ${i + j}` },
    })));
  }
  s.episode = (Date.now() - t) / 1000;
  t = Date.now();
  for (let i = 0; i < LOGS; i += 1000) {
    const n = Math.min(1000, LOGS - i);
    await call('POST', '/api/logs', Array.from({ length: n }, (_, j) => {
      const k = i + j;
      return { message: `bench log line ${k}: request handled in ${k % 97} ms`, level: k % 50 ? 'info' : 'warn', topic: 'bench', trace_id: k < 1000 && episode ? episode : undefined };
    }));
  }
  s.logs = (Date.now() - t) / 1000;
  t = Date.now();
  const kinds = ['task.acceptance', 'anomaly.detected', 'task.receipt', 'recovery.done'];
  for (let i = 0; i < CARDS; i += 1000) {
    const n = Math.min(1000, CARDS - i);
    await call('POST', '/api/events', Array.from({ length: n }, (_, j) => {
      const k = i + j;
      return { type: kinds[k % kinds.length], trace_id: traces[k % Math.max(1, traces.length)], card_id: `bench-card-${k}`, severity: k % 4 === 1 ? 'warning' : 'info', payload: { summary: `bench card ${k}` } };
    }));
  }
  s.cards = (Date.now() - t) / 1000;
  log(`seeded: episode ${s.episode.toFixed(1)} s, logs ${s.logs.toFixed(1)} s, cards ${s.cards.toFixed(1)} s`);
  return { seedTimes: s, episode };
}

// The page's ready element, by path: its first meaningful content.
const READY = {
  '/': '[data-testid="cards"] article.card',
  '/telemetry': '[data-testid="chart-throughput"] canvas',
  '/projects': '[data-testid="jobs"] tbody tr',
  '/memory': '[data-testid="mem-list"]',
  '/settings': '[data-testid="system-form"]',
  '/integrations': '[data-testid="servers"] tbody tr',
  '/agents': '.page [data-testid="agents"], .page .panel p.muted',
  '/projects?trace=': '[data-testid="run-events"] li',
};

function initScript(ready) {
  // runs in the page before its scripts: marks the first frame after the
  // page's ready element is in the DOM
  const sel = (() => {
    const p = location.pathname + (location.search.startsWith('?trace=') ? '?trace=' : '');
    return ready[p] || ready[location.pathname];
  })();
  if (!sel) return;
  const check = () => {
    if (window.__aosReady !== undefined || !document.querySelector(sel)) return false;
    window.__aosReady = null;
    requestAnimationFrame(() => { performance.mark('aos-ready'); window.__aosReady = performance.now(); });
    return true;
  };
  const mo = new MutationObserver(() => { if (check()) mo.disconnect(); });
  mo.observe(document, { childList: true, subtree: true, attributes: true, characterData: true });
}

/* The token is kept in the tab (sessionStorage): each page signs in once. */
async function signIn(page) {
  await page.goto(aos.url + '/');
  await page.fill('[data-testid="token"]', TOKEN);
  await page.click('[data-testid="token-submit"]');
  await page.locator('nav').waitFor({ timeout: 30000 });
}

async function loadPage(page, cdp, url) {
  const types = new Map(), bytes = { Script: 0, Stylesheet: 0, api: 0, Document: 0 };
  const onResp = (e) => types.set(e.requestId, { type: e.type, url: e.response.url, enc: e.response.headers['content-encoding'] || e.response.headers['Content-Encoding'] || '' });
  const onDone = (e) => {
    const x = types.get(e.requestId);
    if (!x) return;
    if (x.type === 'Script' || x.type === 'Stylesheet' || x.type === 'Document') bytes[x.type] += e.encodedDataLength;
    else if (x.type === 'Fetch' || x.type === 'XHR') bytes.api += e.encodedDataLength;
    if (x.type === 'Script') bytes.jsEnc = x.enc;
  };
  cdp.on('Network.responseReceived', onResp);
  cdp.on('Network.loadingFinished', onDone);
  await page.goto(url, { waitUntil: 'commit', timeout: 30000 });
  const ms = await page.waitForFunction(() => typeof window.__aosReady === 'number' && window.__aosReady, null, { timeout: 30000, polling: 50 })
    .then((h) => h.jsonValue(), async (e) => {
      const why = await page.evaluate(() => `ready=${window.__aosReady} url=${location.href} body=${document.body?.innerText.slice(0, 300)}`).catch(() => '?');
      throw new Error(`${url}: no ready element (${e.message.split('\n')[0]}); ${why}`);
    });
  await sleep(300); // the page's other requests finish (bytes)
  cdp.off('Network.responseReceived', onResp);
  cdp.off('Network.loadingFinished', onDone);
  return { ms, bytes };
}

const p50 = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor((s.length - 1) / 2)]; };

async function measurePages(ctx, episode) {
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  await signIn(page);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const pages = [['Chat Hub', '/'], ['Monitor', '/telemetry'], ['Projects', '/projects'], ['Memory', '/memory'],
    ['Settings', '/settings'], ['Integrations', '/integrations'], ['Agents', '/agents']];
  if (episode) pages.push([`Projects run (${fmt(EPISODE)}-event episode)`, `/projects?trace=${episode}`]);
  const rows = [];
  for (const [name, path] of pages) {
    const runs = [];
    await loadPage(page, cdp, aos.url + path); // warm-up (aosd's caches, not the browser's)
    for (let i = 0; i < LOADS; i++) runs.push(await loadPage(page, cdp, aos.url + path));
    const ms = runs.map((r) => r.ms);
    const extra = path.startsWith('/projects?trace=')
      ? await page.evaluate(() => ({ shown: document.querySelectorAll('[data-testid="run-events"] li').length, loaded: document.querySelector('[data-testid="run-events"]')?.closest('[data-count]')?.getAttribute('data-count')
          ?? document.querySelectorAll('[data-testid="run-events"] li').length }))
      : null;
    rows.push({ name, path, p50: p50(ms), min: Math.min(...ms), max: Math.max(...ms), bytes: runs[runs.length - 1].bytes, extra });
    log(`${name}: p50 ${p50(ms).toFixed(0)} ms`);
  }
  await page.close();
  return { rows, problems };
}

async function chatRate(ctx) {
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  await signIn(page);
  await page.locator('[data-testid="cards"] article.card').first().waitFor({ timeout: 30000 });
  await sleep(500);
  const frames = (ms) => page.evaluate((ms) => new Promise((res) => {
    let n = 0, last = performance.now(), worst = 0, long = 0;
    const start = last;
    const tick = (now) => {
      n++; const d = now - last; last = now;
      if (d > worst) worst = d;
      if (d > 50) long++;
      if (now - start < ms) requestAnimationFrame(tick); else res({ n, ms: now - start, worst, long });
    };
    requestAnimationFrame(tick);
  }), ms);
  // RATE events/s for SECONDS s as new cards, 10 a POST; round names them
  let round = 0, lastCard = '';
  const post = async () => {
    const per = 10, every = 1000 * per / RATE, r = round++;
    let sent = 0, late = 0;
    const start = Date.now();
    for (let b = 0; Date.now() - start < SECONDS * 1000; b++) {
      const due = start + b * every;
      if (Date.now() < due) await sleep(due - Date.now()); else if (Date.now() - due > every) late++;
      const evs = Array.from({ length: per }, (_, j) => ({ type: j % 3 ? 'task.acceptance' : 'anomaly.detected', card_id: `live${r}-${b}-${j}`, severity: 'info', payload: { summary: `live card ${r}-${b}-${j}` } }));
      await call('POST', '/api/events', evs);
      sent += per;
      lastCard = evs[per - 1].card_id;
    }
    return { sent, late };
  };
  let idle = null, busy = null, tidle = null, tbusy = null, sent = 0, late = 0;
  if (FPS !== 'trace') {
    idle = await frames(SECONDS * 1000);
    const counting = frames(SECONDS * 1000);
    const p = await post();
    busy = await counting;
    sent += p.sent; late += p.late;
  }
  if (FPS !== 'raf') {
    const cdp = await page.context().newCDPSession(page);
    tidle = await traced(cdp, () => sleep(SECONDS * 1000));
    let p;
    tbusy = await traced(cdp, async () => { p = await post(); });
    sent += p.sent; late += p.late;
    await cdp.detach().catch(() => {});
  }
  const t = Date.now();
  let arrived = -1;
  try {
    await page.locator(`[data-card="${lastCard}"]`).waitFor({ state: 'attached', timeout: 10000 });
    arrived = Date.now() - t;
  } catch { /* reported as not arrived */ }
  const shown = await page.locator('[data-testid="cards"] article.card').count();
  await page.close();
  return { idle, busy, tidle, tbusy, sent, late, arrived, shown, problems };
}

/* A trace of the page while during() runs: Chromium's own frame events. */
async function traced(cdp, during) {
  const events = [];
  const onData = (e) => { for (const x of e.value) events.push(x); };
  cdp.on('Tracing.dataCollected', onData);
  const complete = new Promise((res, rej) => {
    const to = setTimeout(() => rej(new Error('Tracing.tracingComplete did not come within 60 s')), 60000);
    cdp.once('Tracing.tracingComplete', () => { clearTimeout(to); res(); });
  });
  await cdp.send('Tracing.start', { categories: TRACE_CATS, transferMode: 'ReportEvents' });
  const t0 = performance.now();
  await during();
  const ms = performance.now() - t0;
  await cdp.send('Tracing.end');
  await complete;
  cdp.off('Tracing.dataCollected', onData);
  return frameStats(events, ms);
}

/* Frames of the page's renderer in a trace (see the top of the file). */
function frameStats(events, ms) {
  const started = events.find((e) => e.name === 'TracingStartedInBrowser');
  const main = started?.args?.data?.frames?.find((f) => f.isOutermostMainFrame) || started?.args?.data?.frames?.[0];
  if (!main) throw new Error('the trace names no renderer (no TracingStartedInBrowser)');
  const mine = events.filter((e) => e.pid === main.processId);
  const draws = mine.filter((e) => e.name === 'DrawFrame').length;
  const begins = mine.filter((e) => e.name === 'BeginFrame').map((e) => e.ts).sort((a, b) => a - b);
  const gaps = [];
  for (let i = 1; i < begins.length; i++) if (begins[i] - begins[i - 1] < 50000) gaps.push(begins[i] - begins[i - 1]);
  const interval = gaps.length ? p50(gaps) / 1000 : 1000 / 60; // ms
  const reports = mine.filter((e) => e.name === 'PipelineReporter' && e.ph === 'b' && e.args?.frame_reporter)
    .sort((a, b) => a.ts - b.ts).map((e) => e.args.frame_reporter.state);
  const states = {};
  let run = 0, longest = 0;
  for (const st of reports) {
    states[st] = (states[st] || 0) + 1;
    run = st === 'STATE_DROPPED' ? run + 1 : 0;
    if (run > longest) longest = run;
  }
  const dropped = states.STATE_DROPPED || 0;
  const s = ms / 1000, slots = ms / interval;
  return {
    ms, interval, draws, begins: begins.length, states, dropped,
    drawFps: draws / s, beginFps: begins.length / s, effectiveFps: Math.max(0, slots - dropped) / s,
    longestDroppedMs: longest ? (longest + 1) * interval : 0,
  };
}

async function main() {
  if (!existsSync(AOSD)) throw new Error(`missing ${AOSD}: make build`);
  if (!existsSync(CHROMIUM)) throw new Error(`missing ${CHROMIUM}: scripts/install-deps installs Debian's chromium`);
  aos = await startAosd({ bin: AOSD, listen: `127.0.0.1:${PORT}` });
  log(`aosd at ${aos.url}, data dir ${aos.dataDir}`);
  const { seedTimes, episode } = await seed();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US' });
  await ctx.addInitScript(initScript, READY);
  const { rows, problems } = await measurePages(ctx, episode);
  const chat = RATE > 0 ? await chatRate(ctx) : null;

  const out = [];
  out.push(`# store: ${fmt(TASKS)} tasks (seeded in ${seedTimes.tasks.toFixed(1)} s), ${fmt(LOGS)} log lines, ${fmt(CARDS)} cards, a ${fmt(EPISODE)}-event episode`);
  out.push(`# ready = navigation start to the page's first meaningful content painted; p50 of ${LOADS} cold loads (browser cache off)`);
  out.push('');
  out.push('| page | ready p50 ms | min | max | target ms | p50/target | JS KB (wire) | CSS KB (wire) | API JSON KB |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const target = r.path.startsWith('/projects?trace=') ? 300 : 1000;
    out.push(`| ${r.name} | ${r.p50.toFixed(0)} | ${r.min.toFixed(0)} | ${r.max.toFixed(0)} | ${target} | ${(r.p50 / target).toFixed(2)} | ${kb(r.bytes.Script)} | ${kb(r.bytes.Stylesheet)} | ${kb(r.bytes.api)} |`);
  }
  const run = rows.find((r) => r.extra);
  if (run) out.push(`# the run page's events: ${run.extra.loaded} loaded, ${run.extra.shown} rows in the DOM (the first page of GET /api/episodes/:trace; the window pages in the rest, 1,000 at a time, as it scrolls)`);
  out.push(`# JS on the wire: ${rows[0].bytes.jsEnc || 'identity'}; first page ${kb(rows[0].bytes.Script)} KB (budget 150 KB, ratio ${(rows[0].bytes.Script / 150 / 1024).toFixed(2)})`);
  if (chat) {
    const f = (x) => x.n / (x.ms / 1000);
    out.push('');
    out.push(`## Chat Hub at ${RATE} events/s, ${SECONDS} s a window (${fmt(chat.sent)} new cards in all, posted ${10} at a time; ${chat.late} batches late)`);
    if (chat.busy) {
      out.push('| | fps | frames > 50 ms | longest frame ms |');
      out.push('| --- | ---: | ---: | ---: |');
      out.push(`| idle | ${f(chat.idle).toFixed(1)} | ${chat.idle.long} | ${chat.idle.worst.toFixed(0)} |`);
      out.push(`| ${RATE} events/s | ${f(chat.busy).toFixed(1)} | ${chat.busy.long} | ${chat.busy.worst.toFixed(0)} |`);
      out.push(`# requestAnimationFrame: fps/target ${(f(chat.busy) / 30).toFixed(2)} (target >= 30)`);
    }
    if (chat.tbusy) {
      const row = (name, x) => `| ${name} | ${x.drawFps.toFixed(1)} | ${x.beginFps.toFixed(1)} | ${x.states.STATE_PRESENTED_ALL || 0}/${x.states.STATE_PRESENTED_PARTIAL || 0}/${x.states.STATE_NO_UPDATE_DESIRED || 0}/${x.dropped} | ${x.effectiveFps.toFixed(1)} | ${x.longestDroppedMs.toFixed(0)} |`;
      out.push('');
      out.push(`### Chromium's trace (devtools.timeline; vsync interval ${chat.tbusy.interval.toFixed(2)} ms)`);
      out.push('| | DrawFrame/s | BeginFrame/s | presented all/partial/no update/dropped | effective fps | longest dropped run ms |');
      out.push('| --- | ---: | ---: | ---: | ---: | ---: |');
      out.push(row('idle', chat.tidle));
      out.push(row(`${RATE} events/s`, chat.tbusy));
      out.push(`# trace: effective fps/target ${(chat.tbusy.effectiveFps / 30).toFixed(2)} (target >= 30)`);
    }
    out.push(`# the last card ${chat.arrived >= 0 ? `was in the page ${chat.arrived} ms after the last POST` : 'DID NOT ARRIVE within 10 s'}; ${chat.shown} cards in the DOM`);
    problems.push(...chat.problems);
  }
  out.push(problems.length ? `# console errors: ${problems.length}: ${problems.slice(0, 3).join(' | ')}` : '# console errors: none');
  console.log(out.join('\n'));
}

main().then(() => stop(0), (e) => { console.error(e.stack || e.message); stop(1); });
