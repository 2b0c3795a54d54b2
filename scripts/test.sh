#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine (the
# official MCP clients from PyPI and npm; PostgreSQL and Redis from Debian if absent),
# refuses unformatted code and any clippy warning, builds every binary the
# end-to-end tests start, and runs the whole suite.
# Safe to run again: installs are skipped when already in place.
# The compiler is the one rust-toolchain.toml pins.
set -euo pipefail
cd "$(dirname "$0")/.."
peers="$(pwd)/target/test-peers"

log() { printf '==> %s\n' "$*" >&2; }

# rust-toolchain.toml pins the compiler by version, and rustup (1.28 and
# later) no longer installs a missing toolchain by itself. A machine that
# has that very compiler under another name (say `stable`) gets the pinned
# name as a link to it; any other compiler is an error, not a silent drift.
ensure_pinned_toolchain() {
  local pinned default host version toolchains
  pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
  rustup run "$pinned" rustc --version >/dev/null 2>&1 && return 0
  default=$(rustup default | cut -d' ' -f1)
  version=$(rustup run "$default" rustc --version | cut -d' ' -f2)
  if [ "$version" != "$pinned" ]; then
    echo "error: rust-toolchain.toml pins rustc $pinned, this machine has $version ($default)" >&2
    exit 1
  fi
  host=$(rustup run "$default" rustc -vV | sed -n 's/^host: //p')
  toolchains="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"
  log "linking toolchain $pinned-$host to $default (the same rustc $version)"
  ln -sfn "$(rustup run "$default" rustc --print sysroot)" "$toolchains/$pinned-$host"
}
ensure_pinned_toolchain
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
# One build of everything the test run needs, by the very command that runs
# it: `cargo test` builds the test targets and, for every package with
# integration tests, its binaries (which the end-to-end tests start). A
# separate `cargo build` would use the dev profile and a different feature
# set (dev-dependencies add tokio's test-util), and the workspace would be
# compiled twice.
step "building every binary and test" \
  env MCP_TEST_PEERS="$peers" cargo test --workspace --all-features --locked --no-run
# --no-fail-fast: one failing test binary must not hide the others' results.
step "running the test suite" \
  env MCP_TEST_PEERS="$peers" cargo test --workspace --all-features --locked --no-fail-fast "$@"
