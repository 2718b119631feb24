#!/usr/bin/env bash
# bench/gateway/counts.sh - per-call counts of a gateway and its stdio child:
# syscalls, context switches, loop wakeups, reads and writes, CPU time.
#
#   counts.sh gateway URL PID [CONC=16] [SECONDS=5]
#       loads URL (tests/tools/loadtest.sh, no warm-up) while perf counts
#       PID and each of its descendants separately (those it starts in the
#       first 5 s too: supergateway starts its child at initialize)
#   counts.sh ceiling [CONC=16] [SECONDS=5]
#       runs build/bench/stdio_ceiling (no warm-up) and counts it and its
#       child (the stdio server) separately
#
# Prints one line per counted process and "calls=N": divide by N for the
# per-call figures (the table in BENCHMARKS.md). The counts cover the
# whole run, set-up included (a handful of calls next to tens of thousands).
# Needs perf with the syscalls tracepoints (root, or perf_event_paranoid
# <= -1). A measuring tool, not a benchmark: it runs while other work runs
# and its rates are not figures to compare; the ratios per call are.
# Env: COUNTS_BUILD (<repo>/build), LOADTEST_HEADERS (passed on).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${COUNTS_BUILD:-$ROOT/build}
EVENTS=task-clock,context-switches,raw_syscalls:sys_enter
for s in read write writev readv recvfrom sendto sendmsg epoll_wait epoll_pwait epoll_ctl futex getrandom; do
  EVENTS=$EVENTS,syscalls:sys_enter_$s
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aos-counts.XXXXXX")
PERFS=()
cleanup() {
  for p in "${PERFS[@]}"; do kill -INT "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

tree() { local p c; for p in "$@"; do echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done; done; }
count_start() { # count_start PID...
  local p
  for p in "$@"; do
    perf stat -x, -e "$EVENTS" -p "$p" -o "$WORK/perf.$p" 2>/dev/null &
    PERFS+=($!)
  done
  sleep 0.3 # perf attached
}
count_stop() {
  local p
  for p in "${PERFS[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${PERFS[@]}"; do wait "$p" 2>/dev/null; done
  PERFS=()
}
report() { # report PID
  local f=$WORK/perf.$1
  [ -s "$f" ] || return 0
  awk -F, -v pid="$1" -v comm="$(cat "/proc/$1/comm" 2>/dev/null || echo '?')" '
    $3 != "" { n = $3; sub(/^syscalls:sys_enter_/, "", n); sub(/^raw_syscalls:sys_enter/, "syscalls", n)
               v[n] = $1 }
    END {
      printf "pid=%s comm=%s cpu_ms=%.0f cs=%s syscalls=%s", pid, comm, v["task-clock"], v["context-switches"], v["syscalls"]
      split("read write writev readv recvfrom sendto sendmsg epoll_wait epoll_pwait epoll_ctl futex getrandom", k, " ")
      for (i = 1; i in k; i++) printf " %s=%s", k[i], v[k[i]] == "" ? 0 : v[k[i]]
      printf "\n"
    }' "$f"
}

case "${1:-}" in
  gateway)
    URL=$2 PID=$3 CONC=${4:-16} SECS=${5:-5}
    mapfile -t PIDS < <(tree "$PID")
    count_start "${PIDS[@]}"
    LOADTEST_WARMUP=0 "$ROOT/tests/tools/loadtest.sh" "$URL" "$CONC" "$SECS" >"$WORK/lt.out" 2>"$WORK/lt.err" &
    LT=$!
    # a gateway that starts its child per session (supergateway) starts it
    # at the load's initialize, before wrk runs: count it from then on
    for _ in $(seq 1 50); do
      kill -0 "$LT" 2>/dev/null || break
      for p in $(tree "$PID"); do
        case " ${PIDS[*]} " in *" $p "*) ;; *) PIDS+=("$p"); count_start "$p" ;; esac
      done
      sleep 0.1
    done
    wait "$LT"
    out=$(cat "$WORK/lt.out")
    count_stop
    line=$(echo "$out" | grep '^MCPLOAD ' | tail -1)
    calls=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "requests" {print $2}')
    for p in "${PIDS[@]}"; do report "$p"; done
    echo "$out" | tail -1
    echo "calls=$((${calls:-0} + 2))" # + initialize and the probe
    ;;
  ceiling)
    CONC=${2:-16} SECS=${3:-5}
    "$BUILD/bench/stdio_ceiling" --seconds "$SECS" --warmup 0 --inflight "$CONC" \
      >"$WORK/ceiling.out" 2>"$WORK/ceiling.err" &
    CP=$!
    sleep 0.3
    mapfile -t PIDS < <(tree "$CP")
    count_start "${PIDS[@]}"
    wait "$CP"
    count_stop
    for p in "${PIDS[@]}"; do report "$p"; done
    tail -1 "$WORK/ceiling.out"
    # the calls measured (warm-up 0: all but the few in flight at the end)
    awk '/^stdio_ceiling-detail:/ { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == "calls") print "calls=" a[2] } }' \
      "$WORK/ceiling.out"
    ;;
  *)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
