//! Tools the server tests register, one per behaviour under test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_runtime::{LogLevel, RequestContext, Server, ServerBuilder, State, ToolError, mcp_tool};
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Serialize, JsonSchema)]
pub struct Echoed {
    pub text: String,
}

/// Returns its text.
#[mcp_tool(read_only)]
pub async fn echo(text: String) -> Echoed {
    Echoed { text }
}

#[derive(Serialize, JsonSchema)]
pub struct Sum {
    pub sum: i64,
}

/// Adds two integers; overflow is a tool error.
#[mcp_tool]
pub async fn add(a: i64, b: i64) -> Result<Sum, ToolError> {
    a.checked_add(b).map(|sum| Sum { sum }).ok_or_else(|| ToolError::new("the sum does not fit in 64 bits"))
}

/// A plain string result: its text block is the string itself, unquoted.
#[mcp_tool]
pub async fn greet(name: String) -> String {
    format!("hello \"{name}\"")
}

/// A number result: structured, wrapped as `{"result": 42}` for older protocols.
#[mcp_tool]
pub async fn answer() -> i64 {
    42
}

/// Panics.
#[mcp_tool]
pub async fn boom(message: String) -> String {
    panic!("{message}");
}

/// Counts how far cancellable work got, and whether its token fired.
#[derive(Clone, Default)]
pub struct Progressed {
    pub steps: Arc<AtomicUsize>,
    pub cancelled: Arc<AtomicUsize>,
}

/// `steps` steps of `step_ms` each, with progress and an info log per step.
#[mcp_tool]
pub async fn work(cx: RequestContext, seen: State<Progressed>, steps: u32, step_ms: u64) -> String {
    let token = cx.cancellation_token().clone();
    let cancelled = seen.cancelled.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        cancelled.fetch_add(1, Ordering::SeqCst);
    });
    for step in 1..=steps {
        tokio::time::sleep(Duration::from_millis(step_ms)).await;
        seen.steps.fetch_add(1, Ordering::SeqCst);
        cx.progress(step.into(), Some(steps.into()), Some("working")).await;
    }
    format!("{steps} steps")
}

/// Sleeps `ms` milliseconds.
#[mcp_tool]
pub async fn nap(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// Logs one message at each of debug, info and error.
#[mcp_tool]
pub async fn chatty(cx: RequestContext) -> bool {
    cx.log(LogLevel::Debug, Some("chatty"), "a debug line").await;
    cx.log(LogLevel::Info, Some("chatty"), "an info line").await;
    cx.log(LogLevel::Error, Some("chatty"), "an error line").await;
    true
}

/// Returns at once and logs `message` `after_ms` later, from a task that
/// outlives the call: a notification that belongs to no call.
#[mcp_tool]
pub async fn later(cx: RequestContext, message: String, after_ms: u64) -> bool {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        cx.info(message).await;
    });
    true
}

/// Ends its Streamable HTTP response stream, then answers `ms` later.
#[mcp_tool]
pub async fn poll_me(cx: RequestContext, ms: u64) -> u64 {
    cx.close_sse_stream();
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// The builder every protocol test starts from.
pub fn builder() -> ServerBuilder {
    Server::builder("test-server", "1.2.3")
        .instructions("Use echo to test.")
        .tool::<echo>()
        .tool::<add>()
        .tool::<greet>()
        .tool::<answer>()
        .tool::<boom>()
        .tool::<work>()
        .tool::<nap>()
        .tool::<chatty>()
        .tool::<later>()
        .tool::<poll_me>()
        .state(Progressed::default())
}

/// Names in registration order, as tools/list must return them.
pub const TOOL_NAMES: [&str; 10] =
    ["echo", "add", "greet", "answer", "boom", "work", "nap", "chatty", "later", "poll_me"];
