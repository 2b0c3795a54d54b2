use mcp_runtime::mcp_tool;

#[mcp_tool]
async fn repeat(text: String, #[mcp(default = "twice")] times: u32) -> String {
    text.repeat(times as usize)
}

fn main() {}
