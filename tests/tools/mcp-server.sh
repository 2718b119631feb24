#!/usr/bin/env bash
# mcp-server.sh everything|fixture [stdio|http]
#
# Execs a reference MCP server, for aosd's registry (or a test, or a bench)
# to spawn as a child:
#   everything  npm @modelcontextprotocol/server-everything (tools echo,
#               get-sum, trigger-sampling-request, ...)
#   fixture     the conformance suite's reference server
#               (fixtures/conformance-everything-server.mts: tools test_*,
#               resources test://..., prompts test_*), run through tsx
# Mode stdio (default): one MCP session over stdin/stdout; stdout carries
# JSON-RPC only, everything else goes to stderr.
# Mode http: Streamable HTTP on 127.0.0.1:$PORT/mcp (PORT from the
# environment; server-everything's default 3001, the fixture's 3000). Both
# servers would listen on every interface; loopback-listen.cjs keeps them on
# 127.0.0.1 (LISTEN_HOST overrides).
set -u
. "$(dirname "$0")/lib.sh"
WHAT=${1:-}
MODE=${2:-stdio}
case "$MODE" in
  stdio) SE_MODE=stdio FX_MODE=stdio ;;
  http) SE_MODE=streamableHttp FX_MODE= ;;
  *) tools_usage 16 >&2; exit 2 ;;
esac
PRELOAD=$TOOLS_DIR/loopback-listen.cjs
case "$WHAT" in
  everything)
    tools_need @modelcontextprotocol/server-everything
    exec node --require "$PRELOAD" "$TOOLS_NM/@modelcontextprotocol/server-everything/dist/index.js" $SE_MODE
    ;;
  fixture)
    tools_need tsx
    tools_need @modelcontextprotocol/sdk
    # its imports resolve from fixtures/ upwards, i.e. from node_modules here
    exec node --require "$PRELOAD" --import "$TOOLS_NM/tsx/dist/loader.mjs" \
      "$TOOLS_DIR/fixtures/conformance-everything-server.mts" $FX_MODE
    ;;
  *) tools_usage 16 >&2; exit 2 ;;
esac
