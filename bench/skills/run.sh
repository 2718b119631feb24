#!/usr/bin/env bash
# bench/skills/run.sh - the skills benchmark (issue 14): csv.clean on a
# messy 1,000,000 x 10 CSV beside pandas doing the same cleaning
# (pandas_clean.py, Debian's python3-pandas): rows/s and peak RSS, targets
# >= 5x pandas' speed at <= 1/5 its memory; viz.plot of 1,000,000 points:
# time (target <= 200 ms) and SVG size (<= 200 KB); files.search over
# 10,000 files beside grep -rn (target within 1.5x of grep).
#
# Each measurement is a fresh process (skills_bench: one call of the
# built-in server as the gateway makes it, on the thread pool), rounds
# alternate ours and the peer; the report shows medians. Inputs are made by
# gen.py (seeded) in a temporary directory, removed on exit.
#
# Env: BENCH_RUNS (3) rounds, BENCH_ROWS (1000000) CSV rows, BENCH_FILES
# (10000) files to search. Needs `make build` and
# `scripts/install-deps --bench` (python3-pandas).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/bench/lib.sh"
BIN=$ROOT/build/bench/skills_bench
PY=/usr/bin/python3
RUNS=${BENCH_RUNS:-3}
ROWS=${BENCH_ROWS:-1000000}
FILES=${BENCH_FILES:-10000}
[ -x "$BIN" ] || { echo "skills: build first (make build)" >&2; exit 1; }
$PY -c 'import pandas' 2>/dev/null || { echo "skills: python3-pandas is missing (scripts/install-deps --bench)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aos-bench-skills.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
OUT=$ROOT/bench/skills/results
mkdir -p "$OUT"

echo "skills: making the inputs in $WORK (cpu busy before: $(cpu_busy_pct)%)" >&2
$PY "$ROOT/bench/skills/gen.py" messy "$WORK/messy.csv" "$ROWS"
$PY "$ROOT/bench/skills/gen.py" series "$WORK/series.csv" 1000000
$PY "$ROOT/bench/skills/gen.py" tree "$WORK/tree" "$FILES"
ns() { date +%s%N; }
field() { $PY -c 'import json,sys; d=json.loads(sys.argv[1]); r=d; [r:=r[k] for k in sys.argv[2].split(".")]; print(r)' "$1" "$2"; }
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: >"$WORK/csv_ours" ; : >"$WORK/csv_rss" ; : >"$WORK/pd" ; : >"$WORK/pd_rss"
: >"$WORK/viz" ; : >"$WORK/viz_bytes" ; : >"$WORK/srch" ; : >"$WORK/grep"
cat "$WORK/tree"/*/* >/dev/null # warm the page cache for both searchers
for r in $(seq "$RUNS"); do
  echo "skills: round $r/$RUNS" >&2
  o=$("$BIN" "$WORK" csv clean '{"path":"messy.csv","output":"clean.csv"}')
  field "$o" secs >>"$WORK/csv_ours"; field "$o" peak_rss_kb >>"$WORK/csv_rss"
  rows_out=$(field "$o" result.rows_out)
  p=$($PY "$ROOT/bench/skills/pandas_clean.py" "$WORK/messy.csv" "$WORK/pandas.csv")
  field "$p" secs >>"$WORK/pd"; field "$p" peak_rss_kb >>"$WORK/pd_rss"
  pd_rows=$(field "$p" rows_out)
  o=$("$BIN" "$WORK" viz plot '{"path":"series.csv","x":"t","y":"v","output":"s.svg"}')
  field "$o" secs >>"$WORK/viz"; field "$o" result.bytes >>"$WORK/viz_bytes"
  o=$("$BIN" "$WORK" files search '{"pattern":"needle_xyz","path":"tree","max_results":1000}')
  field "$o" secs >>"$WORK/srch"
  matches=$(field "$o" result.files_scanned)
  t0=$(ns); grep -rn needle_xyz "$WORK/tree" >"$WORK/grep.out" || true; t1=$(ns)
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.6f\n", (b-a)/1e9}' >>"$WORK/grep"
done
c=$(median <"$WORK/csv_ours"); cr=$(median <"$WORK/csv_rss"); p=$(median <"$WORK/pd"); pr=$(median <"$WORK/pd_rss")
v=$(median <"$WORK/viz"); vb=$(median <"$WORK/viz_bytes"); s=$(median <"$WORK/srch"); g=$(median <"$WORK/grep")
{
  echo "bench/skills: $RUNS rounds, medians; $(nproc) CPUs; cpu busy after: $(cpu_busy_pct)%"
  echo "csv.clean  $ROWS rows x 10 cols ($(du -m "$WORK/messy.csv" | cut -f1) MB):"
  awk -v c="$c" -v p="$p" -v cr="$cr" -v pr="$pr" -v n="$ROWS" -v ro="$rows_out" -v pro="$pd_rows" 'BEGIN{
    printf "  aosd   %.2f s  %9.0f rows/s  peak RSS %6.1f MB  rows out %d\n", c, n/c, cr/1024, ro;
    printf "  pandas %.2f s  %9.0f rows/s  peak RSS %6.1f MB  rows out %d\n", p, n/p, pr/1024, pro;
    printf "  speed x%.1f (target >= 5), memory 1/%.1f (target >= 5)\n", p/c, pr/cr }'
  awk -v v="$v" -v b="$vb" 'BEGIN{printf "viz.plot   1,000,000 points: %.0f ms (target <= 200), SVG %.1f KB (target <= 200)\n", v*1000, b/1024}'
  awk -v s="$s" -v g="$g" -v n="$FILES" -v m="$(wc -l <"$WORK/grep.out")" 'BEGIN{
    printf "files.search %d files: aosd %.0f ms, grep -rn %.0f ms (%d lines): ratio %.2f (target <= 1.5)\n", n, s*1000, g*1000, m, s/g }'
} | tee "$OUT/latest.txt"
