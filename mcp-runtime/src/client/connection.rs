//! One live WebSocket to a server: a writer task fed by a channel, a reader
//! task that matches answers to callers by id, and the pending map between
//! them.
//!
//! Like hyper's client dispatch, every caller waits on a oneshot whose
//! sender sits in the pending map; when the connection dies the map is
//! drained and every waiter fails at once with "connection lost".
//!
//! Writing avoids a task hop: frames go into a lock-free queue, and the
//! caller that finds the socket's write half free drains the whole queue
//! into it and flushes once. A caller that finds it busy just leaves its
//! frame queued: the holder looks at the queue's length again after
//! releasing the write half, so the frame cannot be stranded. No frame is
//! ever held across an await outside the queue, so a caller dropped
//! mid-write loses nothing (the writer task takes over).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::poll_fn;

use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::error::ClientError;
use super::transport::WebSocket;
use super::wire::{self, Incoming, Progress, ProgressParams, RpcErrorObject};

/// How an answer reaches its caller.
pub(crate) type Reply = Result<Box<RawValue>, Failure>;

pub(crate) enum Failure {
    /// The server answered with a JSON-RPC error.
    Rpc(RpcErrorObject),
    /// The connection died first.
    Lost(ClientError),
}

struct PendingCall {
    reply: oneshot::Sender<Reply>,
    progress: Option<mpsc::UnboundedSender<Progress>>,
}

struct Pending {
    /// `Some(reason)` once the connection is closed: no call may register after that.
    closed: Option<String>,
    calls: HashMap<u64, PendingCall>,
}

/// The call could not be sent because the connection had closed; it never
/// reached the server, so it may be retried on the next connection. Holds
/// the frame, so the retry does not serialize it again.
pub(crate) struct NotSent(pub String);

pub(crate) struct Connection {
    url: Arc<str>,
    /// Frames not yet handed to the socket.
    outgoing: mpsc::UnboundedSender<String>,
    /// How many frames `outgoing` holds, readable without the writer lock.
    queued: AtomicUsize,
    /// Whether the last call flushed had other calls in flight.
    had_company: AtomicBool,
    /// The write half and the queue's receiving end: whoever holds it drains.
    writer: tokio::sync::Mutex<WriteHalf>,
    /// Set when a frame was queued that nobody is draining yet.
    writer_wake: Notify,
    pending: Mutex<Pending>,
    closed: CancellationToken,
    /// When the reader last saw a frame, in ms since `started`: the writer
    /// checks it at each ping, so the reader pays no timer per frame.
    last_frame_ms: AtomicU64,
    started: std::time::Instant,
}

struct WriteHalf {
    sink: futures_util::stream::SplitSink<WebSocket, Message>,
    queue: mpsc::UnboundedReceiver<String>,
}

impl Connection {
    /// Starts the reader and writer tasks for an upgraded socket.
    /// `ping_interval`: how often to ping the server; a connection on which
    /// nothing at all (not even a pong) arrives for three intervals is
    /// declared dead, so a silently vanished server cannot strand the client.
    pub(crate) fn start(
        ws: WebSocket,
        url: Arc<str>,
        generation: u64,
        ping_interval: Option<Duration>,
    ) -> Arc<Connection> {
        let (sink, stream) = ws.split();
        let (outgoing, queue) = mpsc::unbounded_channel();
        let conn = Arc::new(Connection {
            url: url.clone(),
            outgoing,
            queued: AtomicUsize::new(0),
            had_company: AtomicBool::new(false),
            writer: tokio::sync::Mutex::new(WriteHalf { sink, queue }),
            writer_wake: Notify::new(),
            pending: Mutex::new(Pending { closed: None, calls: HashMap::new() }),
            closed: CancellationToken::new(),
            last_frame_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
        });
        let span = tracing::info_span!("mcp_connection", url = %url, generation);
        tokio::spawn(write_loop(conn.clone(), ping_interval).instrument(span.clone()));
        tokio::spawn(read_loop(conn.clone(), stream).instrument(span));
        conn
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn is_open(&self) -> bool {
        !self.closed.is_cancelled()
    }

    /// Completes once the connection is closed, for whatever reason.
    pub(crate) async fn wait_closed(&self) {
        self.closed.cancelled().await
    }

    /// Why the connection closed (`None` while open).
    pub(crate) fn close_reason(&self) -> Option<String> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).closed.clone()
    }

    /// Registers the call under `id` and queues its frame; the caller then
    /// sends it with [`Connection::flush`].
    pub(crate) fn start_call(
        &self,
        id: u64,
        frame: String,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<oneshot::Receiver<Reply>, NotSent> {
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.closed.is_some() {
                return Err(NotSent(frame));
            }
            pending.calls.insert(id, PendingCall { reply: tx, progress });
        }
        // Registered first, so an answer can never arrive before its waiter.
        if let Err(unsent) = self.outgoing.send(frame) {
            self.forget(id);
            return Err(NotSent(unsent.0));
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        Ok(rx)
    }

    /// Drops the waiter for `id`; true if the call was still unanswered.
    fn forget(&self, id: u64) -> bool {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).calls.remove(&id).is_some()
    }

    /// The caller stopped waiting: tell the server, unless the answer
    /// already came or the connection is gone.
    pub(crate) fn cancel(&self, id: u64, reason: &str) {
        if self.forget(id) && self.is_open() {
            let params = serde_json::json!({ "requestId": id, "reason": reason });
            let params = serde_json::value::to_raw_value(&params).expect("a JSON value always serializes");
            self.queue(wire::encode_notification("notifications/cancelled", Some(&params)));
        }
    }

    /// Queues a notification for the writer task. False if the connection is closed.
    pub(crate) fn notify(&self, method: &str, params: Option<&RawValue>) -> bool {
        self.is_open() && self.queue(wire::encode_notification(method, params))
    }

    /// Queues a frame and leaves the writing to the writer task (for callers
    /// that cannot await, such as drop guards and the reader).
    fn queue(&self, frame: String) -> bool {
        let queued = self.outgoing.send(frame).is_ok();
        if queued {
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        self.writer_wake.notify_one();
        queued
    }

    /// Sends what is queued: from this task if the write half is free,
    /// otherwise by waking the writer task.
    ///
    /// With other calls in flight it yields first: the reader usually wakes
    /// many callers at once, and letting them all queue their next frame
    /// before anyone writes turns many small writes (each a syscall) into
    /// one. A lone call goes out at once, unless the call before it had
    /// company: then this one is likely the first of a new burst, and sent
    /// alone it would split the burst in two groups that the server answers
    /// in two writes, each group then paying its own write and read on both
    /// sides for as long as the callers keep calling (with 16 callers: 8
    /// calls per write instead of 15). A steady lone caller never yields.
    pub(crate) async fn flush(&self) {
        let others_in_flight = self.pending.lock().unwrap_or_else(|e| e.into_inner()).calls.len() > 1;
        let had_company = self.had_company.swap(others_in_flight, Ordering::Relaxed);
        if others_in_flight || had_company {
            tokio::task::yield_now().await;
        }
        let mut handover = Handover { conn: self, done: false };
        // Whoever holds the write half re-checks the queue after letting go,
        // so a frame queued while it was busy is always picked up.
        while self.queued.load(Ordering::SeqCst) > 0 {
            let Ok(mut half) = self.writer.try_lock() else { break };
            if self.drain(&mut half).await != Drained::Empty {
                break;
            }
        }
        handover.done = true;
    }

    /// Called by the writer task after letting go of the write half: a
    /// caller whose `try_lock` failed meanwhile left its frame for the
    /// holder, and the writer task's holder has no loop of its own that
    /// would look at the queue again.
    fn wake_if_queued(&self) {
        if self.queued.load(Ordering::SeqCst) > 0 {
            self.writer_wake.notify_one();
        }
    }

    /// Writes every queued frame and flushes once; repeats while more
    /// arrived meanwhile.
    async fn drain(&self, half: &mut WriteHalf) -> Drained {
        while self.queued.load(Ordering::SeqCst) > 0 {
            let mut sent = 0;
            loop {
                // Room first, then take the frame: a frame is never out of
                // the queue while this task is suspended.
                if let Err(e) = poll_fn(|cx| half.sink.poll_ready_unpin(cx)).await {
                    self.shut(&format!("sending failed: {e}"));
                    return Drained::Failed;
                }
                let Ok(frame) = half.queue.try_recv() else { break };
                self.queued.fetch_sub(1, Ordering::SeqCst);
                if let Err(e) = half.sink.start_send_unpin(Message::text(frame)) {
                    self.shut(&format!("sending failed: {e}"));
                    return Drained::Failed;
                }
                sent += 1;
            }
            if sent == 0 {
                // Counted but not yet receivable: another thread is midway
                // through its send. The writer task comes back for it.
                self.writer_wake.notify_one();
                return Drained::Stalled;
            }
            if let Err(e) = half.sink.flush().await {
                self.shut(&format!("sending failed: {e}"));
                return Drained::Failed;
            }
        }
        Drained::Empty
    }

    /// Closes the connection and fails every waiting call. Idempotent: the
    /// first reason wins.
    pub(crate) fn shut(&self, reason: &str) {
        let calls = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.closed.is_some() {
                return;
            }
            pending.closed = Some(reason.to_owned());
            std::mem::take(&mut pending.calls)
        };
        self.closed.cancel();
        if !calls.is_empty() {
            tracing::warn!(pending = calls.len(), reason, "connection closed with calls in flight; failing them");
        }
        for (_, call) in calls {
            let _ = call.reply.send(Err(Failure::Lost(ClientError::lost(&self.url, reason))));
        }
    }

    fn handle_frame(&self, text: &str) {
        let msg: Incoming<'_> = match serde_json::from_str(text) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(cause = %e, frame = %truncate(text), "ignoring a frame that is not JSON-RPC");
                return;
            }
        };
        match (msg.method, msg.id) {
            (None, Some(id)) => {
                let Some(id) = wire::parse_id(id) else {
                    tracing::warn!(id = id.get(), "answer with an id this client never issued");
                    return;
                };
                let reply = match msg.error {
                    Some(error) => Err(Failure::Rpc(error)),
                    None => Ok(msg.result.map(ToOwned::to_owned).unwrap_or_else(null)),
                };
                let call = self.pending.lock().unwrap_or_else(|e| e.into_inner()).calls.remove(&id);
                match call {
                    Some(call) => {
                        let _ = call.reply.send(reply);
                    }
                    // Normal after a timeout or a dropped call: the waiter is gone.
                    None => tracing::debug!(id, "answer for a call nobody waits for"),
                }
            }
            (Some(method), Some(id)) => self.answer_server_request(&method, id),
            (Some(method), None) => self.handle_notification(&method, msg.params),
            (None, None) => match msg.error {
                Some(e) => {
                    tracing::warn!(code = e.code, message = %e.message, "server reported an error without an id")
                }
                None => tracing::warn!(frame = %truncate(text), "ignoring a frame with neither id nor method"),
            },
        }
    }

    /// The client advertises no capabilities, so `ping` is the only request
    /// a server may send; anything else gets "method not found" rather than
    /// silence, so the server never waits on us.
    fn answer_server_request(&self, method: &str, id: &RawValue) {
        let answer = if method == "ping" {
            let empty = RawValue::from_string("{}".to_owned()).expect("{} is JSON");
            wire::encode_response(id, Ok(&empty))
        } else {
            tracing::debug!(method, "server sent a request this client does not handle");
            wire::encode_response(id, Err((-32601, &format!("the client does not support `{method}`"))))
        };
        self.queue(answer);
    }

    fn handle_notification(&self, method: &str, params: Option<&RawValue>) {
        match method {
            "notifications/progress" => {
                let Some(params) = params.and_then(|p| serde_json::from_str::<ProgressParams<'_>>(p.get()).ok()) else {
                    tracing::debug!("ignoring malformed progress notification");
                    return;
                };
                let Some(token) = wire::parse_id(params.progress_token) else { return };
                let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(tx) = pending.calls.get(&token).and_then(|c| c.progress.as_ref()) {
                    let _ = tx.send(params.progress);
                }
            }
            "notifications/message" => {
                tracing::info!(target: "mcp_runtime::client::server_log", params = params.map(RawValue::get), "server log")
            }
            _ => tracing::trace!(method, "notification"),
        }
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// Everything queued went out.
    Empty,
    /// Gave up for now; the writer task was woken to finish.
    Stalled,
    /// The connection is closed.
    Failed,
}

/// If a caller is dropped while draining, the writer task takes over, so
/// frames already handed to the socket's buffer still get flushed.
struct Handover<'a> {
    conn: &'a Connection,
    done: bool,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.writer_wake.notify_one();
        }
    }
}

/// Drains when callers could not (the write half was busy, or they cannot
/// await), sends pings, and closes the socket when the connection ends.
async fn write_loop(conn: Arc<Connection>, ping_interval: Option<Duration>) {
    let mut pings = ping_interval.map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let silence_limit = ping_interval.map(|every| every * 3).unwrap_or(Duration::MAX);
    let closed = conn.closed.cancelled();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            biased;
            _ = &mut closed => break,
            _ = conn.writer_wake.notified() => {
                let mut half = conn.writer.lock().await;
                if conn.drain(&mut half).await == Drained::Failed {
                    return;
                }
                drop(half);
                conn.wake_if_queued();
            }
            _ = async { pings.as_mut().expect("guarded by the if").tick().await }, if pings.is_some() => {
                let last_frame = Duration::from_millis(conn.last_frame_ms.load(Ordering::Relaxed));
                if conn.started.elapsed().saturating_sub(last_frame) > silence_limit {
                    conn.shut(&format!(
                        "nothing arrived for over {silence_limit:?}, not even a pong; the server is unreachable"
                    ));
                    return;
                }
                let mut half = conn.writer.lock().await;
                if let Err(e) = half.sink.send(Message::Ping(Default::default())).await {
                    conn.shut(&format!("sending a ping failed: {e}"));
                    return;
                }
                drop(half);
                conn.wake_if_queued();
            }
        }
    }
    // Say goodbye politely, but never let a stuck peer hold the task.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut half = conn.writer.lock().await;
        let _ = half.sink.close().await;
    })
    .await;
}

async fn read_loop(conn: Arc<Connection>, mut stream: futures_util::stream::SplitStream<WebSocket>) {
    let closed = conn.closed.cancelled();
    tokio::pin!(closed);
    let reason = loop {
        let next = tokio::select! {
            biased;
            _ = &mut closed => return,
            next = stream.next() => next,
        };
        conn.last_frame_ms.store(conn.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        match next {
            Some(Ok(Message::Text(text))) => conn.handle_frame(text.as_str()),
            Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => conn.handle_frame(text),
                Err(_) => tracing::warn!(len = bytes.len(), "ignoring a binary frame that is not UTF-8"),
            },
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) if !f.reason.is_empty() => {
                        format!("the server closed the connection ({}: {})", f.code, f.reason)
                    }
                    Some(f) => format!("the server closed the connection ({})", f.code),
                    None => "the server closed the connection".to_owned(),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("reading failed: {e}"),
            None => break "the server closed the connection".to_owned(),
        }
    };
    tracing::debug!(reason, "connection closed");
    conn.shut(&reason);
}
