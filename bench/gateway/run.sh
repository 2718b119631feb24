#!/usr/bin/env bash
# bench/gateway/run.sh - the gateway benchmark: aosd against the reference
# MCP gateways and against the two ceilings it cannot pass, in one run.
#
# Targets, each loaded by tests/tools/loadtest.sh (wrk closed loop, one MCP
# session, `tools/call echo {"message":"hello"}`), through
# bench/peers/baseline.sh:
#   aosd-everything  aosd -> server-everything over stdio (/mcp/servers/everything)
#   aosd-builtin     aosd's built-in echo, no upstream   (/mcp/servers/aos)
#   supergateway     supergateway --stateful -> server-everything over stdio
#   mcp-proxy        mcp-proxy -> server-everything over stdio
#                    (both started by bench/peers/peer-up.sh)
#   mhd_bare         bare libmicrohttpd fixed-reply responder (the HTTP ceiling)
# and, without HTTP:
#   stdio_ceiling    a C client driving server-everything's stdio directly
#                    with the same concurrency (the upstream ceiling)
# Rounds are interleaved (every target once per round) so that slow drift
# of the machine hits all targets alike; the table shows medians.
#
# aosd targets are skipped, with a message, while build/aosd is missing or
# does not answer /healthz (BENCH_REQUIRE_AOSD=1 makes that an error).
# Exit status: 0 when every target ran (misses against any expectation are
# reported, never failed); 1 when a target could not be run at all.
#
# Env: BENCH_RUNS (2) rounds, BENCH_SECONDS (10) measured seconds per load,
#      BENCH_WARMUP (5) warm-up seconds, BENCH_CONC (16) connections / calls
#      in flight, BENCH_PORT (3301; uses PORT..PORT+3), BENCH_BUILD (<repo>/build),
#      BENCH_RESULTS (bench/gateway/results), BENCH_REQUIRE_AOSD (0),
#      and what loadtest.sh / peer-up.sh read. The npm packages (server-
#      everything in tests/tools, the peers in bench/peers) are installed by
#      scripts/install-deps --bench (make bench does it).
set -u
case "${1:-}" in -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOLS=$ROOT/tests/tools
PEERS=$ROOT/bench/peers
RUNS=${BENCH_RUNS:-2}
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-5}
CONC=${BENCH_CONC:-16}
PORT=${BENCH_PORT:-3301}
BUILD=${BENCH_BUILD:-$ROOT/build}
RESULTS=${BENCH_RESULTS:-$HERE/results}
REQUIRE_AOSD=${BENCH_REQUIRE_AOSD:-0}

exec 3>&2 # progress goes to the original stderr, even from a trap run inside a redirection
log() { echo "[bench] $*" >&3; }
die() { log "$*"; exit 1; }

for v in RUNS SECS WARMUP CONC PORT; do
  case "${!v}" in '' | *[!0-9]*) die "BENCH_$v must be a whole number, got '${!v}'" ;; esac
done
if [ "$RUNS" -lt 1 ] || [ "$SECS" -lt 1 ] || [ "$CONC" -lt 1 ]; then
  die "BENCH_RUNS, BENCH_SECONDS, BENCH_CONC must be >= 1"
fi
# shellcheck source=../../tests/tools/lib.sh
. "$TOOLS/lib.sh" # tools_version, tools_wait_http
SERVER_EVERYTHING_VERSION=$(tools_version @modelcontextprotocol/server-everything)
SUPERGATEWAY_VERSION=$(tools_version supergateway "$PEERS/node_modules")
MCP_PROXY_VERSION=$(tools_version mcp-proxy "$PEERS/node_modules")
[ -n "$SERVER_EVERYTHING_VERSION" ] && [ -n "$SUPERGATEWAY_VERSION" ] && [ -n "$MCP_PROXY_VERSION" ] ||
  die "npm packages missing in tests/tools or bench/peers: run scripts/install-deps --bench"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aos-bench.XXXXXX")
REPORT=$WORK/report.txt
export MCP_PEER_STATE=$WORK/peers # our peers only: peer-down never touches others'
export PEER_TTL=${PEER_TTL:-1200}  # peers die by themselves even if we are SIGKILLed
export LOADTEST_WARMUP=$WARMUP

# ---------------------------------------------------------------- cleanup
AOSD_PID='' MHD_PID='' CHILD='' PEER_PORTS=()
tree() { local p c; for p in "$@"; do echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done; done; }
# kill_tree PID: TERM it and its descendants, KILL after 3 s. The tree is
# frozen first so that nothing forks meanwhile, and a baseline.sh in it gets
# KILL: it traps TERM without exiting and would go on to its next load.
kill_tree() {
  local pids p
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 0
  pids=$(tree "$1")
  for p in $pids; do kill -STOP "$p" 2>/dev/null; done
  pids=$(tree "$1")
  for p in $pids; do
    if grep -qa 'baseline\.sh' "/proc/$p/cmdline" 2>/dev/null; then
      kill -KILL "$p" 2>/dev/null
    else
      kill -TERM "$p" 2>/dev/null
    fi
  done
  for p in $pids; do kill -CONT "$p" 2>/dev/null; done
  for _ in $(seq 1 12); do
    local alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.25
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
}
stop_all() {
  kill_tree "$CHILD"
  kill_tree "$AOSD_PID"
  kill_tree "$MHD_PID"
  for p in "${PEER_PORTS[@]}"; do "$PEERS/peer-down.sh" "$p" >/dev/null 2>&1; done
  CHILD='' AOSD_PID='' MHD_PID='' PEER_PORTS=()
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

# ---------------------------------------------------------------- helpers
BIN=$BUILD/bench
if [ ! -x "$BIN/stdio_ceiling" ] || [ ! -x "$BIN/mhd_bare" ]; then
  log "building bench helpers in $BUILD"
  if ! { [ -f "$BUILD/Makefile" ] || [ -f "$BUILD/build.ninja" ] ||
    cmake -S "$ROOT" -B "$BUILD" >"$WORK/build.log" 2>&1; } ||
    ! cmake --build "$BUILD" --target stdio_ceiling mhd_bare >>"$WORK/build.log" 2>&1; then
    log "building the bench helpers failed:"
    tail -15 "$WORK/build.log" >&2
  fi
fi

FAILED=() # targets that could not be run at all
NAMES=()  # targets loaded through baseline.sh, in order
TARGETS=() ROOTPID=()

for p in $PORT $((PORT + 1)) $((PORT + 2)) $((PORT + 3)); do
  port_free "$p" || die "port $p is in use (set BENCH_PORT)"
done

START=$(date +%s)
say "# AOS gateway benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(nproc) cores, $(awk '/^model name/{sub(/.*: /,""); print; exit}' /proc/cpuinfo), CPU busy before start: $(cpu_busy_pct)%"
say "load: tests/tools/loadtest.sh, wrk C=$CONC, ${SECS} s measured after ${WARMUP} s warm-up, tools/call echo {\"message\":\"hello\"}, one session; rounds: $RUNS, interleaved"
say "peers: supergateway $SUPERGATEWAY_VERSION --stateful, mcp-proxy $MCP_PROXY_VERSION, server-everything $SERVER_EVERYTHING_VERSION (stdio)"

# ---------------------------------------------------------------- aosd
AOSD=$BUILD/aosd
AOSD_STATE=skipped
AOSD_NOTE=
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
if [ ! -x "$AOSD" ]; then
  AOSD_NOTE="$AOSD not built"
else
  mkdir -p "$WORK/aosd-data"
  "$AOSD" --listen "127.0.0.1:$PORT" --data-dir "$WORK/aosd-data" --bootstrap-token "$TOKEN" \
    >"$WORK/aosd.log" 2>&1 </dev/null &
  AOSD_PID=$!
  up=0
  for _ in $(seq 1 40); do
    kill -0 "$AOSD_PID" 2>/dev/null || break
    if curl -fs -o /dev/null -m 1 "http://127.0.0.1:$PORT/healthz"; then up=1; break; fi
    sleep 0.25
  done
  if [ $up = 0 ]; then
    if kill -0 "$AOSD_PID" 2>/dev/null; then how="did not answer /healthz within 10 s"; else how="exited without answering /healthz"; fi
    AOSD_NOTE="$AOSD $how (not wired yet?); its output: $(head -c 200 "$WORK/aosd.log" | tr '\n' ' ')"
    kill_tree "$AOSD_PID"
    AOSD_PID=
  else
    code=$(curl -s -o "$WORK/register.txt" -w '%{http_code}' -m 30 -X POST \
      -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      "http://127.0.0.1:$PORT/mcp/registry" \
      -d '{"name":"everything","transport":"stdio","command":"'"$TOOLS"'/mcp-server.sh","args":["everything"]}')
    case "$code" in
      2??)
        AOSD_STATE=up
        export LOADTEST_HEADERS="Authorization: Bearer $TOKEN" # other targets ignore it
        NAMES+=(aosd-everything aosd-builtin)
        TARGETS+=("aosd-everything=http://127.0.0.1:$PORT/mcp/servers/everything@$AOSD_PID"
                  "aosd-builtin=http://127.0.0.1:$PORT/mcp/servers/aos@$AOSD_PID")
        ROOTPID+=("$AOSD_PID" "$AOSD_PID")
        ;;
      *)
        AOSD_STATE=failed
        AOSD_NOTE="registering the upstream failed: HTTP $code $(head -c 200 "$WORK/register.txt")"
        FAILED+=(aosd-everything aosd-builtin)
        ;;
    esac
  fi
fi
if [ "$AOSD_STATE" = skipped ]; then
  say "aosd: SKIPPED - $AOSD_NOTE"
  [ "$REQUIRE_AOSD" = 1 ] && FAILED+=(aosd-everything aosd-builtin)
elif [ "$AOSD_STATE" = failed ]; then
  say "aosd: FAILED - $AOSD_NOTE"
else
  say "aosd: up, pid $AOSD_PID, upstream 'everything' registered"
fi

# ---------------------------------------------------------------- peers
for kind in supergateway mcp-proxy; do
  case $kind in supergateway) pt=$((PORT + 2)) ;; *) pt=$((PORT + 3)) ;; esac
  log "starting $kind on port $pt"
  PEER_PORTS+=("$pt")
  pid=$("$PEERS/peer-up.sh" "$pt" "$kind" everything 2>"$WORK/peer-$kind.log" | tail -1)
  if [ -z "$pid" ]; then
    say "$kind: FAILED to start: $(tail -3 "$WORK/peer-$kind.log" | tr '\n' ' ')"
    FAILED+=("$kind")
    continue
  fi
  NAMES+=("$kind")
  TARGETS+=("$kind=http://127.0.0.1:$pt/mcp@$pid")
  ROOTPID+=("$pid")
done

# ---------------------------------------------------------------- mhd_bare
if [ -x "$BIN/mhd_bare" ]; then
  "$BIN/mhd_bare" --port $((PORT + 1)) >"$WORK/mhd.log" 2>&1 </dev/null &
  MHD_PID=$!
  if tools_wait_http "http://127.0.0.1:$((PORT + 1))/mcp" 10; then
    NAMES+=(mhd_bare)
    TARGETS+=("mhd_bare=http://127.0.0.1:$((PORT + 1))/mcp@$MHD_PID")
    ROOTPID+=("$MHD_PID")
  else
    say "mhd_bare: FAILED to start: $(head -c 200 "$WORK/mhd.log")"
    FAILED+=(mhd_bare)
  fi
else
  say "mhd_bare: FAILED - $BIN/mhd_bare not built"
  FAILED+=(mhd_bare)
fi
HAVE_CEILING=0
if [ -x "$BIN/stdio_ceiling" ]; then HAVE_CEILING=1; else
  say "stdio_ceiling: FAILED - $BIN/stdio_ceiling not built"
  FAILED+=(stdio_ceiling)
fi

# ---------------------------------------------------------------- rounds
# One row per target and round: name round rps p50 p99 errors gw_rss_mb
# tree_rss_mb cpu_s loadgen_cpu_s ("-" where not measured).
ROWS=$WORK/rows.txt
: >"$ROWS"
parse_loadtest() { # FILE ROOTPID -> one row tail
  awk -v root="$2" '
    function kv(k,   i, a) { for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
    /^loadtest:/  { rps = $2; p50 = $5; p99 = $8; err = $11 }
    /^mem: /      { if (kv("pid") == root) gw = kv("rss_max_kb") }
    /^mem-busy:/  { busy = kv("rss_max_kb") }
    /^mem-total:/ { cpu = kv("cpu_s") }
    /^loadgen:/   { lg = kv("cpu_s") }
    END {
      if (rps == "") { rps = 0; p50 = 0; p99 = 0; err = 1 }
      printf "%s %s %s %s %s %s %s %s\n", rps, p50, p99, err,
        gw == "" ? "-" : sprintf("%.1f", gw / 1024), busy == "" ? "-" : sprintf("%.1f", busy / 1024),
        cpu == "" ? "-" : cpu, lg == "" ? "-" : lg
    }' "$1"
}
# a load run that died says why only on stderr, which baseline.sh drops
why_failed() {
  local url=${1%@*}
  LOADTEST_WARMUP=0 timeout 90 "$TOOLS/loadtest.sh" "$url" 1 1 2>&1 >/dev/null | grep '^\[loadtest' | tail -1
}

PER_ROUND=$(( ${#TARGETS[@]} * (SECS + WARMUP + 90) + 60 ))
BUSY=()
for r in $(seq 1 "$RUNS"); do
  BUSY+=("round $r: $(cpu_busy_pct)%")
  if [ ${#TARGETS[@]} -gt 0 ]; then
    log "round $r/$RUNS: ${NAMES[*]}"
    out=$WORK/raw/round$r
    mkdir -p "$out"
    # TMPDIR: loadtest.sh's scratch dirs land in $WORK, removed even if a
    # load is interrupted.
    mkdir -p "$WORK/tmp"
    TMPDIR=$WORK/tmp \
      BASELINE_PEERS="" BASELINE_RUNS=1 BASELINE_CONC=$CONC BASELINE_SECS=$SECS BASELINE_OUT=$out \
      run_bg "$PER_ROUND" "$PEERS/baseline.sh" "${TARGETS[@]}" >"$out/baseline-table.txt" 2>&1
    for j in "${!NAMES[@]}"; do
      n=${NAMES[$j]}
      row=$(parse_loadtest "$out/$n-run1.txt" "${ROOTPID[$j]}" 2>/dev/null || echo "0 0 0 1 - - - -")
      echo "$n $r $row" >>"$ROWS"
      case "$row" in 0\ *) log "$n round $r did not run: $(why_failed "${TARGETS[$j]#*=}")" ;; esac
    done
  fi
  if [ $HAVE_CEILING = 1 ]; then
    log "round $r/$RUNS: stdio_ceiling"
    run_bg $((SECS + WARMUP + 120)) "$BIN/stdio_ceiling" --seconds "$SECS" --warmup "$WARMUP" \
      --inflight "$CONC" --backend "$TOOLS/mcp-server.sh" --backend-arg everything \
      >"$WORK/ceiling-$r.txt" 2>"$WORK/ceiling-$r.err"
    mkdir -p "$WORK/raw/round$r"
    cat "$WORK/ceiling-$r.txt" "$WORK/ceiling-$r.err" >"$WORK/raw/round$r/stdio_ceiling.txt"
    awk '
      /^stdio_ceiling-detail:/ { for (i = 2; i <= NF; i++) { split($i, a, "="); d[a[1]] = a[2] } }
      /^stdio_ceiling:/ { rps = $2; p50 = $5; p99 = $8 }
      END {
        if (rps == "" || rps == 0) { print "0 0 0 1 - - - -"; exit }
        printf "%s %s %s %s - - %s -\n", rps, p50, p99, d["errors"], d["server_cpu_s"]
      }' "$WORK/ceiling-$r.txt" | sed "s/^/stdio_ceiling $r /" >>"$ROWS"
    grep -q "^stdio_ceiling $r 0 " "$ROWS" &&
      log "stdio_ceiling round $r did not run: $(tail -2 "$WORK/ceiling-$r.err" | tr '\n' ' ')"
  fi
done

# ---------------------------------------------------------------- report
ALL=("${NAMES[@]}")
[ $HAVE_CEILING = 1 ] && ALL+=(stdio_ceiling)
say ""
say "CPU busy in the second before each round (other work on the machine): ${BUSY[*]}"
say "per round (cpu_s: CPU seconds of the target and its children during the ${SECS} s run; loadgen: wrk's):"
# calls per CPU-second of the target (its children included, the load
# generator not): less sensitive than req/s to CPU taken by other work.
awk -v secs="$SECS" '{ printf "%s %s\n", $0, ($9 != "-" && $9 > 0) ? sprintf("%.0f", $3 * secs / $9) : "-" }' \
  "$ROWS" >"$ROWS.eff" && mv "$ROWS.eff" "$ROWS"
hdr() { say "$(printf '%-16s %5s %10s %8s %8s %6s %9s %10s %7s %9s %10s' "$@")"; }
hdr target round req/s p50_ms p99_ms errors gw_rss_mb tree_rss_mb cpu_s loadgen_s req/cpu_s
while read -r line; do
  # shellcheck disable=SC2086
  hdr $line
done < <(sort -s -k2,2n "$ROWS")

# Medians over the rounds that ran (rps > 0); errors summed over all rounds.
MED=$WORK/medians.txt
awk '
  function med(s,   n, a, i, j, t) {
    n = split(s, a, " ")
    if (n == 0) return "-"
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    n = $1; runs[n]++; err[n] += $6
    if ($3 + 0 <= 0) next
    ok[n]++
    for (k = 3; k <= 11; k++) if ($k != "-") v[n, k] = v[n, k] " " $k
  }
  END {
    for (n in runs) {
      printf "%s %d/%d", n, ok[n], runs[n]
      for (k = 3; k <= 11; k++) {
        if (k == 6) { printf " %d", err[n]; continue }
        m = med(v[n, k]); printf(m == "-" ? " -" : (k == 11 ? " %.0f" : k == 3 || k == 7 || k == 8 ? " %.1f" : " %.2f"), m)
      }
      printf "\n"
    }
  }' "$ROWS" >"$MED"

say ""
say "medians (runs ok/total; req/s p50 p99 median; errors summed; RSS = max under load, gw = the"
say "gateway process alone, tree = with the children that worked during the run):"
hdr target runs req/s p50_ms p99_ms errors gw_rss_mb tree_rss_mb cpu_s loadgen_s req/cpu_s
for n in aosd-everything aosd-builtin supergateway mcp-proxy stdio_ceiling mhd_bare; do
  line=$(awk -v n="$n" '$1 == n' "$MED")
  if [ -n "$line" ]; then
    # shellcheck disable=SC2086
    hdr $line
  elif [ "$n" = aosd-everything ] || [ "$n" = aosd-builtin ]; then
    say "$(printf '%-16s %s' "$n" "aosd $AOSD_STATE")"
  fi
done

rps_of() { awk -v n="$1" '$1 == n && $3 + 0 > 0 {print $3}' "$MED"; }
eff_of() { awk -v n="$1" '$1 == n && $11 + 0 > 0 {print $11}' "$MED"; }
ratio() { # ratio LABEL A B
  local a b ea eb e=""
  a=$(rps_of "$2"); b=$(rps_of "$3"); ea=$(eff_of "$2"); eb=$(eff_of "$3")
  if [ -n "$ea" ] && [ -n "$eb" ]; then
    e=$(printf '; per CPU-second %.3f' "$(awk -v a="$ea" -v b="$eb" 'BEGIN{print a/b}')")
  fi
  if [ -n "$a" ] && [ -n "$b" ]; then
    say "$(printf '  %-40s %6.3f   (%s / %s req/s%s)' "$1" "$(awk -v a="$a" -v b="$b" 'BEGIN{print a/b}')" "$a" "$b" "$e")"
  else
    say "$(printf '  %-40s %6s' "$1" "n/a")$([ -z "$a" ] && echo "   ($2 did not run)" || echo "   ($3 did not run)")"
  fi
}
say ""
say "ratios of median req/s:"
ratio "aosd-everything / supergateway" aosd-everything supergateway
ratio "aosd-everything / mcp-proxy" aosd-everything mcp-proxy
ratio "aosd-everything / stdio_ceiling" aosd-everything stdio_ceiling
ratio "aosd-builtin / mhd_bare" aosd-builtin mhd_bare
ratio "supergateway / stdio_ceiling (context)" supergateway stdio_ceiling
ratio "mcp-proxy / stdio_ceiling (context)" mcp-proxy stdio_ceiling

for n in "${ALL[@]}"; do
  ok=$(awk -v n="$n" '$1 == n {split($2, a, "/"); print a[1]}' "$MED")
  [ "${ok:-0}" -gt 0 ] || FAILED+=("$n")
done
stop_all
say ""
say "CPU busy after the run, all targets stopped: $(cpu_busy_pct)% (on an idle machine: near 0); wall time $(($(date +%s) - START)) s"
if [ ${#FAILED[@]} -gt 0 ]; then
  say "NOT RUN: ${FAILED[*]}"
fi

mkdir -p "$RESULTS"
cp "$REPORT" "$RESULTS/latest.txt"
rm -rf "$RESULTS/latest-raw"
[ -d "$WORK/raw" ] && cp -r "$WORK/raw" "$RESULTS/latest-raw"
log "report: $RESULTS/latest.txt, raw loadtest outputs: $RESULTS/latest-raw/"
[ ${#FAILED[@]} -eq 0 ]
