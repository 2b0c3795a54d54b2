//! `horace`: the Horace MCP server. With no set-up it keeps its storage root
//! in ./horace-data/files and its catalog in ./horace-data/horace.sqlite3;
//! HORACE_STORAGE_ROOT and DATABASE_URL move them. See the crate README.

use std::process::ExitCode;

use horace::{CatalogConfig, Horace};
use mcp_runtime::State;

#[tokio::main]
async fn main() -> ExitCode {
    // The root and the catalog are opened only to serve: `--help` and
    // `--list-tools` never create a folder, and `--list-tools` still checks
    // the server whole.
    horace::tools_for_root(&horace::storage_root_from_env()).state_from(open_state).run().await
}

/// The storage root and the catalog, from the environment; logged, since
/// `run()` sets up logging before this.
async fn open_state() -> Result<State<Horace>, String> {
    let config = CatalogConfig::from_env().map_err(|e| e.message().to_owned())?;
    let root = horace::storage_root_from_env();
    let horace = Horace::open(&root, &config).await.map_err(|e| e.message().to_owned())?;
    match &config {
        CatalogConfig::Postgres { .. } => tracing::info!("catalog: PostgreSQL (DATABASE_URL)"),
        CatalogConfig::Sqlite { path } => tracing::info!(path = %path.display(), "catalog: SQLite"),
    }
    tracing::info!(root = %horace.root().path().display(), "storage root");
    Ok(State(horace))
}
