//! `horace`: the Horace MCP server. With no set-up it keeps its storage root
//! in ./horace-data/files and its catalog in ./horace-data/horace.sqlite3;
//! HORACE_STORAGE_ROOT and DATABASE_URL move them. See the crate README.

use std::process::ExitCode;

use horace::{CatalogConfig, Horace};

#[tokio::main]
async fn main() -> ExitCode {
    // Listing the tools or printing help must not create any folder.
    if std::env::args().skip(1).any(|a| a.starts_with('-')) {
        return horace::tools().run().await;
    }
    // Opening the catalog logs (migrations): the subscriber must exist first.
    mcp_runtime::init_tracing();
    let config = match CatalogConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {}", e.message());
            return ExitCode::from(2);
        }
    };
    let root = horace::storage_root_from_env();
    let horace = match Horace::open(&root, &config).await {
        Ok(horace) => horace,
        Err(e) => {
            eprintln!("error: {}", e.message());
            return ExitCode::FAILURE;
        }
    };
    match &config {
        CatalogConfig::Postgres { .. } => tracing::info!("catalog: PostgreSQL (DATABASE_URL)"),
        CatalogConfig::Sqlite { path } => tracing::info!(path = %path.display(), "catalog: SQLite"),
    }
    tracing::info!(root = %horace.root().path().display(), "storage root");
    horace::server(horace).run().await
}
