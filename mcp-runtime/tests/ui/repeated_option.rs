use mcp_runtime::mcp_tool;

#[mcp_tool(name = "add", read_only, name = "sum")]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
