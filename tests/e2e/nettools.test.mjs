// nettools.test.mjs - the built-in servers git and http against a real aosd:
// git on real repositories in a workspace (checked with the git binary),
// escapes out of the workspace refused, no hooks run; http SSRF attempts
// against servers this test starts on 127.0.0.1 only (loopback literals and
// names, private literals, redirects to hosts the caps do not allow), size
// and time limits, saving to a workspace file, idempotent POST (also across
// a restart), header values kept secret; the MCP SDK client on /mcp and a
// task of the orchestrator calling the same tools.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, symlinkSync, rmSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startAosd, sleep, TOKEN } from './lib.mjs';

let aos, dataDir;
const servers = [];
const scratch = mkdtempSync(join(tmpdir(), 'aos-nettools-'));

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'aos-e2e-nettools-'));
  aos = await startAosd({ dataDir });
});
after(async () => {
  for (const s of servers) s.close();
  if (aos) {
    const { code } = await aos.stop();
    const logs = aos.logs();
    await aos.cleanup();
    assert.equal(code, 0, logs.slice(-2000));
    assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
  }
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

let seq = 0;
const newWorkspace = () => {
  const d = join(scratch, `ws-${++seq}`);
  mkdirSync(d);
  return d;
};

// One tool call through /mcp/call; caps need the admin (owner) token.
async function call(server, tool, args, { caps, key, token = TOKEN } = {}) {
  const body = { server, tool, args };
  if (caps) body.caps = caps;
  const r = await aos.api('POST', '/mcp/call', body, token, key ? { 'Idempotency-Key': key } : {});
  assert.equal(r.status, 200, r.text);
  return r.body;
}
const errText = (res) => { assert.equal(res.isError, true, JSON.stringify(res)); return res.content[0].text; };
const ok = (res) => { assert.notEqual(res.isError, true, JSON.stringify(res)); return res.structuredContent; };
const gitBin = (dir, ...args) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' });

// A server on 127.0.0.1 that records what it is asked and answers with
// handler(req, res, body).
async function serve(handler) {
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      s.hits.push({ method: req.method, url: req.url, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  s.hits = [];
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  s.port = s.address().port;
  s.url = `http://127.0.0.1:${s.port}`;
  servers.push(s);
  return s;
}
const json = (res, status, obj, headers = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(obj));
};
const privateCaps = (hosts) => ({ http: { allow_hosts: hosts, allow_private: true } });

// ---- git ------------------------------------------------------------------

test('git: init, add, commit, log, diff, branch, checkout on a real repository', async () => {
  const ws = newWorkspace();
  const caps = { workspace: ws };
  let r = ok(await call('git', 'init', { path: 'repo' }, { caps }));
  assert.deepEqual(r, { path: 'repo', created: true, branch: 'main' });
  assert.equal(ok(await call('git', 'init', { path: 'repo' }, { caps })).created, false);
  const repo = join(ws, 'repo');
  writeFileSync(join(repo, 'a.txt'), 'hello\n');
  mkdirSync(join(repo, 'sub'));
  writeFileSync(join(repo, 'sub', 'b.txt'), 'bee\n');
  r = ok(await call('git', 'status', { path: 'repo' }, { caps }));
  assert.equal(r.untracked, 2);
  assert.deepEqual(r.files.map((f) => f.path).sort(), ['a.txt', 'sub/b.txt']);

  r = ok(await call('git', 'add', { path: 'repo', paths: ['.'] }, { caps }));
  assert.equal(r.staged, 2);
  const first = ok(await call('git', 'commit', { path: 'repo', message: 'first', author_name: 'Ada', author_email: 'ada@example.com' }, { caps, key: 'nettools-commit-1' }));
  assert.match(first.id, /^[0-9a-f]{40}$/);
  assert.equal(first.replayed, false);
  assert.equal(first.branch, 'main');
  // the same key again: no second commit
  const again = ok(await call('git', 'commit', { path: 'repo', message: 'first', author_name: 'Ada', author_email: 'ada@example.com' }, { caps, key: 'nettools-commit-1' }));
  assert.equal(again.id, first.id);
  assert.equal(again.replayed, true);
  assert.equal(gitBin(repo, 'rev-list', '--count', 'HEAD').trim(), '1');
  assert.equal(gitBin(repo, 'log', '-1', '--format=%an <%ae> %s').trim(), 'Ada <ada@example.com> first');
  assert.equal(gitBin(repo, 'status', '--porcelain'), '');
  // nothing staged: nothing to commit
  assert.match(errText(await call('git', 'commit', { path: 'repo', message: 'empty' }, { caps })), /nothing to commit/);

  // diff: work tree, then staged, limited to paths
  writeFileSync(join(repo, 'a.txt'), 'world\n');
  writeFileSync(join(repo, 'sub', 'b.txt'), 'bee\nbuzz\n');
  r = ok(await call('git', 'diff', { path: 'repo' }, { caps }));
  assert.equal(r.files, 2);
  assert.match(r.patch, /^-hello$/m);
  assert.match(r.patch, /^\+world$/m);
  assert.equal(r.insertions, 2);
  assert.equal(r.deletions, 1);
  r = ok(await call('git', 'diff', { path: 'repo', paths: ['sub'] }, { caps }));
  assert.equal(r.files, 1);
  assert.doesNotMatch(r.patch, /world/);
  assert.equal(ok(await call('git', 'diff', { path: 'repo', staged: true }, { caps })).files, 0);
  ok(await call('git', 'add', { path: 'repo', paths: ['a.txt'] }, { caps }));
  r = ok(await call('git', 'diff', { path: 'repo', staged: true }, { caps }));
  assert.equal(r.files, 1);
  assert.match(r.patch, /^\+world$/m);
  // git itself agrees on what is staged
  assert.equal(gitBin(repo, 'diff', '--cached', '--name-only').trim(), 'a.txt');
  const second = ok(await call('git', 'commit', { path: 'repo', message: 'second' }, { caps }));
  assert.deepEqual(second.parents, [first.id]);
  r = ok(await call('git', 'log', { path: 'repo' }, { caps }));
  assert.deepEqual(r.commits.map((c) => c.id), [second.id, first.id]);
  assert.equal(ok(await call('git', 'log', { path: 'repo', max_count: 1 }, { caps })).commits.length, 1);
  assert.equal(gitBin(repo, 'rev-parse', 'HEAD').trim(), second.id);
  r = ok(await call('git', 'diff', { path: 'repo', target: first.id, paths: ['a.txt'] }, { caps }));
  assert.match(r.patch, /^\+world$/m);

  // branches and checkout
  gitBin(repo, 'checkout', '--', 'sub/b.txt'); // drop the unstaged change
  r = ok(await call('git', 'branch', { path: 'repo', name: 'feature' }, { caps }));
  assert.equal(r.id, second.id);
  r = ok(await call('git', 'branch', { path: 'repo' }, { caps }));
  assert.deepEqual(r.branches.map((b) => `${b.name}:${b.current}`).sort(), ['feature:false', 'main:true']);
  r = ok(await call('git', 'checkout', { path: 'repo', ref: 'feature' }, { caps }));
  assert.equal(r.branch, 'feature');
  assert.equal(gitBin(repo, 'branch', '--show-current').trim(), 'feature');
  writeFileSync(join(repo, 'c.txt'), 'only on feature\n');
  ok(await call('git', 'add', { path: 'repo', paths: ['c.txt'] }, { caps }));
  const third = ok(await call('git', 'commit', { path: 'repo', message: 'feature work' }, { caps }));
  assert.equal(third.branch, 'feature');
  ok(await call('git', 'checkout', { path: 'repo', ref: 'main' }, { caps }));
  assert.equal(existsSync(join(repo, 'c.txt')), false, 'c.txt left with the feature branch');
  // local changes that a checkout would overwrite: refused, nothing lost
  writeFileSync(join(repo, 'a.txt'), 'precious local edit\n');
  ok(await call('git', 'checkout', { path: 'repo', ref: 'feature' }, { caps }));
  assert.equal(readFileSync(join(repo, 'a.txt'), 'utf8'), 'precious local edit\n');
  gitBin(repo, 'checkout', '-f', 'main');
  writeFileSync(join(repo, 'c.txt'), 'untracked here, tracked there\n');
  assert.match(errText(await call('git', 'checkout', { path: 'repo', ref: 'feature' }, { caps })), /overwrite|conflict/i);
  assert.equal(readFileSync(join(repo, 'c.txt'), 'utf8'), 'untracked here, tracked there\n');
  rmSync(join(repo, 'c.txt'));
  // detached at a commit, a new branch, deleting one
  r = ok(await call('git', 'checkout', { path: 'repo', ref: first.id }, { caps }));
  assert.equal(r.detached, true);
  assert.equal(gitBin(repo, 'rev-parse', 'HEAD').trim(), first.id);
  r = ok(await call('git', 'checkout', { path: 'repo', ref: 'fix', create: true }, { caps }));
  assert.equal(r.branch, 'fix');
  ok(await call('git', 'checkout', { path: 'repo', ref: 'main' }, { caps }));
  assert.match(errText(await call('git', 'branch', { path: 'repo', action: 'delete', name: 'main' }, { caps })), /current branch/);
  ok(await call('git', 'branch', { path: 'repo', action: 'delete', name: 'fix' }, { caps }));
  assert.doesNotMatch(gitBin(repo, 'branch'), /fix/);
  assert.match(errText(await call('git', 'branch', { path: 'repo', name: 'bad..name' }, { caps })), /valid branch name/);
  // the repository is sound by git's own check
  gitBin(repo, 'fsck', '--strict');
});

test('git: the workspace is a boundary', async () => {
  const ws = newWorkspace();
  const caps = { workspace: ws };
  const outside = join(scratch, `outside-${seq}`);
  mkdirSync(outside);
  gitBin(outside, 'init', '-q');
  writeFileSync(join(outside, 'secret.txt'), 'secret\n');
  ok(await call('git', 'init', {}, { caps }));
  writeFileSync(join(ws, 'x.txt'), 'x\n');

  const refused = async (tool, args, re) => assert.match(errText(await call('git', tool, args, { caps })), re, `${tool} ${JSON.stringify(args)}`);
  await refused('status', { path: '..' }, /leaves the workspace/);
  await refused('status', { path: `../${outside.split('/').pop()}` }, /leaves the workspace/);
  await refused('status', { path: outside }, /absolute/);
  await refused('init', { path: 'a/../../b' }, /leaves the workspace/);
  await refused('add', { paths: ['../secret.txt'] }, /leaves the workspace/);
  await refused('add', { paths: [join(outside, 'secret.txt')] }, /absolute/);
  await refused('diff', { paths: ['sub/../../x'] }, /leaves the workspace/);
  // a symbolic link to a directory outside
  symlinkSync(outside, join(ws, 'link'));
  await refused('status', { path: 'link' }, /symbolic link/);
  await refused('init', { path: 'link/new' }, /symbolic link/);
  assert.equal(existsSync(join(outside, 'new')), false);
  // a .git file pointing at a git directory outside
  mkdirSync(join(ws, 'gitfile'));
  writeFileSync(join(ws, 'gitfile', '.git'), `gitdir: ${join(outside, '.git')}\n`);
  await refused('status', { path: 'gitfile' }, /outside the workspace/);
  // a directory without a repository never finds the one above it
  const inner = newWorkspace();
  mkdirSync(join(inner, 'plain'));
  gitBin(inner, 'init', '-q');
  assert.match(errText(await call('git', 'status', {}, { caps: { workspace: join(inner, 'plain') } })), /not a git repository/);
  // unknown arguments and no workspace at all
  await refused('status', { nope: 1 }, /no argument 'nope'/);
  assert.match(errText(await call('git', 'status', {})), /needs a workspace/);
  // nothing changed outside
  assert.equal(gitBin(outside, 'status', '--porcelain').trim(), '?? secret.txt');
});

test('git: a checkout never writes through a symbolic link it made', async () => {
  const ws = newWorkspace();
  const outside = join(scratch, `sym-outside-${seq}`);
  mkdirSync(outside);
  const g = (...a) => execFileSync('git', ['-C', ws, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a], { encoding: 'utf8' }).trim();
  g('init', '-q', '-b', 'main');
  symlinkSync(outside, join(ws, 'l'));
  g('add', 'l');
  g('commit', '-qm', 'a link out');
  g('rm', '-q', 'l');
  mkdirSync(join(ws, 'l'));
  writeFileSync(join(ws, 'l', 'x.txt'), 'x\n');
  g('add', 'l');
  g('commit', '-qm', 'a directory where the link was');
  // a crafted tree holding both the link and a file below it
  const blob = execFileSync('git', ['-C', ws, 'hash-object', '-w', '--stdin'], { input: 'evil\n', encoding: 'utf8' }).trim();
  const sub = execFileSync('git', ['-C', ws, 'mktree'], { input: `100644 blob ${blob}\ty.txt\n`, encoding: 'utf8' }).trim();
  const link = execFileSync('git', ['-C', ws, 'hash-object', '-w', '--stdin'], { input: outside, encoding: 'utf8' }).trim();
  const top = execFileSync('git', ['-C', ws, 'mktree'], { input: `120000 blob ${link}\tl\n040000 tree ${sub}\tl\n`, encoding: 'utf8' }).trim();
  g('branch', 'evil', g('commit-tree', top, '-p', 'HEAD', '-m', 'evil'));
  g('checkout', '-q', 'main~1');
  const caps = { workspace: ws };
  ok(await call('git', 'checkout', { ref: 'main' }, { caps }));
  assert.equal(readFileSync(join(ws, 'l', 'x.txt'), 'utf8'), 'x\n');
  await call('git', 'checkout', { ref: 'evil' }, { caps }); // fails or not: nothing outside
  assert.deepEqual(readdirSync(outside), []);
});

test('git: hooks never run', async () => {
  const ws = newWorkspace();
  const caps = { workspace: ws };
  ok(await call('git', 'init', {}, { caps }));
  const marker = join(scratch, `hook-ran-${seq}`);
  for (const hook of ['pre-commit', 'commit-msg', 'post-commit', 'post-checkout', 'prepare-commit-msg']) {
    writeFileSync(join(ws, '.git', 'hooks', hook), `#!/bin/sh\necho ${hook} >> ${marker}\n`);
    chmodSync(join(ws, '.git', 'hooks', hook), 0o755);
  }
  writeFileSync(join(ws, 'f.txt'), 'f\n');
  ok(await call('git', 'add', { paths: ['f.txt'] }, { caps }));
  ok(await call('git', 'commit', { message: 'hooked?' }, { caps }));
  // a key a trailer line cannot hold: its hash is recorded instead
  writeFileSync(join(ws, 'k.txt'), 'k\n');
  ok(await call('git', 'add', { paths: ['k.txt'] }, { caps }));
  const spaced = ok(await call('git', 'commit', { message: 'spaced key' }, { caps, key: 'a key with spaces' }));
  assert.equal(spaced.replayed, false);
  assert.match(spaced.message, /Aos-Idempotency-Key: blake2b:[0-9a-f]{32}\n/);
  assert.equal(ok(await call('git', 'commit', { message: 'spaced key' }, { caps, key: 'a key with spaces' })).id, spaced.id);
  ok(await call('git', 'checkout', { ref: 'other', create: true }, { caps }));
  assert.equal(existsSync(marker), false, 'a hook ran');
  // the hooks are real: git itself runs them
  gitBin(ws, 'checkout', '-q', 'main');
  assert.equal(existsSync(marker), true);
});

// ---- http -----------------------------------------------------------------

test('http: loopback and private addresses are refused unless caps allow them', async () => {
  const s = await serve((req, res) => json(res, 200, { hello: 'world', path: req.url }));
  // no caps (a plain client): any public host, no private address
  assert.match(errText(await call('http', 'get', { url: `${s.url}/a` })), /127\.0\.0\.1 is a loopback address/);
  // a name that resolves to loopback: refused after resolution
  assert.match(errText(await call('http', 'get', { url: `http://localhost:${s.port}/b` })), /(127\.0\.0\.1|::1) is a loopback address/);
  // a name allowed by the caps is still refused at its address
  assert.match(errText(await call('http', 'get', { url: `http://localhost:${s.port}/c` }, { caps: { http: { allow_hosts: ['localhost'] } } })), /loopback address/);
  for (const [host, what] of [['10.1.2.3', 'private'], ['192.168.0.1', 'private'], ['172.16.5.4', 'private'],
    ['169.254.169.254', 'link-local'], ['100.64.0.1', /shared/], ['0.0.0.0', 'unspecified'],
    ['[::1]', 'loopback'], ['[::ffff:127.0.0.1]', 'IPv4-mapped'], ['[fd00::1]', 'private'],
    ['[fe80::1]', 'link-local'], ['224.0.0.1', 'multicast'], ['127.1', 'loopback'], ['2130706433', 'loopback']]) {
    assert.match(errText(await call('http', 'get', { url: `http://${host}:${s.port}/` })), new RegExp(what instanceof RegExp ? what.source : what), host);
  }
  assert.equal(s.hits.length, 0, 'nothing reached the server');
  // caps that allow the host and private addresses
  const res = ok(await call('http', 'get', { url: `${s.url}/d?x=1` }, { caps: privateCaps(['127.0.0.1']) }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { hello: 'world', path: '/d?x=1' });
  assert.equal(res.headers['content-type'], 'application/json');
  assert.equal(res.address, '127.0.0.1');
  assert.equal(s.hits.length, 1);
  // a host the caps do not list
  assert.match(errText(await call('http', 'get', { url: `http://localhost:${s.port}/e` }, { caps: privateCaps(['127.0.0.1', '.localhost']) })), /not one the caller's caps allow/);
  // caps without http, or without hosts
  assert.match(errText(await call('http', 'get', { url: `${s.url}/f` }, { caps: { workspace: scratch } })), /grant no http access/);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/f` }, { caps: { http: { allow_hosts: [] } } })), /allow no hosts/);
  // other schemes, credentials in the URL
  assert.match(errText(await call('http', 'get', { url: 'file:///etc/passwd' })), /only http and https/);
  assert.match(errText(await call('http', 'get', { url: 'gopher://127.0.0.1/' })), /only http and https/);
  assert.match(errText(await call('http', 'get', { url: `http://u:p@127.0.0.1:${s.port}/` }, { caps: privateCaps(['127.0.0.1']) })), /credentials/);
  assert.equal(s.hits.length, 1);
});

test('http: request headers from runtime secrets and project variables', async () => {
  const s = await serve((req, res) => json(res, 200, { ok: true }));
  const caps = privateCaps(['127.0.0.1']);
  const put = async (name, value) => assert.equal((await aos.api('PUT', `/config/runtime/${name}`, { value })).status < 300, true);
  await put('NT_KEY', 'nettools-key-value-1');
  await put('NT_OTHER', 'nettools-other-value');
  await put('NT_EOL', 'line\nbreak-value');
  // the value is sent; the answer does not carry it back
  let res = ok(await call('http', 'get', { url: `${s.url}/a`, headers: { 'X-Key': { secret: 'NT_KEY' }, 'X-Plain': 'p' } }, { caps }));
  assert.equal(res.status, 200);
  assert.equal(s.hits.at(-1).headers['x-key'], 'nettools-key-value-1');
  assert.equal(s.hits.at(-1).headers['x-plain'], 'p');
  // rotated: the next request opens the new value
  await put('NT_KEY', 'nettools-key-value-2');
  ok(await call('http', 'get', { url: `${s.url}/b`, headers: { 'X-Key': { secret: 'NT_KEY' } } }, { caps }));
  assert.equal(s.hits.at(-1).headers['x-key'], 'nettools-key-value-2');
  // a project variable, in the project caps name (a task's own project)
  assert.equal((await aos.api('PUT', '/projects/ntp/vars/API_KEY', { secret: 'NT_OTHER' })).status, 200);
  ok(await call('http', 'get', { url: `${s.url}/c`, headers: { 'X-Var': { var: 'API_KEY' } } }, { caps: { ...caps, project: 'ntp' } }));
  assert.equal(s.hits.at(-1).headers['x-var'], 'nettools-other-value');
  const sent = s.hits.length;
  // malformed references: argument errors
  for (const bad of [{ secret: '' }, { secret: 'a b' }, { secret: 'NT_KEY', var: 'X' }, { other: 'x' }, { secret: 1 }, {}, ['x'], 5]) {
    assert.match(errText(await call('http', 'get', { url: `${s.url}/d`, headers: { 'X-Key': bad } }, { caps })), /header value must be a string|header values must be strings/, JSON.stringify(bad));
  }
  // references that do not open: the table's errors, naming the header and the secret
  const err = async (headers, c, status, code, re, token, url = `${s.url}/e`) => {
    const r = await aos.api('POST', '/mcp/call', { server: 'http', tool: 'get', args: { url, headers }, ...(c ? { caps: c } : {}) }, token);
    assert.equal(r.status, status, r.text);
    assert.equal(r.body.error.code, code, r.text);
    assert.match(r.body.error.message, re);
    assert.doesNotMatch(r.text, /nettools-/);
  };
  await err({ 'X-Key': { secret: 'NT_NONE' } }, caps, 404, 'not_found', /header 'X-Key' \(runtime secret 'NT_NONE'\)/);
  await err({ 'X-Key': { var: 'API_KEY' } }, caps, 400, 'invalid_argument', /project variable 'API_KEY'.*no project/);
  await err({ 'X-Key': { var: 'NOPE' } }, { ...caps, project: 'ntp' }, 404, 'not_found', /project 'ntp' has no variable 'NOPE'/);
  await err({ 'X-Key': { secret: 'NT_EOL' } }, caps, 400, 'invalid_argument', /cannot be a header value/);
  // a project-scoped secret is not opened for another project
  assert.equal((await aos.api('PUT', '/config/runtime/NT_SCOPED', { value: 'nettools-scoped', scope: 'project:ntp' })).status < 300, true);
  ok(await call('http', 'get', { url: `${s.url}/f`, headers: { 'X-Key': { secret: 'NT_SCOPED' } } }, { caps: { ...caps, project: 'ntp' } }));
  assert.equal(s.hits.at(-1).headers['x-key'], 'nettools-scoped');
  await err({ 'X-Key': { secret: 'NT_SCOPED' } }, { ...caps, project: 'other' }, 404, 'not_found', /NT_SCOPED/);
  // a caller without operate on the secret: 403; with a grant on it, it opens
  // (a name that does not resolve: these tokens may not set caps, and the
  // secret is opened before the name is looked up)
  const mk = async (name, grants) => {
    const r = await aos.api('POST', '/auth/tokens', { name, role: 'none', grants });
    assert.equal(r.status, 201, r.text);
    return r.body.token;
  };
  const narrow = await mk('nt-narrow', [{ role: 'operator', resource: 'tool:http__*' }]);
  await err({ 'X-Key': { secret: 'NT_KEY' } }, null, 403, 'forbidden', /runtime secret 'NT_KEY'\): the caller may not use it/, narrow, 'http://nettools.invalid/');
  const granted = await mk('nt-granted', [{ role: 'operator', resource: 'tool:http__*' }, { role: 'operator', resource: 'secret:NT_KEY' }]);
  const r = await aos.api('POST', '/mcp/call', { server: 'http', tool: 'get', args: { url: 'http://nettools.invalid/', headers: { 'X-Key': { secret: 'NT_KEY' } } } }, granted);
  assert.equal(r.status, 200, r.text);
  assert.doesNotMatch(r.body.content[0].text, /secret|NT_KEY/);
  assert.equal(s.hits.length, sent + 1, 'only the good scoped call was sent');
  // a redirect to another origin does not take the secret along
  const other = await serve((req, res) => json(res, 200, { key: req.headers['x-key'] ?? null }));
  const hop = await serve((req, res) => { res.writeHead(302, { Location: `http://localhost:${other.port}/x` }); res.end(); });
  res = ok(await call('http', 'get', { url: `${hop.url}/`, headers: { 'X-Key': { secret: 'NT_KEY' } } }, { caps: privateCaps(['127.0.0.1', 'localhost']) }));
  assert.equal(hop.hits.at(-1).headers['x-key'], 'nettools-key-value-2');
  assert.deepEqual(res.json, { key: null });
});

test('http: every redirect is checked again', async () => {
  const target = await serve((req, res) => json(res, 200, { secret: 'internal', auth: req.headers.authorization ?? null }));
  const hop = await serve((req, res) => {
    const to = {
      '/to-localhost': `http://localhost:${target.port}/x`,
      '/to-target': `http://127.0.0.1:${target.port}/y`,
      '/to-v6': `http://[::1]:${target.port}/z`,
      '/to-file': 'file:///etc/passwd',
      '/same': '/final',
      '/loop': '/loop',
    }[req.url];
    if (to) { res.writeHead(req.url === '/same' ? 307 : 302, { Location: to }); res.end(); return; }
    json(res, 200, { at: req.url, method: req.method, body: req.headers['content-length'] ? 'yes' : 'no', auth: req.headers.authorization ?? null });
  });
  // the first hop is allowed (private, listed); the target host is not listed
  const caps = privateCaps(['127.0.0.1']);
  assert.match(errText(await call('http', 'get', { url: `${hop.url}/to-localhost` }, { caps })), /redirect.*'localhost' is not one the caller's caps allow/);
  assert.match(errText(await call('http', 'get', { url: `${hop.url}/to-v6` }, { caps })), /redirect.*not one the caller's caps allow/);
  assert.match(errText(await call('http', 'get', { url: `${hop.url}/to-file` }, { caps })), /redirect.*only http and https/);
  assert.equal(target.hits.length, 0);
  // listed, but the caps do not allow private addresses: refused at the address
  assert.match(errText(await call('http', 'get', { url: `${hop.url}/to-localhost` }, { caps: { http: { allow_hosts: ['127.0.0.1', 'localhost'] } } })), /loopback/);
  assert.equal(target.hits.length, 0);
  // allowed all the way: followed, and a secret header stays with its origin
  const secret = 'Bearer nettools-secret-value-123';
  let r = ok(await call('http', 'get', { url: `${hop.url}/to-target`, headers: { Authorization: secret, Accept: 'application/json' } }, { caps }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.redirects, [`http://127.0.0.1:${target.port}/y`]);
  assert.equal(r.json.auth, null, 'Authorization followed a redirect to another origin');
  assert.equal(target.hits.at(-1).headers.accept, 'application/json');
  // same origin: it goes along; 307 keeps the method and body
  r = ok(await call('http', 'post', { url: `${hop.url}/same`, body: 'data', headers: { Authorization: secret } }, { caps }));
  assert.deepEqual(r.json, { at: '/final', method: 'POST', body: 'yes', auth: secret });
  // a 302 after a POST becomes a GET
  const n = target.hits.length;
  r = ok(await call('http', 'post', { url: `${hop.url}/to-target`, json: { a: 1 } }, { caps }));
  assert.equal(target.hits.length, n + 1);
  assert.equal(target.hits.at(-1).method, 'GET');
  // a redirect loop ends at max_redirects; 0 returns the 3xx itself
  assert.match(errText(await call('http', 'get', { url: `${hop.url}/loop`, max_redirects: 3 }, { caps })), /more than max_redirects \(3\)/);
  r = ok(await call('http', 'get', { url: `${hop.url}/to-target`, max_redirects: 0 }, { caps }));
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, `http://127.0.0.1:${target.port}/y`);
  // the secret never reached aosd's log
  assert.doesNotMatch(aos.logs(), /nettools-secret-value/);
});

test('http: size and time limits', async () => {
  const big = 'x'.repeat(2 * 1024 * 1024);
  const s = await serve((req, res) => {
    if (req.url === '/big') { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end(big); return; }
    if (req.url === '/slow') { setTimeout(() => { res.writeHead(200); res.end('late'); }, 5000); return; }
    if (req.url === '/bin') { res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); res.end(Buffer.from([0, 255, 1, 2])); return; }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('no such thing');
  });
  const caps = privateCaps(['127.0.0.1']);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/big` }, { caps })), /larger than max_bytes \(1048576 bytes\)/);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/big`, max_bytes: 1000 }, { caps })), /larger than max_bytes \(1000 bytes\)/);
  const r = ok(await call('http', 'get', { url: `${s.url}/big`, max_bytes: 4 * 1024 * 1024 }, { caps }));
  assert.equal(r.bytes, big.length);
  assert.equal(r.body.length, big.length);
  const t0 = Date.now();
  assert.match(errText(await call('http', 'get', { url: `${s.url}/slow`, timeout_ms: 300 }, { caps })), /within timeout_ms \(300 ms\)/);
  assert.ok(Date.now() - t0 < 3000, `the timeout took ${Date.now() - t0} ms`);
  // binary bodies come back as base64; an HTTP error status is an answer, not a tool error
  assert.equal(ok(await call('http', 'get', { url: `${s.url}/bin` }, { caps })).body_base64, 'AP8BAg==');
  const nf = ok(await call('http', 'get', { url: `${s.url}/nope` }, { caps }));
  assert.equal(nf.status, 404);
  assert.equal(nf.body, 'no such thing');
  // bad arguments
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, max_bytes: -1 }, { caps })), /max_bytes/);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, body: 'x' }, { caps })), /unknown argument 'body'/);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, headers: { Host: 'evil' } }, { caps })), /may not set Host/);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, headers: { 'X-A': 'a\r\nX-B: b' } }, { caps })), /line break/);
});

test('http: save_to writes a workspace file, confined', async () => {
  const s = await serve((req, res) => { res.writeHead(200, { 'Content-Type': 'text/csv' }); res.end('a,b\n1,2\n'); });
  const ws = newWorkspace();
  const caps = { workspace: ws, ...privateCaps(['127.0.0.1']) };
  const r = ok(await call('http', 'get', { url: `${s.url}/data.csv`, save_to: 'downloads/data.csv' }, { caps }));
  assert.equal(r.saved_to, 'downloads/data.csv');
  assert.equal(r.bytes, 8);
  assert.equal(r.body, undefined);
  assert.equal(readFileSync(join(ws, 'downloads', 'data.csv'), 'utf8'), 'a,b\n1,2\n');
  // overwritten atomically on a second save
  ok(await call('http', 'get', { url: `${s.url}/data.csv`, save_to: 'downloads/data.csv' }, { caps }));
  const outside = join(scratch, `save-outside-${seq}`);
  mkdirSync(outside);
  symlinkSync(outside, join(ws, 'out'));
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, save_to: '../x.csv' }, { caps })), /leaves the workspace/);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, save_to: '/tmp/x.csv' }, { caps })), /absolute/);
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, save_to: 'out/x.csv' }, { caps })), /HTTP 200\) was received but not saved.*symbolic link/);
  assert.deepEqual(readdirSync(outside), []);
  // a symlink as the file itself is replaced, not followed
  symlinkSync(join(outside, 'victim.csv'), join(ws, 'victim.csv'));
  ok(await call('http', 'get', { url: `${s.url}/`, save_to: 'victim.csv' }, { caps }));
  assert.deepEqual(readdirSync(outside), []);
  assert.equal(readFileSync(join(ws, 'victim.csv'), 'utf8'), 'a,b\n1,2\n');
  assert.match(errText(await call('http', 'get', { url: `${s.url}/`, save_to: 'x.csv' }, { caps: privateCaps(['127.0.0.1']) })), /needs a workspace/);
});

test('http: an idempotent POST is sent once, even across a restart', async () => {
  let n = 0;
  const s = await serve((req, res, body) => json(res, 201, { n: ++n, got: body, key: req.headers['idempotency-key'] ?? null }));
  const caps = privateCaps(['127.0.0.1']);
  const args = { url: `${s.url}/orders`, json: { item: 'tea', qty: 2 } };
  const first = ok(await call('http', 'post', args, { caps, key: 'order-42' }));
  assert.equal(first.status, 201);
  assert.deepEqual(first.json, { n: 1, got: '{"item":"tea","qty":2}', key: 'order-42' });
  assert.equal(s.hits[0].headers['content-type'], 'application/json');
  const again = ok(await call('http', 'post', args, { caps, key: 'order-42' }));
  assert.equal(again.replayed, true);
  assert.deepEqual(again.json, first.json);
  assert.equal(s.hits.length, 1, 'the second call was sent');
  // the same key with other arguments: refused, nothing sent
  assert.match(errText(await call('http', 'post', { ...args, json: { item: 'coffee' } }, { caps, key: 'order-42' })), /other arguments/);
  // a key no header line can carry is still honoured (not sent on)
  const spaced = ok(await call('http', 'post', args, { caps, key: 'order with spaces' }));
  assert.equal(spaced.json.key, null);
  assert.equal(ok(await call('http', 'post', args, { caps, key: 'order with spaces' })).replayed, true);
  assert.equal(s.hits.length, 2);
  // another key, or no key: sent
  ok(await call('http', 'post', args, { caps, key: 'order-43' }));
  ok(await call('http', 'post', args, { caps }));
  assert.equal(s.hits.length, 4);
  // a request that never left does not burn its key
  assert.match(errText(await call('http', 'delete', { url: `http://localhost:${s.port}/x` }, { caps: { http: { allow_hosts: ['localhost'] } }, key: 'del-1' })), /loopback/);
  const del = ok(await call('http', 'delete', { url: `http://localhost:${s.port}/x` }, { caps: privateCaps(['localhost']), key: 'del-1' }));
  assert.equal(del.status, 201);
  assert.equal(s.hits.length, 5);
  // the record is durable: after a restart the key still answers
  const { code } = await aos.stop();
  assert.equal(code, 0, aos.logs().slice(-2000));
  assert.doesNotMatch(aos.logs(), /AddressSanitizer|LeakSanitizer|runtime error/);
  aos = await startAosd({ dataDir });
  const later = ok(await call('http', 'post', args, { caps, key: 'order-42' }));
  assert.equal(later.replayed, true);
  assert.deepEqual(later.json, first.json);
  assert.equal(s.hits.length, 5);
});

// ---- MCP and tasks ---------------------------------------------------------------

test('MCP clients see git__* and http__* with schemas and annotations', async () => {
  const client = new Client({ name: 'nettools', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(aos.url + '/mcp'), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  try {
    const { tools } = await client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const n of ['init', 'status', 'diff', 'log', 'add', 'commit', 'branch', 'checkout'].map((t) => `git__${t}`)
      .concat(['get', 'post', 'put', 'delete'].map((t) => `http__${t}`))) {
      assert.ok(byName[n], `${n} listed`);
      assert.equal(byName[n].inputSchema.type, 'object', n);
      assert.equal(byName[n].outputSchema.type, 'object', n);
      for (const h of ['readOnlyHint', 'destructiveHint', 'idempotentHint']) assert.equal(typeof byName[n].annotations[h], 'boolean', `${n} ${h}`);
    }
    assert.equal(byName.git__log.annotations.readOnlyHint, true);
    assert.equal(byName.git__commit.annotations.idempotentHint, false);
    assert.equal(byName.http__get.annotations.readOnlyHint, true);
    assert.equal(byName.http__post.annotations.idempotentHint, false);
    assert.equal(byName.http__delete.annotations.destructiveHint, true);
    // an MCP client has no caps: no workspace, no private address
    let r = await client.callTool({ name: 'git__status', arguments: {} });
    assert.equal(r.isError, true);
    assert.match(r.content[0].text, /needs a workspace/);
    const s = await serve((req, res) => json(res, 200, {}));
    r = await client.callTool({ name: 'http__get', arguments: { url: `${s.url}/` } });
    assert.equal(r.isError, true);
    assert.match(r.content[0].text, /loopback/);
    assert.equal(s.hits.length, 0);
  } finally {
    await client.close();
  }
});

test('only an admin sets caps on /mcp/call', async () => {
  const t = await aos.api('POST', '/auth/tokens', { name: `op-${process.pid}`, role: 'operator' });
  assert.equal(t.status, 201, t.text);
  const r = await aos.api('POST', '/mcp/call', { server: 'git', tool: 'status', args: {}, caps: { workspace: '/' } }, t.body.token);
  assert.equal(r.status, 403, r.text);
  // without caps the operator may call, and gets no workspace
  const r2 = await aos.api('POST', '/mcp/call', { server: 'git', tool: 'status', args: {} }, t.body.token);
  assert.equal(r2.status, 200, r2.text);
  assert.match(errText(r2.body), /needs a workspace/);
});

test('a task uses git in its own workspace', async () => {
  const run = await aos.api('POST', '/api/run', {
    files: [{ name: 'notes.txt', content: 'from a task\n' }],
    constraints: { approval: 'never' },
    plan: { steps: [
      { id: 'init', tool: 'git__init', args: {} },
      { id: 'add', tool: 'git__add', args: { paths: ['.'] } },
      { id: 'commit', tool: 'git__commit', args: { message: 'task commit' } },
      { id: 'log', tool: 'git__log', args: {} },
    ] },
  });
  assert.equal(run.status, 201, run.text);
  const trace = run.body.trace_id;
  let ep;
  for (let i = 0; i < 200; i++) {
    ep = (await aos.api('GET', `/api/episodes/${trace}`)).body;
    if (ep.status === 'done' || ep.status === 'failed') break;
    await sleep(100);
  }
  assert.equal(ep.status, 'done', JSON.stringify(ep.steps));
  const ws = join(dataDir, 'workspaces', trace);
  assert.equal(gitBin(ws, 'log', '--format=%s').trim(), 'task commit');
  // the step's idempotency key is in the commit: a re-run of the step finds it
  assert.match(gitBin(ws, 'log', '-1', '--format=%B'), new RegExp(`Aos-Idempotency-Key: ${trace}:commit:`));
});

// Runs a task to its end; its episode.
async function runTask(spec, token = TOKEN) {
  const run = await aos.api('POST', '/api/run', { ...spec, constraints: { approval: 'never', ...(spec.constraints || {}) } }, token);
  if (run.status !== 201) return run;
  let ep;
  for (let i = 0; i < 200; i++) {
    ep = (await aos.api('GET', `/api/episodes/${run.body.trace_id}`)).body;
    if (ep.status === 'done' || ep.status === 'failed') break;
    await sleep(100);
  }
  return ep;
}

test('a task reaches the hosts its constraints.http allow, and no others', async () => {
  const s = await serve((req, res) => json(res, 200, { from: 'task' }));
  const step = { id: 'get', tool: 'http__get', args: { url: `${s.url}/t` } };
  let ep = await runTask({ plan: { steps: [step] }, constraints: { http: { allow_hosts: ['127.0.0.1'], allow_private: true } } });
  assert.equal(ep.status, 'done', JSON.stringify(ep.steps));
  assert.equal(s.hits.length, 1);
  // without constraints.http a task has no http access; with it but not private, no loopback
  ep = await runTask({ plan: { steps: [step] } });
  assert.equal(ep.status, 'failed');
  assert.match(JSON.stringify(ep.steps), /grant no http access/);
  ep = await runTask({ plan: { steps: [step] }, constraints: { http: { allow_hosts: ['127.0.0.1'] } } });
  assert.equal(ep.status, 'failed');
  assert.match(JSON.stringify(ep.steps), /loopback address/);
  assert.equal(s.hits.length, 1);
  // only an admin lets a task reach private addresses; the shape is checked
  const t = await aos.api('POST', '/auth/tokens', { name: `op2-${process.pid}`, role: 'operator' });
  let r = await runTask({ plan: { steps: [step] }, constraints: { http: { allow_hosts: ['127.0.0.1'], allow_private: true } } }, t.body.token);
  assert.equal(r.status, 403, r.text);
  assert.match(r.text, /allow_private/);
  r = await aos.api('POST', '/api/chat/send', { dsl: 'step s1: http__get', constraints: { http: { allow_hosts: ['x'], allow_private: true } } }, t.body.token);
  assert.equal(r.status, 403, r.text);
  assert.match(r.text, /allow_private/);
  r = await runTask({ plan: { steps: [step] }, constraints: { http: { allow_hosts: '127.0.0.1' } } });
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /constraints\.http/);
  assert.equal(s.hits.length, 1);
});
