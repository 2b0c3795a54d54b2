//! What an existing client sees from a port where the Python server was
//! lenient: the exact answers the guide quotes in "What becomes stricter",
//! taken from the real Dewey, Horace and Godot servers over a raw WebSocket,
//! frame by frame, as the seeds' hand-written clients speak. Each answer is
//! asserted here and must appear verbatim in docs/migrating.md.

mod guide;

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use guide::assert_quoted;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Where the guide's quotations put the temporary directories: the seeds'
/// storage root for Horace, a plausible one for Dewey's message files.
const HORACE_ROOT: &str = "/mnt/irina_storage";
const DEWEY_FILES: &str = "/srv/dewey-files";

/// A raw WebSocket to a server: a frame out, the next frame back.
struct Wire {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// Temporary paths in answers, and what the guide shows instead.
    paths: Vec<(String, &'static str)>,
}

impl Wire {
    async fn open(url: &str) -> Wire {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("the server accepts");
        Wire { ws, paths: Vec::new() }
    }

    /// Opens a session the way the official clients do.
    async fn session(url: &str) -> Wire {
        let mut wire = Wire::open(url).await;
        let answer = wire
            .ask(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "seed-client", "version": "1"}
            }}))
            .await;
        assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
        wire
    }

    fn showing(mut self, temporary: &Path, shown_as: &'static str) -> Wire {
        self.paths.push((temporary.display().to_string(), shown_as));
        self
    }

    async fn send(&mut self, frame: &str) {
        self.ws.send(Message::text(frame)).await.expect("the frame is sent");
    }

    async fn recv(&mut self) -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
            .await
            .expect("the server answers within 30 s")
            .expect("the connection stays open")
            .expect("a frame");
        let mut text = frame.into_text().expect("a text frame").to_string();
        for (temporary, shown) in &self.paths {
            text = text.replace(temporary.as_str(), shown);
        }
        serde_json::from_str(&text).expect("JSON")
    }

    async fn ask(&mut self, request: Value) -> Value {
        self.send(&request.to_string()).await;
        self.recv().await
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.ask(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": tool, "arguments": arguments}}))
            .await
    }

    /// A `tools/call` that must end in `isError`; its text, checked against the guide.
    async fn tool_error(&mut self, tool: &str, arguments: Value) -> String {
        let answer = self.call(tool, arguments).await;
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        let text = answer["result"]["content"][0]["text"].as_str().expect("a text block").to_owned();
        assert_quoted(&text);
        text
    }
}

/// A JSON-RPC error's code and message, the message checked against the guide.
fn rpc_error(answer: &Value) -> (i64, String) {
    let code = answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error: {answer}"));
    let message = answer["error"]["message"].as_str().unwrap().to_owned();
    assert_quoted(&message);
    (code, message)
}

async fn dewey(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let config = dewey::StorageConfig::Sqlite { path: dir.join("dewey.sqlite3") };
    let storage = dewey::Storage::open(&config).await.unwrap();
    let files = dewey::MessageFiles::within(&dir.join("files")).unwrap();
    let bound = dewey::server(storage, files).bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", bound.local_addr());
    tokio::spawn(bound.serve());
    url
}

#[tokio::test]
async fn the_handshake_and_json_rpc_are_required_except_for_legacy_calls() {
    let dir = tempfile::tempdir().unwrap();
    let url = dewey(dir.path()).await;

    // Seed 000's first MCPClient sends tools/call without initialize.
    let mut wire = Wire::open(&url).await;
    let answer = wire
        .ask(json!({"jsonrpc": "2.0", "id": "a1", "method": "tools/call",
                    "params": {"name": "dewey_get_log_stats", "arguments": {}}}))
        .await;
    assert_eq!(rpc_error(&answer).0, -32600);
    // Its second version sends initialize without params, ignores the answer, then calls.
    let answer = wire.ask(json!({"jsonrpc": "2.0", "id": "a2", "method": "initialize"})).await;
    assert_eq!(rpc_error(&answer).0, -32602);

    // Legacy direct calls need no handshake: the tool's JSON is the result,
    // its failures JSON-RPC errors.
    let answer = wire.ask(json!({"jsonrpc": "2.0", "id": 2, "method": "dewey_get_log_stats", "params": {}})).await;
    assert_eq!(answer["result"]["total_logs"], 0, "{answer}");
    let answer = wire
        .ask(json!({"jsonrpc": "2.0", "id": 3, "method": "dewey_store_message",
                    "params": {"conversation_id": "c-1", "role": "user", "content": "hi"}}))
        .await;
    assert_eq!(rpc_error(&answer).0, -32000);
    let answer = wire
        .ask(json!({"jsonrpc": "2.0", "id": 4, "method": "dewey_store_message",
                    "params": {"conversation_id": "c-1", "content": "hi", "colour": "red"}}))
        .await;
    assert_eq!(rpc_error(&answer).0, -32602);

    // Without `"jsonrpc": "2.0"`: refused; without an id as well (seed 003's
    // worker sketch): a notification, never answered. The ping after it is
    // the next frame back.
    let answer = wire.ask(json!({"id": 5, "method": "dewey_store_logs_batch", "params": {"logs": []}})).await;
    assert_eq!(rpc_error(&answer).0, -32600);
    wire.send(&json!({"method": "dewey_store_logs_batch", "params": {"logs": []}}).to_string()).await;
    let answer = wire.ask(json!({"jsonrpc": "2.0", "id": 6, "method": "ping"})).await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 6, "result": {}}));
}

#[tokio::test]
async fn dewey_arguments_are_checked_against_the_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = dewey(dir.path()).await;
    let mut wire = Wire::session(&url).await.showing(&dir.path().join("files"), DEWEY_FILES);

    // Python's `**arguments` raised TypeError for an unknown key, which the
    // server turned into -32603 "Internal error: ..."; a wrong enum value
    // or type reached the SQL.
    wire.tool_error(
        "dewey_store_message",
        json!({"conversation_id": "c-1", "role": "robot", "content": "hi", "colour": "red"}),
    )
    .await;
    wire.tool_error("dewey_store_message", json!({"conversation_id": "c-1", "content": "hi"})).await;
    wire.tool_error("dewey_list_conversations", json!({"limit": "10"})).await;
    wire.tool_error("dewey_list_conversations", json!({"limit": null})).await;
    // `None` for an optional argument without a default is still fine.
    let answer = wire.call("dewey_begin_conversation", json!({"session_id": null})).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");

    // The seed opened any path it was given.
    wire.tool_error("dewey_store_messages_bulk", json!({"messages_file": "/etc/passwd"})).await;
    wire.tool_error("dewey_store_message", json!({"conversation_id": "c-1", "role": "user", "content": "hi"})).await;

    let answer = wire.call("dewey_no_such_tool", json!({})).await;
    assert_eq!(rpc_error(&answer).0, -32602);
}

#[tokio::test]
async fn horace_paths_stay_in_the_root_and_metadata_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let root = horace::StorageRoot::open(&dir.path().join("files")).unwrap();
    let config = horace::CatalogConfig::Sqlite { path: dir.path().join("horace.sqlite3") };
    let catalog = horace::Catalog::open(&config, &root.path().display().to_string()).await.unwrap();
    std::fs::write(dir.path().join("files/report.txt"), "q3").unwrap();
    let bound = horace::server(horace::Horace::new(root, catalog).unwrap()).bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", bound.local_addr());
    tokio::spawn(bound.serve());
    let canonical = dir.path().join("files").canonicalize().unwrap();
    let mut wire =
        Wire::session(&url).await.showing(&canonical, HORACE_ROOT).showing(&dir.path().join("files"), HORACE_ROOT);

    wire.tool_error("horace_register_file", json!({"file_path": "../../etc/passwd", "metadata": {}})).await;
    wire.tool_error("horace_register_file", json!({"file_path": "/etc/passwd", "metadata": {}})).await;
    wire.tool_error(
        "horace_register_file",
        json!({"file_path": "report.txt", "metadata": {"owner": "ops", "colour": "red"}}),
    )
    .await;
    wire.tool_error("horace_register_file", json!({"file_path": "report.txt"})).await;
    wire.tool_error("horace_get_file_info", json!({"file_id": "not-a-uuid"})).await;
    // The seed's DuplicateFileError was a success carrying the existing id; so is this.
    let first = wire.call("horace_register_file", json!({"file_path": "report.txt", "metadata": {}})).await;
    let again = wire.call("horace_register_file", json!({"file_path": "report.txt", "metadata": {}})).await;
    assert_eq!(again["result"]["structuredContent"]["status"], "duplicate", "{again}");
    assert_eq!(again["result"]["structuredContent"]["file_id"], first["result"]["structuredContent"]["file_id"]);
}

#[tokio::test]
async fn godot_logger_log_checks_what_the_seed_queued_unread() {
    let dir = tempfile::tempdir().unwrap();
    let config = godot::Config::embedded(dir.path());
    let queue = godot::Queue::open(&config).unwrap();
    let facade = godot::Facade::start(queue, &config);
    let bound = godot::server(facade).bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", bound.local_addr());
    tokio::spawn(bound.serve());
    let mut wire = Wire::session(&url).await;

    let ok = wire.call("logger_log", json!({"component": "fiedler", "level": "info", "message": "started"})).await;
    assert_eq!(ok["result"]["structuredContent"]["status"], "ok", "{ok}");
    wire.tool_error("logger_log", json!({"component": "fiedler", "level": "NOTICE", "message": "started"})).await;
    wire.tool_error(
        "logger_log",
        json!({"component": "fiedler", "level": "INFO", "message": "started", "data": "pid 7"}),
    )
    .await;
    wire.tool_error("logger_log", json!({"component": "", "level": "INFO", "message": "started"})).await;
    wire.tool_error(
        "logger_log",
        json!({"component": "fiedler", "level": "INFO", "message": "started", "timestamp": "2025-01-01T00:00:00Z"}),
    )
    .await;
}

/// Seed 004's Godot queued into a Redis list; the port's queue is a stream.
/// A list still holding entries under `LOG_QUEUE_NAME` is refused at the
/// call, and nothing is lost from it; once drained (Redis deletes an empty
/// list), the same name serves the stream, and the seeds' level hash is read.
#[tokio::test]
async fn godot_on_the_seeds_redis() {
    let redis = mcp_tests::TestRedis::start();
    redis.command(&["LPUSH", "logs", r#"{"component":"old","level":"INFO","message":"queued by Python"}"#]);
    redis.command(&["HSET", "logger_config:levels", "chatty", "ERROR"]);
    let config = godot::Config::redis(redis.url(), "logs");
    let queue = godot::Queue::open(&config).unwrap();
    let facade = godot::Facade::start(queue, &config);
    let bound = godot::server(facade).bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", bound.local_addr());
    tokio::spawn(bound.serve());
    let mut wire = Wire::session(&url).await;

    let refused = wire.call("logger_log", json!({"component": "fiedler", "level": "INFO", "message": "started"})).await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    // The text names Redis's URL and script, which vary; the guide quotes the rest.
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    for part in ["WRONGTYPE", "Operation against a key holding the wrong kind of value", "the entry was not queued"] {
        assert!(text.contains(part), "{text}");
        assert_quoted(part);
    }
    assert_eq!(redis.command(&["LLEN", "logs"]), ":1", "the Python entry is still there");
    redis.command(&["RPOP", "logs"]);
    let ok = wire.call("logger_log", json!({"component": "fiedler", "level": "INFO", "message": "started"})).await;
    assert_eq!(ok["result"]["structuredContent"]["status"], "ok", "{ok}");
    let filtered = wire.call("logger_log", json!({"component": "chatty", "level": "INFO", "message": "noise"})).await;
    assert_eq!(filtered["result"]["structuredContent"]["status"], "filtered", "{filtered}");
}
