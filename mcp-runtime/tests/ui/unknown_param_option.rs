use mcp_runtime::mcp_tool;

#[mcp_tool]
async fn add(a: i64, #[mcp(defualt = 1)] b: i64) -> i64 {
    a + b
}

fn main() {}
