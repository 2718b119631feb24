// tools.test.mjs - the built-in servers files, db, csv and viz through a
// real aosd: over /mcp/call, through an MCP client on /mcp (which checks
// structuredContent against each tool's outputSchema), and from a task of
// the offline planner that cleans a CSV, plots it and lists the artifacts
// (the acceptance demo, SPEC §12). Every chart kind is parsed as XML and
// rendered in Debian's chromium; the screenshots go to build/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { inflateSync } from 'node:zlib';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { chromium } from 'playwright-core';
import { startAosd, sseClient, TOKEN, ROOT } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
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

const call = async (server, tool, args) => {
  const r = await aos.api('POST', '/mcp/call', { server, tool, args });
  assert.equal(r.status, 200, r.text);
  return r.body;
};
const ok = (r) => { assert.ok(!r.isError, JSON.stringify(r)); return r.structuredContent; };

const SALES = '\ufeffdate ; region ; amount ; share\n' +
  '2025-01-05 ; 北区 ; "1,200.50" ; 10%\n' +
  '2025年1月20日 ; 南区 ; ¥800 ; 5%\n' +
  '2025/2/3 ; 北区 ; 1,000 ; 7.5%\n' +
  ' ; ; ; \n' +
  '2025/2/3 ; 北区 ; 1,000 ; 7.5%\n' +
  '2025-02-14 ; 南区 ; (300) ; 2%\n' +
  '2025-03-01 ; 北区 ; 2,500 ; 20%\n';

test('files over /mcp/call: write, read, confinement errors name the cause', async () => {
  ok(await call('files', 'write', { path: 'notes/a.txt', content: 'hello\nworld\n' }));
  const r = ok(await call('files', 'read', { path: 'notes/a.txt' }));
  assert.equal(r.content, 'hello\nworld\n');
  const s = ok(await call('files', 'search', { pattern: 'wor' }));
  assert.deepEqual(s.matches, [{ path: 'notes/a.txt', line: 2, text: 'world' }]);
  for (const [path, why] of [['../etc/passwd', /'\.\.' is not allowed/], ['/etc/passwd', /is absolute/],
    ['.aos/idem', /reserved/], ['missing.txt', /no such file/]]) {
    const e = await call('files', 'read', { path });
    assert.equal(e.isError, true, path);
    assert.match(e.content[0].text, why);
  }
  // a client's idempotency key: the same append twice applies once
  for (let i = 0; i < 2; i++) {
    const a = await aos.api('POST', '/mcp/call', { server: 'files', tool: 'append', args: { path: 'log.txt', content: 'once\n' } },
      undefined, { 'Idempotency-Key': 'e2e-append-1' });
    assert.equal(a.status, 200, a.text);
    assert.equal(ok(a.body).size, 5);
  }
  assert.equal(ok(await call('files', 'read', { path: 'log.txt' })).content, 'once\n');
  // the caller's workspace for API clients: DATA/workspace
  assert.ok(existsSync(join(aos.dataDir, 'workspace', 'notes', 'a.txt')));
});

test('an MCP client on /mcp: schemas, annotations, csv__clean and viz__plot', async () => {
  const client = new Client({ name: 'e2e-tools', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(aos.url + '/mcp'), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  try {
    const { tools } = await client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const n of ['files__read', 'files__write', 'files__search', 'db__query', 'db__execute',
      'csv__clean', 'viz__plot']) {
      assert.ok(byName[n], n);
      assert.equal(byName[n].inputSchema.type, 'object', n);
      assert.equal(byName[n].outputSchema.type, 'object', n);
    }
    assert.equal(byName.files__read.annotations.readOnlyHint, true);
    assert.equal(byName.files__delete.annotations.destructiveHint, true);
    assert.equal(byName.files__append.annotations.idempotentHint, false);
    await client.callTool({ name: 'files__write', arguments: { path: 'sales.csv', content: SALES } });
    // params._meta carries the client's idempotency key
    for (let i = 0; i < 2; i++) {
      const a = await client.callTool({ name: 'files__append', arguments: { path: 'mcp.log', content: 'x' },
        _meta: { 'aos/idempotency_key': 'e2e-mcp-append' } });
      assert.equal(a.structuredContent.size, 1, JSON.stringify(a));
    }
    // the SDK checks structuredContent against the outputSchema
    const c = await client.callTool({ name: 'csv__clean', arguments: { path: 'sales.csv', output: 'clean.csv' } });
    assert.ok(!c.isError, JSON.stringify(c));
    const rep = c.structuredContent;
    assert.equal(rep.encoding, 'utf-8-bom');
    assert.equal(rep.delimiter, ';');
    assert.equal(rep.rows_in, 7);
    assert.equal(rep.rows_out, 5);
    assert.equal(rep.changes.duplicate_rows.count, 1);
    assert.equal(rep.changes.empty_rows.count, 1);
    assert.deepEqual(rep.columns.map((x) => x.type), ['date', 'text', 'decimal', 'decimal']);
    const cleaned = await client.callTool({ name: 'files__read', arguments: { path: 'clean.csv' } });
    assert.equal(cleaned.structuredContent.content,
      'date,region,amount,share\n' +
      '2025-01-05,北区,1200.50,0.1\n' +
      '2025-01-20,南区,800,0.05\n' +
      '2025-02-03,北区,1000,0.075\n' +
      '2025-02-14,南区,-300,0.02\n' +
      '2025-03-01,北区,2500,0.2\n');
    const p = await client.callTool({ name: 'viz__plot', arguments: {
      path: 'clean.csv', kind: 'bar', x: 'date', y: 'amount', group_by: 'region',
      bucket: 'month', agg: 'sum', output: 'monthly.svg', title: '每月销售额' } });
    assert.ok(!p.isError, JSON.stringify(p));
    assert.deepEqual(p.structuredContent.series.map((x) => [x.name, x.points_drawn]), [['北区', 3], ['南区', 2]]);
    assert.deepEqual(p.structuredContent.files, ['monthly.svg']);
    assert.equal(p.structuredContent.format, 'svg');
    // the same chart as a PNG (rsvg-convert): a real image of the asked size
    const png = await client.callTool({ name: 'viz__plot', arguments: {
      path: 'clean.csv', kind: 'bar', x: 'date', y: 'amount', group_by: 'region',
      bucket: 'month', agg: 'sum', output: 'monthly.png', width: 640, height: 360 } });
    assert.ok(!png.isError, JSON.stringify(png));
    assert.equal(png.structuredContent.format, 'png');
    assert.deepEqual(png.structuredContent.files, ['monthly.png']);
    const img = readFileSync(join(aos.dataDir, 'workspace', 'monthly.png'));
    assert.equal(png.structuredContent.bytes, img.length);
    assert.deepEqual([...img.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const idat = [];
    let w = 0, h = 0, depth = 0, color = 0;
    for (let off = 8; off < img.length;) {
      const len = img.readUInt32BE(off), type = img.toString('latin1', off + 4, off + 8);
      const data = img.subarray(off + 8, off + 8 + len);
      if (type === 'IHDR') { w = data.readUInt32BE(0); h = data.readUInt32BE(4); depth = data[8]; color = data[9]; }
      if (type === 'IDAT') idat.push(data);
      off += 12 + len;
    }
    assert.deepEqual([w, h, depth], [640, 360, 8]);
    assert.ok(color === 2 || color === 6, `colour type ${color}`); // RGB or RGBA
    const px = color === 6 ? 4 : 3;
    const raw = inflateSync(Buffer.concat(idat));
    assert.equal(raw.length, h * (1 + w * px));
    // drawn, not blank: a blank image's rows filter to (almost) all zeros;
    // this one has axes, text and bars (the values sampled are filtered bytes)
    const colors = new Set();
    for (let y = 0; y < h; y += 3) {
      for (let x = 0; x < w; x += 3) {
        const o = y * (1 + w * px) + 1 + x * px;
        colors.add((raw[o] << 16) | (raw[o + 1] << 8) | raw[o + 2]);
      }
    }
    assert.ok(colors.size > 10, `only ${colors.size} distinct values in the PNG's pixels`);
  } finally {
    await client.close();
  }
});

test('a task of the offline planner: csv__clean, viz__plot, files__list; the artifacts', async () => {
  const dsl = [
    'step clean: csv__clean path="sales.csv" output="clean.csv"',
    'step plot: viz__plot path="clean.csv" kind="line" x="date" y="amount" output="chart.svg"',
    'step list: files__list',
  ].join('\n');
  const r = await aos.api('POST', '/api/run', { dsl, files: [{ name: 'sales.csv', content: SALES }] });
  assert.equal(r.status, 201, r.text);
  const trace = r.body.trace_id;
  const ev = sseClient(aos, `/agent/events?trace_id=${trace}&after=0`);
  try {
    await ev.waitFor((x) => x.events.some((e) => e.type === 'task.receipt'), 30000, 'task.receipt');
    const receipt = ev.events.find((e) => e.type === 'task.receipt').payload;
    assert.equal(receipt.status, 'done', JSON.stringify(receipt));
    const names = receipt.artifacts.map((a) => a.name).sort();
    assert.deepEqual(names, ['chart.svg', 'clean.csv', 'clean.schema.json', 'sales.csv']);
    assert.equal(receipt.artifacts.find((a) => a.name === 'chart.svg').type, 'image/svg+xml');
  } finally {
    ev.close();
  }
  const ep = await aos.api('GET', `/api/episodes/${trace}`);
  assert.equal(ep.status, 200, ep.text);
  const list = ep.body.steps.find((s) => s.id === 'list' || s.step_id === 'list');
  assert.ok(list, JSON.stringify(ep.body.steps.map((s) => Object.keys(s))));
  assert.match(JSON.stringify(list), /chart\.svg/);
  const svg = await aos.api('GET', `/api/episodes/${trace}/artifacts/chart.svg`);
  assert.equal(svg.status, 200);
  assert.match(svg.text, /^<\?xml/);
  // the task's files stay in its own workspace
  assert.ok(existsSync(join(aos.dataDir, 'workspaces', trace, 'clean.csv')));
});

test('the acceptance demo in words: the offline planner cleans, plots and lists', async () => {
  const r = await aos.api('POST', '/api/run', {
    goal: 'clean sales.csv, plot amount by date and list the files',
    files: [{ name: 'sales.csv', content: SALES }] });
  assert.equal(r.status, 201, r.text);
  const trace = r.body.trace_id;
  const ev = sseClient(aos, `/agent/events?trace_id=${trace}&after=0`);
  try {
    await ev.waitFor((x) => x.events.some((e) => e.type === 'task.receipt'), 30000, 'task.receipt');
    const receipt = ev.events.find((e) => e.type === 'task.receipt').payload;
    assert.equal(receipt.status, 'done', JSON.stringify(ev.events));
    assert.deepEqual(receipt.artifacts.map((a) => a.name).sort(),
      ['amount_by_date.svg', 'sales.clean.csv', 'sales.clean.schema.json', 'sales.csv']);
  } finally {
    ev.close();
  }
});

test('every chart kind parses as XML with axes, series and legend, and renders in chromium', async () => {
  assert.ok(existsSync(CHROMIUM), 'Debian chromium is missing: run scripts/install-deps');
  let csv = 'day,温度,湿度,city\n';
  for (let i = 0; i < 5000; i++) {
    const d = new Date(Date.UTC(2025, 0, 1) + i * 3600e3).toISOString().slice(0, 19).replace('T', ' ');
    csv += `${d},${(10 + 8 * Math.sin(i / 200) + (i % 13) / 4).toFixed(2)},${(60 + 20 * Math.cos(i / 300)).toFixed(1)},${i % 2 ? '上海' : 'Berlin'}\n`;
  }
  ok(await call('files', 'write', { path: 'weather.csv', content: csv }));
  const shots = join(ROOT, 'build', 'screenshots');
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
    const cases = [
      ['line', { x: 'day', y: ['温度', '湿度'] }, 2],
      ['area', { x: 'day', y: '温度', group_by: 'city' }, 2],
      ['scatter', { x: '温度', y: '湿度' }, 1],
      ['bar', { x: 'day', y: '温度', bucket: 'week', agg: 'mean', group_by: 'city' }, 2],
    ];
    for (const [kind, args, series] of cases) {
      const out = `chart-${kind}.svg`;
      const res = ok(await call('viz', 'plot', { path: 'weather.csv', kind, output: out, ...args }));
      assert.equal(res.series.length, series, kind);
      const svg = ok(await call('files', 'read', { path: out })).content;
      assert.ok(svg.length < 200 * 1024, `${kind}: ${svg.length} bytes`);
      const facts = await page.evaluate((text) => {
        const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
        const err = doc.querySelector('parsererror');
        const q = (s) => doc.querySelectorAll(s).length;
        return {
          error: err ? err.textContent : null, root: doc.documentElement.localName,
          xaxis: q('g.x-axis'), yaxis: q('g.y-axis'), xticks: q('g.x-axis g.tick'),
          yticks: q('g.y-axis g.tick'), series: q('g.series'), legend: q('g.legend-item'),
          title: doc.querySelector('text.title')?.textContent,
        };
      }, svg);
      assert.equal(facts.error, null, kind);
      assert.equal(facts.root, 'svg');
      assert.equal(facts.xaxis, 1);
      assert.equal(facts.yaxis, 1);
      assert.ok(facts.xticks >= 3 && facts.xticks <= 15, `${kind} x ticks ${facts.xticks}`);
      assert.ok(facts.yticks >= 3 && facts.yticks <= 12, `${kind} y ticks ${facts.yticks}`);
      assert.equal(facts.series, series, kind);
      assert.equal(facts.legend, series > 1 ? series : facts.legend, kind);
      assert.ok(facts.title.length > 0);
      await page.setContent(`<!doctype html><html><body style="margin:0">${svg.replace(/^<\?xml[^>]*>/, '')}</body></html>`);
      const box = await page.locator('svg').boundingBox();
      assert.equal(Math.round(box.width), 960);
      await page.screenshot({ path: join(shots, `viz-${kind}.png`) });
    }
  } finally {
    await browser.close();
  }
});

test('db over /mcp/call: a database the caller made, queried; bad SQL named', async () => {
  ok(await call('db', 'execute', { path: 'x.db', create: true, sql: 'CREATE TABLE t(k TEXT, v REAL)' }));
  ok(await call('db', 'execute', { path: 'x.db', sql: 'INSERT INTO t VALUES (?, ?)', params: ['a', 1.5] }));
  const q = ok(await call('db', 'query', { path: 'x.db', sql: 'SELECT k, v FROM t' }));
  assert.deepEqual(q, { columns: ['k', 'v'], rows: [['a', 1.5]], row_count: 1, truncated: false });
  const bad = await call('db', 'query', { path: 'x.db', sql: 'SELEC 1' });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /syntax error/);
});

test('a task may not write databases: its caps open them read-only', async () => {
  const made = join(aos.dataDir, 'made.db');
  execFileSync('sqlite3', [made, 'CREATE TABLE t(a); INSERT INTO t VALUES (1);']);
  const dsl = 'step count: db__query path="t.db" sql="SELECT count(*) AS n FROM t"\n' +
    'step del: db__execute path="t.db" sql="DELETE FROM t"';
  const r = await aos.api('POST', '/api/run', { dsl,
    files: [{ name: 't.db', content_base64: readFileSync(made).toString('base64') }] });
  assert.equal(r.status, 201, r.text);
  const trace = r.body.trace_id;
  const ev = sseClient(aos, `/agent/events?trace_id=${trace}&after=0`);
  try {
    await ev.waitFor((x) => x.events.some((e) => e.type === 'approval.request'), 30000, 'approval.request');
    const anomaly = ev.events.find((e) => e.type === 'anomaly.detected').payload;
    assert.equal(anomaly.step, 'del');
    assert.match(anomaly.message, /read-only: the caller's caps do not allow writes/);
  } finally {
    ev.close();
  }
  const left = execFileSync('sqlite3', [join(aos.dataDir, 'workspaces', trace, 't.db'), 'SELECT count(*) FROM t']);
  assert.equal(left.toString().trim(), '1');
  const ab = await aos.api('POST', '/agent/approve', { trace_id: trace, step_id: 'del', decision: 'abort' });
  assert.equal(ab.status, 200, ab.text);
});
