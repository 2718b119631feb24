// paths.test.mjs - scripts/check-paths, which make test runs on the
// repository (scripts/test-all), finds a machine-specific absolute path wherever a file of a
// checkout names one, in the work tree, in an older commit and in an
// unpacked tarball, and leaves alone what only looks like one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

// Built from pieces: this file is checked too.
const S = '/';
const bad = {
  'src/a.c': `const char *p = "${S}work${S}shared/tools";\n`,
  'docs/b.md': `see ${S}home${S}alice/notes\n`,
  'scripts/c': `cd ${S}root${S}aos && make\n`,
  'bench/d.sh': `CACHE=${S}tmp${S}mcp-tools-cache/x\n`,
  'e.json': `{"dir":"${S}Users${S}bob/aos"}\n`,
};
const fine = [
  'relative: src/home/x and tests/work/y, a.work/b, ~/.config/x',
  'temporary: ${TMPDIR:-/tmp}/aos-x.XXXXXX and /var/lib/aos, /etc/hosts',
  'urls: GET /api/v1/items/42 and /healthz',
].join('\n') + '\n';

const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tree(files) {
  const d = mkdtempSync(join(tmpdir(), 'aos-paths-'));
  dirs.push(d);
  mkdirSync(join(d, 'scripts'), { recursive: true });
  copyFileSync(join(ROOT, 'scripts/check-paths'), join(d, 'scripts/check-paths'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}
const check = (d, ...args) => spawnSync('bash', [join(d, 'scripts/check-paths'), ...args], { encoding: 'utf8' });
const git = (d, ...args) => {
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: d, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
};
const hitFiles = (out) => [...new Set(out.trim().split('\n').filter(Boolean).map((l) => l.replace(/^[0-9a-f]{40}:/, '').split(':')[0]))].sort();

test('a work tree: every planted path is found, tracked files only', () => {
  const d = tree({ ...bad, 'ok.txt': fine });
  git(d, 'init', '-q');
  git(d, 'add', '.');
  writeFileSync(join(d, 'untracked.txt'), bad['src/a.c']);
  const r = check(d);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.deepEqual(hitFiles(r.stdout), Object.keys(bad).sort());
  assert.match(r.stderr, /5 machine-specific absolute path/);
});

test('a clean tree passes; an older commit with a path is still found by its revision', () => {
  const d = tree({ 'src/a.c': bad['src/a.c'], 'ok.txt': fine });
  git(d, 'init', '-q');
  git(d, 'add', '.');
  git(d, 'commit', '-q', '-m', 'with a path');
  writeFileSync(join(d, 'src/a.c'), 'const char *p = "tests/tools";\n');
  git(d, 'commit', '-q', '-am', 'without');
  const clean = check(d);
  assert.equal(clean.status, 0, clean.stdout + clean.stderr);
  const old = check(d, 'HEAD~1');
  assert.equal(old.status, 1, old.stdout + old.stderr);
  assert.match(old.stdout, /^HEAD~1:src\/a\.c:1:/m);
});

test('outside git: every file but node_modules and build outputs', () => {
  const d = tree({ ...bad, 'ok.txt': fine,
    'node_modules/x/index.js': bad['src/a.c'], 'build/CMakeCache.txt': bad['src/a.c'] });
  const r = check(d);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.deepEqual(hitFiles(r.stdout.replace(/^\.\//gm, '')), Object.keys(bad).sort());
});
