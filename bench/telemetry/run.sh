#!/usr/bin/env bash
# bench/telemetry/run.sh - the OTLP benchmark (issue 18), in one run:
#
# Ingest: a fresh release aosd (empty data dir) loaded by otlp_load.mjs
# (BENCH_CONNS connections in a closed loop, each POST /v1/traces an
# ExportTraceServiceRequest in protobuf of 100 spans; a span counts once
# its 200 came, which aosd sends after the commit), beside spans_limit:
# the same rows inserted straight into SQLite with the spans table of
# migration 0008 and aosd's pragmas, one transaction per 100 (the
# ceiling). Target: >= 20,000 spans/s, durable.
#
# Gateway overhead: aosd's built-in echo (/mcp/servers/aos) loaded by
# tests/tools/loadtest.sh (wrk, one MCP session), every trace recorded
# (--trace-sample 1), export off vs export on to an OTLP sink
# (otlp_sink, a C receiver on libmicrohttpd's one thread that answers 200
# and counts the spans - as cheap as a receiver gets, so that the
# overhead is aosd's; the node sink used before cost ~3 % of a request on
# the same two cores) in http/protobuf. Rounds alternate
# off and on so that drift of a shared machine hits both; medians, and
# the overhead in %. Target: <= 3 %. After each "on" run the spans the
# exporter sent and dropped are read from /metrics (it must keep up).
#
# Waterfall: one trace of BENCH_BIG_TRACE (10,000) spans ingested into a
# fresh aosd, then fetched whole (GET /api/traces/:id?limit=N, what the
# Monitor page's waterfall asks) BENCH_FETCHES (10) times: p50 and max
# from request to last byte, and aosd's RSS growth (VmRSS after the
# fetches minus before the ingest; VmHWM the peak). Targets: <= 100 ms,
# <= 50 MB. Topology: GET /api/topology over the window holding that
# trace (BENCH_BIG_TRACE spans, all examined), BENCH_FETCHES times with
# curl: p50 and max in ms (no target; the route reads at most 20,000).
#
# Loopback only; every process started here is stopped on exit and the
# temporary directory removed. A few minutes by default. Run it on a quiet
# machine, alone (no other benchmark or test suite beside it).
#
# Env: BENCH_RUNS (2) rounds, BENCH_SECONDS (8) measured seconds per load,
#      BENCH_WARMUP (2), BENCH_CONNS (4) ingest connections, BENCH_CONC (16)
#      gateway connections, BENCH_PORT (3501; uses PORT and PORT+1),
#      BENCH_LIMIT_ROWS (300000), BENCH_BIG_TRACE (10000), BENCH_FETCHES (10),
#      BENCH_BUILD (<repo>/build),
#      BENCH_RESULTS (bench/telemetry/results).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${BENCH_RUNS:-2}
SECS=${BENCH_SECONDS:-8}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNS:-4}
CONC=${BENCH_CONC:-16}
PORT=${BENCH_PORT:-3501}
LIMIT_ROWS=${BENCH_LIMIT_ROWS:-300000}
BIG=${BENCH_BIG_TRACE:-10000}
FETCHES=${BENCH_FETCHES:-10}
BUILD=${BENCH_BUILD:-$ROOT/build}
RESULTS=${BENCH_RESULTS:-$HERE/results}
TOKEN=bench-telemetry-owner-token-0123456789

log() { echo "[bench] $*" >&2; }
die() { log "$*"; exit 1; }
for v in RUNS SECS WARMUP CONNS CONC PORT LIMIT_ROWS BIG FETCHES; do
  case "${!v}" in '' | *[!0-9]*) die "BENCH_$v must be a whole number, got '${!v}'" ;; esac
done
[ "$RUNS" -ge 1 ] && [ "$SECS" -ge 1 ] && [ "$CONNS" -ge 1 ] && [ "$CONC" -ge 1 ] ||
  die "RUNS, SECONDS, CONNS, CONC must be >= 1"

AOSD=$BUILD/aosd
LIMIT=$BUILD/bench/spans_limit
SINK=$BUILD/bench/otlp_sink
if [ ! -x "$AOSD" ] || [ ! -x "$LIMIT" ] || [ ! -x "$SINK" ]; then
  log "building aosd, spans_limit and otlp_sink in $BUILD"
  { [ -f "$BUILD/Makefile" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; } &&
    cmake "$BUILD" >/dev/null && cmake --build "$BUILD" -j "$(nproc)" --target aosd spans_limit otlp_sink >/dev/null ||
    die "build failed"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aos-bench-telemetry.XXXXXX")
REPORT=$WORK/report.txt
AOSD_PID=''
SINK_PID=''
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
stop_aosd() { stop_pid "$AOSD_PID"; AOSD_PID=''; }
cleanup() {
  trap - EXIT INT TERM
  stop_aosd
  stop_pid "$SINK_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
. "$HERE/../lib.sh" # cpu_busy_pct

# start_aosd DATA_DIR ARGS...: a release aosd on PORT; waits for /healthz.
start_aosd() {
  local dir=$1
  shift
  curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/healthz" && die "port $PORT is taken (set BENCH_PORT)"
  "$AOSD" --listen "127.0.0.1:$PORT" --data-dir "$dir" --bootstrap-token "$TOKEN" --log-level warn "$@" \
    >"$WORK/aosd.out" 2>>"$WORK/aosd.err" &
  AOSD_PID=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/healthz" && return 0
    kill -0 "$AOSD_PID" 2>/dev/null || die "aosd exited: $(tail -3 "$WORK/aosd.err")"
    sleep 0.1
  done
  die "aosd did not answer /healthz"
}

metric() { # metric NAME [LABELS]: its value on aosd's /metrics, 0 if absent
  local n=$1
  [ -n "${2:-}" ] && n="$1{$2}"
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" |
    N="$n" awk '$1 == ENVIRON["N"] {print $2; f=1} END {if (!f) print 0}'
}

median() { sort -g | awk '{v[NR]=$1} END{if(NR==0){print 0} else if(NR%2){print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }

say "telemetry benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), busy $(cpu_busy_pct)% before the run; uptime: $(uptime)"
say "ingest: $CONNS connections, batches of 100, ${WARMUP}s warm-up + ${SECS}s; limit: $LIMIT_ROWS rows; gateway: $CONC connections, ${SECS}s; $RUNS rounds"
say ""

# ---------------------------------------------------------------- ingest
ING=() LIM=()
say "round  limit_spans/s  aosd_spans/s  ratio  p50_ms  p99_ms  errors  busy%"
for round in $(seq 1 "$RUNS"); do
  busy=$(cpu_busy_pct)
  rm -f "$WORK"/limit.db*
  lim=$("$LIMIT" --schema "$ROOT/src/store/migrations/0008_spans.sql" --db "$WORK/limit.db" \
    --rows "$LIMIT_ROWS" --batch 100 | sed -n 's/.* = \([0-9]*\) spans\/s/\1/p')
  rm -f "$WORK"/limit.db*
  rm -rf "$WORK/ingest"
  start_aosd "$WORK/ingest"
  out=$(timeout $((WARMUP + SECS + 60)) node "$HERE/otlp_load.mjs" --url "http://127.0.0.1:$PORT" \
    --token "$TOKEN" --conns "$CONNS" --seconds "$SECS" --warmup "$WARMUP" --batch 100)
  stored=$(metric aos_otlp_ingest_accepted_total 'signal="traces"')
  stop_aosd
  sps=$(sed -n 's/.* = \([0-9]*\) spans\/s.*/\1/p' <<<"$out")
  p50=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' <<<"$out")
  p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$out")
  errs=$(sed -n 's/.*errors \([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$sps" ] && [ -n "$lim" ] || die "ingest round $round failed: $out"
  ING+=("$sps") LIM+=("$lim")
  say "$(printf '%5s  %13s  %12s  %5.2f  %6s  %6s  %6s  %5s' "$round" "$lim" "$sps" \
    "$(awk -v a="$sps" -v b="$lim" 'BEGIN{print a/b}')" "$p50" "$p99" "$errs" "$busy")  (stored: $stored)"
done
ING_MED=$(printf '%s\n' "${ING[@]}" | median)
LIM_MED=$(printf '%s\n' "${LIM[@]}" | median)
say "ingest median: aosd $ING_MED spans/s, SQLite limit $LIM_MED spans/s ($(awk -v a="$ING_MED" -v b="$LIM_MED" 'BEGIN{printf "%.0f", 100*a/b}') %); target >= 20000"
say ""

# ---------------------------------------------------------------- gateway
: >"$WORK/sink.out"
"$SINK" --port $((PORT + 1)) >"$WORK/sink.out" 2>&1 &
SINK_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/sink.out" && break; sleep 0.1; done
OFF=() ON=()
say "round  export  rps  p50_ms  p99_ms  exported  dropped  busy%"
for round in $(seq 1 "$RUNS"); do
  for mode in off on; do
    busy=$(cpu_busy_pct)
    rm -rf "$WORK/gw"
    extra=()
    [ "$mode" = on ] && extra=(--otlp-endpoint "http://127.0.0.1:$((PORT + 1))")
    start_aosd "$WORK/gw" --trace-sample 1 "${extra[@]}"
    out=$(LOADTEST_HEADERS="Authorization: Bearer $TOKEN" LOADTEST_WARMUP="$WARMUP" \
      timeout $((WARMUP + SECS + 60)) "$ROOT/tests/tools/loadtest.sh" \
      "http://127.0.0.1:$PORT/mcp/servers/aos" "$CONC" "$SECS" 2>&1 | tail -1)
    sleep 2 # the last spans: stored within 100 ms, exported within 1 s
    sent=$(metric aos_otlp_export_spans_total)
    dropped=$(metric aos_otlp_export_spans_dropped_total 'reason="queue"')
    stop_aosd
    rps=$(sed -n 's/^loadtest: \([0-9.]*\) rps.*/\1/p' <<<"$out")
    p50=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' <<<"$out")
    p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$out")
    [ -n "$rps" ] || die "gateway round $round ($mode) failed: $out"
    if [ "$mode" = on ]; then ON+=("$rps"); else OFF+=("$rps"); fi
    say "$(printf '%5s  %6s  %s  %s  %s  %s  %s  %s' "$round" "$mode" "$rps" "$p50" "$p99" "$sent" "$dropped" "$busy")"
  done
done
OFF_MED=$(printf '%s\n' "${OFF[@]}" | median)
ON_MED=$(printf '%s\n' "${ON[@]}" | median)
say "gateway median: export off $OFF_MED rps, on $ON_MED rps: overhead $(awk -v a="$OFF_MED" -v b="$ON_MED" 'BEGIN{printf "%.1f", 100*(a-b)/a}') %; target <= 3 %"
say ""

# ---------------------------------------------------------------- waterfall
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
rm -rf "$WORK/big"
start_aosd "$WORK/big"
rss0=$(rss_kb "$AOSD_PID" VmRSS)
out=$(timeout 300 node "$HERE/otlp_load.mjs" --url "http://127.0.0.1:$PORT" --token "$TOKEN" \
  --big-trace "$BIG" --fetches "$FETCHES" 2>&1 | tail -1)
rss1=$(rss_kb "$AOSD_PID" VmRSS)
hwm=$(rss_kb "$AOSD_PID" VmHWM)
# the topology of the window that holds the trace: every span examined
now=$(date +%s)
topo_ms=()
for _ in $(seq 1 "$FETCHES"); do
  t=$(curl -s -o "$WORK/topo.json" -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/api/topology?from=$((now - 3600))&to=$((now + 60))") || die "topology failed"
  topo_ms+=("$(awk -v t="$t" 'BEGIN{printf "%.1f", t * 1000}')")
done
topo_spans=$(sed -n 's/.*"spans":\([0-9]*\).*/\1/p' "$WORK/topo.json")
stop_aosd
say "$out"
say "$(awk -v a="$rss0" -v b="$rss1" -v h="$hwm" 'BEGIN{printf "waterfall: aosd RSS %.1f MB before the ingest, %.1f MB after the fetches (growth %.1f MB; peak %.1f MB); targets: fetch <= 100 ms, growth <= 50 MB", a/1024, b/1024, (b-a)/1024, h/1024}')"
say "topology: GET /api/topology over $topo_spans spans, p50 $(printf '%s\n' "${topo_ms[@]}" | median) ms, max $(printf '%s\n' "${topo_ms[@]}" | sort -n | tail -1) ms ($FETCHES fetches)"
stop_pid "$SINK_PID"
SINK_PID=''
say "$(cat "$WORK/sink.out" | tail -1)"
say "after: busy $(cpu_busy_pct)%; uptime: $(uptime)"

mkdir -p "$RESULTS"
cp "$REPORT" "$RESULTS/telemetry-$(date -u +%Y%m%dT%H%M%SZ).txt"
