use mcp_runtime::{State, mcp_tool};

#[derive(Clone)]
struct Db;

#[mcp_tool]
async fn count(State(db): State<Db>) -> u32 {
    let _ = db;
    0
}

fn main() {}
