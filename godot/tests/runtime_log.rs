//! The runtime's Godot sink (GODOT_URL) end to end: a Dewey whose
//! connections and tool calls go to a real Godot, whose worker stores them
//! in that same Dewey, with no feedback loop, and every record either
//! delivered or counted as dropped.

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
    let (dewey_dir, godot_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let (dewey_url, _dewey) = dewey(&format!("ws://127.0.0.1:{port}/"), dewey_dir.path()).await;
    let client = Client::connect(&dewey_url).await.unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let _: Value = client.call("dewey_list_startup_contexts", json!({})).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(2), "Godot being down slows no call: {:?}", started.elapsed());
    // Let the sink try (and fail) at least once, so some records are dropped.
    tokio::time::sleep(mcp_runtime_flush() * 3).await;
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

/// How often the sink flushes (mcp_runtime's FLUSH_EVERY).
fn mcp_runtime_flush() -> Duration {
    Duration::from_millis(250)
}
