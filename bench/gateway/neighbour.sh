#!/usr/bin/env bash
# bench/gateway/neighbour.sh - does a failing server hurt a healthy one behind
# the same aosd? One aosd fronts two stdio servers:
#   everything  server-everything (tests/tools/mcp-server.sh everything): the healthy one
#   faulty      bench/gateway/half-failing-server.mjs: tool `half` fails every
#               second call (isError, JSON-RPC internal error, or no answer
#               before aosd's timeout_ms; see that file and BENCH_FAULT)
# and each round loads the healthy server in two ways:
#   alone           loadtest.sh on /mcp/servers/everything (C=BENCH_CONC,
#                   tools/call echo, one session, warm-up then measured)
#   with-neighbour  the same, while a second load (wrk with
#                   tests/tools/mcp-tools-call.lua, C=BENCH_FAULTY_CONC, its own session)
#                   calls `half` through /mcp/servers/faulty; it starts 1 s
#                   before the healthy load and is stopped (SIGINT, wrk
#                   reports) as soon as the healthy load has ended.
# Rounds alternate the order (odd: alone first; even: with-neighbour first)
# so that drift and after-effects of one case hit both alike. The report
# gives the healthy server's req/s, p50, p99 and errors in both cases, the
# faulty load's own rate and outcomes, the CPU of each process during the
# measured seconds (aosd, each upstream child, each load generator), the
# ratios with/alone, and what aosd itself says afterwards (metrics of both
# servers, breaker, restarts of children, cancelled vs late delayed calls).
#
# Exit status: 0 when it ran (whatever the numbers); 1 when it could not run
# (aosd missing or not answering, a server not registered, no load ran).
#
# Env: BENCH_RUNS (2) rounds, BENCH_SECONDS (10) measured seconds per load,
#      BENCH_WARMUP (5) warm-up seconds, BENCH_CONC (16) healthy-load
#      connections, BENCH_FAULTY_CONC (8) faulty-load connections,
#      BENCH_FAULT (mixed | error | timeout: HALF_FAIL_MODE of the faulty
#      server; none: it never fails, a control run), BENCH_FAULTY_TIMEOUT_MS (250: the faulty entry's timeout_ms;
#      its delayed calls sleep 8x that), BENCH_BREAKER (off: the faulty
#      entry's breaker never opens, so that it keeps failing half of its
#      calls all along; default: aosd's default breaker, which the clustered
#      timeouts of the mixed/timeout modes open, and the faulty load turns
#      into a flood of fast rejections), BENCH_PORT (3320),
#      BENCH_BUILD (<repo>/build), BENCH_AOSD (BENCH_BUILD/aosd),
#      BENCH_RESULTS (bench/gateway/results), and what tests/tools/loadtest.sh
#      reads. The npm packages are installed by scripts/install-deps.
set -u
case "${1:-}" in -h | --help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOLS=$ROOT/tests/tools
RUNS=${BENCH_RUNS:-2}
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-5}
CONC=${BENCH_CONC:-16}
FCONC=${BENCH_FAULTY_CONC:-8}
FAULT=${BENCH_FAULT:-mixed}
FTIMEOUT=${BENCH_FAULTY_TIMEOUT_MS:-250}
BREAKER=${BENCH_BREAKER:-off}
PORT=${BENCH_PORT:-3320}
BUILD=${BENCH_BUILD:-$ROOT/build}
AOSD=${BENCH_AOSD:-$BUILD/aosd}
RESULTS=${BENCH_RESULTS:-$HERE/results}

exec 3>&2 # progress goes to the original stderr, even from a trap run inside a redirection
log() { echo "[neighbour] $*" >&3; }
die() { log "$*"; exit 1; }

for v in RUNS SECS WARMUP CONC FCONC FTIMEOUT PORT; do
  case "${!v}" in '' | *[!0-9]*) die "$v must be a whole number, got '${!v}'" ;; esac
done
if [ "$RUNS" -lt 1 ] || [ "$SECS" -lt 1 ] || [ "$CONC" -lt 1 ] || [ "$FCONC" -lt 1 ] || [ "$FTIMEOUT" -lt 1 ]; then
  die "BENCH_RUNS, BENCH_SECONDS, BENCH_CONC, BENCH_FAULTY_CONC, BENCH_FAULTY_TIMEOUT_MS must be >= 1"
fi
case "$FAULT" in mixed | error | timeout | none) ;; *) die "BENCH_FAULT must be mixed, error, timeout or none" ;; esac
case "$BREAKER" in
  off) BREAKER_LIMITS=',"breaker_failures":100000,"breaker_error_rate":0' ;;
  default) BREAKER_LIMITS= ;;
  *) die "BENCH_BREAKER must be off or default" ;;
esac
# shellcheck source=../../tests/tools/lib.sh
. "$TOOLS/lib.sh" # tools_wrk, tools_version
SERVER_EVERYTHING_VERSION=$(tools_version @modelcontextprotocol/server-everything)
[ -n "$SERVER_EVERYTHING_VERSION" ] || die "server-everything is not installed in tests/tools: run scripts/install-deps"
[ -d "$ROOT/tests/e2e/node_modules/@modelcontextprotocol/sdk" ] ||
  die "the SDK of tests/e2e (half-failing-server.mjs uses it) is not installed: run scripts/install-deps"
[ -x "$AOSD" ] || die "$AOSD not built (make -C $ROOT build, or set BENCH_AOSD)"
NODE=$(command -v node) || die "node not found"
HALF=$HERE/half-failing-server.mjs
[ -f "$HALF" ] || die "$HALF missing"
WRK=$(tools_wrk) || die "no wrk available"
LUA=$TOOLS/mcp-tools-call.lua

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aos-neighbour.XXXXXX")
REPORT=$WORK/report.txt
RAW=$WORK/raw
mkdir -p "$RAW" "$WORK/tmp" "$WORK/aosd-data"

# ---------------------------------------------------------------- cleanup
AOSD_PID='' CHILD='' FLOAD=''
tree() { local p c; for p in "$@"; do echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done; done; }
# kill_tree PID: TERM it and its descendants, KILL after 3 s (frozen first so
# that nothing forks meanwhile).
kill_tree() {
  local pids p alive
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 0
  pids=$(tree "$1")
  for p in $pids; do kill -STOP "$p" 2>/dev/null; done
  pids=$(tree "$1")
  for p in $pids; do kill -TERM "$p" 2>/dev/null; done
  for p in $pids; do kill -CONT "$p" 2>/dev/null; done
  for _ in $(seq 1 12); do
    alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.25
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
}
# aosd gets a plain TERM first: it closes its upstreams itself (children
# TERM, KILL after 2 s) and the faulty server writes its last counters.
stop_aosd() {
  [ -n "$AOSD_PID" ] || return 0
  local kids
  kids=$(tree "$AOSD_PID")
  kill -TERM "$AOSD_PID" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 "$AOSD_PID" 2>/dev/null || break; sleep 0.25; done
  kill_tree "$AOSD_PID"
  for p in $kids; do kill -KILL "$p" 2>/dev/null; done
  AOSD_PID=
}
stop_all() {
  kill_tree "$CHILD"
  kill_tree "$FLOAD"
  stop_aosd
  CHILD='' FLOAD=''
}
cleanup() {
  trap - EXIT INT TERM
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# run_bg TIMEOUT CMD... : run in the background and wait, so that a signal
# reaches our trap at once (bash runs traps only between commands).
run_bg() {
  local t=$1 rc
  shift
  timeout "$t" "$@" &
  CHILD=$!
  wait "$CHILD"
  rc=$?
  CHILD=
  return $rc
}

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }

. "$HERE/../lib.sh" # cpu_busy_pct
port_free() { ! curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" 2>/dev/null; }

# ---------------------------------------------------------------- aosd
port_free "$PORT" || die "port $PORT is in use (set BENCH_PORT)"
START=$(date +%s)
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
AUTH="Authorization: Bearer $TOKEN"
BASE=http://127.0.0.1:$PORT
say "# AOS gateway benchmark: a healthy server beside a failing one, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(nproc) cores, $(awk '/^model name/{sub(/.*: /,""); print; exit}' /proc/cpuinfo), CPU busy before start: $(cpu_busy_pct)%"

"$AOSD" --listen "127.0.0.1:$PORT" --data-dir "$WORK/aosd-data" --bootstrap-token "$TOKEN" \
  >"$WORK/aosd.log" 2>&1 </dev/null &
AOSD_PID=$!
up=0
for _ in $(seq 1 40); do
  kill -0 "$AOSD_PID" 2>/dev/null || break
  if curl -fs -o /dev/null -m 1 "$BASE/healthz"; then up=1; break; fi
  sleep 0.25
done
[ $up = 1 ] || die "aosd did not answer /healthz within 10 s: $(head -c 300 "$WORK/aosd.log" | tr '\n' ' ')"

register() { # register NAME JSON
  local code
  code=$(curl -s -o "$WORK/register-$1.txt" -w '%{http_code}' -m 30 -X POST -H "$AUTH" \
    -H 'Content-Type: application/json' "$BASE/mcp/registry" -d "$2")
  case "$code" in 2??) return 0 ;; esac
  die "registering '$1' failed: HTTP $code $(head -c 300 "$WORK/register-$1.txt")"
}
register everything '{"name":"everything","transport":"stdio","command":"'"$TOOLS"'/mcp-server.sh","args":["everything"]}'
# The faulty server: a short timeout (its delayed calls sleep 8x longer and
# are cancelled by aosd), no retries (tool calls are not retried anyway
# unless annotated idempotent; said here so that a changed default does not
# change the load), a concurrency limit with a small queue. The breaker is
# off by default (BENCH_BREAKER): 25 % of the calls are failures it counts,
# under its 50 % error rate, but with 8 connections the delayed calls line up
# (every connection soon waits on one) and time out together: 5 consecutive
# failures, the breaker opens, and the faulty load is no longer "a server
# failing half of its calls" but ~10-20k fast rejections per second.
FSTATS=$WORK/half-stats.json
register faulty '{"name":"faulty","transport":"stdio","command":"'"$NODE"'","args":["'"$HALF"'"],
  "env":{"HALF_FAIL_MODE":"'"$FAULT"'","HALF_DELAY_MS":"'$((FTIMEOUT * 8))'","HALF_STATS_FILE":"'"$FSTATS"'"},
  "timeout_ms":'"$FTIMEOUT"',"limits":{"retries":0,"max_concurrency":'$((FCONC * 2))',"queue":'$((FCONC * 2))"$BREAKER_LIMITS"'}}'

# ---- MCP session helpers for the faulty load (wrk directly: loadtest.sh
# insists on a successful probe call, and `half` fails every second call)
# mcp_init URL -> sets S_ID, S_PV
mcp_init() {
  local hdr=$WORK/init.hdr body=$WORK/init.body code
  code=$(curl -sS -m 30 -D "$hdr" -o "$body" -w '%{http_code}' -X POST "$1" -H "$AUTH" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"neighbour-bench","version":"1.0.0"}}}') || return 1
  [ "$code" = 200 ] || return 1
  S_ID=$(grep -i '^mcp-session-id:' "$hdr" | tail -1 | cut -d: -f2- | tr -d ' \r')
  S_PV=$(grep -o '"protocolVersion" *: *"[^"]*"' "$body" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  [ -n "$S_PV" ] || return 1
  curl -s -m 10 -o /dev/null -X POST "$1" -H "$AUTH" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' ${S_ID:+-H "Mcp-Session-Id: $S_ID"} \
    -H "MCP-Protocol-Version: $S_PV" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
}
# rpc_call URL TOOL -> body on stdout (one call in a fresh session)
rpc_call() {
  mcp_init "$1" || mcp_init "$1" || { echo "initialize failed: $(head -c 300 "$WORK/init.body")"; return 1; }
  curl -s -m 30 -X POST "$1" -H "$AUTH" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' ${S_ID:+-H "Mcp-Session-Id: $S_ID"} \
    -H "MCP-Protocol-Version: $S_PV" \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"'"$2"'","arguments":{"message":"hello"}}}'
  [ -n "$S_ID" ] && curl -s -m 5 -o /dev/null -X DELETE "$1" -H "$AUTH" -H "Mcp-Session-Id: $S_ID"
  return 0
}

# Wait until aosd reports both upstreams ready (their children started and
# initialized: node takes longer than the faulty entry's timeout_ms to start,
# and server-everything takes a while to load).
ready() { curl -s -m 5 -H "$AUTH" "$BASE/mcp/registry/$1" | grep -q '"state":"ready"'; }
for _ in $(seq 1 240); do
  ready everything && ready faulty && break
  kill -0 "$AOSD_PID" 2>/dev/null || die "aosd exited: $(tail -c 300 "$WORK/aosd.log")"
  sleep 0.5
done
for s in everything faulty; do
  ready "$s" || die "upstream '$s' not ready after 120 s: $(curl -s -m 5 -H "$AUTH" "$BASE/mcp/registry/$s" | grep -o '"health":.*' | head -c 300)"
done

# Both servers answer before anything is measured (calls 1 and 2 of `half`:
# an ok and an isError).
EV_URL=$BASE/mcp/servers/everything
FA_URL=$BASE/mcp/servers/faulty
for _ in 1 2; do rpc_call "$FA_URL" half >>"$WORK/first-calls.txt"; echo >>"$WORK/first-calls.txt"; done
grep -q '"half: ok"' "$WORK/first-calls.txt" || die "the faulty server does not answer: $(head -c 300 "$WORK/first-calls.txt")"
rpc_call "$EV_URL" echo >"$WORK/first-ev.txt"
grep -q 'Echo: hello' "$WORK/first-ev.txt" || die "server-everything does not answer: $(head -c 300 "$WORK/first-ev.txt")"

# pids of aosd's upstream children, by role (mcp-server.sh execs node)
child_pid() { # child_pid PATTERN
  local p
  for p in $(ps -o pid= --ppid "$AOSD_PID" 2>/dev/null); do
    grep -qa -- "$1" "/proc/$p/cmdline" 2>/dev/null && { echo "$p"; return; }
  done
}
EV_PID0=$(child_pid server-everything)
FA_PID0=$(child_pid half-failing-server)
say "aosd: pid $AOSD_PID ($AOSD); upstreams: everything pid ${EV_PID0:-?} (server-everything $SERVER_EVERYTHING_VERSION, stdio),"
say "      faulty pid ${FA_PID0:-?} (half-failing-server.mjs, HALF_FAIL_MODE=$FAULT, timeout_ms $FTIMEOUT, delayed calls sleep $((FTIMEOUT * 8)) ms, retries 0, max_concurrency $((FCONC * 2)), queue $((FCONC * 2)), breaker $BREAKER)"
case "$FAULT" in
  mixed) say "faulty tool 'half', per 8 calls: 4 ok, 2 isError, 1 JSON-RPC -32603, 1 past the timeout (aosd cancels it)" ;;
  error) say "faulty tool 'half', per 4 calls: 2 ok, 1 isError, 1 JSON-RPC -32603 (all answered at once)" ;;
  timeout) say "faulty tool 'half', per 4 calls: 2 ok, 1 isError, 1 past the timeout (aosd cancels it)" ;;
  none) say "faulty tool 'half' never fails (BENCH_FAULT=none: a control run with a healthy neighbour)" ;;
esac
say "healthy load: loadtest.sh $EV_URL, C=$CONC, ${SECS} s measured after ${WARMUP} s warm-up, tools/call echo"
say "faulty load:  wrk + mcp-tools-call.lua on $FA_URL, C=$FCONC, tools/call half, from 1 s before the healthy load to its end"
say "rounds: $RUNS, alternating the order of the two cases"

# ---------------------------------------------------------------- loads
# faulty_load OUT SECONDS: starts the faulty load in the background (FLOAD)
faulty_load() {
  local out=$1 d=$2
  if ! mcp_init "$FA_URL"; then
    echo "faulty load: initialize failed" >"$out"
    return 1
  fi
  (
    export MCP_SESSION_ID=$S_ID MCP_PROTOCOL_VERSION=$S_PV MCP_TOOL=half \
      MCP_TOOL_ARGS='{"message":"hello"}' MCP_ID_BASE=$((RANDOM * 1000000000000))
    timeout $((d + 60)) "$WRK" -t 2 -c "$FCONC" -d "${d}s" --timeout 10s -s "$LUA" \
      -H "$AUTH" "$FA_URL"
    # wrk's CPU over its whole run (reaped children of this subshell)
    awk -v h="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "loadgen: cpu_s=%.2f\n", ($14 + $15) / h}' "/proc/$BASHPID/stat"
  ) >"$out" 2>&1 &
  FLOAD=$!
  FLOAD_SID=$S_ID
}
# faulty_stop: SIGINT to wrk (it stops and reports), then wait for it
faulty_stop() {
  [ -n "$FLOAD" ] || return 0
  local p
  for p in $(tree "$FLOAD"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = wrk ] && kill -INT "$p" 2>/dev/null
  done
  wait "$FLOAD" 2>/dev/null
  FLOAD=
  [ -n "${FLOAD_SID:-}" ] && curl -s -m 5 -o /dev/null -X DELETE "$FA_URL" -H "$AUTH" -H "Mcp-Session-Id: $FLOAD_SID"
  FLOAD_SID=
}

# what aosd says about the two servers, before and after each case
msnap() { curl -s -m 10 -H "$AUTH" "$BASE/metrics" >"$1" 2>/dev/null; }
# mdelta BEFORE AFTER -> "ev_not_ok faulty_rejected faulty_breaker_after"
mdelta() {
  awk '
    function val(l) { sub(/.*[}] */, "", l); return l + 0 }
    FNR == 1 { f++ }
    /^aos_mcp_calls_total[{]/ && /server="everything"/ && !/outcome="ok"/ { ev[f] += val($0) }
    /^aos_mcp_rejected_total[{]/ && /server="faulty"/ { rj[f] += val($0) }
    /^aos_mcp_breaker_state[{]/ && /server="faulty"/ && f == 2 { br = val($0) }
    END { printf "%d %d %s\n", ev[2] - ev[1], rj[2] - rj[1], br == "" ? "-" : (br == 0 ? "closed" : br == 1 ? "open" : "half-open") }' "$1" "$2"
}

healthy_load() { # healthy_load OUT PIDS
  TMPDIR=$WORK/tmp LOADTEST_WARMUP=$WARMUP LOADTEST_HEADERS="$AUTH" LOADTEST_PIDS="$2" \
    run_bg $((WARMUP + SECS + 90)) "$TOOLS/loadtest.sh" "$EV_URL" "$CONC" "$SECS" >"$1" 2>"$1.err"
}

# One row per case and round:
#  case round busy% rps p50 p99 errors aosd_cpu aosd_rss_mb ev_cpu fa_cpu lg_cpu flg_cpu
#  frps fok ftool frpc fhttp fsock
ROWS=$WORK/rows.txt
: >"$ROWS"
row_of() { # row_of CASE ROUND BUSY HEALTHY_OUT FAULTY_OUT
  awk -v cs="$1" -v r="$2" -v busy="$3" -v aosd="$AOSD_PID" -v ev="$(child_pid server-everything)" \
    -v fa="$(child_pid half-failing-server)" -v fl="${FLOAD_ROOT:-x}" -v fout="$5" '
    function kv(k,   i, a) { for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
    /^loadtest:/ { rps = $2; p50 = $5; p99 = $8; err = $11 }
    /^loadgen:/  { lg = kv("cpu_s") }
    /^mem: /     {
      p = kv("pid"); c = kv("cpu_s")
      if (p == aosd) { acpu = c; arss = sprintf("%.1f", kv("rss_max_kb") / 1024) }
      else if (p == ev) ecpu = c
      else if (p == fa) fcpu = c
      else if (fl != "x") other[p] = c
    }
    END {
      # the faulty load generator: timeout(1) and wrk under it (any other pid
      # in the sample that is not aosd or its children)
      for (p in other) flg += other[p]
      if (rps == "") { rps = 0; p50 = 0; p99 = 0; err = 1 }
      fr = "- - - - - -"
      if (fout != "") {
        while ((getline l < fout) > 0) if (l ~ /^MCPLOAD /) line = l
        if (line != "") {
          n = split(line, f, " ")
          for (i = 2; i <= n; i++) { split(f[i], a, "="); m[a[1]] = a[2] }
          fr = sprintf("%.1f %d %d %d %d %d", m["requests"] / (m["duration_us"] / 1e6), m["ok"], m["tool_errors"],
            m["rpc_errors"], m["bad_status"], m["sock_connect"] + m["sock_read"] + m["sock_write"] + m["sock_timeout"])
        } else fr = "0 0 0 0 0 -1"
        close(fout)
        while ((getline l < fout) > 0) if (l ~ /^loadgen: /) { sub(/.*cpu_s=/, "", l); fcpu_all = l }
        fr = fr " " (fcpu_all == "" ? "-" : fcpu_all)
      } else {
        fr = fr " -"
      }
      printf "%s %s %s %s %s %s %s %s %s %s %s %s %s %s\n", cs, r, busy, rps, p50, p99, err,
        acpu == "" ? "0.00" : acpu, arss == "" ? "-" : arss, ecpu == "" ? "0.00" : ecpu,
        fcpu == "" ? "0.00" : fcpu, lg == "" ? "-" : lg, fout == "" ? "-" : sprintf("%.2f", flg), fr
    }' "$4"
}

# CPU taken by other work on the machine during a case: all CPU time the
# kernel counted (/proc/stat) minus aosd's tree and this script's own tree
# (the loads are children of this shell and reaped when the case ends), as
# a share of the machine over the case's wall time (both loads, warm-ups and
# set-up included). 0 % on a machine that runs nothing else.
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
jiffies_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
self_cpu() { awk '{sub(/.*\) /, ""); print $12+$13+$14+$15}' "/proc/$$/stat"; }
aosd_cpu() {
  local p t=0 c
  for p in $(tree "$AOSD_PID"); do
    c=$(awk '{sub(/.*\) /, ""); print $12+$13}' "/proc/$p/stat" 2>/dev/null)
    t=$((t + ${c:-0}))
  done
  echo "$t"
}
acct_start() { A_T0=$(date +%s%N); A_J0=$(jiffies_busy); A_S0=$(self_cpu); A_A0=$(aosd_cpu); }
acct_others() {
  local t1 j1 s1 a1
  t1=$(date +%s%N); j1=$(jiffies_busy); s1=$(self_cpu); a1=$(aosd_cpu)
  awk -v dt="$((t1 - A_T0))" -v dj="$((j1 - A_J0))" -v ds="$((s1 - A_S0))" -v da="$((a1 - A_A0))" \
    -v hz="$HZ" -v n="$NCPU" 'BEGIN { o = dj - ds - da; if (o < 0) o = 0
      printf "%.0f", (dt > 0) ? 100 * (o / hz) / (dt / 1e9 * n) : 0 }'
}

run_case() { # run_case CASE ROUND
  local cs=$1 r=$2 out=$RAW/round$2 busy others
  mkdir -p "$out"
  busy=$(cpu_busy_pct)
  msnap "$out/metrics-before-$cs.txt"
  acct_start
  if [ "$cs" = alone ]; then
    log "round $r/$RUNS: healthy alone (CPU busy before: $busy%)"
    FLOAD_ROOT=
    healthy_load "$out/alone.txt" "$AOSD_PID"
    others=$(acct_others)
    msnap "$out/metrics-after-$cs.txt"
    echo "$(row_of alone "$r" "$busy" "$out/alone.txt" "") $(mdelta "$out/metrics-before-$cs.txt" "$out/metrics-after-$cs.txt") $others" >>"$ROWS"
  else
    log "round $r/$RUNS: healthy with the faulty neighbour (CPU busy before: $busy%)"
    FLOAD_ROOT=
    if faulty_load "$out/faulty-load.txt" $((WARMUP + SECS + 120)); then
      FLOAD_ROOT=$FLOAD
      sleep 1
      healthy_load "$out/with.txt" "$AOSD_PID $FLOAD"
      faulty_stop
    else
      : >"$out/with.txt"
    fi
    others=$(acct_others)
    msnap "$out/metrics-after-$cs.txt"
    echo "$(row_of with-neighbour "$r" "$busy" "$out/with.txt" "$out/faulty-load.txt") $(mdelta "$out/metrics-before-$cs.txt" "$out/metrics-after-$cs.txt") $others" >>"$ROWS"
  fi
  if ! grep -q '^loadtest: [1-9]' "$out/$([ "$cs" = alone ] && echo alone || echo with).txt" 2>/dev/null; then
    log "$cs round $r: the healthy load did not run: $(grep '^\[loadtest' "$out/$([ "$cs" = alone ] && echo alone || echo with).txt.err" 2>/dev/null | tail -1)"
  fi
}

for r in $(seq 1 "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then run_case alone "$r"; run_case with "$r"
  else run_case with "$r"; run_case alone "$r"; fi
done

# ---------------------------------------------------------------- aosd afterwards
sleep 1 # let the last cancelled calls and log writes settle
EV_PID1=$(child_pid server-everything)
FA_PID1=$(child_pid half-failing-server)
AOSD_ALIVE=no
declare -A HEALTH
kill -0 "$AOSD_PID" 2>/dev/null && AOSD_ALIVE=yes
curl -s -m 10 -H "$AUTH" "$BASE/metrics" >"$WORK/metrics.txt" 2>/dev/null
curl -s -m 10 -H "$AUTH" "$BASE/mcp/registry" >"$WORK/registry.json" 2>/dev/null
for s in everything faulty; do
  HEALTH[$s]=$(curl -s -m 10 -H "$AUTH" "$BASE/mcp/registry/$s" | grep -o '"health":{[^}]*}')
done
AOSD_RSS_END=$(awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$AOSD_PID/status" 2>/dev/null)
AOSD_FDS_END=$(ls "/proc/$AOSD_PID/fd" 2>/dev/null | wc -l)
# a final call to each server, after everything
rpc_call "$EV_URL" echo >"$WORK/last-ev.txt"

# ---------------------------------------------------------------- report
say ""
say "per round (healthy = the 'everything' load; CPU seconds during its ${SECS} measured seconds; 10.0 = one core):"
hdr() { say "$(printf '%-15s %5s %5s %7s %8s %7s %7s %6s %6s %6s %7s %6s %6s %6s %6s' "$@")"; }
hdr case round busy% others% req/s p50_ms p99_ms errors ev_!ok aosd_s aosd_mb ev_s half_s wrk_s wrk2_s
sort -s -k2,2n "$ROWS" | while read -r cs r busy rps p50 p99 err acpu arss ecpu fcpu lg flg _ _ _ _ _ _ _ evbad _ _ oth; do
  hdr "$cs" "$r" "$busy" "$oth" "$rps" "$p50" "$p99" "$err" "$evbad" "$acpu" "$arss" "$ecpu" "$fcpu" "$lg" "$flg"
done
say "  busy%: CPU busy in the second before the case; others%: share of the machine used by"
say "  processes other than aosd, its children and this benchmark's loads during the case"
say "  (0 on an otherwise idle machine); errors: the healthy load's (loadtest.sh);"
say "  ev_!ok: calls to 'everything' that aosd counted as not ok during the case (/metrics);"
say "  aosd_s/aosd_mb: aosd process CPU s / max RSS; ev_s, half_s: the server-everything and"
say "  half-failing-server children; wrk_s: the healthy load's wrk; wrk2_s: the faulty load's wrk"
say ""
say "faulty load (its whole run, ~$((WARMUP + SECS + 2)) s: ok / isError / JSON-RPC errors (internal, timeouts,"
say "breaker) / HTTP non-200 / socket errors and timeouts (10 s); wrk_s: its CPU; rejected: calls aosd"
say "refused by a limit (breaker, queue) during the case; breaker: the faulty server's, after the case):"
say "$(printf '%-15s %5s %8s %7s %7s %7s %5s %5s %6s %8s %9s' case round req/s ok isError rpc_err http sock wrk_s rejected breaker)"
sort -s -k2,2n "$ROWS" | awk '$1 == "with-neighbour"' | while read -r cs r _ _ _ _ _ _ _ _ _ _ _ frps fok ftool frpc fhttp fsock fwrk _ frej fbrk _; do
  say "$(printf '%-15s %5s %8s %7s %7s %7s %5s %5s %6s %8s %9s' "$cs" "$r" "$frps" "$fok" "$ftool" "$frpc" "$fhttp" "$fsock" "$fwrk" "$frej" "$fbrk")"
done
say "  breaker after each alone case: $(sort -s -k2,2n "$ROWS" | awk '$1 == "alone" { printf "%sround %s %s", sep, $2, $23; sep = ", " }')"

# medians over the rounds whose healthy load ran
med() { # med CASE COLUMN
  awk -v cs="$1" -v k="$2" '$1 == cs && $4 + 0 > 0 && $k != "-" { v[++n] = $k + 0 }
    END { if (!n) { print "-"; exit }
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
      m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; print m }' "$ROWS"
}
sum_col() { awk -v cs="$1" -v k="$2" '$1 == cs { s += $k } END { print s + 0 }' "$ROWS"; }
nok() { awk -v cs="$1" '$1 == cs { t++; if ($4 + 0 > 0) o++ } END { printf "%d/%d", o, t }' "$ROWS"; }
say ""
say "medians (runs ok/total; errors summed):"
say "$(printf '%-15s %5s %7s %8s %7s %7s %6s %6s %6s %7s %6s %6s %6s %6s %9s' case runs others% req/s p50_ms p99_ms errors ev_!ok aosd_s aosd_mb ev_s half_s wrk_s wrk2_s faulty_r/s)"
for cs in alone with-neighbour; do
  fr=-; [ "$cs" = with-neighbour ] && fr=$(med "$cs" 14)
  say "$(printf '%-15s %5s %7s %8s %7s %7s %6s %6s %6s %7s %6s %6s %6s %6s %9s' "$cs" "$(nok "$cs")" "$(med "$cs" 24)" "$(med "$cs" 4)" \
    "$(med "$cs" 5)" "$(med "$cs" 6)" "$(sum_col "$cs" 7)" "$(sum_col "$cs" 21)" "$(med "$cs" 8)" "$(med "$cs" 9)" "$(med "$cs" 10)" \
    "$(med "$cs" 11)" "$(med "$cs" 12)" "$(med "$cs" 13)" "$fr")"
done
ratio() { # ratio LABEL COLUMN
  local a b
  a=$(med with-neighbour "$2"); b=$(med alone "$2")
  if [ "$a" != - ] && [ "$b" != - ] && awk -v b="$b" 'BEGIN{exit !(b > 0)}'; then
    say "$(printf '  %-34s %6.3f   (%s / %s)' "$1" "$(awk -v a="$a" -v b="$b" 'BEGIN{print a/b}')" "$a" "$b")"
  else
    say "$(printf '  %-34s %6s' "$1" n/a)"
  fi
}
say ""
say "healthy server, with the faulty neighbour / alone (medians; target: req/s >= 0.90, p99 <= 1.10):"
ratio "req/s" 4
ratio "p50" 5
ratio "p99" 6
ratio "aosd CPU s" 8
say "  per CPU-second of aosd + server-everything (req/s x ${SECS} / (aosd_s + ev_s)): alone $(awk -v cs=alone -v s="$SECS" '$1==cs && $4>0 && $8+$10>0 {v[++n]=$4*s/($8+$10)} END{if(!n){print "-";exit} for(i=2;i<=n;i++)for(j=i;j>1&&v[j-1]>v[j];j--){t=v[j];v[j]=v[j-1];v[j-1]=t} printf "%.0f", (n%2)?v[(n+1)/2]:(v[n/2]+v[n/2+1])/2}' "$ROWS"), with-neighbour $(awk -v cs=with-neighbour -v s="$SECS" '$1==cs && $4>0 && $8+$10>0 {v[++n]=$4*s/($8+$10)} END{if(!n){print "-";exit} for(i=2;i<=n;i++)for(j=i;j>1&&v[j-1]>v[j];j--){t=v[j];v[j]=v[j-1];v[j-1]=t} printf "%.0f", (n%2)?v[(n+1)/2]:(v[n/2]+v[n/2+1])/2}' "$ROWS")"
say "  the neighbour's own processes (half_s + wrk2_s), median: $(awk '$1=="with-neighbour" && $4>0 {v[++n]=$11+$13} END{if(!n){print "-";exit} for(i=2;i<=n;i++)for(j=i;j>1&&v[j-1]>v[j];j--){t=v[j];v[j]=v[j-1];v[j-1]=t} printf "%.2f", (n%2)?v[(n+1)/2]:(v[n/2]+v[n/2+1])/2}' "$ROWS") CPU-s; aosd with minus alone: $(awk -v a="$(med with-neighbour 8)" -v b="$(med alone 8)" 'BEGIN{if(a=="-"||b=="-")print "-"; else printf "%+.2f", a-b}') CPU-s (of $((NCPU * SECS)) CPU-s on $NCPU cores)"
say "  per round, with / alone in the same round (others% alone -> with: pairs whose other load"
say "  differs much are noise, not the neighbour):"
for r in $(seq 1 "$RUNS"); do
  say "$(awk -v r="$r" '$2 == r && $1 == "alone" { ra = $4; pa = $6; oa = $24 } $2 == r && $1 == "with-neighbour" { rw = $4; pw = $6; ow = $24 }
    END { if (ra > 0 && rw > 0 && pa > 0) printf "    round %s: req/s %.3f, p99 %.3f (others%% %s -> %s)", r, rw / ra, pw / pa, oa, ow
          else printf "    round %s: n/a", r }' "$ROWS")"
done

say ""
say "aosd afterwards: alive $AOSD_ALIVE, RSS ${AOSD_RSS_END:-?} MB, $AOSD_FDS_END fds;" \
  "children: everything pid ${EV_PID0:-?} -> ${EV_PID1:-gone}$([ "${EV_PID0:-}" != "${EV_PID1:-}" ] && echo ' (RESTARTED)'), faulty pid ${FA_PID0:-?} -> ${FA_PID1:-gone}$([ "${FA_PID0:-}" != "${FA_PID1:-}" ] && echo ' (RESTARTED)')"
say "  registry health 1 s after the last load: everything ${HEALTH[everything]:-?}"
say "                                             faulty ${HEALTH[faulty]:-?}"
say "  a last echo through 'everything': $(grep -q 'Echo: hello' "$WORK/last-ev.txt" && echo ok || echo "FAILED: $(head -c 200 "$WORK/last-ev.txt")")"
say "  /metrics, aos_mcp_calls_total by server and outcome:"
grep -E '^aos_mcp_calls_total\{' "$WORK/metrics.txt" | grep -E 'server="(everything|faulty)"' |
  sed -E 's/^aos_mcp_calls_total\{(.*)\} (.*)$/\1 \2/' | sort | sed 's/^/    /' | tee -a "$REPORT"
say "  /metrics, rejections, breaker, queue, health (faulty and everything):"
grep -E '^aos_mcp_(rejected_total|breaker_state|queue_depth|server_health|server_up)\{' "$WORK/metrics.txt" |
  grep -E '"(everything|faulty)"' | sed 's/^/    /' | tee -a "$REPORT"
say "  aosd log: $(grep -c '"call failed' "$WORK/aosd.log") 'call failed' lines, $(grep -c 'anomaly' "$WORK/aosd.log") anomaly lines," \
  "$(grep -c '"server":"everything"' "$WORK/aosd.log" | tr -d ' ') lines naming 'everything'" \
  "($(grep '"server":"everything"' "$WORK/aosd.log" | grep -v '"stream":"stderr"' | grep -c '"level":"\(warn\|error\)"') warn/error)"
stop_aosd
if [ -f "$FSTATS" ]; then
  say "  faulty server's own counters (whole run, at exit): $(cat "$FSTATS")"
  say "    (delayed = calls left unanswered past timeout_ms; cancelled = of those, cancelled by aosd;"
  say "     late = never cancelled, answered after $((FTIMEOUT * 8)) ms)"
fi
say ""
say "CPU busy after the run, all stopped: $(cpu_busy_pct)% (on an idle machine: near 0); wall time $(($(date +%s) - START)) s"

mkdir -p "$RESULTS"
cp "$REPORT" "$RESULTS/neighbour-latest.txt"
rm -rf "$RESULTS/neighbour-raw"
cp -r "$RAW" "$RESULTS/neighbour-raw"
cp "$WORK/aosd.log" "$WORK/metrics.txt" "$WORK/registry.json" "$RESULTS/neighbour-raw/" 2>/dev/null
log "report: $RESULTS/neighbour-latest.txt, raw outputs: $RESULTS/neighbour-raw/"
ran=$(awk '$4 + 0 > 0' "$ROWS" | wc -l)
[ "$ran" -gt 0 ]
