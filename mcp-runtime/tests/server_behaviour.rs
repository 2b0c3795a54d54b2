//! The session rules, the same on every transport: progress before the
//! result, cancellation, the in-flight cap and the shutdown drain, run
//! unchanged over WebSocket, Streamable HTTP and stdio.

mod server_harness;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_harness::peer::{Incoming, Kind, Peer, Served, post};
use server_harness::text;
use server_harness::tools::{Progressed, builder};

/// The WebSocket close code of a server shutting down (1012 Service Restart).
const SHUTDOWN_CLOSE: u16 = 1012;

fn work(id: i64, steps: u32, step_ms: u64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
        "name":"work","arguments":{"steps":steps,"step_ms":step_ms},"_meta":{"progressToken":format!("p{id}")}}})
}

fn nap(id: i64, ms: u64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"nap","arguments":{"ms":ms}}})
}

/// Reads until the first progress notification of the call `id`.
async fn first_progress(peer: &mut Peer, id: i64) {
    loop {
        let message = peer.message().await;
        if message["method"] == "notifications/progress" && message["params"]["progressToken"] == format!("p{id}") {
            return;
        }
        assert!(message.get("id").is_none(), "a response before any progress: {message}");
    }
}

/// Waits (up to the harness's patience) until `condition` holds.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + server_harness::PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn progress_arrives_before_the_result(kind: Kind) {
    let mut served = Served::start(kind, builder()).await;
    let mut peer = served.session().await;
    peer.send(work(1, 3, 10)).await;
    let mut progress = Vec::new();
    let response = loop {
        let message = peer.message().await;
        if message.get("id").is_some() {
            break message;
        }
        if message["method"] == "notifications/progress" {
            progress.push(message["params"]["progress"].as_f64().expect("a number"));
        }
    };
    assert_eq!(response["id"], 1, "{response}");
    assert_eq!(text(&response), "3 steps");
    assert_eq!(progress, [1.0, 2.0, 3.0], "every progress notification before the result");
}

async fn cancellation_stops_the_call_and_it_gets_no_response(kind: Kind) {
    let seen = Progressed::default();
    let mut served = Served::start(kind, builder().state(seen.clone())).await;
    let mut peer = served.session().await;
    peer.send(work(1, 200, 20)).await;
    first_progress(&mut peer, 1).await;
    peer.notify("notifications/cancelled", Some(json!({"requestId": 1, "reason": "test"}))).await;
    until("the tool's token fires", || seen.cancelled.load(Ordering::SeqCst) == 1).await;
    let steps_at_cancel = seen.steps.load(Ordering::SeqCst);
    // Longer than a few steps: had the work gone on, it would show here.
    loop {
        match tokio::time::timeout(Duration::from_millis(300), peer.recv()).await {
            Err(_) => break,
            Ok(Incoming::Message(message)) => {
                assert!(message.get("id").is_none(), "a cancelled call got a response: {message}");
            }
            Ok(Incoming::Closed(code)) => panic!("the session ended ({code:?})"),
        }
    }
    assert!(seen.steps.load(Ordering::SeqCst) <= steps_at_cancel + 1, "the work went on after the cancel");
    // The session goes on.
    let list = peer.request(json!(2), "tools/list", None).await;
    assert!(list["result"]["tools"].is_array(), "{list}");
}

async fn the_in_flight_cap_applies_backpressure(kind: Kind) {
    let mut served = Served::start(kind, builder().max_in_flight(2)).await;
    let mut peer = served.session().await;
    let started = Instant::now();
    for id in 1..=4 {
        peer.send(nap(id, 200)).await;
    }
    let mut answered = Vec::new();
    for _ in 0..4 {
        let response = peer.response().await;
        assert_eq!(text(&response), "200", "{response}");
        answered.push(response["id"].as_i64().expect("an integer id"));
    }
    answered.sort_unstable();
    assert_eq!(answered, [1, 2, 3, 4]);
    // Two at a time: two rounds of 200 ms, not one.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(390), "4 calls with a cap of 2 took only {elapsed:?}");
}

async fn shutdown_drains_calls_in_flight(kind: Kind) {
    let mut served = Served::start(kind, builder().shutdown_grace(Duration::from_secs(10))).await;
    let mut peer = served.session().await;
    peer.send(work(1, 5, 60)).await;
    first_progress(&mut peer, 1).await;
    served.shutdown.shutdown();
    if kind == Kind::StreamableHttp {
        // Draining: health checks say so, and new work is refused.
        let addr = served.addr.expect("a network server");
        let health = health(addr).await;
        assert_eq!(health.0, 503, "{}", health.1);
        let posted = post(addr, peer.http_session(), &nap(9, 1).to_string(), None).await;
        assert_eq!(posted.status, 503, "a new call during the drain is refused");
    }
    // The call in flight still gets its result.
    assert_eq!(text(&peer.response().await), "5 steps");
    if kind == Kind::WebSocket {
        match peer.recv().await {
            Incoming::Closed(code) => assert_eq!(code, Some(SHUTDOWN_CLOSE)),
            Incoming::Message(message) => panic!("expected the close, got {message}"),
        }
    }
    let served_result = tokio::time::timeout(Duration::from_secs(5), &mut served.task)
        .await
        .expect("the server stops once its calls are done")
        .expect("serve did not panic");
    assert!(served_result.is_ok(), "{served_result:?}");
}

/// `GET /healthz`: status and body.
async fn health(addr: std::net::SocketAddr) -> (u16, String) {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::get("/healthz")
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("GET /healthz");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

macro_rules! on_every_transport {
    ($($test:ident),* $(,)?) => {
        mod websocket {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::WebSocket).await })*
        }
        mod streamable_http {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::StreamableHttp).await })*
        }
        mod stdio {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::Stdio).await })*
        }
    };
}

on_every_transport!(
    progress_arrives_before_the_result,
    cancellation_stops_the_call_and_it_gets_no_response,
    the_in_flight_cap_applies_backpressure,
    shutdown_drains_calls_in_flight,
);

#[tokio::test]
async fn stdio_end_of_input_drains_running_calls_then_returns() {
    let mut served = Served::start(Kind::Stdio, builder()).await;
    let mut peer = served.session().await;
    peer.send(work(1, 4, 50)).await;
    first_progress(&mut peer, 1).await;
    peer.close_input().await;
    assert_eq!(text(&peer.response().await), "4 steps", "the call in flight finishes after EOF");
    let result = tokio::time::timeout(Duration::from_secs(5), &mut served.task)
        .await
        .expect("serve_io returns once its calls are done")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
}

/// A tool's background task logs after its call answered: on a connection
/// (WebSocket, stdio) the message still arrives, on the session's own route.
async fn a_message_after_the_call_takes_the_sessions_route(kind: Kind) {
    let mut served = Served::start(kind, builder()).await;
    let mut peer = served.session().await;
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"later","arguments":{"message":"after the call","after_ms":50}}});
    peer.send(call).await;
    let response = peer.response().await;
    assert_eq!(text(&response), "true", "{response}");
    let message = peer.message().await;
    assert_eq!(message["method"], "notifications/message", "{message}");
    assert_eq!(message["params"]["data"], "after the call", "{message}");
}

#[tokio::test]
async fn websocket_a_message_after_the_call_takes_the_sessions_route() {
    a_message_after_the_call_takes_the_sessions_route(Kind::WebSocket).await;
}

#[tokio::test]
async fn stdio_a_message_after_the_call_takes_the_sessions_route() {
    a_message_after_the_call_takes_the_sessions_route(Kind::Stdio).await;
}

/// At the in-flight cap the session still reads: a client can cancel the
/// call that holds the only slot, and the next call starts at once instead
/// of after the long one.
async fn a_cancel_is_read_at_the_in_flight_cap(kind: Kind) {
    let mut served = Served::start(kind, builder().max_in_flight(1)).await;
    let mut peer = served.session().await;
    // 200 steps of 50 ms: 10 s if nothing cancels it.
    peer.send(work(1, 200, 50)).await;
    first_progress(&mut peer, 1).await;
    let started = Instant::now();
    peer.notify("notifications/cancelled", Some(json!({"requestId": 1, "reason": "test"}))).await;
    peer.send(nap(2, 1)).await;
    let response = loop {
        let message = peer.message().await;
        if message.get("id").is_some() {
            break message;
        }
    };
    assert_eq!(response["id"], 2, "the cancelled call answered: {response}");
    assert_eq!(text(&response), "1", "{response}");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "the next call waited {elapsed:?}: the cancel was not read at the cap");
}

#[tokio::test]
async fn websocket_a_cancel_is_read_at_the_in_flight_cap() {
    a_cancel_is_read_at_the_in_flight_cap(Kind::WebSocket).await;
}

#[tokio::test]
async fn stdio_a_cancel_is_read_at_the_in_flight_cap() {
    a_cancel_is_read_at_the_in_flight_cap(Kind::Stdio).await;
}
