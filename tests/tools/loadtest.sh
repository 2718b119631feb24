#!/usr/bin/env bash
# loadtest.sh URL [CONCURRENCY=16] [SECONDS=10]
#
# Closed-loop load of MCP `tools/call` on any Streamable HTTP endpoint.
#  1. initialize (curl) -> Mcp-Session-Id (if the server gives one) and the
#     negotiated protocol version; 2. notifications/initialized; 3. one probe
#     tools/call that must succeed; 4. warm-up; 5. wrk with CONCURRENCY
#     connections for SECONDS, every request in the same session, each with a
#     distinct JSON-RPC id; 6. DELETE the session.
# Last line printed, always:
#   loadtest: RPS rps, p50 X ms, p99 Y ms, errors E
# E = non-200 + JSON-RPC errors + isError results + socket errors/timeouts.
# Exit 0 if the run completed with E == 0, else 1.
#
# Env (all optional):
#   LOADTEST_TOOL      tool to call (default echo)
#   LOADTEST_ARGS      JSON arguments (default {"message":"hello"})
#   LOADTEST_PROTOCOL_VERSION  version offered in initialize (default 2025-06-18)
#   LOADTEST_THREADS   wrk threads (default 2, capped at CONCURRENCY)
#   LOADTEST_WARMUP    warm-up seconds, not measured (default 5; 0 = none)
#   LOADTEST_TIMEOUT   per-request timeout, wrk syntax (default 10s)
#   LOADTEST_HEADERS   extra request headers, one "Name: value" per line
#   LOADTEST_PIDS      PIDs whose memory/CPU to sample during the measured run
#                      (their descendants are included); prints "mem:" lines
#   LOADTEST_ALLOW_NONLOOPBACK=1  allow a URL whose host is not loopback
# wrk runs mcp-tools-call.lua (beside this script) for steps 4 and 5.
set -u
. "$(dirname "$0")/lib.sh"

if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  tools_usage 27; exit 2
fi
URL=$1; CONC=${2:-16}; SECS=${3:-10}
TOOL=${LOADTEST_TOOL:-echo}
ARGS=${LOADTEST_ARGS:-'{"message":"hello"}'}
PV_OFFER=${LOADTEST_PROTOCOL_VERSION:-2025-06-18}
THREADS=${LOADTEST_THREADS:-2}; [ "$THREADS" -gt "$CONC" ] && THREADS=$CONC
WARMUP=${LOADTEST_WARMUP:-5}
RTIMEOUT=${LOADTEST_TIMEOUT:-10s}

final() { echo "loadtest: $1 rps, p50 $2 ms, p99 $3 ms, errors $4"; }
die() { tools_log "$*"; final 0 0 0 1; exit 1; }

hostport=${URL#*://}; hostport=${hostport%%/*}; host=${hostport%:*}
case "$host" in
  127.*|localhost|\[::1\]|::1) ;;
  *) [ "${LOADTEST_ALLOW_NONLOOPBACK:-0}" = 1 ] || die "refusing non-loopback host '$host' (set LOADTEST_ALLOW_NONLOOPBACK=1)";;
esac

WRK=$(tools_wrk) || die "no wrk available"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-loadtest.XXXXXX")
SAMPLER=
cleanup() { [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# Extra headers for curl (-H ...) and wrk (-H ...).
XH=()
if [ -n "${LOADTEST_HEADERS:-}" ]; then
  while IFS= read -r h; do [ -n "$h" ] && XH+=(-H "$h"); done <<< "$LOADTEST_HEADERS"
fi

rpc() { # rpc BODY [extra curl args...] -> writes $WORK/hdr $WORK/body, echoes HTTP code
  local body=$1; shift
  curl -sS -m 15 -D "$WORK/hdr" -o "$WORK/body" -w '%{http_code}' -X POST "$URL" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    "${XH[@]}" "$@" -d "$body"
}

# 1. initialize
code=$(rpc '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"'"$PV_OFFER"'","capabilities":{},"clientInfo":{"name":"mcp-loadtest","version":"1.0.0"}}}') \
  || die "initialize: connection failed"
[ "$code" = 200 ] || die "initialize: HTTP $code: $(head -c 300 "$WORK/body")"
SID=$(grep -i '^mcp-session-id:' "$WORK/hdr" | tail -1 | cut -d: -f2- | tr -d ' \r')
PV=$(grep -o '"protocolVersion" *: *"[^"]*"' "$WORK/body" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
[ -n "$PV" ] || die "initialize: no protocolVersion in reply: $(head -c 300 "$WORK/body")"
tools_log "initialized: protocol $PV, session ${SID:-<none: stateless>}"
SH=(); [ -n "$SID" ] && SH=(-H "Mcp-Session-Id: $SID")
SH+=(-H "MCP-Protocol-Version: $PV")

# 2. notifications/initialized
code=$(rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}' "${SH[@]}") || die "initialized: connection failed"
case "$code" in 200|202|204) ;; *) die "notifications/initialized: HTTP $code";; esac

# 3. probe
code=$(rpc '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"'"$TOOL"'","arguments":'"$ARGS"'}}' "${SH[@]}") \
  || die "probe: connection failed"
if [ "$code" != 200 ] || ! grep -q '"result"' "$WORK/body" || grep -q '"isError":true' "$WORK/body"; then
  die "probe tools/call $TOOL failed: HTTP $code: $(head -c 300 "$WORK/body")"
fi
tools_log "probe ok: $(grep -o '"result".*' "$WORK/body" | head -c 160)"

export MCP_SESSION_ID=$SID MCP_PROTOCOL_VERSION=$PV MCP_TOOL=$TOOL MCP_TOOL_ARGS=$ARGS
LUA="$TOOLS_DIR/mcp-tools-call.lua"
WH=(); [ ${#XH[@]} -gt 0 ] && WH=("${XH[@]}")
run_wrk() { # run_wrk SECONDS IDBASE OUTFILE
  MCP_ID_BASE=$2 timeout $(( $1 + 60 )) "$WRK" -t "$THREADS" -c "$CONC" -d "${1}s" --timeout "$RTIMEOUT" \
    -s "$LUA" "${WH[@]}" "$URL" > "$3" 2>&1
}

# 4. warm-up
if [ "$WARMUP" -gt 0 ]; then run_wrk "$WARMUP" 1000000000000 "$WORK/warmup.txt"; fi

# Memory/CPU sampling of LOADTEST_PIDS and their descendants.
PIDS=()
descend() { local p c; for p in "$@"; do PIDS+=("$p"); for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do descend "$c"; done; done; }
[ -n "${LOADTEST_PIDS:-}" ] && descend $LOADTEST_PIDS
rss() { local v; v=$(awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null); echo "${v:-0}"; }
hwm() { local v; v=$(awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null); echo "${v:-0}"; }
cpu() { local v; v=$(awk '{sub(/.*\) /,""); print $12+$13}' "/proc/$1/stat" 2>/dev/null); echo "${v:-0}"; }
declare -A RSS0 CPU0 COMM
for p in "${PIDS[@]}"; do RSS0[$p]=$(rss "$p"); CPU0[$p]=$(cpu "$p"); COMM[$p]=$(cat "/proc/$p/comm" 2>/dev/null); done
if [ ${#PIDS[@]} -gt 0 ]; then
  ( declare -A mx; end=$(( $(date +%s) + SECS + 70 ))
    while [ "$(date +%s)" -lt "$end" ]; do
      for p in "${PIDS[@]}"; do r=$(rss "$p"); [ "${r:-0}" -gt "${mx[$p]:-0}" ] && mx[$p]=$r; done
      for p in "${PIDS[@]}"; do echo "$p ${mx[$p]:-0}"; done > "$WORK/mem.tmp"; mv "$WORK/mem.tmp" "$WORK/mem"
      sleep 0.5
    done ) & SAMPLER=$!
fi

# 5. measured run (load generator CPU = this shell's reaped-children CPU delta)
ccpu() { awk '{sub(/.*\) /,""); print $14+$15}' "/proc/$$/stat"; }
LG0=$(ccpu)
run_wrk "$SECS" 0 "$WORK/wrk.txt"; wrc=$?
LG1=$(ccpu)
[ -n "$SAMPLER" ] && { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=; }

if [ ${#PIDS[@]} -gt 0 ]; then
  # Per-process lines for the given PIDs and for descendants that used CPU
  # during the run (idle ones, e.g. children of other sessions, are only
  # counted in mem-total).
  tot_max=0; tot_cpu=0; busy_max=0; nbusy=0
  TCK=$(getconf CLK_TCK)
  for p in "${PIDS[@]}"; do
    peak=$(awk -v p="$p" '$1==p{print $2}' "$WORK/mem" 2>/dev/null); peak=${peak:-0}
    c1=$(cpu "$p"); dc=$(( c1 - ${CPU0[$p]:-0} )); [ "$dc" -lt 0 ] && dc=0
    tot_max=$((tot_max + peak)); tot_cpu=$((tot_cpu + dc))
    root=0; for q in $LOADTEST_PIDS; do [ "$q" = "$p" ] && root=1; done
    if [ "$dc" -gt 0 ] || [ $root = 1 ]; then
      busy_max=$((busy_max + peak)); nbusy=$((nbusy + 1))
      echo "mem: pid=$p comm=${COMM[$p]:-?} rss_before_kb=${RSS0[$p]} rss_max_kb=$peak rss_after_kb=$(rss "$p") hwm_kb=$(hwm "$p") cpu_s=$(awk -v t="$dc" -v h="$TCK" 'BEGIN{printf "%.2f", t/h}')"
    fi
  done
  echo "mem-busy: rss_max_kb=$busy_max processes=$nbusy"
  echo "mem-total: rss_max_kb=$tot_max cpu_s=$(awk -v t="$tot_cpu" -v h="$TCK" 'BEGIN{printf "%.2f", t/h}') processes=${#PIDS[@]}"
fi

# 6. end the session
[ -n "$SID" ] && curl -s -m 5 -o /dev/null -X DELETE "$URL" "${XH[@]}" "${SH[@]}" || true

line=$(grep '^MCPLOAD ' "$WORK/wrk.txt" | tail -1)
if [ -z "$line" ]; then
  tools_log "wrk produced no result (exit $wrc):"; cat "$WORK/wrk.txt" >&2
  final 0 0 0 1; exit 1
fi
grep -E 'Latency|Req/Sec|requests in|Non-2xx|Socket errors' "$WORK/wrk.txt" | sed 's/^/wrk: /'
echo "loadgen: wrk threads=$THREADS connections=$CONC cpu_s=$(awk -v t="$((LG1 - LG0))" -v h="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/h}')"
echo "$line"
kv() { echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1==k{print $2}'; }
req=$(kv requests); dur=$(kv duration_us)
errs=$(( $(kv bad_status) + $(kv rpc_errors) + $(kv tool_errors) + $(kv sock_connect) + $(kv sock_read) + $(kv sock_write) + $(kv sock_timeout) ))
rps=$(awk -v r="$req" -v d="$dur" 'BEGIN{printf "%.1f", (d>0)? r/(d/1e6) : 0}')
p50=$(awk -v u="$(kv p50_us)" 'BEGIN{printf "%.2f", u/1000}')
p99=$(awk -v u="$(kv p99_us)" 'BEGIN{printf "%.2f", u/1000}')
final "$rps" "$p50" "$p99" "$errs"
[ "$errs" -eq 0 ] && exit 0 || exit 1
