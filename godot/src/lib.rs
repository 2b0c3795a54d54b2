//! Godot: the ICCM logging facade and its worker.
//!
//! The facade (`logger_log` and friends, on port 9060) puts each log entry
//! on a queue and answers at once; the worker takes batches off the queue
//! and stores them in Dewey with `dewey_store_logs_batch`. An entry leaves
//! the queue only after Dewey has stored it, so no crash, restart or outage
//! of the worker, Dewey or Redis loses it. The queue is a Redis stream
//! (production: many facades and workers on one Redis) or an SQLite file
//! (the default when no Redis is configured). See the crate README.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = godot::Config::embedded("godot-data");
//! let queue = godot::Queue::open(&config)?;
//! let facade = godot::Facade::start(queue.clone(), &config);
//! let bound = godot::server(facade).bind("127.0.0.1:0").await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(godot::worker::run(queue, config.clone(), shutdown.clone()));
//! bound.serve().await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod dewey_link;
pub mod entry;
pub mod facade;
pub mod intake;
pub mod queue;
pub mod tools;
pub mod worker;

use mcp_runtime::{Server, ServerBuilder};

pub use config::{Config, ConfigError};
pub use entry::{Level, LogEntry};
pub use facade::Facade;
pub use queue::Queue;

/// The port Godot listens on when MCP_PORT is unset.
pub const DEFAULT_PORT: u16 = 9060;

/// The tools, without state: enough for `--list-tools`.
pub fn tools() -> ServerBuilder {
    use tools::*;
    Server::builder("godot", env!("CARGO_PKG_VERSION"))
        .instructions(
            "Godot collects logs: logger_log queues an entry and answers at once; a worker stores queued entries in \
             Dewey. logger_query and logger_clear read and clear them there; logger_set_level filters a component; \
             logger_stats shows the queue. The conversation_* tools store conversations in Dewey.",
        )
        .default_port(DEFAULT_PORT)
        .tool::<logger_log>()
        .tool::<logger_query>()
        .tool::<logger_clear>()
        .tool::<logger_set_level>()
        .tool::<logger_stats>()
        .tool::<logger_dead_letters>()
        .tool::<conversation_begin>()
        .tool::<conversation_store_message>()
        .tool::<conversation_store_messages_bulk>()
}

/// The facade server over `facade`. Bind it, or `run()` it.
///
/// The runtime's Godot sink (GODOT_URL) is off here whatever the
/// environment says: Godot logging its own `logger_log` calls to itself
/// would double its work for nothing.
pub fn server(facade: Facade) -> ServerBuilder {
    tools().state(facade).log_to_godot(None)
}
