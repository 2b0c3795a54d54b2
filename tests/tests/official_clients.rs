//! The official MCP clients against the real `hello` binary on every
//! transport: WebSocket (the Python SDK's `websocket_client` from
//! mcp[ws]==1.30.0, the TypeScript SDK's `WebSocketClientTransport`),
//! Streamable HTTP (the TypeScript SDK's `StreamableHTTPClientTransport`, the
//! Python SDK 2.x `Client` on a 2025-11-25 session and on the stateless
//! 2026-07-28 revision) and stdio (the Python SDK 2.x launching
//! `hello --stdio` itself). Each peer script runs a whole session and reports
//! what it saw as JSON; the assertions are here, once, for all of them.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_tests::{ServerProcess, peers, scripts_dir};
use serde_json::Value;

/// One tool per page, so the clients must follow `nextCursor` to see all four.
const PAGE_SIZE: &str = "1";

/// How long one peer session may take; a hung SDK must fail the test, not hang CI.
const PEER_DEADLINE: Duration = Duration::from_secs(120);

fn run_peer(program: &Path, script: &Path, args: &[&str], cwd: &Path) -> Value {
    let mut child = Command::new(program)
        .arg(script)
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    // Read both pipes on threads so a chatty peer never blocks on a full pipe.
    let stdout = read_all(child.stdout.take().expect("piped"));
    let stderr = read_all(child.stderr.take().expect("piped"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the peer can be waited for") {
            break status;
        }
        if started.elapsed() > PEER_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} hung for {PEER_DEADLINE:?}; killed", script.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    assert!(status.success(), "{} failed ({status}):\n{stderr}\n{stdout}", script.display());
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("peer printed no JSON report ({e}):\n{stdout}\n{stderr}"))
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn assert_session(client: &str, r: &Value) {
    let ctx = |what: &str| format!("{client}: {what}; report: {r:#}");

    assert_eq!(r["serverName"], "hello", "{}", ctx("serverInfo.name"));
    // 2026-07-28 removed ping.
    if r["protocolVersion"] != "2026-07-28" {
        assert_eq!(r["ping"], true, "{}", ctx("ping"));
    }
    assert_eq!(r["pages"], 4, "{}", ctx("tools/list must paginate one tool per page"));
    let mut tools: Vec<&str> = r["tools"].as_array().expect("tools").iter().filter_map(Value::as_str).collect();
    tools.sort_unstable();
    assert_eq!(tools, ["add", "echo", "slow", "words"], "{}", ctx("tool names"));

    let echo = &r["echo"];
    assert_eq!(echo["isError"], false, "{}", ctx("echo succeeds"));
    assert_eq!(echo["structured"], serde_json::json!({"text": "héllo wörld"}), "{}", ctx("echo structuredContent"));
    let echo_text: Value = serde_json::from_str(echo["text"][0].as_str().expect("a text block")).expect("JSON text");
    assert_eq!(echo_text, echo["structured"], "{}", ctx("the text block carries the same JSON"));

    assert_eq!(r["add"]["structured"], serde_json::json!({"sum": 5}), "{}", ctx("add"));

    // A list result: both SDKs validated this structuredContent against the wrapped outputSchema.
    let words = serde_json::json!([
        {"word": "héllo", "offset": 0}, {"word": "big", "offset": 8}, {"word": "world", "offset": 12}
    ]);
    assert_eq!(r["words"]["isError"], false, "{}", ctx("words succeeds"));
    let words_text: Value = serde_json::from_str(r["words"]["text"][0].as_str().unwrap_or("null")).expect("JSON text");
    assert_eq!(words_text, words, "{}", ctx("the text block carries the bare list"));
    let schema = &r["words_schema"];
    if r["protocolVersion"] == "2026-07-28" {
        // The stateless revision allows any JSON type: nothing is wrapped.
        assert_eq!(r["words"]["structured"], words, "{}", ctx("words structuredContent, bare"));
        assert_eq!(schema["type"], "array", "{}", ctx("the list's own schema"));
    } else {
        let wrapped = serde_json::json!({"result": words});
        assert_eq!(r["words"]["structured"], wrapped, "{}", ctx("words structuredContent"));
        assert_eq!(schema["x-fastmcp-wrap-result"], true, "{}", ctx("the wrapped schema is marked"));
        assert_eq!(schema["properties"]["result"]["type"], "array", "{}", ctx("it wraps the list's schema"));
    }
    assert_eq!(r["add_overflow"]["isError"], true, "{}", ctx("overflow is a tool error, not a crash"));

    let bad = &r["bad_args"];
    assert_eq!(bad["isError"], true, "{}", ctx("wrong argument type gives isError"));
    let bad_text = bad["text"][0].as_str().unwrap_or_default();
    assert!(bad_text.contains('a') && bad_text.contains("i64"), "{}", ctx("the message names field `a` and i64"));

    let extra = &r["extra_args"];
    assert_eq!(extra["isError"], true, "{}", ctx("an unknown extra argument is rejected"));
    assert!(extra["text"][0].as_str().unwrap_or_default().contains("loud"), "{}", ctx("it names `loud`"));

    assert_eq!(r["unknown_tool"]["error_code"], -32602, "{}", ctx("unknown tool is JSON-RPC -32602"));

    assert_eq!(r["slow"]["isError"], false, "{}", ctx("slow completes"));
    let progress = r["progress"].as_array().expect("progress");
    assert_eq!(progress.len(), 3, "{}", ctx("one progress notification per step"));
    let values: Vec<f64> = progress.iter().map(|p| p[0].as_f64().expect("a number")).collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{}", ctx("progress increases"));
    assert!(r["log_messages"].as_u64().unwrap_or(0) >= 1, "{}", ctx("slow logs through the context"));

    let cancel = &r["cancel"];
    assert!(cancel["progress_before"].as_u64().unwrap_or(0) >= 2, "{}", ctx("the long call ran before cancel"));
    assert!(cancel["progress_after"].as_u64().unwrap_or(99) <= 1, "{}", ctx("no progress after cancel"));
    assert!(cancel["logs_after"].as_u64().unwrap_or(99) <= 1, "{}", ctx("the cancelled work stopped logging"));
    assert_eq!(cancel["answered"], false, "{}", ctx("a cancelled call gets no response"));
    assert_eq!(r["ping_after_cancel"], true, "{}", ctx("the session goes on after a cancel"));
}

#[test]
fn python_sdk_websocket_client_runs_a_full_session_against_hello() {
    let peers = peers();
    let server = ServerProcess::start("hello", &[("MCP_TOOLS_PAGE_SIZE", PAGE_SIZE)]);
    let script = scripts_dir().join("python/official_ws_client.py");
    let report = run_peer(&peers.python_mcp1, &script, &[&server.url()], &scripts_dir().join("python"));
    assert_eq!(
        report["protocolVersion"], "2025-11-25",
        "mcp 1.30.0 asks for 2025-11-25 and gets it echoed: {report:#}"
    );
    assert_session("python mcp 1.30.0", &report);
}

/// The TypeScript peer script against `url` (ws:// or http://).
fn typescript_session(url: &str) -> Value {
    // Panics, naming scripts/test.sh, when the SDK is not installed.
    peers();
    let script = scripts_dir().join("node/official_client.mjs");
    let node_dir = scripts_dir().join("node");
    // Node's ES module resolution ignores NODE_PATH: the SDK must be reachable from the script's folder.
    assert!(
        node_dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "run scripts/test.sh: it links the Node peers beside the scripts"
    );
    run_peer(Path::new("node"), &script, &[url], &node_dir)
}

#[test]
fn typescript_sdk_websocket_transport_runs_a_full_session_against_hello() {
    let server = ServerProcess::start("hello", &[("MCP_TOOLS_PAGE_SIZE", PAGE_SIZE)]);
    let report = typescript_session(&server.url());
    assert_session("typescript sdk 1.32.2 over WebSocket", &report);
}

#[test]
fn typescript_sdk_streamable_http_transport_runs_a_full_session_against_hello() {
    let server = ServerProcess::start("hello", &[("MCP_TOOLS_PAGE_SIZE", PAGE_SIZE)]);
    let report = typescript_session(&server.http_url());
    assert_session("typescript sdk 1.32.2 over Streamable HTTP", &report);
    assert_eq!(report["protocolVersion"], "2025-11-25", "{report:#}");
    let session = report["sessionId"].as_str().unwrap_or_default();
    assert!(session.len() >= 32 && session.bytes().all(|b| (0x21..=0x7e).contains(&b)), "session id: {report:#}");
    assert_eq!(report["terminated"], true, "DELETE ends the session: {report:#}");
}

/// The Python 2.x peer script: `target` is an http:// URL, or `stdio` to
/// launch `hello --stdio`; `mode` the SDK's connect mode.
fn python_session(target: &str, mode: &str) -> Value {
    let peers = peers();
    let script = scripts_dir().join("python/official_client.py");
    let hello = mcp_tests::binary("hello");
    let hello = hello.to_str().expect("a UTF-8 path");
    let args: Vec<&str> = if target == "stdio" { vec!["stdio", hello, mode] } else { vec![target, mode] };
    run_peer(&peers.python_mcp2, &script, &args, &scripts_dir().join("python"))
}

#[test]
fn python_sdk_streamable_http_client_runs_a_session_against_hello() {
    let server = ServerProcess::start("hello", &[("MCP_TOOLS_PAGE_SIZE", PAGE_SIZE)]);
    let report = python_session(&server.http_url(), "legacy");
    assert_eq!(report["protocolVersion"], "2025-11-25", "{report:#}");
    assert_session("python mcp 2.3.0 over Streamable HTTP (2025-11-25 session)", &report);
}

#[test]
fn python_sdk_streamable_http_client_runs_stateless_2026_07_28_against_hello() {
    let server = ServerProcess::start("hello", &[("MCP_TOOLS_PAGE_SIZE", PAGE_SIZE)]);
    let report = python_session(&server.http_url(), "auto");
    assert_eq!(
        report["protocolVersion"], "2026-07-28",
        "the SDK probes server/discover and goes stateless: {report:#}"
    );
    assert_session("python mcp 2.3.0 over Streamable HTTP (stateless 2026-07-28)", &report);
}

#[test]
fn python_sdk_stdio_client_launches_hello_directly() {
    let report = python_session("stdio", "legacy");
    assert_eq!(report["protocolVersion"], "2025-11-25", "{report:#}");
    assert_session("python mcp 2.3.0 over stdio", &report);
    let report = python_session("stdio", "auto");
    assert_eq!(report["protocolVersion"], "2026-07-28", "{report:#}");
    assert_session("python mcp 2.3.0 over stdio (stateless 2026-07-28)", &report);
}
