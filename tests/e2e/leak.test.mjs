// leak.test.mjs - the secrets users give aosd never come back out (issue
// 16, "a leak test"). Distinctive values are used the ways aosd uses
// secrets: runtime secrets opened into a task's shell step (TaskSpec env),
// a sandbox script's env, an agent's env (set, then changed: a new version
// and its diff, with a runtime secret by reference; then the agent run
// with it), a stdio server's env that it prints to stderr, an HTTP
// upstream's header and bearer token, an HTTP upstream's header that names
// a runtime secret (then rotated), and the built-in http tool's request
// headers naming a runtime secret and a project variable, sent by a task to
// a loopback server that checks it got them and echoes them back. Each use
// also fails (the step and
// the script print the value and exit non-zero, the upstream is called
// with a tool it does not have) so errors, anomalies and receipts are
// made. Then every GET route of docs/rbac-routes.json, the resources made
// here, every log entry, the value events, the task's trace and episode,
// the audit log, /metrics, aosd's stdout and stderr, and the database and
// WAL files are searched for the plain values: none may be there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { startAosd, startReportServer, backendEntry, waitReady, sleep, ROOT } from './lib.mjs';

const TABLE = JSON.parse(readFileSync(join(ROOT, 'docs/rbac-routes.json'), 'utf8'));
const v = (what) => `${what}-${randomBytes(12).toString('hex')}`;
const SECRETS = {
  'a runtime secret a task opens': v('rt-task'),
  'a runtime secret no one uses': v('rt-idle'),
  "a script's env value": v('script-env'),
  "an agent's env value": v('agent-env'),
  "an agent's changed env value": v('agent-env2'),
  "a stdio server's env value": v('stdio-env'),
  "an HTTP upstream's header value": v('upstream-hdr'),
  "an HTTP upstream's bearer token": v('upstream-tok'),
  'a runtime secret an agent opens': v('rt-agent'),
  "a runtime secret an http__get header names": v('rt-http'),
  "a project variable's secret an http__get header names": v('rt-httpvar'),
  "a runtime secret an upstream's header names": v('rt-uphdr'),
  "that secret, rotated": v('rt-uphdr2'),
};
const S = Object.values(SECRETS);

// A loopback server that records each request's headers and answers
// with them: an echo of a secret must be redacted where aosd keeps it.
let fixture, aos, echo;
const hits = [];
before(async () => {
  fixture = await startReportServer();
  echo = http.createServer((req, res) => {
    hits.push(req.headers);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ saw: req.headers }));
  });
  await new Promise((r) => echo.listen(0, '127.0.0.1', r));
  aos = await startAosd();
});
after(async () => {
  await aos?.cleanup();
  fixture?.kill();
  echo?.close();
});

const seen = []; // [what, text]
async function api(method, path, body) {
  const r = await aos.api(method, path, body);
  seen.push([`${method} ${path}`, r.text]);
  return r;
}

async function until(what, fn, ms = 30000) {
  for (const end = Date.now() + ms; ; await sleep(100)) {
    const r = await fn();
    if (r) return r;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  }
}

test('secrets used by tasks, scripts, agents and upstreams are found nowhere', async () => {
  const [rtTask, rtIdle, scriptVal, agentVal, agentVal2, stdioVal, hdrVal, tokVal, rtAgent,
    rtHttp, rtHttpVar, rtUpHdr, rtUpHdr2] = S;
  // runtime secrets
  for (const [name, value] of [['LEAK_TASK', rtTask], ['LEAK_IDLE', rtIdle], ['LEAK_AGENT', rtAgent],
    ['LEAK_HTTP', rtHttp], ['LEAK_HTTPVAR', rtHttpVar], ['LEAK_UPHDR', rtUpHdr]]) {
    const r = await api('PUT', `/config/runtime/${name}`, { value, purpose: 'leak test' });
    assert.ok(r.status === 200 || r.status === 201, r.text);
  }
  // upstreams: a stdio server that prints its env value to stderr at start,
  // an HTTP server sent a secret header and bearer token
  const stdio = backendEntry('leaky', 'everything', { env: { LEAK_KEY: stdioVal } });
  stdio.command = '/bin/sh';
  stdio.args = ['-c', `echo "starting with key $LEAK_KEY" >&2; exec '${join(ROOT, 'tests/tools/mcp-server.sh')}' everything`];
  assert.equal((await api('POST', '/mcp/registry', stdio)).status, 201);
  assert.equal((await api('POST', '/mcp/registry', {
    name: 'hdr', url: `http://127.0.0.1:${fixture.port}/mcp`,
    headers: { 'X-Api-Key': hdrVal, 'X-Rt-Key': { secret: 'LEAK_UPHDR' } }, auth_token: tokVal,
  })).status, 201);
  await waitReady(aos, 'leaky');
  await waitReady(aos, 'hdr');
  // the upstream got the runtime secret's value (its answer is not searched:
  // it is the upstream's own report of what it was sent)
  const report = async () => JSON.parse((await aos.api('POST', '/mcp/call', { server: 'hdr', tool: 'report' })).body.content[0].text);
  assert.equal((await report()).headers['x-rt-key'], rtUpHdr);
  // rotated: the next connection carries the new value
  assert.equal((await api('PUT', '/config/runtime/LEAK_UPHDR', { value: rtUpHdr2 })).status, 200);
  assert.equal((await api('PATCH', '/mcp/registry/hdr', { description: 'reconnect' })).status, 200);
  await waitReady(aos, 'hdr');
  assert.equal((await report()).headers['x-rt-key'], rtUpHdr2);
  assert.deepEqual((await api('GET', '/mcp/registry/hdr')).body.header_secrets, { 'X-Rt-Key': 'LEAK_UPHDR' });
  for (let i = 0; i < 4; i++) await api('POST', '/mcp/call', { server: 'hdr', tool: 'no-such-tool' });

  // a task whose shell step sees the secret, prints it and fails
  const run = await api('POST', '/api/run', {
    goal: 'leak test',
    plan: { steps: [{ id: 'leak', tool: 'shell__run', args: { command: 'echo "task sees $LEAK"; echo "stderr $LEAK" >&2; exit 3' } }] },
    env: { LEAK: { secret: 'LEAK_TASK' } },
    constraints: { approval: 'never' },
  });
  assert.equal(run.status, 201, run.text);
  const trace = run.body.trace_id;
  const ep = await until('the task to end', async () => {
    const r = await aos.api('GET', `/api/episodes/${trace}`);
    return r.status === 200 && ['failed', 'done'].includes(r.body.status) ? r.body : null;
  });
  // the step did run with the secret (redacted in what it returned)
  assert.match(JSON.stringify(ep), /task sees \[REDACTED\]/);
  // and who ran it is named, not hidden: a token's id is no secret
  assert.equal(ep.events.find((e) => e.type === 'task.acceptance').payload.actor, 'token:owner');

  // the built-in http tool: a task's request headers name a runtime secret
  // and a project variable, opened only when the request is made; the
  // server echoes them back
  assert.equal((await api('PUT', '/projects/leakp/vars/HTTP_TOKEN', { secret: 'LEAK_HTTPVAR' })).status, 200);
  const httpStep = (headers) => ({
    goal: 'leak test http', project_id: 'leakp',
    plan: { steps: [{ id: 'call', tool: 'http__get', args: { url: `http://127.0.0.1:${echo.address().port}/x`, headers } }] },
    constraints: { approval: 'never', http: { allow_hosts: ['127.0.0.1'], allow_private: true } },
  });
  const ended = (trace) => until('the task to end', async () => {
    const r = await aos.api('GET', `/api/episodes/${trace}`);
    return r.status === 200 && ['failed', 'done'].includes(r.body.status) ? r.body : null;
  });
  const hrun = await api('POST', '/api/run', httpStep({ 'X-Leak-Secret': { secret: 'LEAK_HTTP' }, 'X-Leak-Var': { var: 'HTTP_TOKEN' } }));
  assert.equal(hrun.status, 201, hrun.text);
  const hep = await ended(hrun.body.trace_id);
  assert.equal(hep.status, 'done', JSON.stringify(hep));
  assert.equal(hits.length, 1);
  assert.equal(hits[0]['x-leak-secret'], rtHttp);
  assert.equal(hits[0]['x-leak-var'], rtHttpVar);
  // the step's input keeps the references; the echo is stored redacted
  const hj = JSON.stringify(hep);
  assert.match(hj, /"X-Leak-Secret":\{"secret":"LEAK_HTTP"\}/);
  assert.match(hj, /\[REDACTED\]/);
  // a reference that does not open fails the step, naming it, and sends nothing
  for (const [headers, re] of [[{ 'X-Leak-Secret': { secret: 'NO_SUCH_SECRET' } }, /NO_SUCH_SECRET/],
    [{ 'X-Leak-Var': { var: 'NO_SUCH_VAR' } }, /no variable 'NO_SUCH_VAR'/]]) {
    const bad = await api('POST', '/api/run', httpStep(headers));
    assert.equal(bad.status, 201, bad.text);
    const bep = await ended(bad.body.trace_id);
    assert.equal(bep.status, 'failed', JSON.stringify(bep));
    assert.match(JSON.stringify(bep), re);
  }
  assert.equal(hits.length, 1, 'a request with a bad reference was sent');

  // a sandbox script with a secret in its env, printing it and failing
  const sc = await api('POST', '/sandbox/scripts', {
    name: 'leaky', entry_file: 'run.sh',
    files: { 'run.sh': 'echo "script sees $SKEY"; echo "$SKEY" >&2; exit 2' }, env: { SKEY: scriptVal },
  });
  assert.equal(sc.status, 201, sc.text);
  const sr = await api('POST', `/sandbox/scripts/${sc.body.id}/run`);
  assert.equal(sr.status, 202, sr.text);
  const srun = await until('the script run to end', async () => {
    const r = await aos.api('GET', `/sandbox/runs/${sr.body.id}`);
    return r.body.finished_at ? r.body : null;
  });
  assert.equal(srun.status, 'failed', JSON.stringify(srun));
  assert.match(srun.stdout, /script sees \[REDACTED\]/);

  // an agent with a secret env value, changed once
  const ag = await api('POST', '/agents', { name: 'leaky-agent', template: 'csv-analyst', config: { env: { API_KEY: agentVal } } });
  assert.equal(ag.status, 201, ag.text);
  // the new version also takes a runtime secret by reference, opened at start
  assert.equal((await api('PATCH', `/agents/${ag.body.id}`, { config: { env: { API_KEY: agentVal2, RT_KEY: { secret: 'LEAK_AGENT' } } } })).status, 200);
  // running: the value is opened into its replica's environment, and the
  // replica's token is minted and revoked
  assert.equal((await api('POST', `/agents/${ag.body.id}/start`)).status, 200);
  await until('the agent running', async () => (await aos.api('GET', `/agents/${ag.body.id}`)).body.status === 'running');
  assert.equal((await api('POST', `/agents/${ag.body.id}/stop`)).status, 200);

  // read everything back: every GET route of the table, the resources made here
  for (const rt of TABLE.routes) {
    if (rt.method !== 'GET' || rt.request.stream || rt.request.mcp) continue;
    await api('GET', rt.request.path);
  }
  for (const p of ['/mcp/registry', '/mcp/registry/hdr', '/mcp/registry/leaky', '/config/runtime',
    `/api/episodes/${trace}`, `/api/traces/${trace}`, '/api/jobs?limit=500',
    `/agents/${ag.body.id}`, `/agents/${ag.body.id}/versions`, `/agents/${ag.body.id}/runs`, '/agents',
    `/sandbox/scripts/${sc.body.id}`, `/sandbox/scripts/${sc.body.id}/runs`, `/sandbox/runs/${sr.body.id}`,
    '/agent/events/history?limit=500', '/audit/logs?limit=500', '/metrics']) {
    const r = await api('GET', p);
    assert.ok(r.status < 400, `${p}: ${r.status} ${r.text.slice(0, 200)}`);
  }
  // every log entry, once the lines printed above are in
  await until('the printed lines in the log service', async () => {
    const r = await aos.api('GET', '/api/logs?q=sees&limit=100');
    return r.body.items?.length >= 2;
  });
  await until("the stdio server's line in the log service", async () => {
    const r = await aos.api('GET', `/api/logs?q=${encodeURIComponent('"starting with key"')}&limit=10`);
    return r.body.items?.length >= 1;
  });
  let cursor, pages = 0;
  do {
    const r = await api('GET', `/api/logs?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200, r.text);
    cursor = r.body.next_cursor;
  } while (cursor && ++pages < 200);
  const logs = seen.filter(([w]) => w.startsWith('GET /api/logs?limit=500')).map(([, t]) => t).join('\n');
  assert.match(logs, /starting with key \[REDACTED\]/, 'the stdio server\'s line was searched');
  assert.match(logs, /script sees \[REDACTED\]/, "the script's line was searched");

  const { code } = await aos.stop();
  assert.equal(code, 0);
  seen.push(["aosd's stderr", aos.logs()], ["aosd's stdout", aos.stdout()]);
  for (const f of ['aos.db', 'aos.db-wal'].map((n) => join(aos.dataDir, n)).filter((p) => existsSync(p)))
    seen.push([f, readFileSync(f, 'latin1')]);
  const found = [];
  for (const [what, text] of seen)
    for (const [name, value] of Object.entries(SECRETS))
      if (String(text).includes(value)) found.push(`${name} is in ${what}`);
  assert.deepEqual(found, []);
});
