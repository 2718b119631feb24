// lib.mjs - what the browser tests of the pages share: a real aosd
// (tests/e2e/lib.mjs) and Debian's chromium (playwright-core, never a
// downloaded browser); a page that records every console error and page
// error (the tests assert there is none); signing in with a token; axe-core
// (web/node_modules, pinned in web/package-lock.json) run in the page,
// failing on any serious or critical violation; and the language check.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { startAosd, ROOT, TOKEN } from '../../tests/e2e/lib.mjs';
import { loadDictionaries } from '../i18n-dicts.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = join(ROOT, 'build/screenshots');
export const dicts = loadDictionaries();
const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '../package.json'));
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/* aosd, a browser, and newPage(token?) giving {page, problems, done()}. */
export async function setup(opts = {}) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/install-deps installs Debian's chromium`);
  mkdirSync(SHOTS, { recursive: true });
  const aos = await startAosd(opts);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const contexts = [];
  return {
    aos, browser,
    async newPage({ token = TOKEN, locale = 'en-US', width = 1280 } = {}) {
      assert.ok(token === null || typeof token === 'string', 'newPage: a token or null');
      const ctx = await browser.newContext({ viewport: { width, height: 860 }, locale, colorScheme: 'light' });
      contexts.push(ctx);
      const page = await ctx.newPage();
      page.setDefaultTimeout(15000);
      const problems = [];
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console.error on ${page.url()}: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
      page.on('dialog', (d) => d.accept());
      if (token !== null) {
        await page.goto(aos.url + '/');
        await page.fill('[data-testid="token"]', token);
        await page.click('[data-testid="token-submit"]');
        await page.locator('nav').waitFor();
      }
      // expected(status): the one failed request a test provoked on purpose
      // (the browser logs it as a console error); nothing else may be there.
      const expected = (status) => {
        const got = problems.splice(0);
        assert.ok(got.length >= 1 && got.every((m) => m.includes(`status of ${status}`)), `only the expected ${status}: ${got}`);
      };
      return { page, ctx, problems, expected, noProblems: () => assert.deepEqual(problems.splice(0), []) };
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => {});
      await browser.close();
      const { code } = await aos.stop();
      const logs = aos.logs();
      if (process.env.UI_AOSD_LOG) writeFileSync(process.env.UI_AOSD_LOG, logs); // for a failure's whole story
      await aos.cleanup();
      assert.equal(code, 0, logs.slice(-2000));
      assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
    },
  };
}

/* axe-core on the page as it is now: no serious or critical violation. */
export async function axe(page, where) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')})`);
  });
  assert.deepEqual(r, [], `axe-core on ${where}`);
}

/* No string of the other language, and no raw key, in the page's text. */
export async function checkLanguage(page, l, where) {
  const { en, zh } = dicts;
  // (text the server sends in English, marked lang="en", and names, code
  // and data - .mono, code, pre - are left out)
  const text = await page.evaluate((l) => {
    if (l === 'en') return document.body.innerText;
    const b = document.body.cloneNode(true);
    b.querySelectorAll('[lang="en"], [translate="no"], .mono, code, pre').forEach((e) => e.remove());
    document.documentElement.appendChild(b);
    const s = b.innerText;
    b.remove();
    return s;
  }, l);
  const [other, mine] = l === 'en' ? [zh, en] : [en, zh];
  for (const [k, v] of other) {
    if (v === mine.get(k) || v.length < 4 || /\{\w+\}/.test(v)) continue;
    assert.ok(!text.includes(v), `${where} in ${l} shows '${v}' (${k}) of the other language`);
  }
  for (const k of en.keys()) assert.ok(!text.includes(k), `${where} in ${l} shows the raw key ${k}`);
}

export async function setLang(page, l) {
  await page.selectOption('[data-testid="lang"]', l);
  await page.waitForFunction((x) => document.documentElement.lang === x, l);
}

export async function setTheme(page, th) {
  if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== th) await page.click('[data-testid="theme"]');
  await page.waitForFunction((x) => document.documentElement.dataset.theme === x, th);
}

export { TOKEN, ROOT, join };
