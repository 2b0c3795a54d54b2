//! The bare loop: tokio-tungstenite + serde_json answering `hello`'s frames
//! with no framework, the practical limit the runtime is measured against.
//!
//! It does the honest minimum a real server must do, no less: parse every
//! request frame as JSON-RPC, parse the tool arguments, build the result JSON
//! (text block with the serialized output, `structuredContent`, `isError`)
//! and serialize the response. It does not skip parsing by pattern-matching
//! bytes, and it does not precompute responses.

use std::borrow::Cow;

use anyhow::Context as _;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Runs the bare server until the process is killed. Binds like `hello`
/// (`MCP_HOST`, `MCP_PORT`, 0 = any free port) and announces itself with the
/// same stdout line, so the bench starts both servers the same way.
pub async fn serve() -> anyhow::Result<()> {
    let listener = bind_from_env().await?;
    let addr = listener.local_addr()?;
    // The bench waits for this exact line; println! flushes at the newline.
    println!("listening on ws://{addr}");
    accept_loop(listener).await
}

/// Listens where `hello` would: `MCP_HOST` (default 127.0.0.1), `MCP_PORT`
/// (default 0, any free port).
pub async fn bind_from_env() -> anyhow::Result<TcpListener> {
    let host = std::env::var("MCP_HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = match std::env::var("MCP_PORT") {
        Ok(p) => p.parse::<u16>().with_context(|| format!("MCP_PORT={p:?} is not a port number (0-65535)"))?,
        Err(_) => 0,
    };
    TcpListener::bind((host.as_str(), port)).await.with_context(|| format!("cannot listen on {host}:{port}"))
}

/// Serves every connection the listener accepts, each in its own task.
pub async fn accept_loop(listener: TcpListener) -> ! {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: keep serving the others.
            Err(e) => {
                eprintln!("bare-server: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream).await {
                eprintln!("bare-server: connection {peer}: {e}");
            }
        });
    }
}

async fn serve_connection(stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(connection_config())).await?;
    // Answer every frame already read, then flush once: one write syscall
    // per batch of pipelined requests, the obvious thing a hand-written loop
    // does. `next` is cancel-safe, so polling it once loses nothing.
    while let Some(message) = ws.next().await {
        let mut ready = Some(message);
        let mut answered = false;
        while let Some(message) = ready.take() {
            match message? {
                Message::Text(text) => {
                    if let Some(reply) = answer(text.as_str()) {
                        ws.feed(Message::text(reply)).await?;
                        answered = true;
                    }
                }
                Message::Close(_) => return Ok(()),
                // Pings are answered by tungstenite itself.
                _ => {}
            }
            ready = ws.next().now_or_never().flatten();
        }
        if answered {
            ws.flush().await?;
        }
    }
    Ok(())
}

/// tungstenite's default read buffer is 128 KiB, allocated and touched per
/// connection: 128 KiB of RSS for every idle client. MCP frames are small,
/// so servers that care about idle connections choose a small one; this is
/// the size mcp-runtime's transport uses, so that the idle-memory comparison
/// measures the framework, not the buffer.
pub fn connection_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE)
}

pub const READ_BUFFER_SIZE: usize = 2 * 1024;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EchoArguments {
    text: String,
}

#[derive(Serialize)]
struct EchoOutput<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Response<'a, R: Serialize> {
    jsonrpc: &'static str,
    id: &'a RawValue,
    result: R,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallToolResult<'a> {
    content: [TextContent<'a>; 1],
    structured_content: &'a EchoOutput<'a>,
    is_error: bool,
}

#[derive(Serialize)]
struct TextContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct ErrorResponse<'a> {
    jsonrpc: &'static str,
    id: Option<&'a RawValue>,
    error: ErrorObject,
}

#[derive(Serialize)]
struct ErrorObject {
    code: i64,
    message: String,
}

/// The response frame to one request frame; `None` for notifications.
pub fn answer(frame: &str) -> Option<String> {
    let request: Request<'_> = match serde_json::from_str(frame) {
        Ok(request) => request,
        Err(e) => return Some(error(None, -32700, format!("parse error: {e}"))),
    };
    let id = request.id?;
    if request.jsonrpc != "2.0" {
        return Some(error(Some(id), -32600, "jsonrpc must be \"2.0\"".to_owned()));
    }
    let reply = match request.method.as_ref() {
        "tools/call" => call_tool(id, request.params),
        "initialize" => initialize(id, request.params),
        "ping" => serde_json::to_string(&Response { jsonrpc: "2.0", id, result: serde_json::json!({}) }),
        other => return Some(error(Some(id), -32601, format!("method not found: {other}"))),
    };
    Some(reply.unwrap_or_else(|e| error(Some(id), -32602, format!("invalid params: {e}"))))
}

fn call_tool(id: &RawValue, params: Option<&RawValue>) -> serde_json::Result<String> {
    let params: CallParams<'_> = serde_json::from_str(params.map_or("null", RawValue::get))?;
    if params.name != "echo" {
        return Ok(error(Some(id), -32602, format!("unknown tool: {}", params.name)));
    }
    let arguments: EchoArguments = serde_json::from_str(params.arguments.map_or("{}", RawValue::get))?;
    let output = EchoOutput { text: &arguments.text };
    let text = serde_json::to_string(&output)?;
    serde_json::to_string(&Response {
        jsonrpc: "2.0",
        id,
        result: CallToolResult {
            content: [TextContent { kind: "text", text: &text }],
            structured_content: &output,
            is_error: false,
        },
    })
}

fn initialize(id: &RawValue, params: Option<&RawValue>) -> serde_json::Result<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct InitializeParams {
        protocol_version: String,
    }
    let params: InitializeParams = serde_json::from_str(params.map_or("null", RawValue::get))?;
    serde_json::to_string(&Response {
        jsonrpc: "2.0",
        id,
        result: serde_json::json!({
            "protocolVersion": params.protocol_version,
            "capabilities": { "tools": { "listChanged": false } },
            "serverInfo": { "name": "mcp-bench-bare", "version": env!("CARGO_PKG_VERSION") },
        }),
    })
}

fn error(id: Option<&RawValue>, code: i64, message: String) -> String {
    serde_json::to_string(&ErrorResponse { jsonrpc: "2.0", id, error: ErrorObject { code, message } })
        .expect("an error response always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames;

    #[test]
    fn answers_echo_with_the_hello_shape() {
        let reply = answer(&frames::echo_request(9)).unwrap();
        frames::check_echo_response(&reply, 9).unwrap();
        assert_eq!(frames::response_id(&reply), Some(9));
        assert!(frames::is_echo_success(&reply));
    }

    #[test]
    fn answers_initialize_and_ignores_notifications() {
        let reply: serde_json::Value = serde_json::from_str(&answer(&frames::initialize_request()).unwrap()).unwrap();
        assert_eq!(reply["result"]["protocolVersion"], frames::PROTOCOL_VERSION);
        assert_eq!(answer(frames::INITIALIZED_NOTIFICATION), None);
    }

    #[test]
    fn rejects_garbage_with_an_error_response() {
        let reply: serde_json::Value = serde_json::from_str(&answer("{nope").unwrap()).unwrap();
        assert_eq!(reply["error"]["code"], -32700);
        let reply: serde_json::Value =
            serde_json::from_str(&answer(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#).unwrap())
                .unwrap();
        assert_eq!(reply["error"]["code"], -32602);
    }
}
