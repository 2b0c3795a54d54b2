//! MCP client over WebSocket: many calls in flight on one connection, matched by id.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mcp_runtime::client::ClientError> {
//! use mcp_runtime::client::Client;
//!
//! #[derive(serde::Deserialize)]
//! struct Sum {
//!     sum: i64,
//! }
//!
//! let client = Client::connect("ws://127.0.0.1:8080/").await?;
//! let tools = client.list_tools().await?;
//! let sum: Sum = client.call("add", serde_json::json!({ "a": 2, "b": 3 })).await?;
//! assert_eq!(sum.sum, 5);
//! # let _ = tools;
//! # Ok(()) }
//! ```
//!
//! [`Client`] is cheap to clone and safe to share between tasks; all clones
//! use one connection. Each call registers a oneshot under its request id,
//! a writer task sends frames in batches and a reader task hands each
//! answer to its caller, so one slow call never holds up another.
//!
//! When the connection dies, calls waiting on it fail at once with
//! [`ClientError::is_connection_lost`] (the server may or may not have run
//! them, so the client never retries them by itself). A background task
//! reconnects with exponential backoff and jitter and repeats the
//! handshake; calls made meanwhile wait for it, within their timeout.
//! Dropping a call future, or its timeout, sends `notifications/cancelled`.

mod backoff;
mod connection;
mod error;
mod transport;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use backoff::Backoff;
use connection::{Connection, Failure, NotSent};
pub use error::ClientError;
pub use transport::{Endpoint, SUBPROTOCOL, WebSocket};
pub use wire::{
    CallToolResult, Content, Implementation, InitializeResult, PROTOCOL_VERSION, Progress, SUPPORTED_PROTOCOL_VERSIONS,
    ToolInfo,
};

/// Options for [`Client`]; start from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    client_info: Implementation,
    call_timeout: Duration,
    connect_timeout: Duration,
    reconnect: bool,
    reconnect_initial_delay: Duration,
    reconnect_max_delay: Duration,
    ping_interval: Option<Duration>,
    bearer_token: Option<String>,
}

impl ClientBuilder {
    /// Sends `Authorization: Bearer <token>` when connecting, for servers
    /// started with `MCP_AUTH_TOKEN`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// The `clientInfo` sent in `initialize` (default: `mcp-runtime` and this crate's version).
    pub fn client_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.client_info = Implementation { name: name.into(), version: version.into() };
        self
    }

    /// How long one call may take, including any wait for a reconnect (default 60 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// How long connecting may take: per address for TCP, then for the
    /// WebSocket upgrade, then for the `initialize` answer (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether to reconnect after the connection drops (default on). When
    /// off, every call after a drop fails with "connection lost".
    pub fn reconnect(mut self, enabled: bool) -> Self {
        self.reconnect = enabled;
        self
    }

    /// The first wait between reconnect attempts (default 100 ms); doubles
    /// per failed attempt up to [`reconnect_max_delay`](Self::reconnect_max_delay).
    pub fn reconnect_initial_delay(mut self, delay: Duration) -> Self {
        self.reconnect_initial_delay = delay;
        self
    }

    /// The longest wait between reconnect attempts (default 5 s).
    pub fn reconnect_max_delay(mut self, delay: Duration) -> Self {
        self.reconnect_max_delay = delay;
        self
    }

    /// How often to send a WebSocket ping (default 15 s; `None` turns it
    /// off). A connection that receives nothing for three intervals counts as
    /// lost, so a server that vanished without closing the socket is noticed.
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval.filter(|i| !i.is_zero());
        self
    }

    /// Connects and performs the MCP handshake. Fails with
    /// [`ClientError::is_connect`] if the server cannot be reached now: the
    /// first connection is not retried, so a wrong URL shows up at once.
    pub async fn connect(self) -> Result<Client, ClientError> {
        let mut endpoint = Endpoint::parse(&self.url)?;
        if let Some(token) = &self.bearer_token {
            endpoint = endpoint.with_bearer_token(token)?;
        }
        if self.call_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(ClientError::InvalidRequest(
                "call_timeout and connect_timeout must be greater than zero".into(),
            ));
        }
        if self.reconnect_initial_delay > self.reconnect_max_delay {
            return Err(ClientError::InvalidRequest(format!(
                "reconnect_initial_delay ({:?}) must not exceed reconnect_max_delay ({:?})",
                self.reconnect_initial_delay, self.reconnect_max_delay
            )));
        }
        let (state, _) = watch::channel(Link::Reconnecting { last_error: None });
        let shared = Arc::new(Shared {
            url: Arc::from(endpoint.url()),
            endpoint,
            options: self,
            state,
            next_id: AtomicU64::new(1),
            offer_subprotocol: AtomicBool::new(true),
            generation: AtomicU64::new(0),
        });
        let (conn, info) = shared.open().await?;
        shared.state.send_replace(Link::Up(conn.clone(), Arc::new(info)));
        let stop = CancellationToken::new();
        tokio::spawn(supervise(shared.clone(), conn, stop.clone()));
        Ok(Client { inner: Arc::new(ClientInner { shared, _stop: stop.drop_guard() }) })
    }
}

/// A connection to one MCP server, shared by all clones.
///
/// Dropping the last clone closes the connection and stops reconnecting.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("url", &self.inner.shared.url).finish_non_exhaustive()
    }
}

struct Shared {
    url: Arc<str>,
    endpoint: Endpoint,
    options: ClientBuilder,
    state: watch::Sender<Link>,
    /// Request ids are unique across connections, so a late answer from an
    /// old connection can never be mistaken for a new call's.
    next_id: AtomicU64,
    /// Cleared once a server answers the upgrade without the `mcp`
    /// subprotocol, so reconnects to it skip the refused attempt.
    offer_subprotocol: AtomicBool,
    generation: AtomicU64,
}

enum Link {
    Up(Arc<Connection>, Arc<InitializeResult>),
    Reconnecting {
        last_error: Option<String>,
    },
    /// Reconnecting is off and the connection is gone.
    Down(String),
}

impl Client {
    /// Connects with default options. See [`ClientBuilder`] to change them.
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        Client::builder(url).connect().await
    }

    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            client_info: Implementation { name: "mcp-runtime".into(), version: env!("CARGO_PKG_VERSION").into() },
            call_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            reconnect: true,
            reconnect_initial_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
            ping_interval: Some(Duration::from_secs(15)),
            bearer_token: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.inner.shared.url
    }

    /// What the server answered to `initialize` on the current connection,
    /// or `None` while reconnecting.
    pub fn server_info(&self) -> Option<InitializeResult> {
        match &*self.inner.shared.state.borrow() {
            Link::Up(_, info) => Some(InitializeResult::clone(info)),
            _ => None,
        }
    }

    /// True while a live connection exists (a call now would be sent at once).
    pub fn is_connected(&self) -> bool {
        matches!(&*self.inner.shared.state.borrow(), Link::Up(conn, _) if conn.is_open())
    }

    /// Every tool the server has, following `nextCursor` through all pages.
    pub async fn list_tools(&self) -> Result<Vec<ToolInfo>, ClientError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => serde_json::json!({ "cursor": c }),
                None => serde_json::json!({}),
            };
            let raw = self.round_trip_new("tools/list", Some(&to_raw(&params)?), None).await?;
            let page: wire::ListToolsPage = decode("tools/list", &raw)?;
            tools.extend(page.tools);
            match page.next_cursor {
                Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                    return Err(ClientError::decode(
                        "tools/list",
                        format!("the server returned the cursor {next:?} twice; stopping instead of looping"),
                    ));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(tools),
            }
        }
    }

    /// Calls a tool and returns its result as sent, also when the tool
    /// reported failure (`is_error`). `arguments` must serialize to a JSON
    /// object (or `null` for none).
    pub async fn call_tool(&self, name: &str, arguments: impl Serialize) -> Result<CallToolResult, ClientError> {
        let raw = self.tool_round_trip(name, &arguments, None).await?;
        let result: wire::RawCallToolResult = decode("tools/call", &raw)?;
        Ok(result.into_public())
    }

    /// Like [`call_tool`](Self::call_tool), and asks the server for
    /// progress: `on_progress` runs (in the caller's task) for each
    /// `notifications/progress` that arrives before the result.
    pub async fn call_tool_with_progress(
        &self,
        name: &str,
        arguments: impl Serialize,
        mut on_progress: impl FnMut(Progress) + Send,
    ) -> Result<CallToolResult, ClientError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let call = self.tool_round_trip(name, &arguments, Some(tx));
        tokio::pin!(call);
        let raw = loop {
            tokio::select! {
                biased;
                Some(p) = rx.recv() => on_progress(p),
                raw = &mut call => break raw,
            }
        };
        // Progress sent just before the result is still delivered, in order.
        while let Ok(p) = rx.try_recv() {
            on_progress(p);
        }
        let result: wire::RawCallToolResult = decode("tools/call", &raw?)?;
        Ok(result.into_public())
    }

    /// Calls a tool and decodes its output into `T`: `structuredContent`
    /// when present, otherwise the JSON in the first text block (servers
    /// that only send text), otherwise that text as a string.
    /// A result with `isError: true` becomes [`ClientError::is_tool_error`].
    pub async fn call<T: DeserializeOwned>(&self, name: &str, arguments: impl Serialize) -> Result<T, ClientError> {
        let raw = self.tool_round_trip(name, &arguments, None).await?;
        let result: wire::RawCallToolResult = decode("tools/call", &raw)?;
        decode_tool_output(name, result)
    }

    /// Sends any request and returns its raw `result` (for `ping`, or the
    /// legacy servers' direct `{"method": "<tool name>"}` calls). `params`
    /// that serialize to `null` (such as `()`) are left out.
    pub async fn request(&self, method: &str, params: impl Serialize) -> Result<Value, ClientError> {
        let params = to_raw(&params)?;
        let params = (params.get() != "null").then_some(&*params);
        let raw = self.round_trip_new(method, params, None).await?;
        decode(method, &raw)
    }

    /// Sends a notification on the current connection (waiting for a
    /// reconnect if needed, within the call timeout).
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), ClientError> {
        let params = to_raw(&params)?;
        let params = (params.get() != "null").then_some(&*params);
        let deadline = Instant::now() + self.inner.shared.options.call_timeout;
        loop {
            let conn = self.connection(method, deadline).await?;
            if conn.notify(method, params) {
                return Ok(());
            }
        }
    }

    async fn tool_round_trip(
        &self,
        name: &str,
        arguments: &impl Serialize,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<Box<RawValue>, ClientError> {
        let arguments = to_raw(arguments)?;
        let arguments = match arguments.get().as_bytes().first() {
            Some(b'{') => Some(&*arguments),
            _ if arguments.get() == "null" => None,
            _ => {
                return Err(ClientError::InvalidRequest(format!(
                    "the arguments for tool `{name}` must be a JSON object (or null), not {}",
                    truncate_for_message(arguments.get())
                )));
            }
        };
        let id = self.inner.shared.next_id.fetch_add(1, Ordering::Relaxed);
        #[derive(Serialize)]
        struct Meta {
            #[serde(rename = "progressToken")]
            progress_token: u64,
        }
        #[derive(Serialize)]
        struct Params<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            arguments: Option<&'a RawValue>,
            #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
            meta: Option<Meta>,
        }
        // The progress token is the request id: unique, and the reader finds
        // the caller's progress channel by it without a second map.
        let meta = progress.is_some().then_some(Meta { progress_token: id });
        self.round_trip(id, "tools/call", Some(Params { name, arguments, meta }), progress).await
    }

    async fn round_trip_new(
        &self,
        method: &str,
        params: Option<&RawValue>,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<Box<RawValue>, ClientError> {
        let id = self.inner.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.round_trip(id, method, params, progress).await
    }

    async fn round_trip<P: Serialize>(
        &self,
        id: u64,
        method: &str,
        params: Option<P>,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<Box<RawValue>, ClientError> {
        let timeout = self.inner.shared.options.call_timeout;
        let deadline = Instant::now() + timeout;
        let mut frame = wire::encode_request(id, method, params.as_ref());
        let (conn, reply) = loop {
            let conn = self.connection(method, deadline).await?;
            // A call refused because the connection just closed never left
            // this process: retrying it on the next connection is safe.
            match conn.start_call(id, frame, progress.clone()) {
                Ok(reply) => break (conn, reply),
                Err(NotSent(unsent)) => frame = unsent,
            }
        };
        let mut in_flight = InFlight { conn: &conn, id, reason: Some("the caller stopped waiting") };
        let answer = tokio::time::timeout_at(deadline, async {
            conn.flush().await;
            reply.await
        })
        .await;
        in_flight.reason = match answer {
            Err(_) => Some("timed out"),
            Ok(_) => None,
        };
        drop(in_flight);
        match answer {
            Ok(Ok(Ok(raw))) => Ok(raw),
            Ok(Ok(Err(Failure::Rpc(e)))) => Err(ClientError::Rpc {
                method: method.to_owned(),
                code: e.code,
                message: e.message,
                data: e.data.map(Box::new),
            }),
            Ok(Ok(Err(Failure::Lost(e)))) => Err(e),
            // The sender is dropped only with the connection: same as a loss.
            Ok(Err(_)) => Err(ClientError::lost(conn.url(), "the connection closed")),
            Err(_) => Err(ClientError::Timeout { method: method.to_owned(), after: timeout, detail: String::new() }),
        }
    }

    /// The live connection, waiting for a reconnect until `deadline`.
    async fn connection(&self, method: &str, deadline: Instant) -> Result<Arc<Connection>, ClientError> {
        let shared = &self.inner.shared;
        if let Link::Up(conn, _) = &*shared.state.borrow()
            && conn.is_open()
        {
            return Ok(conn.clone());
        }
        let mut rx = shared.state.subscribe();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    Link::Up(conn, _) if conn.is_open() => return Ok(conn.clone()),
                    Link::Down(reason) => return Err(ClientError::lost(&shared.url, reason.clone())),
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return Err(ClientError::lost(&shared.url, "the client was shut down"));
                }
            }
        };
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(result) => result,
            Err(_) => {
                let last_error = match &*shared.state.borrow() {
                    Link::Reconnecting { last_error: Some(e) } => format!(" (last attempt: {e})"),
                    _ => String::new(),
                };
                Err(ClientError::Timeout {
                    method: method.to_owned(),
                    after: shared.options.call_timeout,
                    detail: format!(" waiting to reconnect to {}{last_error}", shared.url),
                })
            }
        }
    }
}

/// Cancels the call on the server if the caller stops waiting (drop or timeout).
struct InFlight<'a> {
    conn: &'a Connection,
    id: u64,
    reason: Option<&'static str>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(reason) = self.reason {
            self.conn.cancel(self.id, reason);
        }
    }
}

/// Closes a connection whose opening was abandoned before the handshake
/// finished; disarmed (set to `None`) once the handshake has an outcome.
struct AbandonedOpen<'a> {
    conn: Option<&'a Connection>,
}

impl Drop for AbandonedOpen<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn {
            conn.shut("the connection attempt was abandoned");
        }
    }
}

impl Shared {
    /// Opens a connection and performs the handshake on it.
    async fn open(&self) -> Result<(Arc<Connection>, InitializeResult), ClientError> {
        let timeout = self.options.connect_timeout;
        let (ws, accepted) = self.endpoint.connect(timeout, self.offer_subprotocol.load(Ordering::Relaxed)).await?;
        self.offer_subprotocol.store(accepted, Ordering::Relaxed);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let conn = Connection::start(ws, self.url.clone(), generation, self.options.ping_interval);
        // The reader and writer tasks hold the socket open on their own; if
        // this future is dropped mid-handshake (the client went away, or the
        // caller's own timeout fired), nobody else would ever close it.
        let result = {
            let mut abandoned = AbandonedOpen { conn: Some(&conn) };
            let result = self.handshake(&conn).await;
            abandoned.conn = None;
            result
        };
        match result {
            Ok(info) => Ok((conn, info)),
            Err(e) => {
                conn.shut("the handshake failed");
                Err(e)
            }
        }
    }

    async fn handshake(&self, conn: &Connection) -> Result<InitializeResult, ClientError> {
        let url = &*self.url;
        let params = serde_json::json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": self.options.client_info,
        });
        let params = serde_json::value::to_raw_value(&params).expect("a JSON value always serializes");
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode_request(id, "initialize", Some(&*params));
        let reply = conn
            .start_call(id, frame, None)
            .map_err(|_| ClientError::connect(url, "the connection closed before `initialize` was sent"))?;
        conn.flush().await;
        let timeout = self.options.connect_timeout;
        let raw = match tokio::time::timeout(timeout, reply).await {
            Err(_) => return Err(ClientError::connect(url, format!("no answer to `initialize` within {timeout:?}"))),
            Ok(Err(_)) | Ok(Ok(Err(Failure::Lost(_)))) => {
                let why = conn.close_reason().unwrap_or_else(|| "the connection closed".into());
                return Err(ClientError::connect(url, format!("the connection closed during `initialize`: {why}")));
            }
            Ok(Ok(Err(Failure::Rpc(e)))) => {
                return Err(ClientError::connect(
                    url,
                    format!("the server rejected `initialize` with error {}: {}", e.code, e.message),
                ));
            }
            Ok(Ok(Ok(raw))) => raw,
        };
        let info: InitializeResult = serde_json::from_str(raw.get()).map_err(|e| {
            ClientError::connect(
                url,
                format!("the `initialize` answer is malformed ({e}): {}", truncate_for_message(raw.get())),
            )
        })?;
        if !SUPPORTED_PROTOCOL_VERSIONS.contains(&info.protocol_version.as_str()) {
            return Err(ClientError::connect(
                url,
                format!(
                    "the server speaks MCP protocol version {:?}; this client supports {}",
                    info.protocol_version,
                    SUPPORTED_PROTOCOL_VERSIONS.join(", ")
                ),
            ));
        }
        conn.notify("notifications/initialized", None);
        Ok(info)
    }
}

/// Watches the connection and replaces it when it dies, until the last
/// `Client` clone is dropped.
async fn supervise(shared: Arc<Shared>, mut conn: Arc<Connection>, stop: CancellationToken) {
    let opts = &shared.options;
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                conn.shut("the client was dropped");
                return;
            }
            _ = conn.wait_closed() => {}
        }
        let reason = conn.close_reason().unwrap_or_else(|| "the connection closed".into());
        if !opts.reconnect {
            tracing::warn!(url = %shared.url, reason, "connection lost; reconnecting is off");
            shared.state.send_replace(Link::Down(format!("{reason} (reconnecting is off)")));
            return;
        }
        tracing::warn!(url = %shared.url, reason, "connection lost; reconnecting");
        shared.state.send_replace(Link::Reconnecting { last_error: Some(reason) });
        let mut backoff = Backoff::new(opts.reconnect_initial_delay, opts.reconnect_max_delay);
        let mut attempt = 1u32;
        conn = loop {
            let opened = tokio::select! {
                _ = stop.cancelled() => return,
                opened = shared.open() => opened,
            };
            match opened {
                Ok((new_conn, info)) => {
                    tracing::info!(url = %shared.url, attempt, "reconnected");
                    shared.state.send_replace(Link::Up(new_conn.clone(), Arc::new(info)));
                    break new_conn;
                }
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(url = %shared.url, attempt, cause = %e, retry_in = ?wait, "reconnect failed");
                    shared.state.send_replace(Link::Reconnecting { last_error: Some(e.to_string()) });
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    attempt += 1;
                }
            }
        };
    }
}

fn to_raw(value: &impl Serialize) -> Result<Box<RawValue>, ClientError> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| ClientError::InvalidRequest(format!("the parameters do not serialize to JSON: {e}")))
}

fn decode<T: DeserializeOwned>(method: &str, raw: &RawValue) -> Result<T, ClientError> {
    serde_json::from_str(raw.get())
        .map_err(|e| ClientError::decode(method, format!("{e}; the answer was {}", truncate_for_message(raw.get()))))
}

/// `value` of `{"result": value}`, the only member, when it is not an object
/// itself (an object result is never wrapped).
fn wrapped_result(structured: &RawValue) -> Option<&RawValue> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        result: &'a RawValue,
    }
    let wrapped: Wrapped<'_> = serde_json::from_str(structured.get()).ok()?;
    (!wrapped.result.get().starts_with('{')).then_some(wrapped.result)
}

fn decode_tool_output<T: DeserializeOwned>(tool: &str, result: wire::RawCallToolResult) -> Result<T, ClientError> {
    let method = format!("tools/call {tool}");
    if result.is_error {
        let result = result.into_public();
        let message = match result.text() {
            t if t.is_empty() => "the tool reported an error without a message".to_owned(),
            t => t,
        };
        return Err(ClientError::Tool { tool: tool.to_owned(), message, result: Box::new(result) });
    }
    if let Some(structured) = &result.structured_content {
        let whole = serde_json::from_str(structured.get());
        // A result that is not an object comes wrapped as `{"result": value}`
        // from servers that speak protocol versions before 2026-07-28.
        if whole.is_err()
            && let Some(value) = wrapped_result(structured)
            && let Ok(value) = serde_json::from_str(value.get())
        {
            return Ok(value);
        }
        return whole.map_err(|e| {
            ClientError::decode(
                &method,
                format!(
                    "structuredContent does not match the expected type: {e}; it was {}",
                    truncate_for_message(structured.get())
                ),
            )
        });
    }
    let Some(text) = result.content.iter().find_map(Content::as_text) else {
        return Err(ClientError::decode(&method, "the result has neither structuredContent nor a text block"));
    };
    match serde_json::from_str::<T>(text) {
        Ok(value) => Ok(value),
        Err(json_error) => {
            // A tool returning a bare string sends it unquoted.
            let as_string: Result<T, serde::de::value::Error> = T::deserialize(text.into_deserializer());
            as_string.map_err(|_| {
                ClientError::decode(
                    &method,
                    format!(
                        "the text content does not decode into the expected type: {json_error}; it was {}",
                        truncate_for_message(text)
                    ),
                )
            })
        }
    }
}

fn truncate_for_message(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}... ({} bytes)", &text[..i], text.len()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn raw_result(json: &str) -> wire::RawCallToolResult {
        serde_json::from_str(json).unwrap()
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sum {
        sum: i64,
    }

    #[test]
    fn typed_output_prefers_structured_content() {
        let r = raw_result(r#"{"content":[{"type":"text","text":"{\"sum\":1}"}],"structuredContent":{"sum":5}}"#);
        assert_eq!(decode_tool_output::<Sum>("add", r).unwrap(), Sum { sum: 5 });
    }

    #[test]
    fn typed_output_unwraps_a_wrapped_result() {
        let r = raw_result(r#"{"content":[],"structuredContent":{"result":[1,2]}}"#);
        assert_eq!(decode_tool_output::<Vec<u8>>("list", r).unwrap(), [1, 2]);
        let r = raw_result(r#"{"content":[],"structuredContent":{"result":"done"}}"#);
        assert_eq!(decode_tool_output::<String>("say", r).unwrap(), "done");
        // An object result with a `result` field is read as it is.
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Outcome {
            result: u8,
        }
        let r = raw_result(r#"{"content":[],"structuredContent":{"result":3}}"#);
        assert_eq!(decode_tool_output::<Outcome>("outcome", r).unwrap(), Outcome { result: 3 });
    }

    #[test]
    fn typed_output_falls_back_to_text_json() {
        let r = raw_result(r#"{"content":[{"type":"text","text":"{\n  \"sum\": 7\n}"}]}"#);
        assert_eq!(decode_tool_output::<Sum>("add", r).unwrap(), Sum { sum: 7 });
    }

    #[test]
    fn typed_output_reads_bare_strings() {
        let r = raw_result(r#"{"content":[{"type":"text","text":"hello world"}]}"#);
        assert_eq!(decode_tool_output::<String>("greet", r).unwrap(), "hello world");
    }

    #[test]
    fn is_error_becomes_tool_error() {
        let r = raw_result(r#"{"content":[{"type":"text","text":"no such conversation"}],"isError":true}"#);
        let e = decode_tool_output::<Sum>("get", r).unwrap_err();
        assert!(e.is_tool_error() && !e.is_rpc_error());
        assert_eq!(e.tool_message(), Some("no such conversation"));
        assert!(e.tool_result().unwrap().is_error);
    }

    #[test]
    fn mismatched_output_is_a_decode_error_naming_the_tool() {
        let r = raw_result(r#"{"content":[],"structuredContent":{"total":5}}"#);
        let e = decode_tool_output::<Sum>("add", r).unwrap_err();
        assert!(e.is_decode(), "{e}");
        assert!(e.to_string().contains("add") && e.to_string().contains("sum"), "{e}");
    }

    #[test]
    fn client_and_errors_can_cross_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        fn error<T: std::error::Error + Send + Sync + 'static>() {}
        shareable::<Client>();
        error::<ClientError>();
    }
}

/// A server faked at the WebSocket level, for what `hello` cannot be made to
/// do: answer the handshake and then go silent without closing the socket.
#[cfg(test)]
mod silent_server_tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    #[tokio::test]
    async fn a_server_that_goes_silent_is_declared_lost() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            // The client's first attempt offers `mcp`, which this server
            // declines; the handshake completes on the second connection.
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else { return };
                    let Some(Ok(Message::Text(init))) = ws.next().await else { return };
                    let id = serde_json::from_str::<Value>(init.as_str()).unwrap()["id"].clone();
                    ws.send(Message::text(json_answer(&id))).await.unwrap();
                    // Hold the socket open and never read again: no pongs, no answers.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    drop(ws);
                });
            }
        });
        let client = Client::builder(&url)
            .ping_interval(Some(Duration::from_millis(100)))
            .reconnect(false)
            .connect()
            .await
            .unwrap();
        let started = Instant::now();
        let e = client.request("ping", ()).await.unwrap_err();
        assert!(e.is_connection_lost(), "{e}");
        assert!(e.to_string().contains("not even a pong"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        server.abort();
    }

    fn json_answer(id: &Value) -> String {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": { "protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": { "name": "silent", "version": "0" } }
        })
        .to_string()
    }
}

/// What the client puts on the wire when a call is abandoned, seen from a
/// fake server that records every frame and never answers tool calls.
#[cfg(test)]
mod cancellation_tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    async fn recording_server() -> (String, mpsc::UnboundedReceiver<Value>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else { return };
                    while let Some(Ok(Message::Text(text))) = ws.next().await {
                        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                        if frame["method"] == "initialize" {
                            let answer = serde_json::json!({
                                "jsonrpc": "2.0",
                                "id": frame["id"],
                                "result": { "protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": { "name": "rec", "version": "0" } }
                            });
                            ws.send(Message::text(answer.to_string())).await.unwrap();
                        }
                        let _ = tx.send(frame);
                    }
                });
            }
        });
        (url, rx)
    }

    async fn next_with_method(rx: &mut mpsc::UnboundedReceiver<Value>, method: &str) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            if frame["method"] == method {
                return frame;
            }
        }
    }

    #[tokio::test]
    async fn a_timed_out_call_is_cancelled_on_the_server() {
        let (url, mut frames) = recording_server().await;
        let client = Client::builder(&url).call_timeout(Duration::from_millis(200)).connect().await.unwrap();
        next_with_method(&mut frames, "notifications/initialized").await;

        let e = client.call_tool("never_answers", serde_json::json!({})).await.unwrap_err();
        assert!(e.is_timeout(), "{e}");
        let call = next_with_method(&mut frames, "tools/call").await;
        let cancel = next_with_method(&mut frames, "notifications/cancelled").await;
        assert_eq!(cancel["params"]["requestId"], call["id"]);
        assert_eq!(cancel["params"]["reason"], "timed out");
    }

    #[tokio::test]
    async fn a_dropped_call_is_cancelled_on_the_server() {
        let (url, mut frames) = recording_server().await;
        let client = Client::connect(&url).await.unwrap();
        tokio::select! {
            _ = client.call_tool("never_answers", serde_json::json!({})) => panic!("the fake server never answers"),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let call = next_with_method(&mut frames, "tools/call").await;
        let cancel = next_with_method(&mut frames, "notifications/cancelled").await;
        assert_eq!(cancel["params"]["requestId"], call["id"]);
        assert_eq!(cancel["params"]["reason"], "the caller stopped waiting");
    }
}
