use mcp_runtime::mcp_tool;

#[mcp_tool]
struct Add {
    a: i64,
}

fn main() {}
