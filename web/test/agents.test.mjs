// agents.test.mjs - the Agents page in a real browser against a real aosd:
// A1 an agent created from a template; A3 its prompt, SOP and tool mapping
// (a tool picked from the registry's tools/list, a pattern removed) saved
// as a new version; A4 the versions' diff, release and roll back (the diff
// confirmed first), scale, clone and delete; A2/A5 a real local agent (the
// `aosd agent` runtime) started from the page by a user of a cookie
// session, its status and replicas followed live, its log lines streaming
// (the tail over SSE), scaled to 2, a new version released and rolled back
// while it runs, registered in the MCP gateway and called there, stopped;
// the Sandbox tab: a script created, run by hand, its stdout/stderr and
// exit status in the run history, edited and run again, deleted; a Viewer
// without the actions, an Operator with the lifecycle only; Chinese, dark
// and phone width, and axe-core on both tabs; no console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, axe, checkLanguage, setLang, setTheme, SHOTS, join } from './lib.mjs';

let env, owner;
before(async () => { env = await setup(); owner = await env.newPage(); });
after(async () => { await env?.close(); });

const tab = (p, k) => p.locator(`[role="tab"][data-tab="${k}"]`).click();

test('A1/A3/A4: from a template, configured, versions diffed, released, rolled back, scaled, cloned', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await page.goto(aos.url + '/agents');
  await page.locator('[data-testid="agent-new"]').click();
  await page.fill('[data-testid="agent-name"]', 'analyst');
  await page.selectOption('[data-testid="agent-template"]', 'csv-analyst');
  await page.locator('[data-testid="template-info"]', { hasText: 'csv__*' }).waitFor();
  await axe(page, '/agents create modal');
  await page.click('[data-testid="agent-create"]');
  const row = page.locator('tr[data-agent="analyst"]');
  await row.waitFor();
  assert.match(await row.innerText(), /stopped/);
  const view = page.locator('[data-testid="agent"]');
  await view.waitFor();
  assert.match(await page.locator('[data-testid="agent-prompt"]').inputValue(), /data analyst/);
  // the configuration: a new prompt, a tool from the registry, a pattern removed
  await page.fill('[data-testid="agent-prompt"]', 'You clean CSV files.\nThen you plot them.');
  await page.locator('[data-testid="agent-config"] summary').click();
  await page.fill('[data-testid="tool-filter"]', 'echo');
  await page.locator('[data-testid="tool-pick"] input[data-tool="aos__echo"]').check();
  await page.locator('[data-testid="agent-tools"] .tag', { hasText: 'files__*' }).locator('button').click();
  await axe(page, '/agents config');
  await page.click('[data-testid="agent-save"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: 'version 2' }).waitFor();
  let a = (await aos.api('GET', '/agents/analyst')).body;
  assert.equal(a.latest_version, 2);
  assert.equal(a.version, 1, 'not live until released');
  assert.deepEqual([...a.config.tools].sort(), ['aos__echo', 'csv__*', 'viz__*']);
  assert.equal(a.config.prompt, 'You clean CSV files.\nThen you plot them.');
  // A4: the diff of v1 and v2; release v2; roll back to v1
  await page.locator('[data-testid="versions"] tr[data-version="2"]').waitFor();
  const diff = page.locator('[data-testid="diff"]');
  assert.match(await diff.locator('.add').allInnerTexts().then((x) => x.join('\n')), /aos__echo/);
  assert.match(await diff.locator('.del').allInnerTexts().then((x) => x.join('\n')), /files__\*/);
  // a prompt's edit shows line by line
  assert.ok((await diff.locator('.add').allInnerTexts()).includes('+ Then you plot them.'));
  assert.match(await page.locator('[data-testid="versions"] tr[data-version="2"]').innerText(), /prompt/);
  await page.click('[data-testid="release-2"]');
  // the diff from the live version, confirmed first
  const modal = page.locator('[data-testid="release-modal"]');
  assert.match(await modal.locator('[data-testid="diff"] .add').allInnerTexts().then((x) => x.join('\n')), /Then you plot them/);
  await axe(page, '/agents release modal');
  await modal.locator('[data-testid="release-confirm"]').click();
  await page.locator('[data-testid="versions"] tr[data-version="2"] [data-testid="live"]').waitFor();
  assert.equal((await aos.api('GET', '/agents/analyst')).body.version, 2);
  await page.locator('[data-testid="release-1"]', { hasText: 'Roll back' }).click();
  await page.locator('[data-testid="release-modal"] [data-testid="diff"] .del', { hasText: 'Then you plot them' }).waitFor();
  await page.locator('[data-testid="release-confirm"]', { hasText: 'Roll back' }).click();
  await page.locator('[data-testid="versions"] tr[data-version="1"] [data-testid="live"]').waitFor();
  assert.equal((await aos.api('GET', '/agents/analyst')).body.version, 1);
  // scale
  await page.fill('[data-testid="agent-replicas"]', '3');
  await page.click('[data-testid="agent-scale"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: '3' }).waitFor();
  assert.equal((await aos.api('GET', '/agents/analyst')).body.replicas, 3);
  await axe(page, '/agents versions');
  await page.screenshot({ path: join(SHOTS, 'agents-en-light-agent.png'), fullPage: true });
  // clone (under the name proposed), then delete the copy
  await page.click('[data-testid="agent-clone"]');
  await page.locator('tr[data-agent="analyst-copy"]').waitFor();
  await page.locator('[data-testid="agent"] h2', { hasText: 'analyst-copy' }).waitFor();
  assert.equal((await aos.api('GET', '/agents/analyst-copy')).body.config.prompt, 'You clean CSV files.\nThen you plot them.');
  await page.click('[data-testid="agent-delete"]');
  await page.locator('tr[data-agent="analyst-copy"]').waitFor({ state: 'detached' });
  assert.equal((await aos.api('GET', '/agents/analyst-copy')).status, 404);
  const audit = await aos.api('GET', '/audit/logs?action=agent.*&limit=50');
  for (const x of ['agent.create', 'agent.update', 'agent.release', 'agent.scale', 'agent.clone', 'agent.delete'])
    assert.ok(audit.body.items.some((i) => i.action === x), `${x}: ${audit.body.items.map((i) => i.action)}`);
  noProblems();
});

test('A2/A5: a real local agent started, its logs live, scaled, released and rolled back while running, registered, stopped (cookie session)', async () => {
  const { aos } = env;
  const PASS = 'agent-admin-pass-1';
  const user = await aos.api('POST', '/auth/users', { name: 'ag-admin', password: PASS, role: 'admin' });
  assert.equal(user.status, 201, user.text);
  const c = await aos.api('POST', '/agents', { name: 'echoer', template: 'shell-runner', config: { sop: 'step e: aos__echo message=${inputs.input}', tools: ['aos__echo'] } });
  assert.equal(c.status, 201, c.text);
  const { page, noProblems } = await env.newPage({ token: null });
  await page.goto(aos.url + '/');
  await page.fill('input[name="name"]', 'ag-admin');
  await page.fill('input[name="password"]', PASS);
  await page.click('form:has(input[name="password"]) button[type="submit"]');
  await page.locator('nav').waitFor();
  await page.goto(aos.url + '/agents');
  await page.locator('tr[data-agent="echoer"] button').click();
  const view = page.locator('[data-testid="agent"]');
  await view.locator('[data-testid="agent-status"][data-status="stopped"]').waitFor();
  assert.equal(await page.locator('[data-testid="agent-stop"], [data-testid="replicas"]').count(), 0);
  // the log tail is open (the cookie session's EventSource) before anything runs
  await page.locator('[data-testid="agent-logs-state"][data-state="live"]').waitFor();
  const lines = page.locator('[data-testid="agent-log-lines"] tr');
  // start: running, one ready replica of v1, its "ready" line streamed in
  await page.click('[data-testid="agent-start"]');
  await view.locator('[data-testid="agent-status"][data-status="running"]').waitFor({ timeout: 30000 });
  await page.locator('[data-testid="replicas"] tr[data-state="ready"][data-version="1"]').waitFor();
  await lines.filter({ hasText: /agent echoer v1 replica \d+: ready/ }).first().waitFor();
  await page.locator('tr[data-agent="echoer"]', { hasText: 'running' }).waitFor();
  let a = (await aos.api('GET', '/agents/echoer')).body;
  assert.equal(a.status, 'running');
  const pid0 = a.live_replicas[0].pid;
  assert.equal(await page.locator(`[data-testid="replicas"] tr[data-replica="${a.live_replicas[0].replica}"] td.mono`).innerText(), String(pid0));
  await axe(page, '/agents running');
  // scale to 2: the second replica shows up ready, and its line streams in
  await page.fill('[data-testid="agent-replicas"]', '2');
  await page.click('[data-testid="agent-scale"]');
  await page.locator('[data-testid="replicas"] tr[data-state="ready"]').nth(1).waitFor({ timeout: 30000 });
  await lines.filter({ hasText: /: ready/ }).nth(1).waitFor();
  a = (await aos.api('GET', '/agents/echoer')).body;
  assert.equal(a.replicas, 2);
  assert.equal(a.live_replicas.filter((r) => r.state === 'ready').length, 2);
  // register it in the MCP gateway, and call it there
  await page.click('[data-testid="agent-register"]');
  await page.locator('[data-testid="agent-registered"]', { hasText: 'echoer__run_task' }).waitFor();
  const reg = (await aos.api('GET', '/mcp/registry')).body.servers.find((x) => x.name === 'echoer');
  assert.equal(reg?.transport, 'agent');
  const call = await aos.api('POST', '/mcp/call', { server: 'echoer', tool: 'run_task', args: { input: 'from the test' } });
  assert.equal(call.status, 200, call.text);
  assert.match(JSON.stringify(call.body), /Echo: from the test/);
  await page.locator('[data-testid="agent-stats"]', { hasText: /Calls [1-9]/ }).waitFor();
  // a new version saved, released while running (the diff shown first):
  // its replicas replace the old ones, v2 lines stream in; then rolled back
  await page.fill('[data-testid="agent-prompt"]', 'Version two of the echoer.');
  await page.click('[data-testid="agent-save"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: 'version 2' }).waitFor();
  await page.click('[data-testid="release-2"]');
  await page.locator('[data-testid="release-modal"] [data-testid="diff"] .add', { hasText: 'Version two of the echoer.' }).waitFor();
  await page.locator('[data-testid="release-modal"]', { hasText: 'replaced one at a time' }).waitFor();
  await page.click('[data-testid="release-confirm"]');
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll('[data-testid="replicas"] tbody tr')];
    return r.length === 2 && r.every((x) => x.dataset.version === '2' && x.dataset.state === 'ready');
  }, null, { timeout: 60000 });
  await lines.filter({ hasText: /agent echoer v2 replica \d: ready/ }).first().waitFor();
  await page.locator('[data-testid="agent-version"]', { hasText: 'v2' }).waitFor();
  assert.equal((await aos.api('GET', '/agents/echoer')).body.running_version, 2);
  await page.locator('[data-testid="release-1"]', { hasText: 'Roll back' }).click();
  await page.locator('[data-testid="release-modal"] [data-testid="diff"] .del', { hasText: 'Version two of the echoer.' }).waitFor();
  await page.click('[data-testid="release-confirm"]');
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll('[data-testid="replicas"] tbody tr')];
    return r.length === 2 && r.every((x) => x.dataset.version === '1' && x.dataset.state === 'ready');
  }, null, { timeout: 60000 });
  assert.equal((await aos.api('GET', '/agents/echoer')).body.running_version, 1);
  await page.screenshot({ path: join(SHOTS, 'agents-en-light-running.png'), fullPage: true });
  // a crash (kill -9 a replica): the value events bring the restart in
  const victim = (await aos.api('GET', '/agents/echoer')).body.live_replicas[0];
  process.kill(victim.pid, 'SIGKILL');
  await page.locator('[data-testid="agent-errors"] li').first().waitFor({ timeout: 20000 });
  await page.waitForFunction((pid) => {
    const r = [...document.querySelectorAll('[data-testid="replicas"] tbody tr')];
    return r.length === 2 && r.every((x) => x.dataset.state === 'ready') && !r.some((x) => x.querySelector('td.mono')?.textContent === String(pid));
  }, victim.pid, { timeout: 30000 });
  // pausing the tail keeps what it has; resuming tails again, no line twice
  await page.click('[data-testid="agent-logs-pause"]');
  await page.locator('[data-testid="agent-logs-state"][data-state="paused"]').waitFor();
  await page.click('[data-testid="agent-logs-pause"]');
  await page.locator('[data-testid="agent-logs-state"][data-state="live"]').waitFor();
  await lines.first().waitFor();
  const ids = await lines.evaluateAll((xs) => xs.map((x) => x.dataset.id));
  assert.equal(new Set(ids).size, ids.length, 'no line twice');
  // stop: stopped, no replica left, the token revoked
  await page.click('[data-testid="agent-stop"]');
  await view.locator('[data-testid="agent-status"][data-status="stopped"]').waitFor({ timeout: 30000 });
  await page.locator('[data-testid="replicas"]').waitFor({ state: 'detached' });
  await page.locator('[data-testid="agent-start"]').waitFor();
  a = (await aos.api('GET', '/agents/echoer')).body;
  assert.equal(a.status, 'stopped');
  const audit = await aos.api('GET', '/audit/logs?resource=agent:echoer&limit=100');
  const acts = audit.body.items.map((i) => i.action);
  for (const x of ['agent.start', 'agent.scale', 'agent.register', 'agent.release', 'agent.rollback', 'agent.stop'])
    assert.ok(acts.includes(x), `${x}: ${acts}`);
  for (const i of audit.body.items.filter((x) => ['agent.start', 'agent.stop', 'agent.register'].includes(x.action)))
    assert.equal(i.actor, `user:${user.body.id}`, 'the user of the cookie session did it');
  noProblems();
});

test('A2: the status follows agent.status events (no timer while stopped), the run history, unregister, env references', async () => {
  const { aos } = env;
  assert.ok((await aos.api('PUT', '/config/runtime/UI_KEY', { value: 'ui-secret-value-3e51' })).status < 300);
  assert.ok((await aos.api('PUT', '/projects/uip/vars/UI_VAR', { secret: 'UI_KEY' })).status < 300);
  const c = await aos.api('POST', '/agents', { name: 'evented', config: { sop: 'step e: aos__echo message=${inputs.input}', tools: ['aos__echo'], project_id: 'uip' } });
  assert.equal(c.status, 201, c.text);
  const { page, noProblems } = await env.newPage();
  await page.goto(aos.url + '/agents');
  await page.locator('tr[data-agent="evented"] button').click();
  const view = page.locator('[data-testid="agent"]');
  await view.locator('[data-testid="agent-status"][data-status="stopped"]').waitFor();
  await page.locator('[data-testid="agent-runs-none"]').waitFor();
  // started and stopped elsewhere (the API): a stopped agent has no timer,
  // so only the agent.status events can bring the changes in
  assert.equal((await aos.api('POST', '/agents/evented/start')).status, 200);
  await view.locator('[data-testid="agent-status"][data-status="running"]').waitFor({ timeout: 20000 });
  await page.locator('tr[data-agent="evented"]', { hasText: 'running' }).waitFor();
  await page.locator('[data-testid="agent-runs"] tr[data-status="running"]').waitFor();
  assert.equal((await aos.api('POST', '/agents/evented/stop')).status, 200);
  await view.locator('[data-testid="agent-status"][data-status="stopped"]').waitFor({ timeout: 20000 });
  const run = page.locator('[data-testid="agent-runs"] tbody tr').first();
  await page.locator('[data-testid="agent-runs"] tbody tr[data-status="stopped"]').first().waitFor();
  assert.match(await run.innerText(), /v1 × 1/);
  assert.match(await run.innerText(), /Calls 0/);
  // register, then take it out of the gateway again
  await page.click('[data-testid="agent-register"]');
  await page.locator('[data-testid="agent-registered"]').waitFor();
  await page.click('[data-testid="agent-unregister"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: 'Removed from the MCP gateway' }).waitFor();
  await page.locator('[data-testid="agent-register"]').waitFor();
  assert.equal((await aos.api('GET', '/agents/evented')).body.route_prefix, null);
  assert.equal((await aos.api('GET', '/mcp/registry/evented')).status, 404);
  // env: a value, a runtime secret and a project variable, picked from their lists
  const add = async (name, kind, value) => {
    await page.click('[data-testid="env-add"]');
    const row = page.locator('[data-testid="env-entry"]').last();
    await row.locator('[data-testid="env-name"]').fill(name);
    await row.locator('[data-testid="env-kind"]').selectOption(kind);
    if (kind === 'value') await row.locator('[data-testid="env-value"]').fill(value);
    else {
      await row.locator(`[data-testid="env-ref"] option[value="${value}"]`).waitFor({ state: 'attached' });
      await row.locator('[data-testid="env-ref"]').selectOption(value);
    }
  };
  await add('PLAIN', 'value', 'ui-plain-value-77');
  await add('FROM_SECRET', 'secret', 'UI_KEY');
  await add('FROM_VAR', 'var', 'UI_VAR');
  await axe(page, '/agents env references');
  await page.click('[data-testid="agent-save"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: 'version 2' }).waitFor();
  const cfg = (await aos.api('GET', '/agents/evented/versions')).body.versions.at(-1).config;
  assert.deepEqual(cfg.env_names.sort(), ['FROM_SECRET', 'FROM_VAR', 'PLAIN']);
  assert.deepEqual(cfg.env_refs.FROM_SECRET, { secret: 'UI_KEY' });
  assert.equal(cfg.env_refs.FROM_VAR.var, 'UI_VAR');
  // the Chat Hub has the agent's status card
  await page.goto(aos.url + '/');
  await page.locator('[data-testid="cards"] article[data-type="agent.status"] [data-testid="agent-status-card"]', { hasText: 'evented' }).first().waitFor();
  noProblems();
});

test('A2 at phone width, in Chinese and dark: the lifecycle and the log tail fit', async () => {
  const { page, noProblems } = await env.newPage();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(env.aos.url + '/agents');
  await setLang(page, 'zh-CN');
  await setTheme(page, 'dark');
  await page.locator('tr[data-agent="echoer"] button').click();
  await page.locator('[data-testid="agent-logs"]').waitFor();
  await page.locator('[data-testid="agent-log-lines"] tr').first().waitFor();
  await checkLanguage(page, 'zh-CN', '/agents lifecycle');
  await axe(page, '/agents phone zh-CN dark');
  const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(over <= 1, `no sideways scroll at 390 px: ${over}`);
  await page.screenshot({ path: join(SHOTS, 'agents-zh-CN-dark-phone.png'), fullPage: true });
  await setTheme(page, 'light');
  await setLang(page, 'en');
  noProblems();
});

test('A3: environment variables added and removed; values never shown, kept when not touched', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  const c = await aos.api('POST', '/agents', { name: 'with-env', template: 'shell-runner', config: { env: { KEEP_ME: 'kept-value-5521', DROP_ME: 'dropped-value-5522' } } });
  assert.equal(c.status, 201, c.text);
  await page.goto(aos.url + '/agents');
  await page.locator('tr[data-agent="with-env"] button').click();
  await page.locator('[data-testid="agent-env"] .tag', { hasText: 'KEEP_ME' }).waitFor();
  await page.click('[data-testid="env-add"]');
  await page.fill('[data-testid="env-name"]', 'NEW_ONE');
  await page.fill('[data-testid="env-value"]', 'new-value-5523');
  await page.locator('[data-testid="agent-env"] .tag', { hasText: 'DROP_ME' }).locator('button').click();
  await page.click('[data-testid="agent-save"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: 'version 2' }).waitFor();
  const a = (await aos.api('GET', '/agents/with-env')).body;
  assert.deepEqual([...a.config.env_names].sort(), ['KEEP_ME', 'NEW_ONE']);
  assert.doesNotMatch(await page.content(), /value-552/);
  // a save that touches no variable keeps them all
  await page.fill('[data-testid="agent-prompt"]', 'another prompt');
  await page.click('[data-testid="agent-save"]');
  await page.locator('[data-testid="agent-msg"]', { hasText: 'version 3' }).waitFor();
  assert.deepEqual([...(await aos.api('GET', '/agents/with-env')).body.config.env_names].sort(), ['KEEP_ME', 'NEW_ONE']);
  noProblems();
});

test('Sandbox: a script created, run by hand, its output in the history, edited, run again, deleted', async () => {
  const { page, noProblems } = owner;
  const { aos } = env;
  await tab(page, 'sandbox');
  await page.locator('[data-testid="sandbox-status"]').waitFor();
  await page.click('[data-testid="script-new"]');
  await page.fill('[data-testid="script-name"]', 'hello');
  await page.fill('[data-testid="script-code"]', 'echo out-one; echo err-one >&2; exit 3');
  await page.click('[data-testid="script-save"]');
  await page.locator('tr[data-script="hello"]').waitFor();
  const sv = page.locator('[data-testid="script"]');
  await sv.waitFor();
  await page.click('[data-testid="script-run"]');
  await page.locator('[data-testid="runs"] tr[data-status="failed"], [data-testid="runs"] tr[data-status="succeeded"]').first().waitFor({ timeout: 30000 });
  await page.locator('[data-testid="stdout"]', { hasText: 'out-one' }).waitFor();
  assert.match(await page.locator('[data-testid="stderr"]').innerText(), /err-one/);
  assert.match(await page.locator('[data-testid="runs"] tbody tr').first().innerText(), /\b3\b/);
  await axe(page, '/agents sandbox run');
  await page.screenshot({ path: join(SHOTS, 'agents-en-light-sandbox.png'), fullPage: true });
  // edit: the new code runs next
  await page.click('[data-testid="script-edit"]');
  await page.fill('[data-testid="script-code"]', 'echo out-two');
  await page.click('[data-testid="script-save"]');
  await sv.waitFor();
  await page.click('[data-testid="script-run"]');
  await page.locator('[data-testid="stdout"]', { hasText: 'out-two' }).waitFor({ timeout: 30000 });
  await page.locator('[data-testid="runs"] tr[data-status="succeeded"]').waitFor();
  assert.equal(await page.locator('[data-testid="runs"] tbody tr').count(), 2);
  const s = (await aos.api('GET', '/sandbox/scripts')).body.scripts.find((x) => x.name === 'hello');
  assert.equal(s.files['main.sh'], 'echo out-two');
  await page.click('[data-testid="script-delete"]');
  await page.locator('tr[data-script="hello"]').waitFor({ state: 'detached' });
  assert.equal((await aos.api('GET', `/sandbox/scripts/${s.id}`)).status, 404);
  noProblems();
});

test('both tabs in Chinese, no English left', async () => {
  const { page, noProblems } = owner;
  await page.goto(env.aos.url + '/agents');
  await setLang(page, 'zh-CN');
  await page.locator('tr[data-agent="analyst"] button').click();
  await page.locator('[data-testid="agent"]').waitFor();
  await page.fill('[data-testid="agent-prompt"]', '你负责清洗数据。');
  await checkLanguage(page, 'zh-CN', '/agents');
  await axe(page, '/agents zh-CN');
  await tab(page, 'sandbox');
  await page.locator('[data-testid="sandbox-status"]').waitFor();
  await checkLanguage(page, 'zh-CN', '/agents sandbox');
  await page.screenshot({ path: join(SHOTS, 'agents-zh-CN-light-sandbox.png'), fullPage: true });
  await setLang(page, 'en');
  noProblems();
});

test('a Viewer sees agents and scripts but none of the actions', async () => {
  const v = await env.aos.api('POST', '/auth/tokens', { name: 'ag-viewer', role: 'viewer' });
  await env.aos.api('POST', '/sandbox/scripts', { name: 'seen', entry_file: 'main.sh', files: { 'main.sh': 'echo seen' } });
  const { page, noProblems } = await env.newPage({ token: v.body.token });
  await page.goto(env.aos.url + '/agents');
  await page.locator('tr[data-agent="analyst"] button').click();
  await page.locator('[data-testid="agent"]').waitFor();
  assert.equal(await page.locator('[data-testid="agent-new"], [data-testid="agent-save"], [data-testid="agent-clone"], [data-testid="agent-delete"], [data-testid="agent-scale"], [data-testid^="release-"], [data-testid="agent-start"], [data-testid="agent-stop"], [data-testid="agent-register"]').count(), 0);
  // the log tail is read access: a Viewer has it
  await page.locator('[data-testid="agent-logs-state"][data-state="live"]').waitFor();
  assert.equal(await page.locator('[data-testid="agent-prompt"]').isDisabled(), true);
  await axe(page, '/agents as a viewer');
  await tab(page, 'sandbox');
  await page.locator('tr[data-script="seen"] button').click();
  await page.locator('[data-testid="script"]').waitFor();
  assert.equal(await page.locator('[data-testid="script-new"], [data-testid="script-run"], [data-testid="script-edit"], [data-testid="script-delete"]').count(), 0);
  noProblems();
});

test('an Operator starts, stops and scales, but neither registers, clones, edits nor deletes', async () => {
  const o = await env.aos.api('POST', '/auth/tokens', { name: 'ag-operator', role: 'operator' });
  assert.equal(o.status, 201, o.text);
  const { page, noProblems } = await env.newPage({ token: o.body.token });
  await page.goto(env.aos.url + '/agents');
  await page.locator('tr[data-agent="analyst"] button').click();
  await page.locator('[data-testid="agent-start"]').waitFor();
  for (const id of ['agent-scale', 'agent-start']) assert.equal(await page.locator(`[data-testid="${id}"]`).count(), 1, id);
  assert.ok(await page.locator('[data-testid^="release-"]').count() > 0, 'release and roll back are an Operator\'s');
  assert.equal(await page.locator('[data-testid="agent-new"], [data-testid="agent-register"], [data-testid="agent-clone"], [data-testid="agent-delete"], [data-testid="agent-save"]').count(), 0);
  assert.equal(await page.locator('[data-testid="agent-prompt"]').isDisabled(), true);
  await page.locator('[data-testid="agent-logs-state"][data-state="live"]').waitFor();
  noProblems();
});
