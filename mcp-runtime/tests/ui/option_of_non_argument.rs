use mcp_runtime::mcp_tool;

#[derive(serde::Deserialize)]
struct NoSchema {
    x: i32,
}

#[mcp_tool]
async fn take(value: Option<NoSchema>) -> i32 {
    value.map_or(0, |v| v.x)
}

fn main() {}
