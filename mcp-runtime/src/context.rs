//! The per-request context a tool can take as a parameter: request id,
//! cancellation, progress and logging back to the client.
//!
//! A call's notifications travel with the call: they go into the call's own
//! [`Outbox`], which the transport drains in order before the call's
//! response (into that call's HTTP response stream, or the socket). What a
//! context sends after its call has ended (a tool that handed its context to
//! a background task) takes the session's own route instead.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::protocol::{LogLevel, RequestId};

/// Notifications one call may have waiting for the transport before a tool
/// that sends more has to wait (backpressure instead of unbounded memory).
pub(crate) const OUTBOX_CAPACITY: usize = 64;

/// What a tool gets to talk back to the client while it runs.
///
/// Cheap to clone. Progress and log calls never fail: when the client did
/// not ask for progress, or the connection is gone, they do nothing.
#[derive(Clone, Debug)]
pub struct RequestContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    request_id: RequestId,
    progress_token: Option<Box<RawValue>>,
    cancellation: CancellationToken,
    session: SessionHandle,
    log_floor: LogFloor,
    outbox: Outbox,
}

/// Which log messages reach the client.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogFloor {
    /// The session's `logging/setLevel` threshold (default `info`).
    Session,
    /// A stateless (2026-07-28) request's own
    /// `_meta["io.modelcontextprotocol/logLevel"]`; `None`: it set none, so
    /// no log messages at all.
    Request(Option<LogLevel>),
}

/// The part of a session's state a context needs: the session's own route
/// for notifications outside any call, and the minimum log level the client
/// asked for. Cheap to clone (one `Arc`): every call takes one.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    inner: Arc<SessionShared>,
}

#[derive(Debug)]
struct SessionShared {
    /// Serialized JSON-RPC notifications that belong to no running call,
    /// written by the transport on the session's own stream.
    notifications: mpsc::Sender<String>,
    /// The `logging/setLevel` threshold, shared by all calls of a session.
    min_log_level: AtomicU8,
    /// A context outlived its call, so the route may carry messages: until
    /// then a transport need not watch it.
    routed: AtomicBool,
    /// Notifications outside any call dropped because the session's route
    /// was full (nobody reading it, say no Streamable HTTP GET stream open).
    dropped: AtomicU64,
}

impl SessionHandle {
    pub fn new(notifications: mpsc::Sender<String>) -> Self {
        SessionHandle {
            inner: Arc::new(SessionShared {
                notifications,
                min_log_level: AtomicU8::new(LogLevel::Info as u8),
                routed: AtomicBool::new(false),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// How many notifications outside any call were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    pub fn set_min_log_level(&self, level: LogLevel) {
        self.inner.min_log_level.store(level as u8, Ordering::Relaxed);
    }

    pub(crate) fn min_log_level(&self) -> u8 {
        self.inner.min_log_level.load(Ordering::Relaxed)
    }

    /// Whether the session's route may carry messages (see `routed`).
    pub(crate) fn is_routed(&self) -> bool {
        self.inner.routed.load(Ordering::Acquire)
    }

    fn mark_routed(&self) {
        self.inner.routed.store(true, Ordering::Release);
    }
}

/// One call's notifications on their way to the transport, in order.
///
/// Holds at most [`OUTBOX_CAPACITY`]; a tool sending more waits until the
/// transport takes some. Once the call has ended the outbox is closed and
/// later notifications go to the session's route.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
    /// Set (under the lock) whenever the queue is non-empty, so the
    /// transport can look without locking: most calls never notify.
    non_empty: AtomicBool,
    /// Wakes tools waiting for room.
    room: Notify,
}

/// What a call queued for its stream.
#[derive(Debug)]
pub(crate) enum Queued {
    Message(String),
    /// [`RequestContext::close_sse_stream`]: end the HTTP response here.
    CloseStream,
}

#[derive(Debug, Default)]
struct OutboxState {
    queue: VecDeque<Queued>,
    closed: bool,
    /// The task draining this outbox, woken by a push from another task.
    reader: Option<Waker>,
}

enum Pushed {
    Queued,
    /// No room: the text comes back to be pushed again.
    Full(String),
    Closed(String),
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        // A panic while holding this lock leaves a consistent queue.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn try_push(&self, text: String) -> Pushed {
        let mut state = self.lock();
        if state.closed {
            return Pushed::Closed(text);
        }
        if state.queue.len() >= OUTBOX_CAPACITY {
            return Pushed::Full(text);
        }
        state.queue.push_back(Queued::Message(text));
        self.non_empty.store(true, Ordering::Release);
        if let Some(reader) = state.reader.take() {
            drop(state);
            reader.wake();
        }
        Pushed::Queued
    }

    fn push_close(&self) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.queue.push_back(Queued::CloseStream);
        self.non_empty.store(true, Ordering::Release);
        if let Some(reader) = state.reader.take() {
            drop(state);
            reader.wake();
        }
    }

    /// The next notification, if any. With `cx`, a push from another task
    /// wakes it when the queue was empty.
    pub(crate) fn poll_pop(&self, cx: Option<&mut Context<'_>>) -> Poll<Queued> {
        if !self.non_empty.load(Ordering::Acquire) {
            let Some(cx) = cx else { return Poll::Pending };
            let mut state = self.lock();
            // Re-check under the lock: a push may have raced the load.
            if state.queue.is_empty() {
                match &state.reader {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => state.reader = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            return Poll::Ready(self.pop_locked(state));
        }
        Poll::Ready(self.pop_locked(self.lock()))
    }

    fn pop_locked(&self, mut state: MutexGuard<'_, OutboxState>) -> Queued {
        let was_full = state.queue.len() >= OUTBOX_CAPACITY;
        let text = state.queue.pop_front().expect("the outbox is not empty");
        if state.queue.is_empty() {
            self.non_empty.store(false, Ordering::Release);
        }
        drop(state);
        if was_full {
            self.room.notify_waiters();
        }
        text
    }

    /// The call ended: what is still queued, in order; later pushes go to
    /// the session route.
    pub(crate) fn close(&self) -> VecDeque<Queued> {
        let mut state = self.lock();
        state.closed = true;
        state.reader = None;
        self.non_empty.store(false, Ordering::Release);
        let rest = std::mem::take(&mut state.queue);
        drop(state);
        self.room.notify_waiters();
        rest
    }
}

impl RequestContext {
    pub fn new(
        request_id: RequestId,
        progress_token: Option<Box<RawValue>>,
        cancellation: CancellationToken,
        session: SessionHandle,
    ) -> Self {
        Self::for_call(request_id, progress_token, cancellation, session, LogFloor::Session)
    }

    pub(crate) fn for_call(
        request_id: RequestId,
        progress_token: Option<Box<RawValue>>,
        cancellation: CancellationToken,
        session: SessionHandle,
        log_floor: LogFloor,
    ) -> Self {
        RequestContext {
            inner: Arc::new(ContextInner {
                request_id,
                progress_token,
                cancellation,
                session,
                log_floor,
                outbox: Outbox::default(),
            }),
        }
    }

    pub fn request_id(&self) -> &RequestId {
        &self.inner.request_id
    }

    /// True once the client sent `notifications/cancelled` for this request
    /// or the connection dropped.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancellation.is_cancelled()
    }

    /// Completes when the call is cancelled; `select!` on it around work
    /// that should stop early. (The runtime also drops a cancelled call's
    /// future, so code after an `.await` never runs once cancelled.)
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.inner.cancellation.cancelled()
    }

    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.inner.cancellation
    }

    pub(crate) fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    /// The call's work is done (its future dropped), so the one reference
    /// the runtime holds is its `Call`'s (sessions keep only the token):
    /// closes the outbox and returns what is still queued. Any other
    /// reference means the tool kept its context
    /// (a task it spawned), which may send on the session's route from now
    /// on. When there is none and nothing is queued, nobody can push any
    /// more, and the usual call skips the outbox's lock.
    pub(crate) fn call_ended(&self) -> VecDeque<Queued> {
        let outlived = Arc::strong_count(&self.inner) > 1;
        if outlived {
            self.inner.session.mark_routed();
        }
        if outlived || self.inner.outbox.non_empty.load(Ordering::Acquire) {
            self.inner.outbox.close()
        } else {
            VecDeque::new()
        }
    }

    /// Sends `notifications/progress` if the client sent a `progressToken`.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.inner.progress_token else { return };
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Params<'a> {
            progress_token: &'a RawValue,
            progress: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            total: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
        }
        let params = Params { progress_token: token, progress, total, message };
        self.notify("notifications/progress", &params).await;
    }

    /// Sends `notifications/message` if `level` is at or above the level the
    /// client asked for: `logging/setLevel` on a session (default `info`),
    /// or a stateless request's `_meta["io.modelcontextprotocol/logLevel"]`
    /// (without one, nothing is sent).
    pub async fn log(&self, level: LogLevel, logger: Option<&str>, data: impl Serialize) {
        let floor = match self.inner.log_floor {
            LogFloor::Session => self.inner.session.min_log_level(),
            LogFloor::Request(Some(level)) => level as u8,
            LogFloor::Request(None) => return,
        };
        if (level as u8) < floor {
            return;
        }
        #[derive(Serialize)]
        struct Params<'a, D> {
            level: LogLevel,
            #[serde(skip_serializing_if = "Option::is_none")]
            logger: Option<&'a str>,
            data: D,
        }
        self.notify("notifications/message", &Params { level, logger, data }).await;
    }

    /// Over Streamable HTTP, ends this call's response stream now while the
    /// call goes on (SEP-1699 polling): the client reconnects with
    /// `Last-Event-ID` and gets everything sent since, the response
    /// included. For long calls behind proxies that cut long responses.
    /// Elsewhere (WebSocket, stdio, stateless requests) it does nothing.
    pub fn close_sse_stream(&self) {
        self.inner.outbox.push_close();
    }

    pub async fn info(&self, data: impl Serialize) {
        self.log(LogLevel::Info, None, data).await
    }

    pub async fn debug(&self, data: impl Serialize) {
        self.log(LogLevel::Debug, None, data).await
    }

    pub async fn warning(&self, data: impl Serialize) {
        self.log(LogLevel::Warning, None, data).await
    }

    pub async fn error(&self, data: impl Serialize) {
        self.log(LogLevel::Error, None, data).await
    }

    async fn notify(&self, method: &str, params: &impl Serialize) {
        #[derive(Serialize)]
        struct Notification<'a, P> {
            jsonrpc: &'static str,
            method: &'a str,
            params: P,
        }
        let Ok(mut text) = serde_json::to_string(&Notification { jsonrpc: "2.0", method, params }) else { return };
        let outbox = &self.inner.outbox;
        loop {
            // Registered before looking, so a pop between the look and the
            // wait is not missed.
            let mut room = pin!(outbox.room.notified());
            room.as_mut().enable();
            match outbox.try_push(text) {
                Pushed::Queued => return,
                Pushed::Full(back) => {
                    text = back;
                    room.await;
                }
                Pushed::Closed(back) => {
                    // The call is over: the session's own route. It is not
                    // waited on: nobody may be reading it (no GET stream),
                    // and a tool must not hang on its logging. A closed
                    // channel means the session is gone: nothing to tell.
                    let session = &self.inner.session.inner;
                    if let Err(mpsc::error::TrySendError::Full(_)) = session.notifications.try_send(back) {
                        let dropped = session.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::debug!(dropped, "the session's notification route is full; dropped one");
                    }
                    return;
                }
            }
        }
    }
}
