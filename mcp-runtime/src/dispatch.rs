//! JSON-RPC message routing and the MCP session lifecycle of one connection.
//!
//! [`Session::handle_text`] turns one incoming text frame into an [`Action`]:
//! nothing (notifications), an immediate reply, or a tool call future that
//! the connection runs alongside its other calls. The transport owns the
//! socket; this module never touches it, so it is plain synchronous code.
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
//!   also carry `clientCapabilities` (except on `server/discover`).

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::context::{RequestContext, SessionHandle};
use crate::extract::StateMap;
use crate::godot_log::GodotLog;
use crate::protocol::{
    self, Envelope, LATEST_SESSION_VERSION, LogLevel, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION,
    META_SERVER_INFO, RequestId, RequestMeta, SESSION_VERSIONS, STATELESS_VERSIONS, error_code, json_str,
    push_json_str, strip_position,
};
use crate::registry::{self, FastHash, Listing, Registry};
use crate::tool::{self, CallError, Measure, Tool, ToolCall, ToolOutput};

/// How long a stateless client may cache `tools/list` and `server/discover`:
/// the tool set is fixed for the life of the process.
const LIST_TTL_MS: u64 = 300_000;

/// Progress and log notifications a connection buffers before a tool that
/// sends them has to wait for the socket.
const NOTIFICATION_BUFFER: usize = 64;

/// What every connection of one server shares, read-only.
pub(crate) struct ServerCore {
    pub(crate) instructions: Option<String>,
    pub(crate) registry: Registry,
    pub(crate) state: Arc<StateMap>,
    pub(crate) tools_page_size: usize,
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
        ServerCore { instructions, registry, state, tools_page_size, server_info, stateless_suffix, godot_log: None }
    }
}

/// A running tool call, as the connection polls it.
pub(crate) type CallFuture = Pin<Box<dyn Future<Output = CallDone> + Send>>;

pub(crate) struct CallDone {
    pub(crate) id: RequestId,
    /// `None` when the call was cancelled: cancelled calls get no response.
    pub(crate) response: Option<String>,
}

pub(crate) enum Action {
    Nothing,
    Reply(String),
    Call(CallFuture),
}

/// The per-connection protocol state.
pub(crate) struct Session {
    core: Arc<ServerCore>,
    /// The version `initialize` settled on; `None` until then.
    negotiated: Option<&'static str>,
    /// Created on the first tool call, so idle connections carry no channel.
    handle: Option<SessionHandle>,
    notifications: Option<mpsc::Receiver<String>>,
    log_level: LogLevel,
    /// Running calls by id, for `notifications/cancelled` and to refuse an
    /// id already in use. An entry lives exactly as long as its call's
    /// future. The context stands in for the token: cloning it is an `Arc`
    /// increment, cloning a `CancellationToken` takes its lock.
    in_flight: HashMap<RequestId, RequestContext, FastHash>,
    /// Set at `initialize` for Godot's worker, whose calls the Godot sink
    /// must not log (see `godot_log.rs`).
    unlogged: bool,
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
    #[serde(default, borrow, rename = "clientInfo")]
    client_info: Option<&'a RawValue>,
}

enum CallMode {
    /// `tools/call`: an MCP `CallToolResult`; `wrap` when the protocol
    /// version needs a non-object result wrapped (see [`tool::wraps_non_object_results`]).
    Mcp { stateless: bool, wrap: bool },
    /// Method = tool name: the tool's JSON as `result`, errors as JSON-RPC errors.
    Legacy,
}

impl Session {
    pub(crate) fn new(core: Arc<ServerCore>) -> Session {
        Session {
            core,
            negotiated: None,
            handle: None,
            notifications: None,
            log_level: LogLevel::Info,
            in_flight: HashMap::default(),
            unlogged: false,
        }
    }

    /// Notifications tools sent while running; the connection writes them.
    pub(crate) fn notifications(&mut self) -> Option<&mut mpsc::Receiver<String>> {
        self.notifications.as_mut()
    }

    pub(crate) fn call_finished(&mut self, done: &CallDone) {
        self.in_flight.remove(&done.id);
    }

    /// Fires every in-flight call's token (the connection is going away).
    pub(crate) fn cancel_all(&mut self) {
        for (_, call) in self.in_flight.drain() {
            call.cancellation_token().cancel();
        }
    }

    pub(crate) fn handle_text(&mut self, text: &str) -> Action {
        // serde would read an array positionally into the struct; only an
        // object is a request.
        if text.trim_start().as_bytes().first() != Some(&b'{') {
            return Action::Reply(unparsable(text, None));
        }
        let envelope: Envelope<'_> = match serde_json::from_str(text) {
            Ok(envelope) => envelope,
            Err(e) => return Action::Reply(unparsable(text, Some(&e))),
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
            (Some(id_raw), Some(id)) => self.request(id_raw, id, &method, params_raw),
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
                Action::Nothing
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
                if let Some(call) = self.in_flight.get(&id) {
                    tracing::debug!(request = %id, "request cancelled by the client");
                    call.cancellation_token().cancel();
                }
            }
            other => tracing::debug!(method = other, "ignoring notification"),
        }
    }

    fn request(&mut self, id_raw: &str, id: RequestId, method: &str, params_raw: Option<&RawValue>) -> Action {
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
        let stateless = match meta.and_then(|m| m.protocol_version) {
            None => false,
            Some(raw) => {
                let Some(version) = json_str(raw) else {
                    let message = format!("invalid params: `_meta[\"{META_PROTOCOL_VERSION}\"]` must be a string");
                    return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                };
                if !STATELESS_VERSIONS.contains(&&*version) {
                    return unsupported_version(id_raw, &version);
                }
                let has_capabilities =
                    meta.and_then(|m| m.client_capabilities).is_some_and(|c| c.get().as_bytes().first() == Some(&b'{'));
                if method != "server/discover" && !has_capabilities {
                    let message = format!(
                        "invalid params: a {version} request must carry `_meta[\"{META_CLIENT_CAPABILITIES}\"]` \
                         (an object; `{{}}` when the client has none) next to `_meta[\"{META_PROTOCOL_VERSION}\"]`"
                    );
                    return reply_error(Some(id_raw), error_code::INVALID_PARAMS, &message);
                }
                true
            }
        };
        match method {
            "server/discover" => Action::Reply(protocol::result_response(id_raw, &self.discover_result())),
            "initialize" | "ping" | "logging/setLevel" if stateless => {
                let message = format!(
                    "method not found: `{method}` does not exist in protocol version {}",
                    STATELESS_VERSIONS[0]
                );
                reply_error(Some(id_raw), error_code::METHOD_NOT_FOUND, &message)
            }
            "initialize" => self.initialize(id_raw, &params),
            "ping" => Action::Reply(protocol::result_response(id_raw, "{}")),
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
                self.start_call(id_raw, id, tool, arguments, progress, CallMode::Mcp { stateless, wrap })
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
        self.unlogged = crate::godot_log::is_unlogged_client(params.client_info); // godot_log hook
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
        Action::Reply(protocol::result_response(id_raw, &result))
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
        Action::Reply(protocol::result_response(id_raw, "{}"))
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
        Action::Reply(protocol::result_response(id_raw, &result))
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
        let context = RequestContext::new(
            id.clone(),
            progress.map(RawValue::to_owned),
            CancellationToken::new(),
            self.session_handle(),
        );
        let watch = context.clone();
        self.in_flight.insert(id.clone(), context.clone());
        let call = ToolCall::new(arguments.map(RawValue::to_owned), context, self.core.state.clone());
        let id_raw: Box<str> = id_raw.into();
        // Only stateless results need the server (for their `_meta`).
        let stateless_core = matches!(mode, CallMode::Mcp { stateless: true, .. }).then(|| self.core.clone());
        let method = match mode {
            CallMode::Mcp { .. } => "tools/call",
            CallMode::Legacy => tool.name(),
        };
        let span = tracing::debug_span!("request", id = %id, method, tool = tool.name());
        // godot_log hook: times the call when the Godot sink is on.
        let call_log = self.core.godot_log.as_ref().filter(|_| !self.unlogged).map(|log| log.call(tool.name()));
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
                let response = outcome.map(|outcome| match mode {
                    CallMode::Mcp { wrap, .. } => mcp_result(&id_raw, &tool, outcome, stateless_core.as_deref(), wrap),
                    CallMode::Legacy => legacy_result(&id_raw, &tool, outcome),
                });
                CallDone { id, response }
            }
            .instrument(span),
        );
        Action::Call(future)
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

fn reply_error(id_raw: Option<&str>, code: i32, message: &str) -> Action {
    Action::Reply(protocol::error_response(id_raw, code, message, None))
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
    Action::Reply(protocol::error_response(
        Some(id_raw),
        error_code::UNSUPPORTED_PROTOCOL_VERSION,
        &message,
        Some(&data),
    ))
}

/// -32700 for text that is not JSON; -32600 for JSON that is not a single
/// request object (including batches, see the module docs). `e` is the
/// error from reading an object as a request, if that was tried.
fn unparsable(text: &str, e: Option<&serde_json::Error>) -> String {
    if let Err(syntax) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let message = format!("parse error: the message is not valid JSON ({})", strip_position(&syntax.to_string()));
        return protocol::error_response(None, error_code::PARSE_ERROR, &message, None);
    }
    let message = match e {
        Some(e) => format!("invalid request: {}", strip_position(&e.to_string())),
        None if text.trim_start().starts_with('[') => "invalid request: JSON-RPC batches are not supported (MCP \
             2025-06-18 removed them); send one request per WebSocket message"
            .to_owned(),
        None => "invalid request: a JSON-RPC message must be a JSON object".to_owned(),
    };
    protocol::error_response(None, error_code::INVALID_REQUEST, &message, None)
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
            Action::Reply(reply) => serde_json::from_str(&reply).expect("replies are JSON"),
            Action::Nothing => panic!("no reply to {text}"),
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
        let Action::Reply(text) = response else { panic!("no reply") };
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":"x\"y","result":{}}"#);
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
