//! JSON-RPC message routing and the MCP session lifecycle.
//!
//! [`Session::handle_text`] turns one incoming message into an [`Action`]:
//! nothing (notifications), an immediate reply, or a [`Call`] that the
//! transport runs alongside the session's other calls (see `engine.rs`).
//! The transport owns the socket; this module never touches it, so it is
//! plain synchronous code.
//!
//! Decisions worth knowing (the README's protocol section repeats them):
//! - Batches (JSON arrays) are answered with one `-32600`: MCP 2025-06-18
//!   removed JSON-RPC batching and no MCP client sends them.
//! - A request other than `initialize`, `ping` or `server/discover` before
//!   `initialize` gets `-32600` saying what to send first. Legacy direct tool
//!   calls (method = tool name) are exempt: the old ICCM clients never
//!   initialize.
//! - A request whose id is that of a call still running gets `-32600`:
//!   two answers with one id could not be told apart.
//! - A request whose `params._meta` names a protocol version is served
//!   statelessly (2026-07-28) whatever the session state; its `_meta` must
//!   also carry `clientCapabilities`. Over HTTP it must also carry the
//!   SEP-2243 routing headers (`Mcp-Method`, and `Mcp-Name` for a call),
//!   matching its body.
//! - A tool that needs a client capability the client did not declare is
//!   refused with -32021 before it runs.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::context::{LogFloor, RequestContext, SessionHandle};
use crate::engine::{Call, CallFuture};
use crate::extract::StateMap;
use crate::godot_log::{self, ConnectionLog, GodotLog, Transport};
use crate::protocol::{
    self, Envelope, LATEST_SESSION_VERSION, LogLevel, META_CLIENT_CAPABILITIES, META_LOG_LEVEL, META_PROTOCOL_VERSION,
    META_SERVER_INFO, RequestId, RequestMeta, SESSION_VERSIONS, STATELESS_VERSIONS, error_code, json_str,
    push_json_str, strip_position,
};
use crate::registry::{self, FastHash, Listing, Registry};
use crate::tool::{self, CallError, Measure, Tool, ToolCall, ToolOutput};

/// How long a stateless client may cache `tools/list` and `server/discover`:
/// the tool set is fixed for the life of the process.
const LIST_TTL_MS: u64 = 300_000;

/// Notifications outside any call a session buffers before a sender has to
/// wait for the transport.
const NOTIFICATION_BUFFER: usize = 64;

/// What every connection of one server shares, read-only.
pub(crate) struct ServerCore {
    pub(crate) instructions: Option<String>,
    pub(crate) registry: Registry,
    pub(crate) state: Arc<StateMap>,
    pub(crate) tools_page_size: usize,
    /// Some tool needs a client capability, so sessions keep what the client declared.
    needs_client_capabilities: bool,
    /// `{"name":…,"version":…}`
    server_info: String,
    /// `,"resultType":"complete","_meta":{…serverInfo…}`: appended to every
    /// stateless result.
    stateless_suffix: String,
    /// The opt-in Godot sink (`godot_log.rs`), set by the builder.
    pub(crate) godot_log: Option<GodotLog>,
}

impl ServerCore {
    pub(crate) fn new(
        name: String,
        version: String,
        instructions: Option<String>,
        registry: Registry,
        state: Arc<StateMap>,
        tools_page_size: usize,
    ) -> ServerCore {
        let mut server_info = String::from(r#"{"name":"#);
        push_json_str(&mut server_info, &name);
        server_info.push_str(r#","version":"#);
        push_json_str(&mut server_info, &version);
        server_info.push('}');
        let stateless_suffix = format!(r#","resultType":"complete","_meta":{{"{META_SERVER_INFO}":{server_info}}}"#);
        let needs_client_capabilities =
            registry.tools().iter().any(|tool| !tool.required_client_capabilities().is_empty());
        ServerCore {
            instructions,
            registry,
            state,
            tools_page_size,
            needs_client_capabilities,
            server_info,
            stateless_suffix,
            godot_log: None,
        }
    }
}

pub(crate) enum Action {
    Nothing,
    Reply(Reply),
    Call(Call),
    /// A notification (no id) that is not valid: JSON-RPC answers nothing,
    /// so WebSocket and stdio send nothing; Streamable HTTP, which must
    /// refuse input it cannot accept with an error status, sends this
    /// error (id null) with 400.
    Invalid(Reply),
}

/// A reply that needed no tool call.
pub(crate) struct Reply {
    pub(crate) text: String,
    /// The JSON-RPC error code when the reply is an error (HTTP maps some to a status).
    pub(crate) error: Option<i32>,
    /// The message had no usable id (unparsable, a batch, a bad id): the
    /// error answers no request, and Streamable HTTP sends it with 400.
    pub(crate) unaddressed: bool,
}

impl Reply {
    fn result(text: String) -> Action {
        Action::Reply(Reply { text, error: None, unaddressed: false })
    }
}

/// The protocol state of one session (a WebSocket connection, a stdio
/// process, a Streamable HTTP session, or one stateless HTTP request).
pub(crate) struct Session {
    core: Arc<ServerCore>,
    /// The version `initialize` settled on; `None` until then.
    negotiated: Option<&'static str>,
    /// Created on the first tool call, so idle connections carry no channel.
    handle: Option<SessionHandle>,
    /// What `initialize` declared (`params.capabilities`), for tools that need some.
    client_capabilities: Option<Box<RawValue>>,
    notifications: Option<mpsc::Receiver<String>>,
    log_level: LogLevel,
    /// Running calls by id, for `notifications/cancelled` and to refuse an
    /// id already in use. An entry lives exactly as long as its call's
    /// future. The context stands in for the token: cloning it is an `Arc`
    /// increment, cloning a `CancellationToken` takes its lock.
    /// Each running call's token, to cancel it. Only the token: the call
    /// itself holds the one runtime reference to its context, so that a
    /// context still held when the call ends is the tool's (see
    /// `RequestContext::call_ended`).
    in_flight: HashMap<RequestId, CancellationToken, FastHash>,
    /// Set at `initialize` for Godot's worker, whose session the Godot sink
    /// must not log (see `godot_log.rs`).
    unlogged: bool,
    /// The Godot sink's record of this session's opening and closing, when
    /// the transport asked for one ([`Session::log_connection`]).
    connection_log: Option<Box<ConnectionLog>>,
}

/// Everything any method reads from `params`, parsed in one pass.
#[derive(Deserialize, Default)]
struct Params<'a> {
    #[serde(default, borrow, rename = "_meta")]
    meta: Option<RequestMeta<'a>>,
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(default, borrow)]
    cursor: Option<&'a RawValue>,
    #[serde(default, borrow)]
    level: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "protocolVersion")]
    protocol_version: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "requestId")]
    request_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    uri: Option<&'a RawValue>,
    #[serde(default, borrow)]
    capabilities: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "clientInfo")]
    client_info: Option<&'a RawValue>,
}

/// What the transport itself says about a message, beside its text.
#[derive(Clone, Copy, Default)]
pub(crate) struct Transported<'a> {
    /// The protocol version the transport declared for this message (the
    /// Streamable HTTP `MCP-Protocol-Version` header); it must agree with a
    /// stateless request's `_meta`.
    pub(crate) declared_version: Option<&'a str>,
    /// The SEP-2243 routing headers, when the transport has headers (HTTP).
    pub(crate) routing: Option<Routing<'a>>,
    /// A Streamable HTTP POST without a session: legacy direct calls (method
    /// = tool name), which old ICCM WebSocket clients send without a
    /// handshake, are refused; HTTP clients initialize or go stateless.
    pub(crate) no_legacy_calls: bool,
}

/// `Mcp-Method` and `Mcp-Name` as sent (already trimmed of surrounding
/// whitespace); a stateless request's must match its body.
#[derive(Clone, Copy, Default)]
pub(crate) struct Routing<'a> {
    pub(crate) method: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
}

#[derive(Clone, Copy)]
enum CallMode {
    /// `tools/call`: an MCP `CallToolResult`; `wrap` when the protocol
    /// version needs a non-object result wrapped (see [`tool::wraps_non_object_results`]);
    /// which log messages reach the client; `unlogged_client` when a
    /// stateless request's `_meta` names Godot's worker (the Godot sink skips it).
    Mcp { stateless: bool, wrap: bool, log_floor: LogFloor, unlogged_client: bool },
    /// Method = tool name: the tool's JSON as `result`, errors as JSON-RPC errors.
    Legacy,
}

impl Session {
    pub(crate) fn new(core: Arc<ServerCore>) -> Session {
        Session {
            core,
            negotiated: None,
            handle: None,
            client_capabilities: None,
            notifications: None,
            log_level: LogLevel::Info,
            in_flight: HashMap::default(),
            unlogged: false,
            connection_log: None,
        }
    }

    /// Notifications outside any call (sent by a context after its call
    /// ended), once a context has outlived its call; the transport writes
    /// them on the session's own stream.
    pub(crate) fn routed_notifications(&mut self) -> Option<&mut mpsc::Receiver<String>> {
        if !self.handle.as_ref().is_some_and(SessionHandle::is_routed) {
            return None;
        }
        self.notifications.as_mut()
    }

    /// The route of the session's own notifications, for a transport that
    /// writes them on a stream of their own (the Streamable HTTP GET
    /// stream). Made now if no call made it yet.
    pub(crate) fn take_notifications(&mut self) -> mpsc::Receiver<String> {
        let _ = self.session_handle();
        self.notifications.take().expect("session_handle() made the route")
    }

    /// The version `initialize` settled on, once it has.
    pub(crate) fn negotiated_version(&self) -> Option<&'static str> {
        self.negotiated
    }

    /// A call ended (answered, cancelled or dropped): its id is free again.
    pub(crate) fn call_finished(&mut self, id: &RequestId) {
        self.in_flight.remove(id);
    }

    /// Fires every in-flight call's token (the connection is going away).
    pub(crate) fn cancel_all(&mut self) {
        for (_, token) in self.in_flight.drain() {
            token.cancel();
        }
    }

    /// The session is over (its connection closed, its HTTP session
    /// deleted or expired): running calls are cancelled and its end logged.
    pub(crate) fn end(&mut self) {
        self.cancel_all();
        self.connection_log = None; // godot_log hook: records the closing
    }

    /// godot_log hook: the transport opened this session (a WebSocket
    /// connection, a stdio session, a Streamable HTTP session) and wants it
    /// logged when the Godot sink is on. The opening is recorded with the
    /// session's first message, unless `initialize` names Godot's worker;
    /// the closing when the session ends or is dropped.
    pub(crate) fn log_connection(&mut self, transport: Transport, peer: Option<SocketAddr>) {
        let Some(log) = &self.core.godot_log else { return };
        if self.unlogged {
            return;
        }
        let mut connection = log.connection(transport, peer);
        if self.negotiated.is_some() {
            // `initialize` came first (Streamable HTTP opens the session with it).
            connection.announce();
        }
        self.connection_log = Some(connection);
    }

    pub(crate) fn handle_text(&mut self, text: &str) -> Action {
        self.handle(text, Transported::default())
    }

    pub(crate) fn handle(&mut self, text: &str, transported: Transported<'_>) -> Action {
        let action = self.route(text, transported);
        // godot_log hook: a session is logged from its first message on,
        // which `initialize` has read by now (Godot's worker: no log left).
        if let Some(connection) = &mut self.connection_log {
            connection.announce();
        }
        action
    }

    fn route(&mut self, text: &str, transported: Transported<'_>) -> Action {
        // serde would read an array positionally into the struct; only an
        // object is a request.
        if text.trim_start().as_bytes().first() != Some(&b'{') {
            return unparsable(text, None);
        }
        let envelope: Envelope<'_> = match serde_json::from_str(text) {
            Ok(envelope) => envelope,
            Err(e) => return unparsable(text, Some(&e)),
        };
        let id_raw = envelope.id.map(RawValue::get);
        let id = match envelope.id {
            None => None,
            Some(raw) => match protocol::parse_request_id(raw) {
                Some(id) => Some(id),
                None => {
                    return reply_error(
                        None,
                        error_code::INVALID_REQUEST,
                        &format!("invalid request: `id` must be a string or an integer, got {}", raw.get()),
                    );
                }
            },
        };
        if envelope.jsonrpc.map(RawValue::get) != Some(r#""2.0""#) {
            let message = match envelope.jsonrpc {
                None => "invalid request: missing `\"jsonrpc\": \"2.0\"`".to_owned(),
                Some(v) => format!("invalid request: `jsonrpc` must be \"2.0\", got {}", v.get()),
            };
            return self.reject(id_raw, error_code::INVALID_REQUEST, &message);
        }
        let Some(method_raw) = envelope.method else {
            if envelope.result.is_some() || envelope.error.is_some() {
                // A response; this server never sends requests, so nothing waits for it.
                tracing::debug!(id = id_raw.unwrap_or("null"), "ignoring a JSON-RPC response from the client");
                return Action::Nothing;
            }
            return self.reject(id_raw, error_code::INVALID_REQUEST, "invalid request: missing `method`");
        };
        let Some(method) = json_str(method_raw) else {
            let message = format!("invalid request: `method` must be a string, got {}", method_raw.get());
            return self.reject(id_raw, error_code::INVALID_REQUEST, &message);
        };
        let params_raw = envelope.params.filter(|p| p.get() != "null");
        if let Some(p) = params_raw {
            match p.get().as_bytes().first() {
                Some(b'{') => {}
                Some(b'[') => {
                    return self.reject(
                        id_raw,
                        error_code::INVALID_PARAMS,
                        "invalid params: MCP takes named parameters; `params` must be an object, not an array",
                    );
                }
                _ => {
                    let message = format!("invalid request: `params` must be an object (or left out), got {}", p.get());
                    return self.reject(id_raw, error_code::INVALID_REQUEST, &message);
                }
            }
        }
        match (id_raw, id) {
            (Some(id_raw), Some(id)) => self.request(id_raw, id, &method, params_raw, transported),
            _ => {
                self.notification(&method, params_raw);
                Action::Nothing
            }
        }
    }

    /// An error for a request, silence for a notification (JSON-RPC never
    /// answers notifications, even broken ones).
    fn reject(&self, id_raw: Option<&str>, code: i32, message: &str) -> Action {
        match id_raw {
            Some(id) => reply_error(Some(id), code, message),
            None => {
                tracing::debug!(code, message, "dropping an invalid notification");
                let text = protocol::error_response(None, code, message, None);
                Action::Invalid(Reply { text, error: Some(code), unaddressed: true })
            }
        }
    }

    fn notification(&mut self, method: &str, params: Option<&RawValue>) {
        match method {
            "notifications/initialized" => {}
            "notifications/cancelled" => {
                let params: Params<'_> = params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_default();
                let Some(id) = params.request_id.and_then(protocol::parse_request_id) else {
                    tracing::debug!("notifications/cancelled without a usable requestId");
                    return;
                };
                // Unknown ids are normal: the call may have finished already.
                // The entry stays until the call's future ends (at its next
                // poll), so the id is not reusable before then.
                if let Some(token) = self.in_flight.get(&id) {
                    tracing::debug!(request = %id, "request cancelled by the client");
                    token.cancel();
                }
            }
            other => tracing::debug!(method = other, "ignoring notification"),
        }
    }

    fn request(
        &mut self,
        id_raw: &str,
        id: RequestId,
        method: &str,
        params_raw: Option<&RawValue>,
        transported: Transported<'_>,
    ) -> Action {
        if self.in_flight.contains_key(&id) {
            // Two answers with one id: the client could not tell them apart,
            // nor cancel the first call.
            let message = format!(
                "invalid request: request id {id_raw} is already in use by a call in flight; \
                 use a new id for each request"
            );
            return reply_error(Some(id_raw), error_code::INVALID_REQUEST, &message);
        }
        let is_protocol_method = matches!(
            method,
            "initialize" | "ping" | "tools/list" | "tools/call" | "logging/setLevel" | "server/discover"
        );
        // Tool calls get their span in `start_call`, around the running call.
        let _span = (is_protocol_method && method != "tools/call")
            .then(|| tracing::debug_span!("request", id = %id, method).entered());
        if !is_protocol_method {
            let Some(tool) = self.core.registry.get(method) else {
                let message = format!("method not found: `{method}`");
                return reply_error(Some(id_raw), error_code::METHOD_NOT_FOUND, &message);
            };
            if transported.no_legacy_calls && self.negotiated.is_none() {
                let message = format!(
                    "invalid request: calling the tool `{method}` by its name needs a session over HTTP: send \
                     `initialize` (without Mcp-Session-Id) first and then `tools/call` with the Mcp-Session-Id \
                     it returned, or send a stateless `tools/call` with the protocol version in \
                     `params._meta[\"{META_PROTOCOL_VERSION}\"]` ({})",
                    STATELESS_VERSIONS[0]
                );
                return reply_error(Some(id_raw), error_code::INVALID_REQUEST, &message);
            }
            let tool = tool.clone();
            return self.start_call(id_raw, id, tool, params_raw, None, CallMode::Legacy);
        }
        let params: Params<'_> = match params_raw.map(|p| serde_json::from_str(p.get())) {
            None => Params::default(),
            Some(Ok(params)) => params,
            Some(Err(e)) => {
                let message = format!("invalid params for `{method}`: {}", strip_position(&e.to_string()));
                return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
            }
        };
        let meta = params.meta.as_ref();
        let declared_stateless = transported.declared_version.filter(|v| STATELESS_VERSIONS.contains(v));
        let stateless = match meta.and_then(|m| m.protocol_version) {
            None => {
                if let Some(declared) = transported.declared_version
                    && !SESSION_VERSIONS.contains(&declared)
                    && !STATELESS_VERSIONS.contains(&declared)
                {
                    return unsupported_version(id_raw, declared);
                }
                if let Some(declared) = declared_stateless {
                    let message = format!(
                        "invalid params: a {declared} request must carry `_meta[\"{META_PROTOCOL_VERSION}\"]` \
                         (\"{declared}\") and `_meta[\"{META_CLIENT_CAPABILITIES}\"]` in its params"
                    );
                    return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                }
                false
            }
            Some(raw) => {
                let Some(version) = json_str(raw) else {
                    let message = format!("invalid params: `_meta[\"{META_PROTOCOL_VERSION}\"]` must be a string");
                    return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                };
                if let Some(declared) = transported.declared_version
                    && declared != version
                {
                    let message = format!(
                        "header mismatch: the MCP-Protocol-Version header says {declared:?} but \
                         `_meta[\"{META_PROTOCOL_VERSION}\"]` says {version:?}; send the same version in both"
                    );
                    return reply_error(Some(id_raw), error_code::HEADER_MISMATCH, &message);
                }
                if !STATELESS_VERSIONS.contains(&&*version) {
                    return unsupported_version(id_raw, &version);
                }
                let has_capabilities =
                    meta.and_then(|m| m.client_capabilities).is_some_and(|c| c.get().as_bytes().first() == Some(&b'{'));
                if !has_capabilities {
                    let message = format!(
                        "invalid params: a {version} request must carry `_meta[\"{META_CLIENT_CAPABILITIES}\"]` \
                         (an object; `{{}}` when the client has none) next to `_meta[\"{META_PROTOCOL_VERSION}\"]`"
                    );
                    return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                }
                if let Some(routing) = transported.routing
                    && let Err(message) = check_routing(routing, method, &params)
                {
                    return reply_error(Some(id_raw), error_code::HEADER_MISMATCH, &message);
                }
                true
            }
        };
        let log_floor = if stateless {
            match meta.and_then(|m| m.log_level) {
                None => LogFloor::Request(None),
                Some(raw) => match serde_json::from_str::<LogLevel>(raw.get()) {
                    Ok(level) => LogFloor::Request(Some(level)),
                    Err(_) => {
                        let message = format!(
                            "invalid params: `_meta[\"{META_LOG_LEVEL}\"]` must be one of \"debug\", \"info\", \
                             \"notice\", \"warning\", \"error\", \"critical\", \"alert\", \"emergency\"; got {}",
                            raw.get()
                        );
                        return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                    }
                },
            }
        } else {
            LogFloor::Session
        };
        match method {
            "server/discover" => Reply::result(protocol::result_response(id_raw, &self.discover_result())),
            "initialize" | "ping" | "logging/setLevel" if stateless => {
                let message = format!(
                    "method not found: `{method}` does not exist in protocol version {}",
                    STATELESS_VERSIONS[0]
                );
                reply_error(Some(id_raw), error_code::METHOD_NOT_FOUND, &message)
            }
            "initialize" => self.initialize(id_raw, &params),
            "ping" => Reply::result(protocol::result_response(id_raw, "{}")),
            _ if !stateless && self.negotiated.is_none() => {
                let message = format!(
                    "invalid request: `{method}` before `initialize`; send `initialize` first (protocol versions \
                     up to {LATEST_SESSION_VERSION}), or put the protocol version in \
                     `params._meta[\"{META_PROTOCOL_VERSION}\"]` ({})",
                    STATELESS_VERSIONS[0]
                );
                reply_error(Some(id_raw), error_code::INVALID_REQUEST, &message)
            }
            "logging/setLevel" => self.set_level(id_raw, &params),
            "tools/list" => self.list_tools(id_raw, &params, stateless, self.version(stateless)),
            "tools/call" => {
                let Some(name) = params.name.and_then(json_str) else {
                    return reply_error(
                        Some(id_raw),
                        error_code::INVALID_PARAMS,
                        "invalid params: tools/call needs `params.name`, the tool's name (a string)",
                    );
                };
                let Some(tool) = self.core.registry.get(&name) else {
                    let message =
                        format!("unknown tool `{name}`: this server has no tool by that name (see tools/list)");
                    return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                };
                let tool = tool.clone();
                let declared = if stateless {
                    meta.and_then(|m| m.client_capabilities)
                } else {
                    self.client_capabilities.as_deref()
                };
                if let Some(missing) = missing_capabilities(id_raw, &tool, declared) {
                    return missing;
                }
                let arguments = params.arguments.filter(|a| a.get() != "null");
                if arguments.is_some_and(|a| a.get().as_bytes().first() != Some(&b'{')) {
                    return reply_error(
                        Some(id_raw),
                        error_code::INVALID_PARAMS,
                        "invalid params: `params.arguments` must be an object of the tool's parameters",
                    );
                }
                let progress = meta.and_then(|m| m.progress_token);
                if progress.is_some_and(|token| !protocol::is_progress_token(token)) {
                    return reply_error(
                        Some(id_raw),
                        error_code::INVALID_PARAMS,
                        "invalid params: `_meta.progressToken` must be a string or a number",
                    );
                }
                let wrap = tool::wraps_non_object_results(self.version(stateless));
                // godot_log hook: a stateless request names its client in its own `_meta`.
                let unlogged_client = stateless
                    && self.core.godot_log.is_some()
                    && godot_log::is_unlogged_client(meta.and_then(|m| m.client_info));
                let mode = CallMode::Mcp { stateless, wrap, log_floor, unlogged_client };
                self.start_call(id_raw, id, tool, arguments, progress, mode)
            }
            _ => unreachable!("every protocol method is matched above"),
        }
    }

    /// The protocol version a request is served under: the stateless
    /// revision for a request carrying it, else the session's.
    fn version(&self, stateless: bool) -> &'static str {
        match stateless {
            true => STATELESS_VERSIONS[0],
            false => self.negotiated.unwrap_or(LATEST_SESSION_VERSION),
        }
    }

    fn initialize(&mut self, id_raw: &str, params: &Params<'_>) -> Action {
        if let Some(version) = self.negotiated {
            let message = format!(
                "invalid request: this connection is already initialized (protocol version {version}); \
                 open a new connection to start another session"
            );
            return reply_error(Some(id_raw), error_code::INVALID_REQUEST, &message);
        }
        let Some(requested) = params.protocol_version.and_then(json_str) else {
            return reply_error(
                Some(id_raw),
                error_code::INVALID_PARAMS,
                "invalid params: initialize needs `params.protocolVersion`, a string such as \"2025-06-18\"",
            );
        };
        let version = SESSION_VERSIONS.iter().copied().find(|v| *v == requested).unwrap_or(LATEST_SESSION_VERSION);
        self.negotiated = Some(version);
        // Kept only where a tool will ask (most servers have none that do).
        if self.core.needs_client_capabilities {
            self.client_capabilities = params.capabilities.filter(|c| c.get().starts_with('{')).map(RawValue::to_owned);
        }
        // godot_log hook: Godot's worker is never logged, not even its connection.
        if self.core.godot_log.is_some() && godot_log::is_unlogged_client(params.client_info) {
            self.unlogged = true;
            self.connection_log = None;
        }
        tracing::debug!(requested = %requested, version, "session initialized");
        let mut result = String::with_capacity(256);
        result.push_str(r#"{"protocolVersion":""#);
        result.push_str(version);
        result.push_str(r#"","capabilities":{"tools":{"listChanged":false},"logging":{}},"serverInfo":"#);
        result.push_str(&self.core.server_info);
        if let Some(instructions) = &self.core.instructions {
            result.push_str(r#","instructions":"#);
            push_json_str(&mut result, instructions);
        }
        result.push('}');
        Reply::result(protocol::result_response(id_raw, &result))
    }

    fn discover_result(&self) -> String {
        let mut result = String::with_capacity(256);
        result.push_str(r#"{"supportedVersions":["#);
        for (i, v) in STATELESS_VERSIONS.iter().enumerate() {
            if i > 0 {
                result.push(',');
            }
            push_json_str(&mut result, v);
        }
        result.push_str(r#"],"capabilities":{"tools":{"listChanged":false}},"serverInfo":"#);
        result.push_str(&self.core.server_info);
        if let Some(instructions) = &self.core.instructions {
            result.push_str(r#","instructions":"#);
            push_json_str(&mut result, instructions);
        }
        result.push_str(&format!(r#","ttlMs":{LIST_TTL_MS},"cacheScope":"public""#));
        result.push_str(&self.core.stateless_suffix);
        result.push('}');
        result
    }

    fn set_level(&mut self, id_raw: &str, params: &Params<'_>) -> Action {
        let level = params.level.and_then(|raw| serde_json::from_str::<LogLevel>(raw.get()).ok());
        let Some(level) = level else {
            let got = params.level.map_or("nothing", |l| l.get());
            let message = format!(
                "invalid params: `params.level` must be one of \"debug\", \"info\", \"notice\", \"warning\", \
                 \"error\", \"critical\", \"alert\", \"emergency\"; got {got}"
            );
            return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
        };
        self.log_level = level;
        if let Some(handle) = &self.handle {
            handle.set_min_log_level(level);
        }
        Reply::result(protocol::result_response(id_raw, "{}"))
    }

    fn list_tools(&self, id_raw: &str, params: &Params<'_>, stateless: bool, version: &str) -> Action {
        let registry = &self.core.registry;
        let page_size = self.core.tools_page_size;
        let offset = match params.cursor.filter(|c| c.get() != "null") {
            None => 0,
            Some(raw) => {
                let decoded = json_str(raw).and_then(|c| registry::decode_cursor(&c, page_size, registry.len()));
                let Some(offset) = decoded else {
                    let message = format!(
                        "invalid params: `params.cursor` {} is not a cursor this server issued; \
                         start again without a cursor",
                        raw.get()
                    );
                    return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                };
                offset
            }
        };
        let listing = if tool::wraps_non_object_results(version) { Listing::Objects } else { Listing::AnyJson };
        let tools = registry.list_json(offset, page_size, listing);
        let mut result = String::with_capacity(tools.len() + 200);
        result.push_str(r#"{"tools":"#);
        result.push_str(&tools);
        if offset + page_size < registry.len() {
            result.push_str(r#","nextCursor":"#);
            push_json_str(&mut result, &registry::encode_cursor(offset + page_size));
        }
        if stateless {
            result.push_str(&format!(r#","ttlMs":{LIST_TTL_MS},"cacheScope":"public""#));
            result.push_str(&self.core.stateless_suffix);
        }
        result.push('}');
        Reply::result(protocol::result_response(id_raw, &result))
    }

    fn session_handle(&mut self) -> SessionHandle {
        if let Some(handle) = &self.handle {
            return handle.clone();
        }
        let (tx, rx) = mpsc::channel(NOTIFICATION_BUFFER);
        let handle = SessionHandle::new(tx);
        handle.set_min_log_level(self.log_level);
        self.notifications = Some(rx);
        self.handle = Some(handle.clone());
        handle
    }

    fn start_call(
        &mut self,
        id_raw: &str,
        id: RequestId,
        tool: Arc<Tool>,
        arguments: Option<&RawValue>,
        progress: Option<&RawValue>,
        mode: CallMode,
    ) -> Action {
        let log_floor = match mode {
            CallMode::Mcp { log_floor, .. } => log_floor,
            CallMode::Legacy => LogFloor::Session,
        };
        let context = RequestContext::for_call(
            id.clone(),
            progress.map(RawValue::to_owned),
            CancellationToken::new(),
            self.session_handle(),
            log_floor,
        );
        let watch = context.clone();
        self.in_flight.insert(id.clone(), context.cancellation_token().clone());
        let call = ToolCall::new(arguments.map(RawValue::to_owned), context.clone(), self.core.state.clone());
        let id_raw: Box<str> = id_raw.into();
        // Only stateless results need the server (for their `_meta`).
        let stateless_core = matches!(mode, CallMode::Mcp { stateless: true, .. }).then(|| self.core.clone());
        let method = match mode {
            CallMode::Mcp { .. } => "tools/call",
            CallMode::Legacy => tool.name(),
        };
        let span = tracing::debug_span!("request", id = %id, method, tool = tool.name());
        let call_id = id.clone();
        // godot_log hook: times the call when the Godot sink is on.
        let unlogged = match mode {
            CallMode::Mcp { stateless: true, unlogged_client, .. } => unlogged_client,
            _ => self.unlogged,
        };
        let call_log = self.core.godot_log.as_ref().filter(|_| !unlogged).map(|log| log.call(tool.name()));
        let future: CallFuture = Box::pin(
            async move {
                // Cancellation wins whenever it has happened, so a cancelled
                // tool is never polled again. The waiter on the token is only
                // registered once the tool is pending: a tool that finishes
                // on its first poll never touches the token's lock.
                let mut work = pin!(run_tool(&tool, call));
                let mut cancelled = pin!(watch.cancelled());
                let outcome = poll_fn(|cx| {
                    if watch.is_cancelled() {
                        return Poll::Ready(None);
                    }
                    if let Poll::Ready(outcome) = work.as_mut().poll(cx) {
                        return Poll::Ready(Some(outcome));
                    }
                    cancelled.as_mut().poll(cx).map(|()| None)
                })
                .await;
                if let Some(call_log) = call_log {
                    call_log.finish(outcome.as_ref()); // godot_log hook
                }
                outcome.map(|outcome| match mode {
                    CallMode::Mcp { wrap, .. } => mcp_result(&id_raw, &tool, outcome, stateless_core.as_deref(), wrap),
                    CallMode::Legacy => legacy_result(&id_raw, &tool, outcome),
                })
            }
            .instrument(span),
        );
        Action::Call(Call::new(call_id, context, future))
    }
}

/// Runs the tool; a panic, whether building the future or polling it,
/// becomes [`CallError::Panicked`] so the connection and other calls go on.
async fn run_tool(tool: &Tool, call: ToolCall) -> Result<ToolOutput, CallError> {
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| tool.call(call))) {
        Ok(future) => future,
        Err(payload) => return Err(panicked(tool, payload)),
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => Err(panicked(tool, payload)),
    }
}

fn panicked(tool: &Tool, payload: Box<dyn std::any::Any + Send>) -> CallError {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    };
    tracing::error!(tool = tool.name(), panic = %text, "tool panicked; the call gets an error result");
    CallError::Panicked(format!("the tool panicked: {text}"))
}

/// A `tools/call` response; [`tool::write_call_result`] shapes the result.
fn mcp_result(
    id_raw: &str,
    tool: &Tool,
    outcome: Result<ToolOutput, CallError>,
    stateless: Option<&ServerCore>,
    wrap: bool,
) -> String {
    const HEAD: &str = r#"{"jsonrpc":"2.0","id":"#;
    const RESULT: &str = r#","result":"#;
    if let Err(e) = &outcome {
        log_call_error(tool, e);
    }
    let suffix = stateless.map_or("", |core| &core.stateless_suffix);
    let mut measure = Measure::default();
    tool::write_call_result(&mut measure, tool, &outcome, wrap);
    // Exact, so the frame takes the buffer as is (see `protocol::result_response`).
    let capacity = HEAD.len() + id_raw.len() + RESULT.len() + measure.0 + suffix.len() + 2;
    let mut out = String::with_capacity(capacity);
    out.push_str(HEAD);
    out.push_str(id_raw);
    out.push_str(RESULT);
    tool::write_call_result(&mut out, tool, &outcome, wrap);
    out.push_str(suffix);
    out.push_str("}}");
    debug_assert_eq!(out.len(), capacity, "response sizing is off: {out}");
    out
}

/// The Python Dewey's direct-call shape: the tool's JSON is the result.
fn legacy_result(id_raw: &str, tool: &Tool, outcome: Result<ToolOutput, CallError>) -> String {
    match outcome {
        Ok(output) => protocol::result_response(id_raw, &tool::legacy_result_json(tool, &output)),
        Err(e) => {
            log_call_error(tool, &e);
            let code = match e {
                CallError::InvalidArguments(_) => error_code::INVALID_PARAMS,
                CallError::Tool(_) => error_code::TOOL_ERROR,
                CallError::Panicked(_) | CallError::Internal(_) => error_code::INTERNAL_ERROR,
            };
            protocol::error_response(Some(id_raw), code, e.message(), None)
        }
    }
}

fn log_call_error(tool: &Tool, e: &CallError) {
    match e {
        CallError::InvalidArguments(m) => tracing::debug!(tool = tool.name(), error = %m, "invalid arguments"),
        CallError::Tool(m) => tracing::debug!(tool = tool.name(), error = %m, "tool returned an error"),
        CallError::Internal(m) => tracing::warn!(tool = tool.name(), error = %m, "tool call failed inside the server"),
        // Already logged with the payload where it was caught.
        CallError::Panicked(_) => {}
    }
}

/// SEP-2243: a stateless HTTP request names its method (and, for a call,
/// the tool, prompt or resource) in headers too, so intermediaries can route
/// it without reading the body; the two must agree.
fn check_routing(routing: Routing<'_>, method: &str, params: &Params<'_>) -> Result<(), String> {
    match routing.method {
        None => {
            return Err(format!(
                "header mismatch: a stateless request over HTTP needs the Mcp-Method header ({method:?})"
            ));
        }
        Some(header) if header != method => {
            return Err(format!(
                "header mismatch: the Mcp-Method header says {header:?} but the body's method is {method:?}"
            ));
        }
        Some(_) => {}
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.name,
        "resources/read" => params.uri,
        _ => None,
    };
    let Some(name) = named.and_then(json_str) else { return Ok(()) };
    match routing.name {
        None => Err(format!("header mismatch: a stateless {method} over HTTP needs the Mcp-Name header ({name:?})")),
        Some(header) if header != name => {
            Err(format!("header mismatch: the Mcp-Name header says {header:?} but the body names {name:?}"))
        }
        Some(_) => Ok(()),
    }
}

/// -32021 when `tool` needs a client capability `declared` (a
/// `ClientCapabilities` object) lacks.
fn missing_capabilities(id_raw: &str, tool: &Tool, declared: Option<&RawValue>) -> Option<Action> {
    let needed = tool.required_client_capabilities();
    if needed.is_empty() {
        return None;
    }
    let declared: HashMap<&str, serde::de::IgnoredAny> =
        declared.and_then(|d| serde_json::from_str(d.get()).ok()).unwrap_or_default();
    let missing: Vec<&str> = needed.iter().copied().filter(|c| !declared.contains_key(c)).collect();
    if missing.is_empty() {
        return None;
    }
    let mut data = String::from(r#"{"requiredCapabilities":{"#);
    for (i, capability) in missing.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        push_json_str(&mut data, capability);
        data.push_str(":{}");
    }
    data.push_str("}}");
    let message = format!(
        "missing client capability: the tool `{}` needs {}, which this client did not declare",
        tool.name(),
        missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" and ")
    );
    let code = error_code::MISSING_CLIENT_CAPABILITY;
    let text = protocol::error_response(Some(id_raw), code, &message, Some(&data));
    Some(Action::Reply(Reply { text, error: Some(code), unaddressed: false }))
}

fn reply_error(id_raw: Option<&str>, code: i32, message: &str) -> Action {
    let text = protocol::error_response(id_raw, code, message, None);
    Action::Reply(Reply { text, error: Some(code), unaddressed: id_raw.is_none() })
}

fn unsupported_version(id_raw: &str, requested: &str) -> Action {
    let mut data = String::from(r#"{"supported":["#);
    for (i, v) in STATELESS_VERSIONS.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        push_json_str(&mut data, v);
    }
    data.push_str(r#"],"requested":"#);
    push_json_str(&mut data, requested);
    data.push('}');
    let message = format!(
        "unsupported protocol version {requested:?}: requests carrying a version in _meta are served for {}; \
         versions {} to {LATEST_SESSION_VERSION} use `initialize`",
        STATELESS_VERSIONS.join(", "),
        SESSION_VERSIONS[0],
    );
    let code = error_code::UNSUPPORTED_PROTOCOL_VERSION;
    Action::Reply(Reply {
        text: protocol::error_response(Some(id_raw), code, &message, Some(&data)),
        error: Some(code),
        unaddressed: false,
    })
}

/// -32700 for text that is not JSON; -32600 for JSON that is not a single
/// request object (including batches, see the module docs). `e` is the
/// error from reading an object as a request, if that was tried.
fn unparsable(text: &str, e: Option<&serde_json::Error>) -> Action {
    if let Err(syntax) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let message = format!("parse error: the message is not valid JSON ({})", strip_position(&syntax.to_string()));
        return reply_error(None, error_code::PARSE_ERROR, &message);
    }
    let message = match e {
        Some(e) => format!("invalid request: {}", strip_position(&e.to_string())),
        None if text.trim_start().starts_with('[') => "invalid request: JSON-RPC batches are not supported (MCP \
             2025-06-18 removed them); send one request per message"
            .to_owned(),
        None => "invalid request: a JSON-RPC message must be a JSON object".to_owned(),
    };
    reply_error(None, error_code::INVALID_REQUEST, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let registry = Registry::build(Vec::new(), None).expect("empty registry");
        let core = ServerCore::new("t".into(), "1".into(), None, registry, Arc::new(StateMap::default()), 10);
        Session::new(Arc::new(core))
    }

    fn reply(session: &mut Session, text: &str) -> serde_json::Value {
        match session.handle_text(text) {
            Action::Reply(reply) => serde_json::from_str(&reply.text).expect("replies are JSON"),
            Action::Nothing | Action::Invalid(_) => panic!("no reply to {text}"),
            Action::Call(_) => panic!("a call for {text}"),
        }
    }

    #[test]
    fn error_messages_are_escaped_json() {
        let mut session = session();
        let response = reply(&mut session, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\\"b\\n\\u0001\"}");
        assert_eq!(response["error"]["code"], -32601);
        assert_eq!(response["error"]["message"], "method not found: `a\"b\n\u{1}`");
    }

    #[test]
    fn ids_are_echoed_raw() {
        let mut session = session();
        let response = session.handle_text(r#"{"jsonrpc":"2.0","id":"x\"y","method":"ping"}"#);
        let Action::Reply(reply) = response else { panic!("no reply") };
        assert_eq!(reply.text, r#"{"jsonrpc":"2.0","id":"x\"y","result":{}}"#);
    }

    #[test]
    fn escaped_lengths_match_what_is_written() {
        for s in ["", "plain", "q\"uote", "back\\slash", "nl\n\r\t", "\u{1}\u{1f}", "ünï\u{7f}"] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(protocol::json_str_len(s), out.len(), "{s:?}");
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }

    #[test]
    fn notifications_get_nothing() {
        let mut session = session();
        assert!(matches!(session.handle_text(r#"{"jsonrpc":"2.0","method":"ping"}"#), Action::Nothing));
    }
}
