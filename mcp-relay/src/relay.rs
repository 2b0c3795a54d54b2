//! The relay's state machine: one task owns the session (the client's
//! handshake, the requests in flight, the queue) and reacts to events from
//! stdin, the backend and the connector, so no state is shared or locked.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use mcp_runtime::client::{Endpoint, WebSocket};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backend::{Backend, Reconnect, spawn_connector};
use crate::stdio;

/// JSON-RPC "server error" code for every answer the relay makes up itself.
const RELAY_ERROR: i64 = -32000;
const PARSE_ERROR: i64 = -32700;

#[derive(Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    pub connect_timeout: Duration,
    pub reconnect_initial_delay: Duration,
    pub reconnect_max_delay: Duration,
    pub queue_timeout: Duration,
    pub queue_limit: usize,
    pub ping_interval: Option<Duration>,
}

pub enum Event {
    /// A line from stdin (with its line break).
    Client(String),
    ClientNotUtf8,
    ClientClosed,
    Connected {
        ws: Box<WebSocket>,
        subprotocol: bool,
    },
    ConnectFailed(String),
    Backend {
        generation: u64,
        frame: String,
    },
    BackendClosed {
        generation: u64,
        reason: String,
    },
}

enum Phase {
    /// No backend; messages queue.
    Down,
    /// The client's `initialize` was re-sent to a new backend; its answer is
    /// swallowed, and messages keep queueing until it arrives.
    Replaying {
        init_id: String,
        deadline: Instant,
    },
    Up,
}

/// The client's handshake, kept for replay.
struct Handshake {
    /// The `initialize` request exactly as the client sent it.
    request: String,
    id: String,
    /// Set once a backend answered it: only then is there a session to replay.
    answered: bool,
    /// `notifications/initialized`, once the client sent it.
    initialized: Option<String>,
}

struct Queued {
    message: String,
    /// The request id, for requests (which must be answered if they expire).
    id: Option<String>,
    expires: Instant,
}

/// The members of a message the relay looks at; everything else passes through.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelledParams<'a> {
    #[serde(borrow)]
    request_id: &'a RawValue,
}

struct Relay {
    config: Config,
    events: mpsc::UnboundedSender<Event>,
    stdout: mpsc::UnboundedSender<String>,
    backend: Option<Backend>,
    generation: u64,
    phase: Phase,
    connecting: bool,
    offer_subprotocol: bool,
    last_connect_error: Option<String>,
    handshake: Option<Handshake>,
    /// Ids of client requests sent to the current backend and not answered yet.
    in_flight: HashSet<String>,
    queue: VecDeque<Queued>,
}

pub async fn run(config: Config) {
    let (events, mut rx) = mpsc::unbounded_channel();
    let (stdout, writer) = stdio::spawn_writer(events.clone());
    stdio::spawn_reader(events.clone());
    tracing::info!(backend = config.endpoint.url(), "relaying stdio to the backend");
    let mut relay = Relay {
        config,
        events,
        stdout,
        backend: None,
        generation: 0,
        phase: Phase::Down,
        connecting: false,
        offer_subprotocol: true,
        last_connect_error: None,
        handshake: None,
        in_flight: HashSet::new(),
        queue: VecDeque::new(),
    };
    relay.connect();
    loop {
        let deadline = relay.next_deadline();
        let event = tokio::select! {
            event = rx.recv() => event,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                relay.on_deadline();
                continue;
            }
        };
        match event {
            None | Some(Event::ClientClosed) => break,
            Some(event) => relay.on_event(event),
        }
    }
    tracing::info!("the client closed stdio; stopping");
    let Relay { stdout, backend, .. } = relay;
    drop(backend);
    drop(stdout);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

impl Relay {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Client(line) => self.on_client_line(line),
            Event::ClientNotUtf8 => {
                self.answer_error(None, PARSE_ERROR, "mcp-relay: the line on stdin is not UTF-8".into());
            }
            Event::ClientClosed => {}
            Event::Connected { ws, subprotocol } => self.on_connected(*ws, subprotocol),
            Event::ConnectFailed(reason) => self.last_connect_error = Some(reason),
            Event::Backend { generation, frame } if generation == self.generation => self.on_backend_frame(frame),
            Event::BackendClosed { generation, reason } if generation == self.generation => {
                self.on_backend_lost(&reason)
            }
            // From a connection already given up on.
            Event::Backend { .. } | Event::BackendClosed { .. } => {}
        }
    }

    fn connect(&mut self) {
        if self.connecting {
            return;
        }
        self.connecting = true;
        let settings = Reconnect {
            endpoint: self.config.endpoint.clone(),
            connect_timeout: self.config.connect_timeout,
            initial_delay: self.config.reconnect_initial_delay,
            max_delay: self.config.reconnect_max_delay,
        };
        spawn_connector(settings, self.offer_subprotocol, self.events.clone());
    }

    fn on_client_line(&mut self, mut line: String) {
        while line.ends_with(['\n', '\r']) {
            line.pop();
        }
        if line.trim().is_empty() {
            return;
        }
        let (id, method, cancelled) = match serde_json::from_str::<Envelope<'_>>(&line) {
            Ok(env) => {
                let cancelled = match (&env.method, env.params) {
                    (Some(m), Some(p)) if m == "notifications/cancelled" => {
                        serde_json::from_str::<CancelledParams<'_>>(p.get()).ok().map(|c| c.request_id.get().to_owned())
                    }
                    _ => None,
                };
                (env.id.map(|id| id.get().to_owned()), env.method.map(|m| m.into_owned()), cancelled)
            }
            // A JSON array (a batch from an old client) passes through untracked.
            Err(_) if line.trim_start().starts_with('[') => (None, None, None),
            Err(e) => {
                tracing::warn!(cause = %e, "the client sent a line that is not JSON");
                self.answer_error(None, PARSE_ERROR, format!("mcp-relay: the line is not JSON: {e}"));
                return;
            }
        };
        // Only requests carry both a method and an id; responses to the
        // backend's own requests carry an id only.
        let request_id = if method.is_some() { id } else { None };
        match method.as_deref() {
            Some("initialize") if request_id.is_some() => {
                self.handshake = Some(Handshake {
                    request: line.clone(),
                    id: request_id.clone().unwrap_or_default(),
                    answered: false,
                    initialized: None,
                });
            }
            Some("notifications/initialized") => {
                if let Some(h) = &mut self.handshake {
                    h.initialized = Some(line.clone());
                }
            }
            Some("notifications/cancelled") => {
                if let Some(cancelled) = &cancelled {
                    self.in_flight.remove(cancelled);
                    let before = self.queue.len();
                    self.queue.retain(|q| q.id.as_deref() != Some(cancelled.as_str()));
                    if self.queue.len() != before {
                        tracing::debug!(id = %cancelled, "the client cancelled a queued request; dropped both");
                        return;
                    }
                }
            }
            _ => {}
        }
        if matches!(self.phase, Phase::Up) {
            self.forward(line, request_id);
        } else {
            self.enqueue(line, request_id);
        }
    }

    fn forward(&mut self, message: String, request_id: Option<String>) {
        let Some(backend) = &self.backend else {
            return self.enqueue(message, request_id);
        };
        if let Some(id) = request_id {
            self.in_flight.insert(id);
        }
        backend.send(message);
    }

    fn enqueue(&mut self, message: String, id: Option<String>) {
        if self.queue.len() >= self.config.queue_limit {
            let url = self.config.endpoint.url();
            match id {
                Some(id) => self.answer_error(
                    Some(&id),
                    RELAY_ERROR,
                    format!(
                        "mcp-relay: the backend {url} is unreachable and {} messages are already waiting for it; \
                         the request was not sent{}",
                        self.queue.len(),
                        self.last_error_suffix()
                    ),
                ),
                None => tracing::warn!("queue full while the backend is down; dropping a notification"),
            }
            return;
        }
        let expires = Instant::now() + self.config.queue_timeout;
        self.queue.push_back(Queued { message, id, expires });
    }

    fn on_connected(&mut self, ws: WebSocket, subprotocol: bool) {
        self.connecting = false;
        self.offer_subprotocol = subprotocol;
        self.last_connect_error = None;
        self.generation += 1;
        let backend = Backend::start(ws, self.generation, self.config.ping_interval, self.events.clone());
        tracing::info!(backend = self.config.endpoint.url(), generation = self.generation, "backend connected");
        match &self.handshake {
            Some(h) if h.answered => {
                tracing::info!("replaying the client's initialize to the new backend");
                backend.send(h.request.clone());
                self.phase =
                    Phase::Replaying { init_id: h.id.clone(), deadline: Instant::now() + self.config.connect_timeout };
                self.backend = Some(backend);
            }
            _ => {
                self.backend = Some(backend);
                self.go_up();
            }
        }
    }

    /// The session is in place on the backend: send everything that waited.
    fn go_up(&mut self) {
        self.phase = Phase::Up;
        let queued = std::mem::take(&mut self.queue);
        if !queued.is_empty() {
            tracing::info!(count = queued.len(), "sending the messages queued while the backend was down");
        }
        for q in queued {
            self.forward(q.message, q.id);
        }
    }

    fn on_backend_frame(&mut self, frame: String) {
        let env = serde_json::from_str::<Envelope<'_>>(&frame).ok();
        let answered_id = env.as_ref().filter(|e| e.method.is_none()).and_then(|e| e.id).map(|id| id.get());
        if let Phase::Replaying { init_id, .. } = &self.phase
            && answered_id == Some(init_id.as_str())
        {
            if env.as_ref().is_some_and(|e| e.error.is_some()) {
                tracing::error!(answer = %frame, "the new backend rejected the replayed initialize");
            } else {
                tracing::info!("session replayed on the new backend");
            }
            let initialized = self.handshake.as_ref().and_then(|h| h.initialized.clone());
            if let (Some(note), Some(backend)) = (initialized, &self.backend) {
                backend.send(note);
            }
            self.go_up();
            return;
        }
        if let Some(id) = answered_id {
            self.in_flight.remove(id);
            if let Some(h) = &mut self.handshake
                && h.id == id
            {
                h.answered = true;
            }
        }
        self.to_client(frame);
    }

    fn on_backend_lost(&mut self, reason: &str) {
        tracing::warn!(reason, in_flight = self.in_flight.len(), "backend connection lost; reconnecting");
        self.backend = None;
        // Anything the old connection's tasks still report is stale now.
        self.generation += 1;
        self.phase = Phase::Down;
        let url = self.config.endpoint.url().to_owned();
        let mut lost: Vec<String> = self.in_flight.drain().collect();
        lost.sort();
        for id in lost {
            let unanswered_initialize = self.handshake.as_ref().is_some_and(|h| h.id == id && !h.answered);
            if unanswered_initialize {
                // Nothing has happened on the backend yet: safe to send again.
                let request = self.handshake.as_ref().map(|h| h.request.clone()).unwrap_or_default();
                let expires = Instant::now() + self.config.queue_timeout;
                self.queue.push_front(Queued { message: request, id: Some(id), expires });
                continue;
            }
            self.answer_error(
                Some(&id),
                RELAY_ERROR,
                format!(
                    "mcp-relay: the connection to the backend {url} was lost before it answered ({reason}); \
                     the request may or may not have been carried out"
                ),
            );
        }
        self.connect();
    }

    fn next_deadline(&self) -> Option<Instant> {
        let replay = match &self.phase {
            Phase::Replaying { deadline, .. } => Some(*deadline),
            _ => None,
        };
        let queued = self.queue.iter().map(|q| q.expires).min();
        replay.into_iter().chain(queued).min()
    }

    fn on_deadline(&mut self) {
        let now = Instant::now();
        if let Phase::Replaying { deadline, .. } = &self.phase
            && *deadline <= now
        {
            let reason =
                format!("the backend did not answer the replayed initialize within {:?}", self.config.connect_timeout);
            self.on_backend_lost(&reason);
        }
        let (expired, kept): (Vec<Queued>, Vec<Queued>) = self.queue.drain(..).partition(|q| q.expires <= now);
        self.queue = kept.into();
        for q in expired {
            match q.id {
                Some(id) => {
                    let message = format!(
                        "mcp-relay: the backend {} has been unreachable for {:?}; the request was not sent{}",
                        self.config.endpoint.url(),
                        self.config.queue_timeout,
                        self.last_error_suffix()
                    );
                    self.answer_error(Some(&id), RELAY_ERROR, message);
                }
                None => tracing::warn!("dropping a notification that waited too long for the backend"),
            }
        }
    }

    fn last_error_suffix(&self) -> String {
        match &self.last_connect_error {
            Some(e) => format!(" (last connection error: {e})"),
            None => String::new(),
        }
    }

    fn to_client(&self, frame: String) {
        let _ = self.stdout.send(single_line(frame));
    }

    fn answer_error(&self, id: Option<&str>, code: i64, message: String) {
        let id = id.and_then(|raw| RawValue::from_string(raw.to_owned()).ok());
        let answer = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": code, "message": message },
        });
        self.to_client(answer.to_string());
    }
}

/// Raw line breaks can only sit between JSON tokens (inside strings they
/// must be escaped), so turning them into spaces keeps the message intact
/// while keeping it on one stdio line.
fn single_line(frame: String) -> String {
    if frame.contains(['\n', '\r']) { frame.replace(['\n', '\r'], " ") } else { frame }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_frames_become_one_equivalent_line() {
        let pretty = "{\n  \"jsonrpc\": \"2.0\",\r\n  \"id\": 1,\n  \"result\": {\"text\": \"a\\nb\"}\n}".to_owned();
        let line = single_line(pretty.clone());
        assert!(!line.contains('\n') && !line.contains('\r'));
        let a: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        let b: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn compact_frames_are_untouched() {
        let frame = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_owned();
        assert_eq!(single_line(frame.clone()), frame);
    }
}
