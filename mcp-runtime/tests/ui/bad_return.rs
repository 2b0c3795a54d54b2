use mcp_runtime::mcp_tool;

struct Opaque;

#[mcp_tool]
async fn make() -> Opaque {
    Opaque
}

fn main() {}
