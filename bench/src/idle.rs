//! Memory per idle connection: the server's RSS grows by how much when N
//! clients have connected, initialized and gone quiet.

use std::time::Duration;

use anyhow::Context as _;

use crate::load;
use crate::server_process::{ServerPrograms, Target};

/// How long the server gets to finish what the new connections started
/// (tasks spawned, buffers freed) before its RSS is read.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleMemory {
    pub target: Target,
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

impl IdleMemory {
    pub fn kib_per_connection(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.connections as f64
    }
}

/// Starts a fresh server (so nothing earlier has grown its heap), warms it
/// with one connection that stays open, reads RSS, opens `connections` idle
/// connections, reads RSS again.
pub async fn measure(programs: &ServerPrograms, target: Target, connections: usize) -> anyhow::Result<IdleMemory> {
    let mut server = programs.start(target).await?;
    // The first connection pays for one-time allocations (runtime threads,
    // tool registry, lazily built schemas): not per-connection memory.
    let mut warm = load::connect_initialized(server.addr).await?;
    for id in 1..=10 {
        load::echo_once(&mut warm, id).await?;
    }
    tokio::time::sleep(SETTLE).await;
    let rss_before_kib = server.rss_kib()?;
    let idle = load::connect_many(server.addr, connections, 64)
        .await
        .with_context(|| format!("opening {connections} idle connections to the {}", target.label()))?;
    tokio::time::sleep(SETTLE).await;
    let rss_after_kib = server.rss_kib()?;
    // Prove the server is still serving, so the figure is not that of a
    // server that dropped the connections.
    load::echo_once(&mut warm, 11).await.context("the server stopped answering with the idle connections open")?;
    let mut idle = idle;
    for (i, ws) in idle.iter_mut().enumerate().filter(|(i, _)| *i == 0 || *i == connections - 1) {
        load::echo_once(ws, 1).await.with_context(|| format!("idle connection {i} was dropped by the server"))?;
    }
    server.ensure_running().await?;
    drop(idle);
    Ok(IdleMemory { target, connections, rss_before_kib, rss_after_kib })
}

/// The soft limit on open files, from /proc/self/limits: the bench needs one
/// descriptor per idle connection, and the server (which inherits the limit)
/// as many again.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
