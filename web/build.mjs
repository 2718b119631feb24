// build.mjs - builds the browser UI into OUT (argument --out DIR), the
// files aosd embeds (cmake/embed.cmake) and serves (src/api/api.c):
//   index.html                 from index.html here, naming the bundles
//   app.<hash>.js, app.<hash>.css   src/main.tsx and what it imports, minified
//   chunk.<hash>.js            what a page loaded later (import()) needs: the
//                              Monitor and uPlot, and code it shares with app
//   <each>.gz, <each>.br       precompressed copies (gzip -9, brotli q11)
// Every file but index.html has its content's hash in its name, so aosd
// may let browsers cache it for good. Nothing is fetched: esbuild and
// preact come from node_modules (npm ci, scripts/install-deps).
// Prints each file's size and the first page's JavaScript gzipped (app.js
// and the chunks it imports statically), and fails past the budget of
// issue 19 (150 KB).
import { readFileSync, writeFileSync, mkdirSync, rmSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, brotliCompressSync, constants as zc } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf('--out');
if (i < 0 || !process.argv[i + 1]) {
  console.error('usage: node build.mjs --out DIR');
  process.exit(2);
}
const out = process.argv[i + 1];
const JS_BUDGET = 150 * 1024;

let esbuild;
try {
  esbuild = await import('esbuild');
} catch (e) {
  console.error(`web/build.mjs: esbuild is not installed (${e.code || e.message}).\n` +
    'Run scripts/install-deps (npm ci in web/) and build again.');
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
let result;
try {
  result = await esbuild.build({
    entryPoints: { app: join(here, 'src/main.tsx') },
    bundle: true, minify: true, format: 'esm', target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    jsx: 'automatic', jsxImportSource: 'preact',
    entryNames: '[name].[hash]', chunkNames: 'chunk.[hash]', splitting: true,
    outdir: out, write: false, metafile: true,
    legalComments: 'none', logLevel: 'warning',
  });
} catch {
  process.exit(1); // esbuild printed the errors
}
const base = (p) => p.slice(p.lastIndexOf('/') + 1);
for (const f of result.outputFiles) writeFileSync(f.path, f.contents);
// the entry's JavaScript, its CSS, and the chunks it imports statically
const outputs = result.metafile.outputs;
const entry = Object.keys(outputs).find((k) => outputs[k].entryPoint && k.endsWith('.js'));
const names = { js: entry && base(entry), css: entry && outputs[entry].cssBundle && base(outputs[entry].cssBundle) };
const firstPage = new Set();
for (const todo = entry ? [entry] : []; todo.length;) {
  const k = todo.pop();
  if (firstPage.has(base(k))) continue;
  firstPage.add(base(k));
  for (const i of outputs[k]?.imports || []) if (i.kind === 'import-statement' && !i.external) todo.push(i.path);
}
if (!names.js || !names.css) {
  console.error('web/build.mjs: esbuild produced no JavaScript or no CSS bundle');
  process.exit(1);
}
const html = readFileSync(join(here, 'index.html'), 'utf8')
  .replaceAll('{{APP_JS}}', `/ui/${names.js}`).replaceAll('{{APP_CSS}}', `/ui/${names.css}`)
  // the chunks app.js imports, fetched beside it rather than after it
  .replaceAll('{{PRELOAD}}', [...firstPage].filter((n) => n !== names.js).map((n) => `<link rel="modulepreload" href="/ui/${n}">`).join('\n'));
if (html.includes('{{')) {
  console.error('web/build.mjs: index.html has a placeholder left');
  process.exit(1);
}
writeFileSync(join(out, 'index.html'), html);

const sizes = [];
for (const name of readdirSync(out).sort()) {
  const data = readFileSync(join(out, name));
  const gz = gzipSync(data, { level: 9 });
  const br = brotliCompressSync(data, {
    params: { [zc.BROTLI_PARAM_QUALITY]: 11, [zc.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
  writeFileSync(join(out, name + '.gz'), gz);
  writeFileSync(join(out, name + '.br'), br);
  sizes.push({ name, raw: data.length, gz: gz.length, br: br.length });
}
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
for (const s of sizes) console.log(`web: ${s.name.padEnd(24)} ${kb(s.raw).padStart(9)}  gzip ${kb(s.gz).padStart(8)}  br ${kb(s.br).padStart(8)}`);
const js = { gz: sizes.filter((s) => firstPage.has(s.name)).reduce((n, s) => n + s.gz, 0) };
const css = sizes.find((s) => s.name === names.css);
console.log(`web: first page: JavaScript ${kb(js.gz)} gzipped in ${firstPage.size} file(s) (budget ${kb(JS_BUDGET)}), CSS ${kb(css.gz)} gzipped`);
if (js.gz > JS_BUDGET) {
  console.error(`web/build.mjs: the first page's JavaScript is ${kb(js.gz)} gzipped, over the budget of ${kb(JS_BUDGET)}`);
  process.exit(1);
}
