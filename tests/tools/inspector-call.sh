#!/usr/bin/env bash
# inspector-call.sh URL TOOL [key=value ...] [inspector options ...]
# inspector-call.sh URL --method METHOD [inspector options ...]
#
# A second, independent MCP client: the official Inspector's CLI mode
# (npm @modelcontextprotocol/inspector-cli, the v1 line) over Streamable
# HTTP. Prints the JSON result; exit status 0 on success, non-zero on a
# connection or protocol error and on a tool result with "isError": true.
#   inspector-call.sh http://127.0.0.1:3001/mcp echo message=hi
#   inspector-call.sh http://127.0.0.1:3001/mcp --method tools/list
# Values of key=value are parsed as JSON when they parse (2 is a number).
# Headers: --header "Authorization: Bearer x" (after the tool arguments).
# Env: INSPECTOR_TIMEOUT (seconds, default 60).
# inspector-cli 1.0.3 reads its own package.json by a path relative to the
# current directory, so it runs from its build/ dir.
set -u
. "$(dirname "$0")/lib.sh"
if [ $# -lt 2 ]; then
  tools_usage 15
  exit 2
fi
tools_need @modelcontextprotocol/inspector-cli
URL=$1
shift
B=$TOOLS_NM/@modelcontextprotocol/inspector-cli/build
if [ "$1" != "--method" ]; then
  TOOL=$1
  shift
  TA=()
  while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do
    TA+=("$1")
    shift
  done
  if [ ${#TA[@]} -gt 0 ]; then
    set -- --method tools/call --tool-name "$TOOL" --tool-arg "${TA[@]}" "$@"
  else
    set -- --method tools/call --tool-name "$TOOL" "$@"
  fi
fi
OUT=$(cd "$B" && timeout "${INSPECTOR_TIMEOUT:-60}" node index.js "$URL" --transport http "$@" 2>&1)
rc=$?
printf '%s\n' "$OUT"
# a tool result with "isError": true is a failed call
[ $rc -eq 0 ] && printf '%s' "$OUT" | grep -q '"isError": *true' && rc=1
exit $rc
