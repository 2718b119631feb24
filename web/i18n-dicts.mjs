// i18n-dicts.mjs - reads the two dictionaries of src/i18n.ts (one
// 'key': 'value', line each) without running the UI's code: for
// i18n-check.mjs and the browser test. Returns Maps en and zh, and the
// keys written twice.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export function loadDictionaries() {
  const text = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'src/i18n.ts'), 'utf8');
  const duplicates = [];
  const dict = (start) => {
    const a = text.indexOf(start);
    const b = text.indexOf('\n};', a);
    if (a < 0 || b < 0) throw new Error(`i18n-dicts: cannot find ${start}`);
    const out = new Map();
    for (const m of text.slice(a, b).matchAll(/^\s*'([^']+)':\s*'((?:[^'\\]|\\.)*)',?\s*$/gm)) {
      if (out.has(m[1])) duplicates.push(`${start}: '${m[1]}' twice`);
      out.set(m[1], m[2].replace(/\\(.)/g, '$1'));
    }
    return out;
  };
  return { en: dict('const en = {'), zh: dict('const zh: Record<Key, string> = {'), duplicates };
}
