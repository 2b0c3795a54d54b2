//! The runtime's Godot sink (GODOT_URL) end to end: a Dewey whose
//! connections and tool calls go to a real Godot, whose worker stores them
//! in that same Dewey, with no feedback loop, and every record either
//! delivered or counted as dropped.

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use godot::config::Config;
use godot::{Facade, Queue};
use mcp_runtime::ShutdownHandle;
use mcp_runtime::client::Client;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Dewey (SQLite) logging to `godot_url`, in this process.
async fn dewey(godot_url: &str, dir: &std::path::Path) -> (String, ShutdownHandle) {
    let config = dewey::StorageConfig::Sqlite { path: dir.join("dewey.sqlite3") };
    let storage = dewey::Storage::open(&config).await.unwrap();
    let bound = dewey::server(storage, dewey::MessageFiles::disabled())
        .log_to_godot(Some(godot_url))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let url = format!("ws://{}/", bound.local_addr());
    let handle = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    (url, handle)
}

/// Godot (embedded queue, worker included) on `port`, storing into `dewey_url`.
async fn godot(port: u16, dewey_url: &str, dir: &std::path::Path) -> (ShutdownHandle, CancellationToken) {
    let mut config = Config::embedded(dir);
    config.dewey_url = dewey_url.to_owned();
    config.worker.batch_timeout = Duration::from_millis(20);
    config.worker.retry_initial_delay = Duration::from_millis(50);
    config.worker.retry_max_delay = Duration::from_millis(200);
    let queue = Queue::open(&config).unwrap();
    let bound = godot::server(Facade::start(queue.clone(), &config)).bind(format!("127.0.0.1:{port}")).await.unwrap();
    let handle = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    let worker = CancellationToken::new();
    tokio::spawn(godot::worker::run(queue, config, worker.clone()));
    (handle, worker)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every log entry of component `dewey`, oldest first.
async fn dewey_logs(client: &Client) -> Vec<Value> {
    let r: Value = client.call("dewey_query_logs", json!({"component": "dewey", "limit": 1000})).await.unwrap();
    let mut logs = r["logs"].as_array().unwrap().clone();
    logs.reverse();
    logs
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_calls_reach_godot_and_the_workers_own_calls_do_not() {
    let (dewey_dir, godot_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let (dewey_url, _dewey) = dewey(&format!("ws://127.0.0.1:{port}/"), dewey_dir.path()).await;
    let (_godot, _worker) = godot(port, &dewey_url, godot_dir.path()).await;

    let client = Client::connect(&dewey_url).await.unwrap();
    let _: Value = client.call("dewey_begin_conversation", json!({"session_id": "secret-session"})).await.unwrap();
    let bad =
        client.call_tool("dewey_store_message", json!({"conversation_id": "nope", "role": "user", "content": "x"}));
    assert!(bad.await.unwrap().is_error);
    until("both calls logged", || async {
        let logs = dewey_logs(&client).await;
        logs.iter().any(|l| l["message"] == "tool call dewey_begin_conversation: ok")
            && logs.iter().any(|l| l["message"] == "tool call dewey_store_message: tool_error")
    })
    .await;
    let logs = dewey_logs(&client).await;
    let call = logs.iter().find(|l| l["data"]["tool"] == "dewey_begin_conversation").unwrap();
    assert_eq!(call["level"], "TRACE");
    assert!(call["data"]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(call["data"].as_object().unwrap().len(), 3, "name, duration, outcome: {}", call["data"]);
    assert!(!call.to_string().contains("secret-session"), "argument values are never logged");
    let failed = logs.iter().find(|l| l["data"]["tool"] == "dewey_store_message").unwrap();
    assert_eq!((failed["level"].as_str(), failed["data"]["outcome"].as_str()), (Some("WARN"), Some("tool_error")));
    assert!(logs.iter().any(|l| l["message"] == "connection opened" && l["data"]["peer"].is_string()));
    // Godot's worker called dewey_store_logs_batch to store each of these.
    // Had those calls been logged, their records would be stored by now:
    // they were made before the two markers below, and flushes go in order.
    for marker in ["marker-1", "marker-2"] {
        let _: Value = client.call("dewey_get_startup_context", json!({"name": marker})).await.unwrap_or(json!(null));
        until(marker, || async {
            dewey_logs(&client).await.iter().filter(|l| l["data"]["tool"] == "dewey_get_startup_context").count()
                >= if marker == "marker-1" { 1 } else { 2 }
        })
        .await;
    }
    let logs = dewey_logs(&client).await;
    assert!(logs.iter().all(|l| l["data"]["tool"] != "dewey_store_logs_batch"), "no feedback loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_godot_down_calls_go_on_and_every_record_is_delivered_or_counted() {
    capture_warnings();
    let (dewey_dir, godot_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let (dewey_url, _dewey) = dewey(&format!("ws://127.0.0.1:{port}/"), dewey_dir.path()).await;
    let client = Client::connect(&dewey_url).await.unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let _: Value = client.call("dewey_list_startup_contexts", json!({})).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(2), "Godot being down slows no call: {:?}", started.elapsed());
    // The sink tried, found Godot down, and dropped (and counted) records:
    // its warning, which names Godot's URL, is how that shows from outside.
    let godot_url = format!("ws://127.0.0.1:{port}/");
    until("the sink dropped records meant for the Godot that is down", || async {
        warnings().lines().any(|l| l.contains("dropping log records meant for Godot") && l.contains(&godot_url))
    })
    .await;
    let (_godot, _worker) = godot(port, &dewey_url, godot_dir.path()).await;
    // 1 connection opened + 20 calls: each arrives, or is in the dropped count.
    until("every record delivered or counted", || async {
        let logs = dewey_logs(&client).await;
        let calls = logs.iter().filter(|l| l["data"]["tool"] == "dewey_list_startup_contexts").count();
        let opened = logs.iter().filter(|l| l["message"] == "connection opened").count();
        let dropped: i64 = logs.iter().filter_map(|l| l["data"]["dropped"].as_i64()).sum();
        calls + opened + dropped as usize >= 21 && dropped > 0
    })
    .await;
    let logs = dewey_logs(&client).await;
    let summary = logs.iter().find(|l| l["data"]["dropped"].is_i64()).unwrap();
    assert_eq!(summary["level"], "WARN");
    assert!(summary["message"].as_str().unwrap().contains("dropped"), "{summary}");
}

/// What [`capture_warnings`] captured.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// From now on, keeps every warning this test process logs. The subscriber
/// is global (the sink logs from its own task, on any runtime thread) and
/// installed once; each test picks out its own lines by URL.
fn capture_warnings() {
    static INSTALL: Once = Once::new();
    struct Capture;
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            CAPTURED.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    INSTALL.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .try_init()
            .expect("nothing else in this test binary installs a subscriber");
    });
}

/// The warnings captured so far, one per line.
fn warnings() -> String {
    String::from_utf8_lossy(&CAPTURED.lock().unwrap()).into_owned()
}

/// One request to a Streamable HTTP endpoint, through hyper's client: the
/// status, the session id it issued, and its JSON body (`Null` when empty).
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or_else(String::new, |b| b.to_string());
    let response = sender.send_request(request.body(Full::new(hyper::body::Bytes::from(body))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let session = response.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
    let json = response.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    assert!(json || value.is_null(), "a call that sends no notifications is answered with JSON");
    (status, session, value)
}

/// A stateless (2026-07-28) `tools/call` over HTTP as client `client`.
async fn stateless_call(addr: std::net::SocketAddr, client: &str, tool: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": tool, "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"},
        },
    }});
    let headers = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", tool)];
    let (status, session, reply) = http(addr, "POST", &headers, Some(body)).await;
    assert_eq!((status, session), (200, None), "{reply}");
    reply
}

fn with_transport<'a>(logs: &'a [Value], message: &str, transport: &str) -> Option<&'a Value> {
    logs.iter().find(|l| l["message"] == message && l["data"]["transport"] == transport)
}

/// The sink lives in the session engine, not in the WebSocket transport:
/// the `dewey` binary (a real process, GODOT_URL set) logs a Streamable
/// HTTP session and a stdio session as it logs a WebSocket connection, each
/// record naming its transport, and a stateless request's tool call; a
/// stateless request from Godot's worker is not logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_over_streamable_http_and_stdio_are_logged_as_websocket_ones_are() {
    let (dewey_dir, godot_dir, logged_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let godot_url = format!("ws://127.0.0.1:{port}/");
    let (dewey_url, _dewey) = dewey(&godot_url, dewey_dir.path()).await;
    let (_godot, _worker) = godot(port, &dewey_url, godot_dir.path()).await;
    let client = Client::connect(&dewey_url).await.unwrap();
    let data_dir = logged_dir.path().to_str().unwrap();
    let envs = [("GODOT_URL", godot_url.as_str()), ("DEWEY_DATA_DIR", data_dir), ("LOGGING_ENABLED", "true")];

    // Streamable HTTP: a session (initialize, a call, DELETE), then stateless calls.
    let logged = mcp_tests::ServerProcess::start("dewey", &envs);
    let addr = logged.addr();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "http-test", "version": "1"}}});
    let (status, session, reply) = http(addr, "POST", &[], Some(init)).await;
    assert_eq!(status, 200, "{reply}");
    let session = session.expect("initialize issues a session id");
    let in_session = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-11-25")];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(http(addr, "POST", &in_session, Some(initialized)).await.0, 202);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "dewey_list_conversations", "arguments": {}}});
    let (status, _, reply) = http(addr, "POST", &in_session, Some(call)).await;
    assert_eq!((status, reply["result"]["isError"].as_bool()), (200, Some(false)), "{reply}");
    // Godot's worker's call first, then a marker that is logged: once the
    // marker is stored, the worker's call would have been too.
    let unlogged = stateless_call(addr, "godot-worker", "dewey_get_log_stats").await;
    assert!(unlogged["result"].is_object(), "{unlogged}");
    let marker = stateless_call(addr, "someone", "dewey_list_startup_contexts").await;
    assert!(marker["result"].is_object(), "{marker}");
    until("the HTTP session's opening and both logged calls", || async {
        let logs = dewey_logs(&client).await;
        with_transport(&logs, "connection opened", "streamable-http").is_some()
            && logs.iter().any(|l| l["message"] == "tool call dewey_list_conversations: ok")
            && logs.iter().any(|l| l["message"] == "tool call dewey_list_startup_contexts: ok")
    })
    .await;
    assert_eq!(http(addr, "DELETE", &in_session, None).await.0, 200);
    until("the HTTP session's closing", || async {
        with_transport(&dewey_logs(&client).await, "connection closed", "streamable-http").is_some()
    })
    .await;
    let logs = dewey_logs(&client).await;
    let opened = with_transport(&logs, "connection opened", "streamable-http").unwrap();
    assert!(opened["data"]["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{opened}");
    let closed = with_transport(&logs, "connection closed", "streamable-http").unwrap();
    assert!(closed["data"]["open_ms"].as_f64().unwrap() > 0.0, "{closed}");
    assert!(logs.iter().all(|l| l["data"]["tool"] != "dewey_get_log_stats"), "Godot's worker is never logged");
    let stateless_opened = logs.iter().filter(|l| l["message"] == "connection opened").count();
    assert_eq!(
        stateless_opened, 2,
        "the test's WebSocket client and the one HTTP session; a stateless request is no session"
    );
    drop(logged);

    // stdio: the process serves one session and exits at EOF; the closing
    // still reaches Godot (the sink sends what it holds before exiting).
    let mut stdio = tokio::process::Command::new(mcp_tests::binary("dewey"))
        .arg("--stdio")
        .envs(envs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "stdio-test", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "dewey_get_startup_context", "arguments": {"name": "stdio-marker"}}}),
    ];
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = stdio.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        // Dropping stdin is EOF: the session drains and the process exits.
    }
    let output = tokio::time::timeout(Duration::from_secs(30), stdio.wait_with_output()).await.unwrap().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let replies: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(replies[1]["result"].is_object(), "{}", replies[1]);
    until("the stdio session's opening, call and closing", || async {
        let logs = dewey_logs(&client).await;
        with_transport(&logs, "connection opened", "stdio").is_some()
            && with_transport(&logs, "connection closed", "stdio").is_some()
            && logs.iter().any(|l| l["data"]["tool"] == "dewey_get_startup_context")
    })
    .await;
    let logs = dewey_logs(&client).await;
    assert!(with_transport(&logs, "connection opened", "stdio").unwrap()["data"]["peer"].is_null());
}
