//! The MCP messages the client sends and reads, as far as it needs them.
//!
//! Incoming frames are parsed once into [`Incoming`], borrowing from the
//! frame; only the `result` of a response is copied out (as raw JSON) for
//! the waiting call to decode in its own task.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The protocol version this client asks for: the newest with the
/// `initialize` handshake, the same one the server side serves.
pub const PROTOCOL_VERSION: &str = crate::protocol::LATEST_SESSION_VERSION;

/// Versions the client accepts from a server (those the server side
/// speaks too). 2024-11-05 is what the Python services in production
/// answer; the tool-call shapes the client needs have not changed since.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] = &crate::protocol::SESSION_VERSIONS;

/// One content block of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Content {
    Text {
        text: String,
    },
    Image {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    Audio {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    ResourceLink {
        uri: String,
        name: String,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
    Resource {
        resource: Value,
    },
    /// A block type newer than this client; kept so a result still decodes.
    Unknown,
}

/// Every member any block type has, flat: serde's internally tagged enums
/// buffer each block before choosing the variant, and this is the hot path
/// of every tool call.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentFields {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    data: Option<String>,
    mime_type: Option<String>,
    uri: Option<String>,
    name: Option<String>,
    resource: Option<Value>,
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let f = ContentFields::deserialize(deserializer)?;
        let need = |field: Option<String>, name: &'static str| field.ok_or_else(|| D::Error::missing_field(name));
        Ok(match f.kind.as_str() {
            "text" => Content::Text { text: need(f.text, "text")? },
            "image" => Content::Image { data: need(f.data, "data")?, mime_type: need(f.mime_type, "mimeType")? },
            "audio" => Content::Audio { data: need(f.data, "data")?, mime_type: need(f.mime_type, "mimeType")? },
            "resource_link" => Content::ResourceLink {
                uri: need(f.uri, "uri")?,
                name: f.name.unwrap_or_default(),
                mime_type: f.mime_type,
            },
            "resource" => {
                Content::Resource { resource: f.resource.ok_or_else(|| D::Error::missing_field("resource"))? }
            }
            _ => Content::Unknown,
        })
    }
}

impl Content {
    /// The text of a text block.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// The result of `tools/call`, as the server sent it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    #[serde(default)]
    pub content: Vec<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    #[serde(default)]
    pub is_error: bool,
}

impl CallToolResult {
    /// All text blocks joined by newlines: what a tool's error message or
    /// a text-only result reads as.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for text in self.content.iter().filter_map(Content::as_text) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(text);
        }
        out
    }
}

/// `CallToolResult` with `structuredContent` left as raw JSON, so a typed
/// call decodes it straight into the caller's type without a `Value`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawCallToolResult {
    #[serde(default)]
    pub content: Vec<Content>,
    #[serde(default)]
    pub structured_content: Option<Box<RawValue>>,
    #[serde(default)]
    pub is_error: bool,
}

impl RawCallToolResult {
    pub(crate) fn into_public(self) -> CallToolResult {
        CallToolResult {
            content: self.content,
            structured_content: self.structured_content.and_then(|raw| serde_json::from_str(raw.get()).ok()),
            is_error: self.is_error,
        }
    }
}

/// One entry of `tools/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListToolsPage {
    pub tools: Vec<ToolInfo>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `serverInfo` / `clientInfo` of the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Implementation {
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// What the server said about itself in answer to `initialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    pub protocol_version: String,
    #[serde(default)]
    pub capabilities: Value,
    #[serde(default = "unnamed_server")]
    pub server_info: Implementation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

fn unnamed_server() -> Implementation {
    Implementation { name: String::new(), version: String::new() }
}

/// A `notifications/progress` the server sent for a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub progress: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A JSON-RPC error object.
#[derive(Debug, Deserialize)]
pub(crate) struct RpcErrorObject {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Option<Value>,
}

/// Any incoming frame: response, notification or server-to-client request.
#[derive(Deserialize)]
pub(crate) struct Incoming<'a> {
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(default)]
    pub error: Option<RpcErrorObject>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProgressParams<'a> {
    #[serde(borrow)]
    pub progress_token: &'a RawValue,
    #[serde(flatten)]
    pub progress: Progress,
}

/// Reads a request id the client issued (always a number) back out of an
/// answer. Servers that turn ids into strings are tolerated.
pub(crate) fn parse_id(raw: &RawValue) -> Option<u64> {
    let text = raw.get();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    text.parse().ok()
}

/// An outgoing request, serialized once before it is queued for the writer.
/// `params` is serialized straight into the frame (no intermediate copy);
/// it must be something that always serializes, such as raw JSON or a
/// struct of strings, numbers and raw JSON.
pub(crate) fn encode_request<P: Serialize + ?Sized>(id: u64, method: &str, params: Option<&P>) -> String {
    #[derive(Serialize)]
    struct Request<'a, P: ?Sized> {
        jsonrpc: &'static str,
        id: u64,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a P>,
    }
    serde_json::to_string(&Request { jsonrpc: "2.0", id, method, params })
        .expect("a request of strings, numbers and raw JSON always serializes")
}

pub(crate) fn encode_notification(method: &str, params: Option<&RawValue>) -> String {
    #[derive(Serialize)]
    struct Notification<'a> {
        jsonrpc: &'static str,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a RawValue>,
    }
    serde_json::to_string(&Notification { jsonrpc: "2.0", method, params })
        .expect("a notification of strings and raw JSON always serializes")
}

/// The answer to a request the server sent us.
pub(crate) fn encode_response(id: &RawValue, result: Result<&RawValue, (i64, &str)>) -> String {
    #[derive(Serialize)]
    struct ErrorObject<'a> {
        code: i64,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Response<'a> {
        jsonrpc: &'static str,
        id: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ErrorObject<'a>>,
    }
    let (result, error) = match result {
        Ok(r) => (Some(r), None),
        Err((code, message)) => (None, Some(ErrorObject { code, message })),
    };
    serde_json::to_string(&Response { jsonrpc: "2.0", id, result, error })
        .expect("a response of strings and raw JSON always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_response_borrows_result() {
        let frame = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}"#;
        let msg: Incoming<'_> = serde_json::from_str(frame).unwrap();
        assert_eq!(parse_id(msg.id.unwrap()), Some(7));
        assert!(msg.method.is_none());
        let result: CallToolResult = serde_json::from_str(msg.result.unwrap().get()).unwrap();
        assert_eq!(result.text(), "hi");
        assert!(!result.is_error);
    }

    #[test]
    fn string_ids_are_tolerated() {
        let raw = RawValue::from_string("\"42\"".into()).unwrap();
        assert_eq!(parse_id(&raw), Some(42));
        let raw = RawValue::from_string("\"abc\"".into()).unwrap();
        assert_eq!(parse_id(&raw), None);
    }

    #[test]
    fn unknown_content_blocks_still_decode() {
        let json = r#"{"content":[{"type":"hologram","beam":1},{"type":"text","text":"ok"}],"isError":true}"#;
        let result: CallToolResult = serde_json::from_str(json).unwrap();
        assert_eq!(result.content[0], Content::Unknown);
        assert_eq!(result.text(), "ok");
        assert!(result.is_error);
    }

    #[test]
    fn progress_params_flatten() {
        let json = r#"{"progressToken":3,"progress":1,"total":4,"message":"step"}"#;
        let p: ProgressParams<'_> = serde_json::from_str(json).unwrap();
        assert_eq!(parse_id(p.progress_token), Some(3));
        assert_eq!(p.progress.total, Some(4.0));
    }

    #[test]
    fn requests_are_compact_json() {
        let params = RawValue::from_string(r#"{"name":"echo"}"#.into()).unwrap();
        let text = encode_request(5, "tools/call", Some(&*params));
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo"}}"#);
    }
}
