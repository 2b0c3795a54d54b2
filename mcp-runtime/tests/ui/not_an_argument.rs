use mcp_runtime::mcp_tool;

struct Connection;

#[mcp_tool]
async fn query(sql: String, connection: Connection) -> String {
    let _ = connection;
    sql
}

fn main() {}
