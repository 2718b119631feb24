// quality.mjs - retrieval quality of the memory service on the labelled set
// tests/e2e/fixtures/memory-set.json (issue 17): recall@10 and the mean
// reciprocal rank of keyword, vector (the built-in embedding) and hybrid
// search, through a real aosd (AOSD_BIN, default build/aosd). Prints one
// line per query with the rank of its first relevant item in each mode,
// then the totals. Quick (a second): not a load test.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SET = JSON.parse(readFileSync(join(ROOT, 'tests/e2e/fixtures/memory-set.json'), 'utf8'));
const TOKEN = 'bench-memory-quality-token-0123456789';
const bin = process.env.AOSD_BIN || join(ROOT, 'build/aosd');
const dir = mkdtempSync(join(tmpdir(), 'aos-memq-'));
const proc = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', dir, '--bootstrap-token', TOKEN], { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
proc.stdout.on('data', (d) => { out += d; });
proc.stderr.on('data', () => {});
const url = await new Promise((res, rej) => {
  const t = setTimeout(() => rej(new Error('aosd did not start')), 15000);
  proc.stdout.on('data', () => { const m = out.match(/ready: (https?:\/\/[^/\s]+)\//); if (m) { clearTimeout(t); res(m[1]); } });
});
const api = async (method, path, body) => {
  const r = await fetch(url + path, { method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  return r.json();
};
try {
  const ids = {};
  for (const it of SET.items) ids[it.key] = (await api('POST', '/api/memory/items', { text: it.text, project_id: 'set', tags: it.tags, subject: it.key })).id;
  const modes = ['keyword', 'vector', 'hybrid'];
  const tot = Object.fromEntries(modes.map((m) => [m, { recall: 0, rr: 0, first: 0 }]));
  console.log(`query | first relevant rank: ${modes.join(' / ')}`);
  for (const { q, relevant } of SET.queries) {
    const ranks = [];
    for (const mode of modes) {
      const r = await api('GET', `/api/memory/search?${new URLSearchParams({ q, mode, project_id: 'set', k: '10' })}`);
      const got = r.results.map((x) => x.id);
      const want = relevant.map((k) => ids[k]);
      const found = want.filter((id) => got.includes(id)).length;
      const first = got.findIndex((id) => want.includes(id));
      tot[mode].recall += found / want.length;
      tot[mode].rr += first < 0 ? 0 : 1 / (first + 1);
      tot[mode].first += got[0] === want[0] ? 1 : 0;
      ranks.push(first < 0 ? '-' : first + 1);
    }
    console.log(`${q} | ${ranks.join(' / ')}`);
  }
  const n = SET.queries.length;
  for (const m of modes)
    console.log(`${m}: recall@10 ${(tot[m].recall / n).toFixed(3)}, MRR ${(tot[m].rr / n).toFixed(3)}, expected item first ${tot[m].first}/${n}`);
} finally {
  proc.kill('SIGTERM');
  await new Promise((r) => proc.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
