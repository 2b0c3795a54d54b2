use mcp_runtime::{RequestContext, State, ToolFactory, mcp_tool};

#[derive(Clone)]
struct Db {
    url: String,
}

#[derive(Clone)]
struct Limits(u32);

/// Injected parameters in any position, by any path ending in `State` / `RequestContext`.
#[mcp_tool]
async fn query(
    cx: RequestContext,
    /// The SQL text
    sql: String,
    db: State<Db>,
    limits: mcp_runtime::extract::State<Limits>,
    ctx2: mcp_runtime::RequestContext,
) -> String {
    let _ = (cx.request_id(), ctx2.is_cancelled());
    format!("{sql} on {} (max {})", db.url, limits.0.0)
}

fn main() {
    let tool = <query as ToolFactory>::tool();
    let props = tool.input_schema()["properties"].as_object().unwrap();
    assert_eq!(props.keys().collect::<Vec<_>>(), ["sql"]);
    let names: Vec<_> = tool.required_state().iter().map(|s| s.type_name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
