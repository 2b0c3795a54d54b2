//! The test harness shared by the workspace's end-to-end tests.
//!
//! Everything here starts real things: server binaries on free ports, a
//! PostgreSQL cluster or a Redis server in a temporary directory, the official MCP clients that
//! `scripts/test.sh` installs. Each handle stops what it started when dropped,
//! so tests can run in parallel and leave nothing behind.

mod peers;
mod port;
mod postgres;
mod process;
mod redis;

pub use peers::{ConformanceSuite, Peers, conformance_suite, peers, scripts_dir};
pub use port::HeldPort;
pub use postgres::TestPostgres;
pub use process::{ServerProcess, binary};
pub use redis::TestRedis;
