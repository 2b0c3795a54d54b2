//! Streamable HTTP: sessions, JSON or SSE answers, the GET stream,
//! resumption with Last-Event-ID, the idle timeout, the stateless revision's
//! status codes and headers, and the HTTP-level limits.

mod server_harness;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_harness::peer::{Exchange, Kind, Served, exchange, http_session, post_headers};
use server_harness::tools::{Progressed, builder};

fn call(id: i64, tool: &str, arguments: Value) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}}).to_string()
}

async fn start(builder: mcp_runtime::ServerBuilder) -> (Served, std::net::SocketAddr) {
    let served = Served::start(Kind::StreamableHttp, builder).await;
    let addr = served.addr.expect("a network server");
    (served, addr)
}

async fn in_session(addr: std::net::SocketAddr, session: &str, body: &str) -> Exchange {
    exchange(addr, "POST", "/mcp", &post_headers(&[("mcp-session-id", session)]), body).await
}

#[tokio::test]
async fn a_quiet_call_is_answered_with_json_and_a_chatty_one_streams_sse() {
    let (_served, addr) = start(builder()).await;
    let session = http_session(addr).await;
    let quiet = in_session(addr, &session, &call(1, "echo", json!({"text": "hi"}))).await;
    assert_eq!(quiet.status, 200);
    assert_eq!(quiet.header("content-type"), Some("application/json"));
    assert_eq!(quiet.json()["result"]["structuredContent"], json!({"text": "hi"}));

    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
        "name":"work","arguments":{"steps":2,"step_ms":5},"_meta":{"progressToken":"t"}}});
    let chatty = in_session(addr, &session, &body.to_string()).await;
    assert_eq!(chatty.status, 200);
    assert_eq!(chatty.header("content-type"), Some("text/event-stream"));
    let events = chatty.events();
    // The priming event first: an id to resume from, and no data.
    assert!(events[0].0.is_some() && events[0].1.is_none(), "{}", chatty.body);
    assert!(chatty.body.starts_with("id: ") && chatty.body.contains("retry: "), "{}", chatty.body);
    let messages: Vec<&Value> = events.iter().filter_map(|(_, v)| v.as_ref()).collect();
    assert_eq!(messages.len(), 3, "two progress notifications, then the response: {}", chatty.body);
    assert_eq!(messages[0]["method"], "notifications/progress");
    assert_eq!(messages[1]["method"], "notifications/progress");
    assert_eq!(messages[2]["id"], 2);
    // Event ids are unique within the session.
    let mut ids: Vec<&str> = events.iter().filter_map(|(id, _)| id.as_deref()).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "{}", chatty.body);
}

#[tokio::test]
async fn the_session_id_is_issued_required_and_ended_by_delete() {
    let (_served, addr) = start(builder()).await;
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    let missing = exchange(addr, "POST", "/mcp", &post_headers(&[]), &list).await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    let unknown = in_session(addr, "0123456789abcdef0123456789abcdef", &list).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.json()["error"]["message"].as_str().unwrap().contains("initialize"));

    let session = http_session(addr).await;
    assert!(session.len() == 32 && session.bytes().all(|b| b.is_ascii_hexdigit()), "{session}");
    assert_eq!(in_session(addr, &session, &list).await.status, 200);
    let deleted = exchange(addr, "DELETE", "/mcp", &[("mcp-session-id", &session)], "").await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(in_session(addr, &session, &list).await.status, 404, "an ended session is gone");
    assert_eq!(exchange(addr, "DELETE", "/mcp", &[("mcp-session-id", &session)], "").await.status, 404);
    let get = exchange(addr, "GET", "/mcp", &[("accept", "text/event-stream")], "").await;
    assert_eq!(get.status, 400, "a GET needs a session: {}", get.body);
}

#[tokio::test]
async fn the_protocol_version_header_must_be_the_sessions() {
    let (_served, addr) = start(builder()).await;
    let session = http_session(addr).await;
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    let ok = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[("mcp-session-id", &session), ("mcp-protocol-version", "2025-11-25")]),
        &list,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    for bad in ["2025-06-18", "1999-01-01"] {
        let refused = exchange(
            addr,
            "POST",
            "/mcp",
            &post_headers(&[("mcp-session-id", &session), ("mcp-protocol-version", bad)]),
            &list,
        )
        .await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
        assert!(refused.body.contains(bad), "{}", refused.body);
    }
    // Before a session exists too: an unknown version is refused.
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}});
    let refused =
        exchange(addr, "POST", "/mcp", &post_headers(&[("mcp-protocol-version", "1999-01-01")]), &init.to_string())
            .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
}

#[tokio::test]
async fn the_get_stream_carries_what_belongs_to_no_call_and_is_one_at_a_time() {
    let (_served, addr) = start(builder()).await;
    let session = http_session(addr).await;
    // Open the GET stream (its headers mean the server attached it), then read it on a task.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/mcp")
        .header("host", addr.to_string())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let stream = tokio::spawn(async move {
        use http_body_util::BodyExt;
        let mut body = response.into_body();
        let mut text = String::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                text.push_str(std::str::from_utf8(data).unwrap());
            }
            if text.contains("after the call") {
                return text;
            }
        }
        panic!("the GET stream ended without the message: {text}");
    });
    // A second GET while the first is open is refused.
    let second =
        exchange(addr, "GET", "/mcp", &[("accept", "text/event-stream"), ("mcp-session-id", &session)], "").await;
    assert_eq!(second.status, 409, "{}", second.body);
    let answered =
        in_session(addr, &session, &call(1, "later", json!({"message": "after the call", "after_ms": 50}))).await;
    assert_eq!(answered.json()["result"]["content"][0]["text"], "true");
    let text = tokio::time::timeout(Duration::from_secs(10), stream).await.expect("the message came").unwrap();
    assert!(text.contains("notifications/message"), "{text}");
}

#[tokio::test]
async fn a_stream_the_tool_closed_is_resumed_with_last_event_id() {
    let (_served, addr) = start(builder()).await;
    let session = http_session(addr).await;
    let cut = in_session(addr, &session, &call(1, "poll_me", json!({"ms": 200}))).await;
    assert_eq!(cut.header("content-type"), Some("text/event-stream"));
    let events = cut.events();
    assert_eq!(events.len(), 1, "only the priming event before the cut: {}", cut.body);
    let last = events[0].0.clone().expect("the priming event has an id");
    let resumed = exchange(
        addr,
        "GET",
        "/mcp",
        &[("accept", "text/event-stream"), ("mcp-session-id", &session), ("last-event-id", &last)],
        "",
    )
    .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let response: Vec<Value> = resumed.events().into_iter().filter_map(|(_, v)| v).collect();
    assert_eq!(response.len(), 1, "{}", resumed.body);
    assert_eq!(response[0]["id"], 1);
    assert_eq!(response[0]["result"]["content"][0]["text"], "200");
    // An id this server never issued.
    let bad = exchange(
        addr,
        "GET",
        "/mcp",
        &[("accept", "text/event-stream"), ("mcp-session-id", &session), ("last-event-id", "nope")],
        "",
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    // The stream exists, the sequence number does not: the largest one
    // (whose successor overflows) and one just past what was sent.
    let stream = last.split_once('-').expect("<stream>-<seq>").0;
    for unsent in [format!("{stream}-18446744073709551615"), format!("{stream}-99")] {
        let refused = exchange(
            addr,
            "GET",
            "/mcp",
            &[("accept", "text/event-stream"), ("mcp-session-id", &session), ("last-event-id", &unsent)],
            "",
        )
        .await;
        assert_eq!(refused.status, 400, "{unsent}: {}", refused.body);
        assert!(refused.body.contains("has not sent"), "{}", refused.body);
    }
}

#[tokio::test]
async fn idle_sessions_are_closed_and_counted() {
    let (_served, addr) = start(builder().session_idle_timeout(Duration::from_millis(300))).await;
    let session = http_session(addr).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = exchange(addr, "GET", "/healthz", &[], "").await;
        assert_eq!(health.status, 200);
        if health.json()["expiredSessions"] == 1 {
            assert_eq!(health.json()["sessions"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "the idle session was never closed: {}", health.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    assert_eq!(in_session(addr, &session, &list).await.status, 404);
}

fn stateless(id: i64, method: &str, mut params: Value) -> String {
    params["_meta"] =
        json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}).to_string()
}

#[tokio::test]
async fn stateless_requests_get_the_revisions_status_codes() {
    let (_served, addr) = start(builder()).await;
    let headers = |method: &'static str, name: Option<&'static str>| {
        let mut h = post_headers(&[("mcp-protocol-version", "2026-07-28"), ("mcp-method", method)]);
        if let Some(name) = name {
            h.push(("mcp-name", name));
        }
        h
    };
    let list =
        exchange(addr, "POST", "/mcp", &headers("tools/list", None), &stateless(1, "tools/list", json!({}))).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.header("mcp-session-id").is_none(), "no session in the stateless revision");
    assert_eq!(list.json()["result"]["resultType"], "complete");

    let no_meta = json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}).to_string();
    let refused = exchange(addr, "POST", "/mcp", &headers("tools/list", None), &no_meta).await;
    assert_eq!((refused.status, refused.json()["error"]["code"].clone()), (400, json!(-32602)), "{}", refused.body);
    assert_eq!(refused.json()["id"], 2, "the error carries the request's id");

    let removed = exchange(addr, "POST", "/mcp", &headers("ping", None), &stateless(3, "ping", json!({}))).await;
    assert_eq!((removed.status, removed.json()["error"]["code"].clone()), (404, json!(-32601)), "{}", removed.body);

    let mismatch =
        exchange(addr, "POST", "/mcp", &headers("prompts/list", None), &stateless(4, "tools/list", json!({}))).await;
    assert_eq!((mismatch.status, mismatch.json()["error"]["code"].clone()), (400, json!(-32020)), "{}", mismatch.body);
    let no_name = exchange(
        addr,
        "POST",
        "/mcp",
        &headers("tools/call", None),
        &stateless(5, "tools/call", json!({"name":"echo","arguments":{"text":"x"}})),
    )
    .await;
    assert_eq!((no_name.status, no_name.json()["error"]["code"].clone()), (400, json!(-32020)), "{}", no_name.body);
    let named = exchange(
        addr,
        "POST",
        "/mcp",
        &headers("tools/call", Some(" echo ")),
        &stateless(6, "tools/call", json!({"name":"echo","arguments":{"text":"x"}})),
    )
    .await;
    assert_eq!(named.json()["result"]["structuredContent"], json!({"text":"x"}), "{}", named.body);

    let get =
        exchange(addr, "GET", "/mcp", &[("accept", "text/event-stream"), ("mcp-protocol-version", "2026-07-28")], "")
            .await;
    assert_eq!(get.status, 405, "no GET stream without sessions: {}", get.body);
}

#[tokio::test]
async fn closing_a_stateless_stream_cancels_its_call() {
    let seen = Progressed::default();
    let (_served, addr) = start(builder().state(seen.clone())).await;
    let mut body: Value = serde_json::from_str(&stateless(
        1,
        "tools/call",
        json!({"name":"work","arguments":{"steps":200,"step_ms":20}}),
    ))
    .unwrap();
    body["params"]["_meta"]["progressToken"] = json!("p");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut request = hyper::Request::post("/mcp").header("host", addr.to_string());
    for (name, value) in
        post_headers(&[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "work")])
    {
        request = request.header(name, value);
    }
    let request = request.body(http_body_util::Full::new(hyper::body::Bytes::from(body.to_string()))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    use http_body_util::BodyExt;
    let first = body.frame().await.expect("a first event").expect("readable");
    assert!(first.data_ref().is_some_and(|d| std::str::from_utf8(d).unwrap().contains("notifications/progress")));
    // The client closes the stream: the connection goes away.
    drop(body);
    drop(sender);
    connection.abort();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the call was not cancelled when its stream closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn http_limits_answer_with_their_status_codes() {
    let (_served, addr) = start(builder().max_message_size(1024).max_sessions(1)).await;
    let session = http_session(addr).await;
    let big = call(1, "echo", json!({"text": "x".repeat(2000)}));
    let too_big = in_session(addr, &session, &big).await;
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert!(too_big.body.contains("1024"), "{}", too_big.body);
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    let wrong_type =
        exchange(addr, "POST", "/mcp", &[("content-type", "text/plain"), ("mcp-session-id", &session)], &list).await;
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.body);
    let json_only = exchange(
        addr,
        "POST",
        "/mcp",
        &[("content-type", "application/json"), ("accept", "application/json"), ("mcp-session-id", &session)],
        &list,
    )
    .await;
    assert_eq!(json_only.status, 406, "{}", json_only.body);
    let health = exchange(addr, "GET", "/healthz", &[], "").await;
    assert_eq!((health.status, health.json()["status"].clone()), (200, json!("serving")));
}

#[tokio::test]
async fn a_body_trickled_slower_than_the_timeout_gets_408_and_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_served, addr) = start(builder().body_timeout(Duration::from_millis(400))).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // One byte every 50 ms: the connection is never silent for long, but the
    // body would take 50 s to arrive.
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(started.elapsed() < Duration::from_secs(10), "no answer to a trickled body");
        tokio::select! {
            read = socket.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                // The server may have closed its side; a failed write ends the trickle.
                let _ = socket.write_all(b" ").await;
            }
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in full"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(400), "not before the timeout");
}

#[tokio::test]
async fn input_the_server_cannot_accept_gets_400_with_or_without_a_session() {
    let (_served, addr) = start(builder()).await;
    let session = http_session(addr).await;
    let refused = [
        (r#"{"jsonrpc":"2.0","method":5}"#, -32600),
        (r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[1]}"#, -32602),
        (r#"{"jsonrpc":"2.0","id":1,"method":"#, -32700),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
        (r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, -32600),
    ];
    for (body, code) in refused {
        let in_session = in_session(addr, &session, body).await;
        let outside = exchange(addr, "POST", "/mcp", &post_headers(&[]), body).await;
        for (where_, answer) in [("in a session", &in_session), ("without one", &outside)] {
            assert_eq!(answer.status, 400, "{where_}: {body}: {}", answer.body);
            assert_eq!(answer.json()["error"]["code"], code, "{where_}: {body}: {}", answer.body);
            assert_eq!(answer.json()["id"], Value::Null, "{where_}: {body}");
        }
    }
    // A valid notification is accepted; a request's JSON-RPC error is its answer.
    let accepted = in_session(addr, &session, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let unknown = in_session(addr, &session, &call(7, "no_such_tool", json!({}))).await;
    assert_eq!((unknown.status, unknown.json()["id"].clone()), (200, json!(7)), "{}", unknown.body);
}

#[tokio::test]
async fn a_tool_called_by_name_over_http_needs_a_session() {
    let (_served, addr) = start(builder()).await;
    let legacy = json!({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"x"}}).to_string();
    let refused = exchange(addr, "POST", "/mcp", &post_headers(&[]), &legacy).await;
    assert_eq!((refused.status, refused.json()["error"]["code"].clone()), (400, json!(-32600)), "{}", refused.body);
    assert!(refused.body.contains("needs a session") && refused.body.contains("initialize"), "{}", refused.body);
    assert!(refused.header("mcp-session-id").is_none());
    // After initialize, the session may call it by name as before.
    let session = http_session(addr).await;
    let called = in_session(addr, &session, &legacy).await;
    assert_eq!(called.status, 200, "{}", called.body);
    assert_eq!(called.json()["result"], json!({"text": "x"}), "{}", called.body);
}

/// Opens `session`'s GET stream and keeps it open until the returned guard drops.
async fn hold_get_stream(addr: std::net::SocketAddr, session: &str) -> impl Drop {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get("/mcp")
        .header("host", addr.to_string())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    struct Held(tokio::task::JoinHandle<()>, #[allow(dead_code)] hyper::Response<hyper::body::Incoming>);
    impl Drop for Held {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    Held(tokio::spawn(async move { drop(connection.await) }), response)
}

#[tokio::test]
async fn at_the_session_limit_the_longest_idle_quiet_session_makes_room() {
    let (_served, addr) = start(builder().max_sessions(2)).await;
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}})
        .to_string();
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();
    let first = http_session(addr).await;
    let second = http_session(addr).await;
    // The first is used again: the second is now the one idle the longest.
    assert_eq!(in_session(addr, &first, &ping).await.status, 200);
    let third = exchange(addr, "POST", "/mcp", &post_headers(&[]), &init).await;
    assert_eq!(third.status, 200, "room was made: {}", third.body);
    let third = third.header("mcp-session-id").expect("a session").to_owned();
    assert_eq!(in_session(addr, &second, &ping).await.status, 404, "the idle one was closed");
    assert_eq!(in_session(addr, &first, &ping).await.status, 200);
    let health = exchange(addr, "GET", "/healthz", &[], "").await;
    assert_eq!((health.json()["sessions"].clone(), health.json()["evictedSessions"].clone()), (json!(2), json!(1)));

    // Sessions with an open stream are never evicted: with both busy, 503.
    let _first_stream = hold_get_stream(addr, &first).await;
    let _third_stream = hold_get_stream(addr, &third).await;
    let full = exchange(addr, "POST", "/mcp", &post_headers(&[]), &init).await;
    assert_eq!(full.status, 503, "every session is busy: {}", full.body);
    assert!(full.header("retry-after").is_some());
    assert_eq!(in_session(addr, &first, &ping).await.status, 200);
    assert_eq!(in_session(addr, &third, &ping).await.status, 200);
}

/// Sends `count` progress notifications carrying `size` bytes each, as fast as it may.
#[mcp_runtime::mcp_tool]
async fn flood(cx: mcp_runtime::RequestContext, count: u32, size: usize) -> u32 {
    let filler = "x".repeat(size);
    for i in 1..=count {
        cx.progress(i.into(), Some(count.into()), Some(&filler)).await;
    }
    count
}

#[tokio::test]
async fn a_slow_sse_reader_holds_the_call_back_instead_of_missing_events() {
    use http_body_util::BodyExt;
    let (_served, addr) = start(builder().tool::<flood>()).await;
    let session = http_session(addr).await;
    // About 4 MB: far more than the socket buffers hold, so the reader
    // really falls behind while it waits.
    let count = 2000u32;
    let body = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{
        "name":"flood","arguments":{"count":count,"size":2000},"_meta":{"progressToken":"f"}}});
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::post("/mcp").header("host", addr.to_string());
    for (name, value) in post_headers(&[("mcp-session-id", &session)]) {
        request = request.header(name, value);
    }
    let request = request.body(http_body_util::Full::new(hyper::body::Bytes::from(body.to_string()))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // The reader stalls while the tool floods.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = tokio::time::timeout(Duration::from_secs(30), response.into_body().collect())
        .await
        .expect("the stream ended")
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&text);
    let messages: Vec<Value> = text
        .split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter(|data| !data.is_empty())
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let progress: Vec<u64> =
        messages.iter().filter_map(|m| m["params"]["progress"].as_f64()).map(|p| p as u64).collect();
    let in_order = progress.iter().copied().eq(1..=u64::from(count));
    assert!(in_order, "every notification, in order, none skipped: got {} from {:?}", progress.len(), progress.first());
    assert_eq!(messages.last().unwrap()["id"], 9, "then the response");
    let health = exchange(addr, "GET", "/healthz", &[], "").await;
    assert_eq!(health.json()["droppedEvents"], 0, "{}", health.body);
}

#[tokio::test]
async fn while_draining_a_stream_can_be_resumed_but_no_new_one_opened() {
    let (served, addr) = start(builder()).await;
    let session = http_session(addr).await;
    // The call closes its stream at once and answers 500 ms later.
    let cut = in_session(addr, &session, &call(1, "poll_me", json!({"ms": 500}))).await;
    let last = cut.events()[0].0.clone().expect("the priming event has an id");
    served.shutdown.shutdown();
    let get = |last: Option<String>| {
        let session = session.clone();
        async move {
            let mut headers = vec![("accept", "text/event-stream".to_owned()), ("mcp-session-id", session)];
            if let Some(last) = last {
                headers.push(("last-event-id", last));
            }
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            exchange(addr, "GET", "/mcp", &headers, "").await
        }
    };
    let new_stream = get(None).await;
    assert_eq!(new_stream.status, 503, "{}", new_stream.body);
    let resumed = get(Some(last)).await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let response: Vec<Value> = resumed.events().into_iter().filter_map(|(_, v)| v).collect();
    assert_eq!(response.len(), 1, "the answer that came during the grace: {}", resumed.body);
    assert_eq!(response[0]["result"]["content"][0]["text"], "500");
}

#[tokio::test]
async fn the_shutdown_drain_waits_for_stateless_calls_and_cancels_them_after_the_grace() {
    let (mut served, addr) = start(builder().shutdown_grace(Duration::from_millis(300))).await;
    let headers =
        post_headers(&[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "nap")]);
    let long = stateless(1, "tools/call", json!({"name":"nap","arguments":{"ms":10000}}));
    let started = Instant::now();
    let call = tokio::spawn(async move { exchange(addr, "POST", "/mcp", &headers, &long).await });
    // Give the request time to arrive, then shut down. Had it arrived
    // after, it would be refused at once: the elapsed-time check below
    // tells that apart from a call cancelled at the end of the grace.
    tokio::time::sleep(Duration::from_millis(100)).await;
    served.shutdown.shutdown();
    let answer = tokio::time::timeout(Duration::from_secs(4), call).await.expect("cancelled after the grace").unwrap();
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.body.contains("cancelled it"), "{}", answer.body);
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the grace was over");
    tokio::time::timeout(Duration::from_secs(4), &mut served.task).await.expect("serve returned").unwrap().unwrap();
}

/// Whether `linger`'s background task got all its notifications out.
#[derive(Clone, Default)]
struct Lingered(std::sync::Arc<std::sync::atomic::AtomicBool>);

/// Streams (one progress notification), then returns, leaving a task that
/// sends 100 more after the call ended.
#[mcp_runtime::mcp_tool]
async fn linger(cx: mcp_runtime::RequestContext, done: mcp_runtime::State<Lingered>) -> bool {
    cx.progress(0.0, None, Some("streaming")).await;
    let done = done.0.0.clone();
    tokio::spawn(async move {
        // After the call's response: the task outlives its call.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 1..=100 {
            cx.progress(f64::from(i), None, Some("after the call")).await;
        }
        done.store(true, Ordering::SeqCst);
    });
    // Returns later than its first poll: the call ends while its response streams.
    tokio::time::sleep(Duration::from_millis(20)).await;
    true
}

#[tokio::test]
async fn a_task_outliving_a_stateless_streamed_call_never_blocks_on_its_notifications() {
    let done = Lingered::default();
    let (_served, addr) = start(builder().tool::<linger>().state(done.clone())).await;
    let headers =
        post_headers(&[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "linger")]);
    let mut body: Value =
        serde_json::from_str(&stateless(1, "tools/call", json!({"name":"linger","arguments":{}}))).unwrap();
    body["params"]["_meta"]["progressToken"] = json!("l");
    let answer = exchange(addr, "POST", "/mcp", &headers, &body.to_string()).await;
    assert_eq!(answer.header("content-type"), Some("text/event-stream"), "{}", answer.body);
    assert!(answer.body.contains(r#""result""#), "{}", answer.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done.0.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the task blocked sending its notifications after its call ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
