//! The client's one error type, with `is_*` predicates in the style of hyper's `Error`.

use std::time::Duration;

use serde_json::Value;

use super::wire::CallToolResult;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to an MCP server.
///
/// Match on the predicates ([`is_tool_error`](Self::is_tool_error),
/// [`is_rpc_error`](Self::is_rpc_error), ...) rather than on the variants:
/// new variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No connection could be opened, or the server did not complete the
    /// WebSocket upgrade or the MCP `initialize` handshake.
    #[error("could not connect to {url}: {reason}{}", source_suffix(.source))]
    Connect {
        url: String,
        reason: String,
        #[source]
        source: Option<BoxError>,
    },

    /// The connection the call was sent on closed before the answer came.
    /// The server may or may not have run the request.
    #[error("connection to {url} lost: {reason}")]
    ConnectionLost { url: String, reason: String },

    /// No answer within the call timeout. `notifications/cancelled` was sent.
    #[error("`{method}` timed out after {after:?}{detail}")]
    Timeout { method: String, after: Duration, detail: String },

    /// The tool ran and reported failure (`isError: true` in its result).
    #[error("tool `{tool}` failed: {message}")]
    Tool { tool: String, message: String, result: Box<CallToolResult> },

    /// The server answered with a JSON-RPC error (unknown tool, bad
    /// method, invalid params, internal error...).
    #[error("`{method}` failed with JSON-RPC error {code}: {message}")]
    Rpc { method: String, code: i64, message: String, data: Option<Box<Value>> },

    /// The answer arrived but did not have the expected shape.
    #[error("could not decode the answer to `{method}`: {reason}")]
    Decode { method: String, reason: String },

    /// The caller passed something the client cannot send; nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// The cause is part of the message: a connect error is mostly read in a
/// log line, where "WebSocket upgrade failed" alone says too little.
fn source_suffix(source: &Option<BoxError>) -> String {
    source.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
}

impl ClientError {
    /// The tool returned a result with `isError: true`.
    pub fn is_tool_error(&self) -> bool {
        matches!(self, ClientError::Tool { .. })
    }

    /// The server answered with a JSON-RPC error object.
    pub fn is_rpc_error(&self) -> bool {
        matches!(self, ClientError::Rpc { .. })
    }

    /// The connection died while the call was pending (or, with reconnect
    /// off, before it could be sent).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, ClientError::ConnectionLost { .. })
    }

    /// The call timeout elapsed (also when it elapsed waiting for a reconnect).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }

    /// Connecting or the handshake failed (including the connect timeout).
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }

    /// The server's answer did not decode into what was asked for.
    pub fn is_decode(&self) -> bool {
        matches!(self, ClientError::Decode { .. })
    }

    /// The caller's input was rejected before anything was sent.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self, ClientError::InvalidRequest(_))
    }

    /// The JSON-RPC error code, for [`is_rpc_error`](Self::is_rpc_error) errors.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The JSON-RPC error's `data` member, if the server sent one.
    pub fn rpc_data(&self) -> Option<&Value> {
        match self {
            ClientError::Rpc { data, .. } => data.as_deref(),
            _ => None,
        }
    }

    /// The message a failing tool reported (its text content), for
    /// [`is_tool_error`](Self::is_tool_error) errors.
    pub fn tool_message(&self) -> Option<&str> {
        match self {
            ClientError::Tool { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The full `isError: true` result, for tools that put more than text in it.
    pub fn tool_result(&self) -> Option<&CallToolResult> {
        match self {
            ClientError::Tool { result, .. } => Some(result),
            _ => None,
        }
    }

    pub(crate) fn connect(url: &str, reason: impl Into<String>) -> Self {
        ClientError::Connect { url: url.to_owned(), reason: reason.into(), source: None }
    }

    pub(crate) fn connect_with(url: &str, reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ClientError::Connect { url: url.to_owned(), reason: reason.into(), source: Some(source.into()) }
    }

    pub(crate) fn lost(url: &str, reason: impl Into<String>) -> Self {
        ClientError::ConnectionLost { url: url.to_owned(), reason: reason.into() }
    }

    pub(crate) fn decode(method: &str, reason: impl Into<String>) -> Self {
        ClientError::Decode { method: method.to_owned(), reason: reason.into() }
    }
}
