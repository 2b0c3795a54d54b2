use mcp_runtime::mcp_tool;

#[mcp_tool]
async fn add(a: i64, #[cfg(feature = "extra")] b: i64) -> i64 {
    a
}

fn main() {}
