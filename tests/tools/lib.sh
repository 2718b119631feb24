# shellcheck shell=bash
# tests/tools/lib.sh - helpers of the test tooling scripts; source it, do not
# run it. Everything they use is in this directory: the npm packages pinned
# in package-lock.json, installed into node_modules/ by scripts/install-deps
# (npm ci); nothing is installed on first use, so that a test never pays for
# a download under its timeout and two tests never race to install.

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS_NM=$TOOLS_DIR/node_modules

tools_log() { echo "[$(basename "$0")] $*" >&2; }

# tools_need PKG : fail (exit 1) with a clear message unless npm package PKG
# is installed in node_modules.
tools_need() {
  if [ ! -f "$TOOLS_NM/$1/package.json" ]; then
    tools_log "$1 is not installed in $TOOLS_NM: run scripts/install-deps"
    exit 1
  fi
}

# tools_version PKG [NODE_MODULES] : the installed version of npm package
# PKG (in NODE_MODULES, default ours).
tools_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "${2:-$TOOLS_NM}/$1/package.json" 2>/dev/null | head -1
}

# tools_node22 : print the path of a node >= 22: the system node when it is
# new enough, else node-linux-<arch> from node_modules (the conformance CLI
# imports fs.globSync, which Node 20 lacks).
tools_node22() {
  local major arch
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -ge 22 ]; then
    command -v node
    return 0
  fi
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  if [ ! -x "$TOOLS_NM/node-linux-$arch/bin/node" ]; then
    tools_log "no node >= 22: node-linux-$arch is not installed in $TOOLS_NM (run scripts/install-deps)"
    return 1
  fi
  echo "$TOOLS_NM/node-linux-$arch/bin/node"
}

# tools_wrk : print the path of wrk (a Debian package; scripts/install-deps
# installs it).
tools_wrk() {
  command -v wrk && return 0
  tools_log "wrk not found: run scripts/install-deps (apt-get install wrk)"
  return 1
}

# tools_wait_http URL SECONDS : wait until something answers HTTP at URL.
tools_wait_http() {
  local url=$1 t=${2:-30} i=0
  while [ "$i" -lt $((t * 4)) ]; do
    if curl -s -o /dev/null -m 2 "$url" 2>/dev/null; then return 0; fi
    sleep 0.25
    i=$((i + 1))
  done
  return 1
}

# tools_usage LINES : print the comment block at the top of the calling
# script (lines 2..LINES) without the '# '.
tools_usage() { sed -n "2,${1}p" "$0" | sed 's/^# \{0,1\}//'; }
