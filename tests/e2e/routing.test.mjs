// routing.test.mjs - what an upstream sends on its own (sampling,
// elicitation and roots requests, log lines, cancels) reaches only the
// client session whose call caused it, in the default session mode, over
// stdio and Streamable HTTP upstreams, on /mcp and on /mcp/servers/<name>.
// Clients are the official TypeScript SDK's; several call at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import net from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
  LoggingMessageNotificationSchema, CancelledNotificationSchema, ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { startAosd, backendEntry, waitReady, sleep, TOOLS, TOKEN, ROOT } from './lib.mjs';

const FAULTY = join(ROOT, 'tests/e2e/fixtures/faulty-server.mjs');

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

let aos, remote, port;
before(async () => {
  port = await freePort();
  remote = spawn(join(TOOLS, 'mcp-server.sh'), ['everything', 'http'], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'ignore'], detached: true,
  });
  for (let i = 0; i < 300; i++) {
    try { await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'GET' }); break; } catch { await sleep(100); }
  }
  aos = await startAosd();
  // default registry settings: no session_mode given
  for (const e of [backendEntry('ev'),
    { name: 'web', transport: 'streamable-http', url: `http://127.0.0.1:${port}/mcp` },
    { name: 'fx', command: process.execPath, args: [FAULTY] }]) {
    const r = await aos.api('POST', '/mcp/registry', e);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.session_mode, 'shared');
  }
  await Promise.all(['ev', 'web', 'fx'].map((n) => waitReady(aos, n)));
});
after(async () => {
  await aos?.cleanup();
  if (remote) try { process.kill(-remote.pid, 'SIGTERM'); } catch {}
});

// A client that records what it is asked. caps: the capabilities it declares.
async function connect(path, who, { caps = { sampling: {}, elicitation: {}, roots: {} }, rootsDelayMs = 0 } = {}) {
  const client = new Client({ name: who, version: '1.0.0' }, { capabilities: caps });
  const asked = { sampling: [], elicitation: [], roots: 0, logs: [], cancelled: [] };
  if (caps.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      asked.sampling.push(req.params.messages.map((m) => m.content.text).join(' '));
      await sleep(100); // both requests are out at once
      return { model: 'm', role: 'assistant', content: { type: 'text', text: `answer-of-${who}` } };
    });
  }
  if (caps.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.elicitation.push(req.params.message);
      await sleep(100);
      return { action: 'accept', content: { name: `name-of-${who}` } };
    });
  }
  if (caps.roots) {
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked.roots++;
      await sleep(rootsDelayMs);
      return { roots: [{ uri: `file:///root-of-${who}`, name: who }] };
    });
  }
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => asked.logs.push(String(n.params.data)));
  client.setNotificationHandler(CancelledNotificationSchema, (n) => asked.cancelled.push(n.params.requestId));
  await client.connect(new StreamableHTTPClientTransport(new URL(aos.url + path), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }));
  return { client, asked, who };
}

const text = (r) => JSON.stringify(r);

// Two clients, one on `pathA` and one on `pathB`, call tool `name*` of a
// server at the same moment, three rounds: each is asked only its own
// sampling request and gets only its own answer back; then the same with
// elicitation.
async function twoClients(pathA, toolA, pathB, toolB) {
  const a = await connect(pathA, 'A');
  const b = await connect(pathB, 'B');
  try {
    for (let round = 0; round < 3; round++) {
      const [ra, rb] = await Promise.all([
        a.client.callTool({ name: `${toolA}trigger-sampling-request`, arguments: { prompt: `secret-of-A-${round}`, maxTokens: 5 } }),
        b.client.callTool({ name: `${toolB}trigger-sampling-request`, arguments: { prompt: `secret-of-B-${round}`, maxTokens: 5 } }),
      ]);
      assert.match(text(ra), /answer-of-A/);
      assert.doesNotMatch(text(ra), /answer-of-B/);
      assert.match(text(rb), /answer-of-B/);
      assert.doesNotMatch(text(rb), /answer-of-A/);
    }
    assert.equal(a.asked.sampling.length, 3, text(a.asked));
    assert.equal(b.asked.sampling.length, 3, text(b.asked));
    assert.ok(a.asked.sampling.every((p) => /secret-of-A/.test(p) && !/secret-of-B/.test(p)), text(a.asked));
    assert.ok(b.asked.sampling.every((p) => /secret-of-B/.test(p) && !/secret-of-A/.test(p)), text(b.asked));

    const [ea, eb] = await Promise.all([
      a.client.callTool({ name: `${toolA}trigger-elicitation-request`, arguments: {} }),
      b.client.callTool({ name: `${toolB}trigger-elicitation-request`, arguments: {} }),
    ]);
    assert.match(text(ea), /name-of-A/);
    assert.doesNotMatch(text(ea), /name-of-B/);
    assert.match(text(eb), /name-of-B/);
    assert.doesNotMatch(text(eb), /name-of-A/);
    assert.equal(a.asked.elicitation.length, 1);
    assert.equal(b.asked.elicitation.length, 1);
  } finally { await a.client.close(); await b.client.close(); }
}

test('stdio upstream, default mode: concurrent sampling and elicitation on /mcp reach their own client', async () => {
  await twoClients('/mcp', 'ev__', '/mcp', 'ev__');
});

test('stdio upstream, default mode: the same on /mcp/servers/<name>, and across both endpoints', async () => {
  await twoClients('/mcp/servers/ev', '', '/mcp/servers/ev', '');
  await twoClients('/mcp', 'ev__', '/mcp/servers/ev', '');
});

test('Streamable HTTP upstream, default mode: concurrent sampling and elicitation reach their own client', async () => {
  await twoClients('/mcp', 'web__', '/mcp', 'web__');
  await twoClients('/mcp/servers/web', '', '/mcp', 'web__');
});

test('a client that declared nothing is never asked, and never gets what others are asked', async () => {
  const a = await connect('/mcp', 'A');
  const n = await connect('/mcp', 'N', { caps: {} });
  try {
    const [ra, rn] = await Promise.all([
      a.client.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'secret-of-A', maxTokens: 5 } }),
      n.client.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'secret-of-N', maxTokens: 5 } }),
    ]);
    assert.match(text(ra), /answer-of-A/);
    // the shared upstream's request is refused by aosd: the tool fails
    assert.equal(rn.isError, true, text(rn));
    assert.doesNotMatch(text(rn), /answer-of-A|secret-of-A/);
    assert.deepEqual(a.asked.sampling.length, 1);
    assert.doesNotMatch(text(a.asked), /secret-of-N/);
    const logs = await aos.api('GET', '/api/logs?q=refused&limit=50');
    assert.match(text(logs.body), /sampling\/createMessage.*shared session/);
  } finally { await a.client.close(); await n.client.close(); }
});

test('log lines: a client hears its own upstream only; the shared upstream\'s stay in aosd\'s log', async () => {
  // A sets a log level: its upstreams become its own. N declares nothing and
  // sets no level: it shares the server's upstream, whose log lines belong
  // to no client in particular.
  const a = await connect('/mcp/servers/fx', 'A', { caps: {} });
  const n = await connect('/mcp/servers/fx', 'N', { caps: {} });
  try {
    await a.client.setLoggingLevel('info');
    const [ra, rn] = await Promise.all([
      a.client.callTool({ name: 'flood', arguments: { n: 3 } }),
      n.client.callTool({ name: 'flood', arguments: { n: 4 } }),
    ]);
    assert.equal(ra.content[0].text, 'flooded 3');
    assert.equal(rn.content[0].text, 'flooded 4');
    await sleep(200);
    assert.deepEqual(a.asked.logs, ['flood 0', 'flood 1', 'flood 2']);
    assert.deepEqual(n.asked.logs, []);
    const pa = (await a.client.callTool({ name: 'pid', arguments: {} })).content[0].text;
    const pn = (await n.client.callTool({ name: 'pid', arguments: {} })).content[0].text;
    assert.notEqual(pa, pn, 'A has an upstream of its own');
    let found;
    for (let i = 0; i < 50 && !found; i++) {
      const r = await aos.api('GET', '/api/logs?q=%22flood%203%22&limit=10');
      found = (r.body.entries || r.body.items || []).length > 0 || /flood 3/.test(text(r.body));
      if (!found) await sleep(100);
    }
    assert.ok(found, 'the shared upstream\'s log line is in aosd\'s log');
  } finally { await a.client.close(); await n.client.close(); }
});

test('roots: each client is asked by its own upstream, at once, and its answer goes back there', async () => {
  const a = await connect('/mcp', 'A', { rootsDelayMs: 200 });
  const b = await connect('/mcp/servers/fx', 'B', { rootsDelayMs: 200 });
  try {
    const [ra, rb] = await Promise.all([
      a.client.callTool({ name: 'fx__ask-roots', arguments: {} }),
      b.client.callTool({ name: 'ask-roots', arguments: {} }),
    ]);
    assert.match(ra.content[0].text, /root-of-A/);
    assert.doesNotMatch(ra.content[0].text, /root-of-B/);
    assert.match(rb.content[0].text, /root-of-B/);
    assert.doesNotMatch(rb.content[0].text, /root-of-A/);
  } finally { await a.client.close(); await b.client.close(); }
});

test('notifications/cancelled from an upstream withdraws only its own session\'s request', async () => {
  // Every client's upstream (a child of its own) numbers its requests alike:
  // the children of A1..A3 withdraw their first request (id 0) while the
  // first requests (id 0 too) of B1..B3's children wait for slow answers.
  // Only the As hear a cancel; each B's answer still reaches its child.
  const as = [], bs = [];
  for (let i = 1; i <= 3; i++) {
    as.push(await connect('/mcp/servers/fx', `A${i}`, { rootsDelayMs: 3000 }));
    bs.push(await connect('/mcp/servers/fx', `B${i}`, { rootsDelayMs: 1000 }));
  }
  try {
    const results = await Promise.all([
      ...as.map((a) => a.client.callTool({ name: 'ask-then-cancel', arguments: { ms: 400 } })),
      ...bs.map((b) => b.client.callTool({ name: 'ask-roots', arguments: { ms: 100 } })),
    ]);
    for (let i = 0; i < 3; i++) {
      assert.match(results[i].content[0].text, /^cancelled/, text(results[i]));
      assert.equal(as[i].asked.cancelled.length, 1, `${as[i].who}: ${text(as[i].asked)}`);
      assert.match(results[3 + i].content[0].text, new RegExp(`root-of-${bs[i].who}`), text(results[3 + i]));
      assert.deepEqual(bs[i].asked.cancelled, [], `${bs[i].who}: ${text(bs[i].asked)}`);
    }
  } finally {
    for (const c of [...as, ...bs]) await c.client.close();
  }
});

test('progress reaches a call only from the upstream the call went to', async () => {
  // B's upstream (a child of its own) sends progress for every token aosd
  // may have given A's call; none of it may reach A.
  const a = await connect('/mcp', 'A');
  const b = await connect('/mcp/servers/fx', 'B');
  try {
    const seen = [];
    const slow = a.client.callTool({ name: 'fx__slow', arguments: { ms: 1500 } }, undefined,
      { onprogress: (p) => seen.push(p) });
    await sleep(300);
    const r = await b.client.callTool({ name: 'spoof-progress', arguments: { from: 0, to: 3000 } });
    assert.equal(r.content[0].text, 'spoofed 3001');
    assert.equal((await slow).content[0].text, 'slow done');
    assert.deepEqual(seen, []);
  } finally { await a.client.close(); await b.client.close(); }
});

test('sessions sharing an upstream share its subscription: one leaving does not end the others\'', { timeout: 60000 }, async () => {
  const n1 = await connect('/mcp/servers/ev', 'N1', { caps: {} });
  const n2 = await connect('/mcp/servers/ev', 'N2', { caps: {} });
  const updates = { N1: 0, N2: 0 };
  n1.client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => { updates.N1++; });
  n2.client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => { updates.N2++; });
  try {
    const { resources } = await n1.client.listResources();
    const uri = resources[0].uri;
    await n1.client.subscribeResource({ uri });
    await n2.client.subscribeResource({ uri });
    await n1.client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    // the first updates go out at once; the next ones 5 s later
    for (let i = 0; i < 50 && !(updates.N1 && updates.N2); i++) await sleep(100);
    assert.ok(updates.N1 && updates.N2, JSON.stringify(updates));
    await n1.client.unsubscribeResource({ uri });
    const before = { ...updates };
    // server-everything sends an update of each subscribed URI every 5 s
    for (let i = 0; i < 200 && updates.N2 === before.N2; i++) await sleep(100);
    assert.ok(updates.N2 > before.N2, `N2 still hears ${uri}: ${JSON.stringify(updates)}`);
    assert.equal(updates.N1, before.N1, 'N1 left');
  } finally { await n1.client.close(); await n2.client.close(); }
});

test('logging/setLevel reaches the upstreams of the session that asked, and only those', async () => {
  const level = async (c, name) => (await c.client.callTool({ name, arguments: {} })).content[0].text;
  // an upstream of its own made after the level was set, on /mcp
  const a = await connect('/mcp', 'A', { caps: {} });
  // one that exists before the level is set (a client that can be asked)
  const b = await connect('/mcp', 'B');
  // the per-server endpoint forwards it as it is
  const c = await connect('/mcp/servers/fx', 'C', { caps: {} });
  const n = await connect('/mcp/servers/fx', 'N', { caps: {} });
  try {
    assert.equal(await level(b, 'fx__log-level'), 'none');
    await a.client.setLoggingLevel('warning');
    await b.client.setLoggingLevel('error');
    await c.client.setLoggingLevel('critical');
    assert.equal(await level(a, 'fx__log-level'), 'warning');
    assert.equal(await level(b, 'fx__log-level'), 'error');
    assert.equal(await level(c, 'log-level'), 'critical');
    // the shared upstream (N's) was told nothing
    assert.equal(await level(n, 'log-level'), 'none');
  } finally { for (const x of [a, b, c, n]) await x.client.close(); }
});
