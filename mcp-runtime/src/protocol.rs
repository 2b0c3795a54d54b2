//! JSON-RPC 2.0 and MCP wire types.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// A JSON-RPC request id. Echoed back with the type it came with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// MCP log levels (RFC 5424 severities), lowest first so that `as u8`
/// orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Notice = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
    Alert = 6,
    Emergency = 7,
}

/// The protocol revisions served over a session (`initialize` handshake),
/// oldest first. `initialize` echoes the client's version when it is one of
/// these and answers [`LATEST_SESSION_VERSION`] otherwise.
pub const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The newest revision that uses the `initialize` handshake.
pub const LATEST_SESSION_VERSION: &str = "2025-11-25";

/// Revisions served without a handshake: every request names its version in
/// `params._meta["io.modelcontextprotocol/protocolVersion"]`.
pub const STATELESS_VERSIONS: [&str; 1] = ["2026-07-28"];

/// `_meta` keys of the stateless revision.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// A stateless request's log threshold; without it the request gets no log messages.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// JSON-RPC and MCP error codes this runtime sends.
pub mod error_code {
    /// The frame is not JSON. Answered with id `null`.
    pub const PARSE_ERROR: i32 = -32700;
    /// JSON, but not a JSON-RPC request: wrong `jsonrpc`, bad `id`, missing
    /// `method`, a batch, or a request the session is not ready for.
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// `params` has the wrong shape, names an unknown tool, or (legacy direct
    /// calls) the arguments do not fit the tool.
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// A legacy direct call whose tool returned `Err`.
    pub const TOOL_ERROR: i32 = -32000;
    /// The transport's declared protocol version (the Streamable HTTP
    /// `MCP-Protocol-Version` header) disagrees with the request's `_meta`.
    pub const HEADER_MISMATCH: i32 = -32020;
    /// The request needs a client capability the client did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i32 = -32021;
    /// The request's `_meta` protocol version is not one the server speaks.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
}

/// A JSON-RPC message with every member left unparsed: the dispatcher
/// validates each one itself so that every mistake gets its own message, and
/// the `id` can be echoed byte for byte.
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub error: Option<&'a RawValue>,
}

/// Keeps an explicit `null` as `Some("null")`, so "absent" and "null" differ
/// (a request with `"id": null` is not a notification).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// The `_meta` members the runtime reads.
#[derive(Deserialize, Default)]
pub(crate) struct RequestMeta<'a> {
    #[serde(default, borrow, rename = "progressToken")]
    pub progress_token: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "io.modelcontextprotocol/protocolVersion", deserialize_with = "present")]
    pub protocol_version: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "io.modelcontextprotocol/clientCapabilities", deserialize_with = "present")]
    pub client_capabilities: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "io.modelcontextprotocol/logLevel")]
    pub log_level: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "io.modelcontextprotocol/clientInfo")]
    pub client_info: Option<&'a RawValue>,
}

/// serde_json's " at line 1 column 17" means nothing to someone who sent
/// one line, nor to a model reading a tool error.
pub(crate) fn strip_position(message: &str) -> &str {
    message.rfind(" at line ").map_or(message, |i| &message[..i])
}

/// The string a raw JSON value holds, borrowed when it has no escapes.
pub(crate) fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A request id as MCP allows it: a string or an integer (never null,
/// fractional or structured).
pub(crate) fn parse_request_id(raw: &RawValue) -> Option<RequestId> {
    let text = raw.get();
    if text.starts_with('"') {
        return json_str(raw).map(|s| RequestId::String(s.into_owned()));
    }
    text.parse::<i64>().ok().map(RequestId::Number)
}

/// MCP's `ProgressToken`: a string or a (finite) number. The token is echoed
/// into every progress notification of its call, so anything else (say an
/// object nested past the client's parser limit, which the fuzz test sent)
/// is refused with the request instead.
pub(crate) fn is_progress_token(raw: &RawValue) -> bool {
    let text = raw.get();
    if text.starts_with('"') {
        return json_str(raw).is_some();
    }
    text.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The length of `s` as [`push_json_str`] writes it, quotes included.
pub(crate) fn json_str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}`, with `id` echoed raw.
///
/// Responses are sized exactly: a `String` whose length is its capacity
/// becomes the WebSocket frame's `Bytes` without another allocation.
pub(crate) fn result_response(id: &str, result: &str) -> String {
    let mut out = String::with_capacity(id.len() + result.len() + 33);
    out.push_str(r#"{"jsonrpc":"2.0","id":"#);
    out.push_str(id);
    out.push_str(r#","result":"#);
    out.push_str(result);
    out.push('}');
    out
}

/// A JSON-RPC error response; `id` is the raw id, or `None` for `null`.
pub(crate) fn error_response(id: Option<&str>, code: i32, message: &str, data: Option<&str>) -> String {
    let mut out = String::with_capacity(message.len() + 80);
    out.push_str(r#"{"jsonrpc":"2.0","id":"#);
    out.push_str(id.unwrap_or("null"));
    out.push_str(r#","error":{"code":"#);
    out.push_str(&code.to_string());
    out.push_str(r#","message":"#);
    push_json_str(&mut out, message);
    if let Some(data) = data {
        out.push_str(r#","data":"#);
        out.push_str(data);
    }
    out.push_str("}}");
    out
}
