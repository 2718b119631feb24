#!/usr/bin/env bash
# baseline.sh [NAME=URL[@PID] ...]
#
# Reproduces the peer baselines and, optionally, puts other endpoints (e.g.
# our gateway) in the same run: starts the reference peers with peer-up.sh
# (server-everything direct, supergateway, mcp-proxy; ports BASELINE_PORT..+2),
# runs tests/tools/loadtest.sh on every target BASELINE_RUNS times, interleaved, and
# prints one summary row per run. Extra targets are NAME=URL or NAME=URL@PID
# (PID: sample its memory/CPU, descendants included). Peers are stopped at exit.
#
# Env: BASELINE_CONC (16), BASELINE_SECS (10), BASELINE_RUNS (2),
#      BASELINE_OUT (dir: keep each run's full loadtest output there),
#      BASELINE_PORT (3201), BASELINE_PEERS ("everything supergateway mcp-proxy";
#      set to "" for extra targets only), plus everything loadtest.sh and
#      peer-up.sh read.
set -u
case "${1:-}" in
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "baseline.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
esac
D=$(cd "$(dirname "$0")" && pwd)
LOADTEST=$D/../../tests/tools/loadtest.sh
CONC=${BASELINE_CONC:-16}; SECS=${BASELINE_SECS:-10}; RUNS=${BASELINE_RUNS:-2}
PORT=${BASELINE_PORT:-3201}
PEERS=${BASELINE_PEERS-everything supergateway mcp-proxy}

STARTED=()
cleanup() { for p in "${STARTED[@]}"; do "$D/peer-down.sh" "$p" >/dev/null 2>&1; done; }
trap cleanup EXIT INT TERM

NAMES=() URLS=() PIDS=()
i=0
for k in $PEERS; do
  pt=$((PORT + i)); i=$((i + 1))
  pid=$("$D/peer-up.sh" "$pt" "$k") && [ -n "$pid" ] || { echo "peer $k failed" >&2; exit 1; }
  STARTED+=("$pt")
  NAMES+=("$k"); URLS+=("http://127.0.0.1:$pt/mcp"); PIDS+=("$pid")
done
for t in "$@"; do
  n=${t%%=*}; u=${t#*=}; p=
  case "$u" in *@*) p=${u##*@}; u=${u%@*};; esac
  NAMES+=("$n"); URLS+=("$u"); PIDS+=("$p")
done

printf '%-14s %3s %9s %9s %9s %6s %12s %8s\n' target run rps p50_ms p99_ms errors rss_max_mb cpu_s
for r in $(seq 1 "$RUNS"); do
  for j in "${!NAMES[@]}"; do
    out=$(LOADTEST_PIDS="${PIDS[$j]}" "$LOADTEST" "${URLS[$j]}" "$CONC" "$SECS" 2>/dev/null)
    [ -n "${BASELINE_OUT:-}" ] && { mkdir -p "$BASELINE_OUT"; echo "$out" > "$BASELINE_OUT/${NAMES[$j]}-run$r.txt"; }
    last=$(echo "$out" | tail -1)
    rps=$(echo "$last" | sed -nE 's/^loadtest: ([0-9.]+) rps.*/\1/p')
    p50=$(echo "$last" | sed -nE 's/.*p50 ([0-9.]+) ms.*/\1/p')
    p99=$(echo "$last" | sed -nE 's/.*p99 ([0-9.]+) ms.*/\1/p')
    err=$(echo "$last" | sed -nE 's/.*errors ([0-9]+)$/\1/p')
    mem=$(echo "$out" | sed -nE 's/^mem-total: rss_max_kb=([0-9]+) cpu_s=([0-9.]+).*/\1 \2/p')
    rss=-; cpu=-
    [ -n "$mem" ] && { rss=$(awk -v k="${mem% *}" 'BEGIN{printf "%.1f", k/1024}'); cpu=${mem#* }; }
    printf '%-14s %3s %9s %9s %9s %6s %12s %8s\n' "${NAMES[$j]}" "$r" "${rps:-0}" "${p50:-0}" "${p99:-0}" "${err:-1}" "$rss" "$cpu"
  done
done
