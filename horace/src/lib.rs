//! Horace: a versioned catalog of the files in one storage root, served as
//! MCP tools over WebSocket. Every path a caller gives is resolved beneath a
//! directory handle held on the root; content is hashed as it streams and
//! kept, once per distinct content, in a version store; the catalog lives in
//! SQLite (no set-up) or PostgreSQL (shared by replicas).
//!
//! The binary and the tests build the same server:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = horace::CatalogConfig::from_env()?;
//! let horace = horace::Horace::open(&horace::storage_root_from_env(), &catalog).await?;
//! let bound = horace::server(horace).bind("127.0.0.1:0").await?;
//! println!("listening on ws://{}", bound.local_addr());
//! bound.serve().await?;
//! # Ok(()) }
//! ```

pub mod catalog;
pub mod content;
pub mod error;
pub mod model;
pub mod root;
pub mod tools;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcp_runtime::{Server, ServerBuilder};

pub use catalog::{Catalog, CatalogConfig};
pub use content::{StagedRestore, VersionStore};
pub use error::{ErrorCode, HoraceError};
pub use root::StorageRoot;

use crate::error::Result;
use crate::model::Observed;
use crate::root::RelPath;

/// The port Horace listens on when MCP_PORT is unset.
pub const DEFAULT_PORT: u16 = 8070;

/// `$HORACE_STORAGE_ROOT`, default `files` in the data directory
/// (`./horace-data/files`).
pub fn storage_root_from_env() -> PathBuf {
    std::env::var_os("HORACE_STORAGE_ROOT")
        .filter(|r| !r.is_empty())
        .map_or_else(|| catalog::data_dir().join("files"), PathBuf::from)
}

/// Everything the tools work on: the root, its version store, the catalog.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Horace {
    root: Arc<StorageRoot>,
    store: Arc<VersionStore>,
    catalog: Catalog,
}

impl Horace {
    /// Opens (creating) the storage root and the catalog.
    pub async fn open(root: &Path, catalog: &CatalogConfig) -> Result<Horace> {
        let root = StorageRoot::open(root).map_err(|e| {
            HoraceError::new(ErrorCode::IoError, format!("cannot open the storage root {}: {e}", root.display()))
        })?;
        if let CatalogConfig::Sqlite { path } = catalog {
            refuse_catalog_inside_root(path, &root)?;
        }
        let catalog = Catalog::open(catalog, &root.path().display().to_string()).await?;
        Horace::new(root, catalog)
    }

    /// Horace over an open root and catalog (the catalog must have been
    /// opened with this root's path).
    pub fn new(root: StorageRoot, catalog: Catalog) -> Result<Horace> {
        if let Catalog::Sqlite(sqlite) = &catalog {
            refuse_catalog_inside_root(sqlite.path(), &root)?;
        }
        let store = VersionStore::open(&root).map_err(|e| {
            HoraceError::new(
                ErrorCode::IoError,
                format!("cannot open the version store in {}/.horace: {e}", root.path().display()),
            )
        })?;
        Ok(Horace { root: Arc::new(root), store: Arc::new(store), catalog })
    }

    pub fn root(&self) -> &StorageRoot {
        &self.root
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn store(&self) -> &VersionStore {
        &self.store
    }

    /// Hashes the file and keeps its content (off the async threads).
    pub async fn ingest(&self, rel: RelPath, known: Option<String>) -> Result<Observed> {
        let (root, store) = (self.root.clone(), self.store.clone());
        blocking(move || store.ingest(&root, &rel, known.as_deref())).await
    }

    /// Writes the stored content `checksum` back to `rel` atomically, from
    /// the catalog when it keeps that content, else from the store's file.
    pub async fn restore(&self, rel: RelPath, checksum: String) -> Result<Observed> {
        let staged = self.stage_restore(rel.clone(), checksum).await?;
        self.commit_restore(staged, rel).await
    }

    /// Writes and checks the stored content `checksum` beside `rel`, leaving
    /// `rel` as it is (see [`VersionStore::stage`]).
    pub async fn stage_restore(&self, rel: RelPath, checksum: String) -> Result<StagedRestore> {
        let inline = self.catalog.inline_content(&checksum).await?;
        let (root, store) = (self.root.clone(), self.store.clone());
        blocking(move || store.stage(&root, &rel, &checksum, inline.as_deref())).await
    }

    /// Puts a staged restore in place at `rel`, the path it was staged for.
    pub async fn commit_restore(&self, staged: StagedRestore, rel: RelPath) -> Result<Observed> {
        let root = self.root.clone();
        blocking(move || staged.commit(&root, &rel)).await
    }
}

/// Refuses an SQLite catalog file that lies inside the storage root: its
/// file (and the `-wal` and `-shm` beside it) could be registered, and a
/// restore could write over the live database. Symlinks are resolved, so a
/// data directory reached through one counts where it really is.
fn refuse_catalog_inside_root(catalog: &Path, root: &StorageRoot) -> Result<()> {
    let real = real_path(catalog).map_err(|e| {
        HoraceError::new(ErrorCode::IoError, format!("cannot resolve the catalog path {}: {e}", catalog.display()))
    })?;
    if real.starts_with(root.canonical()) {
        return Err(HoraceError::invalid(format!(
            "the SQLite catalog {} is inside the storage root {}, where a caller could register it or restore over \
             it; set HORACE_DATA_DIR (the catalog's folder) outside HORACE_STORAGE_ROOT",
            catalog.display(),
            root.path().display()
        )));
    }
    Ok(())
}

/// `path` with symlinks resolved as far as it exists, the rest appended.
fn real_path(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => return Ok(missing.iter().rev().fold(real, |path, part| path.join(part))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(name), Some(parent)) = (existing.file_name(), existing.parent()) else { return Err(e) };
                missing.push(name);
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HoraceError::new(ErrorCode::IoError, format!("the file task failed: {e}")))?
}

/// The tools, without state: enough for `--list-tools`.
pub fn tools() -> ServerBuilder {
    use tools::collections::*;
    use tools::files::*;
    Server::builder("horace", env!("CARGO_PKG_VERSION"))
        .instructions(instructions(None))
        .default_port(DEFAULT_PORT)
        .tool::<register_file>()
        .tool::<search_files>()
        .tool::<get_file_info>()
        .tool::<create_collection>()
        .tool::<list_collections>()
        .tool::<update_file>()
        .tool::<restore_version>()
}

/// [`tools`] with the storage root `root` named in the instructions, as the
/// binary serves them.
pub fn tools_for_root(root: &Path) -> ServerBuilder {
    let shown = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
    tools().instructions(instructions(Some(&shown)))
}

/// What a model is told about Horace; with the root when it is known, since
/// paths are absolute inside it or relative to it.
fn instructions(root: Option<&Path>) -> String {
    let root = match root {
        Some(root) => format!("the storage root, {}", root.display()),
        None => "the storage root".to_owned(),
    };
    format!(
        "Horace catalogs the files in one shared storage root: register a file (path, owner, purpose, tags, \
         collection), search the catalog, read a file's details and versions, group files in collections, re-check a \
         file for changes, and restore an earlier version. Paths are absolute inside {root} (what the ICCM documents \
         call /mnt/irina_storage), or relative to it; nothing outside the root is read or written. Errors start with \
         a stable code (PATH_OUTSIDE_ROOT: ...)."
    )
}

/// The Horace server. Bind it, or `run()` it as the binary does.
pub fn server(horace: Horace) -> ServerBuilder {
    tools_for_root(horace.root().path()).state(horace)
}
