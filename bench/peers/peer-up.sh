#!/usr/bin/env bash
# peer-up.sh PORT [KIND] [BACKEND]
#
# Starts a reference MCP peer on 127.0.0.1:PORT, endpoint /mcp (Streamable
# HTTP), waits until it answers, and prints its PID as the LAST line (the
# process that owns the listening socket; its stdio children are descendants).
# Stop it with:  peer-down.sh PORT   (or peer-down.sh PID, or --all)
#
# KIND:
#   supergateway (default)  npm supergateway --stateful: stdio -> Streamable
#                           HTTP, one BACKEND child process per MCP session
#   mcp-proxy               npm mcp-proxy --server stream: one BACKEND child,
#                           shared by all sessions
#   direct                  BACKEND's own Streamable HTTP transport
#   everything | fixture    short for: direct everything | direct fixture
# BACKEND (tests/tools/mcp-server.sh):
#   everything (default)    npm @modelcontextprotocol/server-everything
#   fixture                 the conformance suite's reference server
# The peers' versions are pinned in package-lock.json beside this script
# (scripts/install-deps --bench installs them), the backends' in
# tests/tools/package-lock.json.
#
# Env: PEER_TTL (seconds before the peer is killed regardless, default 3600),
#      PEER_SESSION_TIMEOUT (supergateway idle-session ms, default 120000),
#      PEER_LOG_LEVEL (supergateway: none|info|debug, default none),
#      MCP_PEER_STATE (state/log dir, default ${TMPDIR:-/tmp}/mcp-peers).
set -u
PEERS_DIR=$(cd "$(dirname "$0")" && pwd)
. "$PEERS_DIR/../../tests/tools/lib.sh"

if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  tools_usage 27; exit 2
fi
PORT=$1; KIND=${2:-supergateway}; BACKEND=${3:-everything}
case "$KIND" in everything|fixture) BACKEND=$KIND; KIND=direct;; esac
case "$BACKEND" in everything|fixture) ;; *) tools_log "unknown BACKEND '$BACKEND'"; exit 2;; esac
case "$PORT" in ''|*[!0-9]*) tools_log "bad port '$PORT'"; exit 2;; esac
STATE=${MCP_PEER_STATE:-${TMPDIR:-/tmp}/mcp-peers}; mkdir -p "$STATE"
TTL=${PEER_TTL:-3600}

if [ -f "$STATE/peer-$PORT.pid" ] && kill -0 "$(head -1 "$STATE/peer-$PORT.pid")" 2>/dev/null; then
  tools_log "a peer already runs on port $PORT (pid $(head -1 "$STATE/peer-$PORT.pid"))"; exit 1
fi
if curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/" 2>/dev/null; then
  tools_log "port $PORT is already in use"; exit 1
fi

NM="$PEERS_DIR/node_modules"
case "$KIND" in
  supergateway | mcp-proxy)
    if [ ! -f "$NM/$KIND/package.json" ]; then
      tools_log "$KIND is not installed in $NM: run scripts/install-deps --bench"; exit 1
    fi ;;
esac
case "$BACKEND" in
  everything) tools_need @modelcontextprotocol/server-everything ;;
  fixture) tools_need tsx ;;
esac
BK="$TOOLS_DIR/mcp-server.sh"
PRELOAD="$TOOLS_DIR/loopback-listen.cjs"
LOG="$STATE/peer-$PORT.log"

case "$KIND" in
  supergateway)
    NODE_OPTIONS="--require \"$PRELOAD\"" timeout "$TTL" node "$NM/supergateway/dist/index.js" \
      --stdio "\"$BK\" $BACKEND" --outputTransport streamableHttp --stateful \
      --sessionTimeout "${PEER_SESSION_TIMEOUT:-120000}" --port "$PORT" \
      --logLevel "${PEER_LOG_LEVEL:-none}" >"$LOG" 2>&1 </dev/null &
    ;;
  mcp-proxy)
    timeout "$TTL" node "$NM/mcp-proxy/dist/bin/mcp-proxy.mjs" --host 127.0.0.1 --port "$PORT" \
      --server stream -- "$BK" "$BACKEND" >"$LOG" 2>&1 </dev/null &
    ;;
  direct)
    PORT=$PORT timeout "$TTL" "$BK" "$BACKEND" http >"$LOG" 2>&1 </dev/null &
    ;;
  *) tools_log "unknown KIND '$KIND'"; exit 2;;
esac
TPID=$!
sleep 0.2
NPID=$(ps -o pid= --ppid "$TPID" | head -1 | tr -d ' ')
[ -n "$NPID" ] || NPID=$TPID
echo "$NPID $TPID $KIND+$BACKEND" > "$STATE/peer-$PORT.pid"
if ! tools_wait_http "http://127.0.0.1:$PORT/mcp" 60; then
  tools_log "peer did not come up; log:"; tail -20 "$LOG" >&2
  "$PEERS_DIR/peer-down.sh" "$PORT" >/dev/null 2>&1; exit 1
fi
tools_log "$KIND+$BACKEND peer up: http://127.0.0.1:$PORT/mcp pid $NPID (killed after ${TTL}s; log $LOG)"
echo "$NPID"
