// agents.test.mjs - agent definitions (issue 15, first slice): created
// from a template or from scratch, validated (unknown fields refused, bad
// input changes nothing), every config change a new version with its diff,
// env values sealed (names only in answers), clone, delete, audit.
// release (a version made live, an older one a rollback) and scale change
// the row of an agent that is not started; running agents (start/stop,
// replicas, logs, register-mcp, a release under calls) are
// agents-live.test.mjs's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAosd, assertErrorShape } from './lib.mjs';

let aos;
before(async () => { aos = await startAosd(); });
after(async () => {
  if (!aos) return;
  const { code } = await aos.stop();
  const logs = aos.logs();
  await aos.cleanup();
  assert.equal(code, 0, logs.slice(-3000));
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|runtime error/);
});

test('templates: at least three, the CSV analyst among them', async () => {
  const r = await aos.api('GET', '/agents/templates');
  assert.equal(r.status, 200, r.text);
  assert.ok(r.body.templates.length >= 3);
  const csv = r.body.templates.find((t) => t.name === 'csv-analyst');
  assert.ok(csv.config.tools.includes('csv__*') && csv.config.tools.includes('viz__*'));
});

test('create from a template, patch into versions with diffs, clone, delete', async () => {
  const c = await aos.api('POST', '/agents', { name: 'analyst', template: 'csv-analyst', replicas: 2, config: { env: { API_KEY: 'agent-secret-value-987' } } });
  assert.equal(c.status, 201, c.text);
  assert.match(c.body.id, /^[0-9a-f]{32}$/);
  assert.equal(c.body.type, 'local');
  assert.equal(c.body.replicas, 2);
  assert.equal(c.body.status, 'stopped');
  assert.equal(c.body.version, 1);
  assert.deepEqual(c.body.config.env_names, ['API_KEY']);
  assert.ok(c.body.config.tools.includes('csv__*'));
  assert.ok(!c.text.includes('agent-secret-value'), 'env values never leave aosd');

  assertErrorShape(assert, await aos.api('POST', '/agents', { name: 'analyst' }), 409, 'conflict');

  const p = await aos.api('PATCH', '/agents/analyst', { config: { prompt: 'new prompt', tools: ['csv__clean'] } });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.body.latest_version, 2);
  assert.equal(p.body.version, 1, 'a change is not live until released');
  assert.equal(p.body.config.prompt, 'new prompt');
  assert.deepEqual(p.body.config.env_names, ['API_KEY'], 'env kept');
  // the same config again is no new version
  const same = await aos.api('PATCH', `/agents/${c.body.id}`, { config: { prompt: 'new prompt' } });
  assert.equal(same.body.latest_version, 2);

  const v = await aos.api('GET', '/agents/analyst/versions');
  assert.equal(v.status, 200, v.text);
  assert.equal(v.body.versions.length, 2);
  const d = v.body.versions[1].diff;
  assert.deepEqual(Object.keys(d).sort(), ['prompt', 'tools']);
  assert.equal(d.prompt.to, 'new prompt');
  assert.deepEqual(d.tools.to, ['csv__clean']);
  assert.ok(!v.text.includes('v1:'), 'no sealed values either');

  const cl = await aos.api('POST', '/agents/analyst/clone', { name: 'analyst-2' });
  assert.equal(cl.status, 201, cl.text);
  assert.equal(cl.body.version, 1);
  assert.equal(cl.body.config.prompt, 'new prompt');
  assert.equal(cl.body.replicas, 2);

  const list = await aos.api('GET', '/agents');
  assert.deepEqual(list.body.agents.map((a) => a.name).sort(), ['analyst', 'analyst-2']);

  const audit = await aos.api('GET', '/audit/logs?limit=50');
  const actions = audit.body.items.filter((i) => (i.resource || '').startsWith('agent:analyst')).map((i) => i.action);
  for (const a of ['agent.create', 'agent.update', 'agent.clone']) assert.ok(actions.includes(a), `${a} in ${actions}`);
  assert.ok(!JSON.stringify(audit.body).includes('agent-secret-value'));

  assert.equal((await aos.api('DELETE', '/agents/analyst-2')).status, 200);
  assertErrorShape(assert, await aos.api('GET', '/agents/analyst-2'), 404, 'not_found');
});

test('bad input gets a clear error and changes nothing', async () => {
  const before = (await aos.api('GET', '/agents')).body.agents.length;
  const bad = [
    {},
    { name: 'bad__name' },
    { name: 'aos' },
    { name: 'x', type: 'docker' },
    { name: 'x', replicas: 0 },
    { name: 'x', unknown: 1 },
    { name: 'x', template: 'nope' },
    { name: 'x', config: { tools: ['no-separator'] } },
    { name: 'x', config: { tools: ['a*b__c'] } },
    { name: 'x', config: { concurrency: 0 } },
    { name: 'x', config: { bogus: 1 } },
    { name: 'x', type: 'remote' },
    { name: 'x', type: 'remote', config: { url: 'ftp://x' } },
    { name: 'x', config: { url: 'http://127.0.0.1:1/' } },
    { name: 'x', config: { env: { '1BAD': 'v' } } },
  ];
  for (const b of bad) assertErrorShape(assert, await aos.api('POST', '/agents', b), 400, 'invalid_argument');
  assert.equal((await aos.api('GET', '/agents')).body.agents.length, before);
  const r = await aos.api('POST', '/agents', { name: 'remote-1', type: 'remote', config: { url: 'http://127.0.0.1:9/mcp' } });
  assert.equal(r.status, 201, r.text);
  assertErrorShape(assert, await aos.api('PATCH', '/agents/remote-1', { replicas: 3 }), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('PATCH', '/agents/remote-1', { config: { url: 'nope' } }), 400, 'invalid_argument');
  assert.equal((await aos.api('GET', '/agents/remote-1')).body.latest_version, 1);
});

test('release makes a version live, an older one rolls back; scale sets replicas', async () => {
  const c = await aos.api('POST', '/agents', { name: 'rel', template: 'log-triage' });
  assert.equal(c.status, 201, c.text);
  await aos.api('PATCH', '/agents/rel', { config: { prompt: 'v2' } });
  await aos.api('PATCH', '/agents/rel', { config: { prompt: 'v3' } });
  let r = await aos.api('POST', '/agents/rel/release', {});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.version, 3, 'no version: the newest');
  r = await aos.api('POST', '/agents/rel/release', { version: 1 });
  assert.equal(r.body.version, 1);
  assert.equal(r.body.latest_version, 3);
  for (const bad of [{ version: 0 }, { version: 4 }, { version: '2' }, { other: 1 }])
    assertErrorShape(assert, await aos.api('POST', '/agents/rel/release', bad), 400, 'invalid_argument');
  assert.equal((await aos.api('GET', '/agents/rel')).body.version, 1, 'bad input changed nothing');
  r = await aos.api('POST', '/agents/rel/scale', { replicas: 3 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.replicas, 3);
  assert.equal(r.body.version, 1);
  for (const bad of [{}, { replicas: 0 }, { replicas: 17 }])
    assertErrorShape(assert, await aos.api('POST', '/agents/rel/scale', bad), 400, 'invalid_argument');
  assertErrorShape(assert, await aos.api('POST', '/agents/nope/scale', { replicas: 2 }), 404, 'not_found');
  const audit = await aos.api('GET', '/audit/logs?limit=50');
  const actions = audit.body.items.filter((i) => i.resource === 'agent:rel').map((i) => i.action);
  for (const a of ['agent.release', 'agent.rollback', 'agent.scale']) assert.ok(actions.includes(a), `${a} in ${actions}`);
});

