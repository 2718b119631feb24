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
# scans' sake), BENCH_HNSW_MAX (100000: sizes above get no HNSW graph;
# BENCH_HNSW_MAX=1000000 is the 1M mode), BENCH_DATA (clustered; uniform:
# random directions, far harder for any graph), BENCH_M (16), BENCH_EFC
# (200), BENCH_THREADS (1: threads building each library's graph;
# searches are one thread each), BENCH_EFS ("16,32,64,128,256"),
# BENCH_FAISS_BUILD_MAX_S (0: no bound; else faiss's graph build is
# abandoned past it, and its rate and projected time are printed),
# BENCH_QUALITY (1; 0 skips the labelled set), BENCH_BUILD (<repo>/build),
# BENCH_PYTHON (/usr/bin/python3), BENCH_GRAPH_DIR (unset; else each
# library's graph of each size is read from a file there when it exists,
# built and written there when not: vec_bench graph=, faiss_bench.py
# FAISS_INDEX_CACHE; name by size, data, M and efConstruction).
# After each size with a graph, compare.py prints faiss/aos at equal
# recall. Building the 1M graphs once at low priority ahead:
#   nice -n 19 build/bench/vec_bench 1000000 1 /tmp hnsw \
#     threads=2 graph=/var/tmp/g/aos-1000000-clustered-m16-efc200.graph build_only
#
# Expected minutes on this 2-core VM, quiet: the 100,000 part without a
# graph ~3; with one ~3 for aos and ~10 for Debian's (generic, no AVX2)
# faiss at efConstruction 200; 1,000,000 with BENCH_THREADS=2 about 15
# for aos's build and its scans, faiss's build ~10x aos's CPU (bound it
# with BENCH_FAISS_BUILD_MAX_S).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
SIZES=${BENCH_SIZES:-"100000 1000000"}
HNSW_MAX=${BENCH_HNSW_MAX:-100000}
DATA=${BENCH_DATA:-clustered}
M=${BENCH_M:-16}
EFC=${BENCH_EFC:-200}
THREADS=${BENCH_THREADS:-1}
EFS=${BENCH_EFS:-16,32,64,128,256}
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
  echo "## n=$n queries=$q data=$DATA $h${h:+ m=$M efc=$EFC threads=$THREADS}"
  echo "### aos (src/memory) $(date -u +%T)"
  g=() fcache=${FAISS_INDEX_CACHE:-}
  if [ -n "$h" ] && [ -n "${BENCH_GRAPH_DIR:-}" ]; then
    g=("graph=$BENCH_GRAPH_DIR/aos-$n-$DATA-m$M-efc$EFC.graph")
    fcache=$BENCH_GRAPH_DIR/faiss-$n-$DATA-m$M-efc$EFC.index
  fi
  "$BUILD/bench/vec_bench" "$n" "$q" "$TMP" $h "data=$DATA" "m=$M" "efc=$EFC" \
    "threads=$THREADS" "efs=$EFS" "${g[@]}" | tee "$TMP/aos.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
  echo "### faiss $(date -u +%T)"
  FAISS_INDEX_CACHE=$fcache FAISS_M=$M FAISS_EFC=$EFC FAISS_THREADS=$THREADS FAISS_EFS=$EFS \
    FAISS_BUILD_MAX_S=${BENCH_FAISS_BUILD_MAX_S:-0} \
    "$PY" "$HERE/faiss_bench.py" "$TMP" 384 $h | tee "$TMP/faiss.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
  if [ -n "$h" ]; then
    echo "### at equal recall (n=$n, $DATA)"
    "$PY" "$HERE/compare.py" "$TMP/aos.txt" "$TMP/faiss.txt"
  fi
  rm -f "$TMP"/*.f32 "$TMP"/*.i64
done
if [ "${BENCH_QUALITY:-1}" = 1 ]; then
  echo "## retrieval quality (labelled set)"
  AOSD_BIN=${AOSD_BIN:-$BUILD/aosd} node "$HERE/quality.mjs"
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
