use mcp_runtime::mcp_tool;

#[mcp_tool(name = "add numbers")]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    // The registration type still exists, so only the name is reported.
    let _ = <add as mcp_runtime::ToolFactory>::tool;
}
