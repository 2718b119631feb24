// roles.test.mjs - custom roles end to end (issue 16): POST/PATCH/DELETE
// /rbac/roles with their checks (unknown fields, built-in names, base
// roles, patterns, no role beyond its creator's rights), a token and a
// browser session granted a custom role calling exactly the tools and
// projects its grants allow, a grant narrowed by its resource, a change
// of the role reaching existing grants at once, a role in use refused
// deletion, the audit rows, and the roles and grants surviving a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startAosd, backendEntry, waitReady, TOKEN } from './lib.mjs';

let aos;
let admin; // an Admin token
const jobs = {}; // p1, p2: tasks waiting at an approval

async function mint(body, as = TOKEN) {
  const r = await aos.api('POST', '/auth/tokens', body, as);
  assert.equal(r.status, 201, r.text);
  return r.body;
}

// POST /mcp/call as token: 'allow' (past authorization) or 'deny' (403).
async function tool(token, name) {
  const [server, t] = name.split('__');
  const r = await aos.api('POST', '/mcp/call', { server, tool: t, args: {} }, token);
  assert.ok(r.status !== 401, r.text);
  return r.status === 403 ? 'deny' : 'allow';
}

async function episode(token, which, headers) {
  return (await aos.api('GET', `/api/episodes/${jobs[which].trace_id}`, undefined, token, headers)).status;
}

const gate = { steps: [{ id: 'g', approval: { message: 'wait', timeout_s: 600 } }] };

before(async () => {
  aos = await startAosd();
  const r = await aos.api('POST', '/mcp/registry', backendEntry('ev'));
  assert.equal(r.status, 201, r.text);
  await waitReady(aos, 'ev');
  admin = (await mint({ name: 'roles-admin', role: 'admin' })).token;
  for (const p of ['p1', 'p2']) {
    const j = await aos.api('POST', '/api/run', { plan: gate, project_id: p });
    assert.equal(j.status, 201, j.text);
    jobs[p] = j.body;
  }
});
after(async () => {
  if (!aos) return;
  for (const j of Object.values(jobs)) await aos.api('POST', `/api/jobs/${j.job_id}/cancel`);
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  rmSync(aos.dataDir, { recursive: true, force: true }); // kept by a restart
  assert.equal(code, 0, logs.slice(-2000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

const ANALYST = [
  { role: 'operator', resource: 'tool:files__*' },
  { role: 'operator', resource: 'tool:csv__*' },
  { role: 'viewer', resource: 'project:p1' },
];

test('creating a role: bad input gets a clear error and stores nothing', async () => {
  const before = (await aos.api('GET', '/rbac/roles')).body.roles.length;
  const bad = [
    [{ name: 'x', grants: ANALYST, color: 'red' }, 400, /unknown field 'color'/],
    [{ name: 'viewer', grants: ANALYST }, 400, /built-in role/],
    [{ name: 'Owner', grants: ANALYST }, 400, /a-z/],
    [{ name: '9lives', grants: ANALYST }, 400, /begin with a letter/],
    [{ name: 'x', grants: [{ role: 'superuser', resource: 'tool:*' }] }, 400, /grants\[0\]\.role must be one of/],
    [{ name: 'x', grants: [{ role: 'operator', resource: 'tool:a*b' }] }, 400, /'\*' is not allowed/],
    [{ name: 'x', grants: [{ role: 'operator', resource: 'user:x' }] }, 400, /must be 'system' or '<kind>:<name>'/],
    [{ name: 'x', grants: [{ role: 'operator' }] }, 400, /grants\[0\]\.resource must be a string/],
    [{ name: 'x', grants: [{ role: 'operator', resource: 'tool:*', why: 1 }] }, 400, /unknown field 'why' in grants\[0\]/],
    [{ name: 'x', grants: [] }, 400, /1 to 256/],
    [{ name: 'x' }, 400, /'grants' is required/],
    [{ name: 'x', grants: ANALYST, description: 7 }, 400, /'description'/],
    [[], 400, /JSON object/],
  ];
  for (const [body, status, msg] of bad) {
    const r = await aos.api('POST', '/rbac/roles', body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.body.error.message, msg, JSON.stringify(body));
  }
  assert.equal((await aos.api('GET', '/rbac/roles')).body.roles.length, before);
});

test('only Owner and Admin make roles, and no role holds more than its maker', async () => {
  const op = (await mint({ name: 'roles-op', role: 'operator' })).token;
  let r = await aos.api('POST', '/rbac/roles', { name: 'by-op', grants: [{ role: 'viewer', resource: 'project:p1' }] }, op);
  assert.equal(r.status, 403, r.text);
  // an Admin may not put Owner rights in a role
  r = await aos.api('POST', '/rbac/roles', { name: 'root-ish', grants: [{ role: 'owner', resource: 'agent:*' }] }, admin);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /do not hold 'owner' on 'agent:\*'/);
  // the Owner may; the Admin then may neither change it nor grant it whole
  r = await aos.api('POST', '/rbac/roles', { name: 'root-ish', description: 'agents', grants: [{ role: 'owner', resource: 'agent:*' }, { role: 'viewer', resource: 'system' }] });
  assert.equal(r.status, 201, r.text);
  r = await aos.api('PATCH', '/rbac/roles/root-ish', { description: 'mine now' }, admin);
  assert.equal(r.status, 403, r.text);
  r = await aos.api('DELETE', '/rbac/roles/root-ish', undefined, admin);
  assert.equal(r.status, 403, r.text);
  const t = await mint({ name: 'roles-target', role: 'none' });
  r = await aos.api('POST', '/rbac/grants', { principal: `token:${t.id}`, role: 'root-ish' }, admin);
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.error.message, /^role 'root-ish' gives 'owner' on 'agent:\*'/);
  // narrowed to a project, only its Viewer part is left: that the Admin holds
  r = await aos.api('POST', '/rbac/grants', { principal: `token:${t.id}`, role: 'root-ish', resource: 'project:p2' }, admin);
  assert.equal(r.status, 201, r.text);
  assert.equal(await episode(t.token, 'p2'), 200);
  assert.equal(await episode(t.token, 'p1'), 403);
  // its Viewer on system narrowed to one task
  r = await aos.api('POST', '/rbac/grants', { principal: `token:${t.id}`, role: 'root-ish', resource: 'task:x' }, admin);
  assert.equal(r.status, 201, r.text);
  // a narrowing that leaves nothing is refused
  r = await aos.api('POST', '/rbac/roles', { name: 'tools-only', grants: [{ role: 'operator', resource: 'tool:files__*' }] }, admin);
  assert.equal(r.status, 201, r.text);
  r = await aos.api('POST', '/rbac/grants', { principal: `token:${t.id}`, role: 'tools-only', resource: 'project:p1' }, admin);
  assert.equal(r.status, 400, r.text);
  assert.match(r.body.error.message, /^role 'tools-only' gives nothing on 'project:p1'/);
  // a role's grants name built-in roles only; names are unique
  r = await aos.api('POST', '/rbac/roles', { name: 'nested', grants: [{ role: 'tools-only', resource: 'tool:*' }] });
  assert.equal(r.status, 400, r.text);
  assert.match(r.body.error.message, /built-in roles only/);
  r = await aos.api('POST', '/rbac/roles', { name: 'tools-only', grants: [{ role: 'viewer', resource: 'tool:*' }] });
  assert.equal(r.status, 409, r.text);
  // GET /rbac/roles: every principal sees the names; only admins the grants
  const full = (await aos.api('GET', '/rbac/roles', undefined, admin)).body.roles.find((x) => x.name === 'root-ish');
  assert.deepEqual(full.grants, [{ role: 'owner', resource: 'agent:*' }, { role: 'viewer', resource: 'system' }]);
  assert.equal(full.holders, 2);
  assert.equal(full.builtin, false);
  const seen = (await aos.api('GET', '/rbac/roles', undefined, t.token)).body.roles;
  assert.deepEqual(seen.slice(0, 4).map((x) => x.name), ['viewer', 'operator', 'admin', 'owner']);
  const short = seen.find((x) => x.name === 'root-ish');
  assert.equal(short.description, 'agents');
  assert.equal(short.grants, undefined);
});

test('a token granted a custom role may do exactly what its grants allow', async () => {
  let r = await aos.api('POST', '/rbac/roles', { name: 'data-analyst', description: 'files, csv, p1', grants: ANALYST }, admin);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.name, 'data-analyst');
  const t = await mint({ name: 'analyst', role: 'none' });
  r = await aos.api('POST', '/rbac/grants', { principal: `token:${t.id}`, role: 'data-analyst' }, admin);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.resource, 'system');
  // a token created with the role among its grants, narrowed to files__read*
  const n = await mint({ name: 'reader', role: 'none', grants: [{ role: 'data-analyst', resource: 'tool:files__read*' }] }, admin);
  assert.equal(n.grants[0].role, 'data-analyst');

  const me = (await aos.api('GET', '/auth/me', undefined, t.token)).body;
  assert.equal(me.grants[0].role, 'data-analyst');
  assert.deepEqual(me.effective_grants, ANALYST);
  assert.deepEqual((await aos.api('GET', '/auth/me', undefined, n.token)).body.effective_grants, [{ role: 'operator', resource: 'tool:files__read*' }]);

  const want = {
    files__read: ['allow', 'allow'], files__write: ['allow', 'deny'], csv__clean: ['allow', 'deny'],
    ev__echo: ['deny', 'deny'], shell__run: ['deny', 'deny'], memory__search: ['deny', 'deny'],
  };
  for (const [name, [full, narrow]] of Object.entries(want)) {
    assert.equal(await tool(t.token, name), full, `analyst: ${name}`);
    assert.equal(await tool(n.token, name), narrow, `reader: ${name}`);
  }
  // Viewer on p1: its tasks only, and nothing system-wide
  assert.equal(await episode(t.token, 'p1'), 200);
  assert.equal(await episode(t.token, 'p2'), 403);
  assert.equal(await episode(n.token, 'p1'), 403);
  const list = await aos.api('GET', '/api/jobs?limit=500', undefined, t.token);
  assert.equal(list.status, 200, list.text);
  assert.ok(list.body.jobs.length > 0 && list.body.jobs.every((j) => j.project_id === 'p1'), list.text.slice(0, 300));
  assert.equal((await aos.api('GET', '/mcp/registry', undefined, t.token)).status, 403);
  r = await aos.api('POST', '/api/run', { plan: gate, project_id: 'p1' }, t.token);
  assert.equal(r.status, 403, r.text); // a Viewer of p1 runs nothing

  // the role changes: the existing grants follow at once
  r = await aos.api('PATCH', '/rbac/roles/data-analyst', { grants: [{ role: 'operator', resource: 'tool:files__*' }, { role: 'operator', resource: 'tool:ev__*' }, { role: 'viewer', resource: 'project:p2' }] }, admin);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.holders, 2);
  assert.equal(await tool(t.token, 'csv__clean'), 'deny');
  assert.equal(await tool(t.token, 'ev__echo'), 'allow');
  assert.equal(await episode(t.token, 'p1'), 403);
  assert.equal(await episode(t.token, 'p2'), 200);
  assert.equal(await tool(n.token, 'files__read'), 'allow');
  assert.equal(await tool(n.token, 'ev__echo'), 'deny');
  r = await aos.api('PATCH', '/rbac/roles/data-analyst', { description: 'renamed work' }, admin);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.grants.length, 3, 'a description alone keeps the grants');
  for (const [body, msg] of [[{}, /nothing to change/], [{ name: 'y' }, /unknown field 'name'/], [{ grants: [{ role: 'data-analyst', resource: 'tool:*' }] }, /built-in roles only/]]) {
    r = await aos.api('PATCH', '/rbac/roles/data-analyst', body, admin);
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error.message, msg);
  }
  assert.equal((await aos.api('PATCH', '/rbac/roles/nope', { description: 'x' })).status, 404);
  assert.equal((await aos.api('PATCH', '/rbac/roles/owner', { description: 'x' })).status, 400);
  assert.equal(await tool(t.token, 'ev__echo'), 'allow', 'a refused change changed nothing');
});

test('a browser session of a user granted a custom role gets its rights', async () => {
  const pw = 'analyst-password-1';
  const u = await aos.api('POST', '/auth/users', { name: 'ana', password: pw, role: 'none', grants: [{ role: 'data-analyst', resource: 'project:*' }] }, admin);
  assert.equal(u.status, 201, u.text);
  const login = await fetch(aos.url + '/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'ana', password: pw }) });
  assert.equal(login.status, 200, await login.text());
  const cookie = login.headers.get('set-cookie').match(/^(aos_session=[^;]+)/)[1];
  const me = await aos.api('GET', '/auth/me', undefined, null, { Cookie: cookie });
  assert.deepEqual(me.body.effective_grants, [{ role: 'viewer', resource: 'project:p2' }]);
  assert.equal(await episode(null, 'p2', { Cookie: cookie }), 200);
  assert.equal(await episode(null, 'p1', { Cookie: cookie }), 403);
  // the role changes under the open session
  const r = await aos.api('PATCH', '/rbac/roles/data-analyst', { grants: [{ role: 'viewer', resource: 'project:p1' }] }, admin);
  assert.equal(r.status, 200, r.text);
  assert.equal(await episode(null, 'p1', { Cookie: cookie }), 200);
  assert.equal(await episode(null, 'p2', { Cookie: cookie }), 403);
});

test('a role in use is not deleted; changes are audited; all of it survives a restart', async () => {
  let r = await aos.api('DELETE', '/rbac/roles/data-analyst', undefined, admin);
  assert.equal(r.status, 409, r.text);
  assert.match(r.body.error.message, /held by 3 grant\(s\): delete them first/);
  r = await aos.api('POST', '/rbac/roles', { name: 'scratch', grants: [{ role: 'viewer', resource: 'task:*' }] }, admin);
  assert.equal(r.status, 201, r.text);
  const t = await mint({ name: 'scratcher', role: 'none', grants: [{ role: 'scratch' }] }, admin);
  assert.equal((await aos.api('GET', '/rbac/roles', undefined, admin)).body.roles.find((x) => x.name === 'scratch').holders, 1);
  assert.equal((await aos.api('DELETE', '/rbac/roles/scratch', undefined, admin)).status, 409);
  assert.equal((await aos.api('DELETE', `/rbac/grants/${t.grants[0].id}`, undefined, admin)).status, 200);
  r = await aos.api('DELETE', '/rbac/roles/scratch', undefined, admin);
  assert.equal(r.status, 200, r.text);
  assert.equal((await aos.api('DELETE', '/rbac/roles/scratch', undefined, admin)).status, 404);
  assert.equal((await aos.api('DELETE', '/rbac/roles/viewer', undefined, admin)).status, 400);
  r = await aos.api('POST', '/rbac/grants', { principal: `token:${t.id}`, role: 'scratch' }, admin);
  assert.equal(r.status, 400, r.text);
  assert.match(r.body.error.message, /no role 'scratch'/);
  const audit = (await aos.api('GET', '/audit/logs?limit=500')).body.items;
  const of = (action) => audit.filter((x) => x.action === action).map((x) => x.resource);
  assert.ok(of('rbac.role.create').includes('rbac_roles/data-analyst'), JSON.stringify(audit.slice(0, 3)));
  assert.ok(of('rbac.role.update').includes('rbac_roles/data-analyst'));
  assert.ok(of('rbac.role.delete').includes('rbac_roles/scratch'));
  assert.equal((await aos.api('GET', '/audit/verify')).status, 200);

  // restart on the same data: the role, its grants and what they give are kept
  const analyst = (await aos.api('GET', '/auth/tokens')).body.tokens.find((x) => x.name === 'analyst');
  const keep = await mint({ name: 'after-restart', role: 'none', grants: [{ role: 'data-analyst' }] }, admin);
  const dataDir = aos.dataDir;
  const { code } = await aos.stop();
  assert.equal(code, 0);
  aos = await startAosd({ dataDir });
  const roles = (await aos.api('GET', '/rbac/roles')).body.roles;
  assert.deepEqual(roles.find((x) => x.name === 'data-analyst').grants, [{ role: 'viewer', resource: 'project:p1' }]);
  assert.ok(!roles.some((x) => x.name === 'scratch'));
  assert.equal(await episode(keep.token, 'p1'), 200);
  assert.equal(await episode(keep.token, 'p2'), 403);
  assert.equal(await tool(keep.token, 'files__read'), 'deny');
  assert.equal((await aos.api('GET', '/rbac/grants')).body.grants.filter((g) => g.principal === `token:${analyst.id}`)[0].role, 'data-analyst');
});
