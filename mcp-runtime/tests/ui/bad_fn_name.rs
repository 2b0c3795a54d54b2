use mcp_runtime::mcp_tool;

#[mcp_tool]
async fn add_numbers_together_and_then_return_the_sum_to_the_caller_please(a: i64) -> i64 {
    a
}

fn main() {}
