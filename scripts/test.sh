#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine (the
# official MCP clients from PyPI and npm; PostgreSQL from Debian if absent),
# refuses unformatted code and any clippy warning, builds every binary the
# end-to-end tests start, and runs the whole suite.
# Safe to run again: installs are skipped when already in place.
# The compiler is the one rust-toolchain.toml pins.
set -euo pipefail
cd "$(dirname "$0")/.."
peers="$(pwd)/target/test-peers"

log() { printf '==> %s\n' "$*" >&2; }
step() { # name, command...: runs it and says how long it took
  local name=$1 started=$SECONDS
  shift
  log "$name"
  "$@"
  log "$name: $((SECONDS - started)) s"
}

# Cheapest checks first: a formatting slip fails in a second, not after the build.
step "checking formatting (cargo fmt --check)" cargo fmt --all -- --check
step "linting (clippy, warnings are errors)" \
  cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
step "installing test peers" bash scripts/install-test-peers.sh
# The test run below reuses these artifacts (same profile and features).
step "building every binary the tests start" cargo build --workspace --bins --all-features --locked
step "running the test suite" env MCP_TEST_PEERS="$peers" cargo test --workspace --all-features --locked "$@"
