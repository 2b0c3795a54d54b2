use mcp_runtime::mcp_tool;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Limits {
    max: u32,
}

#[mcp_tool]
async fn take(#[mcp(default = Limits { max: 10 })] limits: Limits) -> u32 {
    limits.max
}

fn main() {}
