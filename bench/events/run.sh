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
# Each mode gets a fresh aosd (fresh data dir on the same disk as TMPDIR) on
# 127.0.0.1, is loaded for BENCH_WARMUP s (not measured) then BENCH_SECONDS s
# (measured), and aosd is stopped. Reported per mode: events sent in the
# window, deliveries (and any lost), latency percentiles, POST latency, aosd
# CPU (cores = CPU-seconds / seconds) and peak RSS, the load generator's own
# CPU, and whether the target was met. The generator shares the machine with
# aosd: its CPU says how much of the box it took.
#
# Env: BENCH_SUBS (1000), BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_PORT
#      (3330), BENCH_BUILD (<repo>/build: aosd and bench/events_load),
#      BENCH_RESULTS (bench/events/results), BENCH_MODES ("fanout pertask"),
#      BENCH_FANOUT_RATE (100), BENCH_PERTASK_RATE (1000), BENCH_AOSD_ARGS
#      (extra aosd arguments, e.g. "--http-writers 2").
# Bounded: every step has a timeout; every process started here is stopped
# on exit (Ctrl-C included), and the temporary data dirs are removed.
# Exit status: 0 when every mode ran (targets missed are reported, not
# failed); 1 when a mode could not run.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
SUBS=${BENCH_SUBS:-1000}
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
PORT=${BENCH_PORT:-3330}
RESULTS=${BENCH_RESULTS:-$HERE/results}
MODES=${BENCH_MODES:-fanout pertask}
FANOUT_RATE=${BENCH_FANOUT_RATE:-100}
PERTASK_RATE=${BENCH_PERTASK_RATE:-1000}
TOKEN=bench-events-token-0123456789abcdef

log() { echo "[bench/events] $*" >&2; }
die() { log "$*"; exit 1; }

for v in SUBS SECS WARMUP PORT FANOUT_RATE PERTASK_RATE; do
  case "${!v}" in '' | *[!0-9]*) die "BENCH_$v must be a whole number, got '${!v}'" ;; esac
done
AOSD=$BUILD/aosd
LOAD=$BUILD/bench/events_load
[ -x "$AOSD" ] || die "no $AOSD (run: make build)"
[ -x "$LOAD" ] || die "no $LOAD (run: make build)"

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
AOSD_PID='' LOAD_PID=''
stop_pid() { # PID: TERM, then KILL after 10 s
  local p=$1 i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
}
cleanup() {
  stop_pid "$LOAD_PID"
  stop_pid "$AOSD_PID"
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

start_aosd() { # -> AOSD_PID, or fails
  local dir=$WORK/data-$1
  mkdir -p "$dir"
  "$AOSD" --listen "127.0.0.1:$PORT" --data-dir "$dir" --bootstrap-token "$TOKEN" \
    --log-level warn ${BENCH_AOSD_ARGS:-} >"$WORK/aosd-$1.log" 2>&1 &
  AOSD_PID=$!
  local i
  for i in $(seq 100); do
    if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$AOSD_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "aosd did not answer /healthz on port $PORT:"; tail -5 "$WORK/aosd-$1.log" >&2
  return 1
}

REPORT=$WORK/report.txt
NOT_RUN=()
{
  echo "bench/events: $SUBS SSE subscribers, $SECS s measured after $WARMUP s warm-up, loopback"
  machine
  echo
} >"$REPORT"

run_mode() { # MODE RATE TARGET_P99_MS
  local mode=$1 rate=$2 target=$3 out=$WORK/load-$1.txt
  log "$mode: $SUBS subscribers, $rate events/s"
  start_aosd "$mode" || { NOT_RUN+=("$mode (aosd did not start)"); return; }
  timeout $((SECS + WARMUP + 90)) "$LOAD" --port "$PORT" --token "$TOKEN" --mode "$mode" \
    --subs "$SUBS" --rate "$rate" --seconds "$SECS" --warmup "$WARMUP" --pid "$AOSD_PID" \
    >"$out" 2>"$WORK/load-$mode.err" &
  LOAD_PID=$!
  wait "$LOAD_PID"
  local rc=$?
  LOAD_PID=''
  stop_pid "$AOSD_PID"
  AOSD_PID=''
  if [ "$rc" -ne 0 ] || ! grep -q '^mode=' "$out"; then
    log "$mode: the load generator failed ($rc):"; tail -5 "$WORK/load-$mode.err" >&2
    NOT_RUN+=("$mode (load generator exit $rc)")
    return
  fi
  cat "$out" >>"$WORK/raw.txt"
  # key=value -> the table row
  awk -v secs="$SECS" -v target="$target" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      met = (v["p99_ms"] + 0 <= target + 0 && v["lost"] + 0 == 0) ? "yes" : "NO"
      printf "%-8s %6d %9d %11.0f %8.2f %8.2f %9.2f %8.2f %6d %9.2f %9.2f %8.1f %9.2f %6s %-4s\n",
        v["mode"], v["subs"], v["rate"], v["received"] / secs, v["p50_ms"], v["p99_ms"],
        v["p999_ms"], v["max_ms"], v["lost"], v["post_p99_ms"], v["aosd_cpu_s"] / secs,
        v["aosd_rss_mb"], v["gen_cpu_s"] / secs, "<=" target, met
    }' "$out" >>"$WORK/rows.txt"
}

T0=$(date +%s)
for m in $MODES; do
  case "$m" in
    fanout) run_mode fanout "$FANOUT_RATE" 10 ;;
    pertask) run_mode pertask "$PERTASK_RATE" 5 ;;
    *) die "unknown mode '$m' (fanout, pertask)" ;;
  esac
done

{
  printf "%-8s %6s %9s %11s %8s %8s %9s %8s %6s %9s %9s %8s %9s %6s %-4s\n" mode subs "events/s" \
    "deliver/s" p50_ms p99_ms p99.9_ms max_ms lost post_p99 aosd_cpu aosd_mb gen_cpu target met
  [ -f "$WORK/rows.txt" ] && cat "$WORK/rows.txt"
  echo
  echo "latency: POST sent -> event parsed by the subscriber (payload.t, CLOCK_MONOTONIC)."
  echo "post_p99: the POST's own latency (durable write, 201). aosd_cpu, gen_cpu: cores used"
  echo "(CPU-seconds / measured seconds); aosd_mb: peak RSS. met: p99 within target and none lost."
  machine | sed 's/^machine:/after:/'
  echo "wall time: $(( $(date +%s) - T0 )) s"
  [ ${#NOT_RUN[@]} -eq 0 ] || echo "NOT RUN: ${NOT_RUN[*]}"
} >>"$REPORT"

mkdir -p "$RESULTS"
cp "$REPORT" "$RESULTS/latest.txt"
[ -f "$WORK/raw.txt" ] && cp "$WORK/raw.txt" "$RESULTS/latest-raw.txt"
cat "$REPORT"
[ ${#NOT_RUN[@]} -eq 0 ]
