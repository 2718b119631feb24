// inspector.test.mjs - a second, independent client: the official MCP
// Inspector CLI (through tests/tools/inspector-call.sh) against
// aosd fronting server-everything over stdio.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startAosd, backendEntry, waitReady, TOOLS, TOKEN } from './lib.mjs';

const run = promisify(execFile);
let aos;
before(async () => {
  aos = await startAosd();
  assert.equal((await aos.api('POST', '/mcp/registry', backendEntry('everything'))).status, 201);
  await waitReady(aos, 'everything');
});
after(async () => { await aos?.cleanup(); });

const inspector = (url, ...args) =>
  run(join(TOOLS, 'inspector-call.sh'), [url, ...args, '--header', `Authorization: Bearer ${TOKEN}`], { timeout: 120000 });

test('Inspector CLI: tools/call through the per-server endpoint', async () => {
  const { stdout } = await inspector(`${aos.url}/mcp/servers/everything`, 'echo', 'message=from-inspector');
  assert.match(stdout, /Echo: from-inspector/);
});

test('Inspector CLI: tools/list and a namespaced call on the aggregated endpoint', async () => {
  const list = await inspector(`${aos.url}/mcp`, '--method', 'tools/list');
  assert.match(list.stdout, /everything__get-sum/);
  const { stdout } = await inspector(`${aos.url}/mcp`, 'everything__get-sum', 'a=19', 'b=23');
  assert.match(stdout, /42/);
});
