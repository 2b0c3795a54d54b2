use mcp_runtime::mcp_tool;

#[mcp_tool]
async fn echo(value: impl ToString) -> String {
    value.to_string()
}

fn main() {}
