#!/usr/bin/env bash
# bench/orchestrator/run.sh - the orchestrator benchmark (issue 13): aosd
# running durable tasks beside LangGraph.js with its SQLite checkpointer,
# in the same run, on loopback.
#
# The work: a task of 4 sequential steps that do trivially little.
#   aosd       POST /api/run with a plan of 4 aos__echo steps (the built-in
#              tool, called in process through the gateway); each step is one
#              transition (a step's end is written with the next one's
#              start). aos__echo is aosd's own read-only tool, so its steps
#              do not wait for a commit each (docs/ORCHESTRATOR.md,
#              Durability): their transitions share group commits; the 201
#              of the acceptance and the receipt wait for theirs.
#              bench/orchestrator/orch_load.c submits and watches the
#              tasks' receipts on GET /agent/events.
#   limit      bench/orchestrator/orch_limit.c: the same writes in the same
#              shape (src/orch/commit.c: a task's run after its acceptance is
#              one savepoint, each row written once), straight through
#              aosd's store (same schema,
#              pragmas and statements), in the fewest commits aosd's rule
#              allows (the acceptance, then the rest of the task), nothing
#              else: the ceiling of aosd on this machine and store.
#   langgraph  bench/orchestrator/langgraph_peer.mjs: a StateGraph of 4 nodes
#              each adding 1 to a counter, SqliteSaver on a file database,
#              a new thread_id per task, durability "sync" (a step's
#              checkpoint is written before the next step starts, as aosd
#              does) and "async" (LangGraph's default).
#
# Measured:
#   1. tasks/s and task latency p50/p99 at concurrency 1 and 64 (closed loop:
#      C tasks in flight); per-step checkpoint cost: aosd's group commit time
#      (aos_orch_commit_seconds, p50/p99 interpolated in its buckets, and per
#      transition = commit seconds / transitions), the limit's commit time
#      (exact), LangGraph's SqliteSaver.put (and putWrites) time; database
#      bytes per step (the file after a TRUNCATE checkpoint, less the empty
#      schema, over the steps run); CPU seconds of each target; the limit's
#      SQL statements and WAL bytes per task (it counts them itself).
#   2. resume: 1,000 tasks in flight (aosd: each in a step calling a stdio
#      tool that sleeps, --orch-max-running 1000; LangGraph: 1,000 threads in
#      a node that never returns), kill -9, start again: the time from the
#      new process's start until all 1,000 run again (aosd: recovery.done of
#      each; LangGraph: invoke(null) of each thread has re-entered the
#      interrupted node).
#   3. replay: an episode of N steps (aosd: a plan of N aos__echo steps,
#      GET /api/episodes/:trace/replay; LangGraph: one node looping N times,
#      getStateHistory) for N in BENCH_REPLAY_STEPS: time and bytes per step.
# Targets (issue 13): aosd >= 20x LangGraph's tasks/s; checkpoint p50 <= 0.5
# ms and p99 <= 2 ms; resume of 1,000 tasks <= 1 s; 1,000-step replay <= 100
# ms and linear in steps.
#
# Rounds alternate the order of the targets so that drift of a shared machine
# hits them all; medians over rounds. Every aosd and LangGraph run starts on
# a fresh database. Loopback only; every process started here is stopped on
# exit (Ctrl-C included) and the temporary directory removed. About 8
# minutes by default.
#
# Env: BENCH_RUNS (2), BENCH_SECONDS (10) measured seconds per load,
#      BENCH_WARMUP (2), BENCH_CONCS ("1 64"), BENCH_TARGETS ("aosd limit
#      langgraph"), BENCH_LG_DURABILITY ("sync async"), BENCH_RESUME_TASKS
#      (1000; 0 skips), BENCH_REPLAY_STEPS ("100 300 1000"; "" skips; aosd
#      takes at most 1,000 steps per plan), BENCH_LG_REPLAY_EXTRA ("4000":
#      LangGraph only), BENCH_REPLAY_ROUNDS (20), BENCH_PORT (3501),
#      BENCH_BUILD (<repo>/build), BENCH_RESULTS (bench/orchestrator/results).
# Needs: make build (aosd, build/bench/orch_load, orch_limit), node, sqlite3,
# and scripts/install-deps --bench (bench/orchestrator/node_modules).
# Exit status: 0 when every part ran, whatever the numbers; 1 when one could
# not run.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${BENCH_RUNS:-2}
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
CONCS=${BENCH_CONCS:-1 64}
TARGETS=${BENCH_TARGETS:-aosd limit langgraph}
LG_DUR=${BENCH_LG_DURABILITY:-sync async}
RESUME=${BENCH_RESUME_TASKS:-1000}
REPLAY=${BENCH_REPLAY_STEPS-100 300 1000}
LG_REPLAY_EXTRA=${BENCH_LG_REPLAY_EXTRA-4000}
REPLAY_ROUNDS=${BENCH_REPLAY_ROUNDS:-20}
PORT=${BENCH_PORT:-3501}
BUILD=${BENCH_BUILD:-$ROOT/build}
RESULTS=${BENCH_RESULTS:-$HERE/results}
TOKEN=bench-orch-owner-token-0123456789abcdef

log() { echo "[bench/orchestrator] $*" >&2; }
die() { log "$*"; exit 1; }
for v in RUNS SECS WARMUP RESUME REPLAY_ROUNDS PORT; do
  case "${!v}" in '' | *[!0-9]*) die "BENCH_$v must be a whole number, got '${!v}'" ;; esac
done
for n in $CONCS $REPLAY $LG_REPLAY_EXTRA; do
  case "$n" in '' | *[!0-9]*) die "not a whole number: '$n'" ;; esac
done
[ "$RUNS" -ge 1 ] && [ "$SECS" -ge 1 ] && [ "$REPLAY_ROUNDS" -ge 1 ] || die "RUNS, SECONDS, REPLAY_ROUNDS must be >= 1"
for t in $TARGETS; do
  case "$t" in aosd | limit | langgraph) ;; *) die "unknown target '$t' (aosd, limit, langgraph)" ;; esac
done
for d in $LG_DUR; do
  case "$d" in sync | async) ;; *) die "BENCH_LG_DURABILITY: sync or async, not '$d'" ;; esac
done

AOSD=$BUILD/aosd
LOAD=$BUILD/bench/orch_load
LIMIT=$BUILD/bench/orch_limit
PEER=$HERE/langgraph_peer.mjs
# always brought up to date (a no-op when it is): a stale aosd measures
# code that is not the tree's
log "bringing aosd and the bench helpers in $BUILD up to date"
{ [ -f "$BUILD/Makefile" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; } &&
  cmake --build "$BUILD" -j "$(nproc)" --target aosd orch_load orch_limit >/dev/null ||
  die "build failed"
command -v sqlite3 >/dev/null || die "no sqlite3 (scripts/install-deps)"
command -v node >/dev/null || die "no node"
[ -d "$HERE/node_modules/@langchain/langgraph-checkpoint-sqlite" ] ||
  die "no LangGraph in $HERE/node_modules: run scripts/install-deps --bench"
# one socket per task in flight, plus aosd's own
need=4096
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || log "ulimit -n is $(ulimit -n); the resume test may need more"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aos-bench-orch.XXXXXX")
REPORT=$WORK/report.txt
RAW=$WORK/raw.txt
AOSD_PID='' BG_PID=''
stop_pid() { # PID: TERM, then KILL after 10 s
  local p=$1 i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
}
cleanup() {
  trap - EXIT INT TERM
  stop_pid "$BG_PID"
  stop_pid "$AOSD_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

. "$HERE/../lib.sh" # cpu_busy_pct
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
raw() { printf '%s\n' "$*" >>"$RAW"; }
kv() { # KEY LINE -> the value of KEY= in LINE
  sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}
median() { sort -g | awk '{v[NR]=$1} END{if(NR==0){print ""} else if(NR%2){print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN{if (b + 0 == 0 || a == "") print "-"; else printf f, a / b}'; }

# start_aosd DATA_DIR [ARGS...]: AOSD_PID, once /healthz answers.
start_aosd() {
  local dir=$1
  shift
  curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/healthz" && die "port $PORT is taken (set BENCH_PORT)"
  mkdir -p "$dir"
  "$AOSD" --listen "127.0.0.1:$PORT" --data-dir "$dir" --bootstrap-token "$TOKEN" \
    --log-level warn "$@" >>"$WORK/aosd.log" 2>&1 &
  AOSD_PID=$!
  local i
  for i in $(seq 200); do
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/healthz" && return 0
    kill -0 "$AOSD_PID" 2>/dev/null || die "aosd exited: $(tail -3 "$WORK/aosd.log")"
    sleep 0.05
  done
  die "aosd did not answer /healthz"
}
stop_aosd() {
  stop_pid "$AOSD_PID"
  AOSD_PID=''
}
api() { # METHOD PATH [BODY]
  curl -s -m 10 -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "http://127.0.0.1:$PORT$2"
}
# db_bytes FILE: its size after a TRUNCATE checkpoint (the WAL folded in).
db_bytes() {
  sqlite3 "$1" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null 2>&1
  local w=0
  [ -f "$1-wal" ] && w=$(stat -c %s "$1-wal")
  echo $(($(stat -c %s "$1") + w))
}

T0=$(date +%s)
say "orchestrator benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), busy $(cpu_busy_pct)% in the second before the run"
say "uptime before: $(uptime)"
lgv() { sed -n "/\"node_modules\/$1\"/,/version/s/.*\"version\": \"\\(.*\\)\".*/\\1/p" "$HERE/package-lock.json" | head -1; }
say "versions: aosd $("$AOSD" --version 2>&1 | head -1 | cut -d' ' -f2-), SQLite $(sqlite3 --version | cut -d' ' -f1) (aosd, system);" \
  "@langchain/langgraph $(lgv '@langchain\/langgraph'), langgraph-checkpoint-sqlite $(lgv '@langchain\/langgraph-checkpoint-sqlite')," \
  "better-sqlite3 $(lgv better-sqlite3) (SQLite $(cd "$HERE" && node -e "console.log(new (require('better-sqlite3'))(':memory:').prepare('select sqlite_version() v').get().v)")), node $(node --version)"
say "load: ${WARMUP}s warm-up + ${SECS}s measured per load, concurrency $CONCS, $RUNS rounds; targets: $TARGETS (langgraph durability: $LG_DUR)"
say ""

# ---------------------------------------------------------------- baselines
mkdir -p "$WORK/base-aosd"
start_aosd "$WORK/base-aosd"
stop_aosd
BASE_AOSD=$(db_bytes "$WORK/base-aosd/aos.db")
mkdir -p "$WORK/base-limit"
"$LIMIT" --init --db "$WORK/base-limit/aos.db" 2>>"$WORK/limit.log" || die "orch_limit --init failed"
BASE_LIMIT=$(db_bytes "$WORK/base-limit/aos.db")
(cd "$HERE" && node "$PEER" init --db "$WORK/base-lg.db") || die "langgraph_peer init failed"
BASE_LG=$(db_bytes "$WORK/base-lg.db")
raw "baselines: aosd $BASE_AOSD limit $BASE_LIMIT langgraph $BASE_LG bytes"

# ---------------------------------------------------------------- 1. tasks
# Each load appends "round conc target key=value..." to $WORK/rows.
ROWS=$WORK/rows
: >"$ROWS"
NOT_RUN=()

load_aosd() { # ROUND CONC
  local r=$1 c=$2 dir=$WORK/aosd-$1-$2 out
  local maxr=64
  [ "$c" -gt 64 ] && maxr=$c
  start_aosd "$dir" --orch-max-running "$maxr"
  out=$(timeout $((WARMUP + SECS + 90)) "$LOAD" tasks --port "$PORT" --token "$TOKEN" --conc "$c" \
    --seconds "$SECS" --warmup "$WARMUP" --pid "$AOSD_PID" 2>>"$WORK/load.err")
  local rc=$?
  stop_aosd
  raw "round $r aosd c$c: $out"
  if [ $rc -ne 0 ] || [ -z "$(kv tps "$out")" ]; then
    NOT_RUN+=("aosd c$c round $r (exit $rc: $(tail -1 "$WORK/load.err"))")
    return
  fi
  local steps bytes
  steps=$(sqlite3 "$dir/aos.db" "SELECT count(*) FROM task_steps WHERE kind = 'tool' AND status = 'done'")
  bytes=$(db_bytes "$dir/aos.db")
  echo "$r $c aosd $out steps_run=$steps bps=$(div $((bytes - BASE_AOSD)) "$steps" %.0f)" >>"$ROWS"
  rm -rf "$dir"
}

load_limit() { # ROUND CONC
  local r=$1 c=$2 dir=$WORK/limit-$1-$2 out
  mkdir -p "$dir"
  out=$(timeout $((WARMUP + SECS + 60)) "$LIMIT" --db "$dir/aos.db" --conc "$c" --seconds "$SECS" \
    --warmup "$WARMUP" 2>>"$WORK/limit.log")
  local rc=$?
  raw "round $r limit c$c: $out"
  if [ $rc -ne 0 ] || [ -z "$(kv tps "$out")" ]; then
    NOT_RUN+=("limit c$c round $r (exit $rc)")
    return
  fi
  local steps bytes
  steps=$(sqlite3 "$dir/aos.db" "SELECT count(*) FROM task_steps WHERE kind = 'tool' AND status = 'done'")
  bytes=$(db_bytes "$dir/aos.db")
  echo "$r $c limit $out steps_run=$steps bps=$(div $((bytes - BASE_LIMIT)) "$steps" %.0f)" >>"$ROWS"
  rm -rf "$dir"
}

load_langgraph() { # ROUND CONC DURABILITY
  local r=$1 c=$2 d=$3 db=$WORK/lg-$1-$2-$3.db out
  out=$(cd "$HERE" && timeout $((WARMUP + SECS + 300)) node "$PEER" tasks --db "$db" --conc "$c" \
    --seconds "$SECS" --warmup "$WARMUP" --durability "$d" 2>>"$WORK/peer.err")
  local rc=$?
  raw "round $r langgraph-$d c$c: $out"
  if [ $rc -ne 0 ] || [ -z "$(kv tps "$out")" ]; then
    NOT_RUN+=("langgraph-$d c$c round $r (exit $rc: $(tail -1 "$WORK/peer.err"))")
    return
  fi
  local steps bytes
  steps=$(kv nodes_run "$out")
  bytes=$(db_bytes "$db")
  echo "$r $c langgraph-$d $out bps=$(div $((bytes - BASE_LG)) "$steps" %.0f)" >>"$ROWS"
  rm -f "$db" "$db-wal" "$db-shm"
}

for round in $(seq "$RUNS"); do
  order=()
  for t in $TARGETS; do
    if [ "$t" = langgraph ]; then for d in $LG_DUR; do order+=("langgraph-$d"); done; else order+=("$t"); fi
  done
  # even rounds run the targets in the reverse order
  if [ $((round % 2)) -eq 0 ]; then
    rev=()
    for ((i = ${#order[@]} - 1; i >= 0; i--)); do rev+=("${order[i]}"); done
    order=("${rev[@]}")
  fi
  for c in $CONCS; do
    busy=$(cpu_busy_pct)
    raw "round $round c$c: busy $busy% before"
    for t in "${order[@]}"; do
      log "round $round, concurrency $c: $t"
      case "$t" in
        aosd) load_aosd "$round" "$c" ;;
        limit) load_limit "$round" "$c" ;;
        langgraph-*) load_langgraph "$round" "$c" "${t#langgraph-}" ;;
      esac
    done
  done
done

# The table: one row per load.
say "1. tasks of 4 steps, closed loop (C tasks in flight)"
say "$(printf '%5s %4s %-15s %9s %9s %9s %9s %9s %9s %7s %7s %8s %8s' round conc target tasks/s p50_ms p99_ms \
  ckpt_p50 ckpt_p99 per_step tx/cmt cpu_s tasks/cpu B/step)"
while read -r r c t rest; do
  line="$rest"
  if [ "$t" = aosd ] || [ "$t" = limit ]; then
    cp50=$(kv commit_p50_us "$line") cp99=$(kv commit_p99_us "$line") per=$(kv per_transition_us "$line")
    txc=$(div "$(kv transitions "$line")" "$(kv commits "$line")" %.1f)
  else
    cp50=$(kv put_p50_us "$line") cp99=$(kv put_p99_us "$line") per=$cp50 txc=-
  fi
  say "$(printf '%5s %4s %-15s %9s %9s %9s %9s %9s %9s %7s %7s %8s %8s' "$r" "$c" "$t" "$(kv tps "$line")" \
    "$(kv p50_ms "$line")" "$(kv p99_ms "$line")" "$cp50" "$cp99" "$per" "$txc" "$(kv cpu_s "$line")" \
    "$(div "$(kv tasks "$line")" "$(kv cpu_s "$line")" %.0f)" "$(kv bps "$line")")"
done <"$ROWS"
say ""
say "ckpt_p50/ckpt_p99 (us): aosd: one group commit (BEGIN..COMMIT on the store's worker), from"
say "  aos_orch_commit_seconds, interpolated inside its buckets (50, 75, 100, 150, 200, 250, 300, 400,"
say "  500, 750 us, 1, 1.5, 2, 3, 5 ms ...); limit: one commit, exact; langgraph: SqliteSaver.put, exact."
say "  At concurrency 64 a commit of aosd or the limit carries several tasks' transitions (tx/cmt);"
say "  per_step: commit time per transition (sum of commit time / transitions; one transition per step"
say "  plus one per task); for langgraph the put p50 (it also calls putWrites once per node: raw lines)."
say "cpu_s: CPU seconds of the target in the measured window (aosd: all its threads; not the load"
say "  generator's); tasks/cpu: tasks finished in the window per CPU second. B/step: database bytes"
say "  (after a TRUNCATE checkpoint, less the empty schema) per step run, all tasks of the load."
say ""

med() { # TARGET CONC KEY -> median over rounds
  awk -v t="$1" -v c="$2" '$3 == t && $2 == c' "$ROWS" | while read -r _ _ _ rest; do kv "$3" "$rest"; done | median
}
PASS=1
say "medians over rounds:"
for c in $CONCS; do
  a=$(med aosd "$c" tps) l=$(med limit "$c" tps)
  best_lg='' best_d=''
  for d in $LG_DUR; do
    v=$(med "langgraph-$d" "$c" tps)
    [ -n "$v" ] || continue
    if [ -z "$best_lg" ] || awk -v a="$v" -v b="$best_lg" 'BEGIN{exit !(a > b)}'; then best_lg=$v best_d=$d; fi
  done
  line="  c=$c: tasks/s aosd ${a:--}, limit ${l:--}"
  for d in $LG_DUR; do line="$line, langgraph-$d $(med "langgraph-$d" "$c" tps)"; done
  say "$line"
  r=$(div "$a" "$best_lg" %.1f)
  ok=$(awk -v r="$r" 'BEGIN{print (r != "-" && r + 0 >= 20) ? "yes" : "NO"}')
  [ "$ok" = yes ] || PASS=0
  say "        aosd / langgraph (the faster, $best_d): ${r}x  (>= 20x: $ok); aosd / limit: $(div "$a" "$l")"
  ac=$(med aosd "$c" cpu_s) at=$(med aosd "$c" tasks)
  lc=$(med "langgraph-$best_d" "$c" cpu_s) lt=$(med "langgraph-$best_d" "$c" tasks)
  say "        per CPU second: aosd $(div "$at" "$ac" %.0f) tasks, langgraph-$best_d $(div "$lt" "$lc" %.0f) tasks: $(div "$(div "$at" "$ac")" "$(div "$lt" "$lc")" %.1f)x"
  # how busy aosd's two busy threads were in the window: one at ~1.0 is
  # the bound; both well under it, they waited for each other
  secs=$(med aosd "$c" secs)
  say "        aosd's threads busy (CPU s per s): loop $(div "$(med aosd "$c" loop_cpu_s)" "$secs"), store worker $(div "$(med aosd "$c" store_cpu_s)" "$secs"), all $(div "$ac" "$secs")"
  say "        task p50/p99 ms: aosd $(med aosd "$c" p50_ms)/$(med aosd "$c" p99_ms), limit $(med limit "$c" p50_ms)/$(med limit "$c" p99_ms), langgraph-$best_d $(med "langgraph-$best_d" "$c" p50_ms)/$(med "langgraph-$best_d" "$c" p99_ms)"
  p50=$(med aosd "$c" commit_p50_us) p99=$(med aosd "$c" commit_p99_us) per=$(med aosd "$c" per_transition_us)
  ok=$(awk -v a="$p50" -v b="$p99" 'BEGIN{print (a != "" && a <= 500 && b <= 2000) ? "yes" : "NO"}')
  [ "$ok" = yes ] || PASS=0
  say "        checkpoint: aosd commit p50 ${p50} us, p99 ${p99} us, $(med aosd "$c" per_transition_us) us per transition (p50 <= 500 and p99 <= 2000: $ok);"
  say "          limit commit p50 $(med limit "$c" commit_p50_us) us, p99 $(med limit "$c" commit_p99_us) us, $(med limit "$c" per_transition_us) us per transition;"
  say "          langgraph-$best_d put p50 $(med "langgraph-$best_d" "$c" put_p50_us) us, p99 $(med "langgraph-$best_d" "$c" put_p99_us) us; putWrites p50 $(med "langgraph-$best_d" "$c" writes_p50_us) us, p99 $(med "langgraph-$best_d" "$c" writes_p99_us) us"
  say "        bytes per step: aosd $(med aosd "$c" bps), limit $(med limit "$c" bps), langgraph-$best_d $(med "langgraph-$best_d" "$c" bps)"
  say "        limit per task: $(med limit "$c" stmts_per_task) SQL statements, $(med limit "$c" wal_bytes_per_task) WAL bytes; $(med limit "$c" tasks_per_cpu_s) tasks per CPU second"
done
say ""

# ---------------------------------------------------------------- 2. resume
if [ "$RESUME" -gt 0 ]; then
  say "2. resume $RESUME tasks in flight after kill -9"
  # aosd
  dir=$WORK/resume-aosd
  calls=$WORK/resume-calls.txt
  max=$RESUME
  [ "$max" -lt 64 ] && max=64
  start_aosd "$dir" --orch-max-running "$max"
  reg=$(api POST /mcp/registry "{\"name\":\"slp\",\"command\":\"$(command -v node)\",\"args\":[\"$HERE/sleep_server.mjs\",\"--log\",\"$calls\"],\"timeout_ms\":3600000,\"limits\":{\"max_concurrency\":$((2 * max)),\"queue\":$((2 * max)),\"retries\":0,\"breaker_failures\":100000,\"breaker_error_rate\":0}}")
  raw "resume: registry: $reg"
  ready=0
  for _ in $(seq 300); do
    api GET /mcp/registry/slp | grep -q '"state":"ready"' && { ready=1; break; }
    sleep 0.1
  done
  if [ $ready = 0 ]; then
    NOT_RUN+=("resume aosd (the sleep server did not get ready: $(api GET /mcp/registry/slp | head -c 300))")
    stop_aosd
  else
    inf=$(timeout 300 "$LOAD" inflight --port "$PORT" --token "$TOKEN" --count "$RESUME" --tool slp__sleep \
      --ms 3600000 --calls-file "$calls" 2>>"$WORK/load.err")
    raw "resume aosd: $inf"
    last=$(kv last_event_id "$inf")
    if [ -z "$last" ]; then
      NOT_RUN+=("resume aosd (inflight: $(tail -1 "$WORK/load.err"))")
      stop_aosd
    else
      kill -KILL "$AOSD_PID"
      wait "$AOSD_PID" 2>/dev/null
      AOSD_PID=''
      sleep 1 # the sleep server sees its stdin end and exits
      t0=$(date +%s%N)
      "$AOSD" --listen "127.0.0.1:$PORT" --data-dir "$dir" --bootstrap-token "$TOKEN" \
        --log-level warn --orch-max-running "$max" >>"$WORK/aosd.log" 2>&1 &
      AOSD_PID=$!
      rec=$(timeout 150 "$LOAD" recover --port "$PORT" --token "$TOKEN" --count "$RESUME" --after "$last" \
        --t0-ns "$t0" 2>>"$WORK/load.err")
      raw "resume aosd: $rec"
      stop_aosd
      if [ -z "$(kv last_done_ms "$rec")" ]; then
        NOT_RUN+=("resume aosd (recover: $(tail -1 "$WORK/load.err"))")
      else
        RA=$(kv last_done_ms "$rec")
        ok=$(awk -v a="$RA" 'BEGIN{print (a <= 1000) ? "yes" : "NO"}')
        [ "$ok" = yes ] || PASS=0
        say "  aosd: $(kv inflight_ms "$inf") ms to have $RESUME tasks in flight ($(kv calls "$inf") tool calls arrived);"
        say "        after kill -9 and a new start: last recovery.done $RA ms after exec (as stamped by aosd;"
        say "        received $(kv received_ms "$rec") ms, stream open at $(kv stream_open_ms "$rec") ms)," \
          "recovery.start $(kv recovery_start "$rec"), recovery.done $(kv recovery_done "$rec")  (<= 1000 ms: $ok)"
      fi
    fi
  fi
  # langgraph
  db=$WORK/resume-lg.db
  (cd "$HERE" && exec node "$PEER" inflight --db "$db" --count "$RESUME") >"$WORK/lg-inflight.out" 2>>"$WORK/peer.err" &
  BG_PID=$!
  t=$(date +%s)
  while ! grep -q '^mode=inflight' "$WORK/lg-inflight.out" && kill -0 "$BG_PID" 2>/dev/null && [ $(($(date +%s) - t)) -lt 300 ]; do
    sleep 0.1
  done
  if ! grep -q '^mode=inflight' "$WORK/lg-inflight.out"; then
    NOT_RUN+=("resume langgraph (inflight: $(tail -1 "$WORK/peer.err"))")
    stop_pid "$BG_PID"
  else
    inflight_s=$(($(date +%s) - t))
    kill -KILL "$BG_PID"
    wait "$BG_PID" 2>/dev/null
    BG_PID=''
    t0=$(date +%s%3N)
    res=$(cd "$HERE" && timeout 300 node "$PEER" resume --db "$db" --count "$RESUME" --t0-ms "$t0" 2>>"$WORK/peer.err")
    raw "resume langgraph: $res"
    if [ -z "$(kv from_exec_ms "$res")" ]; then
      NOT_RUN+=("resume langgraph (resume: $(tail -1 "$WORK/peer.err"))")
    else
      RL=$(kv from_exec_ms "$res")
      say "  langgraph: ~${inflight_s} s to have $RESUME threads in flight; after kill -9, a new process:"
      say "        all $RESUME back in the interrupted node $RL ms after exec ($(kv from_ready_ms "$res") ms after its"
      say "        modules were loaded and the saver opened; $(kv threads "$res") threads in the database)"
      say "  aosd / langgraph resume time: $(div "${RA:-}" "$RL" %.2f)"
    fi
  fi
  rm -f "$db" "$db-wal" "$db-shm"
  say ""
fi

# ---------------------------------------------------------------- 3. replay
if [ -n "$REPLAY" ] || [ -n "$LG_REPLAY_EXTRA" ]; then
  say "3. replay of an N-step episode ($REPLAY_ROUNDS reads each after one to warm; ms: median, min, max)"
  say "$(printf '  %-10s %6s %9s %9s %9s %10s %9s %10s %10s' target steps p50_ms min_ms max_ms us/step run_ms B/step answer_B)"
  declare -A RP
  for n in $REPLAY; do
    if [ "$n" -gt 1000 ]; then
      log "aosd takes at most 1,000 steps per plan: replay of $n steps skipped for aosd"
      continue
    fi
    dir=$WORK/replay-aosd-$n
    start_aosd "$dir"
    out=$(timeout 300 "$LOAD" replay --port "$PORT" --token "$TOKEN" --steps "$n" --rounds "$REPLAY_ROUNDS" 2>>"$WORK/load.err")
    stop_aosd
    raw "replay aosd $n: $out"
    if [ -z "$(kv p50_ms "$out")" ]; then
      NOT_RUN+=("replay aosd $n ($(tail -1 "$WORK/load.err"))")
      continue
    fi
    bytes=$(db_bytes "$dir/aos.db")
    RP[aosd-$n]=$(kv p50_ms "$out")
    say "$(printf '  %-10s %6s %9s %9s %9s %10s %9s %10s %10s' aosd "$n" "$(kv p50_ms "$out")" "$(kv min_ms "$out")" \
      "$(kv max_ms "$out")" "$(div "$(kv p50_ms "$out")" "$n" %.6f | awk '{printf "%.1f", $1 * 1000}')" \
      "$(kv run_ms "$out")" "$(div $((bytes - BASE_AOSD)) "$n" %.0f)" "$(kv bytes "$out")")"
    rm -rf "$dir"
  done
  for n in $REPLAY $LG_REPLAY_EXTRA; do
    db=$WORK/replay-lg-$n.db
    out=$(cd "$HERE" && timeout 600 node "$PEER" replay --db "$db" --steps "$n" --rounds "$REPLAY_ROUNDS" 2>>"$WORK/peer.err")
    raw "replay langgraph $n: $out"
    if [ -z "$(kv p50_ms "$out")" ]; then
      NOT_RUN+=("replay langgraph $n ($(tail -1 "$WORK/peer.err"))")
      continue
    fi
    bytes=$(db_bytes "$db")
    RP[lg-$n]=$(kv p50_ms "$out")
    say "$(printf '  %-10s %6s %9s %9s %9s %10s %9s %10s %10s' langgraph "$n" "$(kv p50_ms "$out")" "$(kv min_ms "$out")" \
      "$(kv max_ms "$out")" "$(div "$(kv p50_ms "$out")" "$n" %.6f | awk '{printf "%.1f", $1 * 1000}')" \
      "$(kv run_ms "$out")" "$(div $((bytes - BASE_LG)) "$n" %.0f)" "-")"
    rm -f "$db" "$db-wal" "$db-shm"
  done
  if [ -n "${RP[aosd-1000]:-}" ]; then
    ok=$(awk -v a="${RP[aosd-1000]}" 'BEGIN{print (a <= 100) ? "yes" : "NO"}')
    [ "$ok" = yes ] || PASS=0
    lin=''
    for n in $REPLAY; do
      [ -n "${RP[aosd-$n]:-}" ] && [ "$n" != 1000 ] && lin="$lin t(1000)/t($n) = $(div "${RP[aosd-1000]}" "${RP[aosd-$n]}" %.1f) (linear: $(div 1000 "$n" %.1f));"
    done
    say "  aosd 1,000-step replay ${RP[aosd-1000]} ms (<= 100 ms: $ok);$lin"
    [ -n "${RP[lg-1000]:-}" ] && say "  langgraph / aosd at 1,000 steps: $(div "${RP[lg-1000]}" "${RP[aosd-1000]}" %.1f)x"
  fi
  say "  run_ms: the episode's own run (submit -> receipt; langgraph: invoke). B/step: database bytes per"
  say "  step of that one episode. answer_B: the size of aosd's replay answer."
  say ""
fi

say "targets: $([ $PASS = 1 ] && echo "all met" || echo "NOT all met (see NO above)")"
say "CPU busy after the run: $(cpu_busy_pct)%; wall time $(($(date +%s) - T0)) s"
say "uptime after: $(uptime)"
[ ${#NOT_RUN[@]} -eq 0 ] || say "NOT RUN: ${NOT_RUN[*]}"

mkdir -p "$RESULTS"
cp "$REPORT" "$RESULTS/latest.txt"
cp "$RAW" "$RESULTS/latest-raw.txt" 2>/dev/null
log "report written to $RESULTS/latest.txt (raw lines: latest-raw.txt)"
[ ${#NOT_RUN[@]} -eq 0 ]
