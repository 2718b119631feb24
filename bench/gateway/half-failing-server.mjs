// half-failing-server.mjs - a real MCP server over stdio (the official SDK,
// low-level Server class) with one tool, `half`, that fails every second
// call. It is the faulty neighbour of bench/gateway/neighbour.sh.
//
// Calls are numbered per process, in the order they arrive (n = 1, 2, ...):
//   n odd                      ok: {"content":[{"type":"text","text":"half: ok"}]}
//   n even, by HALF_FAIL_MODE:
//     mixed (default)  n % 8 == 2 or 6: the tool fails       -> result with isError: true
//                      n % 8 == 4:      the handler throws   -> JSON-RPC error -32603 (internal)
//                      n % 8 == 0:      no answer for HALF_DELAY_MS (past the gateway's
//                                       timeout_ms) unless cancelled first
//     error            n % 4 == 2: isError, n % 4 == 0: JSON-RPC -32603 (all fast)
//     timeout          n % 4 == 2: isError, n % 4 == 0: the delay
//     none             never fails (a control: the same server and load, healthy)
//   so in every mode but none, half of the calls fail, and half of those are failures
//   a gateway's breaker counts (internal errors, timeouts): 25 % of all calls.
// A delayed call that the client cancels (notifications/cancelled) stops at
// once and, per the SDK, sends no answer.
//
// Env: HALF_FAIL_MODE (mixed), HALF_DELAY_MS (2000), HALF_STATS_FILE (none):
// if set, a one-line JSON of counters is written there every 500 ms and at
// exit: calls, ok, tool_errors, rpc_errors, delayed, cancelled (delayed
// calls cancelled by the client), late (delayed calls that ran to the end
// and answered, i.e. were never cancelled).
// HALF_SDK (default: <repo>/tests/e2e/node_modules/@modelcontextprotocol/sdk)
// is where the SDK is loaded from (this file has no node_modules of its own).
import { writeFileSync, renameSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, resolve } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const sdk = process.env.HALF_SDK || resolve(here, '../../tests/e2e/node_modules/@modelcontextprotocol/sdk');
const load = (p) => import(pathToFileURL(resolve(sdk, 'dist/esm', p)).href);
const { Server } = await load('server/index.js');
const { StdioServerTransport } = await load('server/stdio.js');
const { CallToolRequestSchema, ListToolsRequestSchema, McpError, ErrorCode } = await load('types.js');

const MODE = process.env.HALF_FAIL_MODE || 'mixed';
if (!['mixed', 'error', 'timeout', 'none'].includes(MODE)) {
  process.stderr.write(`half-failing-server: HALF_FAIL_MODE must be mixed, error, timeout or none, not '${MODE}'\n`);
  process.exit(2);
}
const DELAY_MS = Number(process.env.HALF_DELAY_MS || 2000);
const STATS = process.env.HALF_STATS_FILE || '';

const st = { mode: MODE, calls: 0, ok: 0, tool_errors: 0, rpc_errors: 0, delayed: 0, cancelled: 0, late: 0 };
function writeStats() {
  if (!STATS) return;
  try {
    writeFileSync(`${STATS}.tmp`, JSON.stringify(st) + '\n');
    renameSync(`${STATS}.tmp`, STATS);
  } catch { /* the bench may have removed its directory already */ }
}
if (STATS) setInterval(writeStats, 500).unref();
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { writeStats(); process.exit(0); });
process.stdin.on('end', () => { writeStats(); process.exit(0); });

// what call n does: 'ok' | 'tool' | 'rpc' | 'delay'
function fate(n) {
  if (n % 2 === 1 || MODE === 'none') return 'ok';
  if (MODE === 'mixed') return n % 8 === 4 ? 'rpc' : n % 8 === 0 ? 'delay' : 'tool';
  if (n % 4 === 2) return 'tool';
  return MODE === 'error' ? 'rpc' : 'delay';
}

const server = new Server({ name: 'half-failing', version: '1.0.0' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [{
    name: 'half',
    description: 'Fails every second call (isError, JSON-RPC internal error, or no answer in time)',
    inputSchema: { type: 'object', properties: { message: { type: 'string' } } },
  }],
}));
server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
  if (req.params.name !== 'half') throw new McpError(ErrorCode.InvalidParams, `unknown tool ${req.params.name}`);
  const n = ++st.calls;
  switch (fate(n)) {
    case 'ok':
      st.ok++;
      return { content: [{ type: 'text', text: 'half: ok' }] };
    case 'tool':
      st.tool_errors++;
      return { content: [{ type: 'text', text: `half: call ${n} failed (tool error)` }], isError: true };
    case 'rpc':
      st.rpc_errors++;
      throw new McpError(ErrorCode.InternalError, `half: call ${n} failed (internal error)`);
    default: {
      st.delayed++;
      const cancelled = await new Promise((r) => {
        if (extra.signal.aborted) return r(true);
        const t = setTimeout(() => r(false), DELAY_MS);
        extra.signal.addEventListener('abort', () => { clearTimeout(t); r(true); }, { once: true });
      });
      if (cancelled) st.cancelled++;
      else st.late++;
      return { content: [{ type: 'text', text: `half: call ${n} answered after ${DELAY_MS} ms` }] };
    }
  }
});
await server.connect(new StdioServerTransport());
