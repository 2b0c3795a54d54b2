use mcp_runtime::mcp_tool;

#[derive(serde::Serialize)]
struct Hit {
    title: String,
}

#[mcp_tool]
async fn search(query: String) -> Result<Vec<Hit>, String> {
    Ok(vec![Hit { title: query }])
}

fn main() {}
