#!/usr/bin/env bash
# bench/auth/run.sh - the authorization benchmark (issue 16).
#
# 1. auth_check: one aos_auth_check decision with 10,000 grants in the
#    table, p50/p99/max (target p99 <= 5 us).
# 2. http_auth + wrk: requests/s of a cheap route with authorization
#    (GET /on: token hashed, looked up, checked; aos_auth_check) against
#    the same route with none (GET /off), the same Authorization header on
#    both, rounds alternating so that drift of a shared machine hits both;
#    medians and the ratio on/off (target >= 0.95).
# 3. audit_verify: GET /audit/verify's work on 1,000,000 audit rows
#    (appended through the real append first), best of 3 (target <= 2 s).
# 4. redact_lines: the redactor (src/redact) on 200-byte log lines, 100
#    stored values, default and all patterns: lines/s on one core.
#
# Loopback only; every process started here is stopped on exit (Ctrl-C
# included) and the temporary directory removed. About 1 minute by default.
#
# Env: BENCH_RUNS (3) rounds, BENCH_SECONDS (8) seconds per load, BENCH_CONNS
#      (16) connections, BENCH_PORT (3501), BENCH_BUILD (<repo>/build),
#      BENCH_DECISIONS (1000000), BENCH_AUDIT_ROWS (1000000).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-8}
CONNS=${BENCH_CONNS:-16}
PORT=${BENCH_PORT:-3501}
BUILD=${BENCH_BUILD:-$ROOT/build}
DECISIONS=${BENCH_DECISIONS:-1000000}
AUDIT_ROWS=${BENCH_AUDIT_ROWS:-1000000}
TOKEN=bench-auth-owner-token-0123456789
for bin in auth_check http_auth audit_verify redact_lines; do
  [ -x "$BUILD/bench/$bin" ] || { echo "missing $BUILD/bench/$bin: build first (make build)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is missing (scripts/install-deps --bench)" >&2; exit 1; }
TMP=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ] && kill "$PID" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== auth_check: one decision, 10,000 grants"
"$BUILD/bench/auth_check" --decisions "$DECISIONS" || exit 1

echo "== http_auth: GET /on (authorized) vs GET /off (no authorization), $CONNS connections, ${SECS}s x $RUNS rounds"
"$BUILD/bench/http_auth" --data-dir "$TMP" --port "$PORT" --token "$TOKEN" --tokens 1000 >"$TMP/out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 100); do grep -q ready "$TMP/out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$TMP/out" || { echo "http_auth did not start: $(cat "$TMP/err")" >&2; exit 1; }
load() {
  wrk -t1 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/$1" |
    awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "non2xx " $4 > "/dev/stderr"}'
}
# a status check: /on must answer 200 with the token, 401 without
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/on")" = 200 ] || { echo "/on refused the token" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/on")" = 401 ] || { echo "/on let a request without a token in" >&2; exit 1; }
load off >/dev/null; load on >/dev/null # warm-up
ON=(); OFF=()
for r in $(seq "$RUNS"); do
  OFF+=("$(load off)"); ON+=("$(load on)")
  echo "round $r: off ${OFF[-1]} req/s, on ${ON[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
MON=$(median "${ON[@]}"); MOFF=$(median "${OFF[@]}")
awk -v on="$MON" -v off="$MOFF" 'BEGIN {printf "http_auth: median on %.0f req/s, off %.0f req/s, ratio %.3f\n", on, off, on/off}'
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID= # a quiet machine for the next part

echo "== audit_verify: the audit hash chain, $AUDIT_ROWS rows"
mkdir -p "$TMP/audit"
"$BUILD/bench/audit_verify" --rows "$AUDIT_ROWS" --dir "$TMP/audit" 2>/dev/null || exit 1

echo "== redact_lines: the redactor on 200-byte lines"
"$BUILD/bench/redact_lines" || exit 1
