// ui.test.mjs - the browser UI in a real browser (issue 19, first slice):
// playwright-core drives Debian's /usr/bin/chromium (never a downloaded
// browser), headless, against a real aosd started like the e2e tests do.
// Sign-in with the Owner token (bearer mode); every page reached from the
// navigation; both languages (every visible string changes, no raw key) and
// both themes, axe-core on each (no serious or critical violation),
// screenshots of each page in each under build/screenshots/; every page at
// phone width and the keyboard; the Chat Hub: an Action DSL task with a CSV
// file, its cards arriving live, its approval decided in the UI, the
// receipt, the CSV previewed, the trace; a name and password sign-in (cookie
// session, CSRF, the stream on the cookie, sign-out); aosd restarted under the page: the
// stream resumes and no card is shown twice; Integrations: the registry, a
// stdio server added, a tool tried, the server deleted; a Viewer's pages
// without the actions it may not take. Any console error or page error
// fails the test. The other pages' flows are in settings, memory, agents,
// projects and perm.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startAosd, backendEntry, ROOT, TOKEN, TOOLS } from '../../tests/e2e/lib.mjs';
import { loadDictionaries } from '../i18n-dicts.mjs';
import { axe, checkLanguage as checkPageLanguage } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = join(ROOT, 'build/screenshots');
const { en, zh } = loadDictionaries();
const PAGES = [
  ['chat', '/', 'nav.chat'], ['monitor', '/telemetry', 'nav.monitor'], ['projects', '/projects', 'nav.projects'],
  ['memory', '/memory', 'nav.memory'], ['settings', '/settings', 'nav.settings'],
  ['integrations', '/integrations', 'nav.integrations'], ['agents', '/agents', 'nav.agents'],
];

let aos, browser, ctx, page;
const problems = []; // console errors and page errors
let allowNetErrors = false; // while aosd is restarted under the page

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/install-deps installs Debian's chromium`);
  aos = await startAosd();
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US', colorScheme: 'light' });
  page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (allowNetErrors && /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|ERR_INCOMPLETE_CHUNKED_ENCODING/.test(m.text())) return;
    problems.push(`console.error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('dialog', (d) => d.accept());
});

after(async () => {
  await browser?.close();
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

const noProblems = () => assert.deepEqual(problems.splice(0), []);
const nav = (key) => page.locator(`nav a[data-page="${key}"]`);

async function setLang(l) {
  await page.selectOption('[data-testid="lang"]', l);
  await page.waitForFunction((x) => document.documentElement.lang === x, l);
}
async function setTheme(th) {
  // the app sets the theme once it has rendered: read it only after that,
  // or a click made before it would toggle the wrong way
  await page.waitForFunction(() => !!document.documentElement.dataset.theme);
  if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== th) await page.click('[data-testid="theme"]');
  await page.waitForFunction((x) => document.documentElement.dataset.theme === x, th);
}

// Every string the page shows is in the language chosen: no English
// dictionary value (that differs in Chinese) is visible in zh-CN and the
// other way round, and no key is shown raw.
const checkLanguage = (l, where) => checkPageLanguage(page, l, where);

// What shows that a page has loaded (every page is built).
const READY = {
  chat: '.convs ul, .convs p',
  monitor: '[data-testid="chart-memory"]:not([data-points="0"]) canvas',
  integrations: '[data-testid="servers"] tr[data-server="aos"]',
  settings: '[data-testid="system-form"]',
  memory: '[data-testid="mem-search"]',
  agents: '[data-testid="agent-new"]',
  projects: '[data-testid="status-filter"]',
};

async function tour(tag) {
  for (const l of ['en', 'zh-CN']) {
    await setLang(l);
    const dict = l === 'en' ? en : zh;
    for (const th of ['light', 'dark']) {
      await setTheme(th);
      for (const [key, path, label] of PAGES) {
        await nav(key).click();
        await page.waitForURL((u) => u.pathname === path);
        assert.equal(await nav(key).getAttribute('aria-current'), 'page');
        assert.equal(await nav(key).innerText(), dict.get(label));
        assert.ok(READY[key], `READY has ${key}`);
        await page.locator(READY[key]).first().waitFor();
        await checkLanguage(l, `${path} (${tag})`);
        await axe(page, `${path} (${tag}, ${l}, ${th})`);
        await page.screenshot({ path: join(SHOTS, `${key}-${l}-${th}.png`), fullPage: true });
      }
    }
  }
  await setLang('en');
  await setTheme('light');
}

test('sign in with the Owner token, kept in this tab only; a page reloads to itself', async () => {
  await page.goto(aos.url + '/');
  await page.fill('[data-testid="token"]', TOKEN);
  await page.click('[data-testid="token-submit"]');
  await page.locator('nav').waitFor();
  assert.match(await page.locator('.who').innerText(), /owner/);
  assert.equal(await page.evaluate(() => localStorage.getItem('aos.session')), null, 'never in localStorage');
  assert.match(await page.evaluate(() => sessionStorage.getItem('aos.session')), /bearer/);
  await page.locator('[data-testid="conn"].conn-live').waitFor();
  // a reload of a page's own URL lands on that page (aosd serves index.html)
  await page.goto(aos.url + '/integrations');
  await page.locator('nav a[data-page="integrations"][aria-current="page"]').waitFor();
  noProblems();
});

test('every page in both languages and both themes; screenshots', async () => {
  await page.goto(aos.url + '/');
  // the theme toggle changes the colours, not just an attribute
  await setTheme('light');
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await setTheme('dark');
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(light, dark);
  await tour('empty');
  noProblems();
});

test('phone width and the keyboard', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(aos.url + '/');
  assert.equal(await page.locator('nav').isVisible(), false, 'the navigation folds away');
  await page.click('.menu-btn');
  await nav('projects').click();
  await page.waitForURL((u) => u.pathname === '/projects');
  await page.screenshot({ path: join(SHOTS, 'projects-en-light-phone.png'), fullPage: true });
  await page.goto(aos.url + '/');
  await page.screenshot({ path: join(SHOTS, 'chat-en-light-phone.png'), fullPage: true });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling at phone width (${width} px)`);
  // every page: the page itself never scrolls sideways (a wide table
  // scrolls inside its own region)
  for (const [key, path] of PAGES) {
    await page.goto(aos.url + path);
    if (READY[key]) await page.locator(READY[key]).first().waitFor();
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(w <= 390, `${path}: no sideways scrolling at phone width (${w} px)`);
    await page.screenshot({ path: join(SHOTS, `${key}-en-light-phone.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 860 });
  // keyboard: the skip link first, then the navigation; Enter follows a link
  await page.goto(aos.url + '/');
  await page.locator('nav').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
  let reached = false;
  for (let i = 0; i < 15 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.dataset?.page === 'memory');
  }
  assert.ok(reached, 'Tab reaches the navigation');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/memory');
  noProblems();
});

const cardOf = (type) => page.locator(`[data-testid="cards"] article[data-type="${type}"]`);

test('Chat Hub: an Action DSL task with a file, its cards live, the approval decided here, the receipt', async () => {
  await page.goto(aos.url + '/');
  await page.locator('[data-testid="conn"].conn-live').waitFor();
  await page.check('[data-testid="mode-dsl"]');
  await page.fill('[data-testid="composer"]', [
    'step hello: aos__echo message="from the browser"',
    'milestone m1: "echoed"',
    'approve gate: "Plot the rows?"',
    'step bye: aos__echo message="approved"',
  ].join('\n'));
  await page.setInputFiles('[data-testid="attach"]', [
    { name: 'sales.csv', mimeType: 'text/csv', buffer: Buffer.from('month,revenue\njan,10\nfeb,"1,5"\n') },
    { name: 'chart.svg', mimeType: 'image/svg+xml', buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="teal"/></svg>') },
    { name: 'stats.json', mimeType: 'application/json', buffer: Buffer.from('{"rows":2,"cols":["month","revenue"]}') },
  ]);
  await page.click('[data-testid="send"]');
  // the conversation keeps the message and the assistant's plan
  await page.locator('.msg-assistant').waitFor();
  assert.match(await page.locator('[data-testid="messages"]').innerText(), /step hello: aos__echo/);
  await cardOf('task.acceptance').waitFor();
  await cardOf('task.progress.milestone').waitFor();
  const approval = cardOf('approval.request');
  await approval.waitFor();
  assert.match(await approval.innerText(), /Plot the rows\?/);
  const trace = (await approval.getAttribute('data-card')).split(':')[1];
  const st = await aos.api('GET', `/api/episodes/${trace}`);
  assert.equal(st.status, 200);
  assert.equal(st.body.job?.status ?? st.body.status, 'waiting', 'the task waits for the decision');
  await approval.locator('[data-testid="approval-comment"]').fill('looks right');
  await approval.locator('button[data-decision="approve"]').click();
  await approval.locator('[data-testid="decided"]').waitFor();
  const receipt = page.locator(`article[data-card="task:${trace}"][data-type="task.receipt"]`);
  await receipt.waitFor();
  assert.match(await receipt.innerText(), /done/);
  // the progress card folded the task's updates into one card
  assert.equal(await page.locator(`article[data-card="progress:${trace}"]`).count(), 1);
  assert.match(await page.locator(`article[data-card="progress:${trace}"]`).innerText(), /4 of 4/);
  // the decision and its comment are what the server recorded
  const ep = await aos.api('GET', `/api/episodes/${trace}`);
  assert.match(JSON.stringify(ep.body), /looks right/);
  // the uploaded CSV is an artifact: previewed as a table
  await receipt.locator('[data-testid="artifact"]', { hasText: 'sales.csv' }).click();
  const table = page.locator('[data-testid="csv-table"]');
  await table.waitFor();
  assert.deepEqual(await table.locator('th').allInnerTexts(), ['month', 'revenue']);
  assert.deepEqual(await table.locator('tbody tr').nth(1).locator('td').allInnerTexts(), ['feb', '1,5']);
  // an SVG as an image, JSON pretty-printed
  await receipt.locator('[data-testid="artifact"]', { hasText: 'chart.svg' }).click();
  const img = page.locator('[data-testid="workspace"] img.artifact-img');
  await img.waitFor();
  await page.waitForFunction(() => document.querySelector('img.artifact-img')?.naturalWidth === 40);
  await receipt.locator('[data-testid="artifact"]', { hasText: 'stats.json' }).click();
  await page.locator('[data-testid="workspace"] pre', { hasText: '"rows": 2,' }).waitFor();
  // the trace, loaded when asked for
  await receipt.locator('[data-testid="trace-link"]').click();
  await page.locator('[data-testid="spans"] li > span', { hasText: /^step hello$/ }).waitFor();
  noProblems();
});


test('Chat Hub: aosd restarted under the page, the stream resumes, no card twice; see more', async () => {
  const before = await page.locator('[data-testid="cards"] article').count();
  allowNetErrors = true;
  const { dataDir } = aos;
  const port = new URL(aos.url).port;
  const { code } = await aos.stop();
  assert.equal(code, 0);
  await page.locator('[data-testid="conn"].conn-reconnecting').waitFor();
  aos = await startAosd({ dataDir, listen: `127.0.0.1:${port}` });
  await page.locator('[data-testid="conn"].conn-live').waitFor({ timeout: 20000 });
  allowNetErrors = false;
  const r = await aos.api('POST', '/api/run', { goal: 'after the restart', dsl: 'step again: aos__echo message="again"' });
  assert.equal(r.status, 201, r.text);
  await page.locator(`article[data-card="task:${r.body.trace_id}"][data-type="task.receipt"]`).waitFor();
  const ids = await page.locator('[data-testid="cards"] article').evaluateAll((a) => a.map((x) => x.dataset.card));
  assert.equal(new Set(ids).size, ids.length, `no card twice: ${ids}`);
  assert.ok(ids.length >= before + 2);
  // a reload shows the same cards from the history, still once each
  await page.reload();
  await page.locator(`article[data-card="task:${r.body.trace_id}"]`).waitFor();
  const again = await page.locator('[data-testid="cards"] article').evaluateAll((a) => a.map((x) => x.dataset.card));
  assert.equal(new Set(again).size, again.length);
  // "see more": with more than one page of events, older ones page in
  for (let i = 0; i < 20; i++) {
    const x = await aos.api('POST', '/api/run', { goal: `filler ${i}`, dsl: `step f${i}: aos__echo message="${i}"` });
    assert.equal(x.status, 201, x.text);
  }
  await page.reload();
  await page.locator('[data-testid="see-more"]').click();
  await page.locator('article[data-card^="approval:"]').waitFor();
  const all = await page.locator('[data-testid="cards"] article').evaluateAll((a) => a.map((x) => x.dataset.card));
  assert.equal(new Set(all).size, all.length);
  noProblems();
});

test('Integrations: the registry, a stdio server added, a tool tried, disabled and enabled, deleted', async () => {
  await page.goto(aos.url + '/integrations');
  await page.locator('tr[data-server="aos"]').waitFor();
  await page.locator('[data-testid="conn"].conn-live').waitFor(); // the stream runs on every page
  const e = backendEntry('ev');
  await page.fill('[data-testid="add-name"]', 'ev');
  await page.fill('[data-testid="add-command"]', e.command);
  await page.fill('[data-testid="add-args"]', e.args.join('\n'));
  await page.click('[data-testid="add-submit"]');
  const row = page.locator('tr[data-server="ev"]');
  await row.waitFor();
  // live: the row turns healthy without a reload (the page refreshes itself)
  await row.locator('[data-testid="health"]', { hasText: 'healthy' }).waitFor({ timeout: 60000 });
  await row.locator('button.link').click();
  await page.locator('[data-testid="tools"] [data-tool="echo"]').click();
  const form = page.locator('[data-testid="try-form"]');
  await form.locator('input[name="message"]').fill('hello from the form');
  await form.locator('[data-testid="try-call"]').click();
  assert.match(await page.locator('[data-testid="try-result"]').innerText(), /Echo: hello from the form/);
  await page.screenshot({ path: join(SHOTS, 'integrations-en-light-tools.png'), fullPage: true });
  // disable and enable again (PATCH: the entry keeps the rest)
  await row.locator('[data-testid="toggle-ev"]').click();
  await page.locator('tr[data-server="ev"].muted [data-testid="toggle-ev"][aria-pressed="false"]').waitFor();
  assert.equal((await aos.api('GET', '/mcp/registry/ev')).body.enabled, false);
  await row.locator('[data-testid="toggle-ev"]').click();
  await row.locator('[data-testid="toggle-ev"][aria-pressed="true"]').waitFor();
  const back = (await aos.api('GET', '/mcp/registry/ev')).body;
  assert.equal(back.enabled, true);
  assert.deepEqual(back.args, e.args);
  await row.locator('[data-testid="health"]', { hasText: 'healthy' }).waitFor({ timeout: 60000 });
  await row.locator('[data-testid="delete-ev"]').click();
  await row.waitFor({ state: 'detached' });
  const reg = await aos.api('GET', '/mcp/registry');
  assert.ok(!reg.body.servers.some((s) => s.name === 'ev'));
  assert.ok(TOOLS);
  noProblems();
});

test('role-aware: a Viewer sees the data but not the actions it may not take', async () => {
  const minted = await aos.api('POST', '/auth/tokens', { name: 'ui-viewer', role: 'viewer' });
  assert.equal(minted.status, 201, minted.text);
  await aos.api('POST', '/mcp/registry', backendEntry('ev2'));
  const vctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'zh-CN' });
  const vpage = await vctx.newPage();
  vpage.setDefaultTimeout(15000);
  const vproblems = [];
  vpage.on('console', (m) => { if (m.type() === 'error') vproblems.push(m.text()); });
  vpage.on('pageerror', (e) => vproblems.push(e.message));
  try {
    await vpage.goto(aos.url + '/');
    // the browser's language chose Chinese
    assert.equal(await vpage.locator('[data-testid="token-submit"]').innerText(), zh.get('login.token.submit'));
    await vpage.fill('[data-testid="token"]', minted.body.token);
    await vpage.click('[data-testid="token-submit"]');
    await vpage.locator('[data-testid="cards"] article').first().waitFor();
    assert.equal(await vpage.locator('[data-testid="send"]').isDisabled(), true);
    await vpage.goto(aos.url + '/integrations');
    await vpage.locator('tr[data-server="ev2"]').waitFor();
    await vpage.locator('[data-testid="no-admin"]').waitFor();
    assert.equal(await vpage.locator('[data-testid="add-form"]').count(), 0);
    assert.equal(await vpage.locator('[data-testid^="delete-"]').count(), 0);
    // and the Owner's page still offers them
    await page.goto(aos.url + '/integrations');
    await page.locator('[data-testid="delete-ev2"]').waitFor();
    assert.equal(await page.locator('[data-testid="add-form"]').count(), 1);
  } finally {
    await vctx.close();
  }
  assert.deepEqual(vproblems, []);
  noProblems();
});

test('sign in with a name and password: an HttpOnly cookie session, CSRF on changes, live events, sign out', async () => {
  const PASS = 'a long browser passphrase 7';
  const u = await aos.api('POST', '/auth/users', { name: 'ui-operator', password: PASS, role: 'operator' });
  assert.equal(u.status, 201, u.text);
  const cctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US' });
  const cpage = await cctx.newPage();
  cpage.setDefaultTimeout(15000);
  const cproblems = [];
  cpage.on('console', (m) => { if (m.type() === 'error') cproblems.push(m.text()); });
  cpage.on('pageerror', (e) => cproblems.push(e.message));
  try {
    await cpage.goto(aos.url + '/');
    // a wrong password is refused and said so
    await cpage.fill('input[name="name"]', 'ui-operator');
    await cpage.fill('input[name="password"]', 'not the passphrase');
    await cpage.click('form:has(input[name="password"]) button[type="submit"]');
    await cpage.locator('p.error[role="alert"]').waitFor();
    assert.equal(await cpage.locator('nav').count(), 0);
    await cpage.fill('input[name="password"]', PASS);
    // (a second failure in a row would wait for the back-off: the first is free)
    await cpage.click('form:has(input[name="password"]) button[type="submit"]');
    await cpage.locator('nav').waitFor();
    // the session is an HttpOnly, SameSite=Strict cookie; no token in the page's storage
    const cookies = await cctx.cookies(aos.url);
    assert.equal(cookies.length, 1, JSON.stringify(cookies.map((c) => c.name)));
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, 'Strict');
    assert.equal(await cpage.evaluate(() => document.cookie), '');
    assert.doesNotMatch(await cpage.evaluate(() => JSON.stringify(sessionStorage) + JSON.stringify(localStorage)), /aos_[A-Za-z0-9_-]{20}/);
    // the value-event stream runs on the cookie (EventSource), and a task
    // sent from the composer (a POST with X-CSRF-Token) shows its cards
    await cpage.locator('[data-testid="conn"].conn-live').waitFor();
    await cpage.check('[data-testid="mode-dsl"]');
    await cpage.fill('[data-testid="composer"]', 'step hi: aos__echo message="cookie session"');
    await cpage.click('[data-testid="send"]');
    await cpage.locator('[data-testid="cards"] article[data-type="task.receipt"]').first().waitFor();
    // the same POST without the CSRF header is refused, with the cookie alone
    const bare = await cpage.evaluate(async () => {
      const r = await fetch('/api/chat/send', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"text":"x"}' });
      return { status: r.status, body: await r.json() };
    });
    assert.equal(bare.status, 403);
    assert.equal(bare.body.error.code, 'csrf_failed');
    // a reload keeps the session; signing out ends it on the server too
    await cpage.reload();
    await cpage.locator('nav').waitFor();
    await cpage.click('button:has-text("Sign out"), button:has-text("Log out")');
    await cpage.locator('input[name="password"]').waitFor();
    const after = await cpage.evaluate(async () => (await fetch('/auth/me')).status);
    assert.equal(after, 401);
  } finally {
    await cctx.close();
  }
  assert.deepEqual(cproblems.filter((m) => !/401|Unauthorized|403|Forbidden/.test(m)), []);
  noProblems();
});

test('the pages with data, in both languages and themes (screenshots)', async () => {
  await tour('with data');
  noProblems();
});

test('Chat Hub: an approval decided elsewhere loses its buttons at once, before the receipt', async () => {
  await page.goto(aos.url + '/');
  await page.locator('[data-testid="conn"].conn-live').waitFor();
  const r = await aos.api('POST', '/api/run', { plan: { steps: [
    { id: 'gate', approval: { message: 'Decided by the API?', timeout_s: 600 } },
    { id: 'second', approval: { message: 'And wait here', timeout_s: 600 } },
  ] } });
  assert.equal(r.status, 201, r.text);
  const card = page.locator(`[data-testid="cards"] article[data-card="approval:${r.body.trace_id}:gate"]`);
  await card.locator('button[data-decision="approve"]').waitFor();
  const ok = await aos.api('POST', '/agent/approve', { trace_id: r.body.trace_id, step_id: 'gate', decision: 'continue' });
  assert.equal(ok.status, 200, ok.text);
  // the task still waits (at 'second'): no receipt has ended the card
  await card.locator('[data-testid="decided"]').waitFor();
  assert.equal(await card.locator('button[data-decision]').count(), 0);
  assert.match(await card.innerText(), /Decided by the API\?/);
  assert.equal((await aos.api('POST', `/api/jobs/${r.body.job_id}/cancel`)).status, 200);
});

// The Analyzer (issue 18): a timeout storm through a real upstream (a
// server whose tool never answers, timeout_ms 200) raises an anomaly; the
// Analyzer's suggestion arrives as the card's next version and shows on it
// in the page's language; timeout_ms is raised from the card (PATCH on the
// registry); "Server health" opens the server in Integrations.
test("Chat Hub: the Analyzer's suggestion on an anomaly card; timeout_ms raised from it", async () => {
  const FAULTY = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');
  const entry = { name: 'slowpoke', command: process.execPath, args: [FAULTY], limits: { retries: 0, breaker_failures: 100 }, timeout_ms: 200 };
  assert.equal((await aos.api('POST', '/mcp/registry', entry)).status, 201);
  for (let i = 0; i < 100 && (await aos.api('GET', '/mcp/registry/slowpoke')).body.health !== 'healthy'; i++)
    await new Promise((r) => setTimeout(r, 100));
  await page.goto(aos.url + '/');
  await page.locator('[data-testid="conn"].conn-live').waitFor();
  for (let i = 0; i < 4; i++)
    assert.equal((await aos.api('POST', '/mcp/call', { server: 'slowpoke', tool: 'hang', args: {} })).status, 504);
  const card = page.locator('[data-testid="cards"] article[data-type="anomaly.detected"]', { has: page.locator('[data-testid="suggestion"][data-rule="timeout_storm"]') });
  await card.waitFor();
  const sg = card.locator('[data-testid="suggestion"]');
  assert.match(await sg.locator('h4').innerText(), /Suggested fix\s+Calls to slowpoke\/hang keep timing out/);
  await axe(page, '/ (analyzer suggestion)');
  await page.screenshot({ path: join(SHOTS, 'chat-en-light-suggestion.png'), fullPage: true });
  await setLang('zh-CN');
  await sg.locator('h4', { hasText: '修复建议 对 slowpoke/hang 的调用反复超时' }).waitFor();
  await checkLanguage('zh-CN', '/ (analyzer suggestion)');
  await setLang('en');
  // raise timeout_ms from the card
  const form = sg.locator('[data-testid="suggestion-timeout"]');
  await form.locator('input').fill('1500');
  await form.locator('button[type="submit"]').click();
  await form.locator('[role="status"]', { hasText: 'timeout_ms is now 1500 ms' }).waitFor();
  assert.equal((await aos.api('GET', '/mcp/registry/slowpoke')).body.timeout_ms, 1500);
  // the server's health: Integrations, with the server's row
  await sg.locator('[data-testid="suggestion-action"]', { hasText: 'Server health' }).click();
  await page.waitForURL((u) => u.pathname === '/integrations');
  await page.locator('tr[data-server="slowpoke"]').waitFor();
  assert.equal((await aos.api('DELETE', '/mcp/registry/slowpoke')).status, 200);
  noProblems();
});
