//! Turning a producer's log batch into rows: validation, and the id that
//! makes a retried batch idempotent.
//!
//! Every entry is stored under a UUID. A producer should mint one per entry
//! (`id`) and resend it on retry. For producers that send none, the id is a
//! UUIDv5 (namespace [`LOG_ID_NAMESPACE`]) of the entry's canonical content:
//! the JSON array `[component, LEVEL, message, trace_id, data, created_at]`
//! with object keys sorted and `created_at` rewritten as RFC 3339 UTC with
//! microseconds (`null` when absent). A retried identical batch therefore
//! maps to the same ids and is stored once. The price: two id-less entries
//! with identical content and timestamp are one entry, and an id-less entry
//! without `created_at` dedups against every identical id-less entry, so
//! send `created_at` (Godot always does) or, better, an `id`.

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{DeweyError, Result};
use crate::model::{
    LogLevel, NewLog, check_storable, check_storable_json, check_storable_opt, format_timestamp, parse_timestamp,
};

/// The UUIDv5 namespace of content-derived log ids. Never change it: ids
/// derived before and after must agree for retries to dedup.
pub const LOG_ID_NAMESPACE: Uuid = Uuid::from_u128(0x4f6b_9a4e_2d3c_5b7a_8e1f_0c9d_6a2b_3e71);

/// Most entries one `dewey_store_logs_batch` call takes.
pub const MAX_LOG_BATCH: usize = 10_000;

/// One log entry as Godot's worker sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogEntryInput {
    /// UUID minted by the producer, resent unchanged on retry so the entry is stored once. When absent, a UUIDv5 of the entry's content is used.
    #[serde(default)]
    pub id: Option<String>,
    /// Component that logged (e.g. `godot`, `dewey`)
    pub component: String,
    /// TRACE, DEBUG, INFO, WARN or ERROR (case-insensitive; WARNING means WARN)
    pub level: LogLevel,
    pub message: String,
    /// Correlates entries of one request across components
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Structured data
    #[serde(default)]
    pub data: Option<Value>,
    /// When it happened, ISO 8601 (default: when Dewey received it)
    #[serde(default)]
    pub created_at: Option<String>,
}

/// Validates every entry and gives each its id. The first bad entry fails
/// the whole batch as invalid input naming its index (`logs[3].message`), so
/// nothing of a bad batch is written and a producer can set that entry
/// aside and resend the rest. Anything either backend could not store (a
/// NUL character) is caught here, never left to fail as a storage error.
pub fn prepare(entries: Vec<LogEntryInput>) -> Result<Vec<NewLog>> {
    if entries.len() > MAX_LOG_BATCH {
        return Err(DeweyError::invalid(format!(
            "`logs` holds {} entries; at most {MAX_LOG_BATCH} per call, split the batch",
            entries.len()
        )));
    }
    let received_at = Utc::now();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            if entry.component.trim().is_empty() {
                return Err(DeweyError::invalid(format!("`logs[{i}].component` is empty; name the component")));
            }
            check_storable(&entry.component, &format!("logs[{i}].component"))?;
            check_storable(&entry.message, &format!("logs[{i}].message"))?;
            check_storable_opt(entry.trace_id.as_deref(), &format!("logs[{i}].trace_id"))?;
            if let Some(data) = &entry.data {
                check_storable_json(data, &format!("logs[{i}].data"))?;
            }
            let created_at = entry
                .created_at
                .as_deref()
                .map(|t| parse_timestamp(t, &format!("logs[{i}].created_at")))
                .transpose()?;
            let id = match &entry.id {
                Some(id) => Uuid::parse_str(id.trim()).map_err(|_| {
                    DeweyError::invalid(format!("`logs[{i}].id` is not a UUID: {id:?}; mint one per entry (v4 or v7)"))
                })?,
                None => content_id(&entry, created_at.map(format_timestamp).as_deref()),
            };
            Ok(NewLog {
                id,
                component: entry.component,
                level: entry.level,
                message: entry.message,
                trace_id: entry.trace_id,
                data: entry.data,
                created_at: created_at.unwrap_or(received_at),
            })
        })
        .collect()
}

/// The deterministic id of an entry that came without one.
pub fn content_id(entry: &LogEntryInput, created_at: Option<&str>) -> Uuid {
    let canonical = Value::Array(vec![
        Value::String(entry.component.clone()),
        Value::String(entry.level.as_str().to_owned()),
        Value::String(entry.message.clone()),
        entry.trace_id.clone().map_or(Value::Null, Value::String),
        entry.data.clone().unwrap_or(Value::Null),
        created_at.map_or(Value::Null, |t| Value::String(t.to_owned())),
    ]);
    let mut text = String::new();
    write_canonical(&canonical, &mut text);
    Uuid::new_v5(&LOG_ID_NAMESPACE, text.as_bytes())
}

/// JSON with object keys sorted, whatever order serde_json's map keeps
/// (its `preserve_order` feature may be on through another crate).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (n, key) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: Value) -> LogEntryInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn content_ids_ignore_key_order_and_timestamp_spelling() {
        let a = entry(json!({"component":"godot","level":"info","message":"m","data":{"a":1,"b":[1,{"y":2,"x":1}]},
            "created_at":"2025-01-01T00:00:00+00:00"}));
        let b = entry(json!({"created_at":"2025-01-01T00:00:00Z","data":{"b":[1,{"x":1,"y":2}],"a":1},
            "message":"m","level":"INFO","component":"godot"}));
        let (a, b) = (prepare(vec![a]).unwrap(), prepare(vec![b]).unwrap());
        assert_eq!(a[0].id, b[0].id);
        assert_eq!(a[0].id.get_version_num(), 5);
    }

    #[test]
    fn content_ids_differ_when_content_differs() {
        let a = prepare(vec![entry(json!({"component":"c","level":"INFO","message":"one"}))]).unwrap();
        let b = prepare(vec![entry(json!({"component":"c","level":"INFO","message":"two"}))]).unwrap();
        let c = prepare(vec![entry(json!({"component":"c","level":"WARN","message":"one"}))]).unwrap();
        assert_ne!(a[0].id, b[0].id);
        assert_ne!(a[0].id, c[0].id);
    }

    #[test]
    fn a_bad_entry_names_its_index() {
        let err = prepare(vec![
            entry(json!({"component":"c","level":"INFO","message":"ok"})),
            entry(json!({"component":"c","level":"INFO","message":"bad","created_at":"noon"})),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("logs[1].created_at"), "{err}");
        let err = prepare(vec![entry(json!({"id":"nope","component":"c","level":"INFO","message":"x"}))]).unwrap_err();
        assert!(err.to_string().contains("logs[0].id"), "{err}");
    }

    #[test]
    fn a_nul_anywhere_is_invalid_input_naming_the_entry() {
        let ok = json!({"component":"c","level":"INFO","message":"fine"});
        for (bad, path) in [
            (json!({"component":"c\0","level":"INFO","message":"m"}), "logs[1].component"),
            (json!({"component":"c","level":"INFO","message":"m\0"}), "logs[1].message"),
            (json!({"component":"c","level":"INFO","message":"m","trace_id":"\0"}), "logs[1].trace_id"),
            (json!({"component":"c","level":"INFO","message":"m","data":{"k":["\0"]}}), "logs[1].data.k[0]"),
        ] {
            let err = prepare(vec![entry(ok.clone()), entry(bad)]).unwrap_err();
            assert!(err.is_invalid_input(), "{err}");
            assert!(err.to_string().contains(&format!("`{path}`")), "{err}");
        }
    }
}
