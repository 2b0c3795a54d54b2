//! The WebSocket side of a connection: handshake (subprotocol, connection
//! limit), then one task that reads frames, runs that connection's calls and
//! writes responses and notifications.
//!
//! The calls of a connection run inside its own task (a `FuturesUnordered`)
//! rather than as spawned tasks: no cross-thread wake-ups per call, and
//! dropping the connection drops its calls. Reading stops while the
//! connection has `max_in_flight` calls running, so a flood meets TCP
//! backpressure instead of growing memory. Writes are fed to the socket
//! buffer and flushed only when nothing else is ready, which batches
//! responses under load without delaying a lone one.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Action, CallDone, CallFuture, ServerCore, Session};

/// The subprotocol MCP clients offer (the TypeScript client insists on it).
const SUBPROTOCOL: &str = "mcp";

/// How long a response held behind a ping barrier (see `Connection::finish`)
/// waits for the pong before it goes out anyway.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a write may wait for the peer to read before the connection is dropped.
const WRITE_STALL_LIMIT: Duration = Duration::from_secs(60);

/// How long the closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection settings, resolved once by the builder.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    pub(crate) max_message_size: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl TransportConfig {
    fn websocket(&self) -> WebSocketConfig {
        // tungstenite's defaults (128 KiB read buffer, 128 KiB write target)
        // would cost ~128 KiB per idle connection; small buffers grow when a
        // big message actually arrives.
        WebSocketConfig::default()
            .read_buffer_size(2 * 1024)
            .write_buffer_size(16 * 1024)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }
}

type Ws = WebSocketStream<TcpStream>;

/// Handshake, then the connection loop. `admitted` is false when the server
/// is at its connection limit: the client then gets an HTTP 503 with a
/// reason instead of a WebSocket.
pub(crate) async fn serve_connection(
    core: Arc<ServerCore>,
    config: Arc<TransportConfig>,
    stream: TcpStream,
    admitted: bool,
    shutdown: CancellationToken,
) {
    // Responses are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let log_peer = core.godot_log.as_ref().map(|_| Box::new(stream.peer_addr().ok())); // godot_log hook
    let max_connections = config.max_connections;
    // The callback's signature is tungstenite's, large error type and all.
    #[allow(clippy::result_large_err)]
    let negotiate = move |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        if !admitted {
            let mut refusal = ErrorResponse::new(Some(format!(
                "this MCP server is at its limit of {max_connections} connections; retry later\n"
            )));
            *refusal.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            refusal.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(refusal);
        }
        if offers_subprotocol(request) {
            response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
        }
        Ok(response)
    };
    // Boxed, like every other short-lived stage below: the task keeps room
    // for its largest state for as long as the connection lives, and an idle
    // connection should pay for the loop only.
    let handshake = Box::pin(tokio::time::timeout(
        config.handshake_timeout,
        accept_hdr_async_with_config(stream, negotiate, Some(config.websocket())),
    ));
    let ws = tokio::select! {
        _ = shutdown.cancelled() => return,
        handshake = handshake => match handshake {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                if admitted {
                    tracing::debug!(error = %e, "WebSocket handshake failed");
                } else {
                    tracing::warn!(max_connections, "refused a connection: at the connection limit");
                }
                return;
            }
            Err(_) => {
                tracing::debug!("WebSocket handshake timed out");
                return;
            }
        },
    };
    tracing::debug!("connection open");
    let _connection_log = core.godot_log.as_ref().zip(log_peer).map(|(log, peer)| log.connection(*peer)); // godot_log hook
    Box::pin(Connection::new(core, config, shutdown).run(ws)).await;
    tracing::debug!("connection closed");
}

fn offers_subprotocol(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

enum Event {
    Frame(Option<Result<Message, WsError>>),
    Done(CallDone),
    Notification(String),
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
    session: Session,
    config: Arc<TransportConfig>,
    shutdown: CancellationToken,
    calls: Calls,
    /// Frames fed to tungstenite but not yet flushed to the socket.
    dirty: bool,
    /// A notification went out since the last barrier ping.
    notice_pending: bool,
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
struct Barrier {
    /// Sequence number of the last barrier ping sent, and of the last pong seen.
    sent: u64,
    acked: u64,
    /// Responses with the barrier they wait for, in completion order.
    parked: Vec<(u64, String)>,
    deadline: Pin<Box<Sleep>>,
}

impl Connection {
    fn new(core: Arc<ServerCore>, config: Arc<TransportConfig>, shutdown: CancellationToken) -> Connection {
        Connection {
            session: Session::new(core),
            config,
            shutdown,
            calls: Calls::default(),
            dirty: false,
            notice_pending: false,
            barrier: None,
        }
    }

    async fn run(mut self, mut ws: Ws) {
        // Boxed: the compiler lays the loop's state out next to the close
        // path's instead of over it, and this halves an idle connection.
        let ending = Box::pin(self.serve(&mut ws)).await;
        // Whatever ended the connection ends its calls: tokens first, so tools
        // watching them see the cancellation, then drop the futures.
        self.session.cancel_all();
        self.calls.clear();
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

    async fn serve(&mut self, ws: &mut Ws) -> Ending {
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
                // Notifications first: a tool's progress must reach the
                // client before that tool's response. Only running calls
                // send them (a call finishing drains what it left), so an
                // idle loop does not re-arm the channel's waker.
                if !self.calls.is_empty()
                    && let Some(rx) = self.session.notifications()
                    && let Poll::Ready(Some(text)) = rx.poll_recv(cx)
                {
                    return Poll::Ready(Event::Notification(text));
                }
                if let Some(calls) = self.calls.running()
                    && let Poll::Ready(Some(done)) = calls.poll_next_unpin(cx)
                {
                    return Poll::Ready(Event::Done(done));
                }
                if !draining
                    && self.calls.len() < self.config.max_in_flight
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
                        Message::Text(text) => match self.session.handle_text(text.as_str()) {
                            Action::Nothing => Ok(()),
                            Action::Reply(reply) => self.send(ws, reply).await,
                            Action::Call(mut call) => {
                                // Most tools finish on their first poll; those
                                // skip the call set. A pending one is polled
                                // again by the set, which registers its own waker.
                                match poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
                                    Poll::Ready(done) => self.finish(ws, done).await,
                                    Poll::Pending => {
                                        self.calls.push(call);
                                        Ok(())
                                    }
                                }
                            }
                        },
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
                Event::Done(done) => {
                    let result = self.finish(ws, done).await;
                    if draining && self.calls.is_empty() {
                        let _ = self.release(ws, true).await;
                        let _ = unstalled(ws.flush()).await;
                        return shutting_down();
                    }
                    result
                }
                Event::Notification(text) => {
                    self.notice_pending = true;
                    self.send(ws, text).await
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
                    if self.calls.is_empty() {
                        let _ = self.release(ws, true).await;
                        return shutting_down();
                    }
                    grace = Some(Box::pin(tokio::time::sleep(self.config.shutdown_grace)));
                    Ok(())
                }
                Event::GraceOver => {
                    tracing::warn!(calls = self.calls.len(), "shutdown grace period over; cancelling calls in flight");
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

    /// A call ended: its notifications, then its response (if it was not
    /// cancelled), held behind a [`Barrier`] when notifications preceded it.
    async fn finish(&mut self, ws: &mut Ws, done: CallDone) -> Result<(), WsError> {
        self.session.call_finished(&done);
        // Drained even for a cancelled call: left in the channel, its
        // progress would go out later and hold an unrelated response back.
        let mut notified = false;
        while let Some(text) = self.session.notifications().and_then(|rx| rx.try_recv().ok()) {
            self.send(ws, text).await?;
            notified = true;
        }
        let Some(response) = done.response else {
            // No response to hold back; only calls still running may own
            // some of what just went out.
            self.notice_pending |= notified && !self.calls.is_empty();
            return Ok(());
        };
        self.notice_pending |= notified;
        if std::mem::take(&mut self.notice_pending) {
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
    async fn pong(&mut self, ws: &mut Ws, payload: &[u8]) -> Result<(), WsError> {
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
    async fn release(&mut self, ws: &mut Ws, all: bool) -> Result<(), WsError> {
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

    async fn send(&mut self, ws: &mut Ws, text: String) -> Result<(), WsError> {
        self.feed(ws, Message::text(text)).await
    }

    async fn feed(&mut self, ws: &mut Ws, message: Message) -> Result<(), WsError> {
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

/// The calls of one connection. The `FuturesUnordered` (two allocations) is
/// made on the first call: most idle connections never need it.
#[derive(Default)]
struct Calls(Option<FuturesUnordered<CallFuture>>);

impl Calls {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, call: CallFuture) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(call);
    }

    fn clear(&mut self) {
        self.0 = None;
    }

    /// The set, when it has calls to poll.
    fn running(&mut self) -> Option<&mut FuturesUnordered<CallFuture>> {
        self.0.as_mut().filter(|calls| !calls.is_empty())
    }
}
