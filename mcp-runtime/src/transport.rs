//! The WebSocket side of a connection: framing, ping/pong keepalive, the
//! ping barrier and close codes. The session rules (calls, in-flight cap,
//! cancellation, bookkeeping) are the [`Engine`]'s.
//!
//! The calls of a connection run inside its own task rather than as spawned
//! tasks: no cross-thread wake-ups per call, and dropping the connection
//! drops its calls. Reading stops while the engine is at its in-flight cap,
//! so a flood meets TCP backpressure instead of growing memory. Writes are
//! fed to the socket buffer and flushed only when nothing else is ready,
//! which batches responses under load without delaying a lone one.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use tokio_util::sync::CancellationToken;

use crate::dispatch::ServerCore;
use crate::engine::{Engine, Outgoing};
use crate::godot_log::Transport;
use crate::protocol::{self, error_code};
use crate::service::{Service, TransportConfig};

/// The subprotocol MCP clients offer (the TypeScript client insists on it).
const SUBPROTOCOL: &str = "mcp";

/// How long a response held behind a ping barrier (see `Connection::respond`)
/// waits for the pong before it goes out anyway.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a write may wait for the peer to read before the connection is dropped.
const WRITE_STALL_LIMIT: Duration = Duration::from_secs(60);

/// How long the closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

fn websocket_config(config: &TransportConfig) -> WebSocketConfig {
    // tungstenite's defaults (128 KiB read buffer, 128 KiB write target)
    // would cost ~128 KiB per idle connection; small buffers grow when a
    // big message actually arrives.
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size))
}

/// What a WebSocket connection runs on: the TCP stream itself when hyper
/// hands it back whole (the listener's connections), or hyper's upgraded
/// connection otherwise (a router served by someone else).
trait Socket: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Socket for T {}

/// Whether a request asks for a WebSocket.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
}

/// Where the listener's connection task picks up an upgraded connection, so
/// that the WebSocket runs in the same task once hyper lets go of the
/// socket (no second task per connection). Inserted only into requests
/// that carry `Upgrade`.
#[derive(Clone, Default)]
pub(crate) struct UpgradeSlot(Arc<Mutex<Option<PendingUpgrade>>>);

impl UpgradeSlot {
    fn put(&self, pending: PendingUpgrade) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(pending);
    }

    pub(crate) fn take(&self) -> Option<PendingUpgrade> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A WebSocket handshake answered with 101, waiting for hyper to hand over the socket.
pub(crate) struct PendingUpgrade {
    on_upgrade: OnUpgrade,
    /// Who connected, when known (for the Godot sink).
    peer: Option<SocketAddr>,
}

impl PendingUpgrade {
    /// The connection loop, once the socket is ours.
    pub(crate) async fn run(self, service: Arc<Service>) {
        let upgraded = match self.on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let config = Some(websocket_config(&service.config));
        let connection =
            Connection::new(service.core.clone(), service.config.clone(), service.shutdown.child_token(), self.peer);
        // The listener's connections come back as the TCP stream itself:
        // the WebSocket then reads the socket directly, without hyper's
        // wrappers (fewer layers per read, less memory per connection).
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let tcp = parts.io.into_inner();
                // The bytes read past the handshake, copied out: hyper's
                // buffer they point into must not live as long as the socket.
                let read_past = parts.read_buf.to_vec();
                drop(parts.read_buf);
                let ws = WebSocketStream::from_partially_read(tcp, read_past, Role::Server, config).await;
                tracing::debug!("connection open");
                Box::pin(connection.run(ws)).await;
            }
            Err(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, config).await;
                tracing::debug!("connection open");
                Box::pin(connection.run(ws)).await;
            }
        }
        tracing::debug!("connection closed");
    }
}

/// Answers a WebSocket handshake (the access checks already passed): 101
/// with the `mcp` subprotocol echoed when offered, then the connection
/// runs in the listener's connection task (or a task of its own when the
/// router is served by someone else).
pub(crate) fn upgrade(service: &Arc<Service>, mut request: Request) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        let body = protocol::error_response(None, error_code::INVALID_REQUEST, message, None);
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    if service.shutdown.is_cancelled() {
        let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down; retry later");
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let headers = request.headers();
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if request.method() != axum::http::Method::GET || !connection_upgrade {
        return refuse(StatusCode::BAD_REQUEST, "a WebSocket handshake is a GET with `Connection: Upgrade`");
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        let mut response =
            refuse(StatusCode::UPGRADE_REQUIRED, "unsupported WebSocket version: this server speaks version 13");
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "a WebSocket handshake needs Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let subprotocol = offers_subprotocol(headers);
    let peer = crate::http::peer(&request);
    let pending = PendingUpgrade { on_upgrade: hyper::upgrade::on(&mut request), peer };
    match request.extensions().get::<UpgradeSlot>() {
        Some(slot) => slot.put(pending),
        None => {
            let service = service.clone();
            service.tasks.clone().spawn(pending.run(service));
        }
    }
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let out = response.headers_mut();
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        out.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if subprotocol {
        out.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    }
    response
}

fn offers_subprotocol(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

enum Event {
    Frame(Option<Result<Message, WsError>>),
    Outgoing(Outgoing),
    WriteFailed(WsError),
    PingDue,
    Shutdown,
    GraceOver,
    BarrierTimeout,
}

/// Why the loop ended, and so how to close.
enum Ending {
    /// The peer is gone or the socket failed: nothing to say.
    Dropped,
    /// Send this close frame, then wait briefly for the peer's.
    Close(CloseCode, String),
    /// Send this close frame and stop reading (the read side is unusable).
    CloseNow(CloseCode, String),
}

struct Connection {
    engine: Engine,
    config: Arc<TransportConfig>,
    shutdown: CancellationToken,
    /// Frames fed to tungstenite but not yet flushed to the socket.
    dirty: bool,
    /// Made the first time a response must wait for a barrier.
    barrier: Option<Box<Barrier>>,
}

/// Responses held until the client has provably read the notifications sent
/// before them: the server pings after those notifications and releases the
/// responses when the pong comes back.
///
/// Why: the TypeScript SDK runs notification handlers a microtask late, and
/// removes a request's progress handler as soon as its response is read. A
/// progress notification read in the same chunk as its response is dropped.
/// The pong is written while the client processes that chunk, so a response
/// sent after the pong arrives in a later chunk, after the handler ran.
/// Calls that send no notifications never wait.
///
/// The barrier ping goes out after the call's notifications and before any
/// later message, so each parked response waits for the latest ping sent
/// when it finished; parked responses leave in completion order.
struct Barrier {
    /// Sequence number of the last barrier ping sent, and of the last pong seen.
    sent: u64,
    acked: u64,
    /// Responses with the barrier they wait for, in completion order.
    parked: Vec<(u64, String)>,
    deadline: Pin<Box<Sleep>>,
}

impl Connection {
    fn new(
        core: Arc<ServerCore>,
        config: Arc<TransportConfig>,
        shutdown: CancellationToken,
        peer: Option<SocketAddr>,
    ) -> Connection {
        let engine = Engine::new(core, config.max_in_flight, Transport::WebSocket, peer);
        Connection { engine, config, shutdown, dirty: false, barrier: None }
    }

    async fn run<S: Socket>(mut self, mut ws: WebSocketStream<S>) {
        // Boxed: the compiler lays the loop's state out next to the close
        // path's instead of over it, and this halves an idle connection.
        let ending = Box::pin(self.serve(&mut ws)).await;
        // Whatever ended the connection ends its calls.
        self.engine.close();
        let (frame, wait_for_peer) = match ending {
            Ending::Dropped => return,
            Ending::Close(code, reason) => (CloseFrame { code, reason: reason.into() }, true),
            Ending::CloseNow(code, reason) => (CloseFrame { code, reason: reason.into() }, false),
        };
        let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, async {
            ws.close(Some(frame)).await?;
            if wait_for_peer {
                while let Some(Ok(_)) = ws.next().await {}
            }
            Ok::<(), WsError>(())
        }))
        .await;
    }

    async fn serve<S: Socket>(&mut self, ws: &mut WebSocketStream<S>) -> Ending {
        let mut ping: Option<Interval> = self.config.ping_interval.map(|period| {
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        let mut awaiting_pong = false;
        let mut draining = false;
        let mut grace: Option<Pin<Box<Sleep>>> = None;
        let shutdown = self.shutdown.clone();
        let mut shutdown_signal = pin!(shutdown.cancelled());
        let mut shutdown_armed = false;
        loop {
            let event = poll_fn(|cx| {
                if let Poll::Ready(outgoing) = self.engine.poll_outgoing(cx) {
                    return Poll::Ready(Event::Outgoing(outgoing));
                }
                if !draining
                    && self.engine.accepting()
                    && let Poll::Ready(frame) = ws.poll_next_unpin(cx)
                {
                    return Poll::Ready(Event::Frame(frame));
                }
                if self.dirty {
                    match ws.poll_flush_unpin(cx) {
                        Poll::Ready(Ok(())) => self.dirty = false,
                        Poll::Ready(Err(e)) => return Poll::Ready(Event::WriteFailed(e)),
                        Poll::Pending => {}
                    }
                }
                if !draining {
                    // The first poll leaves this task's waker with the token;
                    // after that an atomic load is enough (polling again
                    // would take the token's lock on every loop).
                    if shutdown_armed {
                        if shutdown.is_cancelled() {
                            return Poll::Ready(Event::Shutdown);
                        }
                    } else if shutdown_signal.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Shutdown);
                    } else {
                        shutdown_armed = true;
                    }
                }
                // Draining reads no frames, so no pong could be seen: a
                // keepalive now would drop the calls the grace is waiting for.
                if !draining
                    && let Some(ping) = &mut ping
                    && ping.poll_tick(cx).is_ready()
                {
                    return Poll::Ready(Event::PingDue);
                }
                if let Some(grace) = &mut grace
                    && grace.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Event::GraceOver);
                }
                if let Some(barrier) = &mut self.barrier
                    && !barrier.parked.is_empty()
                    && barrier.deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Event::BarrierTimeout);
                }
                Poll::Pending
            })
            .await;

            let result = match event {
                Event::Frame(None) => return Ending::Dropped,
                Event::Frame(Some(Err(e))) => return read_error(e),
                Event::Frame(Some(Ok(message))) => {
                    awaiting_pong = false;
                    match message {
                        Message::Text(text) => {
                            // Most tools finish on this first poll and are
                            // answered at once; the engine keeps the others.
                            let engine = &mut self.engine;
                            match poll_fn(|cx| Poll::Ready(engine.receive(text.as_str(), cx))).await {
                                None => Ok(()),
                                Some(outgoing) => self.write(ws, outgoing).await,
                            }
                        }
                        Message::Binary(_) => {
                            return Ending::Close(
                                CloseCode::Unsupported,
                                "binary frames are not supported: send each JSON-RPC message as one text frame"
                                    .to_owned(),
                            );
                        }
                        // tungstenite queued the pong / close reply; flush it.
                        Message::Ping(_) | Message::Close(_) => {
                            self.dirty = true;
                            Ok(())
                        }
                        Message::Pong(payload) => self.pong(ws, &payload).await,
                        Message::Frame(_) => Ok(()),
                    }
                }
                Event::Outgoing(outgoing) => {
                    let result = self.write(ws, outgoing).await;
                    if draining && self.engine.running() == 0 {
                        let _ = self.release(ws, true).await;
                        let _ = unstalled(ws.flush()).await;
                        return shutting_down();
                    }
                    result
                }
                Event::BarrierTimeout => self.release(ws, true).await,
                Event::WriteFailed(e) => Err(e),
                Event::PingDue => {
                    if awaiting_pong {
                        tracing::debug!("peer did not answer the keepalive ping; dropping the connection");
                        return Ending::Dropped;
                    }
                    awaiting_pong = true;
                    self.feed(ws, Message::Ping(Default::default())).await
                }
                Event::Shutdown => {
                    draining = true;
                    if self.engine.running() == 0 {
                        let _ = self.release(ws, true).await;
                        return shutting_down();
                    }
                    grace = Some(Box::pin(tokio::time::sleep(self.config.shutdown_grace)));
                    Ok(())
                }
                Event::GraceOver => {
                    tracing::warn!(
                        calls = self.engine.running(),
                        "shutdown grace period over; cancelling calls in flight"
                    );
                    let _ = self.release(ws, true).await;
                    return shutting_down();
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "write failed; dropping the connection");
                return Ending::Dropped;
            }
        }
    }

    /// Writes what the engine handed out; a response that followed its
    /// call's notifications waits behind a [`Barrier`].
    async fn write<S: Socket>(&mut self, ws: &mut WebSocketStream<S>, outgoing: Outgoing) -> Result<(), WsError> {
        match outgoing {
            Outgoing::Reply(text) | Outgoing::Notification(text) => self.send(ws, text).await,
            Outgoing::Response { text, after_notifications } => self.respond(ws, text, after_notifications).await,
            Outgoing::CallEnded => Ok(()),
        }
    }

    async fn respond<S: Socket>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        response: String,
        after_notifications: bool,
    ) -> Result<(), WsError> {
        if after_notifications {
            let barrier = self.barrier.get_or_insert_with(|| {
                Box::new(Barrier {
                    sent: 0,
                    acked: 0,
                    parked: Vec::new(),
                    deadline: Box::pin(tokio::time::sleep(BARRIER_TIMEOUT)),
                })
            });
            barrier.sent += 1;
            let ping = Message::Ping(barrier.sent.to_be_bytes().to_vec().into());
            self.feed(ws, ping).await?;
        }
        if let Some(barrier) = &mut self.barrier
            && barrier.acked < barrier.sent
        {
            if barrier.parked.is_empty() {
                barrier.deadline.as_mut().reset(Instant::now() + BARRIER_TIMEOUT);
            }
            barrier.parked.push((barrier.sent, response));
            return Ok(());
        }
        self.send(ws, response).await
    }

    /// A pong: if it answers a barrier ping, the responses behind it go out.
    async fn pong<S: Socket>(&mut self, ws: &mut WebSocketStream<S>, payload: &[u8]) -> Result<(), WsError> {
        let Some(barrier) = &mut self.barrier else { return Ok(()) };
        let Ok(seq) = <[u8; 8]>::try_from(payload).map(u64::from_be_bytes) else { return Ok(()) };
        if seq <= barrier.acked || seq > barrier.sent {
            return Ok(());
        }
        barrier.acked = seq;
        self.release(ws, false).await
    }

    /// Sends the parked responses whose barrier was acknowledged (or all of
    /// them: the pong is late, or the connection is closing).
    async fn release<S: Socket>(&mut self, ws: &mut WebSocketStream<S>, all: bool) -> Result<(), WsError> {
        let Some(barrier) = &mut self.barrier else { return Ok(()) };
        if all {
            barrier.acked = barrier.sent;
        }
        let acked = barrier.acked;
        let split = barrier.parked.iter().take_while(|(seq, _)| *seq <= acked).count();
        let ready: Vec<(u64, String)> = barrier.parked.drain(..split).collect();
        for (_, response) in ready {
            self.send(ws, response).await?;
        }
        Ok(())
    }

    async fn send<S: Socket>(&mut self, ws: &mut WebSocketStream<S>, text: String) -> Result<(), WsError> {
        self.feed(ws, Message::text(text)).await
    }

    async fn feed<S: Socket>(&mut self, ws: &mut WebSocketStream<S>, message: Message) -> Result<(), WsError> {
        self.dirty = true;
        unstalled(ws.feed(message)).await
    }
}

/// Runs a write, giving up when the peer has not taken a byte for
/// [`WRITE_STALL_LIMIT`]: a peer that stopped reading must not pin the
/// connection (and the shutdown waiting for it) forever. A write that
/// completes at once, the usual case, never arms a timer.
async fn unstalled<F>(write: F) -> Result<(), WsError>
where
    F: Future<Output = Result<(), WsError>>,
{
    let mut write = pin!(write);
    if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        return result;
    }
    match Box::pin(tokio::time::timeout(WRITE_STALL_LIMIT, write)).await {
        Ok(result) => result,
        Err(_) => Err(WsError::Io(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"))),
    }
}

/// 1012 "Service Restart", not 1001 "Going Away": the ICCM relay
/// (`StableRelay`, websockets 14.x) takes 1000/1001 for a clean end, re-enters
/// its loop on the closed socket without yielding and spins at 100% CPU,
/// serving no one. Any other code it meets as it meets a crash, and new
/// sessions go through (tests/tests/iccm_relay.rs). The official clients end
/// the session alike for both codes.
fn shutting_down() -> Ending {
    Ending::Close(CloseCode::Restart, "server shutting down".to_owned())
}

fn read_error(e: WsError) -> Ending {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Ending::CloseNow(CloseCode::Size, format!("message of {size} bytes is over the limit of {max_size} bytes"))
        }
        WsError::Utf8(_) => Ending::CloseNow(CloseCode::Invalid, "text frame is not valid UTF-8".to_owned()),
        e => {
            tracing::debug!(error = %e, "connection failed");
            Ending::Dropped
        }
    }
}
