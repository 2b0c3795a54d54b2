use mcp_runtime::{RequestContext, mcp_tool};

#[mcp_tool]
async fn whoami(#[mcp(flatten)] cx: RequestContext) -> String {
    cx.request_id().to_string()
}

fn main() {}
