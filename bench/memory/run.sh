#!/usr/bin/env bash
# bench/memory/run.sh - the vector index of the memory service beside faiss
# (issue 17), on the same vectors, one thread each, one query at a time.
#
# For each size (BENCH_SIZES, default "100000 1000000") vec_bench writes
# clustered 384-dim vectors and queries, measures src/memory's index
# (insert, exact float32, int8 + exact re-rank, HNSW M 16 efConstruction
# 200 at several ef; the scans' bytes/s beside the memory bandwidth it
# measures; RSS; the built-in embedding's insert rate), then faiss_bench.py
# measures faiss's IndexFlatIP and IndexHNSWFlat on the same files. Then
# quality.mjs prints the retrieval quality of the built-in embedding beside
# keyword search on the labelled set.
#
# Needs python3-faiss (Debian; scripts/install-deps --bench) and a build
# (make build). Run it under the machine's bench lock (see BENCHMARKS.md).
#
# Env: BENCH_SIZES, BENCH_QUERIES (1000; 200 at 1,000,000 for the exact
# scans' sake), BENCH_HNSW_MAX (100000: sizes above get no HNSW graph; a
# graph of 1,000,000 takes each library ~10 CPU minutes to build on one
# core, so it is opt-in: BENCH_HNSW_MAX=1000000),
# BENCH_BUILD (<repo>/build), BENCH_PYTHON (/usr/bin/python3).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
SIZES=${BENCH_SIZES:-"100000 1000000"}
HNSW_MAX=${BENCH_HNSW_MAX:-100000}
# Debian's python3 (where python3-faiss lives), not one a version manager put first
PY=${BENCH_PYTHON:-/usr/bin/python3}
[ -x "$BUILD/bench/vec_bench" ] || { echo "missing $BUILD/bench/vec_bench: make build" >&2; exit 1; }
"$PY" -c "import faiss" 2>/dev/null || { echo "python3-faiss is missing (scripts/install-deps --bench)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cpu(s); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $SIZES; do
  q=${BENCH_QUERIES:-1000}
  [ -z "${BENCH_QUERIES:-}" ] && [ "$n" -ge 1000000 ] && q=200
  h=""
  [ "$n" -le "$HNSW_MAX" ] && h=hnsw
  echo "## n=$n queries=$q $h"
  echo "### aos (src/memory)"
  "$BUILD/bench/vec_bench" "$n" "$q" "$TMP" $h || exit 1
  echo "### faiss"
  "$PY" "$HERE/faiss_bench.py" "$TMP" 384 $h || exit 1
  rm -f "$TMP"/*.f32 "$TMP"/*.i64
done
echo "## retrieval quality (labelled set)"
AOSD_BIN=${AOSD_BIN:-$BUILD/aosd} node "$HERE/quality.mjs"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
