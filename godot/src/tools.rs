//! The facade's MCP tools, with the seeds' names, parameters and required
//! lists: the logger tools, and the conversation tools proxied to Dewey,
//! the single owner of conversation storage.

use std::collections::BTreeMap;

use dewey::model::{BulkStored, ConversationRecord, Role, StoredMessage};
use dewey::tools::logs::{ClearedLogs, LogQueryResult};
use mcp_runtime::{State, ToolError, mcp_tool};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::entry::{Level, LogEntry};
use crate::facade::Facade;
use crate::queue::{DeadLetter, QueueCounts};

/// What `logger_log` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Logged {
    /// `ok` when queued, `filtered` when below the component's level.
    pub status: String,
    pub message: String,
    /// The entry's id (a UUIDv7), as Dewey will store it. Absent when filtered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the entry was stamped (UTC). Absent when filtered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Entries waiting in the queue after this one was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
}

/// Push a log entry to the logging queue
///
/// Answers as soon as the entry is queued; the worker delivers it to Dewey. The entry gets a unique id and
/// `created_at` (UTC) here. An entry below the level set for its component (`logger_set_level`) is not queued and
/// the result says so. Limits: `message` 64 KiB, `data` 64 KiB as JSON, `component` and `trace_id` 256 bytes.
#[mcp_tool(name = "logger_log")]
pub async fn logger_log(
    facade: State<Facade>,
    /// Component name
    component: String,
    /// ERROR, WARN, INFO, DEBUG or TRACE (any case)
    level: Level,
    /// Log message
    message: String,
    /// Optional trace ID for correlation
    trace_id: Option<String>,
    /// Optional structured data (a JSON object)
    data: Option<Map<String, Value>>,
) -> Result<Logged, ToolError> {
    // Bad input is refused whatever the level: a producer must learn that its
    // entry is malformed even while its component is filtered.
    let entry = LogEntry::new(component, level, message, trace_id, data).map_err(ToolError::new)?;
    if let Err(min) = facade.admits(&entry.component, level) {
        return Ok(Logged {
            status: "filtered".into(),
            message: format!(
                "not queued: {level} is below the level {min} set for component {:?} (logger_set_level)",
                entry.component
            ),
            id: None,
            created_at: None,
            queue_depth: None,
        });
    }
    let pushed = facade
        .intake
        .push(entry.to_json())
        .await
        .map_err(|e| ToolError::new(format!("{e}; the entry was not queued, send it again later")))?;
    Ok(Logged {
        status: "ok".into(),
        message: "Log entry queued.".into(),
        id: Some(entry.id),
        created_at: Some(entry.created_at),
        queue_depth: Some(pushed.depth),
    })
}

/// What `logger_set_level` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LevelSet {
    pub status: String,
    pub component: String,
    pub level: String,
}

/// Set log level for a component
///
/// Entries below it are not queued. Stored centrally: every facade on the same queue honours it within a second.
#[mcp_tool(name = "logger_set_level", idempotent)]
pub async fn logger_set_level(
    facade: State<Facade>,
    /// Component name
    component: String,
    /// ERROR, WARN, INFO, DEBUG or TRACE (any case); TRACE lets everything through
    level: Level,
) -> Result<LevelSet, ToolError> {
    if component.trim().is_empty() {
        return Err(ToolError::new("`component` is empty; name the component whose level to set"));
    }
    if component.contains('\0') || component.len() > crate::entry::MAX_NAME_BYTES {
        return Err(ToolError::new("`component` must be at most 256 bytes without NUL characters"));
    }
    facade.set_level(&component, level).await.map_err(ToolError::new)?;
    Ok(LevelSet { status: "ok".into(), component, level: level.as_str().into() })
}

/// Calls a Dewey tool and decodes its result; every failure names Dewey.
async fn proxy<T: DeserializeOwned>(facade: &Facade, tool: &str, arguments: Value) -> Result<T, ToolError> {
    let client = facade.dewey.now().await.map_err(|e| ToolError::new(format!("{e}; `{tool}` needs Dewey")))?;
    client.call(tool, arguments).await.map_err(|e| ToolError::new(facade.dewey.describe(tool, &e)))
}

/// Arguments without the ones left out, as the seed forwarded them.
fn arguments(pairs: &[(&str, Option<Value>)]) -> Value {
    Value::Object(pairs.iter().filter_map(|(k, v)| Some((k.to_string(), v.clone()?))).collect())
}

/// Query logs from storage (proxies to Dewey)
///
/// Newest first. Entries still in the queue are not there yet (see `logger_stats`).
#[mcp_tool(name = "logger_query", read_only)]
pub async fn logger_query(
    facade: State<Facade>,
    /// Filter by trace ID
    trace_id: Option<String>,
    /// Filter by component name
    component: Option<String>,
    /// Minimum level: ERROR, WARN, INFO, DEBUG or TRACE
    level: Option<Level>,
    /// Start time filter (ISO 8601)
    start_time: Option<String>,
    /// End time filter (ISO 8601)
    end_time: Option<String>,
    /// Maximum results (1-1000)
    #[mcp(default = 100)]
    limit: i64,
) -> Result<LogQueryResult, ToolError> {
    let args = arguments(&[
        ("trace_id", trace_id.map(Value::String)),
        ("component", component.map(Value::String)),
        ("level", level.map(|l| Value::String(l.as_str().into()))),
        ("start_time", start_time.map(Value::String)),
        ("end_time", end_time.map(Value::String)),
        ("limit", Some(json!(limit))),
    ]);
    proxy(&facade, "dewey_query_logs", args).await
}

/// Clear logs from storage (proxies to Dewey)
///
/// At least one filter is required; to clear everything, pass `before_time` set to now.
#[mcp_tool(name = "logger_clear", destructive)]
pub async fn logger_clear(
    facade: State<Facade>,
    /// Only logs of this component
    component: Option<String>,
    /// Only logs created before this time (ISO 8601)
    before_time: Option<String>,
) -> Result<ClearedLogs, ToolError> {
    let args =
        arguments(&[("component", component.map(Value::String)), ("before_time", before_time.map(Value::String))]);
    proxy(&facade, "dewey_clear_logs", args).await
}

/// Start a new conversation and return its ID
#[mcp_tool(name = "conversation_begin")]
pub async fn conversation_begin(
    facade: State<Facade>,
    /// Optional session ID to group conversations
    session_id: Option<String>,
    /// Optional metadata as key-value pairs
    metadata: Option<Map<String, Value>>,
) -> Result<ConversationRecord, ToolError> {
    let args = arguments(&[("session_id", session_id.map(Value::String)), ("metadata", metadata.map(Value::Object))]);
    proxy(&facade, "dewey_begin_conversation", args).await
}

/// Store a single message in a conversation
#[mcp_tool(name = "conversation_store_message")]
pub async fn conversation_store_message(
    facade: State<Facade>,
    /// UUID of the conversation
    conversation_id: String,
    /// Message role: user, assistant, system or tool
    role: Role,
    /// Message content
    content: String,
    /// Optional turn number (auto-increments if not provided)
    turn_number: Option<i64>,
    /// Optional metadata (e.g., model, tokens, timing)
    metadata: Option<Map<String, Value>>,
) -> Result<StoredMessage, ToolError> {
    let args = arguments(&[
        ("conversation_id", Some(Value::String(conversation_id))),
        ("role", Some(json!(role))),
        ("content", Some(Value::String(content))),
        ("turn_number", turn_number.map(|t| json!(t))),
        ("metadata", metadata.map(Value::Object)),
    ]);
    proxy(&facade, "dewey_store_message", args).await
}

/// Store multiple messages at once (up to 1000). Supports file references for large payloads.
///
/// `messages_file` is read by Dewey, inside its DEWEY_FILES_DIR.
#[mcp_tool(name = "conversation_store_messages_bulk")]
pub async fn conversation_store_messages_bulk(
    facade: State<Facade>,
    /// Array of message objects with role and content (inline)
    messages: Option<Vec<Map<String, Value>>>,
    /// Path to JSON file containing message array (file reference - industry standard for large payloads)
    messages_file: Option<String>,
    /// Optional existing conversation ID
    conversation_id: Option<String>,
    /// Optional session ID for new conversation
    session_id: Option<String>,
    /// Optional metadata for new conversation
    metadata: Option<Map<String, Value>>,
) -> Result<BulkStored, ToolError> {
    let args = arguments(&[
        ("messages", messages.map(|m| Value::Array(m.into_iter().map(Value::Object).collect()))),
        ("messages_file", messages_file.map(Value::String)),
        ("conversation_id", conversation_id.map(Value::String)),
        ("session_id", session_id.map(Value::String)),
        ("metadata", metadata.map(Value::Object)),
    ]);
    proxy(&facade, "dewey_store_messages_bulk", args).await
}

/// What `logger_stats` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    /// `redis` or `embedded`.
    pub mode: String,
    /// Which queue, without credentials.
    pub queue: String,
    /// MAX_QUEUE_SIZE.
    pub max_queue_size: u64,
    #[serde(flatten)]
    pub counts: QueueCounts,
    /// Levels set per component (components not listed get everything).
    pub levels: BTreeMap<String, String>,
}

/// Queue and delivery statistics
///
/// Queue depth; entries accepted, delivered to Dewey, filtered by level, dropped by the MAX_QUEUE_SIZE bound and
/// moved to the dead letters; the worker's last error. Shared by every facade and worker on the queue.
#[mcp_tool(name = "logger_stats", read_only)]
pub async fn logger_stats(facade: State<Facade>) -> Result<Stats, ToolError> {
    let mut counts = facade.queue.counts().await.map_err(|e| ToolError::new(e.0))?;
    counts.filtered += facade.unreported_filtered();
    Ok(Stats {
        mode: if facade.queue.is_redis() { "redis" } else { "embedded" }.into(),
        queue: facade.description.clone(),
        max_queue_size: facade.max_queue_size,
        counts,
        levels: facade.levels().into_iter().map(|(c, l)| (c, l.as_str().to_owned())).collect(),
    })
}

/// What `logger_dead_letters` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeadLetters {
    /// Newest first.
    pub dead_letters: Vec<DeadLetter>,
    pub count: usize,
}

/// Entries Dewey refused as invalid, newest first
///
/// The worker sets such an entry aside (and delivers the rest of its batch) instead of retrying it forever.
#[mcp_tool(name = "logger_dead_letters", read_only)]
pub async fn logger_dead_letters(
    facade: State<Facade>,
    /// Maximum results (1-1000)
    #[mcp(default = 100)]
    limit: i64,
) -> Result<DeadLetters, ToolError> {
    if !(1..=1000).contains(&limit) {
        return Err(ToolError::new(format!("`limit` must be between 1 and 1000, got {limit}")));
    }
    let dead_letters = facade.queue.dead_letters(limit as usize).await.map_err(|e| ToolError::new(e.0))?;
    Ok(DeadLetters { count: dead_letters.len(), dead_letters })
}
