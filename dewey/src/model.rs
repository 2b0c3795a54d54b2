//! The records Dewey stores and returns, shared by both storage backends and
//! the tools, and the parsing of the loosely-typed inputs (UUIDs,
//! timestamps, search text) into them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{DeweyError, Result};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::User, Role::Assistant, Role::System, Role::Tool];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Tool => "tool",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Log severity, least severe first: a query's `level` keeps that level and
/// everything after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    #[serde(alias = "trace")]
    Trace,
    #[serde(alias = "debug")]
    Debug,
    #[serde(alias = "info")]
    Info,
    #[serde(alias = "warn", alias = "WARNING", alias = "warning")]
    Warn,
    #[serde(alias = "error")]
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }

    /// The stored ordering key (TRACE = 0 ... ERROR = 4).
    pub fn rank(self) -> i16 {
        self as i16
    }

    /// Case-insensitive; `WARNING` is accepted for `WARN` because Python's
    /// logging spells it that way.
    pub fn parse(s: &str) -> Option<LogLevel> {
        let upper = s.trim().to_ascii_uppercase();
        if upper == "WARNING" {
            return Some(LogLevel::Warn);
        }
        LogLevel::ALL.into_iter().find(|l| l.as_str() == upper)
    }
}

/// The order of `dewey_list_conversations`, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    #[default]
    CreatedAt,
    UpdatedAt,
}

/// A conversation, with how many messages it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationRecord {
    pub conversation_id: String,
    pub session_id: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub message_count: i64,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MessageRecord {
    pub message_id: String,
    pub conversation_id: String,
    pub turn_number: i64,
    pub role: Role,
    pub content: String,
    pub metadata: Option<Value>,
    pub created_at: String,
}

/// A conversation and all its messages, in turn order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationWithMessages {
    pub conversation: ConversationRecord,
    pub messages: Vec<MessageRecord>,
}

/// A page of conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationPage {
    pub conversations: Vec<ConversationRecord>,
    /// How many conversations match the filter, across all pages.
    pub total: i64,
}

/// What `dewey_store_message` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredMessage {
    pub message_id: String,
    pub conversation_id: String,
    pub turn_number: i64,
    pub created_at: String,
}

/// What `dewey_store_messages_bulk` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BulkStored {
    pub conversation_id: String,
    /// True when the call created the conversation.
    pub conversation_created: bool,
    pub messages_stored: i64,
    /// The turn numbers the messages got, in order: `first_turn..=last_turn`.
    pub first_turn: i64,
    pub last_turn: i64,
}

/// One full-text match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchHit {
    pub message_id: String,
    pub conversation_id: String,
    pub session_id: Option<String>,
    pub turn_number: i64,
    pub role: Role,
    pub content: String,
    pub created_at: String,
    /// Relevance, higher is better. Comparable within one result list only:
    /// PostgreSQL reports `ts_rank`, SQLite the negated BM25 score.
    pub rank: f64,
}

/// A named block of text a client loads when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartupContext {
    pub name: String,
    /// Absent when listed without `include_content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// One stored log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogRecord {
    pub id: String,
    pub component: String,
    pub level: LogLevel,
    pub message: String,
    pub trace_id: Option<String>,
    pub data: Option<Value>,
    pub created_at: String,
}

/// What `dewey_get_log_stats` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogStats {
    pub total_logs: i64,
    /// Count per level, every level present (0 when none).
    pub by_level: BTreeMap<String, i64>,
    /// Count per component, the 100 largest.
    pub by_component: BTreeMap<String, i64>,
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// Bytes the logs take on disk, including indexes (PostgreSQL; for SQLite
    /// the whole database file).
    pub storage_bytes: Option<i64>,
}

/// A message ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub role: Role,
    pub content: String,
    pub metadata: Option<Value>,
}

/// Where a bulk store goes.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkTarget {
    Existing(Uuid),
    New { session_id: Option<String>, metadata: Option<Value> },
}

/// A validated log entry with its final id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLog {
    pub id: Uuid,
    pub component: String,
    pub level: LogLevel,
    pub message: String,
    pub trace_id: Option<String>,
    pub data: Option<Value>,
    pub created_at: DateTime<Utc>,
}

/// How many entries of a batch were new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogBatchStored {
    /// Entries written by this call.
    pub stored: i64,
    /// Entries whose id was already stored (a retried batch), not written again.
    pub duplicates: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConversationQuery {
    pub session_id: Option<String>,
    pub sort_by: SortBy,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub terms: SearchTerms,
    pub session_id: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    pub trace_id: Option<String>,
    pub component: Option<String>,
    pub min_level: Option<LogLevel>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub search: Option<SearchTerms>,
    pub limit: i64,
}

/// Search text reduced to its words, so that no user input can be a syntax
/// error in either engine's query language: every word must match (AND),
/// after each engine's stemming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    pub fn parse(text: &str, what: &str) -> Result<SearchTerms> {
        let words: Vec<String> =
            text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
        if words.is_empty() {
            return Err(DeweyError::invalid(format!(
                "`{what}` has no words to search for (got {text:?}); give at least one letter or digit"
            )));
        }
        Ok(SearchTerms(words))
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// For PostgreSQL's `plainto_tsquery`.
    pub fn plain(&self) -> String {
        self.0.join(" ")
    }

    /// For SQLite FTS5 `MATCH`: each word quoted, so it is never an operator.
    pub fn fts5(&self) -> String {
        self.0.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" ")
    }
}

/// The one timestamp format Dewey writes: RFC 3339, UTC, microseconds.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads an ISO 8601 / RFC 3339 timestamp. One without an offset (Python's
/// naive `isoformat()`) is taken as UTC; a bare date means its midnight UTC.
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
    Err(DeweyError::invalid(format!(
        "`{what}` is not a timestamp: {value:?}; use ISO 8601, e.g. 2025-01-31T12:00:00Z or 2025-01-31"
    )))
}

pub fn parse_optional_timestamp(value: Option<&str>, what: &str) -> Result<Option<DateTime<Utc>>> {
    value.map(|v| parse_timestamp(v, what)).transpose()
}

pub fn parse_uuid(value: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| {
        DeweyError::invalid(format!(
            "`{what}` is not a UUID: {value:?}; expected the form 0190f7c2-8e0a-7c3e-9d5b-2f1a4c6e8b10"
        ))
    })
}

/// Refuses text Dewey could not store: PostgreSQL keeps no U+0000 in `text`
/// or `jsonb` (it would fail the whole write as a storage error, which a
/// retrying producer would resend forever), and SQLite's text functions stop
/// at it. Both backends refuse it here, as the caller's mistake, named.
pub fn check_storable(text: &str, what: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(DeweyError::invalid(format!(
            "`{what}` contains a NUL character (U+0000), which cannot be stored; remove it or escape it"
        )));
    }
    Ok(())
}

/// [`check_storable`] for every key and string inside a JSON value; the
/// error names the path to the bad one (`what.key[2]`).
pub fn check_storable_json(value: &Value, what: &str) -> Result<()> {
    fn walk(value: &Value, path: &mut String) -> Result<()> {
        match value {
            Value::String(s) => check_storable(s, path),
            Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path)?;
                path.truncate(len);
                Ok(())
            }),
            Value::Object(map) => map.iter().try_for_each(|(key, item)| {
                if key.contains('\0') {
                    return Err(DeweyError::invalid(format!(
                        "`{path}` has a key containing a NUL character (U+0000), which cannot be stored: {key:?}; \
                         remove it or escape it"
                    )));
                }
                let len = path.len();
                path.push('.');
                path.push_str(key);
                walk(item, path)?;
                path.truncate(len);
                Ok(())
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    walk(value, &mut what.to_owned())
}

/// [`check_storable`] for an optional argument.
pub fn check_storable_opt(text: Option<&str>, what: &str) -> Result<()> {
    text.map_or(Ok(()), |t| check_storable(t, what))
}

/// Checks a `limit`/`offset` style argument against its allowed range.
pub fn check_range(value: i64, what: &str, min: i64, max: i64) -> Result<i64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(DeweyError::invalid(format!("`{what}` must be between {min} and {max}, got {value}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_python_and_rfc3339_forms() {
        let z = parse_timestamp("2025-01-31T12:00:00Z", "t").unwrap();
        assert_eq!(parse_timestamp("2025-01-31T12:00:00+00:00", "t").unwrap(), z);
        assert_eq!(parse_timestamp("2025-01-31T14:00:00+02:00", "t").unwrap(), z);
        assert_eq!(parse_timestamp("2025-01-31T12:00:00", "t").unwrap(), z);
        assert_eq!(parse_timestamp("2025-01-31T12:00:00.000000", "t").unwrap(), z);
        assert!(parse_timestamp("yesterday", "t").unwrap_err().to_string().contains("`t` is not a timestamp"));
    }

    #[test]
    fn search_terms_cannot_inject_operators() {
        let t = SearchTerms::parse("NEAR(\"a\" OR b*) -c", "query").unwrap();
        assert_eq!(t.words(), ["near", "a", "or", "b", "c"]);
        assert_eq!(t.fts5(), "\"near\" \"a\" \"or\" \"b\" \"c\"");
        assert!(SearchTerms::parse("  ?! ", "query").is_err());
    }

    #[test]
    fn nul_characters_are_refused_with_their_path() {
        assert!(check_storable("fine\u{1}", "m").is_ok());
        let err = check_storable("a\0b", "logs[2].message").unwrap_err();
        assert!(err.is_invalid_input());
        assert!(err.to_string().contains("`logs[2].message` contains a NUL character"), "{err}");
        let data = serde_json::json!({"ok": [1, "x"], "deep": {"list": ["y", "z\0"]}});
        let err = check_storable_json(&data, "logs[0].data").unwrap_err();
        assert!(err.to_string().contains("`logs[0].data.deep.list[1]`"), "{err}");
        let err = check_storable_json(&serde_json::json!({"k\0": 1}), "metadata").unwrap_err();
        assert!(err.to_string().contains("`metadata` has a key containing a NUL"), "{err}");
        assert!(check_storable_json(&serde_json::json!({"a": {"b": [null, 1.5, true, "c"]}}), "m").is_ok());
    }

    #[test]
    fn levels_order_and_parse() {
        assert!(LogLevel::Trace < LogLevel::Debug && LogLevel::Warn < LogLevel::Error);
        assert_eq!(LogLevel::parse("warning"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("Info"), Some(LogLevel::Info));
        assert_eq!(LogLevel::parse("FATAL"), None);
    }
}
