//! The MCP tools, with seed 004's names, parameters and required lists.
//! Each checks all of its arguments (ids, paths, ranges) before it touches
//! the catalog or the disk, so a bad call changes nothing.

pub mod collections;
pub mod files;

use crate::error::Result;
use crate::model::check_range;

/// Largest `limit` of the listing and search tools.
pub const MAX_PAGE: i64 = 1000;

fn page(limit: i64, offset: i64) -> Result<(i64, i64)> {
    Ok((check_range(limit, "limit", 1, MAX_PAGE)?, check_range(offset, "offset", 0, i64::MAX)?))
}
