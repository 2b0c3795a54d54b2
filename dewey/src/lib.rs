//! Dewey: conversations, startup contexts and logs, stored in PostgreSQL or
//! SQLite and served as MCP tools.

pub mod bulk_messages;
pub mod error;
pub mod log_batch;
pub mod model;
pub mod storage;

pub use error::DeweyError;
pub use storage::{Storage, StorageConfig};
