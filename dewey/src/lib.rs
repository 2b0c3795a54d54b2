//! Dewey: conversations, startup contexts and logs, stored in PostgreSQL or
//! SQLite and served as MCP tools over WebSocket.
//!
//! The binary and the tests build the same server:
//!
//! ```no_run
//! # async fn run() -> Result<(), dewey::DeweyError> {
//! let storage = dewey::Storage::open(&dewey::StorageConfig::from_env()?).await?;
//! let bound = dewey::server(storage, dewey::MessageFiles::disabled()).bind("127.0.0.1:0").await.unwrap();
//! println!("listening on ws://{}", bound.local_addr());
//! bound.serve().await.unwrap();
//! # Ok(()) }
//! ```

pub mod bulk_messages;
pub mod error;
pub mod log_batch;
pub mod model;
pub mod storage;
pub mod tools;

use mcp_runtime::{Server, ServerBuilder};

pub use bulk_messages::MessageFiles;
pub use error::DeweyError;
pub use storage::{Storage, StorageConfig};

/// The port Dewey listens on when MCP_PORT is unset.
pub const DEFAULT_PORT: u16 = 9020;

/// The tools, without state: enough for `--list-tools`.
pub fn tools() -> ServerBuilder {
    use tools::conversations::*;
    use tools::logs::*;
    use tools::startup_contexts::*;
    Server::builder("dewey", env!("CARGO_PKG_VERSION"))
        .instructions(
            "Dewey stores conversations (begin, store messages, search), startup contexts (one active) and logs \
             (batches from Godot, queried by trace, component, level, time or text).",
        )
        .default_port(DEFAULT_PORT)
        .tool::<begin_conversation>()
        .tool::<store_message>()
        .tool::<store_messages_bulk>()
        .tool::<get_conversation>()
        .tool::<list_conversations>()
        .tool::<delete_conversation>()
        .tool::<search>()
        .tool::<get_startup_context>()
        .tool::<set_startup_context>()
        .tool::<list_startup_contexts>()
        .tool::<delete_startup_context>()
        .tool::<store_logs_batch>()
        .tool::<query_logs>()
        .tool::<clear_logs>()
        .tool::<get_log_stats>()
}

/// The Dewey server over `storage`, reading `messages_file` only where
/// `files` allows. Bind it, or `run()` it as the binary does.
pub fn server(storage: Storage, files: MessageFiles) -> ServerBuilder {
    tools().state(storage).state(files)
}
