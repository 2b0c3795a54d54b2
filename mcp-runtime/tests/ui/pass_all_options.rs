use mcp_runtime::{ToolFactory, mcp_tool};

/// Add two numbers.
///
/// Wraps around on overflow.
#[mcp_tool(
    name = "math.add",
    title = "Add",
    read_only,
    destructive = false,
    idempotent = true,
    open_world = false
)]
pub async fn add(
    /// First addend
    a: i64,
    /// Second addend
    b: i64,
) -> i64 {
    a.wrapping_add(b)
}

#[mcp_tool(description = "Overrides the doc comment")]
/// Not the description.
async fn described() {}

fn main() {
    let tool = <add as ToolFactory>::tool();
    assert_eq!(tool.name(), "math.add");
    assert_eq!(tool.meta().title, Some("Add"));
    assert_eq!(tool.meta().description, Some("Add two numbers.\n\nWraps around on overflow."));
    assert_eq!(tool.meta().annotations.read_only_hint, Some(true));
    assert_eq!(tool.meta().annotations.destructive_hint, Some(false));
    let tool = <described as ToolFactory>::tool();
    assert_eq!(tool.meta().description, Some("Overrides the doc comment"));
    // The fn is still an ordinary fn.
    let _ = add(1, 2);
}
