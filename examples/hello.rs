//! The smallest useful MCP server: four tools over WebSocket.
//!
//! `cargo run --release --bin hello` listens on port 9000 (or `MCP_PORT`);
//! `hello --list-tools` prints the tool catalog.

use std::time::Duration;

use mcp_runtime::{RequestContext, Server, ToolError, mcp_tool};
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Serialize, JsonSchema)]
struct Echo {
    text: String,
}

/// Returns the text it is given.
#[mcp_tool(read_only)]
async fn echo(
    /// Any text
    text: String,
) -> Echo {
    Echo { text }
}

#[derive(Serialize, JsonSchema)]
struct Sum {
    sum: i64,
}

/// Adds two integers.
#[mcp_tool(read_only, idempotent)]
async fn add(
    /// First addend
    a: i64,
    /// Second addend
    b: i64,
) -> Result<Sum, ToolError> {
    let sum = a.checked_add(b).ok_or_else(|| ToolError::new(format!("{a} + {b} does not fit in 64 bits")))?;
    Ok(Sum { sum })
}

#[derive(Serialize, JsonSchema)]
struct Word {
    word: String,
    /// Byte offset in the text
    offset: usize,
}

/// Splits text into its words: a list result, sent as `structuredContent`
/// (as `{"result": [...]}` to clients before protocol 2026-07-28).
#[mcp_tool(read_only, idempotent)]
async fn words(
    /// Any text
    text: String,
) -> Vec<Word> {
    text.split_whitespace()
        .map(|word| Word { word: word.to_owned(), offset: word.as_ptr() as usize - text.as_ptr() as usize })
        .collect()
}

/// Works for `steps` x 100 ms, reporting progress after each step; stops when cancelled.
#[mcp_tool(read_only)]
async fn slow(
    cx: RequestContext,
    /// How many 100 ms steps to work for
    steps: u32,
) -> String {
    for step in 1..=steps {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cx.progress(step.into(), Some(steps.into()), None).await;
        cx.info(format!("step {step} of {steps} done")).await;
    }
    format!("done after {steps} steps")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    Server::builder("hello", env!("CARGO_PKG_VERSION")).discover_tools().default_port(9000).run().await
}
