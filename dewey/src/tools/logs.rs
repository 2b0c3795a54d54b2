//! Log tools: the batch Godot's worker sends, queries, clearing, statistics.

use mcp_runtime::{State, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{DeweyError, Result};
use crate::log_batch::{self, LogEntryInput};
use crate::model::{
    LogBatchStored, LogLevel, LogQuery, LogRecord, LogStats, SearchTerms, check_range, check_storable_opt,
    parse_optional_timestamp,
};
use crate::storage::Storage;

/// Store a batch of log entries (as Godot's worker sends them); a retried batch is stored once
///
/// Each entry is stored under its `id` (mint one per entry, resend it on retry); an entry without `id` gets a
/// UUIDv5 of its content, so an identical retry still dedups. Entries already stored count as `duplicates`.
/// At most 10,000 entries per call; one invalid entry rejects the whole batch.
#[mcp_tool(name = "dewey_store_logs_batch", idempotent)]
pub async fn store_logs_batch(
    store: State<Storage>,
    /// Log entries: {id?, component, level, message, trace_id?, data?, created_at?}
    logs: Vec<LogEntryInput>,
) -> Result<LogBatchStored> {
    let prepared = log_batch::prepare(logs)?;
    store.store_logs(prepared).await
}

/// What `dewey_query_logs` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogQueryResult {
    /// Newest first.
    pub logs: Vec<LogRecord>,
    pub count: usize,
}

/// Query logs with various filters, newest first
#[mcp_tool(name = "dewey_query_logs", read_only)]
// Each parameter is one of the tool's MCP arguments, as seed 004 lists them.
pub async fn query_logs(
    store: State<Storage>,
    /// Filter by trace ID
    trace_id: Option<String>,
    /// Filter by component name
    component: Option<String>,
    /// Minimum log level (TRACE, DEBUG, INFO, WARN, ERROR)
    level: Option<LogLevel>,
    /// Start time filter (ISO format)
    start_time: Option<String>,
    /// End time filter (ISO format)
    end_time: Option<String>,
    /// Full-text search in message (every word must occur)
    search: Option<String>,
    /// Maximum results (1-1000)
    #[mcp(default = 100)]
    limit: i64,
) -> Result<LogQueryResult> {
    let limit = check_range(limit, "limit", 1, 1000)?;
    check_storable_opt(trace_id.as_deref(), "trace_id")?;
    check_storable_opt(component.as_deref(), "component")?;
    let start = parse_optional_timestamp(start_time.as_deref(), "start_time")?;
    let end = parse_optional_timestamp(end_time.as_deref(), "end_time")?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(DeweyError::invalid("`start_time` is after `end_time`; swap them"));
    }
    let search = search.as_deref().map(|s| SearchTerms::parse(s, "search")).transpose()?;
    // Every level is at least TRACE: such a floor filters nothing, so the
    // backends get no condition to plan around.
    let min_level = level.filter(|l| *l > LogLevel::Trace);
    let logs = store.query_logs(LogQuery { trace_id, component, min_level, start, end, search, limit }).await?;
    Ok(LogQueryResult { count: logs.len(), logs })
}

/// What `dewey_clear_logs` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClearedLogs {
    pub deleted: i64,
    pub message: String,
}

/// Delete logs of a component and/or older than a time
///
/// At least one filter is required; to clear everything, pass `before_time` set to now.
#[mcp_tool(name = "dewey_clear_logs", destructive)]
pub async fn clear_logs(
    store: State<Storage>,
    /// Only logs of this component
    component: Option<String>,
    /// Only logs created before this time (ISO format)
    before_time: Option<String>,
) -> Result<ClearedLogs> {
    let before = parse_optional_timestamp(before_time.as_deref(), "before_time")?;
    check_storable_opt(component.as_deref(), "component")?;
    if component.is_none() && before.is_none() {
        return Err(DeweyError::invalid(
            "give `component` and/or `before_time`; to clear every log, pass `before_time` set to now",
        ));
    }
    let deleted = store.clear_logs(component.clone(), before).await?;
    let scope = match (&component, &before_time) {
        (Some(c), Some(t)) => format!(" of component {c:?} created before {t}"),
        (Some(c), None) => format!(" of component {c:?}"),
        (None, Some(t)) => format!(" created before {t}"),
        (None, None) => String::new(),
    };
    Ok(ClearedLogs { deleted, message: format!("removed {deleted} log entries{scope}") })
}

/// Get statistics about the logs table
#[mcp_tool(name = "dewey_get_log_stats", read_only)]
pub async fn get_log_stats(store: State<Storage>) -> Result<LogStats> {
    store.log_stats().await
}
