use mcp_runtime::mcp_tool;

#[mcp_tool]
async fn echo(value: &str) -> String {
    value.to_owned()
}

fn main() {}
