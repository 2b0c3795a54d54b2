//! The MCP tools, one module per area. Each tool validates its arguments
//! fully before it touches storage, so a bad call writes nothing.

pub mod conversations;
pub mod logs;
pub mod startup_contexts;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::model::{check_range, check_storable, check_storable_json};

/// Largest `limit` of the listing and search tools.
pub const MAX_PAGE: i64 = 1000;

fn page(limit: i64, offset: i64) -> Result<(i64, i64)> {
    Ok((check_range(limit, "limit", 1, MAX_PAGE)?, check_range(offset, "offset", 0, i64::MAX)?))
}

fn object(metadata: Option<Map<String, Value>>) -> Option<Value> {
    metadata.map(Value::Object)
}

/// Refuses metadata holding what Dewey could not store (see [`check_storable_json`]).
fn check_metadata(metadata: &Option<Map<String, Value>>, what: &str) -> Result<()> {
    let Some(map) = metadata else { return Ok(()) };
    map.iter().try_for_each(|(key, value)| {
        check_storable(key, &format!("{what}` key `{key:?}"))?;
        check_storable_json(value, &format!("{what}.{key}"))
    })
}
