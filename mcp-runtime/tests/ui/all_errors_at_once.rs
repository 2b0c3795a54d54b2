use mcp_runtime::mcp_tool;

// Four mistakes, four errors in one build, each on its own token.
#[mcp_tool(name = "", fast)]
fn add<T>(a: T, (b, c): (i64, i64)) -> i64 {
    let _ = a;
    b + c
}

fn main() {}
