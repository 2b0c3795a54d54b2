//! `mcp_runtime::client::Client` against the real `hello` binary: every call
//! shape, 1,000 concurrent calls on one connection, timeouts and
//! cancellation, and the server killed and restarted under the client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_runtime::client::{Client, ClientError};
use mcp_tests::ServerProcess;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize, PartialEq)]
struct Sum {
    sum: i64,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Echo {
    text: String,
}

/// A client that retries quickly, so restart tests do not wait on backoff.
async fn fast_client(url: &str) -> Client {
    Client::builder(url)
        .client_info("client-hello-test", "1")
        .call_timeout(Duration::from_secs(20))
        .reconnect_initial_delay(Duration::from_millis(20))
        .reconnect_max_delay(Duration::from_millis(200))
        .connect()
        .await
        .expect("connects to hello")
}

#[tokio::test]
async fn handshake_and_every_page_of_tools() {
    let server = ServerProcess::start("hello", &[("MCP_TOOLS_PAGE_SIZE", "1")]);
    let client = Client::connect(&server.url()).await.unwrap();
    let info = client.server_info().expect("connected");
    assert_eq!(info.server_info.name, "hello");
    assert_eq!(info.protocol_version, "2025-11-25");
    assert!(client.is_connected());

    let tools = client.list_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "echo", "slow", "words"], "one tool per page, all pages followed");
    let add = tools.iter().find(|t| t.name == "add").unwrap();
    assert_eq!(add.input_schema["type"], "object");
    assert!(add.output_schema.is_some(), "add returns a struct, so it publishes an outputSchema");
}

#[tokio::test]
async fn every_call_shape() {
    let server = ServerProcess::start("hello", &[]);
    let client = Client::connect(&server.url()).await.unwrap();

    // The full result.
    let echo = client.call_tool("echo", json!({ "text": "héllo" })).await.unwrap();
    assert!(!echo.is_error);
    assert_eq!(echo.structured_content, Some(json!({ "text": "héllo" })));
    let text: serde_json::Value = serde_json::from_str(&echo.text()).unwrap();
    assert_eq!(text, json!({ "text": "héllo" }));

    // Typed, from structuredContent; arguments may be any Serialize.
    #[derive(serde::Serialize)]
    struct AddArgs {
        a: i64,
        b: i64,
    }
    assert_eq!(client.call::<Sum>("add", AddArgs { a: 2, b: 3 }).await.unwrap(), Sum { sum: 5 });
    assert_eq!(client.call::<Echo>("echo", json!({ "text": "x" })).await.unwrap().text, "x");

    // A string or a list comes wrapped as `{"result": ..}` (protocol 2025-11-25); the typed call unwraps it.
    let done: String = client.call("slow", json!({ "steps": 1 })).await.unwrap();
    assert_eq!(done, "done after 1 steps");
    let words: Vec<serde_json::Value> = client.call("words", json!({ "text": "a b" })).await.unwrap();
    assert_eq!(words, [json!({ "word": "a", "offset": 0 }), json!({ "word": "b", "offset": 2 })]);

    // isError: a full result from call_tool, a tool error from call.
    let overflow = json!({ "a": i64::MAX, "b": 1 });
    let raw = client.call_tool("add", &overflow).await.unwrap();
    assert!(raw.is_error);
    let e = client.call::<Sum>("add", &overflow).await.unwrap_err();
    assert!(e.is_tool_error() && !e.is_rpc_error(), "{e}");
    assert!(e.tool_message().unwrap().contains("does not fit"), "{e}");

    // Bad arguments are the tool's error (so a model can retry), naming the field.
    let e = client.call::<Sum>("add", json!({ "a": "two", "b": 3 })).await.unwrap_err();
    assert!(e.is_tool_error(), "{e}");
    assert!(e.to_string().contains('a'), "{e}");

    // Unknown tool: a JSON-RPC error, a different kind.
    let e = client.call_tool("no_such_tool", json!({})).await.unwrap_err();
    assert!(e.is_rpc_error() && !e.is_tool_error(), "{e}");
    assert_eq!(e.rpc_code(), Some(-32602), "{e}");

    // Output that does not match the asked type.
    let e = client.call::<Sum>("echo", json!({ "text": "x" })).await.unwrap_err();
    assert!(e.is_decode(), "{e}");

    // Arguments that are not an object never leave the process.
    let e = client.call_tool("add", json!([1, 2])).await.unwrap_err();
    assert!(e.is_invalid_request(), "{e}");
    assert!(e.to_string().contains("JSON object"), "{e}");

    // Raw requests.
    assert_eq!(client.request("ping", ()).await.unwrap(), json!({}));
    let e = client.request("no/such/method", json!({})).await.unwrap_err();
    assert_eq!(e.rpc_code(), Some(-32601), "{e}");
}

#[tokio::test]
async fn progress_reaches_the_caller_in_order() {
    let server = ServerProcess::start("hello", &[]);
    let client = Client::connect(&server.url()).await.unwrap();
    let mut seen = Vec::new();
    let result = client
        .call_tool_with_progress("slow", json!({ "steps": 3 }), |p| seen.push((p.progress, p.total)))
        .await
        .unwrap();
    assert!(!result.is_error);
    assert_eq!(seen, [(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_one_connection() {
    let server = ServerProcess::start("hello", &[]);
    let client = Client::connect(&server.url()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..1000i64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let sum: Sum = client.call("add", json!({ "a": i, "b": 1000 })).await?;
                assert_eq!(sum.sum, i + 1000, "answer matched to the wrong call");
            } else {
                let echo: Echo = client.call("echo", json!({ "text": format!("call {i}") })).await?;
                assert_eq!(echo.text, format!("call {i}"), "answer matched to the wrong call");
            }
            Ok::<_, ClientError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn timeout_cancels_and_the_connection_goes_on() {
    let server = ServerProcess::start("hello", &[]);
    let client = Client::builder(&server.url()).call_timeout(Duration::from_millis(300)).connect().await.unwrap();
    let started = Instant::now();
    let e = client.call_tool("slow", json!({ "steps": 50 })).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());

    // Dropping a call future mid-flight (select! losing) leaves the client
    // usable (that it also cancels the call on the server is checked in
    // mcp-runtime's client tests).
    tokio::select! {
        _ = client.call_tool("slow", json!({ "steps": 50 })) => panic!("slow cannot finish in 100 ms"),
        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    assert_eq!(client.call::<Sum>("add", json!({ "a": 1, "b": 1 })).await.unwrap(), Sum { sum: 2 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_fails_pending_calls_fast_then_reconnects() {
    let mut server = ServerProcess::start("hello", &[]);
    let client = fast_client(&server.url()).await;
    assert_eq!(client.call::<Sum>("add", json!({ "a": 1, "b": 2 })).await.unwrap(), Sum { sum: 3 });

    // 20 long calls in flight when the server dies: each reports once the
    // server has started working on it (its first progress step).
    let failures = Arc::new(Mutex::new(Vec::new()));
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut pending = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        let failures = failures.clone();
        let started_tx = started_tx.clone();
        pending.push(tokio::spawn(async move {
            let mut first = Some(started_tx);
            let e = client
                .call_tool_with_progress("slow", json!({ "steps": 100 }), |_| {
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
                    }
                })
                .await
                .unwrap_err();
            failures.lock().unwrap().push((Instant::now(), e));
        }));
    }
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(10), started_rx.recv())
            .await
            .expect("every slow call reaches the server")
            .unwrap();
    }
    let killed_at = Instant::now();
    server.kill();
    for task in pending {
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("pending calls never hang").unwrap();
    }
    for (at, e) in failures.lock().unwrap().iter() {
        assert!(e.is_connection_lost(), "{e}");
        assert!(e.to_string().contains(&server.url()), "the error names the server: {e}");
        assert!(at.duration_since(killed_at) < Duration::from_secs(2), "failed only after {:?}", *at - killed_at);
    }

    // A call made while the server is down waits for the reconnect.
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.call::<Sum>("add", json!({ "a": 20, "b": 22 })).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!client.is_connected(), "the server is down, yet the client reports a connection");
    assert!(!waiting.is_finished(), "a call made while the server is down returned instead of waiting");
    let _server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), Sum { sum: 42 });
    assert!(client.is_connected());
    assert_eq!(client.call::<Echo>("echo", json!({ "text": "back" })).await.unwrap().text, "back");
    assert_eq!(client.server_info().unwrap().server_info.name, "hello", "re-handshaken");
}

#[tokio::test]
async fn without_reconnect_calls_fail_fast_after_a_loss() {
    let mut server = ServerProcess::start("hello", &[]);
    let client = Client::builder(&server.url()).reconnect(false).connect().await.unwrap();
    client.request("ping", ()).await.unwrap();
    server.kill();
    let started = Instant::now();
    let e = loop {
        // The first call may race the reader noticing the close.
        match client.request("ping", ()).await {
            Err(e) => break e,
            Ok(_) if started.elapsed() < Duration::from_secs(5) => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(_) => panic!("calls still succeed 5 s after the server was killed"),
        }
    };
    assert!(e.is_connection_lost(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!client.is_connected());
}

#[tokio::test]
async fn connect_errors_are_clear_and_bounded() {
    // Bound but never listening: connects are refused, and no parallel
    // test's server can take the port while `held` lives.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let e = Client::connect(&format!("ws://127.0.0.1:{port}/")).await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");

    // A server that accepts TCP but never answers the upgrade.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", silent.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let e = Client::builder(&url).connect_timeout(Duration::from_millis(300)).connect().await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "connect timeout not honoured: {:?}", started.elapsed());

    let e = Client::connect("http://127.0.0.1:1/").await.unwrap_err();
    assert!(e.is_connect() && e.to_string().contains("ws://"), "{e}");
}

#[tokio::test]
async fn host_names_are_resolved() {
    let server = ServerProcess::start("hello", &[]);
    let client = Client::connect(&format!("ws://localhost:{}/", server.port())).await.unwrap();
    assert_eq!(client.call::<Sum>("add", json!({ "a": 1, "b": 2 })).await.unwrap(), Sum { sum: 3 });
}
