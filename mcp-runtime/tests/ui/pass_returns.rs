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

pub mod tools {
    /// Lives in a module; registered from outside it by path.
    #[mcp_runtime::mcp_tool]
    pub async fn nested() -> bool {
        true
    }
}

fn main() {
    for tool in [
        <plain as ToolFactory>::tool(),
        <unit as ToolFactory>::tool(),
        <io_result as ToolFactory>::tool(),
        <alias as ToolFactory>::tool(),
        <boxed_error as ToolFactory>::tool(),
        <tools::nested as ToolFactory>::tool(),
    ] {
        assert!(tool.output_schema().is_none(), "{} returns no object", tool.name());
    }
    let names: Vec<_> = mcp_runtime::tool::discovered_tools().map(|t| t.name()).collect();
    assert_eq!(names.len(), 6, "{names:?}");
}
