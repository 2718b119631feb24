#!/usr/bin/env bash
# bench/orchestrator/profile.sh - aosd's instructions per task, by function,
# under callgrind (deterministic: an A/B that a busy machine does not blur).
#
#   profile.sh [BUILD=build] [CONC=64] [SECONDS=4] [OUT=/tmp/orch.cg]
#
# Starts BUILD/aosd under `valgrind --tool=callgrind` on a fresh data dir,
# zeroes the counters once it answers, runs BUILD/bench/orch_load (tasks of
# 4 aos__echo steps, CONC in flight, SECONDS measured after a warm-up),
# dumps (OUT.1), stops aosd, counts the jobs done and prints the total and
# the top functions (inclusive) per task. PROFILE_THREADS=1 writes one file
# per thread (OUT.1-NN: the loop, the store's worker, ...), PROFILE_TOP=N
# functions (40). Needs valgrind (scripts/install-deps --bench).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build}
CONC=${2:-64}
SECS=${3:-4}
OUT=${4:-/tmp/orch.cg}
PORT=${PROFILE_PORT:-3591}
TOP=${PROFILE_TOP:-40}
TOKEN=profile-orch-owner-token-0123456789abcdef
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 1; }
if [ ! -x "$BUILD/aosd" ] || [ ! -x "$BUILD/bench/orch_load" ]; then
  echo "profile.sh: build $BUILD first (make build)" >&2
  exit 1
fi
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
extra=()
[ "${PROFILE_THREADS:-0}" = 1 ] && extra+=(--separate-threads=yes)
valgrind --tool=callgrind --callgrind-out-file="$OUT" --dump-instr=no "${extra[@]}" \
  "$BUILD/aosd" --listen "127.0.0.1:$PORT" --data-dir "$D" --bootstrap-token "$TOKEN" \
  --log-level warn --orch-max-running 64 >"$OUT.log" 2>&1 &
VP=$!
for _ in $(seq 600); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/healthz" && break; sleep 0.2; done
sleep 1
callgrind_control -z "$VP" >/dev/null
timeout $((SECS + 200)) "$BUILD/bench/orch_load" tasks --port "$PORT" --token "$TOKEN" \
  --conc "$CONC" --seconds "$SECS" --warmup 3 --drain 120
callgrind_control -d "$VP" >/dev/null
kill -TERM "$VP"
wait "$VP"
tasks=$(sqlite3 "$D/aos.db" "select count(*) from jobs where status='done'")
echo "jobs done: $tasks"
[ "$tasks" -gt 0 ] || exit 1
# the dump on request is OUT.1 (OUT.1-NN per thread); OUT itself holds
# only what ran after it (the shutdown)
for f in "$OUT".1 "$OUT".1-*; do
  [ -f "$f" ] || continue
  echo "== $f: instructions per task (inclusive), top $TOP"
  callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null |
    grep -E '^ *[0-9,]+ ' | sed 's/ \[[^]]*\]$//' | head -"$TOP" |
    awk -v n="$tasks" '{v=$1; gsub(",","",v); $1=""; $2=""; printf "%10.0f %s\n", v/n, $0}'
done
