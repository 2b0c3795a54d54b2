//! `dewey`: the Dewey MCP server. SQLite in ./dewey-data with no set-up;
//! PostgreSQL when DATABASE_URL is set. See the crate README.

use std::path::PathBuf;
use std::process::ExitCode;

use dewey::{MessageFiles, Storage, StorageConfig};
use mcp_runtime::State;

#[tokio::main]
async fn main() -> ExitCode {
    // The storage is opened only to serve: `--help` and `--list-tools` never
    // create a database, and `--list-tools` still checks the server whole.
    dewey::tools().state_from(open_state).run().await
}

/// The storage and the message-file reader, from the environment; logged,
/// since `run()` sets up logging before this.
async fn open_state() -> Result<(State<Storage>, State<MessageFiles>), String> {
    let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
    let files = match std::env::var_os("DEWEY_FILES_DIR").map(PathBuf::from) {
        None => MessageFiles::disabled(),
        Some(dir) => {
            MessageFiles::within(&dir).map_err(|e| format!("DEWEY_FILES_DIR={} cannot be used: {e}", dir.display()))?
        }
    };
    let storage =
        Storage::open(&config).await.map_err(|e| format!("cannot open the {} storage: {e}", backend_name(&config)))?;
    match &config {
        StorageConfig::Postgres { .. } => tracing::info!("storage: PostgreSQL (DATABASE_URL)"),
        StorageConfig::Sqlite { path } => tracing::info!(path = %path.display(), "storage: SQLite"),
    }
    if let Some(root) = files.root() {
        tracing::info!(root = %root.display(), "messages_file reads inside this directory");
    }
    Ok((State(storage), State(files)))
}

fn backend_name(config: &StorageConfig) -> &'static str {
    match config {
        StorageConfig::Postgres { .. } => "PostgreSQL",
        StorageConfig::Sqlite { .. } => "SQLite",
    }
}
