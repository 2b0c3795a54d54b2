//! The session engine: how a session's calls run, whatever carries them.
//!
//! [`Session`](crate::dispatch::Session) turns one message into an action
//! without touching I/O. A tool call becomes a [`Call`]: a stream of the
//! call's own notifications (progress, log messages) in the order the tool
//! sent them, then at most one response (none when it was cancelled). Every
//! transport drives calls through this one type:
//!
//! - WebSocket and stdio run all calls of a session inside one task with an
//!   [`Engine`]: it runs calls up to the in-flight cap, does the call
//!   bookkeeping, and hands out the next message to write, whichever call
//!   or the session itself it comes from. At the cap the transport still
//!   reads, so a client can cancel a running call (or ping): the first call
//!   past the cap waits unstarted, and only then does reading stop until a
//!   slot frees, which is the backpressure.
//! - Streamable HTTP gives each call its own response stream, so each POST
//!   drives its own `Call` (see `http/mod.rs`).
//!
//! A call that finishes on its first poll without notifying, the usual
//! case, costs no allocation beyond its future and never enters the set of
//! running calls.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt as _, StreamFuture};
use futures_util::{Future, Stream};

use crate::context::{Queued, RequestContext};
use crate::dispatch::{Action, ServerCore, Session};
use crate::godot_log::Transport;
use crate::protocol::RequestId;

/// A running tool call's work: resolves to the response, or `None` when the
/// call was cancelled (cancelled calls get no response).
pub(crate) type CallFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// One message a call sends.
#[derive(Debug)]
pub(crate) enum CallEvent {
    /// A notification the tool sent while running, for this call's stream.
    Notification(String),
    /// The tool asked to end the HTTP response stream here (the call goes on).
    CloseStream,
    /// The call's response, always its last message.
    Response {
        text: String,
        /// The call sent notifications before this response.
        after_notifications: bool,
    },
}

/// A tool call in flight: a stream of [`CallEvent`]s, then the end.
///
/// Dropping an unfinished call cancels it: its token fires (for tasks the
/// tool spawned) and its future is dropped.
pub(crate) struct Call {
    id: RequestId,
    context: RequestContext,
    state: CallState,
    notified: bool,
}

enum CallState {
    Running(CallFuture),
    /// The work is done; what the tool had queued goes out before the response.
    Finishing {
        leftovers: VecDeque<Queued>,
        response: Option<String>,
    },
    Ended,
}

impl Call {
    pub(crate) fn new(id: RequestId, context: RequestContext, future: CallFuture) -> Call {
        Call { id, context, state: CallState::Running(future), notified: false }
    }

    pub(crate) fn id(&self) -> &RequestId {
        &self.id
    }

    /// The next message of this call, `None` once it has ended.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<CallEvent>> {
        loop {
            match &mut self.state {
                CallState::Running(future) => {
                    let outbox = self.context.outbox();
                    // What the tool queued from another task since the last poll.
                    if let Poll::Ready(queued) = outbox.poll_pop(None) {
                        return Poll::Ready(Some(self.queued(queued)));
                    }
                    match future.as_mut().poll(cx) {
                        Poll::Ready(response) => {
                            // Dropping the future drops the tool's copies of
                            // the context; held then: this call's only (the
                            // session's entry is just the token), whether or
                            // not the session still has the call.
                            self.state = CallState::Finishing { leftovers: VecDeque::new(), response };
                            let rest = self.context.call_ended();
                            if let CallState::Finishing { leftovers, .. } = &mut self.state {
                                *leftovers = rest;
                            }
                        }
                        Poll::Pending => {
                            // Sent during this poll, or later from another task (which then wakes us).
                            return match outbox.poll_pop(Some(cx)) {
                                Poll::Ready(queued) => Poll::Ready(Some(self.queued(queued))),
                                Poll::Pending => Poll::Pending,
                            };
                        }
                    }
                }
                CallState::Finishing { leftovers, response } => {
                    if let Some(queued) = leftovers.pop_front() {
                        return Poll::Ready(Some(self.queued(queued)));
                    }
                    let response = response.take();
                    self.state = CallState::Ended;
                    return Poll::Ready(
                        response.map(|text| CallEvent::Response { text, after_notifications: self.notified }),
                    );
                }
                CallState::Ended => return Poll::Ready(None),
            }
        }
    }
}

impl Call {
    fn queued(&mut self, queued: Queued) -> CallEvent {
        match queued {
            Queued::Message(text) => {
                self.notified = true;
                CallEvent::Notification(text)
            }
            Queued::CloseStream => CallEvent::CloseStream,
        }
    }
}

impl Stream for Call {
    type Item = CallEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CallEvent>> {
        self.get_mut().poll_event(cx)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let CallState::Running(_) = self.state {
            self.context.cancellation_token().cancel();
            // Tools still holding the context send to the session route now.
            self.context.outbox().close();
        }
    }
}

/// The running calls of one session when a single task drives them all.
/// The `FuturesUnordered` (two allocations) is made on the first call that
/// has to wait: most idle sessions never need it.
#[derive(Default)]
struct CallSet(Option<FuturesUnordered<StreamFuture<Call>>>);

impl CallSet {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn push(&mut self, call: Call) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(call.into_future());
    }

    fn clear(&mut self) {
        self.0 = None;
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Option<CallEvent>, Call)>> {
        match self.0.as_mut().filter(|calls| !calls.is_empty()) {
            Some(calls) => calls.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

/// What the transport should write next.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A reply that needed no call (errors, `initialize`, `tools/list`, ...).
    Reply(String),
    /// A notification: a running call's, or the session's own.
    Notification(String),
    /// A call's response.
    Response {
        text: String,
        /// The call sent notifications first (see the WebSocket ping barrier).
        after_notifications: bool,
    },
    /// A call ended without a response (it was cancelled): nothing to write,
    /// but one call fewer is running.
    CallEnded,
}

/// One session and its running calls, for a transport that carries the
/// whole session over one connection and drives it from one task.
pub(crate) struct Engine {
    session: Session,
    calls: CallSet,
    /// A call that arrived at the cap: registered with the session (so a
    /// cancel finds it) but not started until a running call ends.
    waiting: Option<Call>,
    max_in_flight: usize,
}

impl Engine {
    /// The session of a connection `transport` just opened, from `peer`
    /// (logged to Godot when that sink is on).
    pub(crate) fn new(
        core: Arc<ServerCore>,
        max_in_flight: usize,
        transport: Transport,
        peer: Option<SocketAddr>,
    ) -> Engine {
        let mut session = Session::new(core);
        session.log_connection(transport, peer);
        Engine { session, calls: CallSet::default(), waiting: None, max_in_flight }
    }

    /// Whether another message may be read: always, unless a call is
    /// already waiting for a slot.
    pub(crate) fn accepting(&self) -> bool {
        self.waiting.is_none()
    }

    /// Calls running or waiting to start.
    pub(crate) fn running(&self) -> usize {
        self.calls.len() + usize::from(self.waiting.is_some())
    }

    /// A slot is free: the waiting call starts (on its next poll).
    fn start_waiting(&mut self) {
        if self.calls.len() < self.max_in_flight
            && let Some(call) = self.waiting.take()
        {
            self.calls.push(call);
        }
    }

    /// Takes one incoming message and returns what to write at once, if
    /// anything. A call that cannot finish on its first poll joins the
    /// running calls; [`Engine::poll_outgoing`] yields its messages later.
    pub(crate) fn receive(&mut self, text: &str, cx: &mut Context<'_>) -> Option<Outgoing> {
        match self.session.handle_text(text) {
            // JSON-RPC answers no notification, even a broken one.
            Action::Nothing | Action::Invalid(_) => None,
            Action::Reply(reply) => Some(Outgoing::Reply(reply.text)),
            Action::Call(call) if self.calls.len() >= self.max_in_flight => {
                self.waiting = Some(call);
                None
            }
            Action::Call(mut call) => match call.poll_event(cx) {
                // This transport has no response stream of the call's own to end.
                Poll::Ready(Some(CallEvent::CloseStream)) => {
                    self.calls.push(call);
                    None
                }
                Poll::Ready(Some(CallEvent::Response { text, after_notifications })) => {
                    self.session.call_finished(call.id());
                    Some(Outgoing::Response { text, after_notifications })
                }
                Poll::Ready(Some(CallEvent::Notification(text))) => {
                    self.calls.push(call);
                    Some(Outgoing::Notification(text))
                }
                Poll::Ready(None) => {
                    self.session.call_finished(call.id());
                    None
                }
                Poll::Pending => {
                    self.calls.push(call);
                    None
                }
            },
        }
    }

    /// The next message of any running call, or of the session itself.
    pub(crate) fn poll_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<Outgoing> {
        // Only watched once a context outlived its call: the usual session
        // never uses its route, and polling it would cost every loop a
        // waker registration.
        if let Some(rx) = self.session.routed_notifications()
            && let Poll::Ready(Some(text)) = rx.poll_recv(cx)
        {
            return Poll::Ready(Outgoing::Notification(text));
        }
        loop {
            return match self.calls.poll_next(cx) {
                Poll::Ready(Some((Some(CallEvent::Notification(text)), call))) => {
                    self.calls.push(call);
                    Poll::Ready(Outgoing::Notification(text))
                }
                Poll::Ready(Some((Some(CallEvent::CloseStream), call))) => {
                    // No stream of the call's own here: nothing to end.
                    self.calls.push(call);
                    continue;
                }
                Poll::Ready(Some((Some(CallEvent::Response { text, after_notifications }), call))) => {
                    self.session.call_finished(call.id());
                    self.start_waiting();
                    Poll::Ready(Outgoing::Response { text, after_notifications })
                }
                Poll::Ready(Some((None, call))) => {
                    self.session.call_finished(call.id());
                    self.start_waiting();
                    Poll::Ready(Outgoing::CallEnded)
                }
                Poll::Ready(None) | Poll::Pending => Poll::Pending,
            };
        }
    }

    /// The connection is gone or closing: every running call is cancelled
    /// and the session ends.
    pub(crate) fn close(&mut self) {
        self.session.end();
        self.calls.clear();
        self.waiting = None;
    }
}
