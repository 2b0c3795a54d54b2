use mcp_runtime::mcp_tool;

#[derive(Debug)]
struct Oops;

#[mcp_tool]
async fn fail() -> Result<String, Oops> {
    Err(Oops)
}

fn main() {}
