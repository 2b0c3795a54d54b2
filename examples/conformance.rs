//! The fixture server of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`): the tools its scenarios call, by
//! the names and with the behaviour the scenarios expect, on this framework.
//! `tests/tests/conformance.rs` runs the suite against it over Streamable
//! HTTP, once per requirement set (2025-11-25 and 2026-07-28).
//!
//! `cargo run --bin conformance` listens on port 9002 (or `MCP_PORT`),
//! beside `hello` on 9000 and `notes` on 9001.

use std::borrow::Cow;
use std::time::Duration;

use mcp_runtime::content::Content;
use mcp_runtime::{RequestContext, Server, ToolError, ToolFactory, mcp_tool};
use schemars::JsonSchema;
use serde::Deserialize;

/// A 1x1 red pixel, as PNG.
const RED_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A tenth of a second of silence: 8 kHz, 8-bit mono PCM in a WAV file.
fn silence_wav() -> Vec<u8> {
    let samples = vec![0x80u8; 800];
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    wav.extend_from_slice(&8000u32.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    wav
}

/// Returns a fixed line of text.
#[mcp_tool(read_only)]
async fn test_simple_text() -> Content {
    Content::text("This is a simple text response for testing.")
}

/// Returns a 1x1 red PNG.
#[mcp_tool(read_only)]
async fn test_image_content() -> Content {
    Content::image_base64(RED_PIXEL_PNG, "image/png")
}

/// Returns a tenth of a second of silence as a WAV file.
#[mcp_tool(read_only)]
async fn test_audio_content() -> Content {
    Content::audio(silence_wav(), "audio/wav")
}

/// Returns an embedded text resource.
#[mcp_tool(read_only)]
async fn test_embedded_resource() -> Content {
    Content::embedded_text("test://embedded-resource", "text/plain", "This is an embedded resource content.")
}

/// Returns text, an image and an embedded JSON resource together.
#[mcp_tool(read_only)]
async fn test_multiple_content_types() -> Vec<Content> {
    vec![
        Content::text("Multiple content types test:"),
        Content::image_base64(RED_PIXEL_PNG, "image/png"),
        Content::embedded_text("test://mixed-content-resource", "application/json", r#"{"test":"data","value":123}"#),
    ]
}

/// Always fails, as a tool error (`isError: true`).
#[mcp_tool(read_only)]
async fn test_error_handling() -> Result<Content, ToolError> {
    Err(ToolError::new("This tool intentionally returns an error for testing"))
}

/// Sends three info log messages 50 ms apart while it runs.
#[mcp_tool(read_only)]
async fn test_tool_with_logging(cx: RequestContext) -> Content {
    cx.info("Tool execution started").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.info("Tool processing data").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.info("Tool execution completed").await;
    Content::text("Tool with logging executed successfully")
}

/// Reports progress 0, 50 and 100 of 100, 50 ms apart.
#[mcp_tool(read_only)]
async fn test_tool_with_progress(cx: RequestContext) -> Content {
    cx.progress(0.0, Some(100.0), None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.progress(50.0, Some(100.0), None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cx.progress(100.0, Some(100.0), None).await;
    Content::text("Tool with progress executed successfully")
}

/// Over Streamable HTTP, ends its response stream mid-call (SEP-1699) and
/// answers 100 ms later: the client resumes with `Last-Event-ID`.
#[mcp_tool(read_only)]
async fn test_reconnection(cx: RequestContext) -> Content {
    cx.close_sse_stream();
    tokio::time::sleep(Duration::from_millis(100)).await;
    Content::text("Reconnection test completed successfully")
}

/// Logs one info message, which a stateless (2026-07-28) request only gets
/// when its `_meta` sets a log level.
#[mcp_tool(read_only)]
async fn test_logging_tool(cx: RequestContext) -> Content {
    cx.info("Diagnostic trace logging activated").await;
    Content::text("Logging evaluated")
}

/// Needs the client's `sampling` capability (registered with
/// `requires_client_capability`): a client that did not declare it gets
/// -32021 and the tool does not run.
#[mcp_tool(read_only)]
async fn test_missing_capability() -> Content {
    Content::text("The client declared the sampling capability")
}

/// Streams a progress notification and a log message before its result.
/// This server never sends a request (elicitation, sampling) on a response
/// stream; the scenario that calls this checks exactly that.
#[mcp_tool(read_only)]
async fn test_streaming_elicitation(cx: RequestContext) -> Content {
    cx.progress(50.0, Some(100.0), None).await;
    cx.info("Streaming").await;
    Content::text("Streaming complete")
}

/// The arguments of `json_schema_2020_12_tool`, published with the suite's
/// JSON Schema 2020-12 fixture (`$defs` with `$anchor`, `allOf`/`anyOf`,
/// `if`/`then`/`else`) and checked against the same rules.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    name: Option<String>,
    address: Option<Address>,
    contact_method: Option<ContactMethod>,
    phone: Option<String>,
    email: Option<String>,
}

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

impl JsonSchema for Contact {
    fn schema_name() -> Cow<'static, str> {
        "Contact".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
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
        })
    }
}

/// Tool with JSON Schema 2020-12 features
#[mcp_tool(read_only)]
async fn json_schema_2020_12_tool(#[mcp(flatten)] contact: Contact) -> Result<Content, ToolError> {
    if contact.phone.is_none() && contact.email.is_none() {
        return Err("give `phone` or `email` (or both)".into());
    }
    if contact.contact_method == Some(ContactMethod::Phone) && contact.phone.is_none() {
        return Err("`contactMethod` is \"phone\", so `phone` is required".into());
    }
    if contact.contact_method != Some(ContactMethod::Phone) && contact.email.is_none() {
        return Err("unless `contactMethod` is \"phone\", `email` is required".into());
    }
    let name = contact.name.as_deref().unwrap_or("someone");
    let place = contact.address.as_ref().and_then(|a| a.city.as_deref().or(a.street.as_deref()));
    Ok(Content::text(match place {
        Some(place) => format!("contact details for {name} ({place}) accepted"),
        None => format!("contact details for {name} accepted"),
    }))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    Server::builder("mcp-conformance-fixture", env!("CARGO_PKG_VERSION"))
        .tool::<test_simple_text>()
        .tool::<test_image_content>()
        .tool::<test_audio_content>()
        .tool::<test_embedded_resource>()
        .tool::<test_multiple_content_types>()
        .tool::<test_error_handling>()
        .tool::<test_tool_with_logging>()
        .tool::<test_tool_with_progress>()
        .tool::<test_reconnection>()
        .tool::<test_logging_tool>()
        .tool::<test_streaming_elicitation>()
        .add_tool(<test_missing_capability as ToolFactory>::tool().requires_client_capability("sampling"))
        .tool::<json_schema_2020_12_tool>()
        .default_port(9002)
        .run()
        .await
}
