#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine (the
# official MCP clients from PyPI and npm; PostgreSQL from Debian if absent),
# builds every binary the end-to-end tests start, and runs the whole suite.
# Safe to run again: installs are skipped when already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
peers="$(pwd)/target/test-peers"
bash scripts/install-test-peers.sh

log() { printf '==> %s\n' "$*" >&2; }
log "building every binary the tests start"
cargo build --workspace --bins --all-features --locked
log "running the test suite"
MCP_TEST_PEERS="$peers" cargo test --workspace --all-features --locked "$@"
