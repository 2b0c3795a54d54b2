use mcp_runtime::mcp_tool;

#[mcp_tool]
async fn echo<'a>(value: &'a str) -> String {
    value.to_owned()
}

fn main() {}
