//! The fixture server of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`): the tools its scenarios call, by
//! the names and with the behaviour the scenarios expect, on this framework.
//! `tests/tests/conformance.rs` runs the suite against it over Streamable
//! HTTP, once per requirement set (2025-11-25 and 2026-07-28).
//!
//! `cargo run --bin conformance` listens on port 9000 (or `MCP_PORT`).

use std::time::Duration;

use mcp_runtime::tool::{Location, ToolCall, ToolMeta};
use mcp_runtime::{Annotations, CallError, RequestContext, Server, Tool, ToolError, ToolFactory, mcp_tool};
use serde::Deserialize;

/// Returns a fixed line of text.
#[mcp_tool(read_only)]
async fn test_simple_text() -> String {
    "This is a simple text response for testing.".to_owned()
}

/// Always fails, as a tool error (`isError: true`).
#[mcp_tool(read_only)]
async fn test_error_handling() -> Result<String, ToolError> {
    Err(ToolError::new("This tool intentionally returns an error for testing"))
}

/// Sends three info log messages 50 ms apart while it runs.
#[mcp_tool(read_only)]
async fn test_tool_with_logging(cx: RequestContext) -> String {
    cx.info("Tool execution started").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.info("Tool processing data").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.info("Tool execution completed").await;
    "Tool with logging executed successfully".to_owned()
}

/// Reports progress 0, 50 and 100 of 100, 50 ms apart.
#[mcp_tool(read_only)]
async fn test_tool_with_progress(cx: RequestContext) -> String {
    cx.progress(0.0, Some(100.0), None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.progress(50.0, Some(100.0), None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.progress(100.0, Some(100.0), None).await;
    "Tool with progress executed successfully".to_owned()
}

/// Over Streamable HTTP, ends its response stream mid-call (SEP-1699) and
/// answers 100 ms later: the client resumes with `Last-Event-ID`.
#[mcp_tool(read_only)]
async fn test_reconnection(cx: RequestContext) -> String {
    cx.close_sse_stream();
    tokio::time::sleep(Duration::from_millis(100)).await;
    "Reconnection test completed successfully".to_owned()
}

/// Logs one info message, which a stateless (2026-07-28) request only gets
/// when its `_meta` sets a log level.
#[mcp_tool(read_only)]
async fn test_logging_tool(cx: RequestContext) -> String {
    cx.info("Diagnostic trace logging activated").await;
    "Logging evaluated".to_owned()
}

/// Needs the client's `sampling` capability (registered with
/// `requires_client_capability`): a client that did not declare it gets
/// -32021 and the tool does not run.
#[mcp_tool(read_only)]
async fn test_missing_capability() -> String {
    "The client declared the sampling capability".to_owned()
}

/// Streams a progress notification and a log message before its result.
/// This server never sends a request (elicitation, sampling) on a response
/// stream; the scenario that calls this checks exactly that.
#[mcp_tool(read_only)]
async fn test_streaming_elicitation(cx: RequestContext) -> String {
    cx.progress(50.0, Some(100.0), None).await;
    cx.info("Streaming").await;
    "Streaming complete".to_owned()
}

/// `json_schema_2020_12_tool`: its `inputSchema` is the suite's JSON Schema
/// 2020-12 fixture (`$defs` with `$anchor`, `allOf`/`anyOf`,
/// `if`/`then`/`else`), published as written; the arguments are read into
/// [`Contact`] and checked against the same rules.
fn json_schema_2020_12_tool() -> Tool {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Address {
        street: Option<String>,
        city: Option<String>,
    }

    #[derive(Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum ContactMethod {
        Phone,
        Email,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Contact {
        name: Option<String>,
        address: Option<Address>,
        contact_method: Option<ContactMethod>,
        phone: Option<String>,
        email: Option<String>,
    }

    let meta = ToolMeta {
        name: "json_schema_2020_12_tool",
        title: None,
        description: Some("Tool with JSON Schema 2020-12 features"),
        annotations: Annotations { read_only_hint: Some(true), ..Annotations::default() },
        location: Location { file: file!(), line: line!(), column: column!() },
    };
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    });
    Tool::from_parts(
        meta,
        |_| {},
        &[],
        |call: ToolCall| async move {
            let contact: Contact = call.arguments()?;
            let invalid = |m: &str| Err(CallError::InvalidArguments(format!("invalid arguments: {m}")));
            if contact.phone.is_none() && contact.email.is_none() {
                return invalid("give `phone` or `email` (or both)");
            }
            if contact.contact_method == Some(ContactMethod::Phone) && contact.phone.is_none() {
                return invalid("`contactMethod` is \"phone\", so `phone` is required");
            }
            if contact.contact_method != Some(ContactMethod::Phone) && contact.email.is_none() {
                return invalid("unless `contactMethod` is \"phone\", `email` is required");
            }
            let name = contact.name.as_deref().unwrap_or("someone");
            let city = contact.address.as_ref().and_then(|a| a.city.as_deref().or(a.street.as_deref()));
            Ok::<String, CallError>(match city {
                Some(city) => format!("contact details for {name} ({city}) accepted"),
                None => format!("contact details for {name} accepted"),
            })
        },
    )
    .with_input_schema(schema)
    .expect("the fixture schema has an object root")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    Server::builder("mcp-conformance-fixture", env!("CARGO_PKG_VERSION"))
        .tool::<test_simple_text>()
        .tool::<test_error_handling>()
        .tool::<test_tool_with_logging>()
        .tool::<test_tool_with_progress>()
        .tool::<test_reconnection>()
        .tool::<test_logging_tool>()
        .tool::<test_streaming_elicitation>()
        .add_tool(<test_missing_capability as ToolFactory>::tool().requires_client_capability("sampling"))
        .add_tool(json_schema_2020_12_tool())
        .default_port(9000)
        .run()
        .await
}
