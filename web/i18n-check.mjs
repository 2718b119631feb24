// i18n-check.mjs - fails when the UI's two languages disagree: a key in one
// dictionary of src/i18n.ts and not the other, an empty string, different
// {placeholders}, a Chinese string with no Chinese in it, a t('key') in the source that no dictionary has, or a key
// nothing in the source uses. (TypeScript checks t()'s argument too; this
// also covers keys chosen at run time from tables of literals.)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { loadDictionaries } from './i18n-dicts.mjs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = join(dirname(fileURLToPath(import.meta.url)), 'src');
const problems = [];
const { en, zh, duplicates } = loadDictionaries();
problems.push(...duplicates);
const ph = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
for (const [k, v] of en) {
  if (!zh.has(k)) problems.push(`zh-CN lacks '${k}'`);
  else if (ph(v) !== ph(zh.get(k))) problems.push(`'${k}': placeholders differ: en {${ph(v)}} zh-CN {${ph(zh.get(k))}}`);
  if (!v.trim()) problems.push(`en: '${k}' is empty`);
}
// A Chinese string with no Chinese in it is an untranslated one, except
// these (names and code that read the same in both).
const SAME = new Set(['app.name', 'chat.mode.dsl', 'chat.placeholder.dsl', 'mcp.add.url', 'mcp.add.http']);
for (const [k, v] of zh) {
  if (!en.has(k)) problems.push(`en lacks '${k}'`);
  if (!/[\u3400-\u9fff]/.test(v) && !SAME.has(k)) problems.push(`zh-CN: '${k}' is not translated: '${v}'`);
  if (!v.trim()) problems.push(`zh-CN: '${k}' is empty`);
}

const files = [];
(function walk(d) {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.tsx?$/.test(f) && f !== 'i18n.ts') files.push(p);
  }
})(src);
const code = files.map((f) => readFileSync(f, 'utf8')).join('\n');
for (const m of code.matchAll(/\bt\(\s*'([^']+)'/g)) if (!en.has(m[1])) problems.push(`t('${m[1]}') is in no dictionary`);
const literals = new Set([...code.matchAll(/'([a-z]+(?:\.[a-z0-9]+)+)'/g)].map((m) => m[1]));
for (const k of en.keys()) if (!literals.has(k)) problems.push(`'${k}' is used nowhere in web/src`);

if (problems.length) {
  console.error(`i18n-check: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`i18n-check: ${en.size} keys, en and zh-CN agree, every key used`);
