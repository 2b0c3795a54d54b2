//! Streamable HTTP (MCP 2025-11-25, and the stateless 2026-07-28 revision)
//! on axum: `POST /mcp` carries one JSON-RPC message, `GET /mcp` opens the
//! session's SSE stream (or resumes one with `Last-Event-ID`), `DELETE /mcp`
//! ends the session. The same router answers `GET /healthz` and hands
//! WebSocket upgrades (a GET with `Upgrade: websocket`, on any path) to the
//! WebSocket transport.
//!
//! A POST's call is answered with `application/json` when it sends nothing
//! before its response, and with `text/event-stream` (its notifications,
//! then its response, then the end) when it does. In a session
//! (2025-11-25) a dropped response does not cancel the call: the call runs
//! in its own task, and its stream can be resumed. A stateless request's
//! call runs inside its response, so closing the stream cancels it, as
//! 2026-07-28 says.

mod session;
pub(crate) mod sse;

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::sync::WaitForCancellationFutureOwned;

pub(crate) use self::session::SessionTable;
use self::session::{HttpSession, Refused, StreamGuard};
use self::sse::LogReader;
use crate::access::AccessLayer;
use crate::dispatch::{Action, Routing, Session, Transported};
use crate::engine::{Call, CallEvent};
use crate::godot_log::Transport;
use crate::protocol::{self, SESSION_VERSIONS, error_code};
use crate::service::Service;
use crate::transport;

/// The session header (HTTP header names are case-insensitive).
const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";
/// SEP-2243 routing headers of stateless requests.
const MCP_METHOD: &str = "mcp-method";
const MCP_NAME: &str = "mcp-name";

/// The routes every server answers, with the access checks and the body
/// limit in front of them.
pub(crate) fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/mcp", get(get_stream).post(post_message).delete(delete_session))
        .route("/healthz", get(healthz))
        .fallback(fallback)
        .layer(AccessLayer(service.clone()))
        .with_state(service)
}

/// The client's address, where the server that runs the router recorded
/// it: the listener does when the Godot sink is on (the only reader), axum's
/// `into_make_service_with_connect_info` does for a router mounted elsewhere.
pub(crate) fn peer<B>(request: &axum::http::Request<B>) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0)
}

/// A JSON-RPC error as an HTTP response with `status`.
fn rpc_error(status: StatusCode, code: i32, message: &str) -> Response {
    json(status, protocol::error_response(None, code, message, None))
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

fn draining() -> Response {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        error_code::INVALID_REQUEST,
        "the server is shutting down; retry later",
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Whether an `Accept` header (absent means anything) admits `mime`.
fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return true };
    accept.split(',').any(|item| admits(item, mime))
}

/// Whether an `Accept` header admits both JSON and SSE, as a POST's must: one pass.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return true };
    let (mut json, mut sse) = (false, false);
    for item in accept.split(',') {
        json |= admits(item, "application/json");
        sse |= admits(item, "text/event-stream");
    }
    json && sse
}

/// Whether one `Accept` item (`type/subtype;params`) admits `mime`.
fn admits(item: &str, mime: &str) -> bool {
    let range = item.split(';').next().unwrap_or("").trim();
    let kind = mime.split_once('/').map_or(mime, |(kind, _)| kind);
    range.eq_ignore_ascii_case(mime)
        || range == "*/*"
        || range.strip_suffix("/*").is_some_and(|k| k.eq_ignore_ascii_case(kind))
}

async fn healthz(State(service): State<Arc<Service>>) -> Response {
    let (status, word) = if service.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "serving")
    };
    let body = format!(
        r#"{{"status":"{word}","sessions":{},"expiredSessions":{},"evictedSessions":{},"droppedEvents":{}}}"#,
        service.sessions.len(),
        service.sessions.expired(),
        service.sessions.evicted(),
        service.sessions.dropped_events()
    );
    json(status, body)
}

async fn fallback(State(service): State<Arc<Service>>, request: Request) -> Response {
    if transport::is_upgrade(request.headers()) {
        return transport::upgrade(&service, request);
    }
    rpc_error(
        StatusCode::NOT_FOUND,
        error_code::INVALID_REQUEST,
        &format!(
            "no MCP endpoint at {}: Streamable HTTP is at /mcp (POST, GET, DELETE), WebSocket on any path",
            request.uri().path()
        ),
    )
}

async fn post_message(State(service): State<Arc<Service>>, request: Request) -> Response {
    let peer = peer(&request);
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if service.shutdown.is_cancelled() {
        return draining();
    }
    if !accepts_json_and_sse(headers) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            error_code::INVALID_REQUEST,
            "not acceptable: a POST must accept both application/json and text/event-stream",
        );
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error_code::INVALID_REQUEST,
            &format!("unsupported media type {content_type:?}: send one JSON-RPC message as application/json"),
        );
    }
    let body = match read_body(body, service.config.max_message_size, service.config.body_timeout).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            error_code::PARSE_ERROR,
            "parse error: the body is not valid UTF-8 JSON",
        );
    };
    let declared = header_str(headers, PROTOCOL_VERSION);
    let routing = Routing { method: header_str(headers, MCP_METHOD), name: header_str(headers, MCP_NAME) };
    let mut transported = Transported { declared_version: declared, routing: Some(routing), no_legacy_calls: false };
    match header_str(headers, SESSION_ID) {
        Some(id) => {
            let Some(session) = service.sessions.get(id) else {
                return unknown_session();
            };
            if let Some(refusal) = check_session_version(headers, &session) {
                return refusal;
            }
            let action = session.engine().handle(text, transported);
            match action {
                Action::Nothing => StatusCode::ACCEPTED.into_response(),
                // Input the server cannot accept gets an error status
                // (2025-11-25), as it does without a session; a request's
                // JSON-RPC error is its answer (200).
                Action::Invalid(reply) => json(StatusCode::BAD_REQUEST, reply.text),
                Action::Reply(reply) if reply.unaddressed => json(StatusCode::BAD_REQUEST, reply.text),
                Action::Reply(reply) => json(StatusCode::OK, reply.text),
                Action::Call(call) => session_call(service, session, call).await,
            }
        }
        None => {
            transported.no_legacy_calls = true;
            let mut transient = Session::new(service.core.clone());
            let action = transient.handle(text, transported);
            match action {
                Action::Nothing => StatusCode::ACCEPTED.into_response(),
                Action::Invalid(reply) => json(StatusCode::BAD_REQUEST, reply.text),
                Action::Reply(reply) => match transient.negotiated_version() {
                    Some(version) => open_session(&service, transient, version, reply.text, peer),
                    None => json(sessionless_status(reply.error), reply.text),
                },
                Action::Call(call) => stateless_call(&service, call).await,
            }
        }
    }
}

/// A session's requests may name its protocol version in
/// `MCP-Protocol-Version`, and no other (2025-11-25: 400 for an unsupported one).
fn check_session_version(headers: &HeaderMap, session: &HttpSession) -> Option<Response> {
    let declared = header_str(headers, PROTOCOL_VERSION)?;
    if declared == session.version {
        return None;
    }
    let message = if SESSION_VERSIONS.contains(&declared) {
        format!("MCP-Protocol-Version {declared} does not match this session's version {}", session.version)
    } else {
        format!(
            "unsupported MCP-Protocol-Version {declared:?}: this session speaks {}; send that, or no header",
            session.version
        )
    };
    Some(rpc_error(StatusCode::BAD_REQUEST, error_code::INVALID_REQUEST, &message))
}

/// The whole body, at most `limit` bytes (413 above it), within `deadline`
/// (408 after it, and the connection closes: the rest of the body is unread).
async fn read_body(body: axum::body::Body, limit: usize, deadline: Duration) -> Result<Bytes, Response> {
    use http_body_util::BodyExt;
    let mut collect = std::pin::pin!(http_body_util::Limited::new(body, limit).collect());
    // A body that is already here (the usual small message) costs no timer.
    let read = match poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await {
        Poll::Ready(read) => Ok(read),
        Poll::Pending => tokio::time::timeout(deadline, collect).await,
    };
    let Ok(read) = read else {
        let mut response = rpc_error(
            StatusCode::REQUEST_TIMEOUT,
            error_code::INVALID_REQUEST,
            &format!("request timeout: the body did not arrive in full within {} s", deadline.as_secs_f64()),
        );
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Err(response);
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_code::INVALID_REQUEST,
            &format!("payload too large: the message is over the limit of {limit} bytes"),
        )),
        Err(e) => Err(rpc_error(
            StatusCode::BAD_REQUEST,
            error_code::INVALID_REQUEST,
            &format!("could not read the request body: {e}"),
        )),
    }
}

fn unknown_session() -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        error_code::INVALID_REQUEST,
        "session not found: it ended (DELETE, idle timeout or a server restart) or never existed; send \
         initialize without Mcp-Session-Id to start a new one",
    )
}

/// `initialize` succeeded: the session exists from now on.
fn open_session(
    service: &Service,
    engine: Session,
    version: &'static str,
    reply: String,
    peer: Option<SocketAddr>,
) -> Response {
    match service.sessions.create(engine, version) {
        Ok(session) => {
            session.engine().log_connection(Transport::StreamableHttp, peer); // godot_log hook
            tracing::debug!(session = %session.id, version, "Streamable HTTP session opened");
            let mut response = json(StatusCode::OK, reply);
            if let Ok(id) = HeaderValue::from_str(&session.id) {
                response.headers_mut().insert(SESSION_ID, id);
            }
            response
        }
        Err(Refused::Full(max)) => {
            let mut response = rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                error_code::INVALID_REQUEST,
                &format!(
                    "this MCP server is at its limit of {max} Streamable HTTP sessions, each with a call running \
                     or a stream open; retry later"
                ),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// HTTP status for an error answered outside a session (SEP-2575): an
/// unknown or removed method is 404, any other refusal 400.
fn sessionless_status(error: Option<i32>) -> StatusCode {
    match error {
        None => StatusCode::OK,
        Some(error_code::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(
            error_code::PARSE_ERROR
            | error_code::INVALID_REQUEST
            | error_code::INVALID_PARAMS
            | error_code::HEADER_MISMATCH
            | error_code::MISSING_CLIENT_CAPABILITY
            | error_code::UNSUPPORTED_PROTOCOL_VERSION,
        ) => StatusCode::BAD_REQUEST,
        Some(_) => StatusCode::OK,
    }
}

/// Frees the call's id in its session however the call ends.
struct Bookkeeping {
    session: Arc<HttpSession>,
    call: Option<Call>,
}

impl Bookkeeping {
    fn call(&mut self) -> &mut Call {
        self.call.as_mut().expect("the call is held until the bookkeeping drops")
    }
}

impl Drop for Bookkeeping {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let id = call.id().clone();
            drop(call);
            self.session.engine().call_finished(&id);
        }
    }
}

/// What a session call's task says about its first message.
enum First {
    /// The response, with nothing before it: answer with JSON.
    Response(String),
    /// Notifications first, a closed stream, or no response at all: stream
    /// this reader (made before the task writes anything, so that a
    /// `close_sse_stream` applies to it).
    Stream(LogReader),
}

async fn session_call(service: Arc<Service>, session: Arc<HttpSession>, call: Call) -> Response {
    let mut running = Bookkeeping { session: session.clone(), call: Some(call) };
    // The in-flight cap: a POST beyond it waits here (backpressure).
    let permit = match session.permits.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => tokio::select! {
            permit = session.permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = session.closed.cancelled() => return unknown_session(),
        },
    };
    // Most calls finish on their first poll: answered here, no task.
    let first = match poll_fn(|cx| Poll::Ready(running.call().poll_event(cx))).await {
        Poll::Ready(Some(CallEvent::Response { text, .. })) => return json(StatusCode::OK, text),
        Poll::Ready(None) => return empty_stream(),
        Poll::Ready(Some(event)) => Some(event),
        Poll::Pending => None,
    };
    // The call outlives this response if the client goes away (2025-11-25:
    // a disconnect is not a cancellation), so it runs in its own task.
    let (tx, rx) = oneshot::channel();
    service.tasks.spawn(drive_session_call(running, permit, first, tx));
    match rx.await {
        Ok(First::Response(text)) => json(StatusCode::OK, text),
        Ok(First::Stream(reader)) => {
            let guard = session.stream_guard();
            sse_response(&service, GuardedStream { inner: reader, _guard: guard })
        }
        Err(_) => empty_stream(),
    }
}

/// Runs a session call to its end, writing its messages to a stream of the
/// session (resumable with `Last-Event-ID`) unless its first message is
/// its response.
async fn drive_session_call(
    mut running: Bookkeeping,
    _permit: OwnedSemaphorePermit,
    first: Option<CallEvent>,
    tx: oneshot::Sender<First>,
) {
    let mut next = match first {
        Some(event) => Some(event),
        None => poll_fn(|cx| running.call().poll_event(cx)).await,
    };
    if let Some(CallEvent::Response { .. }) = next {
        drop(running);
        if let Some(CallEvent::Response { text, .. }) = next
            && let Err(First::Response(text)) = tx.send(First::Response(text))
        {
            tracing::debug!(response = %text, "the client left before its call's response; dropped");
        }
        return;
    }
    let log = running.session.open_stream();
    let _ = tx.send(First::Stream(log.reader()));
    while let Some(event) = next {
        match event {
            CallEvent::Notification(text) | CallEvent::Response { text, .. } => {
                // A reader far behind holds the call here, and so the tool's
                // notify: backpressure, as on WebSocket.
                poll_fn(|cx| log.poll_room(cx)).await;
                log.push(text);
            }
            CallEvent::CloseStream => log.break_readers(),
        }
        next = poll_fn(|cx| running.call().poll_event(cx)).await;
    }
    drop(running);
    log.end();
}

/// A stateless request's call, driven by its own response: dropping the
/// response (the client closed the stream) drops the call, which cancels it.
/// The shutdown drain counts it (a token of `service.tasks`) and, once the
/// grace is over, cancels it (`service.stop_calls`).
async fn stateless_call(service: &Service, mut call: Call) -> Response {
    let tracked = service.tasks.token();
    loop {
        let event = tokio::select! {
            biased;
            event = poll_fn(|cx| call.poll_event(cx)) => event,
            _ = service.stop_calls.cancelled() => return cancelled_by_shutdown(),
        };
        return match event {
            Some(CallEvent::Response { text, .. }) => json(StatusCode::OK, text),
            Some(CallEvent::Notification(text)) => sse_response(
                service,
                CallStream {
                    first: Some(text),
                    call: Some(call),
                    stop: Box::pin(service.stop_calls.clone().cancelled_owned()),
                    _tracked: tracked,
                },
            ),
            // Nothing to resume without a session: the stream stays open.
            Some(CallEvent::CloseStream) => continue,
            None => empty_stream(),
        };
    }
}

/// A stateless call cut off by the end of the shutdown grace.
fn cancelled_by_shutdown() -> Response {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        error_code::INVALID_REQUEST,
        "the server shut down before this call finished, and cancelled it; retry later",
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn empty_stream() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"))]).into_response()
}

fn sse_response<S>(service: &Service, stream: S) -> Response
where
    S: Stream<Item = Bytes> + Unpin + Send + 'static,
{
    sse::response(stream, service.config.ping_interval)
}

/// A stateless call's messages as SSE events (no ids: there is nothing to resume).
struct CallStream {
    first: Option<String>,
    call: Option<Call>,
    /// Fires when the shutdown grace is over: the call is dropped (cancelled).
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Counts the call as running for the shutdown drain until the stream ends.
    _tracked: tokio_util::task::task_tracker::TaskTrackerToken,
}

impl Stream for CallStream {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        if let Some(text) = this.first.take() {
            return Poll::Ready(Some(sse::frame(None, &text)));
        }
        let Some(call) = &mut this.call else { return Poll::Ready(None) };
        if this.stop.as_mut().poll(cx).is_ready() {
            this.call = None;
            return Poll::Ready(None);
        }
        loop {
            return match call.poll_event(cx) {
                Poll::Ready(Some(CallEvent::Notification(text) | CallEvent::Response { text, .. })) => {
                    Poll::Ready(Some(sse::frame(None, &text)))
                }
                Poll::Ready(Some(CallEvent::CloseStream)) => continue,
                Poll::Ready(None) => {
                    this.call = None;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// An SSE stream that keeps its session from counting as idle.
struct GuardedStream<S> {
    inner: S,
    _guard: StreamGuard,
}

impl<S: Stream + Unpin> Stream for GuardedStream<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

async fn get_stream(State(service): State<Arc<Service>>, request: Request) -> Response {
    if transport::is_upgrade(request.headers()) {
        return transport::upgrade(&service, request);
    }
    let headers = request.headers();
    // While draining, a client may still resume a stream (to get the
    // responses of calls finishing in the grace period); new streams are refused.
    if service.shutdown.is_cancelled() && !headers.contains_key(LAST_EVENT_ID) {
        return draining();
    }
    let Some(id) = header_str(headers, SESSION_ID) else {
        let stateless = header_str(headers, PROTOCOL_VERSION).is_some_and(|v| !SESSION_VERSIONS.contains(&v));
        if stateless {
            let mut response = rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                error_code::INVALID_REQUEST,
                "method not allowed: stateless requests have no session stream to GET; POST each request",
            );
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        return missing_session();
    };
    let Some(session) = service.sessions.get(id) else { return unknown_session() };
    if let Some(refusal) = check_session_version(headers, &session) {
        return refusal;
    }
    if !accepts(headers, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            error_code::INVALID_REQUEST,
            "not acceptable: the GET stream is text/event-stream; accept it",
        );
    }
    if let Some(last) = header_str(headers, LAST_EVENT_ID) {
        let Some((stream, seq)) = sse::parse_event_id(last) else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                error_code::INVALID_REQUEST,
                &format!("Last-Event-ID {last:?} is not an event id this server issued"),
            );
        };
        let Some(log) = session.stream(stream) else {
            return rpc_error(
                StatusCode::NOT_FOUND,
                error_code::INVALID_REQUEST,
                &format!("the stream of event {last:?} is no longer kept; its events cannot be replayed"),
            );
        };
        let Some(reader) = log.reader_after(seq) else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                error_code::INVALID_REQUEST,
                &format!("Last-Event-ID {last:?} names an event this server has not sent on that stream"),
            );
        };
        if !session.is_get_stream(&log) {
            let guard = session.stream_guard();
            return sse_response(&service, GuardedStream { inner: reader, _guard: guard });
        }
        return match GetStream::attach(&service, &session, Some(reader)) {
            Some(stream) => sse_response(&service, stream),
            None => get_conflict(),
        };
    }
    match GetStream::attach(&service, &session, None) {
        Some(stream) => sse_response(&service, stream),
        None => get_conflict(),
    }
}

fn missing_session() -> Response {
    rpc_error(
        StatusCode::BAD_REQUEST,
        error_code::INVALID_REQUEST,
        "bad request: missing Mcp-Session-Id; send initialize first and then the Mcp-Session-Id header it returned",
    )
}

fn get_conflict() -> Response {
    rpc_error(
        StatusCode::CONFLICT,
        error_code::INVALID_REQUEST,
        "conflict: this session already has its GET stream open; one at a time",
    )
}

/// The session's own stream: notifications that belong to no call.
struct GetStream {
    session: Arc<HttpSession>,
    reader: LogReader,
    route: Option<mpsc::Receiver<String>>,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    stopping: Pin<Box<WaitForCancellationFutureOwned>>,
    _guard: StreamGuard,
}

impl GetStream {
    fn attach(service: &Service, session: &Arc<HttpSession>, resume: Option<LogReader>) -> Option<GetStream> {
        let (log, route) = session.attach_get(resume.as_ref().map(|reader| reader.log().clone()))?;
        let reader = resume.unwrap_or_else(|| log.reader());
        Some(GetStream {
            session: session.clone(),
            reader,
            route,
            closed: Box::pin(session.closed.clone().cancelled_owned()),
            stopping: Box::pin(service.shutdown.clone().cancelled_owned()),
            _guard: session.stream_guard(),
        })
    }
}

impl Stream for GetStream {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(next) = Pin::new(&mut this.reader).poll_next(cx) {
                return Poll::Ready(next);
            }
            if this.closed.as_mut().poll(cx).is_ready() || this.stopping.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            let Some(route) = &mut this.route else { return Poll::Pending };
            match route.poll_recv(cx) {
                Poll::Ready(Some(text)) => this.reader.log().push(text),
                Poll::Ready(None) => this.route = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for GetStream {
    fn drop(&mut self) {
        self.session.detach_get(self.reader.log(), self.route.take());
    }
}

async fn delete_session(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let Some(id) = header_str(&headers, SESSION_ID) else { return missing_session() };
    if let Some(session) = service.sessions.get(id)
        && let Some(refusal) = check_session_version(&headers, &session)
    {
        return refusal;
    }
    if service.sessions.remove(id) {
        tracing::debug!(session = %id, "Streamable HTTP session ended by the client");
        StatusCode::OK.into_response()
    } else {
        unknown_session()
    }
}

/// How often idle sessions are looked for: often enough that a session
/// outlives its idle timeout by at most a quarter of it.
pub(crate) fn sweep_period(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30))
}
