//! The PostgreSQL catalog: a connection pool, migrations under an advisory
//! lock (replicas starting together migrate once), `INSERT .. ON CONFLICT`
//! plus row locks (`FOR UPDATE`) so that replicas registering one path at
//! the same moment agree on one file id and on version numbers. Searching
//! is one statement (the page and its total from one snapshot, one round
//! trip); tags are kept on the row and in a `file_tags` table that tag
//! filters join.

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
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

/// Taken (per transaction) by every replica before it looks at the schema.
const MIGRATION_LOCK: i64 = 0x686f_7261_6365_6d67; // "horacemg"

/// Versioned and append-only: a released migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE files (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             UUID NOT NULL UNIQUE,
    path           TEXT NOT NULL UNIQUE,
    file_name      TEXT NOT NULL,
    extension      TEXT,
    mime_type      TEXT NOT NULL,
    -- `image` of `image/png`: `image/*` searches are an equality on it.
    mime_family    TEXT GENERATED ALWAYS AS (split_part(mime_type, '/', 1)) STORED,
    size           BIGINT NOT NULL CHECK (size >= 0),
    checksum       TEXT NOT NULL,
    version        BIGINT NOT NULL CHECK (version > 0),
    status         TEXT NOT NULL CHECK (status IN ('active', 'missing')),
    owner          TEXT,
    purpose        TEXT,
    correlation_id TEXT,
    tags           TEXT[] NOT NULL DEFAULT '{}',
    modified_at    TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
-- Owner alone (in file order), and owner with a file type, a common pair.
CREATE INDEX files_owner_idx ON files (owner);
CREATE INDEX files_owner_type_idx ON files (owner, extension);
CREATE INDEX files_extension_idx ON files (extension);
CREATE INDEX files_mime_idx ON files (mime_type);
CREATE INDEX files_mime_family_idx ON files (mime_family);
CREATE INDEX files_created_idx ON files (created_at);
CREATE INDEX files_size_idx ON files (size);

-- Tag searches join this (one row per tag of a file), so a tag's files are
-- an index range and counting them never visits the files table's heap.
CREATE TABLE file_tags (
    tag      TEXT NOT NULL,
    file_seq BIGINT NOT NULL REFERENCES files (seq),
    PRIMARY KEY (tag, file_seq)
);
CREATE INDEX file_tags_file_idx ON file_tags (file_seq);

CREATE TABLE file_versions (
    file_seq      BIGINT NOT NULL REFERENCES files (seq),
    version       BIGINT NOT NULL CHECK (version > 0),
    checksum      TEXT NOT NULL,
    size          BIGINT NOT NULL,
    mime_type     TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('registered', 'changed', 'restored')),
    restored_from BIGINT,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (file_seq, version)
);

CREATE TABLE collections (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          UUID NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    metadata    JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE collection_files (
    collection_seq BIGINT NOT NULL REFERENCES collections (seq),
    file_seq       BIGINT NOT NULL REFERENCES files (seq),
    added_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (collection_seq, file_seq)
);
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
    content  BYTEA NOT NULL
);
"#,
    ),
];

const FILE_COLUMNS: &str = "f.id, f.path, f.file_name, f.extension, f.mime_type, f.size, f.checksum, f.version, \
                            f.status, f.owner, f.purpose, f.tags, f.correlation_id, f.created_at, f.updated_at, \
                            f.modified_at";

/// Inserts a new path with its version 1, its tags and its content when the
/// catalog keeps it (`$14`, null otherwise), or nothing when the path is
/// cataloged; returns the new row as [`FILE_COLUMNS`], then `seq`.
const INSERT_NEW_FILE: &str = "
WITH f AS (
    INSERT INTO files (id, path, file_name, extension, mime_type, size, checksum, version, status, owner, purpose,
                       correlation_id, tags, modified_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 'active', $8, $9, $10, $11, $12, $13, $13)
    ON CONFLICT (path) DO NOTHING
    RETURNING *
), version AS (
    INSERT INTO file_versions (file_seq, version, checksum, size, mime_type, reason, created_at)
    SELECT seq, 1, checksum, size, mime_type, 'registered', created_at FROM f
), tag AS (
    INSERT INTO file_tags (tag, file_seq) SELECT t, f.seq FROM f, UNNEST(f.tags) AS t
), object AS (
    INSERT INTO objects (checksum, content) SELECT checksum, $14 FROM f WHERE $14::bytea IS NOT NULL
    ON CONFLICT (checksum) DO NOTHING
)
SELECT f.id, f.path, f.file_name, f.extension, f.mime_type, f.size, f.checksum, f.version, f.status, f.owner,
       f.purpose, f.tags, f.correlation_id, f.created_at, f.updated_at, f.modified_at, f.seq
FROM f";

const VERSION_COLUMNS: &str = "version, checksum, size, mime_type, reason, restored_from, created_at";

const COLLECTION_SELECT: &str = "SELECT c.id, c.name, c.description, c.metadata, \
                                 (SELECT count(*) FROM collection_files cf WHERE cf.collection_seq = c.seq), \
                                 c.created_at, c.updated_at FROM collections c";

/// A handle on the pool; clones share it.
#[derive(Clone)]
pub struct PgCatalog {
    pool: Pool,
    root: std::sync::Arc<str>,
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCatalog").field("status", &self.pool.status()).finish()
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

impl PgCatalog {
    pub async fn connect(url: &str, root: &str) -> Result<PgCatalog> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| HoraceError::invalid(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?;
        // Statements are prepared once per connection. A generic plan for a
        // reused search statement cannot see that `created_at > $1` is the
        // last minute or that a tag is rare, and may scan everything: plan
        // each execution with its values (a fraction of a millisecond).
        let custom_plans = "-c plan_cache_mode=force_custom_plan";
        let options = config.get_options().map_or_else(|| custom_plans.to_owned(), |o| format!("{o} {custom_plans}"));
        config.options(&options);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| HoraceError::catalog(format!("cannot build the connection pool: {e}")))?;
        let catalog = PgCatalog { pool, root: root.into() };
        catalog.migrate().await?;
        Ok(catalog)
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS horace_schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let current: i64 =
            tx.query_one("SELECT COALESCE(MAX(version), 0) FROM horace_schema_migrations", &[]).await?.get(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO horace_schema_migrations (version) VALUES ($1)", &[version]).await?;
            tracing::info!(version, "applied PostgreSQL catalog migration");
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn checksum_of(&self, path: &RelPath) -> Result<Option<String>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached("SELECT checksum FROM files WHERE path = $1").await?;
        Ok(client.query_opt(&stmt, &[&path.as_str()]).await?.map(|r| r.get(0)))
    }

    pub async fn register(
        &self,
        path: &RelPath,
        observed: &Observed,
        metadata: &FileMetadata,
    ) -> Result<(FileRecord, Registered)> {
        let now = now_micros();
        let initial = StoredMetadata::initial(metadata);
        let (id, path_str, name, extension) = (Uuid::now_v7(), path.as_str(), path.file_name(), path.extension());
        let content = observed.content.as_deref();
        let new_file: [&(dyn ToSql + Sync); 14] = [
            &id,
            &path_str,
            &name,
            &extension,
            &observed.mime_type,
            &observed.size,
            &observed.checksum,
            &initial.owner,
            &initial.purpose,
            &initial.correlation_id,
            &initial.tags,
            &observed.modified_at,
            &now,
            &content,
        ];
        // The common cases are one statement each, which PostgreSQL runs
        // atomically: a new path (with its version and tags), and an
        // unchanged active file (a read).
        if metadata.collection.is_none() {
            let client = self.pool.get().await?;
            if let Some(row) = client.query_opt(&client.prepare_cached(INSERT_NEW_FILE).await?, &new_file).await? {
                return Ok((file_from_row(&row, &self.root), Registered::New));
            }
            let by_path = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.path = $1");
            if let Some(row) = client.query_opt(&client.prepare_cached(&by_path).await?, &[&path_str]).await? {
                let file = file_from_row(&row, &self.root);
                if file.checksum == observed.checksum && file.status == FileStatus::Active {
                    return Ok((file, Registered::Duplicate));
                }
            }
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Whoever inserts first creates the file; the others wait for that
        // commit, find the row, and lock it below.
        let inserted = tx.query_opt(&tx.prepare_cached(INSERT_NEW_FILE).await?, &new_file).await?;
        let (seq, outcome) = match inserted {
            Some(row) => {
                let file = file_from_row(&row, &self.root);
                if let Some(name) = &metadata.collection {
                    join_collection(&tx, row.get(16), name, now).await?;
                }
                tx.commit().await?;
                return Ok((file, Registered::New));
            }
            None => {
                let row = tx
                    .query_one(
                        &tx.prepare_cached("SELECT seq, checksum, status FROM files WHERE path = $1 FOR UPDATE")
                            .await?,
                        &[&path.as_str()],
                    )
                    .await?;
                let seq: i64 = row.get(0);
                let checksum: &str = row.get(1);
                let status: &str = row.get(2);
                if checksum == observed.checksum {
                    if status != FileStatus::Active.as_str() {
                        tx.execute(
                            &tx.prepare_cached(
                                "UPDATE files SET status = 'active', modified_at = $2, updated_at = $3 WHERE seq = $1",
                            )
                            .await?,
                            &[&seq, &observed.modified_at, &now],
                        )
                        .await?;
                    }
                    (seq, Registered::Duplicate)
                } else {
                    apply_content(&tx, seq, observed, VersionReason::Changed, None, now).await?;
                    apply_metadata(&tx, seq, metadata, now).await?;
                    (seq, Registered::NewVersion)
                }
            }
        };
        let file = load_file(&tx, &self.root, seq).await?;
        tx.commit().await?;
        Ok((file, outcome))
    }

    pub async fn inline_content(&self, checksum: &str) -> Result<Option<Vec<u8>>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached("SELECT content FROM objects WHERE checksum = $1").await?;
        Ok(client.query_opt(&stmt, &[&checksum]).await?.map(|r| r.get(0)))
    }

    pub async fn inline_checksums(&self) -> Result<Vec<String>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT checksum FROM objects ORDER BY checksum", &[]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn file(&self, id: Uuid) -> Result<FileRecord> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.id = $1")).await?;
        let row = client.query_opt(&stmt, &[&id]).await?.ok_or_else(|| HoraceError::file_not_found(id))?;
        Ok(file_from_row(&row, &self.root))
    }

    pub async fn details(&self, id: Uuid, include_versions: bool) -> Result<FileDetails> {
        let mut client = self.pool.get().await?;
        // One snapshot for the file and its versions.
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let row = tx
            .query_opt(
                &tx.prepare_cached(&format!("SELECT f.seq, {FILE_COLUMNS} FROM files f WHERE f.id = $1")).await?,
                &[&id],
            )
            .await?
            .ok_or_else(|| HoraceError::file_not_found(id))?;
        let seq: i64 = row.get(0);
        let file = file_from_row_at(&row, 1, &self.root);
        let collections = tx
            .query(
                &tx.prepare_cached(
                    "SELECT c.name FROM collection_files cf JOIN collections c ON c.seq = cf.collection_seq
                 WHERE cf.file_seq = $1 ORDER BY c.name",
                )
                .await?,
                &[&seq],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let versions = if include_versions {
            let rows = tx
                .query(
                    &tx.prepare_cached(&format!(
                        "SELECT {VERSION_COLUMNS} FROM file_versions WHERE file_seq = $1 ORDER BY version"
                    ))
                    .await?,
                    &[&seq],
                )
                .await?;
            Some(rows.iter().map(version_from_row).collect())
        } else {
            None
        };
        tx.commit().await?;
        Ok(FileDetails { version_count: file.version, file, collections, versions })
    }

    pub async fn version(&self, id: Uuid, version: i64) -> Result<VersionRecord> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&client.prepare_cached("SELECT seq, version FROM files WHERE id = $1").await?, &[&id])
            .await?
            .ok_or_else(|| HoraceError::file_not_found(id))?;
        let (seq, current): (i64, i64) = (row.get(0), row.get(1));
        let found = client
            .query_opt(
                &client
                    .prepare_cached(&format!(
                        "SELECT {VERSION_COLUMNS} FROM file_versions WHERE file_seq = $1 AND version = $2"
                    ))
                    .await?,
                &[&seq, &version],
            )
            .await?;
        found.map(|r| version_from_row(&r)).ok_or_else(|| version_not_found(id, version, current))
    }

    pub async fn update(&self, id: Uuid, metadata: &FileMetadata, content: &ContentCheck) -> Result<Updated> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let now = now_micros();
        let row = tx
            .query_opt(
                &tx.prepare_cached("SELECT seq, checksum, status FROM files WHERE id = $1 FOR UPDATE").await?,
                &[&id],
            )
            .await?
            .ok_or_else(|| HoraceError::file_not_found(id))?;
        let seq: i64 = row.get(0);
        let checksum: String = row.get(1);
        let status: String = row.get(2);
        let metadata_changed = apply_metadata(&tx, seq, metadata, now).await?;
        let mut new_version = None;
        match content {
            ContentCheck::NotChecked => {}
            ContentCheck::Present(observed) if observed.checksum != checksum => {
                new_version = Some(apply_content(&tx, seq, observed, VersionReason::Changed, None, now).await?);
            }
            ContentCheck::Present(observed) => {
                if status != FileStatus::Active.as_str() {
                    tx.execute(
                        &tx.prepare_cached(
                            "UPDATE files SET status = 'active', modified_at = $2, updated_at = $3 WHERE seq = $1",
                        )
                        .await?,
                        &[&seq, &observed.modified_at, &now],
                    )
                    .await?;
                }
            }
            ContentCheck::Missing => {
                if status != FileStatus::Missing.as_str() {
                    tx.execute(
                        &tx.prepare_cached("UPDATE files SET status = 'missing', updated_at = $2 WHERE seq = $1")
                            .await?,
                        &[&seq, &now],
                    )
                    .await?;
                }
            }
        }
        let file = load_file(&tx, &self.root, seq).await?;
        tx.commit().await?;
        Ok(Updated { file, metadata_changed, new_version })
    }

    pub async fn record_restore(&self, id: Uuid, observed: &Observed, from_version: i64) -> Result<FileRecord> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let seq: i64 = tx
            .query_opt(&tx.prepare_cached("SELECT seq FROM files WHERE id = $1 FOR UPDATE").await?, &[&id])
            .await?
            .ok_or_else(|| HoraceError::file_not_found(id))?
            .get(0);
        apply_content(&tx, seq, observed, VersionReason::Restored, Some(from_version), now_micros()).await?;
        let file = load_file(&tx, &self.root, seq).await?;
        tx.commit().await?;
        Ok(file)
    }

    pub async fn search(&self, query: &SearchQuery) -> Result<(Vec<FileRecord>, i64)> {
        let built = SearchSql::build(query, Dialect::Postgres);
        let mut args: Params = built
            .args
            .into_iter()
            .map(|value| -> Box<dyn ToSql + Sync + Send> {
                match value {
                    SqlValue::Text(s) => Box::new(s),
                    SqlValue::Int(n) => Box::new(n),
                    SqlValue::Time(t) => Box::new(t),
                }
            })
            .collect();
        args.push(Box::new(query.limit));
        args.push(Box::new(query.offset));
        let (limit, offset) = (args.len() - 1, args.len());
        // One statement, so the page and the total come from one snapshot;
        // the LEFT JOIN keeps the total when the page is past the end.
        let sql = format!(
            "SELECT total.n, page.* FROM (SELECT count(*) AS n {}) AS total \
             LEFT JOIN LATERAL (SELECT {FILE_COLUMNS} {} ORDER BY {} DESC LIMIT ${limit} OFFSET ${offset}) AS page \
             ON TRUE",
            built.count_from, built.page_from, built.order
        );
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&sql).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&statement, &refs).await?;
        let total: i64 = rows.first().map_or(0, |r| r.get(0));
        let files = rows
            .iter()
            .filter(|r| r.get::<_, Option<Uuid>>(1).is_some())
            .map(|r| file_from_row_at(r, 1, &self.root))
            .collect();
        Ok((files, total))
    }

    pub async fn upsert_collection(&self, input: &CollectionInput) -> Result<CollectionUpsert> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let now = now_micros();
        let found = tx
            .query(&tx.prepare_cached("SELECT id, seq FROM files WHERE id = ANY($1)").await?, &[&input.file_ids])
            .await?;
        let known: std::collections::HashMap<Uuid, i64> = found.iter().map(|r| (r.get(0), r.get(1))).collect();
        let unknown: Vec<Uuid> = input.file_ids.iter().filter(|id| !known.contains_key(id)).copied().collect();
        if !unknown.is_empty() {
            return Err(unknown_file_ids(&unknown));
        }
        let seqs: Vec<i64> = input.file_ids.iter().map(|id| known[id]).collect();
        let metadata = Value::Object(input.metadata.clone().unwrap_or_default());
        let inserted = tx
            .query_opt(
                &tx.prepare_cached(
                    "INSERT INTO collections (id, name, description, metadata, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING RETURNING seq",
                )
                .await?,
                &[&Uuid::now_v7(), &input.name, &input.description, &metadata, &now],
            )
            .await?;
        let (seq, created) = match inserted {
            Some(row) => (row.get::<_, i64>(0), true),
            None => {
                let row = tx
                    .query_one(
                        &tx.prepare_cached(
                            "UPDATE collections SET description = COALESCE($2, description), metadata = metadata || $3,
                         updated_at = $4 WHERE name = $1 RETURNING seq",
                        )
                        .await?,
                        &[&input.name, &input.description, &metadata, &now],
                    )
                    .await?;
                (row.get::<_, i64>(0), false)
            }
        };
        let added = tx
            .execute(
                &tx.prepare_cached(
                    "INSERT INTO collection_files (collection_seq, file_seq, added_at)
                 SELECT $1, s, $3 FROM UNNEST($2::bigint[]) AS s ON CONFLICT DO NOTHING",
                )
                .await?,
                &[&seq, &seqs, &now],
            )
            .await? as i64;
        let row =
            tx.query_one(&tx.prepare_cached(&format!("{COLLECTION_SELECT} WHERE c.seq = $1")).await?, &[&seq]).await?;
        tx.commit().await?;
        Ok(CollectionUpsert { collection: collection_from_row(&row), created, added })
    }

    pub async fn list_collections(&self, limit: i64, offset: i64) -> Result<(Vec<Collection>, i64)> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let total: i64 = tx.query_one(&tx.prepare_cached("SELECT count(*) FROM collections").await?, &[]).await?.get(0);
        let rows = tx
            .query(
                &tx.prepare_cached(&format!("{COLLECTION_SELECT} ORDER BY c.name LIMIT $1 OFFSET $2")).await?,
                &[&limit, &offset],
            )
            .await?;
        tx.commit().await?;
        Ok((rows.iter().map(collection_from_row).collect(), total))
    }
}

async fn load_file(tx: &Transaction<'_>, root: &str, seq: i64) -> Result<FileRecord> {
    let row = tx
        .query_one(&tx.prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.seq = $1")).await?, &[&seq])
        .await?;
    Ok(file_from_row(&row, root))
}

fn file_from_row(row: &Row, root: &str) -> FileRecord {
    file_from_row_at(row, 0, root)
}

/// Reads [`FILE_COLUMNS`] starting at column `at`.
fn file_from_row_at(row: &Row, at: usize, root: &str) -> FileRecord {
    let id: Uuid = row.get(at);
    let path: String = row.get(at + 1);
    let status: &str = row.get(at + 8);
    let time = |i: usize| format_timestamp(row.get::<_, DateTime<Utc>>(at + i));
    FileRecord {
        file_id: id.to_string(),
        file_path: join_root(root, &path),
        relative_path: path,
        file_name: row.get(at + 2),
        file_type: row.get(at + 3),
        mime_type: row.get(at + 4),
        size: row.get(at + 5),
        checksum: row.get(at + 6),
        version: row.get(at + 7),
        status: FileStatus::parse(status).unwrap_or(FileStatus::Active),
        owner: row.get(at + 9),
        purpose: row.get(at + 10),
        tags: row.get(at + 11),
        correlation_id: row.get(at + 12),
        created_at: time(13),
        updated_at: time(14),
        modified_at: time(15),
    }
}

fn version_from_row(row: &Row) -> VersionRecord {
    let reason: &str = row.get(4);
    VersionRecord {
        version: row.get(0),
        checksum: row.get(1),
        size: row.get(2),
        mime_type: row.get(3),
        reason: VersionReason::parse(reason).unwrap_or(VersionReason::Changed),
        restored_from: row.get(5),
        created_at: format_timestamp(row.get::<_, DateTime<Utc>>(6)),
    }
}

fn collection_from_row(row: &Row) -> Collection {
    let id: Uuid = row.get(0);
    let metadata: Value = row.get(3);
    Collection {
        collection_id: id.to_string(),
        name: row.get(1),
        description: row.get(2),
        metadata: match metadata {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        file_count: row.get(4),
        created_at: format_timestamp(row.get::<_, DateTime<Utc>>(5)),
        updated_at: format_timestamp(row.get::<_, DateTime<Utc>>(6)),
    }
}

async fn insert_version(
    tx: &Transaction<'_>,
    seq: i64,
    version: i64,
    observed: &Observed,
    reason: VersionReason,
    restored_from: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    // The version and, when the catalog keeps it, its content ($9).
    let insert = "WITH object AS (
            INSERT INTO objects (checksum, content) SELECT $3, $9 WHERE $9::bytea IS NOT NULL
            ON CONFLICT (checksum) DO NOTHING
        )
        INSERT INTO file_versions (file_seq, version, checksum, size, mime_type, reason, restored_from, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    tx.execute(
        &tx.prepare_cached(insert).await?,
        &[
            &seq,
            &version,
            &observed.checksum,
            &observed.size,
            &observed.mime_type,
            &reason.as_str(),
            &restored_from,
            &now,
            &observed.content.as_deref(),
        ],
    )
    .await?;
    Ok(())
}

/// Makes `observed` the file's next version (the caller holds the row
/// lock); returns its number.
async fn apply_content(
    tx: &Transaction<'_>,
    seq: i64,
    observed: &Observed,
    reason: VersionReason,
    restored_from: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let version: i64 = tx
        .query_one(
            &tx.prepare_cached(
                "UPDATE files SET version = version + 1, checksum = $2, size = $3, mime_type = $4, modified_at = $5,
             status = 'active', updated_at = $6 WHERE seq = $1 RETURNING version",
            )
            .await?,
            &[&seq, &observed.checksum, &observed.size, &observed.mime_type, &observed.modified_at, &now],
        )
        .await?
        .get(0);
    insert_version(tx, seq, version, observed, reason, restored_from, now).await?;
    Ok(version)
}

/// Merges a metadata patch into the row (the caller holds the row lock);
/// returns whether anything changed.
async fn apply_metadata(tx: &Transaction<'_>, seq: i64, patch: &FileMetadata, now: DateTime<Utc>) -> Result<bool> {
    let row = tx
        .query_one(
            &tx.prepare_cached("SELECT owner, purpose, correlation_id, tags FROM files WHERE seq = $1").await?,
            &[&seq],
        )
        .await?;
    let stored =
        StoredMetadata { owner: row.get(0), purpose: row.get(1), correlation_id: row.get(2), tags: row.get(3) };
    let merged = stored.merged(patch);
    let mut changed = false;
    if merged != stored {
        tx.execute(&tx.prepare_cached("UPDATE files SET owner = $2, purpose = $3, correlation_id = $4, tags = $5, updated_at = $6 WHERE seq = $1").await?,
            &[&seq, &merged.owner, &merged.purpose, &merged.correlation_id, &merged.tags, &now],
        )
        .await?;
        if merged.tags != stored.tags {
            replace_tags(tx, seq, &merged.tags).await?;
        }
        changed = true;
    }
    if let Some(name) = &patch.collection
        && join_collection(tx, seq, name, now).await?
    {
        tx.execute(&tx.prepare_cached("UPDATE files SET updated_at = $2 WHERE seq = $1").await?, &[&seq, &now]).await?;
        changed = true;
    }
    Ok(changed)
}

async fn replace_tags(tx: &Transaction<'_>, seq: i64, tags: &[String]) -> Result<()> {
    tx.execute(&tx.prepare_cached("DELETE FROM file_tags WHERE file_seq = $1").await?, &[&seq]).await?;
    tx.execute(
        &tx.prepare_cached("INSERT INTO file_tags (tag, file_seq) SELECT t, $2 FROM UNNEST($1::text[]) AS t").await?,
        &[&tags, &seq],
    )
    .await?;
    Ok(())
}

/// Adds the file to the named collection, creating the collection if
/// needed; returns whether the file was not in it before.
async fn join_collection(tx: &Transaction<'_>, file_seq: i64, name: &str, now: DateTime<Utc>) -> Result<bool> {
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO collections (id, name, metadata, created_at, updated_at) VALUES ($1, $2, '{}', $3, $3)
         ON CONFLICT (name) DO NOTHING",
        )
        .await?,
        &[&Uuid::now_v7(), &name, &now],
    )
    .await?;
    let added = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO collection_files (collection_seq, file_seq, added_at)
             SELECT seq, $2, $3 FROM collections WHERE name = $1 ON CONFLICT DO NOTHING",
            )
            .await?,
            &[&name, &file_seq, &now],
        )
        .await?;
    Ok(added > 0)
}
