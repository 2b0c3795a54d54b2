//! The SQLite catalog: one file in WAL mode, one writer connection (so
//! writes to a file's row are serialised within the process, and
//! `BEGIN IMMEDIATE` serialises them across processes) and a small pool of
//! readers, all used from blocking threads. Timestamps are INTEGER
//! microseconds since the Unix epoch; tags are a JSON array on the row plus
//! a `file_tags` table that tag searches use.
//!
//! Writes are group-committed: a write queues itself, and whoever holds the
//! writer next runs every queued write in one transaction, each under a
//! savepoint of its own (a failing write is rolled back alone), and answers
//! them all once that transaction has committed. Concurrent registrations
//! thus share one commit (one set of WAL pages for the index pages they all
//! touch) without any write waiting for company: a write that finds the
//! writer free runs at once, alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    CollectionInput, CollectionUpsert, ContentCheck, Dialect, FileDetails, Registered, SearchSql, SqlValue,
    StoredMetadata, Updated, join_root, unknown_file_ids, version_not_found,
};
use crate::error::{HoraceError, Result};
use crate::model::{
    Collection, FileMetadata, FileRecord, FileStatus, Observed, SearchQuery, VersionReason, VersionRecord,
    format_timestamp, now_micros,
};
use crate::root::RelPath;

/// Versioned and append-only: a released migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE files (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    path           TEXT NOT NULL UNIQUE,
    file_name      TEXT NOT NULL,
    extension      TEXT,
    mime_type      TEXT NOT NULL,
    -- `image` of `image/png`: `image/*` searches are an equality on it.
    mime_family    TEXT GENERATED ALWAYS AS (substr(mime_type, 1, instr(mime_type, '/') - 1)) VIRTUAL,
    size           INTEGER NOT NULL CHECK (size >= 0),
    checksum       TEXT NOT NULL,
    version        INTEGER NOT NULL CHECK (version > 0),
    status         TEXT NOT NULL CHECK (status IN ('active', 'missing')),
    owner          TEXT,
    purpose        TEXT,
    correlation_id TEXT,
    tags           TEXT NOT NULL DEFAULT '[]',
    modified_at    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
-- Owner alone (in file order), and owner with a file type, a common pair.
CREATE INDEX files_owner_idx ON files (owner);
CREATE INDEX files_owner_type_idx ON files (owner, extension);
CREATE INDEX files_extension_idx ON files (extension);
CREATE INDEX files_mime_idx ON files (mime_type);
CREATE INDEX files_mime_family_idx ON files (mime_family);
CREATE INDEX files_created_idx ON files (created_at);
CREATE INDEX files_size_idx ON files (size);

CREATE TABLE file_tags (
    tag      TEXT NOT NULL,
    file_seq INTEGER NOT NULL REFERENCES files (seq),
    PRIMARY KEY (tag, file_seq)
) WITHOUT ROWID;
CREATE INDEX file_tags_file_idx ON file_tags (file_seq);

CREATE TABLE file_versions (
    file_seq      INTEGER NOT NULL REFERENCES files (seq),
    version       INTEGER NOT NULL CHECK (version > 0),
    checksum      TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mime_type     TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('registered', 'changed', 'restored')),
    restored_from INTEGER,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (file_seq, version)
) WITHOUT ROWID;

CREATE TABLE collections (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE collection_files (
    collection_seq INTEGER NOT NULL REFERENCES collections (seq),
    file_seq       INTEGER NOT NULL REFERENCES files (seq),
    added_at       INTEGER NOT NULL,
    PRIMARY KEY (collection_seq, file_seq)
) WITHOUT ROWID;
CREATE INDEX collection_files_file_idx ON collection_files (file_seq);
"#,
    ),
    (
        2,
        r#"
-- Small content (see content::INLINE_MAX), once per checksum, written in
-- the transaction that records a version with it. Larger content is a file
-- of the version store.
CREATE TABLE objects (
    checksum TEXT PRIMARY KEY,
    content  BLOB NOT NULL
);
"#,
    ),
];

const FILE_COLUMNS: &str = "f.id, f.path, f.file_name, f.extension, f.mime_type, f.size, f.checksum, f.version, \
                            f.status, f.owner, f.purpose, f.tags, f.correlation_id, f.created_at, f.updated_at, \
                            f.modified_at";

/// Readers kept between calls.
const IDLE_READERS: usize = 4;

/// A handle on the database file; clones share the connections.
#[derive(Clone)]
pub struct SqliteCatalog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    root: String,
    writer: Mutex<Connection>,
    /// Writes waiting for the next holder of `writer`.
    queued: Mutex<Vec<Box<dyn QueuedWrite>>>,
    readers: Mutex<Vec<Connection>>,
}

/// A write waiting for the writer connection.
trait QueuedWrite: Send {
    /// Runs the write in the batch's transaction; false if it failed (the
    /// caller rolls its savepoint back).
    fn run(&mut self, conn: &Connection, root: &str) -> bool;

    /// Answers the caller: its own result once the batch has committed, or
    /// the reason the batch did not.
    fn answer(self: Box<Self>, batch_failed: Option<&str>);
}

struct Queued<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T, F> QueuedWrite for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection, root: &str) -> bool {
        let work = self.work.take().expect("a queued write runs once");
        let result = work(conn, root);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, batch_failed: Option<&str>) {
        let result = match (batch_failed, self.result) {
            // Its own failure says more than the batch's (which it may have caused).
            (_, Some(Err(e))) => Err(e),
            (None, Some(result)) => result,
            (Some(why), _) => Err(HoraceError::catalog(format!("the catalog transaction failed: {why}"))),
            (None, None) => Err(HoraceError::catalog("the catalog write did not run")),
        };
        // The caller may have gone away (its call was cancelled).
        let _ = self.reply.send(result);
    }
}

impl std::fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCatalog").field("path", &self.inner.path).finish()
    }
}

fn setup(conn: &Connection) -> rusqlite::Result<()> {
    // Another process (a second Horace on the same file) may hold the write
    // lock for a moment; wait rather than fail.
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Savepoints (one per write of a group commit) keep their undo pages in
    // memory rather than in a temp file created and removed per transaction.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn join_error(e: tokio::task::JoinError) -> HoraceError {
    HoraceError::catalog(format!("the catalog task failed: {e}"))
}

impl SqliteCatalog {
    pub async fn open(path: &Path, root: &str) -> Result<SqliteCatalog> {
        let path = path.to_path_buf();
        let root = root.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, root)).await.map_err(join_error)?
    }

    fn open_blocking(path: PathBuf, root: String) -> Result<SqliteCatalog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                HoraceError::catalog(format!("cannot create the catalog folder {}: {e}", dir.display()))
            })?;
        }
        let mut writer = Connection::open(&path)
            .map_err(|e| HoraceError::catalog(format!("cannot open the catalog {}: {e}", path.display())))?;
        let _mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        setup(&writer)?;
        migrate(&mut writer)?;
        Ok(SqliteCatalog {
            inner: Arc::new(Inner {
                path,
                root,
                writer: Mutex::new(writer),
                queued: Mutex::new(Vec::new()),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in an IMMEDIATE transaction on the writer, shared with the
    /// other writes queued meanwhile (see the module's note), under a
    /// savepoint of its own: its changes are committed when `f` succeeds
    /// and rolled back (nothing changed) when it fails. Answers after the
    /// commit.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued: Box<dyn QueuedWrite> = Box::new(Queued { work: Some(f), result: None, reply });
        self.inner.queued.lock().unwrap_or_else(PoisonError::into_inner).push(queued);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.run_queued_writes()).await.map_err(join_error)?;
        answer
            .await
            .map_err(|_| HoraceError::catalog("the catalog write was abandoned (a write in its batch panicked)"))?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    setup(&conn)?;
                    conn
                }
            };
            // A read sees one snapshot: the page and its count agree.
            let result = (|| {
                conn.execute_batch("BEGIN DEFERRED")?;
                let value = f(&conn, &inner.root);
                conn.execute_batch("COMMIT")?;
                value
            })();
            if conn.is_autocommit() {
                let mut readers = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
                if readers.len() < IDLE_READERS {
                    readers.push(conn);
                }
            }
            result
        })
        .await
        .map_err(join_error)?
    }

    pub async fn checksum_of(&self, path: &RelPath) -> Result<Option<String>> {
        let path = path.as_str().to_owned();
        self.read(move |conn, _| {
            Ok(conn
                .prepare_cached("SELECT checksum FROM files WHERE path = ?1")?
                .query_row([&path], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    pub async fn register(
        &self,
        path: &RelPath,
        observed: &Observed,
        metadata: &FileMetadata,
    ) -> Result<(FileRecord, Registered)> {
        let (path, observed, metadata) = (path.clone(), observed.clone(), metadata.clone());
        self.write(move |tx, root| {
            let now = now_micros();
            let existing: Option<(i64, String, String)> = tx
                .prepare_cached("SELECT seq, checksum, status FROM files WHERE path = ?1")?
                .query_row([path.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let (seq, outcome) = match existing {
                Some((seq, checksum, status)) if checksum == observed.checksum => {
                    if status != FileStatus::Active.as_str() {
                        tx.execute(
                            "UPDATE files SET status = 'active', modified_at = ?2, updated_at = ?3 WHERE seq = ?1",
                            params![seq, micros_of(observed.modified_at), micros_of(now)],
                        )?;
                    }
                    (seq, Registered::Duplicate)
                }
                Some((seq, _, _)) => {
                    apply_content(tx, seq, &observed, VersionReason::Changed, None, now)?;
                    apply_metadata(tx, seq, &metadata, now)?;
                    (seq, Registered::NewVersion)
                }
                None => {
                    let initial = StoredMetadata::initial(&metadata);
                    tx.prepare_cached(
                        "INSERT INTO files (id, path, file_name, extension, mime_type, size, checksum, version, status, \
                         owner, purpose, correlation_id, tags, modified_at, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, 'active', ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
                    )?
                    .execute(params![
                        Uuid::now_v7().to_string(),
                        path.as_str(),
                        path.file_name(),
                        path.extension(),
                        observed.mime_type,
                        observed.size,
                        observed.checksum,
                        initial.owner,
                        initial.purpose,
                        initial.correlation_id,
                        tags_json(&initial.tags),
                        micros_of(observed.modified_at),
                        micros_of(now),
                    ])?;
                    let seq = tx.last_insert_rowid();
                    insert_version(tx, seq, 1, &observed, VersionReason::Registered, None, now)?;
                    insert_tags(tx, seq, &initial.tags)?;
                    if let Some(name) = &metadata.collection {
                        join_collection(tx, seq, name, now)?;
                    }
                    (seq, Registered::New)
                }
            };
            Ok((load_file(tx, root, seq)?, outcome))
        })
        .await
    }

    pub async fn inline_content(&self, checksum: &str) -> Result<Option<Vec<u8>>> {
        let checksum = checksum.to_owned();
        self.read(move |conn, _| {
            Ok(conn
                .prepare_cached("SELECT content FROM objects WHERE checksum = ?1")?
                .query_row([&checksum], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    pub async fn inline_checksums(&self) -> Result<Vec<String>> {
        self.read(|conn, _| {
            Ok(conn
                .prepare_cached("SELECT checksum FROM objects ORDER BY checksum")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
    }

    pub async fn file(&self, id: Uuid) -> Result<FileRecord> {
        self.read(move |conn, root| {
            let seq = seq_of(conn, id)?;
            load_file(conn, root, seq)
        })
        .await
    }

    pub async fn details(&self, id: Uuid, include_versions: bool) -> Result<FileDetails> {
        self.read(move |conn, root| {
            let seq = seq_of(conn, id)?;
            let file = load_file(conn, root, seq)?;
            let collections = conn
                .prepare_cached(
                    "SELECT c.name FROM collection_files cf JOIN collections c ON c.seq = cf.collection_seq
                     WHERE cf.file_seq = ?1 ORDER BY c.name",
                )?
                .query_map([seq], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let versions = if include_versions {
                Some(
                    conn.prepare_cached(
                        "SELECT version, checksum, size, mime_type, reason, restored_from, created_at
                         FROM file_versions WHERE file_seq = ?1 ORDER BY version",
                    )?
                    .query_map([seq], version_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
                )
            } else {
                None
            };
            Ok(FileDetails { version_count: file.version, file, collections, versions })
        })
        .await
    }

    pub async fn version(&self, id: Uuid, version: i64) -> Result<VersionRecord> {
        self.read(move |conn, _| {
            let seq = seq_of(conn, id)?;
            let found = conn
                .prepare_cached(
                    "SELECT version, checksum, size, mime_type, reason, restored_from, created_at
                     FROM file_versions WHERE file_seq = ?1 AND version = ?2",
                )?
                .query_row(params![seq, version], version_from_row)
                .optional()?;
            match found {
                Some(v) => Ok(v),
                None => {
                    let current: i64 =
                        conn.query_row("SELECT version FROM files WHERE seq = ?1", [seq], |r| r.get(0))?;
                    Err(version_not_found(id, version, current))
                }
            }
        })
        .await
    }

    pub async fn update(&self, id: Uuid, metadata: &FileMetadata, content: &ContentCheck) -> Result<Updated> {
        let (metadata, content) = (metadata.clone(), content.clone());
        self.write(move |tx, root| {
            let now = now_micros();
            let seq = seq_of(tx, id)?;
            let (checksum, status): (String, String) =
                tx.query_row("SELECT checksum, status FROM files WHERE seq = ?1", [seq], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let metadata_changed = apply_metadata(tx, seq, &metadata, now)?;
            let mut new_version = None;
            match &content {
                ContentCheck::NotChecked => {}
                ContentCheck::Present(observed) if observed.checksum != checksum => {
                    new_version = Some(apply_content(tx, seq, observed, VersionReason::Changed, None, now)?);
                }
                ContentCheck::Present(observed) => {
                    if status != FileStatus::Active.as_str() {
                        tx.execute(
                            "UPDATE files SET status = 'active', modified_at = ?2, updated_at = ?3 WHERE seq = ?1",
                            params![seq, micros_of(observed.modified_at), micros_of(now)],
                        )?;
                    }
                }
                ContentCheck::Missing => {
                    if status != FileStatus::Missing.as_str() {
                        tx.execute(
                            "UPDATE files SET status = 'missing', updated_at = ?2 WHERE seq = ?1",
                            params![seq, micros_of(now)],
                        )?;
                    }
                }
            }
            Ok(Updated { file: load_file(tx, root, seq)?, metadata_changed, new_version })
        })
        .await
    }

    pub async fn record_restore(&self, id: Uuid, observed: &Observed, from_version: i64) -> Result<FileRecord> {
        let observed = observed.clone();
        self.write(move |tx, root| {
            let seq = seq_of(tx, id)?;
            apply_content(tx, seq, &observed, VersionReason::Restored, Some(from_version), now_micros())?;
            load_file(tx, root, seq)
        })
        .await
    }

    pub async fn search(&self, query: &SearchQuery) -> Result<(Vec<FileRecord>, i64)> {
        let query = query.clone();
        self.read(move |conn, root| {
            let sql = SearchSql::build(&query, Dialect::Sqlite);
            let mut args: Vec<Box<dyn ToSql>> = sql
                .args
                .into_iter()
                .map(|value| -> Box<dyn ToSql> {
                    match value {
                        SqlValue::Text(s) => Box::new(s),
                        SqlValue::Int(n) => Box::new(n),
                        SqlValue::Time(t) => Box::new(micros_of(t)),
                    }
                })
                .collect();
            let refs: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
            let total: i64 = conn
                .prepare_cached(&format!("SELECT count(*) {}", sql.count_from))?
                .query_row(refs.as_slice(), |r| r.get(0))?;
            let n = args.len();
            args.push(Box::new(query.limit));
            args.push(Box::new(query.offset));
            let refs: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
            let page = format!(
                "SELECT {FILE_COLUMNS} {} ORDER BY {} DESC LIMIT ?{} OFFSET ?{}",
                sql.page_from,
                sql.order,
                n + 1,
                n + 2
            );
            let files = conn
                .prepare_cached(&page)?
                .query_map(refs.as_slice(), |r| file_from_row(r, root))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((files, total))
        })
        .await
    }

    pub async fn upsert_collection(&self, input: &CollectionInput) -> Result<CollectionUpsert> {
        let input = input.clone();
        self.write(move |tx, _| {
            let now = now_micros();
            let mut seqs = Vec::with_capacity(input.file_ids.len());
            let mut unknown = Vec::new();
            {
                let mut lookup = tx.prepare_cached("SELECT seq FROM files WHERE id = ?1")?;
                for id in &input.file_ids {
                    match lookup.query_row([id.to_string()], |r| r.get::<_, i64>(0)).optional()? {
                        Some(seq) => seqs.push(seq),
                        None => unknown.push(*id),
                    }
                }
            }
            if !unknown.is_empty() {
                return Err(unknown_file_ids(&unknown));
            }
            let existing: Option<(i64, String)> = tx
                .query_row("SELECT seq, metadata FROM collections WHERE name = ?1", [&input.name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let (seq, created) = match existing {
                Some((seq, stored)) => {
                    let mut metadata = stored_json::<Map<String, Value>>(&stored, "collections.metadata")?;
                    if let Some(patch) = &input.metadata {
                        metadata.extend(patch.clone());
                    }
                    tx.execute(
                        "UPDATE collections SET description = COALESCE(?2, description), metadata = ?3, updated_at = ?4
                         WHERE seq = ?1",
                        params![seq, input.description, Value::Object(metadata).to_string(), micros_of(now)],
                    )?;
                    (seq, false)
                }
                None => {
                    tx.execute(
                        "INSERT INTO collections (id, name, description, metadata, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        params![
                            Uuid::now_v7().to_string(),
                            input.name,
                            input.description,
                            Value::Object(input.metadata.clone().unwrap_or_default()).to_string(),
                            micros_of(now)
                        ],
                    )?;
                    (tx.last_insert_rowid(), true)
                }
            };
            let mut added = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO collection_files (collection_seq, file_seq, added_at) VALUES (?1, ?2, ?3)",
                )?;
                for file_seq in seqs {
                    added += insert.execute(params![seq, file_seq, micros_of(now)])? as i64;
                }
            }
            let collection = load_collection(tx, seq)?;
            Ok(CollectionUpsert { collection, created, added })
        })
        .await
    }

    pub async fn list_collections(&self, limit: i64, offset: i64) -> Result<(Vec<Collection>, i64)> {
        self.read(move |conn, _| {
            let total: i64 = conn.query_row("SELECT count(*) FROM collections", [], |r| r.get(0))?;
            let collections = conn
                .prepare_cached(&format!("{COLLECTION_SELECT} ORDER BY c.name LIMIT ?1 OFFSET ?2"))?
                .query_map([limit, offset], collection_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((collections, total))
        })
        .await
    }
}

impl Inner {
    /// Takes the writer and runs every queued write in one transaction; an
    /// earlier holder may have run them all already.
    fn run_queued_writes(&self) {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batch = std::mem::take(&mut *self.queued.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        let committed = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for write in &mut batch {
                tx.execute_batch("SAVEPOINT write")?;
                let undo =
                    if write.run(&tx, &self.root) { "RELEASE write" } else { "ROLLBACK TO write; RELEASE write" };
                tx.execute_batch(undo)?;
            }
            tx.commit()
        })();
        let failed = committed.err().map(|e| e.to_string());
        for write in batch {
            write.answer(failed.as_deref());
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, micros_of(now_micros())],
        )?;
        tracing::info!(version, "applied SQLite catalog migration");
    }
    tx.commit()?;
    Ok(())
}

fn micros_of(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time_from(micros: i64) -> String {
    format_timestamp(DateTime::from_timestamp_micros(micros).unwrap_or_default())
}

/// A JSON column read back (a collection's metadata, a file's tags). Horace
/// only writes valid JSON there: anything else is damage to report, not to
/// paper over with an empty value that the next write would store.
fn stored_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        HoraceError::catalog(format!(
            "SQLite: the stored {column} is not the JSON Horace wrote ({e}); the catalog file was damaged or edited"
        ))
    })
}

/// [`stored_json`] inside a row mapping, as rusqlite's conversion error.
fn stored_json_in_row<T: serde::de::DeserializeOwned>(text: &str, column: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e)))
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).expect("strings serialise")
}

fn seq_of(conn: &Connection, id: Uuid) -> Result<i64> {
    conn.prepare_cached("SELECT seq FROM files WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| HoraceError::file_not_found(id))
}

fn load_file(conn: &Connection, root: &str, seq: i64) -> Result<FileRecord> {
    Ok(conn
        .prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.seq = ?1"))?
        .query_row([seq], |r| file_from_row(r, root))?)
}

fn file_from_row(row: &Row<'_>, root: &str) -> rusqlite::Result<FileRecord> {
    let path: String = row.get(1)?;
    let status: String = row.get(8)?;
    let tags: String = row.get(11)?;
    Ok(FileRecord {
        file_id: row.get(0)?,
        file_path: join_root(root, &path),
        relative_path: path,
        file_name: row.get(2)?,
        file_type: row.get(3)?,
        mime_type: row.get(4)?,
        size: row.get(5)?,
        checksum: row.get(6)?,
        version: row.get(7)?,
        status: FileStatus::parse(&status).unwrap_or(FileStatus::Active),
        owner: row.get(9)?,
        purpose: row.get(10)?,
        tags: stored_json_in_row(&tags, 11)?,
        correlation_id: row.get(12)?,
        created_at: time_from(row.get(13)?),
        updated_at: time_from(row.get(14)?),
        modified_at: time_from(row.get(15)?),
    })
}

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<VersionRecord> {
    let reason: String = row.get(4)?;
    Ok(VersionRecord {
        version: row.get(0)?,
        checksum: row.get(1)?,
        size: row.get(2)?,
        mime_type: row.get(3)?,
        reason: VersionReason::parse(&reason).unwrap_or(VersionReason::Changed),
        restored_from: row.get(5)?,
        created_at: time_from(row.get(6)?),
    })
}

fn insert_version(
    tx: &Connection,
    seq: i64,
    version: i64,
    observed: &Observed,
    reason: VersionReason,
    restored_from: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO file_versions (file_seq, version, checksum, size, mime_type, reason, restored_from, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seq,
        version,
        observed.checksum,
        observed.size,
        observed.mime_type,
        reason.as_str(),
        restored_from,
        micros_of(now)
    ])?;
    if let Some(content) = &observed.content {
        tx.prepare_cached("INSERT OR IGNORE INTO objects (checksum, content) VALUES (?1, ?2)")?
            .execute(params![observed.checksum, &content[..]])?;
    }
    Ok(())
}

/// Makes `observed` the file's next version; returns its number.
fn apply_content(
    tx: &Connection,
    seq: i64,
    observed: &Observed,
    reason: VersionReason,
    restored_from: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let version: i64 = tx
        .prepare_cached(
            "UPDATE files SET version = version + 1, checksum = ?2, size = ?3, mime_type = ?4, modified_at = ?5,
             status = 'active', updated_at = ?6 WHERE seq = ?1 RETURNING version",
        )?
        .query_row(
            params![
                seq,
                observed.checksum,
                observed.size,
                observed.mime_type,
                micros_of(observed.modified_at),
                micros_of(now)
            ],
            |r| r.get(0),
        )?;
    insert_version(tx, seq, version, observed, reason, restored_from, now)?;
    Ok(version)
}

/// Merges a metadata patch into the row; returns whether anything changed.
fn apply_metadata(tx: &Connection, seq: i64, patch: &FileMetadata, now: DateTime<Utc>) -> Result<bool> {
    let stored = tx.query_row("SELECT owner, purpose, correlation_id, tags FROM files WHERE seq = ?1", [seq], |r| {
        let tags: String = r.get(3)?;
        Ok(StoredMetadata {
            owner: r.get(0)?,
            purpose: r.get(1)?,
            correlation_id: r.get(2)?,
            tags: stored_json_in_row(&tags, 3)?,
        })
    })?;
    let merged = stored.merged(patch);
    let mut changed = false;
    if merged != stored {
        tx.execute(
            "UPDATE files SET owner = ?2, purpose = ?3, correlation_id = ?4, tags = ?5, updated_at = ?6 WHERE seq = ?1",
            params![seq, merged.owner, merged.purpose, merged.correlation_id, tags_json(&merged.tags), micros_of(now)],
        )?;
        if merged.tags != stored.tags {
            replace_tags(tx, seq, &merged.tags)?;
        }
        changed = true;
    }
    if let Some(name) = &patch.collection
        && join_collection(tx, seq, name, now)?
    {
        tx.execute("UPDATE files SET updated_at = ?2 WHERE seq = ?1", params![seq, micros_of(now)])?;
        changed = true;
    }
    Ok(changed)
}

fn replace_tags(tx: &Connection, seq: i64, tags: &[String]) -> Result<()> {
    tx.prepare_cached("DELETE FROM file_tags WHERE file_seq = ?1")?.execute([seq])?;
    insert_tags(tx, seq, tags)
}

fn insert_tags(tx: &Connection, seq: i64, tags: &[String]) -> Result<()> {
    let mut insert = tx.prepare_cached("INSERT INTO file_tags (tag, file_seq) VALUES (?1, ?2)")?;
    for tag in tags {
        insert.execute(params![tag, seq])?;
    }
    Ok(())
}

/// Adds the file to the named collection, creating the collection if
/// needed; returns whether the file was not in it before.
fn join_collection(tx: &Connection, file_seq: i64, name: &str, now: DateTime<Utc>) -> Result<bool> {
    tx.execute(
        "INSERT OR IGNORE INTO collections (id, name, metadata, created_at, updated_at) VALUES (?1, ?2, '{}', ?3, ?3)",
        params![Uuid::now_v7().to_string(), name, micros_of(now)],
    )?;
    let collection_seq: i64 = tx.query_row("SELECT seq FROM collections WHERE name = ?1", [name], |r| r.get(0))?;
    let added = tx.execute(
        "INSERT OR IGNORE INTO collection_files (collection_seq, file_seq, added_at) VALUES (?1, ?2, ?3)",
        params![collection_seq, file_seq, micros_of(now)],
    )?;
    Ok(added > 0)
}

const COLLECTION_SELECT: &str = "SELECT c.id, c.name, c.description, c.metadata, \
                                 (SELECT count(*) FROM collection_files cf WHERE cf.collection_seq = c.seq), \
                                 c.created_at, c.updated_at FROM collections c";

fn load_collection(conn: &Connection, seq: i64) -> Result<Collection> {
    Ok(conn.query_row(&format!("{COLLECTION_SELECT} WHERE c.seq = ?1"), [seq], collection_from_row)?)
}

fn collection_from_row(row: &Row<'_>) -> rusqlite::Result<Collection> {
    let metadata: String = row.get(3)?;
    Ok(Collection {
        collection_id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        metadata: stored_json_in_row(&metadata, 3)?,
        file_count: row.get(4)?,
        created_at: time_from(row.get(5)?),
        updated_at: time_from(row.get(6)?),
    })
}
