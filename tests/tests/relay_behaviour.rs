//! `mcp-relay` driven line by line over its real stdio: start-up before the
//! backend exists, the bounded queue and its timeout, session replay,
//! cancelled queued requests, malformed input, exit on end of input, CLI errors.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcp_tests::{HeldPort, ServerProcess, binary, peers, scripts_dir};
use serde_json::{Value, json};

struct Relay {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Relay {
    fn start(url: &str, extra: &[&str]) -> Relay {
        let mut child = Command::new(binary("mcp-relay"))
            .arg(url)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mcp-relay starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Relay { child, stdin, lines }
    }

    fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string());
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next stdout line, which must be one JSON-RPC message.
    fn recv(&self, within: Duration) -> Value {
        let line =
            self.lines.recv_timeout(within).unwrap_or_else(|_| panic!("no message from the relay in {within:?}"));
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout carried non-JSON {line:?}: {e}"));
        assert_eq!(value["jsonrpc"], "2.0", "{line}");
        value
    }

    /// Nothing on stdout for `for_how_long`, and the relay still running: a
    /// relay that crashed is not silent, it is gone.
    fn assert_silent(&mut self, for_how_long: Duration) {
        match self.lines.recv_timeout(for_how_long) {
            Ok(line) => panic!("expected nothing on stdout, got {line}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the relay closed its stdout (exit status {:?})", self.child.try_wait())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = self.child.try_wait().expect("the relay can be waited for") {
            panic!("the relay exited ({status}) while it should have been waiting");
        }
    }

    fn initialize(&mut self) -> Value {
        self.send(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
        }));
        let answer = self.recv(Duration::from_secs(20));
        assert_eq!(answer["id"], 0, "{answer}");
        self.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        answer
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that refuses connections for as long as the socket lives: bound
/// (so no other test's server can take it; no SO_REUSEADDR, so not even one
/// that sets it) but never listening (so a connect gets RST).
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

fn echo(id: i64, text: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": "echo", "arguments": { "text": text } } })
}

#[test]
fn messages_wait_for_a_backend_that_starts_late() {
    let held = HeldPort::bind();
    let mut relay = Relay::start(&format!("ws://127.0.0.1:{}/", held.port()), &["--reconnect-max-delay", "0.2"]);
    // The client talks first; the backend appears later.
    relay.send(&json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    }));
    relay.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    relay.send(&echo(1, "queued"));
    // Two attempts turned away: the relay has met the dead backend and is
    // retrying, with the messages waiting.
    held.wait_for_attempt(Duration::from_secs(10));
    held.wait_for_attempt(Duration::from_secs(10));
    relay.assert_silent(Duration::ZERO);
    let _server = ServerProcess::start_on_port("hello", held.release(), &[]);
    let init = relay.recv(Duration::from_secs(20));
    assert_eq!(init["result"]["serverInfo"]["name"], "hello", "{init}");
    let answer = relay.recv(Duration::from_secs(20));
    assert_eq!(answer["id"], 1, "queued messages keep their order: {answer}");
    assert_eq!(answer["result"]["structuredContent"], json!({ "text": "queued" }), "{answer}");
}

#[test]
fn the_session_is_replayed_and_the_duplicate_initialize_answer_swallowed() {
    let mut server = ServerProcess::start("hello", &[]);
    let mut relay = Relay::start(&server.url(), &["--reconnect-max-delay", "0.2"]);
    relay.initialize();
    relay.send(&echo(1, "one"));
    assert_eq!(relay.recv(Duration::from_secs(10))["id"], 1);

    server.kill();
    server.restart();
    // hello refuses tools/call before initialize, so this only succeeds if
    // the relay replayed the handshake; and the replayed initialize's answer
    // must not reach the client (the next message is the echo's).
    relay.send(&echo(2, "two"));
    let answer = relay.recv(Duration::from_secs(20));
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["result"]["structuredContent"], json!({ "text": "two" }), "{answer}");
    relay.assert_silent(Duration::from_millis(300));
}

#[test]
fn queued_requests_time_out_with_an_error_naming_the_backend() {
    let (_held, port) = refusing_port();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut relay = Relay::start(&url, &["--queue-timeout", "0.5", "--queue-limit", "2"]);
    let started = Instant::now();
    relay.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }));
    relay.send(&json!({ "jsonrpc": "2.0", "id": "two", "method": "ping" }));
    // The queue holds two: the third is refused at once.
    relay.send(&json!({ "jsonrpc": "2.0", "id": 3, "method": "ping" }));
    let full = relay.recv(Duration::from_secs(5));
    assert_eq!(full["id"], 3, "{full}");
    assert_eq!(full["error"]["code"], -32000, "{full}");
    assert!(full["error"]["message"].as_str().unwrap().contains("already waiting"), "{full}");

    for expected in [json!(1), json!("two")] {
        let expired = relay.recv(Duration::from_secs(5));
        assert_eq!(expired["id"], expected, "ids come back with their type: {expired}");
        let message = expired["error"]["message"].as_str().unwrap();
        assert!(message.contains(&url) && message.contains("unreachable"), "{message}");
        assert!(message.contains("Connection refused"), "the last connection error is quoted: {message}");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "the queue timeout was not honoured");
}

#[test]
fn a_cancelled_queued_request_is_dropped_with_its_cancellation() {
    let (_held, port) = refusing_port();
    let mut relay = Relay::start(&format!("ws://127.0.0.1:{port}/"), &["--queue-timeout", "0.5"]);
    relay.send(&json!({ "jsonrpc": "2.0", "id": 7, "method": "ping" }));
    relay.send(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 7 } }));
    // Not answered with a timeout error: the client gave up on it.
    relay.assert_silent(Duration::from_millis(1200));
}

#[test]
fn a_line_that_is_not_json_gets_a_parse_error_and_the_session_goes_on() {
    let server = ServerProcess::start("hello", &[]);
    let mut relay = Relay::start(&server.url(), &[]);
    relay.initialize();
    relay.send_line("this is not json");
    let error = relay.recv(Duration::from_secs(5));
    assert_eq!(error["error"]["code"], -32700, "{error}");
    assert_eq!(error["id"], Value::Null, "{error}");
    relay.send(&echo(1, "still here"));
    assert_eq!(relay.recv(Duration::from_secs(5))["result"]["structuredContent"]["text"], "still here");
}

#[test]
fn the_relay_exits_cleanly_when_stdin_closes() {
    let server = ServerProcess::start("hello", &[]);
    let mut relay = Relay::start(&server.url(), &[]);
    relay.initialize();
    drop(relay.stdin.take());
    let started = Instant::now();
    loop {
        if let Some(status) = relay.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the relay did not exit after stdin closed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_command_lines_fail_with_a_message_and_nothing_on_stdout() {
    let out = Command::new(binary("mcp-relay")).arg("http://127.0.0.1:1/").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ws://"), "{}", String::from_utf8_lossy(&out.stderr));

    let out =
        Command::new(binary("mcp-relay")).args(["ws://127.0.0.1:1/", "--queue-timeout", "soon"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("seconds"), "{}", String::from_utf8_lossy(&out.stderr));

    let out = Command::new(binary("mcp-relay")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--queue-timeout") && help.contains("--reconnect-max-delay"), "{help}");
}

/// The Python Dewey-like server: declines the `mcp` subprotocol, answers
/// protocol 2024-11-05 and pretty-prints tool output into a text block.
#[test]
fn the_relay_speaks_to_legacy_servers_without_the_subprotocol() {
    let script = scripts_dir().join("python/legacy_dewey_server.py");
    let mut server = KillOnDrop(
        Command::new(peers().python_mcp2)
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the legacy server starts"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!("{}/", line.trim().trim_start_matches("listening on "));

    let mut relay = Relay::start(&url, &[]);
    let init = relay.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05", "{init}");
    relay.send(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "dewey_add", "arguments": { "a": 1, "b": 2 } }
    }));
    let answer = relay.recv(Duration::from_secs(10));
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), json!({ "sum": 3 }), "{answer}");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_relay_sends_the_backends_bearer_token() {
    let server = ServerProcess::start("hello", &[("MCP_AUTH_TOKEN", "relay-s3cret")]);
    let mut relay = Relay::start(&server.url(), &["--auth-token", "relay-s3cret"]);
    let answer = relay.initialize();
    assert_eq!(answer["result"]["serverInfo"]["name"], "hello", "{answer}");
    relay.send(
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"ok"}}}),
    );
    let echoed = relay.recv(Duration::from_secs(10));
    assert_eq!(echoed["result"]["structuredContent"]["text"], "ok", "{echoed}");

    // Without the token the backend refuses every upgrade: the request waits in
    // the relay's queue and fails naming the refusal.
    let mut refused = Relay::start(&server.url(), &["--queue-timeout", "1"]);
    refused.send(&json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    }));
    let error = refused.recv(Duration::from_secs(20));
    assert_eq!(error["id"], 0, "{error}");
    assert!(error["error"]["message"].as_str().unwrap_or_default().contains("401"), "{error}");
}
