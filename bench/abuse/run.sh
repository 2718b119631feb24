#!/usr/bin/env bash
# bench/abuse/run.sh - the resource-exhaustion probes of issue 12 against
# build/aosd (abuse.mjs does the work), each on a fresh aosd:
#
#   flood        4,200 idle TCP connections held BENCH_HOLD s
#   uploads      30 unauthenticated 16 MiB uploads that stall before their
#                last byte (401 before the body is read?)
#   uploads-auth the same with the Owner token (the --http-body-memory cap)
#   cardinality  18,000 POST /mcp/call with unknown tool names to a real
#                stdio upstream (tests/e2e/fixtures/faulty-server.mjs, its
#                breaker off), then 3 scrapes of /metrics
#
# Reported per probe: /healthz latency from a fresh connection every
# 100 ms during the probe (p50/p99/max, failures; 5 s timeout) beside the
# same over 2 s before it, aosd's RSS before and its peak (VmHWM), and
# what the probe saw (answers, connections closed by aosd, /metrics size
# and scrape time).
#
# Loopback only; bounded: 4,200 connections, 30 uploads, 18,000 calls,
# every step with a timeout; every process started here is stopped on exit
# (Ctrl-C included) and its data dir removed. About 1 to 2 minutes.
#
# Env: BENCH_PORT (3501), BENCH_HOLD (10) seconds a flood or stall is held,
#      BENCH_PROBES ("flood,uploads,uploads-auth,cardinality"), BENCH_BUILD
#      (<repo>/build), BENCH_AOSD_ARGS (extra aosd arguments), BENCH_RESULTS
#      (bench/abuse/results).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=${BENCH_PORT:-3501}
HOLD=${BENCH_HOLD:-10}
PROBES=${BENCH_PROBES:-flood,uploads,uploads-auth,cardinality}
BUILD=${BENCH_BUILD:-$ROOT/build}
RESULTS=${BENCH_RESULTS:-$HERE/results}

log() { echo "[bench] $*" >&2; }
die() { log "$*"; exit 1; }
for v in PORT HOLD; do
  case "${!v}" in '' | *[!0-9]*) die "BENCH_$v must be a whole number, got '${!v}'" ;; esac
done
[ "$HOLD" -ge 1 ] && [ "$HOLD" -le 60 ] || die "BENCH_HOLD must be from 1 to 60"
command -v node >/dev/null || die "node is needed"

AOSD=$BUILD/aosd
if [ ! -x "$AOSD" ]; then
  log "building aosd in $BUILD"
  { [ -f "$BUILD/Makefile" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; } &&
    cmake --build "$BUILD" -j "$(nproc)" --target aosd >/dev/null || die "build failed"
fi
# 4,200 connections need as many descriptors here and in aosd
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 5000 ] ||
  log "warning: only $(ulimit -n) open files allowed; the flood probe will be cut short"

mkdir -p "$RESULTS"
REPORT=$RESULTS/latest.txt
{
  echo "# bench/abuse $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n), $(nproc) CPUs"
  echo "# aosd: $AOSD ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')) ${BENCH_AOSD_ARGS:-}"
} | tee "$REPORT"
# node stops what it started on SIGINT/SIGTERM (it is in our process group)
# shellcheck disable=SC2086
timeout --foreground 900 node "$HERE/abuse.mjs" --aosd "$AOSD" --port "$PORT" --hold "$HOLD" \
  --probes "$PROBES" -- ${BENCH_AOSD_ARGS:-} | tee -a "$REPORT"
rc=${PIPESTATUS[0]}
log "report: $REPORT"
exit "$rc"
