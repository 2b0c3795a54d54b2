//! Opt-in logging of a server's own activity to Godot, the ICCM log
//! service: connections opened and closed, and every tool call (name,
//! duration, outcome; never the arguments), sent to Godot's `logger_log` in
//! the background. Seed 004's servers did this by hand ("auto-log
//! connection events to Godot"), awaiting each log inside the request.
//!
//! On when `GODOT_URL` is set (a `ws://` URL) and `LOGGING_ENABLED` is not
//! `false`; [`ServerBuilder::log_to_godot`](crate::ServerBuilder::log_to_godot)
//! overrides both. The hooks (marked `godot_log hook`) sit in the session
//! engine, not in any one transport, so they hold on all of them: the
//! `Session` (`dispatch.rs`) records its opening and closing and times every
//! call it starts, whether a WebSocket connection, a stdio process, a
//! Streamable HTTP session or one stateless request carries it. A hook only
//! appends a small record to a bounded buffer: it never waits, never fails a
//! call, and costs one branch when off.
//!
//! - What a "connection" is per transport: a WebSocket connection, the stdio
//!   session (no peer), a Streamable HTTP session from its `initialize` to
//!   its end (DELETE, idle timeout, shutdown; the peer that initialized it).
//!   A stateless request is no session: only its tool call is logged.
//!   A connection is logged from its first message on (so one closed
//!   without a word, a port probe, is not), and the record names its
//!   transport.
//! - Bounded: at most [`MAX_PER_FLUSH`] records per [`FLUSH_EVERY`] are kept
//!   (about 4,000 a second); more, and records Godot cannot take (down,
//!   unreachable, an error), are dropped and counted. The count is logged
//!   when dropping starts and sent to Godot as one WARN entry once it is
//!   reachable again, so every lost record is accounted for.
//! - No feedback loop: a session whose client calls itself `godot-worker`
//!   in `initialize` (Godot's worker storing logs in Dewey), and a stateless
//!   request naming that client in its `_meta`, are not logged at all, and
//!   Godot itself runs with this sink off.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::client::{Backoff, Client};
use crate::error::Error;
use crate::tool::{CallError, ToolOutput};

/// How often the buffer is sent.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Records kept per flush; beyond, they are dropped and counted.
pub const MAX_PER_FLUSH: usize = 1024;
/// The `clientInfo.name` of sessions whose calls are never logged.
pub const UNLOGGED_CLIENT: &str = "godot-worker";
/// The first and the longest wait between attempts to reach a Godot that is down.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(250);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// The URL from `GODOT_URL`, unless `LOGGING_ENABLED` is false.
pub(crate) fn url_from_env() -> Option<String> {
    let url = std::env::var("GODOT_URL").ok().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty())?;
    let enabled = std::env::var("LOGGING_ENABLED").unwrap_or_default();
    match enabled.trim().to_ascii_lowercase().as_str() {
        "false" | "0" | "no" | "off" => None,
        _ => Some(url),
    }
}

/// Refuses a `GODOT_URL` that is not a WebSocket URL.
pub(crate) fn check_url(url: &str) -> Result<(), Error> {
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return Ok(());
    }
    Err(Error::Config(format!(
        "GODOT_URL must be Godot's ws:// URL (such as ws://godot:9060/), got {url:?}; unset it, or set \
         LOGGING_ENABLED=false, to log nothing to Godot"
    )))
}

/// Whether `initialize`'s `clientInfo` names a client whose calls must not
/// be logged.
pub(crate) fn is_unlogged_client(client_info: Option<&RawValue>) -> bool {
    #[derive(serde::Deserialize)]
    struct Info<'a> {
        #[serde(borrow)]
        name: Option<std::borrow::Cow<'a, str>>,
    }
    client_info
        .and_then(|raw| serde_json::from_str::<Info<'_>>(raw.get()).ok())
        .and_then(|info| info.name)
        .is_some_and(|name| name == UNLOGGED_CLIENT)
}

/// How a call ended, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    ToolError,
    InvalidArguments,
    Panicked,
    Internal,
    Cancelled,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::InvalidArguments => "invalid_arguments",
            Outcome::Panicked => "panicked",
            Outcome::Internal => "internal_error",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn level(self) -> &'static str {
        match self {
            Outcome::Ok => "TRACE",
            Outcome::Cancelled => "DEBUG",
            Outcome::ToolError | Outcome::InvalidArguments => "WARN",
            Outcome::Panicked | Outcome::Internal => "ERROR",
        }
    }
}

/// What carries a logged session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    WebSocket,
    StreamableHttp,
    Stdio,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::StreamableHttp => "streamable-http",
            Transport::Stdio => "stdio",
        }
    }
}

enum Record {
    Opened { peer: Option<SocketAddr>, transport: Transport },
    Closed { peer: Option<SocketAddr>, transport: Transport, open_for: Duration },
    Call { tool: &'static str, took: Duration, outcome: Outcome },
}

/// The sink of one server. Cheap to clone.
#[derive(Clone)]
pub(crate) struct GodotLog {
    shared: Arc<Shared>,
}

struct Shared {
    component: String,
    url: String,
    /// The sender task runs (it is started by the first record or flush,
    /// inside the runtime: building a server needs none).
    sending: AtomicBool,
    buffer: Mutex<Vec<Record>>,
    /// Records refused because the buffer was full, since the last flush.
    overflow: AtomicU64,
    /// Sends the buffer now rather than at the next tick ([`GodotLog::flush`]).
    wake: Arc<Notify>,
    /// Sends begun, and (watched) sends finished, since the start.
    begun: AtomicU64,
    finished: watch::Sender<u64>,
}

impl GodotLog {
    /// The sink for server `component` (its name), after checking `url`.
    /// Its background sender starts with the first record, so this needs no
    /// Tokio runtime.
    pub(crate) fn new(url: &str, component: &str) -> Result<GodotLog, Error> {
        check_url(url)?;
        let shared = Arc::new(Shared {
            component: component.to_owned(),
            url: url.to_owned(),
            sending: AtomicBool::new(false),
            buffer: Mutex::new(Vec::new()),
            overflow: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
            begun: AtomicU64::new(0),
            finished: watch::Sender::new(0),
        });
        Ok(GodotLog { shared })
    }

    /// Starts the background sender once, from inside a runtime (a record
    /// or a flush; outside one, the next call inside one starts it). One
    /// relaxed load once it runs.
    fn ensure_sending(&self) {
        let shared = &self.shared;
        if shared.sending.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !shared.sending.swap(true, Ordering::AcqRel)
        {
            runtime.spawn(send_loop(Arc::downgrade(shared), shared.wake.clone(), shared.url.clone()));
        }
    }

    /// Sends what is buffered now and waits, at most `within`, until it is
    /// sent (or counted as dropped). For the end of serving: a stdio
    /// session's process exits right after its session closes, and that
    /// closing would otherwise never leave the buffer.
    pub(crate) async fn flush(&self, within: Duration) {
        self.ensure_sending();
        let mut finished = self.shared.finished.subscribe();
        // A send already begun may have taken the buffer before the latest
        // records: wait for the one after it.
        let target = self.shared.begun.load(Ordering::SeqCst) + 1;
        self.shared.wake.notify_one();
        let _ = tokio::time::timeout(within, finished.wait_for(|done| *done >= target)).await;
    }

    fn record(&self, record: Record) {
        self.ensure_sending();
        let mut buffer = self.shared.buffer.lock().expect("the log buffer lock is never poisoned");
        if buffer.len() < MAX_PER_FLUSH {
            buffer.push(record);
        } else {
            drop(buffer);
            self.shared.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection opened. Nothing is recorded until
    /// [`ConnectionLog::announce`] (its first message, once `initialize`
    /// could say it is Godot's worker); then dropping the guard records its
    /// closing. Boxed: it lives as long as the connection, which should pay
    /// one pointer for it.
    pub(crate) fn connection(&self, transport: Transport, peer: Option<SocketAddr>) -> Box<ConnectionLog> {
        Box::new(ConnectionLog { log: self.clone(), peer, transport, opened: Instant::now(), announced: false })
    }

    /// A tool call started; [`CallLog::finish`] records how it ended (and
    /// dropping it unfinished, with its connection, records a cancellation).
    pub(crate) fn call(&self, tool: &'static str) -> CallLog {
        CallLog { log: Some(self.clone()), tool, started: Instant::now() }
    }
}

/// One connection's records: opened once announced, closed when dropped.
pub(crate) struct ConnectionLog {
    log: GodotLog,
    peer: Option<SocketAddr>,
    transport: Transport,
    opened: Instant,
    announced: bool,
}

impl ConnectionLog {
    /// Records the opening, once.
    pub(crate) fn announce(&mut self) {
        if !self.announced {
            self.announced = true;
            self.log.record(Record::Opened { peer: self.peer, transport: self.transport });
        }
    }
}

impl Drop for ConnectionLog {
    fn drop(&mut self) {
        if self.announced {
            let open_for = self.opened.elapsed();
            self.log.record(Record::Closed { peer: self.peer, transport: self.transport, open_for });
        }
    }
}

/// One tool call being timed.
pub(crate) struct CallLog {
    /// Taken by `finish`.
    log: Option<GodotLog>,
    tool: &'static str,
    started: Instant,
}

impl Drop for CallLog {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            log.record(Record::Call { tool: self.tool, took: self.started.elapsed(), outcome: Outcome::Cancelled });
        }
    }
}

impl CallLog {
    /// `None` when the call was cancelled.
    pub(crate) fn finish(mut self, outcome: Option<&Result<ToolOutput, CallError>>) {
        let Some(log) = self.log.take() else { return };
        let outcome = match outcome {
            None => Outcome::Cancelled,
            Some(Ok(_)) => Outcome::Ok,
            Some(Err(CallError::Tool(_))) => Outcome::ToolError,
            Some(Err(CallError::InvalidArguments(_))) => Outcome::InvalidArguments,
            Some(Err(CallError::Panicked(_))) => Outcome::Panicked,
            Some(Err(CallError::Internal(_))) => Outcome::Internal,
        };
        log.record(Record::Call { tool: self.tool, took: self.started.elapsed(), outcome });
    }
}

/// `logger_log` arguments for one record.
fn entry(component: &str, record: &Record) -> Value {
    let millis = |d: &Duration| (d.as_micros() as f64) / 1000.0;
    let peer = |p: &Option<SocketAddr>| p.map_or(Value::Null, |p| Value::String(p.to_string()));
    let (level, message, data) = match record {
        Record::Opened { peer: p, transport } => {
            ("INFO", "connection opened".to_owned(), json!({"peer": peer(p), "transport": transport.name()}))
        }
        Record::Closed { peer: p, transport, open_for } => (
            "INFO",
            "connection closed".to_owned(),
            json!({"peer": peer(p), "transport": transport.name(), "open_ms": millis(open_for)}),
        ),
        Record::Call { tool, took, outcome } => (
            outcome.level(),
            format!("tool call {tool}: {}", outcome.name()),
            json!({"tool": tool, "duration_ms": millis(took), "outcome": outcome.name()}),
        ),
    };
    json!({"component": component, "level": level, "message": message, "data": data})
}

/// Sends the buffer every [`FLUSH_EVERY`] (or when woken) until the server is gone.
async fn send_loop(shared: Weak<Shared>, wake: Arc<Notify>, url: String) {
    let mut link = Link { url, client: None, next_attempt: Instant::now(), backoff: Link::backoff() };
    // Dropped records not yet reported to Godot.
    let mut unreported = 0u64;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        let Some(shared) = shared.upgrade() else { return };
        let begun = shared.begun.fetch_add(1, Ordering::SeqCst) + 1;
        send_buffer(&shared, &mut link, &mut unreported).await;
        shared.finished.send_replace(begun);
    }
}

/// One send: the buffered records, and the count of dropped ones while any
/// is unreported.
async fn send_buffer(shared: &Shared, link: &mut Link, unreported: &mut u64) {
    let records = std::mem::take(&mut *shared.buffer.lock().expect("the log buffer lock is never poisoned"));
    let overflow = shared.overflow.swap(0, Ordering::Relaxed);
    if records.is_empty() && overflow == 0 && *unreported == 0 {
        return;
    }
    let before = *unreported;
    *unreported += overflow;
    match link.client().await {
        None => *unreported += records.len() as u64,
        Some(client) => {
            if *unreported > 0 {
                let dropped = *unreported;
                let summary = json!({
                    "component": shared.component,
                    "level": "WARN",
                    "message": format!(
                        "{dropped} log records of this server were dropped: Godot was unreachable, or more \
                         than {MAX_PER_FLUSH} came within {FLUSH_EVERY:?}"
                    ),
                    "data": {"dropped": dropped},
                });
                if sent(&client, summary).await {
                    tracing::info!(dropped, "Godot reachable again; reported the dropped log records");
                    *unreported = 0;
                }
            }
            let mut calls: FuturesUnordered<_> =
                records.iter().map(|record| sent(&client, entry(&shared.component, record))).collect();
            while let Some(ok) = calls.next().await {
                if !ok {
                    *unreported += 1;
                }
            }
        }
    }
    if before == 0 && *unreported > 0 {
        tracing::warn!(
            url = %link.url,
            "dropping log records meant for Godot (unreachable or over the bound); counted and reported later"
        );
    }
}

async fn sent(client: &Client, arguments: Value) -> bool {
    matches!(client.call_tool("logger_log", arguments).await, Ok(result) if !result.is_error)
}

/// The connection to Godot: made lazily, retried with backoff while Godot is
/// down, never waited for (records are dropped meanwhile).
struct Link {
    url: String,
    client: Option<Client>,
    next_attempt: Instant,
    backoff: Backoff,
}

impl Link {
    fn backoff() -> Backoff {
        Backoff::new(FIRST_RECONNECT_DELAY, MAX_RECONNECT_DELAY)
    }

    async fn client(&mut self) -> Option<Client> {
        if let Some(client) = &self.client {
            return client.is_connected().then(|| client.clone());
        }
        if Instant::now() < self.next_attempt {
            return None;
        }
        let connected = Client::builder(&self.url)
            .client_info("mcp-runtime-godot-log", env!("CARGO_PKG_VERSION"))
            .connect_timeout(Duration::from_secs(2))
            .call_timeout(Duration::from_secs(10))
            .connect()
            .await;
        match connected {
            Ok(client) => {
                self.backoff = Link::backoff();
                self.client = Some(client.clone());
                Some(client)
            }
            Err(e) => {
                tracing::debug!(error = %e, "Godot unreachable");
                self.next_attempt = Instant::now() + self.backoff.next_delay();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_godots_worker_is_unlogged() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert!(is_unlogged_client(Some(&raw(r#"{"name":"godot-worker","version":"1"}"#))));
        assert!(!is_unlogged_client(Some(&raw(r#"{"name":"claude-code","version":"1"}"#))));
        assert!(!is_unlogged_client(Some(&raw(r#"{"version":"1"}"#))));
        assert!(!is_unlogged_client(Some(&raw("3"))));
        assert!(!is_unlogged_client(None));
    }

    #[test]
    fn entries_carry_name_duration_and_outcome_only() {
        let call = Record::Call { tool: "add", took: Duration::from_micros(1500), outcome: Outcome::ToolError };
        let e = entry("hello", &call);
        assert_eq!(e["level"], "WARN");
        assert_eq!(e["message"], "tool call add: tool_error");
        assert_eq!(e["data"], json!({"tool": "add", "duration_ms": 1.5, "outcome": "tool_error"}));
        let opened =
            entry("hello", &Record::Opened { peer: "127.0.0.1:5".parse().ok(), transport: Transport::WebSocket });
        assert_eq!(opened["data"], json!({"peer": "127.0.0.1:5", "transport": "websocket"}));
        let closed = Record::Closed { peer: None, transport: Transport::Stdio, open_for: Duration::from_millis(2) };
        assert_eq!(entry("hello", &closed)["data"], json!({"peer": null, "transport": "stdio", "open_ms": 2.0}));
    }

    #[tokio::test]
    async fn a_connection_is_recorded_once_announced_and_closed_only_then() {
        let log = GodotLog::new("ws://127.0.0.1:9/", "t").unwrap();
        let buffered = || log.shared.buffer.lock().unwrap().len();
        drop(log.connection(Transport::WebSocket, None));
        assert_eq!(buffered(), 0, "a connection never announced (a probe, Godot's worker) leaves no record");
        let mut connection = log.connection(Transport::StreamableHttp, None);
        connection.announce();
        connection.announce();
        assert_eq!(buffered(), 1, "opened, once");
        drop(connection);
        assert_eq!(buffered(), 2, "then closed");
    }

    #[tokio::test]
    async fn the_buffer_is_bounded_and_overflow_counted() {
        // A port that refuses: nothing is ever sent.
        let log = GodotLog::new("ws://127.0.0.1:9/", "t").unwrap();
        for _ in 0..MAX_PER_FLUSH + 10 {
            log.call("t").finish(None);
        }
        assert!(log.shared.buffer.lock().unwrap().len() <= MAX_PER_FLUSH);
        assert!(log.shared.overflow.load(Ordering::Relaxed) >= 10);
        assert!(GodotLog::new("http://godot:9060", "t").is_err(), "a URL that is not ws:// is refused");
    }
}
