use mcp_runtime::{State, mcp_tool};

struct Pool;

#[mcp_tool]
async fn query(sql: String, pool: State<Pool>) -> String {
    let _ = pool;
    sql
}

fn main() {}
