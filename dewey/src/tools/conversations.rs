//! Conversation tools: begin, store (one or in bulk), get, list, delete,
//! full-text search.

use mcp_runtime::{State, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{check_metadata, object, page};
use crate::bulk_messages::{self, MessageFiles};
use crate::error::{DeweyError, Result};
use crate::model::{
    BulkStored, BulkTarget, ConversationPage, ConversationQuery, ConversationRecord, ConversationWithMessages,
    NewMessage, Role, SearchHit, SearchQuery, SearchTerms, SortBy, StoredMessage, check_range, check_storable,
    check_storable_opt, parse_optional_timestamp, parse_uuid,
};
use crate::storage::{MAX_TURN, Storage};

/// Start a new conversation and return its ID
#[mcp_tool(name = "dewey_begin_conversation")]
pub async fn begin_conversation(
    store: State<Storage>,
    /// Optional session ID to group conversations
    session_id: Option<String>,
    /// Optional metadata as key-value pairs
    metadata: Option<Map<String, Value>>,
) -> Result<ConversationRecord> {
    check_storable_opt(session_id.as_deref(), "session_id")?;
    check_metadata(&metadata, "metadata")?;
    store.begin_conversation(session_id, object(metadata)).await
}

/// Store a single message in a conversation
#[mcp_tool(name = "dewey_store_message")]
pub async fn store_message(
    store: State<Storage>,
    /// UUID of the conversation
    conversation_id: String,
    /// Role: user, assistant, system or tool
    role: Role,
    /// Message content
    content: String,
    /// Optional turn number (auto-increments if not provided; an explicit turn that is taken is refused)
    turn_number: Option<i64>,
    /// Optional metadata (e.g., model, tokens, timing)
    metadata: Option<Map<String, Value>>,
) -> Result<StoredMessage> {
    let id = parse_uuid(&conversation_id, "conversation_id")?;
    let turn = turn_number.map(|t| check_range(t, "turn_number", 1, MAX_TURN)).transpose()?;
    check_storable(&content, "content")?;
    check_metadata(&metadata, "metadata")?;
    store.store_message(id, turn, NewMessage { role, content, metadata: object(metadata) }).await
}

/// Store multiple messages at once (up to 1000). Supports file references for large payloads.
///
/// Give `messages` inline or `messages_file` (a JSON array or JSONL file inside the server's DEWEY_FILES_DIR).
/// Entries may be `{role, content, metadata?}` or Claude Code session lines (`{"message": {role, content}, ...}`,
/// stored with the whole line as metadata); other entries become `system` messages holding the entry as metadata.
/// Messages get consecutive turns after the conversation's last one. All are stored or none.
#[mcp_tool(name = "dewey_store_messages_bulk")]
pub async fn store_messages_bulk(
    store: State<Storage>,
    files: State<MessageFiles>,
    /// Array of message objects with role and content (inline)
    messages: Option<Vec<Map<String, Value>>>,
    /// Path to JSON file containing message array (file reference - industry standard for large payloads)
    messages_file: Option<String>,
    /// Optional existing conversation ID (default: a new conversation)
    conversation_id: Option<String>,
    /// Optional session ID for new conversation
    session_id: Option<String>,
    /// Optional metadata for new conversation
    metadata: Option<Map<String, Value>>,
) -> Result<BulkStored> {
    let target = match conversation_id {
        Some(id) => {
            if session_id.is_some() || metadata.is_some() {
                return Err(DeweyError::invalid(
                    "`session_id` and `metadata` describe a new conversation; leave them out when `conversation_id` \
                     names an existing one",
                ));
            }
            BulkTarget::Existing(parse_uuid(&id, "conversation_id")?)
        }
        None => {
            check_storable_opt(session_id.as_deref(), "session_id")?;
            check_metadata(&metadata, "metadata")?;
            BulkTarget::New { session_id, metadata: object(metadata) }
        }
    };
    let entries: Vec<NewMessage> = match (messages, messages_file) {
        (Some(_), Some(_)) => {
            return Err(DeweyError::invalid("give either `messages` or `messages_file`, not both"));
        }
        (None, None) => {
            return Err(DeweyError::invalid("give `messages` (an array of {role, content}) or `messages_file`"));
        }
        (Some(inline), None) => bulk_messages::normalise(inline.into_iter().map(Value::Object).collect(), "messages")?,
        (None, Some(path)) => {
            let entries = files.load(&path).await?;
            bulk_messages::normalise(entries, &format!("messages_file {path}"))?
        }
    };
    store.store_messages_bulk(target, entries).await
}

/// Retrieve all messages from a conversation
#[mcp_tool(name = "dewey_get_conversation", read_only)]
pub async fn get_conversation(
    store: State<Storage>,
    /// UUID of the conversation
    conversation_id: String,
) -> Result<ConversationWithMessages> {
    store.get_conversation(parse_uuid(&conversation_id, "conversation_id")?).await
}

/// List conversations with pagination and filtering, newest first
#[mcp_tool(name = "dewey_list_conversations", read_only)]
pub async fn list_conversations(
    store: State<Storage>,
    /// Optional session ID filter
    session_id: Option<String>,
    /// Maximum results (1-1000)
    #[mcp(default = 20)]
    limit: i64,
    /// Number to skip
    #[mcp(default = 0)]
    offset: i64,
    /// Sort field: created_at or updated_at (newest first)
    #[mcp(default = SortBy::CreatedAt)]
    sort_by: SortBy,
) -> Result<ConversationPage> {
    let (limit, offset) = page(limit, offset)?;
    check_storable_opt(session_id.as_deref(), "session_id")?;
    store.list_conversations(ConversationQuery { session_id, sort_by, limit, offset }).await
}

/// What `dewey_delete_conversation` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeletedConversation {
    pub conversation_id: String,
    pub deleted: bool,
    pub messages_deleted: i64,
}

/// Delete a conversation and all its messages
#[mcp_tool(name = "dewey_delete_conversation", destructive)]
pub async fn delete_conversation(
    store: State<Storage>,
    /// UUID of the conversation
    conversation_id: String,
    /// Force delete without confirmation: required when the conversation still has messages
    #[mcp(default = false)]
    force: bool,
) -> Result<DeletedConversation> {
    let id = parse_uuid(&conversation_id, "conversation_id")?;
    let messages_deleted = store.delete_conversation(id, force).await?;
    Ok(DeletedConversation { conversation_id: id.to_string(), deleted: true, messages_deleted })
}

/// What `dewey_search` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchResults {
    pub query: String,
    /// Best match first.
    pub results: Vec<SearchHit>,
    pub count: usize,
}

/// Full-text search across all messages, best match first
///
/// Every word of `query` must occur (after stemming: `migrations` finds `migration`).
#[mcp_tool(name = "dewey_search", read_only)]
pub async fn search(
    store: State<Storage>,
    /// Search query string
    query: String,
    /// Optional session ID filter
    session_id: Option<String>,
    /// Optional start date (ISO format)
    start_date: Option<String>,
    /// Optional end date (ISO format)
    end_date: Option<String>,
    /// Maximum results (1-1000)
    #[mcp(default = 20)]
    limit: i64,
    /// Number to skip
    #[mcp(default = 0)]
    offset: i64,
) -> Result<SearchResults> {
    let terms = SearchTerms::parse(&query, "query")?;
    check_storable_opt(session_id.as_deref(), "session_id")?;
    let (limit, offset) = page(limit, offset)?;
    let start = parse_optional_timestamp(start_date.as_deref(), "start_date")?;
    let end = parse_optional_timestamp(end_date.as_deref(), "end_date")?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(DeweyError::invalid("`start_date` is after `end_date`; swap them"));
    }
    let results = store.search(SearchQuery { terms, session_id, start, end, limit, offset }).await?;
    Ok(SearchResults { query, count: results.len(), results })
}
