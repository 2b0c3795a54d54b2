//! The MCP tools, one module per area. Each tool validates its arguments
//! fully before it touches storage, so a bad call writes nothing.

pub mod conversations;
pub mod logs;
pub mod startup_contexts;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::model::check_range;

/// Largest `limit` of the listing and search tools.
pub const MAX_PAGE: i64 = 1000;

fn page(limit: i64, offset: i64) -> Result<(i64, i64)> {
    Ok((check_range(limit, "limit", 1, MAX_PAGE)?, check_range(offset, "offset", 0, i64::MAX)?))
}

fn object(metadata: Option<Map<String, Value>>) -> Option<Value> {
    metadata.map(Value::Object)
}
