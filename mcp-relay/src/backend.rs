//! The backend side: connecting with backoff, and one reader and one writer
//! task per WebSocket connection.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mcp_runtime::client::{Backoff, Endpoint, WebSocket};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::relay::Event;

/// Settings the connector needs.
#[derive(Debug, Clone)]
pub struct Reconnect {
    pub endpoint: Endpoint,
    pub connect_timeout: Duration,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

/// Tries to connect until it succeeds, then reports `Connected`. Failures
/// are reported too, so the relay can quote the last one in its errors.
pub fn spawn_connector(settings: Reconnect, offer_subprotocol: bool, events: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(settings.initial_delay, settings.max_delay);
        let mut attempt = 1u32;
        loop {
            match settings.endpoint.connect(settings.connect_timeout, offer_subprotocol).await {
                Ok((ws, subprotocol)) => {
                    let _ = events.send(Event::Connected { ws: Box::new(ws), subprotocol });
                    return;
                }
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(attempt, cause = %e, retry_in = ?wait, "backend unreachable");
                    if events.send(Event::ConnectFailed(e.to_string())).is_err() {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    });
}

/// A live backend connection. Dropping it closes the socket and stops its tasks.
pub struct Backend {
    outgoing: mpsc::UnboundedSender<String>,
    _stop: DropGuard,
}

impl Backend {
    pub fn start(
        ws: WebSocket,
        generation: u64,
        ping_interval: Option<Duration>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Backend {
        let (sink, stream) = ws.split();
        let (outgoing, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        tokio::spawn(write_loop(sink, rx, ping_interval, stop.clone(), generation, events.clone()));
        tokio::spawn(read_loop(stream, ping_interval, stop.clone(), generation, events));
        Backend { outgoing, _stop: stop.drop_guard() }
    }

    /// Queues one message for the backend. A failure shows up as `BackendClosed`.
    pub fn send(&self, message: String) {
        let _ = self.outgoing.send(message);
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<String>,
    ping_interval: Option<Duration>,
    stop: CancellationToken,
    generation: u64,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut pings = ping_interval.map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let mut batch = Vec::with_capacity(64);
    let failure = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break None,
            n = rx.recv_many(&mut batch, 64) => {
                if n == 0 {
                    break None;
                }
                let mut result = Ok(());
                for message in batch.drain(..) {
                    result = sink.feed(Message::text(message)).await;
                    if result.is_err() {
                        break;
                    }
                }
                if let Err(e) = result.and(sink.flush().await) {
                    break Some(format!("sending to the backend failed: {e}"));
                }
            }
            _ = async { pings.as_mut().expect("guarded by the if").tick().await }, if pings.is_some() => {
                if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                    break Some(format!("pinging the backend failed: {e}"));
                }
            }
        }
    };
    match failure {
        Some(reason) => {
            let _ = events.send(Event::BackendClosed { generation, reason });
        }
        None => {
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        }
    }
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    ping_interval: Option<Duration>,
    stop: CancellationToken,
    generation: u64,
    events: mpsc::UnboundedSender<Event>,
) {
    // Pongs count as frames, so a healthy idle backend never trips this.
    let silence_limit = ping_interval.map(|every| every * 3).unwrap_or(Duration::MAX);
    let reason = loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            next = tokio::time::timeout(silence_limit, stream.next()) => next,
        };
        let Ok(next) = next else {
            break format!("the backend sent nothing for {silence_limit:?}, not even a pong");
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                if events.send(Event::Backend { generation, frame: text.as_str().to_owned() }).is_err() {
                    return;
                }
            }
            Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                Ok(frame) => {
                    if events.send(Event::Backend { generation, frame }).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    tracing::warn!(len = bytes.len(), "dropping a binary frame from the backend that is not UTF-8")
                }
            },
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => format!("the backend closed the connection ({} {})", f.code, f.reason),
                    None => "the backend closed the connection".to_owned(),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("reading from the backend failed: {e}"),
            None => break "the backend closed the connection".to_owned(),
        }
    };
    let _ = events.send(Event::BackendClosed { generation, reason });
}
