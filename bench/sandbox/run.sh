#!/usr/bin/env bash
# bench/sandbox/run.sh - spawn-to-exit of /bin/true through src/proc, plain
# and in the sandbox (bubblewrap with every namespace, the seccomp filter,
# the helper aos-exec setting rlimits and reporting wait4 usage), one at a
# time, rounds alternating (targets: sandbox p50 <= 10 ms, p99 <= 25 ms).
# Then agents.mjs against build/aosd: agent start-to-ready of the built-in
# runtime (target p50 <= 100 ms) and a release and rollback of 2 replicas
# while clients call the agent in a loop (target: 0 failed calls).
#
# Env: BENCH_N (300) spawns per mode and round, BENCH_RUNS (3) rounds,
#      BENCH_BUILD (<repo>/build), BENCH_AGENT_ROUNDS (30) starts,
#      BENCH_CALLERS (8) clients during the release.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
[ -x "$BUILD/bench/sandbox_spawn" ] || { echo "missing $BUILD/bench/sandbox_spawn: build first (make build)" >&2; exit 1; }
[ -x "$BUILD/aos-exec" ] || { echo "missing $BUILD/aos-exec: build first (make build)" >&2; exit 1; }
echo "bwrap $(bwrap --version 2>/dev/null | awk '{print $2}'), kernel $(uname -r), $(nproc) cores"
AOS_EXEC_HELPER=$BUILD/aos-exec "$BUILD/bench/sandbox_spawn" "${BENCH_N:-300}" "${BENCH_RUNS:-3}"
[ -x "$BUILD/aosd" ] || { echo "missing $BUILD/aosd: build first (make build)" >&2; exit 1; }
node "$HERE/agents.mjs" --aosd "$BUILD/aosd" --rounds "${BENCH_AGENT_ROUNDS:-30}" \
  --callers "${BENCH_CALLERS:-8}"
