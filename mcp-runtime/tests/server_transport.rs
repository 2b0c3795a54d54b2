//! The WebSocket transport: subprotocol, frame rules and limits, pipelining
//! and backpressure, keepalive, connection limit and graceful shutdown.

mod server_harness;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use server_harness::tools::builder;
use server_harness::{Client, TestServer, text};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn the_mcp_subprotocol_is_echoed_when_offered() {
    let server = TestServer::start(builder()).await;
    let (_client, chosen) = Client::connect(&server.url(), Some("mcp")).await;
    assert_eq!(chosen.as_deref(), Some("mcp"));
    let (_client, chosen) = Client::connect(&server.url(), Some("foo, mcp")).await;
    assert_eq!(chosen.as_deref(), Some("mcp"));
}

#[tokio::test]
async fn clients_offering_no_subprotocol_are_served() {
    let server = TestServer::start(builder()).await;
    let (mut client, chosen) = Client::connect(&format!("ws://{}/any/path?x=1", server.addr), None).await;
    assert_eq!(chosen, None);
    assert_eq!(client.initialize("2025-06-18").await["result"]["protocolVersion"], "2025-06-18");
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    client.ws.send(Message::binary(b"{\"jsonrpc\":\"2.0\"}".to_vec())).await.unwrap();
    let frame = client.expect_close().await;
    assert_eq!(frame.code, CloseCode::Unsupported);
    assert!(frame.reason.contains("text"), "{frame:?}");
}

#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let server = TestServer::start(builder().max_message_size(64 * 1024)).await;
    let mut client = server.session().await;
    // Just under the limit is fine.
    let fits = "x".repeat(60 * 1024);
    assert_eq!(client.call(1, "echo", json!({"text": fits})).await["result"]["isError"], false);
    let big = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text": "y".repeat(100 * 1024)}}});
    client.send(big).await;
    let frame = client.expect_close().await;
    assert_eq!(frame.code, CloseCode::Size, "{frame:?}");
}

#[tokio::test]
async fn a_flood_on_one_connection_is_all_answered_while_another_is_served() {
    const FLOOD: i64 = 10_000;
    let server = TestServer::start(builder().max_in_flight(16)).await;
    let flooder = server.session().await;
    let (mut sink, mut stream) = flooder.ws.split();
    let writer = tokio::spawn(async move {
        for id in 0..FLOOD {
            let message = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"text":"f"}}});
            sink.feed(Message::text(message.to_string())).await.unwrap();
        }
        sink.flush().await.unwrap();
        sink
    });
    let reader = tokio::spawn(async move {
        let mut seen = vec![false; FLOOD as usize];
        let mut count = 0;
        while count < FLOOD {
            let message = tokio::time::timeout(Duration::from_secs(30), stream.next()).await.unwrap().unwrap().unwrap();
            let Message::Text(text) = message else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            let id = value["id"].as_i64().unwrap();
            assert!(!seen[id as usize], "id {id} answered twice");
            seen[id as usize] = true;
            assert_eq!(value["result"]["structuredContent"]["text"], "f");
            count += 1;
        }
        count
    });
    // Meanwhile another connection gets prompt answers.
    let mut other = server.session().await;
    for id in 0..20 {
        let started = Instant::now();
        let response = other.call(id, "echo", json!({"text": "other"})).await;
        assert_eq!(response["result"]["structuredContent"]["text"], "other");
        assert!(started.elapsed() < Duration::from_secs(2), "the other connection starved");
    }
    assert_eq!(reader.await.unwrap(), FLOOD);
    let _sink = writer.await.unwrap();
}

#[tokio::test]
async fn calls_on_one_connection_run_concurrently() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let started = Instant::now();
    for id in [1, 2] {
        client
            .send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"nap","arguments":{"ms":400}}}))
            .await;
    }
    // A quick call sent last overtakes both.
    client
        .send(
            json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"fast"}}}),
        )
        .await;
    let first = client.response().await;
    assert_eq!(first["id"], 3, "responses come as calls finish: {first}");
    let mut ids =
        vec![client.response().await["id"].as_i64().unwrap(), client.response().await["id"].as_i64().unwrap()];
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(750), "two 400 ms calls took {elapsed:?}: they did not overlap");
}

#[tokio::test]
async fn the_in_flight_cap_applies_backpressure() {
    let server = TestServer::start(builder().max_in_flight(2)).await;
    let mut client = server.session().await;
    let started = Instant::now();
    for id in 0..4 {
        client
            .send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"nap","arguments":{"ms":200}}}))
            .await;
    }
    for _ in 0..4 {
        assert_eq!(text(&client.response().await), "200");
    }
    let elapsed = started.elapsed();
    // Two at a time: two rounds of 200 ms, not one.
    assert!(elapsed >= Duration::from_millis(390), "4 calls with a cap of 2 took only {elapsed:?}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight_then_closes_with_1012() {
    let mut server = TestServer::start(builder()).await;
    let mut busy = server.session().await;
    let mut idle = server.session().await;
    busy.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nap","arguments":{"ms":300}}}))
        .await;
    // Answered in order, so the call is running before the shutdown.
    assert_eq!(busy.request(json!(2), "ping", None).await["result"], json!({}));
    server.shutdown.shutdown();
    // The idle connection closes right away.
    assert_eq!(idle.expect_close().await.code, CloseCode::Restart);
    // The busy one gets its answer first.
    assert_eq!(text(&busy.response().await), "300");
    assert_eq!(busy.expect_close().await.code, CloseCode::Restart);
    // serve() returns once every connection has closed, and the listener
    // is gone with it.
    let addr = server.addr;
    let served = tokio::time::timeout(Duration::from_secs(5), &mut server.task).await.expect("serve() did not return");
    served.expect("serve() panicked").expect("serve() failed");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn keepalive_pings_stop_while_calls_drain() {
    // During the grace no frames are read, so pongs go unseen: a keepalive
    // must not take the unanswered ping for a dead peer.
    let server =
        TestServer::start(builder().ping_interval(Duration::from_millis(100)).shutdown_grace(Duration::from_secs(5)))
            .await;
    let mut client = server.session().await;
    client
        .send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nap","arguments":{"ms":600}}}))
        .await;
    // Answered in order, so the call is running before the shutdown.
    assert_eq!(client.request(json!(2), "ping", None).await["result"], json!({}));
    server.shutdown.shutdown();
    assert_eq!(text(&client.response().await), "600");
    assert_eq!(client.expect_close().await.code, CloseCode::Restart);
}

#[tokio::test]
async fn shutdown_grace_is_bounded() {
    let server = TestServer::start(builder().shutdown_grace(Duration::from_millis(200))).await;
    let mut client = server.session().await;
    client
        .send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nap","arguments":{"ms":60000}}}))
        .await;
    assert_eq!(client.request(json!(2), "ping", None).await["result"], json!({}));
    let started = Instant::now();
    server.shutdown.shutdown();
    assert_eq!(client.expect_close().await.code, CloseCode::Restart);
    assert!(started.elapsed() < Duration::from_secs(3), "waited {:?} for a 200 ms grace", started.elapsed());
}

#[tokio::test]
async fn over_the_connection_limit_new_clients_are_refused_cleanly() {
    let server = TestServer::start(builder().max_connections(2)).await;
    let mut first = server.session().await;
    let _second = server.session().await;
    let refused = tokio_tungstenite::connect_async(server.url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains("limit"), "{body}");
        }
        other => panic!("expected an HTTP 503 refusal, got {other:?}"),
    }
    // Existing connections are unaffected, and a slot frees when one leaves.
    assert_eq!(first.request(json!(1), "ping", None).await["result"], json!({}));
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if tokio_tungstenite::connect_async(server.url()).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn keepalive_pings_and_drops_silent_peers() {
    let server = TestServer::start(builder().ping_interval(Duration::from_millis(100))).await;
    let mut client = server.connect().await;
    let mut pings = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    // tungstenite answers pings while we read, so this peer stays alive.
    while pings < 3 {
        assert!(Instant::now() < deadline, "no keepalive pings");
        if let Ok(Some(Ok(Message::Ping(_)))) = tokio::time::timeout(Duration::from_millis(500), client.ws.next()).await
        {
            pings += 1;
        }
    }
    assert_eq!(client.request(json!(1), "ping", None).await["result"], json!({}));

    // A peer that stops reading (so never pongs) is dropped.
    let silent = server.connect().await;
    let mut tcp = match silent.ws.into_inner() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp,
        _ => unreachable!("plain ws:// only"),
    };
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        use tokio::io::AsyncReadExt;
        // Reading raw bytes consumes the pings without answering them.
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await.expect("never dropped") {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?} to drop a dead peer", started.elapsed());
}
