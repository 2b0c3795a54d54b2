//! File tools: register, search, details, update (metadata and change
//! detection) and restore.

use mcp_runtime::{State, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::page;
use crate::Horace;
use crate::catalog::{ContentCheck, Registered};
use crate::error::{ErrorCode, HoraceError, Result};
use crate::model::{
    FileMetadata, FileRecord, FileStatus, FileTypeFilter, SearchQuery, VersionRecord, check_range, check_text,
    clean_tags, parse_file_id, parse_timestamp,
};
use crate::root::RelPath;

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// The path was new: cataloged as version 1.
    Registered,
    /// The path was cataloged with the same content: the existing file, unchanged.
    Duplicate,
    /// The path was cataloged with other content: a new version was recorded.
    NewVersion,
}

/// What `horace_register_file` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Registration {
    pub file_id: String,
    pub status: RegistrationStatus,
    /// What happened, in words.
    pub message: String,
    pub file: FileRecord,
}

/// Register a file with Horace catalog
///
/// Records size, type (extension and MIME type detected from the content), SHA-256, timestamps and version 1,
/// whose content is kept in Horace's version store. Registering a path that is already cataloged with the same
/// content returns the existing file_id (status `duplicate`, nothing changed); with different content it records
/// a new version.
#[mcp_tool(name = "horace_register_file", idempotent)]
pub async fn register_file(
    horace: State<Horace>,
    /// Absolute path inside the storage root (the seeds' /mnt/irina_storage; this server's root is named in its instructions), or relative to it
    file_path: String,
    /// File metadata
    metadata: FileMetadata,
) -> Result<Registration> {
    let metadata = metadata.validated()?;
    let rel = horace.root().resolve(&file_path)?;
    // With the cataloged checksum, unchanged content is only hashed, not copied.
    let known = horace.catalog().checksum_of(&rel).await?;
    let observed = horace.ingest(rel.clone(), known).await?;
    let (file, outcome) = horace.catalog().register(&rel, &observed, &metadata).await?;
    let (status, message) = match outcome {
        Registered::New => (RegistrationStatus::Registered, format!("registered {} as version 1", file.file_path)),
        Registered::Duplicate => (
            RegistrationStatus::Duplicate,
            format!(
                "{} is already cataloged with the same content (version {}); returning its file_id. Nothing was \
                 changed: use horace_update_file to change its metadata",
                file.file_path, file.version
            ),
        ),
        Registered::NewVersion => (
            RegistrationStatus::NewVersion,
            format!("{} was cataloged with other content; recorded version {}", file.file_path, file.version),
        ),
    };
    Ok(Registration { file_id: file.file_id.clone(), status, message, file })
}

/// What `horace_search_files` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchResults {
    /// Newest registration first.
    pub files: Vec<FileRecord>,
    /// How many files match, over all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// Whether a page after this one exists.
    pub has_more: bool,
}

/// Search file catalog by metadata
///
/// Every given filter must hold. Results are ordered newest registration first, with the total number of matches
/// beside the page.
#[mcp_tool(name = "horace_search_files", read_only)]
#[allow(clippy::too_many_arguments)]
pub async fn search_files(
    horace: State<Horace>,
    /// Files carrying all of these tags
    tags: Option<Vec<String>>,
    /// Owner, exactly
    owner: Option<String>,
    /// Registered after this time (ISO 8601, e.g. 2026-01-31T12:00:00Z or 2026-01-31)
    created_after: Option<String>,
    /// Registered before this time (ISO 8601)
    created_before: Option<String>,
    /// An extension (pdf), a MIME type (application/pdf) or a MIME family (image/*)
    file_type: Option<String>,
    /// Smallest size in bytes
    min_size: Option<i64>,
    /// Largest size in bytes
    max_size: Option<i64>,
    /// Only files in the collection of this name
    collection: Option<String>,
    /// active, or missing (not found at its path by the last check)
    status: Option<FileStatus>,
    /// Maximum results (1-1000)
    #[mcp(default = 20)]
    limit: i64,
    /// Number of results to skip
    #[mcp(default = 0)]
    offset: i64,
) -> Result<SearchResults> {
    let (limit, offset) = page(limit, offset)?;
    for (name, value) in [("owner", &owner), ("collection", &collection)] {
        if let Some(v) = value {
            check_text(v, name)?;
        }
    }
    let created_after = created_after.map(|t| parse_timestamp(&t, "created_after")).transpose()?;
    let created_before = created_before.map(|t| parse_timestamp(&t, "created_before")).transpose()?;
    if let (Some(after), Some(before)) = (created_after, created_before)
        && after >= before
    {
        return Err(HoraceError::invalid("`created_after` must be earlier than `created_before`"));
    }
    let min_size = min_size.map(|s| check_range(s, "min_size", 0, i64::MAX)).transpose()?;
    let max_size = max_size.map(|s| check_range(s, "max_size", 0, i64::MAX)).transpose()?;
    if let (Some(min), Some(max)) = (min_size, max_size)
        && min > max
    {
        return Err(HoraceError::invalid(format!("`min_size` ({min}) is larger than `max_size` ({max})")));
    }
    let query = SearchQuery {
        tags: clean_tags(tags.unwrap_or_default(), "tags")?,
        owner,
        created_after,
        created_before,
        file_type: file_type.map(|t| FileTypeFilter::parse(&t)).transpose()?,
        min_size,
        max_size,
        collection,
        status,
        limit,
        offset,
    };
    let (files, total) = horace.catalog().search(&query).await?;
    let has_more = offset.saturating_add(files.len() as i64) < total;
    Ok(SearchResults { files, total, limit, offset, has_more })
}

/// What `horace_get_file_info` returns: the file, its collections and,
/// when asked for, its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileInfo {
    #[serde(flatten)]
    pub file: FileRecord,
    /// Names of the collections the file is in.
    pub collections: Vec<String>,
    pub version_count: i64,
    /// Oldest first; present with `include_versions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionRecord>>,
}

/// Get detailed metadata for specific file
#[mcp_tool(name = "horace_get_file_info", read_only)]
pub async fn get_file_info(
    horace: State<Horace>,
    /// The file's id (from horace_register_file or horace_search_files)
    file_id: String,
    /// Include the version history
    #[mcp(default = false)]
    include_versions: bool,
) -> Result<FileInfo> {
    let id = parse_file_id(&file_id, "file_id")?;
    let details = horace.catalog().details(id, include_versions).await?;
    Ok(FileInfo {
        file: details.file,
        collections: details.collections,
        version_count: details.version_count,
        versions: details.versions,
    })
}

/// What a change check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentState {
    /// `check_for_changes` was not asked for.
    NotChecked,
    /// The file has the cataloged content.
    Unchanged,
    /// The content differed: a new version was recorded.
    Changed,
    /// No file at the path: the file is now marked `missing`.
    Missing,
}

/// What `horace_update_file` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileUpdate {
    pub file: FileRecord,
    pub metadata_updated: bool,
    pub content: ContentState,
    /// The version recorded for changed content.
    pub new_version: Option<i64>,
    pub message: String,
}

/// Update file metadata or trigger re-versioning
///
/// Given metadata fields replace the stored ones (an empty string or tag list clears one); absent fields are kept.
/// With `check_for_changes` the file is hashed again and a new version is recorded when its content changed.
#[mcp_tool(name = "horace_update_file", idempotent)]
pub async fn update_file(
    horace: State<Horace>,
    /// The file's id
    file_id: String,
    /// Metadata fields to change
    metadata: Option<FileMetadata>,
    /// Re-hash the file and record a new version if its content changed
    #[mcp(default = false)]
    check_for_changes: bool,
) -> Result<FileUpdate> {
    let id = parse_file_id(&file_id, "file_id")?;
    let metadata = metadata.unwrap_or_default().validated()?;
    if metadata.is_empty() && !check_for_changes {
        return Err(HoraceError::invalid(
            "nothing to update: give `metadata` fields to change and/or `check_for_changes: true`",
        ));
    }
    let content = if check_for_changes {
        let file = horace.catalog().file(id).await?;
        let rel = RelPath::from_catalog(file.relative_path);
        match horace.ingest(rel, Some(file.checksum)).await {
            Ok(observed) => ContentCheck::Present(observed),
            Err(e) if e.code() == ErrorCode::PathNotFound => ContentCheck::Missing,
            Err(e) => return Err(e),
        }
    } else {
        ContentCheck::NotChecked
    };
    let updated = horace.catalog().update(id, &metadata, &content).await?;
    let state = match (&content, updated.new_version) {
        (ContentCheck::NotChecked, _) => ContentState::NotChecked,
        (ContentCheck::Missing, _) => ContentState::Missing,
        (ContentCheck::Present(_), Some(_)) => ContentState::Changed,
        (ContentCheck::Present(_), None) => ContentState::Unchanged,
    };
    let mut message = vec![if updated.metadata_changed { "metadata updated" } else { "metadata unchanged" }.to_owned()];
    match (state, updated.new_version) {
        (ContentState::Changed, Some(v)) => message.push(format!("content changed: recorded version {v}")),
        (ContentState::Unchanged, _) => message.push("content unchanged".to_owned()),
        (ContentState::Missing, _) => message.push(format!(
            "no file at {}: marked missing; horace_restore_version can write a version back",
            updated.file.file_path
        )),
        _ => {}
    }
    Ok(FileUpdate {
        file: updated.file,
        metadata_updated: updated.metadata_changed,
        content: state,
        new_version: updated.new_version,
        message: message.join("; "),
    })
}

/// What `horace_restore_version` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Restored {
    pub file: FileRecord,
    /// The version whose content was written back.
    pub restored_version: i64,
    /// The version that records the restore.
    pub new_version: i64,
    /// When the file held content the catalog had not recorded (an edit
    /// since the last registration or check), the version that kept it
    /// before it was overwritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_version: Option<i64>,
    pub message: String,
}

/// Restore a file to a previous version
///
/// Writes that version's content back to the file's path atomically (a temp file beside it, synced, then renamed
/// over it) and records the restore as a new version; history is never rewritten. If the file holds content that
/// was never cataloged (edited since it was last registered or checked), that content is first recorded as a new
/// version, so nothing is lost.
#[mcp_tool(name = "horace_restore_version", destructive)]
pub async fn restore_version(
    horace: State<Horace>,
    /// The file's id
    file_id: String,
    /// The version to restore (see horace_get_file_info with include_versions)
    version: i64,
) -> Result<Restored> {
    let id = parse_file_id(&file_id, "file_id")?;
    if version < 1 {
        return Err(HoraceError::invalid(format!("`version` starts at 1, got {version}")));
    }
    let wanted = horace.catalog().version(id, version).await?;
    let file = horace.catalog().file(id).await?;
    let rel = RelPath::from_catalog(file.relative_path);
    // First the checked content, synced beside the file: a missing or
    // corrupt version fails here, with nothing changed.
    let staged = horace.stage_restore(rel.clone(), wanted.checksum).await?;
    // Then what the file holds now, kept as a version if the catalog does
    // not have it: the rename below must not be the end of an edit.
    let before = match horace.ingest(rel.clone(), Some(file.checksum.clone())).await {
        Ok(observed) => Some(observed),
        // No file, or a symlink at its place that leads out of the root or
        // into .horace/ (replaced by the rename, never followed): nothing
        // of the file's own to keep.
        Err(e)
            if matches!(e.code(), ErrorCode::PathNotFound | ErrorCode::PathOutsideRoot | ErrorCode::PathReserved) =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    let mut saved_version = None;
    if let Some(observed) = before.as_ref().filter(|o| o.checksum != file.checksum) {
        let content = ContentCheck::Present(observed.clone());
        saved_version = horace.catalog().update(id, &FileMetadata::default(), &content).await?.new_version;
    }
    let observed = horace.commit_restore(staged, rel.clone()).await?;
    let file = match horace.catalog().record_restore(id, &observed, version).await {
        Ok(file) => file,
        Err(e) => return Err(undo_restore(&horace, rel, before.map(|o| o.checksum), e).await),
    };
    let mut message = String::new();
    if let Some(saved) = saved_version {
        message = format!(
            "the file held content that was not cataloged (changed since it was last registered or checked); \
             kept it as version {saved} first. "
        );
    }
    message
        .push_str(&format!("wrote version {version} back to {}; recorded as version {}", file.file_path, file.version));
    Ok(Restored { message, restored_version: version, new_version: file.version, saved_version, file })
}

/// After a restore was written but could not be recorded: puts the content
/// the file held before back (it is a cataloged version: the latest, or the
/// one just saved), so the failed call leaves the file as it was.
async fn undo_restore(horace: &Horace, rel: RelPath, before: Option<String>, failed: HoraceError) -> HoraceError {
    let shown = horace.root().absolute(rel.as_str());
    let outcome = match before {
        Some(checksum) => match horace.restore(rel, checksum).await {
            Ok(_) => format!("{shown} was put back as it was"),
            Err(e) => format!(
                "putting {shown} back failed too ({e}): it holds the restored content, which the catalog does not \
                 list as its current version; horace_update_file with check_for_changes records it"
            ),
        },
        None => format!(
            "{shown} had no content in the root before and now holds the restored content, which the catalog does \
             not list as its current version; horace_update_file with check_for_changes records it"
        ),
    };
    HoraceError::new(
        failed.code(),
        format!("the restore was written but recording it failed ({}); {outcome}", failed.message()),
    )
}
