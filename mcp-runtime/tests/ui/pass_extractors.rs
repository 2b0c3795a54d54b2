use mcp_runtime::tool::{StateRequirement, ToolCall};
use mcp_runtime::{CallError, FromToolCall, RequestContext as Ctx, State as Shared, ToolFactory, mcp_tool};

#[derive(Clone)]
struct Db {
    url: String,
}

#[derive(Clone)]
struct Limits(u32);

/// A user-defined extractor: injected because it implements `FromToolCall`.
struct Tenant(String);

impl FromToolCall for Tenant {
    fn from_tool_call(call: &ToolCall) -> Result<Self, CallError> {
        let db = call.state().get::<Db>().ok_or_else(|| CallError::Internal("no Db".into()))?;
        Ok(Tenant(db.url.clone()))
    }

    fn required_state() -> Option<StateRequirement> {
        Some(StateRequirement::of::<Db>())
    }
}

/// Injected parameters in any position, under any name or path.
#[mcp_tool]
async fn query(
    cx: Ctx,
    /// The SQL text
    sql: String,
    db: Shared<Db>,
    limits: mcp_runtime::extract::State<Limits>,
    tenant: Tenant,
    ctx2: mcp_runtime::RequestContext,
) -> String {
    let _ = (cx.request_id(), ctx2.is_cancelled());
    format!("{sql} on {} for {} (max {})", db.url, tenant.0, limits.0.0)
}

fn main() {
    let tool = <query as ToolFactory>::tool();
    let props = tool.input_schema()["properties"].as_object().unwrap();
    assert_eq!(props.keys().collect::<Vec<_>>(), ["sql"]);
    let names: Vec<_> = tool.required_state().iter().map(|s| s.type_name).collect();
    assert_eq!(names.len(), 3, "{names:?}");
}
