#!/usr/bin/env bash
# bench/ui/run.sh - the browser UI under a full store (issue 19): a fresh
# build/aosd seeded through its API with 1,000 tasks (run for real),
# 100,000 log lines, 1,000 value-event cards and a 20,000-event episode;
# then Debian's chromium (playwright-core from web/node_modules) loads
# each page 5 times with its cache off and reports the time to its first
# meaningful content (p50, min, max; target 1 s, the episode's run page
# 300 ms), the JavaScript, CSS and API JSON bytes on the wire, and the
# Chat Hub's frame rate while 100 new cards arrive per second for 10 s
# (target 30 fps) beside its idle rate, counted by requestAnimationFrame
# and from Chromium's tracing (DrawFrame, BeginFrame and the compositor's
# dropped frames; BENCH_FPS=raf|trace for one only). ui_bench.mjs does
# the work.
#
# Loopback only; bounded (every wait has a timeout, the whole run 15
# minutes); aosd and chromium are stopped and the data dir removed on
# exit, Ctrl-C included. About 3 to 6 minutes, most of it seeding.
# Run it under the machine's bench lock (BENCHMARKS.md).
#
# Env: BENCH_PORT (3601), BENCH_LOADS (5), BENCH_TASKS (1000), BENCH_LOGS
#      (100000), BENCH_CARDS (1000), BENCH_EPISODE (20000), BENCH_RATE
#      (100 events/s), BENCH_SECONDS (10), BENCH_FPS (both), BENCH_BUILD (<repo>/build),
#      BENCH_RESULTS (bench/ui/results), CHROMIUM (/usr/bin/chromium).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
RESULTS=${BENCH_RESULTS:-$HERE/results}
log() { echo "[bench] $*" >&2; }
die() { log "$*"; exit 1; }
for v in PORT LOADS TASKS LOGS CARDS EPISODE RATE SECONDS; do
  n=BENCH_$v
  x=${!n:-0}
  case "$x" in *[!0-9]*) die "BENCH_$v must be a whole number, got '$x'" ;; esac
done
command -v node >/dev/null || die "node is needed"
[ -x "$BUILD/aosd" ] || die "missing $BUILD/aosd: make build"
[ -d "$ROOT/web/node_modules/playwright-core" ] || die "web/node_modules lacks playwright-core: scripts/install-deps"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || die "missing ${CHROMIUM:-/usr/bin/chromium}: scripts/install-deps installs Debian's chromium"

# shellcheck source=/dev/null
. "$HERE/../lib.sh"
mkdir -p "$RESULTS"
REPORT=$RESULTS/latest.txt
{
  echo "# bench/ui $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n), $(nproc) CPUs; aosd $BUILD/aosd ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo "# before: load $(cut -d' ' -f1-3 /proc/loadavg), CPU busy $(cpu_busy_pct)%"
} | tee "$REPORT"
timeout --foreground 900 node "$HERE/ui_bench.mjs" --aosd "$BUILD/aosd" --port "${BENCH_PORT:-3601}" \
  --loads "${BENCH_LOADS:-5}" --tasks "${BENCH_TASKS:-1000}" --logs "${BENCH_LOGS:-100000}" \
  --cards "${BENCH_CARDS:-1000}" --episode "${BENCH_EPISODE:-20000}" --rate "${BENCH_RATE:-100}" \
  --seconds "${BENCH_SECONDS:-10}" --fps "${BENCH_FPS:-both}" | tee -a "$REPORT"
rc=${PIPESTATUS[0]}
echo "# after: load $(cut -d' ' -f1-3 /proc/loadavg), CPU busy $(cpu_busy_pct)%" | tee -a "$REPORT"
log "report: $REPORT"
exit "$rc"
