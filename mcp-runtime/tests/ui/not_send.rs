use std::rc::Rc;

use mcp_runtime::mcp_tool;

async fn later() {}

#[mcp_tool]
async fn hold(text: String) -> String {
    let shared = Rc::new(text);
    later().await;
    shared.to_string()
}

fn main() {}
