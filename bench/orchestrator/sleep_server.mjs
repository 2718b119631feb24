#!/usr/bin/env node
// sleep_server.mjs - a minimal MCP server over stdio (newline-delimited
// JSON-RPC, no SDK) for bench/orchestrator's resume test: its one tool,
// `sleep`, answers after args.ms milliseconds, so a task step that calls it
// stays in flight. With --log FILE each call appends one line to FILE (the
// bench counts them to know the calls have arrived). It exits when its
// stdin ends, so it goes away with an aosd killed by kill -9.
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const at = process.argv.indexOf('--log');
const LOG = at > 0 ? process.argv[at + 1] : null;

const send = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
const TOOLS = [{
  name: 'sleep',
  description: 'Answers after ms milliseconds',
  inputSchema: { type: 'object', properties: { ms: { type: 'number' } } },
}];

function handle(m) {
  if (m.id === undefined || m.id === null) return; // a notification
  switch (m.method) {
    case 'initialize':
      return send({ jsonrpc: '2.0', id: m.id, result: {
        protocolVersion: m.params?.protocolVersion ?? '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'bench-sleep', version: '1.0.0' },
      } });
    case 'ping':
      return send({ jsonrpc: '2.0', id: m.id, result: {} });
    case 'tools/list':
      return send({ jsonrpc: '2.0', id: m.id, result: { tools: TOOLS } });
    case 'tools/call': {
      if (m.params?.name !== 'sleep')
        return send({ jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'unknown tool' } });
      if (LOG) appendFileSync(LOG, `${m.params?._meta?.['aos/idempotency_key'] ?? '-'}\n`);
      const ms = Number(m.params?.arguments?.ms) || 0;
      setTimeout(() => send({ jsonrpc: '2.0', id: m.id,
        result: { content: [{ type: 'text', text: `slept ${ms} ms` }] } }), ms);
      return;
    }
    default:
      return send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'method not found' } });
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  for (const one of Array.isArray(m) ? m : [m]) handle(one);
});
rl.on('close', () => process.exit(0));
