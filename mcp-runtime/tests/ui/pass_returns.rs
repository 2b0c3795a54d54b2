use mcp_runtime::content::{CallToolResult, Content};
use mcp_runtime::{ToolError, ToolFactory, mcp_tool};

type Result<T, E = ToolError> = std::result::Result<T, E>;

#[mcp_tool]
async fn plain() -> String {
    "plain".to_owned()
}

#[mcp_tool]
async fn unit() {}

#[mcp_tool]
async fn io_result(path: String) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

#[mcp_tool]
async fn alias() -> Result<u64> {
    Err("not today".into())
}

#[mcp_tool]
async fn boxed_error() -> std::result::Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Ok(1)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Hit {
    title: String,
}

#[mcp_tool]
async fn hits() -> Vec<Hit> {
    vec![Hit { title: "a".into() }]
}

#[mcp_tool]
async fn object() -> Result<Hit> {
    Ok(Hit { title: "a".into() })
}

#[mcp_tool]
async fn block() -> Content {
    Content::text("a block")
}

#[mcp_tool]
async fn blocks() -> Result<Vec<Content>> {
    Ok(vec![Content::text("one"), Content::image([1, 2, 3], "image/png")])
}

#[mcp_tool]
async fn whole() -> CallToolResult<Vec<Hit>> {
    CallToolResult::structured(vec![]).with_content(vec![Content::text("none found")])
}

#[mcp_tool]
async fn failed() -> CallToolResult {
    CallToolResult::error(vec![Content::text("it broke")])
}

pub mod tools {
    /// Lives in a module; registered from outside it by path.
    #[mcp_runtime::mcp_tool]
    pub async fn nested() -> bool {
        true
    }
}

fn main() {
    // Every value has a schema: an object as it is, anything else wrapped.
    for tool in [
        <plain as ToolFactory>::tool(),
        <io_result as ToolFactory>::tool(),
        <alias as ToolFactory>::tool(),
        <boxed_error as ToolFactory>::tool(),
        <hits as ToolFactory>::tool(),
        <whole as ToolFactory>::tool(),
        <tools::nested as ToolFactory>::tool(),
    ] {
        assert!(tool.wraps_result(), "{} returns no object", tool.name());
    }
    assert!(!<object as ToolFactory>::tool().wraps_result());
    assert!(<object as ToolFactory>::tool().output_schema().is_some());
    // No structured output: `()`, and content blocks chosen by the tool.
    for tool in [
        <unit as ToolFactory>::tool(),
        <block as ToolFactory>::tool(),
        <blocks as ToolFactory>::tool(),
        <failed as ToolFactory>::tool(),
    ] {
        assert!(tool.output_schema().is_none(), "{} has no structured output", tool.name());
    }
    let names: Vec<_> = mcp_runtime::tool::discovered_tools().map(|t| t.name()).collect();
    assert_eq!(names.len(), 12, "{names:?}");
}
