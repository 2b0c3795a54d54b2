use mcp_runtime::{RequestContext, mcp_tool};

#[mcp_tool]
async fn whoami(cx: Option<RequestContext>) -> String {
    cx.map(|cx| cx.request_id().to_string()).unwrap_or_default()
}

fn main() {}
