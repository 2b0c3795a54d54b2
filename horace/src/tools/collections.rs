//! Collection tools: named sets of cataloged files.

use mcp_runtime::{State, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::page;
use crate::Horace;
use crate::catalog::CollectionInput;
use crate::error::{ErrorCode, HoraceError, Result};
use crate::model::{Collection, MAX_COLLECTION_IDS, MAX_TEXT, check_json_metadata, parse_file_id};

/// What `horace_create_collection` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionResult {
    pub collection: Collection,
    /// True when the name was new.
    pub created: bool,
    /// How many of `file_ids` were not in the collection before.
    pub added: i64,
    pub message: String,
}

/// Create or update a file collection
///
/// A new name creates the collection; an existing name updates it: a given description replaces the old one,
/// metadata keys are merged, and `file_ids` are added to its files (files already in it stay). Every file id must be
/// cataloged: unknown ids are refused, naming them, and nothing is changed.
#[mcp_tool(name = "horace_create_collection", idempotent)]
pub async fn create_collection(
    horace: State<Horace>,
    /// Collection name
    name: String,
    /// What the collection is for
    description: Option<String>,
    /// Ids of cataloged files to put in the collection
    file_ids: Option<Vec<String>>,
    /// Free-form metadata, merged key by key into the stored metadata
    metadata: Option<Map<String, Value>>,
) -> Result<CollectionResult> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(HoraceError::invalid("`name` is empty; give the collection a name"));
    }
    if name.len() > MAX_TEXT || name.contains('\0') {
        return Err(HoraceError::invalid(format!("`name` must be at most {MAX_TEXT} bytes without NUL characters")));
    }
    if description.as_ref().is_some_and(|d| d.len() > 16 * MAX_TEXT || d.contains('\0')) {
        return Err(HoraceError::invalid(format!(
            "`description` must be at most {} bytes without NUL characters",
            16 * MAX_TEXT
        )));
    }
    if let Some(metadata) = &metadata {
        check_json_metadata(metadata, "metadata")?;
    }
    let given = file_ids.unwrap_or_default();
    if given.len() > MAX_COLLECTION_IDS {
        return Err(HoraceError::invalid(format!(
            "{} file_ids in one call; at most {MAX_COLLECTION_IDS}: add the rest in further calls",
            given.len()
        )));
    }
    let mut ids: Vec<Uuid> = Vec::with_capacity(given.len());
    let mut malformed = Vec::new();
    for raw in &given {
        match parse_file_id(raw, "file_ids") {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => malformed.push(format!("{raw:?}")),
        }
    }
    if !malformed.is_empty() {
        return Err(HoraceError::new(
            ErrorCode::InvalidId,
            format!(
                "these file_ids are not file ids (UUIDs): {}; nothing was changed. Find ids with horace_search_files",
                malformed.join(", ")
            ),
        ));
    }
    let input = CollectionInput { name, description, file_ids: ids, metadata };
    let upsert = horace.catalog().upsert_collection(&input).await?;
    let message = format!(
        "{} collection {:?}: {} file(s) added, {} in it now",
        if upsert.created { "created" } else { "updated" },
        upsert.collection.name,
        upsert.added,
        upsert.collection.file_count
    );
    Ok(CollectionResult { collection: upsert.collection, created: upsert.created, added: upsert.added, message })
}

/// What `horace_list_collections` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionList {
    /// By name.
    pub collections: Vec<Collection>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

/// List all collections
#[mcp_tool(name = "horace_list_collections", read_only)]
pub async fn list_collections(
    horace: State<Horace>,
    /// Maximum results (1-1000)
    #[mcp(default = 20)]
    limit: i64,
    /// Number of results to skip
    #[mcp(default = 0)]
    offset: i64,
) -> Result<CollectionList> {
    let (limit, offset) = page(limit, offset)?;
    let (collections, total) = horace.catalog().list_collections(limit, offset).await?;
    let has_more = offset.saturating_add(collections.len() as i64) < total;
    Ok(CollectionList { collections, total, limit, offset, has_more })
}
