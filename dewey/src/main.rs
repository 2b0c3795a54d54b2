//! `dewey`: the Dewey MCP server. SQLite in ./dewey-data with no set-up;
//! PostgreSQL when DATABASE_URL is set. See the crate README.

use std::path::PathBuf;
use std::process::ExitCode;

use dewey::{MessageFiles, Storage, StorageConfig};

#[tokio::main]
async fn main() -> ExitCode {
    // Listing the tools or printing help must not create a database (and
    // `--stdio` must, so it goes on below).
    if std::env::args().skip(1).any(|a| a.starts_with('-') && a != "--stdio") {
        return dewey::tools().run().await;
    }
    // Opening the storage logs (migrations): the subscriber must exist first.
    mcp_runtime::init_tracing();
    let config = match StorageConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let files = match std::env::var_os("DEWEY_FILES_DIR").map(PathBuf::from) {
        None => MessageFiles::disabled(),
        Some(dir) => match MessageFiles::within(&dir) {
            Ok(files) => files,
            Err(e) => {
                eprintln!("error: DEWEY_FILES_DIR={} cannot be used: {e}", dir.display());
                return ExitCode::from(2);
            }
        },
    };
    let storage = match Storage::open(&config).await {
        Ok(storage) => storage,
        Err(e) => {
            eprintln!("error: cannot open the {} storage: {e}", backend_name(&config));
            return ExitCode::FAILURE;
        }
    };
    match &config {
        StorageConfig::Postgres { .. } => tracing::info!("storage: PostgreSQL (DATABASE_URL)"),
        StorageConfig::Sqlite { path } => tracing::info!(path = %path.display(), "storage: SQLite"),
    }
    if let Some(root) = files.root() {
        tracing::info!(root = %root.display(), "messages_file reads inside this directory");
    }
    dewey::server(storage, files).run().await
}

fn backend_name(config: &StorageConfig) -> &'static str {
    match config {
        StorageConfig::Postgres { .. } => "PostgreSQL",
        StorageConfig::Sqlite { .. } => "SQLite",
    }
}
