#!/usr/bin/env bash
# peer-down.sh PORT|PID|--all
#
# Stops a peer started by peer-up.sh: SIGTERM to the peer process and each of
# its descendants (by PID), SIGKILL after 5 s for any still alive, then its
# `timeout` wrapper. --all stops every peer recorded in the state dir.
# Env: MCP_PEER_STATE (default ${TMPDIR:-/tmp}/mcp-peers).
set -u
STATE=${MCP_PEER_STATE:-${TMPDIR:-/tmp}/mcp-peers}
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi

tree() { local p c; for p in "$@"; do echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done; done; }

stop_one() { # stop_one STATEFILE
  local f=$1 npid tpid kind pids p
  read -r npid tpid kind < "$f" || return 0
  pids=$(tree "$npid")
  for p in $pids; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 1 20); do
    alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.25
  done
  for p in $pids; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  [ -n "${tpid:-}" ] && [ "$tpid" != "$npid" ] && kill -TERM "$tpid" 2>/dev/null
  rm -f "$f"
  echo "[peer-down] stopped ${kind:-peer} pid $npid ($(echo $pids | wc -w) processes)" >&2
}

if [ "$1" = "--all" ]; then
  for f in "$STATE"/peer-*.pid; do [ -f "$f" ] && stop_one "$f"; done; exit 0
fi
if [ -f "$STATE/peer-$1.pid" ]; then stop_one "$STATE/peer-$1.pid"; exit 0; fi
for f in "$STATE"/peer-*.pid; do
  [ -f "$f" ] || continue
  read -r npid tpid _ < "$f"
  if [ "$npid" = "$1" ] || [ "$tpid" = "$1" ]; then stop_one "$f"; exit 0; fi
done
echo "[peer-down] no peer recorded for '$1' in $STATE" >&2; exit 1
