//! The catalog: one interface over two engines. SQLite in a file needs no
//! set-up; PostgreSQL lets several Horace replicas share one catalog (and one
//! storage root). Both run versioned migrations at start-up, take every
//! value as a bound parameter (never spliced into SQL), and serialise the
//! writes to one file's row so that concurrent registrations of a path give
//! one file id and versions never share a number. The tests run every
//! scenario on both.

mod postgres;
mod sqlite;

use std::path::PathBuf;

use serde_json::{Map, Value};
use uuid::Uuid;

pub use self::postgres::PgCatalog;
pub use self::sqlite::SqliteCatalog;
use crate::error::{ErrorCode, HoraceError, Result};
use crate::model::{Collection, FileMetadata, FileRecord, FileTypeFilter, Observed, SearchQuery, VersionRecord};
use crate::root::RelPath;

/// Which engine, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogConfig {
    /// A `postgres://` or `postgresql://` URL.
    Postgres { url: String },
    /// The SQLite database file (created with its folder if missing).
    Sqlite { path: PathBuf },
}

impl CatalogConfig {
    /// `DATABASE_URL=postgres://...` selects PostgreSQL; otherwise SQLite in
    /// `$HORACE_DATA_DIR/horace.sqlite3` (default `./horace-data`).
    pub fn from_env() -> Result<CatalogConfig> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(CatalogConfig::Postgres { url })
                } else {
                    Err(HoraceError::invalid(
                        "DATABASE_URL must be a postgres:// or postgresql:// URL; unset it to use SQLite in \
                         HORACE_DATA_DIR",
                    ))
                }
            }
            _ => Ok(CatalogConfig::Sqlite { path: data_dir().join("horace.sqlite3") }),
        }
    }
}

/// `$HORACE_DATA_DIR`, default `./horace-data`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("HORACE_DATA_DIR").filter(|d| !d.is_empty()).map_or_else(|| "horace-data".into(), PathBuf::from)
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The path was new: cataloged as version 1.
    New,
    /// The path was cataloged with the same checksum: nothing changed
    /// (a file marked missing is marked active again).
    Duplicate,
    /// The path was cataloged with other content: a new version, and the
    /// given metadata merged.
    NewVersion,
}

/// What `horace_update_file` found on disk.
#[derive(Debug, Clone)]
pub enum ContentCheck {
    NotChecked,
    Present(Observed),
    /// No file at the path: the file is marked `missing`.
    Missing,
}

/// What an update changed.
#[derive(Debug, Clone)]
pub struct Updated {
    pub file: FileRecord,
    pub metadata_changed: bool,
    /// The version recorded for changed content.
    pub new_version: Option<i64>,
}

/// A file with what `horace_get_file_info` adds to it.
#[derive(Debug, Clone)]
pub struct FileDetails {
    pub file: FileRecord,
    /// Names of the collections the file is in, sorted.
    pub collections: Vec<String>,
    pub version_count: i64,
    /// Oldest first, when asked for.
    pub versions: Option<Vec<VersionRecord>>,
}

/// A collection created or updated.
#[derive(Debug, Clone)]
pub struct CollectionUpsert {
    pub collection: Collection,
    pub created: bool,
    /// Files that were not members before this call.
    pub added: i64,
}

/// A checked `horace_create_collection` call.
#[derive(Debug, Clone)]
pub struct CollectionInput {
    pub name: String,
    pub description: Option<String>,
    /// Unique, in the order given.
    pub file_ids: Vec<Uuid>,
    pub metadata: Option<Map<String, Value>>,
}

/// The catalog both engines implement. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Catalog {
    Postgres(PgCatalog),
    Sqlite(SqliteCatalog),
}

macro_rules! on_backend {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Catalog::Postgres(c) => c.$method($($arg),*).await,
            Catalog::Sqlite(c) => c.$method($($arg),*).await,
        }
    };
}

impl Catalog {
    /// Connects (or creates the file) and migrates. `root` is the storage
    /// root as this server shows it, for the absolute `file_path` of records.
    pub async fn open(config: &CatalogConfig, root: &str) -> Result<Catalog> {
        match config {
            CatalogConfig::Postgres { url } => Ok(Catalog::Postgres(PgCatalog::connect(url, root).await?)),
            CatalogConfig::Sqlite { path } => Ok(Catalog::Sqlite(SqliteCatalog::open(path, root).await?)),
        }
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Catalog::Postgres(_) => "postgres",
            Catalog::Sqlite(_) => "sqlite",
        }
    }

    /// The checksum cataloged for a path, if it is cataloged.
    pub async fn checksum_of(&self, path: &RelPath) -> Result<Option<String>> {
        on_backend!(self.checksum_of(path))
    }

    /// Catalogs what was read at `path`. `metadata` is what
    /// [`FileMetadata::validated`] returned.
    pub async fn register(
        &self,
        path: &RelPath,
        observed: &Observed,
        metadata: &FileMetadata,
    ) -> Result<(FileRecord, Registered)> {
        on_backend!(self.register(path, observed, metadata))
    }

    pub async fn file(&self, id: Uuid) -> Result<FileRecord> {
        on_backend!(self.file(id))
    }

    /// The content with this checksum if the catalog keeps it (small
    /// content; larger content is a file of the version store).
    pub async fn inline_content(&self, checksum: &str) -> Result<Option<Vec<u8>>> {
        on_backend!(self.inline_content(checksum))
    }

    /// The checksums of every content the catalog keeps, sorted: what the
    /// version store holds besides its files.
    pub async fn inline_checksums(&self) -> Result<Vec<String>> {
        on_backend!(self.inline_checksums())
    }

    pub async fn details(&self, id: Uuid, include_versions: bool) -> Result<FileDetails> {
        on_backend!(self.details(id, include_versions))
    }

    pub async fn version(&self, id: Uuid, version: i64) -> Result<VersionRecord> {
        on_backend!(self.version(id, version))
    }

    /// Merges `metadata` and applies what a content check found, in one
    /// transaction.
    pub async fn update(&self, id: Uuid, metadata: &FileMetadata, content: &ContentCheck) -> Result<Updated> {
        on_backend!(self.update(id, metadata, content))
    }

    /// Records the content written back by a restore as a new version.
    pub async fn record_restore(&self, id: Uuid, observed: &Observed, from_version: i64) -> Result<FileRecord> {
        on_backend!(self.record_restore(id, observed, from_version))
    }

    /// A page, newest registration first, and the number of all matches.
    pub async fn search(&self, query: &SearchQuery) -> Result<(Vec<FileRecord>, i64)> {
        on_backend!(self.search(query))
    }

    /// Creates or updates by name; refuses unknown file ids, naming them,
    /// with nothing changed.
    pub async fn upsert_collection(&self, input: &CollectionInput) -> Result<CollectionUpsert> {
        on_backend!(self.upsert_collection(input))
    }

    /// By name, and the number of collections.
    pub async fn list_collections(&self, limit: i64, offset: i64) -> Result<(Vec<Collection>, i64)> {
        on_backend!(self.list_collections(limit, offset))
    }
}

/// The absolute path of a cataloged file under `root`.
pub(crate) fn join_root(root: &str, path: &str) -> String {
    if root.ends_with('/') { format!("{root}{path}") } else { format!("{root}/{path}") }
}

pub(crate) fn unknown_file_ids(ids: &[Uuid]) -> HoraceError {
    let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    HoraceError::new(
        ErrorCode::UnknownFileIds,
        format!(
            "these file_ids are not cataloged: {}; nothing was changed. Register the files first \
             (horace_register_file) or remove these ids",
            list.join(", ")
        ),
    )
}

pub(crate) fn version_not_found(id: Uuid, version: i64, current: i64) -> HoraceError {
    HoraceError::new(
        ErrorCode::VersionNotFound,
        format!(
            "file {id} has versions 1 to {current}, not {version}; list them with horace_get_file_info and include_versions"
        ),
    )
}

/// Values of a stored row that a metadata merge compares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredMetadata {
    pub owner: Option<String>,
    pub purpose: Option<String>,
    pub correlation_id: Option<String>,
    pub tags: Vec<String>,
}

impl StoredMetadata {
    /// Present fields replace, empty strings and lists clear.
    pub fn merged(&self, patch: &FileMetadata) -> StoredMetadata {
        use crate::model::merge_text;
        StoredMetadata {
            owner: merge_text(self.owner.clone(), &patch.owner),
            purpose: merge_text(self.purpose.clone(), &patch.purpose),
            correlation_id: merge_text(self.correlation_id.clone(), &patch.correlation_id),
            tags: patch.tags.clone().unwrap_or_else(|| self.tags.clone()),
        }
    }

    /// What a new file starts with.
    pub fn initial(patch: &FileMetadata) -> StoredMetadata {
        StoredMetadata { owner: None, purpose: None, correlation_id: None, tags: Vec::new() }.merged(patch)
    }
}

/// Which engine a search statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

/// A value bound to a search statement; each backend binds it its own way
/// (SQLite keeps times as microseconds).
#[derive(Debug, Clone)]
pub(crate) enum SqlValue {
    Text(String),
    Int(i64),
    Time(chrono::DateTime<chrono::Utc>),
}

/// A `horace_search_files` query as SQL pieces both engines accept, with
/// numbered placeholders (`$1` or `?1`) for `args`. Every value is bound,
/// never spliced into the text.
#[derive(Debug)]
pub(crate) struct SearchSql {
    /// `FROM ... WHERE ...` for the count: with tags and no other filter it
    /// reads only `file_tags` (rows there exist only for cataloged files).
    pub count_from: String,
    /// `FROM ... WHERE ...` for the page, where the file columns are `f.*`.
    pub page_from: String,
    /// The page order, newest registration first.
    pub order: &'static str,
    pub args: Vec<SqlValue>,
}

impl SearchSql {
    pub fn build(query: &SearchQuery, dialect: Dialect) -> SearchSql {
        let placeholder = match dialect {
            Dialect::Postgres => '$',
            Dialect::Sqlite => '?',
        };
        let mut args = Vec::new();
        let mut arg = |value: SqlValue| {
            args.push(value);
            format!("{placeholder}{}", args.len())
        };
        let mut filter = String::new();
        if let Some(owner) = &query.owner {
            filter.push_str(&format!(" AND f.owner = {}", arg(SqlValue::Text(owner.clone()))));
        }
        if let Some(t) = query.created_after {
            filter.push_str(&format!(" AND f.created_at > {}", arg(SqlValue::Time(t))));
        }
        if let Some(t) = query.created_before {
            filter.push_str(&format!(" AND f.created_at < {}", arg(SqlValue::Time(t))));
        }
        match &query.file_type {
            None => {}
            Some(FileTypeFilter::Extension(ext)) => {
                filter.push_str(&format!(" AND f.extension = {}", arg(SqlValue::Text(ext.clone()))))
            }
            Some(FileTypeFilter::Mime(mime)) => {
                filter.push_str(&format!(" AND f.mime_type = {}", arg(SqlValue::Text(mime.clone()))))
            }
            Some(FileTypeFilter::MimePrefix(prefix)) => {
                let family = prefix.trim_end_matches('/').to_owned();
                filter.push_str(&format!(" AND f.mime_family = {}", arg(SqlValue::Text(family))))
            }
        }
        if let Some(min) = query.min_size {
            filter.push_str(&format!(" AND f.size >= {}", arg(SqlValue::Int(min))));
        }
        if let Some(max) = query.max_size {
            filter.push_str(&format!(" AND f.size <= {}", arg(SqlValue::Int(max))));
        }
        if let Some(name) = &query.collection {
            let p = arg(SqlValue::Text(name.clone()));
            filter.push_str(&format!(
                " AND f.seq IN (SELECT cf.file_seq FROM collection_files cf \
                 JOIN collections c ON c.seq = cf.collection_seq WHERE c.name = {p})"
            ));
        }
        if let Some(status) = query.status {
            filter.push_str(&format!(" AND f.status = {}", arg(SqlValue::Text(status.as_str().to_owned()))));
        }
        let Some((first, more)) = query.tags.split_first() else {
            let from = format!("FROM files f WHERE TRUE{filter}");
            return SearchSql { count_from: from.clone(), page_from: from, order: "f.seq", args };
        };
        // Tags drive: the first tag's index range (tag, file_seq), each
        // further tag a primary-key probe, and the file row last. The range
        // is in file order, so a page needs no sort.
        let mut tags = String::from("file_tags t0");
        let first = arg(SqlValue::Text(first.clone()));
        for (i, tag) in more.iter().enumerate() {
            let p = arg(SqlValue::Text(tag.clone()));
            let t = i + 1;
            tags.push_str(&format!(" JOIN file_tags t{t} ON t{t}.file_seq = t0.file_seq AND t{t}.tag = {p}"));
        }
        let page_from = format!("FROM {tags} JOIN files f ON f.seq = t0.file_seq WHERE t0.tag = {first}{filter}");
        let count_from =
            if filter.is_empty() { format!("FROM {tags} WHERE t0.tag = {first}") } else { page_from.clone() };
        SearchSql { count_from, page_from, order: "t0.file_seq", args }
    }
}
