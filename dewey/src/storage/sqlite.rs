//! The SQLite backend: one file, WAL, one writer connection (so appends to
//! a conversation are serialised) and a few readers, all driven from
//! `spawn_blocking`; FTS5 external-content tables for full-text search.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::{ToSql, ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;
use uuid::Uuid;

use super::sql::{self, Dialect, Filters, Param};
use super::{
    Backend, MAX_TURN, context_is_active, context_not_found, conversation_not_found, has_messages, next_turn,
    no_turns_left, turn_taken,
};
use crate::error::{DeweyError, Result};
use crate::model::{
    BulkStored, BulkTarget, ConversationPage, ConversationQuery, ConversationRecord, ConversationWithMessages,
    LogBatchStored, LogLevel, LogQuery, LogRecord, LogStats, MessageRecord, NewLog, NewMessage, Role, SearchHit,
    SearchQuery, StartupContext, StoredMessage, format_timestamp,
};

/// Versioned, append-only: a released migration is never edited.
/// Timestamps are INTEGER microseconds since the Unix epoch (UTC).
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    session_id  TEXT,
    metadata    TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX conversations_session_idx ON conversations (session_id, created_at);
CREATE INDEX conversations_created_idx ON conversations (created_at);
CREATE INDEX conversations_updated_idx ON conversations (updated_at);

CREATE TABLE messages (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn_number     INTEGER NOT NULL CHECK (turn_number > 0),
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content         TEXT NOT NULL,
    metadata        TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (conversation_id, turn_number)
);
CREATE INDEX messages_created_idx ON messages (created_at);
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content, content = 'messages', content_rowid = 'seq', tokenize = 'porter unicode61'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;

CREATE TABLE startup_contexts (
    name        TEXT PRIMARY KEY,
    content     TEXT NOT NULL,
    is_active   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX startup_contexts_one_active ON startup_contexts (is_active) WHERE is_active;

CREATE TABLE logs (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    component   TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR')),
    level_rank  INTEGER NOT NULL,
    message     TEXT NOT NULL,
    trace_id    TEXT,
    data        TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX logs_created_idx ON logs (created_at);
CREATE INDEX logs_trace_idx ON logs (trace_id, created_at) WHERE trace_id IS NOT NULL;
CREATE INDEX logs_component_idx ON logs (component, created_at);
CREATE VIRTUAL TABLE logs_fts USING fts5 (
    message, content = 'logs', content_rowid = 'seq', tokenize = 'porter unicode61'
);
CREATE TRIGGER logs_fts_insert AFTER INSERT ON logs BEGIN
    INSERT INTO logs_fts (rowid, message) VALUES (new.seq, new.message);
END;
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
END;
"#,
)];

/// Readers kept open between calls; more are opened under load and closed
/// when returned beyond this number.
const IDLE_READERS: usize = 4;

/// A handle to the database file; clones share the connections.
#[derive(Clone)]
pub(crate) struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage").field("path", &self.inner.path).finish()
    }
}

/// The shared filters' parameters as SQLite values; times are stored as
/// microseconds since the epoch.
impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::Int(n) => ToSqlOutput::Owned(SqlValue::Integer(*n)),
            Param::Rank(rank) => ToSqlOutput::Owned(SqlValue::Integer((*rank).into())),
            Param::Time(time) => ToSqlOutput::Owned(SqlValue::Integer(time.timestamp_micros())),
        })
    }
}

/// A statement shared with PostgreSQL, in SQLite's placeholders.
fn sql(statement: &str) -> std::borrow::Cow<'_, str> {
    Dialect::Sqlite.sql(statement)
}

fn blocking_failed(e: tokio::task::JoinError) -> DeweyError {
    DeweyError::storage(format!("the storage task failed: {e}"))
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Log ids and timestamps arrive in random order, so every batch touches
    // pages all over the indexes: keep them in memory (64 MiB per connection).
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating the file and its directory if needed) and migrates.
    pub(crate) async fn open(path: &Path) -> Result<SqliteStorage> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path)).await.map_err(blocking_failed)?
    }

    fn open_blocking(path: PathBuf) -> Result<SqliteStorage> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DeweyError::storage(format!("cannot create the data directory {}: {e}", dir.display())))?;
        }
        let mut writer =
            Connection::open(&path).map_err(|e| DeweyError::storage(format!("cannot open {}: {e}", path.display())))?;
        // WAL lets readers run while the writer commits.
        let _mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        configure(&writer)?;
        // A 1,000-row batch dirties thousands of index pages; checkpointing
        // every 1,000 WAL pages (the default) would copy them back (and
        // fsync) after nearly every batch. 64 MiB of WAL lets hot pages be
        // written once per many batches.
        writer.pragma_update(None, "wal_autocheckpoint", 16_384)?;
        writer.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        migrate(&mut writer)?;
        Ok(SqliteStorage {
            inner: Arc::new(Inner { path, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) }),
        })
    }

    /// Runs `f` on the single writer connection.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(blocking_failed)?
    }

    /// Runs `f` on a read-only connection from the pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                    )?;
                    configure(&c)?;
                    c
                }
            };
            let result = f(&conn);
            let mut readers = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if readers.len() < IDLE_READERS {
                readers.push(conn);
            }
            result
        })
        .await
        .map_err(blocking_failed)?
    }
}

impl Backend for SqliteStorage {
    async fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?))
            .await
    }

    async fn begin_conversation(
        &self,
        session_id: Option<String>,
        metadata: Option<Value>,
    ) -> Result<ConversationRecord> {
        self.write(move |conn| {
            let id = Uuid::now_v7();
            let now = Utc::now();
            conn.execute(
                &sql(sql::INSERT_CONVERSATION),
                params![id.to_string(), session_id, json_text(&metadata), now.timestamp_micros()],
            )?;
            Ok(ConversationRecord {
                conversation_id: id.to_string(),
                session_id,
                metadata,
                created_at: format_timestamp(now),
                updated_at: format_timestamp(now),
                message_count: 0,
            })
        })
        .await
    }

    async fn store_message(
        &self,
        conversation_id: Uuid,
        turn_number: Option<i64>,
        message: NewMessage,
    ) -> Result<StoredMessage> {
        self.write(move |conn| {
            // IMMEDIATE takes the write lock up front: another process on the
            // same file cannot slip a turn in between MAX and INSERT.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let conv = conversation_id.to_string();
            let now = Utc::now();
            if tx.execute(&sql(sql::TOUCH_CONVERSATION), params![conv, now.timestamp_micros()])? == 0 {
                return Err(conversation_not_found(conversation_id));
            }
            let turn: i64 = match turn_number {
                Some(t) => t,
                None => next_turn(conversation_id, tx.query_row(&sql(sql::LAST_TURN), [&conv], |r| r.get(0))?)?,
            };
            let id = Uuid::now_v7();
            tx.execute(
                &sql(sql::INSERT_MESSAGE),
                params![
                    id.to_string(),
                    conv,
                    turn,
                    message.role.as_str(),
                    message.content,
                    json_text(&message.metadata),
                    now.timestamp_micros()
                ],
            )
            .map_err(|e| map_unique(e, || turn_taken(conversation_id, turn)))?;
            tx.commit()?;
            Ok(StoredMessage {
                message_id: id.to_string(),
                conversation_id: conv,
                turn_number: turn,
                created_at: format_timestamp(now),
            })
        })
        .await
    }

    async fn store_messages_bulk(&self, target: BulkTarget, messages: Vec<NewMessage>) -> Result<BulkStored> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = Utc::now().timestamp_micros();
            let (conversation_id, created) = match target {
                BulkTarget::Existing(id) => {
                    if tx.execute(&sql(sql::TOUCH_CONVERSATION), params![id.to_string(), now])? == 0 {
                        return Err(conversation_not_found(id));
                    }
                    (id, false)
                }
                BulkTarget::New { session_id, metadata } => {
                    let id = Uuid::now_v7();
                    tx.execute(
                        &sql(sql::INSERT_CONVERSATION),
                        params![id.to_string(), session_id, json_text(&metadata), now],
                    )?;
                    (id, true)
                }
            };
            let conv = conversation_id.to_string();
            let base: i64 = tx.query_row(&sql(sql::LAST_TURN), [&conv], |r| r.get(0))?;
            let count = messages.len() as i64;
            if base + count > MAX_TURN {
                return Err(no_turns_left(conversation_id));
            }
            {
                let mut insert = tx.prepare_cached(&sql(sql::INSERT_MESSAGE))?;
                for (n, m) in messages.into_iter().enumerate() {
                    insert.execute(params![
                        Uuid::now_v7().to_string(),
                        conv,
                        base + 1 + n as i64,
                        m.role.as_str(),
                        m.content,
                        json_text(&m.metadata),
                        now
                    ])?;
                }
            }
            tx.commit()?;
            Ok(BulkStored {
                conversation_id: conv,
                conversation_created: created,
                messages_stored: count,
                first_turn: base + 1,
                last_turn: base + count,
            })
        })
        .await
    }

    async fn get_conversation(&self, conversation_id: Uuid) -> Result<ConversationWithMessages> {
        self.read(move |conn| {
            let conv = conversation_id.to_string();
            let mut conversation = conn
                .query_row(&sql(sql::SELECT_CONVERSATION), [&conv], conversation_from_row)
                .optional()?
                .ok_or_else(|| conversation_not_found(conversation_id))?;
            let mut stmt = conn.prepare_cached(&sql(sql::SELECT_MESSAGES))?;
            let messages = stmt.query_map([&conv], message_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            conversation.message_count = messages.len() as i64;
            Ok(ConversationWithMessages { conversation, messages })
        })
        .await
    }

    async fn list_conversations(&self, query: ConversationQuery) -> Result<ConversationPage> {
        self.read(move |conn| {
            let (page_sql, page, count_sql, count) = sql::list_conversations(Dialect::Sqlite, &query);
            let mut stmt = conn.prepare_cached(&page_sql)?;
            let conversations = stmt
                .query_map(rusqlite::params_from_iter(&page.params), conversation_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let total = conn.query_row(&count_sql, rusqlite::params_from_iter(&count.params), |r| r.get(0))?;
            Ok(ConversationPage { conversations, total })
        })
        .await
    }

    async fn delete_conversation(&self, conversation_id: Uuid, force: bool) -> Result<i64> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let conv = conversation_id.to_string();
            let count: i64 = tx
                .query_row(&sql(sql::COUNT_MESSAGES), [&conv], |r| r.get(0))
                .optional()?
                .ok_or_else(|| conversation_not_found(conversation_id))?;
            if count > 0 && !force {
                return Err(has_messages(conversation_id, count));
            }
            // Explicitly, rather than through the cascade, so the FTS delete
            // trigger runs for every message.
            tx.execute("DELETE FROM messages WHERE conversation_id = ?1", [&conv])?;
            tx.execute(&sql(sql::DELETE_CONVERSATION), [&conv])?;
            tx.commit()?;
            Ok(count)
        })
        .await
    }

    async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>> {
        self.read(move |conn| {
            let mut filters = Filters::new(Dialect::Sqlite);
            filters.condition("messages_fts MATCH {}", Param::Text(query.terms.fts5()));
            sql::search_conditions(&mut filters, &query);
            let where_clause = filters.where_clause();
            let limit = filters.bind(Param::Int(query.limit));
            let offset = filters.bind(Param::Int(query.offset));
            let sql = format!(
                "SELECT m.id, m.conversation_id, c.session_id, m.turn_number, m.role, m.content, m.created_at, \
                        bm25(messages_fts) AS score \
                 FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid \
                      JOIN conversations c ON c.id = m.conversation_id \
                 {where_clause} \
                 ORDER BY score, m.created_at DESC, m.seq \
                 LIMIT {limit} OFFSET {offset}"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let hits = stmt
                .query_map(rusqlite::params_from_iter(&filters.params), |row| {
                    Ok(SearchHit {
                        message_id: row.get(0)?,
                        conversation_id: row.get(1)?,
                        session_id: row.get(2)?,
                        turn_number: row.get(3)?,
                        role: role_column(row, 4)?,
                        content: row.get(5)?,
                        created_at: micros_column(row, 6)?,
                        // BM25 is lower-is-better; negate so every backend
                        // reports higher-is-better.
                        rank: -row.get::<_, f64>(7)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(hits)
        })
        .await
    }

    async fn get_startup_context(&self, name: Option<String>) -> Result<Option<StartupContext>> {
        self.read(move |conn| {
            let row = match name {
                Some(name) => conn.query_row(&sql(sql::SELECT_CONTEXT), [name], |r| context_from_row(r, true)),
                None => conn.query_row(sql::SELECT_ACTIVE_CONTEXT, [], |r| context_from_row(r, true)),
            }
            .optional()?;
            Ok(row)
        })
        .await
    }

    async fn set_startup_context(
        &self,
        name: String,
        content: String,
        set_active: bool,
    ) -> Result<(StartupContext, bool)> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = Utc::now().timestamp_micros();
            if set_active {
                tx.execute(&sql(sql::DEACTIVATE_OTHER_CONTEXTS), params![name, now])?;
            }
            let existed: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM startup_contexts WHERE name = ?1)", [&name], |r| r.get(0))?;
            tx.execute(&sql(sql::UPSERT_CONTEXT), params![name, content, set_active, now])?;
            let context = tx.query_row(&sql(sql::SELECT_CONTEXT), [&name], |r| context_from_row(r, true))?;
            tx.commit()?;
            Ok((context, !existed))
        })
        .await
    }

    async fn list_startup_contexts(&self, include_content: bool) -> Result<Vec<StartupContext>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(sql::LIST_CONTEXTS)?;
            Ok(stmt.query_map([], |r| context_from_row(r, include_content))?.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn delete_startup_context(&self, name: String, force: bool) -> Result<StartupContext> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let context = tx
                .query_row(&sql(sql::SELECT_CONTEXT), [&name], |r| context_from_row(r, false))
                .optional()?
                .ok_or_else(|| context_not_found(&name))?;
            if context.is_active && !force {
                return Err(context_is_active(&name));
            }
            tx.execute(&sql(sql::DELETE_CONTEXT), [&name])?;
            tx.commit()?;
            Ok(context)
        })
        .await
    }

    async fn store_logs(&self, logs: Vec<NewLog>) -> Result<LogBatchStored> {
        if logs.is_empty() {
            return Ok(LogBatchStored { stored: 0, duplicates: 0 });
        }
        self.write(move |conn| {
            let total = logs.len() as i64;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut stored = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO logs (id, component, level, level_rank, message, trace_id, data, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                )?;
                for log in logs {
                    stored += insert.execute(params![
                        log.id.to_string(),
                        log.component,
                        log.level.as_str(),
                        log.level.rank(),
                        log.message,
                        log.trace_id,
                        json_text(&log.data),
                        log.created_at.timestamp_micros()
                    ])? as i64;
                }
            }
            tx.commit()?;
            Ok(LogBatchStored { stored, duplicates: total - stored })
        })
        .await
    }

    async fn query_logs(&self, query: LogQuery) -> Result<Vec<LogRecord>> {
        self.read(move |conn| {
            let mut filters = Filters::new(Dialect::Sqlite);
            sql::log_conditions(&mut filters, &query);
            if let Some(search) = &query.search {
                filters.condition(
                    "seq IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH {})",
                    Param::Text(search.fts5()),
                );
            }
            let where_clause = filters.where_clause();
            let limit = filters.bind(Param::Int(query.limit));
            let sql = format!(
                "SELECT {} FROM logs {where_clause} ORDER BY created_at DESC, seq DESC LIMIT {limit}",
                sql::LOG_COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let logs = stmt
                .query_map(rusqlite::params_from_iter(&filters.params), |row| {
                    Ok(LogRecord {
                        id: row.get(0)?,
                        component: row.get(1)?,
                        level: level_column(row, 2)?,
                        message: row.get(3)?,
                        trace_id: row.get(4)?,
                        data: json_column(row, 5)?,
                        created_at: micros_column(row, 6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(logs)
        })
        .await
    }

    async fn clear_logs(&self, component: Option<String>, before: Option<DateTime<Utc>>) -> Result<i64> {
        self.write(move |conn| {
            let (sql, filters) = sql::clear_logs(Dialect::Sqlite, component, before);
            Ok(conn.execute(&sql, rusqlite::params_from_iter(&filters.params))? as i64)
        })
        .await
    }

    async fn log_stats(&self) -> Result<LogStats> {
        self.read(move |conn| {
            let (total, oldest, newest): (i64, Option<i64>, Option<i64>) =
                conn.query_row(sql::LOG_TOTALS, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let mut by_level: BTreeMap<String, i64> =
                LogLevel::ALL.iter().map(|l| (l.as_str().to_owned(), 0)).collect();
            let mut stmt = conn.prepare_cached(sql::LOG_COUNTS_BY_LEVEL)?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (level, n) = row?;
                by_level.insert(level, n);
            }
            let mut stmt = conn.prepare_cached(sql::LOG_COUNTS_BY_COMPONENT)?;
            let by_component = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
            let bytes: i64 = conn.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get(0),
            )?;
            Ok(LogStats {
                total_logs: total,
                by_level,
                by_component,
                oldest: oldest.map(micros_to_string).transpose()?,
                newest: newest.map(micros_to_string).transpose()?,
                storage_bytes: Some(bytes),
            })
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // IMMEDIATE: a second process opening the same file waits here instead
    // of applying the same migration twice.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Utc::now().timestamp_micros()],
        )?;
        tracing::info!(version, "applied SQLite migration");
    }
    tx.commit()?;
    Ok(())
}

/// Only a UNIQUE violation is the conflict `conflict` describes; NOT NULL,
/// CHECK or foreign-key failures stay errors of their own.
fn map_unique(e: rusqlite::Error, conflict: impl FnOnce() -> DeweyError) -> DeweyError {
    match &e {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            conflict()
        }
        _ => e.into(),
    }
}

fn json_text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(Value::to_string)
}

fn micros_to_string(micros: i64) -> Result<String> {
    DateTime::from_timestamp_micros(micros)
        .map(format_timestamp)
        .ok_or_else(|| DeweyError::storage(format!("timestamp {micros} out of range in the database")))
}

fn conversion_error(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, message.into())
}

fn micros_column(row: &Row<'_>, index: usize) -> rusqlite::Result<String> {
    let micros: i64 = row.get(index)?;
    DateTime::from_timestamp_micros(micros)
        .map(format_timestamp)
        .ok_or_else(|| conversion_error(index, format!("timestamp {micros} out of range")))
}

fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| conversion_error(index, format!("stored JSON is invalid: {e}"))))
        .transpose()
}

fn role_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Role> {
    let text: String = row.get(index)?;
    Role::parse(&text).ok_or_else(|| conversion_error(index, format!("unknown role {text:?}")))
}

fn level_column(row: &Row<'_>, index: usize) -> rusqlite::Result<LogLevel> {
    let text: String = row.get(index)?;
    LogLevel::parse(&text).ok_or_else(|| conversion_error(index, format!("unknown level {text:?}")))
}

fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<ConversationRecord> {
    Ok(ConversationRecord {
        conversation_id: row.get(0)?,
        session_id: row.get(1)?,
        metadata: json_column(row, 2)?,
        created_at: micros_column(row, 3)?,
        updated_at: micros_column(row, 4)?,
        message_count: row.get(5)?,
    })
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        message_id: row.get(0)?,
        conversation_id: row.get(1)?,
        turn_number: row.get(2)?,
        role: role_column(row, 3)?,
        content: row.get(4)?,
        metadata: json_column(row, 5)?,
        created_at: micros_column(row, 6)?,
    })
}

fn context_from_row(row: &Row<'_>, include_content: bool) -> rusqlite::Result<StartupContext> {
    Ok(StartupContext {
        name: row.get(0)?,
        content: if include_content { Some(row.get(1)?) } else { None },
        is_active: row.get(2)?,
        created_at: micros_column(row, 3)?,
        updated_at: micros_column(row, 4)?,
    })
}

/// SQLite's errors become storage errors here, so nothing outside this
/// backend knows the engine's error types.
impl From<rusqlite::Error> for DeweyError {
    fn from(e: rusqlite::Error) -> Self {
        DeweyError::Storage { message: e.to_string(), source: Some(Box::new(e)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_unique_violation_is_the_conflict() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER UNIQUE, v TEXT NOT NULL); INSERT INTO t VALUES (1, 'x');")
            .unwrap();
        let conflict = || DeweyError::Conflict("taken".into());
        let duplicate = conn.execute("INSERT INTO t VALUES (1, 'y')", []).unwrap_err();
        assert!(map_unique(duplicate, conflict).is_conflict());
        let null = conn.execute("INSERT INTO t VALUES (2, NULL)", []).unwrap_err();
        let err = map_unique(null, conflict);
        assert!(err.is_storage() && err.to_string().contains("NOT NULL"), "{err}");
    }
}
