use mcp_runtime::{ToolFactory, mcp_tool};

const DEFAULT_LIMIT: u32 = 20;

#[mcp_tool]
async fn search(
    query: String,
    /// Page size
    #[mcp(default = DEFAULT_LIMIT)]
    limit: u32,
    #[mcp(default = vec!["title".to_owned()])] fields: Vec<String>,
    cursor: Option<String>,
    r#type: std::option::Option<String>,
    #[mcp(default = Some(1))] page: Option<u32>,
) -> Vec<String> {
    let _ = (limit, cursor, r#type, page);
    fields.into_iter().map(|f| format!("{query}:{f}")).collect()
}

fn main() {
    let tool = <search as ToolFactory>::tool();
    let schema = tool.input_schema();
    assert_eq!(schema["required"], serde_json::json!(["query"]));
    assert_eq!(schema["properties"]["limit"]["default"], 20);
    assert_eq!(schema["properties"]["fields"]["default"], serde_json::json!(["title"]));
    assert_eq!(schema["properties"]["page"]["default"], 1);
    assert!(schema["properties"]["type"].is_object());
}
