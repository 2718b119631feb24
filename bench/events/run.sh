#!/usr/bin/env bash
# bench/events/run.sh - the value-event stream under load: 1,000 SSE
# subscribers on GET /agent/events over loopback, events published one per
# POST /api/events, publish -> receive latency measured by events_load.c.
#
#   (a) fanout   every subscriber watches every value event; 100 events/s,
#                so 100,000 deliveries/s            (target p99 <= 10 ms)
#   (b) pertask  subscriber i filters on trace "task-<i>"; 1,000 events/s in
#                all, each to one subscriber          (target p99 <= 5 ms)
#
# Targets, each loaded the same way in the same run, interleaved over
# BENCH_RUNS rounds so that drift of a shared machine hits them all:
#   aosd      build/aosd on a fresh data dir (every event durable in SQLite
#             before it is sent)
#   ceiling   build/bench/fanout_ceiling: the least a server has to do (an
#             epoll loop, the same io_uring sends as aosd's writers, nothing
#             on disk, no auth, no JSON parsing): this machine's limit
#   node      bench/events/peer_node.mjs: the same fan-out in node:http, as a
#             Node gateway would do it (in memory)
# Each load: BENCH_WARMUP s (not measured) then BENCH_SECONDS s (measured),
# then the target is stopped. Reported per load: events sent in the window,
# deliveries (and any lost), latency percentiles, the spread of one event
# (first and last subscriber to get it), POST latency, the target's CPU
# (cores = CPU-seconds / seconds) and peak RSS, the load generator's own
# CPU, and whether aosd met the target. Then medians over rounds and the
# ratios aosd / ceiling and node / aosd of the p99.
#
# Env: BENCH_SUBS (1000), BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_RUNS (2),
#      BENCH_PORT (3330; ceiling PORT+1, node PORT+2), BENCH_BUILD
#      (<repo>/build: aosd, bench/events_load, bench/fanout_ceiling),
#      BENCH_RESULTS (bench/events/results), BENCH_MODES ("fanout pertask"),
#      BENCH_TARGETS ("aosd ceiling node"), BENCH_FANOUT_RATE (100),
#      BENCH_PERTASK_RATE (1000), BENCH_AOSD_ARGS (extra aosd arguments, e.g.
#      "--http-writers 1"), BENCH_CEILING_ARGS (e.g. "--threads 1").
# Bounded: every step has a timeout; every process started here is stopped
# on exit (Ctrl-C included), and the temporary data dirs are removed.
# Exit status: 0 when every load ran (targets missed are reported, not
# failed); 1 when one could not run.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
SUBS=${BENCH_SUBS:-1000}
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
RUNS=${BENCH_RUNS:-2}
PORT=${BENCH_PORT:-3330}
RESULTS=${BENCH_RESULTS:-$HERE/results}
MODES=${BENCH_MODES:-fanout pertask}
TARGETS=${BENCH_TARGETS:-aosd ceiling node}
FANOUT_RATE=${BENCH_FANOUT_RATE:-100}
PERTASK_RATE=${BENCH_PERTASK_RATE:-1000}
TOKEN=bench-events-token-0123456789abcdef

log() { echo "[bench/events] $*" >&2; }
die() { log "$*"; exit 1; }

for v in SUBS SECS WARMUP RUNS PORT FANOUT_RATE PERTASK_RATE; do
  case "${!v}" in '' | *[!0-9]*) die "BENCH_$v must be a whole number, got '${!v}'" ;; esac
done
[ "$RUNS" -ge 1 ] || die "BENCH_RUNS must be >= 1"
AOSD=$BUILD/aosd
LOAD=$BUILD/bench/events_load
CEILING=$BUILD/bench/fanout_ceiling
[ -x "$LOAD" ] || die "no $LOAD (run: make build)"
for t in $TARGETS; do
  case "$t" in
    aosd) [ -x "$AOSD" ] || die "no $AOSD (run: make build)" ;;
    ceiling) [ -x "$CEILING" ] || die "no $CEILING (run: make build)" ;;
    node) command -v node >/dev/null || die "no node for the node peer (BENCH_TARGETS without node)" ;;
    *) die "unknown target '$t' (aosd, ceiling, node)" ;;
  esac
done

# One socket per subscriber on each side, plus the publisher's.
need=$((SUBS + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
    ulimit -n "$need" || die "unable to raise ulimit -n to $need"
  else
    die "ulimit -n is $(ulimit -n) (hard $hard); $need needed for $SUBS subscribers"
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aos-bench-events.XXXXXX")
TARGET_PID='' LOAD_PID=''
stop_pid() { # PID: TERM, then KILL after 10 s
  local p=$1 i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
}
cleanup() {
  stop_pid "$LOAD_PID"
  stop_pid "$TARGET_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

machine() {
  local cores model busy
  cores=$(nproc)
  model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  read -r _ a b c d _ < /proc/stat; s1=$((a + b + c)); t1=$((a + b + c + d))
  sleep 1
  read -r _ a b c d _ < /proc/stat; s2=$((a + b + c)); t2=$((a + b + c + d))
  busy=$(( (s2 - s1) * 100 / (t2 - t1 > 0 ? t2 - t1 : 1) ))
  echo "machine: $cores cores, $model, ${busy}% busy in the second before the run, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

port_of() { # TARGET -> its port
  case "$1" in aosd) echo "$PORT" ;; ceiling) echo $((PORT + 1)) ;; node) echo $((PORT + 2)) ;; esac
}

start_target() { # TARGET TAG -> TARGET_PID, or fails
  local t=$1 tag=$2 port dir
  port=$(port_of "$t")
  case "$t" in
    aosd)
      dir=$WORK/data-$tag
      mkdir -p "$dir"
      "$AOSD" --listen "127.0.0.1:$port" --data-dir "$dir" --bootstrap-token "$TOKEN" \
        --log-level warn ${BENCH_AOSD_ARGS:-} >"$WORK/$tag.log" 2>&1 &
      ;;
    ceiling) "$CEILING" --port "$port" ${BENCH_CEILING_ARGS:-} >"$WORK/$tag.log" 2>&1 & ;;
    node) node "$HERE/peer_node.mjs" --port "$port" >"$WORK/$tag.log" 2>&1 & ;;
  esac
  TARGET_PID=$!
  local i
  for i in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$TARGET_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "$t did not answer /healthz on port $port:"; tail -5 "$WORK/$tag.log" >&2
  return 1
}

REPORT=$WORK/report.txt
NOT_RUN=()
{
  echo "bench/events: $SUBS SSE subscribers, $SECS s measured after $WARMUP s warm-up, loopback, $RUNS round(s)"
  machine
  echo
} >"$REPORT"

run_load() { # ROUND MODE RATE TARGET_P99_MS TARGET
  local round=$1 mode=$2 rate=$3 target=$4 t=$5 tag=$1-$2-$5
  local out=$WORK/load-$tag.txt
  log "round $round, $mode, $t: $SUBS subscribers, $rate events/s"
  start_target "$t" "$tag" || { NOT_RUN+=("$tag (did not start)"); return; }
  timeout $((SECS + WARMUP + 90)) "$LOAD" --port "$(port_of "$t")" --token "$TOKEN" --mode "$mode" \
    --subs "$SUBS" --rate "$rate" --seconds "$SECS" --warmup "$WARMUP" --pid "$TARGET_PID" \
    >"$out" 2>"$WORK/load-$tag.err" &
  LOAD_PID=$!
  wait "$LOAD_PID"
  local rc=$?
  LOAD_PID=''
  stop_pid "$TARGET_PID"
  TARGET_PID=''
  if [ "$rc" -ne 0 ] || ! grep -q '^mode=' "$out"; then
    log "$tag: the load generator failed ($rc):"; tail -5 "$WORK/load-$tag.err" >&2
    NOT_RUN+=("$tag (load generator exit $rc)")
    return
  fi
  sed "s/^/round=$round target=$t /" "$out" >>"$WORK/raw.txt"
  # key=value -> the table row
  awk -v secs="$SECS" -v target="$target" -v t="$t" -v round="$round" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      met = (v["p99_ms"] + 0 <= target + 0 && v["lost"] + 0 == 0) ? "yes" : "NO"
      if (t != "aosd") met = "-"
      printf "%5d %-8s %-8s %11.0f %7.2f %7.2f %8.2f %7.2f %5d %7.2f %7.2f %8.2f %8.2f %7.1f %8.2f %4s\n",
        round, v["mode"], t, v["received"] / secs, v["p50_ms"], v["p99_ms"], v["p999_ms"],
        v["max_ms"], v["lost"], v["first_p99_ms"], v["last_p99_ms"], v["post_p99_ms"],
        v["aosd_cpu_s"] / secs, v["aosd_rss_mb"], v["gen_cpu_s"] / secs, met
    }' "$out" >>"$WORK/rows.txt"
}

T0=$(date +%s)
for round in $(seq "$RUNS"); do
  for m in $MODES; do
    for t in $TARGETS; do
      case "$m" in
        fanout) run_load "$round" fanout "$FANOUT_RATE" 10 "$t" ;;
        pertask) run_load "$round" pertask "$PERTASK_RATE" 5 "$t" ;;
        *) die "unknown mode '$m' (fanout, pertask)" ;;
      esac
    done
  done
done

{
  printf "%5s %-8s %-8s %11s %7s %7s %8s %7s %5s %7s %7s %8s %8s %7s %8s %4s\n" round mode target \
    "deliver/s" p50_ms p99_ms p99.9_ms max_ms lost first99 last99 post_p99 cpu rss_mb gen_cpu met
  [ -f "$WORK/rows.txt" ] && cat "$WORK/rows.txt"
  echo
  echo "medians over rounds (p99 ms; aosd's target: fanout <= 10, pertask <= 5):"
  [ -f "$WORK/rows.txt" ] && awk '
    { k = $2 SUBSEP $3; n[k]++; p[k, n[k]] = $6; modes[$2] = 1; targets[$3] = 1 }
    function med(k,   i, j, t, a, c) {
      c = n[k]; if (!c) return -1
      for (i = 1; i <= c; i++) a[i] = p[k, i] + 0
      for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
    }
    END {
      for (m in modes) {
        line = sprintf("  %-8s", m)
        a = med(m SUBSEP "aosd"); c = med(m SUBSEP "ceiling"); d = med(m SUBSEP "node")
        if (a >= 0) line = line sprintf(" aosd %.2f", a)
        if (c >= 0) line = line sprintf("  ceiling %.2f", c)
        if (d >= 0) line = line sprintf("  node %.2f", d)
        if (a > 0 && c > 0) line = line sprintf("  aosd/ceiling %.2f", a / c)
        if (a > 0 && d > 0) line = line sprintf("  node/aosd %.2f", d / a)
        print line
      }
    }' "$WORK/rows.txt"
  echo
  echo "latency: POST sent -> event parsed by the subscriber (payload.t, CLOCK_MONOTONIC)."
  echo "first99, last99: p99 over events of the first and the last subscriber to get each one."
  echo "post_p99: the POST's own latency (201; durable for aosd). cpu, gen_cpu: cores used by the"
  echo "target and by the load generator (CPU-seconds / measured seconds); rss_mb: the target's"
  echo "peak RSS. met: aosd's p99 within target and none lost."
  machine | sed 's/^machine:/after:/'
  echo "wall time: $(( $(date +%s) - T0 )) s"
  [ ${#NOT_RUN[@]} -eq 0 ] || echo "NOT RUN: ${NOT_RUN[*]}"
} >>"$REPORT"

mkdir -p "$RESULTS"
cp "$REPORT" "$RESULTS/latest.txt"
[ -f "$WORK/raw.txt" ] && cp "$WORK/raw.txt" "$RESULTS/latest-raw.txt"
cat "$REPORT"
[ ${#NOT_RUN[@]} -eq 0 ]
