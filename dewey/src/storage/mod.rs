//! One storage interface over two engines: PostgreSQL for production (many
//! Dewey replicas may share one database) and SQLite in a file for zero
//! set-up. Both implement [`Backend`], share the SQL that reads alike in
//! both (`sql.rs`), run their own versioned migrations at start-up and index
//! text with their own full-text engine; each keeps its engine's error types
//! to itself. The tests run against both.

mod postgres;
mod sql;
mod sqlite;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use self::postgres::PgStorage;
use self::sqlite::SqliteStorage;
use crate::error::{DeweyError, Result};
use crate::model::{
    BulkStored, BulkTarget, ConversationPage, ConversationQuery, ConversationRecord, ConversationWithMessages,
    LogBatchStored, LogQuery, LogRecord, LogStats, NewLog, NewMessage, SearchHit, SearchQuery, StartupContext,
    StoredMessage,
};

/// Which engine, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// `postgres://` or `postgresql://` URL.
    Postgres { url: String },
    /// The SQLite database file (created with its directory if missing).
    Sqlite { path: PathBuf },
}

impl StorageConfig {
    /// DATABASE_URL=postgres://... selects PostgreSQL; otherwise SQLite in
    /// `$DEWEY_DATA_DIR/dewey.sqlite3` (default `./dewey-data`).
    pub fn from_env() -> Result<StorageConfig> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(StorageConfig::Postgres { url })
                } else {
                    Err(DeweyError::invalid(
                        "DATABASE_URL must be a postgres:// or postgresql:// URL; unset it to use SQLite in \
                         DEWEY_DATA_DIR",
                    ))
                }
            }
            _ => {
                let dir = std::env::var_os("DEWEY_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| "dewey-data".into());
                Ok(StorageConfig::Sqlite { path: dir.join("dewey.sqlite3") })
            }
        }
    }
}

/// What a storage engine does. Each backend implements it with native
/// `async fn`s, so a call costs no boxing; [`Storage`] picks the engine once,
/// at start-up. The contract (the same answers from both engines) is tested
/// against both in `dewey/tests/storage.rs`.
pub(crate) trait Backend {
    async fn schema_version(&self) -> Result<i64>;
    async fn begin_conversation(
        &self,
        session_id: Option<String>,
        metadata: Option<Value>,
    ) -> Result<ConversationRecord>;
    async fn store_message(
        &self,
        conversation_id: Uuid,
        turn_number: Option<i64>,
        message: NewMessage,
    ) -> Result<StoredMessage>;
    async fn store_messages_bulk(&self, target: BulkTarget, messages: Vec<NewMessage>) -> Result<BulkStored>;
    async fn get_conversation(&self, conversation_id: Uuid) -> Result<ConversationWithMessages>;
    async fn list_conversations(&self, query: ConversationQuery) -> Result<ConversationPage>;
    async fn delete_conversation(&self, conversation_id: Uuid, force: bool) -> Result<i64>;
    async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>>;
    async fn get_startup_context(&self, name: Option<String>) -> Result<Option<StartupContext>>;
    async fn set_startup_context(
        &self,
        name: String,
        content: String,
        set_active: bool,
    ) -> Result<(StartupContext, bool)>;
    async fn list_startup_contexts(&self, include_content: bool) -> Result<Vec<StartupContext>>;
    async fn delete_startup_context(&self, name: String, force: bool) -> Result<StartupContext>;
    async fn store_logs(&self, logs: Vec<NewLog>) -> Result<LogBatchStored>;
    async fn query_logs(&self, query: LogQuery) -> Result<Vec<LogRecord>>;
    async fn clear_logs(&self, component: Option<String>, before: Option<DateTime<Utc>>) -> Result<i64>;
    async fn log_stats(&self) -> Result<LogStats>;
}

/// Dewey's storage, on whichever engine the configuration chose. Cheap to
/// clone (each backend is a handle to a pool).
#[derive(Debug, Clone)]
pub struct Storage(Engine);

#[derive(Debug, Clone)]
enum Engine {
    Postgres(PgStorage),
    Sqlite(SqliteStorage),
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.0 {
            Engine::Postgres(s) => Backend::$method(s, $($arg),*).await,
            Engine::Sqlite(s) => Backend::$method(s, $($arg),*).await,
        }
    };
}

impl Storage {
    /// Connects (or creates the file) and brings the schema up to date.
    pub async fn open(config: &StorageConfig) -> Result<Storage> {
        Ok(Storage(match config {
            StorageConfig::Postgres { url } => Engine::Postgres(PgStorage::connect(url).await?),
            StorageConfig::Sqlite { path } => Engine::Sqlite(SqliteStorage::open(path).await?),
        }))
    }

    /// `postgres` or `sqlite`, for start-up logs and reports.
    pub fn backend(&self) -> &'static str {
        match self.0 {
            Engine::Postgres(_) => "postgres",
            Engine::Sqlite(_) => "sqlite",
        }
    }

    /// The schema version the database is at after migrations.
    pub async fn schema_version(&self) -> Result<i64> {
        dispatch!(self.schema_version())
    }

    pub async fn begin_conversation(
        &self,
        session_id: Option<String>,
        metadata: Option<Value>,
    ) -> Result<ConversationRecord> {
        dispatch!(self.begin_conversation(session_id, metadata))
    }

    /// Appends one message. Without `turn_number` it gets the next turn of
    /// the conversation, decided under a lock on the conversation so that
    /// concurrent appends never share a turn; an explicit turn that is taken
    /// is a conflict.
    pub async fn store_message(
        &self,
        conversation_id: Uuid,
        turn_number: Option<i64>,
        message: NewMessage,
    ) -> Result<StoredMessage> {
        dispatch!(self.store_message(conversation_id, turn_number, message))
    }

    /// Appends messages in order as consecutive turns, all or none.
    pub async fn store_messages_bulk(&self, target: BulkTarget, messages: Vec<NewMessage>) -> Result<BulkStored> {
        dispatch!(self.store_messages_bulk(target, messages))
    }

    pub async fn get_conversation(&self, conversation_id: Uuid) -> Result<ConversationWithMessages> {
        dispatch!(self.get_conversation(conversation_id))
    }

    pub async fn list_conversations(&self, query: ConversationQuery) -> Result<ConversationPage> {
        dispatch!(self.list_conversations(query))
    }

    /// Deletes a conversation with its messages; returns how many messages
    /// went. A conversation that has messages needs `force`.
    pub async fn delete_conversation(&self, conversation_id: Uuid, force: bool) -> Result<i64> {
        dispatch!(self.delete_conversation(conversation_id, force))
    }

    pub async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>> {
        dispatch!(self.search(query))
    }

    /// The named context, or the active one when `name` is `None`.
    pub async fn get_startup_context(&self, name: Option<String>) -> Result<Option<StartupContext>> {
        dispatch!(self.get_startup_context(name))
    }

    /// Creates or replaces a context. With `set_active` it becomes the only
    /// active one; without, an already active context stays active. Also
    /// says whether the context was created (rather than replaced).
    pub async fn set_startup_context(
        &self,
        name: String,
        content: String,
        set_active: bool,
    ) -> Result<(StartupContext, bool)> {
        dispatch!(self.set_startup_context(name, content, set_active))
    }

    pub async fn list_startup_contexts(&self, include_content: bool) -> Result<Vec<StartupContext>> {
        dispatch!(self.list_startup_contexts(include_content))
    }

    /// Deleting the active context needs `force`.
    pub async fn delete_startup_context(&self, name: String, force: bool) -> Result<StartupContext> {
        dispatch!(self.delete_startup_context(name, force))
    }

    /// Stores each entry once: an id already stored is skipped and counted
    /// as a duplicate.
    pub async fn store_logs(&self, logs: Vec<NewLog>) -> Result<LogBatchStored> {
        dispatch!(self.store_logs(logs))
    }

    /// Newest first.
    pub async fn query_logs(&self, query: LogQuery) -> Result<Vec<LogRecord>> {
        dispatch!(self.query_logs(query))
    }

    /// Deletes the logs of `component` and/or older than `before`; returns
    /// how many. The caller makes sure at least one filter is given.
    pub async fn clear_logs(&self, component: Option<String>, before: Option<DateTime<Utc>>) -> Result<i64> {
        dispatch!(self.clear_logs(component, before))
    }

    pub async fn log_stats(&self) -> Result<LogStats> {
        dispatch!(self.log_stats())
    }
}

pub(crate) fn conversation_not_found(id: Uuid) -> DeweyError {
    DeweyError::not_found(format!(
        "conversation {id} not found; start one with dewey_begin_conversation or list them with \
         dewey_list_conversations"
    ))
}

pub(crate) fn turn_taken(id: Uuid, turn: i64) -> DeweyError {
    DeweyError::Conflict(format!(
        "turn {turn} is already taken in conversation {id}; omit `turn_number` to append at the next free turn"
    ))
}

pub(crate) fn has_messages(id: Uuid, count: i64) -> DeweyError {
    DeweyError::Conflict(format!(
        "conversation {id} has {count} messages; pass `force: true` to delete it with its messages"
    ))
}

pub(crate) fn context_not_found(name: &str) -> DeweyError {
    DeweyError::not_found(format!("startup context {name:?} not found; list them with dewey_list_startup_contexts"))
}

pub(crate) fn context_is_active(name: &str) -> DeweyError {
    DeweyError::Conflict(format!(
        "startup context {name:?} is the active one; pass `force: true` to delete it anyway (no context is active \
         afterwards)"
    ))
}

/// The largest turn number both engines store (PostgreSQL INTEGER).
pub const MAX_TURN: i64 = i32::MAX as i64;

pub(crate) fn no_turns_left(id: Uuid) -> DeweyError {
    DeweyError::invalid(format!("conversation {id} has no turn numbers left"))
}

/// The turn after `last`, refused past MAX_TURN so both engines answer alike
/// (PostgreSQL would overflow its INTEGER, SQLite would store it).
pub(crate) fn next_turn(id: Uuid, last: i64) -> Result<i64> {
    if last >= MAX_TURN { Err(no_turns_left(id)) } else { Ok(last + 1) }
}
