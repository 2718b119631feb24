#!/usr/bin/env bash
# conformance.sh URL [conformance-server-options...]
#
# Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance,
# its SERVER scenarios, over Streamable HTTP) against URL, e.g.
# http://127.0.0.1:3000/mcp. Extra options go to `conformance server`:
#   --suite all            (active [default] | all | pending)
#   --scenario tools-list  (one scenario; the summary is then its checks)
#   --spec-version 2025-06-18
#   --expected-failures baseline.yml   (then the exit status is the tool's
#                           own: 0 unless an unlisted failure or a stale entry)
#
# Last line printed, always:  conformance: P passed, F failed
# (P and F count checks with status SUCCESS and FAILURE, as the tool's own
# "Total:" line does; WARNING and INFO checks are not counted.)
# Exit status: 0 if F == 0, 1 otherwise (also when the tool could not run).
#
# Env: CONFORMANCE_OUT (keep the results there; default a temporary dir,
#      removed at exit), CONFORMANCE_TIMEOUT (seconds for the whole run,
#      default 900). The CLI needs Node >= 22 (fs.globSync): when the system
#      node is older, node-linux-<arch> from node_modules runs it.
set -u
. "$(dirname "$0")/lib.sh"

if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  tools_usage 21
  exit 2
fi
URL=$1
shift

fail_line() {
  echo "conformance: 0 passed, 1 failed"
  exit 1
}

NODE=$(tools_node22) || fail_line
CLI=$TOOLS_NM/@modelcontextprotocol/conformance/dist/index.js
[ -f "$CLI" ] || { tools_log "@modelcontextprotocol/conformance is not installed in $TOOLS_NM: run scripts/install-deps"; fail_line; }

if [ -n "${CONFORMANCE_OUT:-}" ]; then
  OUT=$CONFORMANCE_OUT
  mkdir -p "$OUT" || fail_line
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/aos-conformance-out.XXXXXX") || fail_line
  trap 'rm -rf "$OUT"' EXIT
fi
LOG=$OUT/conformance.log
tools_log "conformance $(tools_version @modelcontextprotocol/conformance) (node $("$NODE" --version)) -> $URL"

# Run from the results dir so that nothing is written next to the caller.
(cd "$OUT" && NO_COLOR=1 timeout "${CONFORMANCE_TIMEOUT:-900}" \
  "$NODE" "$CLI" server --url "$URL" -o "$OUT" "$@") 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}

# A suite prints "Total: P passed, F failed"; a single scenario prints
# "Passed: P/N, F failed, W warnings".
P="" F=""
line=$(grep -E '^Total: [0-9]+ passed, [0-9]+ failed' "$LOG" | tail -1)
if [ -n "$line" ]; then
  P=$(echo "$line" | sed -E 's/^Total: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
  F=$(echo "$line" | sed -E 's/^Total: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
else
  line=$(grep -E '^Passed: [0-9]+/[0-9]+, [0-9]+ failed' "$LOG" | tail -1)
  if [ -n "$line" ]; then
    P=$(echo "$line" | sed -E 's#^Passed: ([0-9]+)/[0-9]+, ([0-9]+) failed.*#\1#')
    F=$(echo "$line" | sed -E 's#^Passed: ([0-9]+)/[0-9]+, ([0-9]+) failed.*#\2#')
  fi
fi
if [ -z "$P" ]; then
  tools_log "no summary line found (the tool exited $rc)"
  fail_line
fi
if [ "$rc" -eq 124 ]; then
  tools_log "timed out"
  F=$((F + 1))
fi
echo "conformance: $P passed, $F failed"
case " $* " in *" --expected-failures "*) exit "$rc" ;; esac
[ "$F" -eq 0 ]
