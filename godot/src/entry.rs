//! A log entry as `logger_log` accepts it: the level, the limits, and the
//! JSON the queue holds (exactly what `dewey_store_logs_batch` takes, so the
//! worker forwards it without parsing it again).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Most bytes (UTF-8) of a `message`. Larger logs belong in a file the
/// message points to: the queue holds up to MAX_QUEUE_SIZE entries in memory
/// (Redis) or on disk, and Dewey indexes every message for full-text search.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most bytes of `data`, serialized as JSON.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Most bytes of `component` and of `trace_id`.
pub const MAX_NAME_BYTES: usize = 256;

/// Log severity, least severe first. Accepted in any case; written upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a level was refused: lists the five, as the caller needs them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("level {0:?} is not a log level; use one of ERROR, WARN, INFO, DEBUG, TRACE (any case)")]
pub struct InvalidLevel(pub String);

impl FromStr for Level {
    type Err = InvalidLevel;
    fn from_str(s: &str) -> Result<Level, InvalidLevel> {
        Level::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| InvalidLevel(s.into()))
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Level, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Level {
    fn schema_name() -> Cow<'static, str> {
        "Level".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"],
            "description": "ERROR, WARN, INFO, DEBUG or TRACE (any case is accepted)"
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

impl From<Level> for dewey::model::LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => dewey::model::LogLevel::Trace,
            Level::Debug => dewey::model::LogLevel::Debug,
            Level::Info => dewey::model::LogLevel::Info,
            Level::Warn => dewey::model::LogLevel::Warn,
            Level::Error => dewey::model::LogLevel::Error,
        }
    }
}

/// One accepted entry, with the id and time stamped by the facade. The id is
/// a UUIDv7 minted here: the worker resends it on every retry, so Dewey
/// stores the entry once however often the batch is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: String,
    pub component: String,
    pub level: Level,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    pub created_at: String,
}

impl LogEntry {
    /// Checks what `logger_log` received and stamps it. Every refusal says
    /// which argument is wrong and what would be accepted.
    pub fn new(
        component: String,
        level: Level,
        message: String,
        trace_id: Option<String>,
        data: Option<Map<String, Value>>,
    ) -> Result<LogEntry, String> {
        let component_name = component.trim();
        if component_name.is_empty() {
            return Err("`component` is empty; name the component that logs (e.g. \"dewey\")".into());
        }
        if component_name.len() != component.len() {
            return Err(format!(
                "`component` {component:?} has leading or trailing spaces; send it without them, so levels and \
                 queries match it"
            ));
        }
        check_text(&component, "component", MAX_NAME_BYTES)?;
        check_text(&message, "message", MAX_MESSAGE_BYTES)?;
        if let Some(trace_id) = &trace_id {
            if trace_id.is_empty() {
                return Err("`trace_id` is empty; leave it out or give the trace's id".into());
            }
            check_text(trace_id, "trace_id", MAX_NAME_BYTES)?;
        }
        if let Some(data) = &data {
            let size = serde_json::to_string(data).map(|s| s.len()).unwrap_or(usize::MAX);
            if size > MAX_DATA_BYTES {
                return Err(format!(
                    "`data` is {size} bytes as JSON, over the limit of {MAX_DATA_BYTES}; log less, or a reference \
                     to where the rest is"
                ));
            }
            if let Err(path) = find_nul(data) {
                return Err(format!(
                    "`data{path}` contains a NUL character (U+0000), which Dewey cannot store; remove or escape it"
                ));
            }
        }
        Ok(LogEntry {
            id: Uuid::now_v7().to_string(),
            component,
            level,
            message,
            trace_id,
            data,
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        })
    }

    /// The queue's form of the entry.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a log entry always serializes")
    }
}

fn check_text(text: &str, what: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "`{what}` is {} bytes, over the limit of {max} bytes; shorten it (put long output in `data` or a file)",
            text.len()
        ));
    }
    if text.contains('\0') {
        return Err(format!("`{what}` contains a NUL character (U+0000), which Dewey cannot store; remove it"));
    }
    Ok(())
}

/// The path (`.key[2]`) of the first key or string holding a NUL.
fn find_nul(map: &Map<String, Value>) -> Result<(), String> {
    fn walk(value: &Value, path: &mut String) -> Result<(), String> {
        match value {
            Value::String(s) if s.contains('\0') => Err(path.clone()),
            Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path)?;
                path.truncate(len);
                Ok(())
            }),
            Value::Object(map) => map.iter().try_for_each(|(key, item)| {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                if key.contains('\0') {
                    return Err(path.clone());
                }
                walk(item, path)?;
                path.truncate(len);
                Ok(())
            }),
            _ => Ok(()),
        }
    }
    map.iter().try_for_each(|(key, value)| {
        let mut path = format!(".{key}");
        if key.contains('\0') {
            return Err(path);
        }
        walk(value, &mut path)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn levels_parse_in_any_case_and_order_by_severity() {
        assert_eq!("warn".parse::<Level>(), Ok(Level::Warn));
        assert_eq!(" Info ".parse::<Level>(), Ok(Level::Info));
        let err = "WARNING".parse::<Level>().unwrap_err().to_string();
        assert!(err.contains("ERROR, WARN, INFO, DEBUG, TRACE"), "{err}");
        assert!(Level::Trace < Level::Debug && Level::Warn < Level::Error);
        assert_eq!(serde_json::from_value::<Level>(json!("debug")).unwrap(), Level::Debug);
    }

    #[test]
    fn entries_are_stamped_and_serialize_as_dewey_takes_them() {
        let data = json!({"k": [1, "two"]}).as_object().cloned();
        let e = LogEntry::new("godot".into(), Level::Info, "hi".into(), Some("t1".into()), data).unwrap();
        assert_eq!(Uuid::parse_str(&e.id).unwrap().get_version_num(), 7);
        assert!(e.created_at.ends_with('Z'));
        let stored: dewey::log_batch::LogEntryInput = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(stored.level, dewey::model::LogLevel::Info);
        assert_eq!(stored.id.as_deref(), Some(e.id.as_str()));
        let bare = LogEntry::new("c".into(), Level::Error, "m".into(), None, None).unwrap().to_json();
        assert!(!bare.contains("trace_id") && !bare.contains("data"), "{bare}");
    }

    #[test]
    fn bad_entries_say_what_to_fix() {
        let new = |c: &str, m: String, t: Option<&str>, d: Value| {
            LogEntry::new(c.into(), Level::Info, m, t.map(Into::into), d.as_object().cloned()).unwrap_err()
        };
        assert!(new(" ", "m".into(), None, json!(null)).contains("`component` is empty"));
        assert!(new(" c", "m".into(), None, json!(null)).contains("leading or trailing spaces"));
        assert!(new("c", "x".repeat(MAX_MESSAGE_BYTES + 1), None, json!(null)).contains("over the limit of 65536"));
        assert!(new("c", "a\0b".into(), None, json!(null)).contains("`message` contains a NUL"));
        assert!(new("c", "m".into(), Some(""), json!(null)).contains("`trace_id` is empty"));
        assert!(new("c", "m".into(), None, json!({"a": {"b": ["ok", "\0"]}})).contains("`data.a.b[1]`"));
        assert!(new("c", "m".into(), None, json!({"big": "x".repeat(MAX_DATA_BYTES)})).contains("`data` is"));
        assert!(LogEntry::new("c".into(), Level::Info, "x".repeat(MAX_MESSAGE_BYTES), None, None).is_ok());
    }
}
