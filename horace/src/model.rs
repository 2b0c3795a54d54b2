//! The records Horace catalogs and returns, shared by both catalog backends
//! and the tools, and the checking of the loosely-typed inputs (ids,
//! timestamps, tags, type filters) before anything is queried.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ErrorCode, HoraceError, Result};

/// Longest owner, purpose, correlation id, collection name or description.
pub const MAX_TEXT: usize = 1024;
/// Longest tag, and most tags on one file.
pub const MAX_TAG: usize = 128;
pub const MAX_TAGS: usize = 64;
/// Most `file_ids` in one `horace_create_collection` call.
pub const MAX_COLLECTION_IDS: usize = 10_000;

/// What a caller tells about a file, at registration and update. A field
/// that is present replaces the stored value (an empty string or an empty
/// `tags` list clears it); a field that is absent is left as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileMetadata {
    /// Who the file belongs to (a component or person)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Why the file exists
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Labels to search by; all given tags must match in horace_search_files
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Name of a collection to add the file to (created if it does not exist)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Id tying the file to the request or conversation that produced it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl FileMetadata {
    /// Checks lengths and tags; trims tags and drops repeated ones (keeping
    /// the first), so what is stored is what later searches match.
    pub fn validated(mut self) -> Result<FileMetadata> {
        for (name, value) in [
            ("owner", &self.owner),
            ("purpose", &self.purpose),
            ("collection", &self.collection),
            ("correlation_id", &self.correlation_id),
        ] {
            if let Some(v) = value {
                check_text(v, &format!("metadata.{name}"))?;
            }
        }
        if self.collection.as_ref().is_some_and(|name| name.trim().is_empty()) {
            return Err(HoraceError::invalid("`metadata.collection` is empty; give a collection name or omit it"));
        }
        if let Some(tags) = self.tags.take() {
            self.tags = Some(clean_tags(tags, "metadata.tags")?);
        }
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        *self == FileMetadata::default()
    }
}

/// Checks a free-form text a caller gives (a metadata field, a search
/// filter): at most [`MAX_TEXT`] bytes, no NUL (which PostgreSQL cannot
/// store and no caller means).
pub fn check_text(value: &str, what: &str) -> Result<()> {
    if value.len() > MAX_TEXT {
        return Err(HoraceError::invalid(format!("`{what}` is {} bytes; at most {MAX_TEXT} are kept", value.len())));
    }
    if value.contains('\0') {
        return Err(HoraceError::invalid(format!("`{what}` contains a NUL character; remove it")));
    }
    Ok(())
}

/// Most bytes of a collection's free-form `metadata` as JSON.
pub const MAX_JSON_METADATA: usize = 64 * MAX_TEXT;

/// Checks free-form JSON metadata: at most [`MAX_JSON_METADATA`] bytes as
/// JSON, and no NUL in any key or string (PostgreSQL's jsonb refuses
/// `\u0000`; SQLite would keep what PostgreSQL cannot, so both refuse it).
pub fn check_json_metadata(metadata: &Map<String, Value>, what: &str) -> Result<()> {
    let size = Value::Object(metadata.clone()).to_string().len();
    if size > MAX_JSON_METADATA {
        return Err(HoraceError::invalid(format!(
            "`{what}` is {size} bytes as JSON; at most {MAX_JSON_METADATA} are kept"
        )));
    }
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if metadata.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err(HoraceError::invalid(format!(
            "`{what}` contains a NUL character (\\u0000) in a key or a string; remove it"
        )));
    }
    Ok(())
}

/// Trimmed, non-empty, unique, bounded tags in the order given.
pub fn clean_tags(tags: Vec<String>, what: &str) -> Result<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(HoraceError::invalid(format!("`{what}` has {} tags; at most {MAX_TAGS} are allowed", tags.len())));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err(HoraceError::invalid(format!("`{what}` contains an empty tag; remove it")));
        }
        if tag.len() > MAX_TAG || tag.contains('\0') {
            return Err(HoraceError::invalid(format!(
                "tag {tag:?} in `{what}` is not acceptable: tags are at most {MAX_TAG} bytes without NUL"
            )));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

/// Applies a metadata patch to stored values: present fields replace,
/// empty strings clear.
pub fn merge_text(stored: Option<String>, given: &Option<String>) -> Option<String> {
    match given {
        None => stored,
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v.clone()),
    }
}

/// Whether a cataloged file is where the catalog says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// The file was at its path when last registered, checked or restored.
    Active,
    /// A check found no file at its path; `horace_restore_version` brings it back.
    Missing,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Active => "active",
            FileStatus::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<FileStatus> {
        [FileStatus::Active, FileStatus::Missing].into_iter().find(|x| x.as_str() == s)
    }
}

/// Why a version was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionReason {
    /// The first registration of the path.
    Registered,
    /// A registration or a check found different content at the path.
    Changed,
    /// `horace_restore_version` wrote an earlier version back.
    Restored,
}

impl VersionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionReason::Registered => "registered",
            VersionReason::Changed => "changed",
            VersionReason::Restored => "restored",
        }
    }

    pub fn parse(s: &str) -> Option<VersionReason> {
        [VersionReason::Registered, VersionReason::Changed, VersionReason::Restored]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// What reading a file found: the facts a version records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// SHA-256, lowercase hex.
    pub checksum: String,
    pub size: i64,
    pub mime_type: String,
    /// The file's modification time as the filesystem reports it.
    pub modified_at: DateTime<Utc>,
    /// The content itself when it is small
    /// ([`INLINE_MAX`](crate::content::INLINE_MAX) bytes at most): the
    /// catalog keeps it, once per checksum, in the transaction that records
    /// a version with it. `None` for larger content, which is a file of the
    /// version store, and for a restore (the content is stored already).
    pub content: Option<std::sync::Arc<[u8]>>,
}

/// One cataloged file as the tools return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileRecord {
    pub file_id: String,
    /// Absolute path as this server sees the storage root.
    pub file_path: String,
    /// Path from the storage root: what the catalog keys the file by.
    pub relative_path: String,
    pub file_name: String,
    /// The extension, lowercase without the dot; absent when the name has none.
    pub file_type: Option<String>,
    /// Detected from the content, the extension as a fallback.
    pub mime_type: String,
    pub size: i64,
    /// SHA-256 of the current version, lowercase hex.
    pub checksum: String,
    /// The current version number (1 at registration).
    pub version: i64,
    pub status: FileStatus,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    pub tags: Vec<String>,
    pub correlation_id: Option<String>,
    /// When Horace first cataloged the path.
    pub created_at: String,
    /// When the catalog entry last changed (metadata, version or status).
    pub updated_at: String,
    /// The file's modification time when its current version was recorded.
    pub modified_at: String,
}

/// One version of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VersionRecord {
    pub version: i64,
    pub checksum: String,
    pub size: i64,
    pub mime_type: String,
    pub reason: VersionReason,
    /// For a restore, the version whose content was written back.
    pub restored_from: Option<i64>,
    pub created_at: String,
}

/// A named set of files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Collection {
    pub collection_id: String,
    pub name: String,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub file_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// How a `file_type` search filter matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTypeFilter {
    /// `pdf`, `.PDF`: the extension, case-insensitive.
    Extension(String),
    /// `application/pdf`: the MIME type exactly.
    Mime(String),
    /// `image/*`: every subtype; holds `image/`.
    MimePrefix(String),
}

impl FileTypeFilter {
    pub fn parse(value: &str) -> Result<FileTypeFilter> {
        let v = value.trim().to_ascii_lowercase();
        let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        let bad = || {
            HoraceError::invalid(format!(
                "`file_type` {value:?} is neither an extension (pdf) nor a MIME type (application/pdf, image/*)"
            ))
        };
        match v.split_once('/') {
            None => {
                let ext = v.trim_start_matches('.');
                let ext_char = |b: u8| b.is_ascii_alphanumeric() || b"_+-".contains(&b);
                if ext.is_empty() || ext.len() > 64 || !ext.bytes().all(ext_char) {
                    return Err(bad());
                }
                Ok(FileTypeFilter::Extension(ext.to_owned()))
            }
            Some((kind, "*")) if token(kind) => Ok(FileTypeFilter::MimePrefix(format!("{kind}/"))),
            Some((kind, sub)) if token(kind) && !sub.is_empty() && sub.len() < 200 && !sub.contains(['%', '\0']) => {
                Ok(FileTypeFilter::Mime(v))
            }
            _ => Err(bad()),
        }
    }
}

/// A checked `horace_search_files` query.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub tags: Vec<String>,
    pub owner: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub file_type: Option<FileTypeFilter>,
    pub min_size: Option<i64>,
    pub max_size: Option<i64>,
    pub collection: Option<String>,
    pub status: Option<FileStatus>,
    pub limit: i64,
    pub offset: i64,
}

/// Parses a file id before it reaches a query.
pub fn parse_file_id(value: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| {
        HoraceError::new(
            ErrorCode::InvalidId,
            format!("`{what}` {value:?} is not a file id (a UUID such as 01938f2e-7b1c-7d2a-9e3f-0a1b2c3d4e5f); find ids with horace_search_files"),
        )
    })
}

pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads an RFC 3339 timestamp; one without an offset is UTC, a bare date
/// is its midnight UTC.
pub fn parse_timestamp(value: &str, what: &str) -> Result<DateTime<Utc>> {
    let s = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(HoraceError::invalid(format!(
        "`{what}` is not a timestamp: {value:?}; use RFC 3339, e.g. 2026-01-31T12:00:00Z, or a date, 2026-01-31"
    )))
}

pub fn check_range(value: i64, what: &str, min: i64, max: i64) -> Result<i64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(HoraceError::invalid(format!("`{what}` must be between {min} and {max}, got {value}")))
    }
}

/// A timestamp as both engines store it: whole microseconds, so what is
/// written is what is read back and compared.
pub fn now_micros() -> DateTime<Utc> {
    micros(Utc::now())
}

pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("a representable time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_type_filters() {
        assert_eq!(FileTypeFilter::parse(".PDF").unwrap(), FileTypeFilter::Extension("pdf".into()));
        assert_eq!(FileTypeFilter::parse("tar_gz").unwrap(), FileTypeFilter::Extension("tar_gz".into()));
        assert_eq!(FileTypeFilter::parse("image/*").unwrap(), FileTypeFilter::MimePrefix("image/".into()));
        assert_eq!(FileTypeFilter::parse("Application/PDF").unwrap(), FileTypeFilter::Mime("application/pdf".into()));
        for bad in ["", "a b", "image/", "*/*", "x%/y", "a/b%"] {
            assert!(FileTypeFilter::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_bounded() {
        assert_eq!(clean_tags(vec![" a ".into(), "b".into(), "a".into()], "t").unwrap(), ["a", "b"]);
        assert!(clean_tags(vec!["  ".into()], "t").is_err());
        assert!(clean_tags(vec!["x".repeat(MAX_TAG + 1)], "t").is_err());
        assert!(clean_tags(vec!["x".into(); MAX_TAGS + 1], "t").is_err());
    }

    #[test]
    fn ids_are_checked_before_queries() {
        assert!(parse_file_id("0193e5a0-0000-7000-8000-000000000000", "file_id").is_ok());
        let e = parse_file_id("1; DROP TABLE files", "file_id").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidId);
    }
}
