use mcp_runtime::mcp_tool;

#[derive(serde::Deserialize)]
struct Filter {
    tags: Vec<String>,
}

/// The element type is named, not `Vec<Filter>`.
#[mcp_tool]
async fn list(filters: Vec<Filter>) -> usize {
    filters.iter().map(|f| f.tags.len()).sum()
}

fn main() {}
