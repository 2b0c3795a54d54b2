//! The ICCM relay in front of `hello`: seed 004's `StableRelay` ("will NOT
//! change"), its code unchanged, on websockets 14.x as its users ran it. It
//! stands in front of every ICCM backend, so our server's restarts must not
//! wedge it: after `hello` stops (SIGTERM, a clean shutdown; SIGKILL, a
//! crash) and starts again, a new session through the relay must work.
//!
//! The SIGTERM case is the one that bit: a close with 1000 or 1001 ends the
//! relay's `async for` over the backend normally, and its `while True` loop
//! re-enters the closed socket without ever yielding, at 100% CPU, serving
//! no one. Our server closes with 1012 (Service Restart), which the relay
//! meets as it meets a crash.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mcp_tests::{ServerProcess, peers, scripts_dir};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The relay retries its backend every 5 s; a session may wait for one retry.
const SESSION_DEADLINE: Duration = Duration::from_secs(20);

/// The relay as a child process on a port the OS picked. Killed when dropped.
struct StableRelay {
    child: Child,
    url: String,
    log: Option<ChildStderr>,
}

impl StableRelay {
    fn start(backend: &str) -> StableRelay {
        let dir = scripts_dir().join("python/iccm");
        let mut child = Command::new(peers().python_relay)
            .arg(dir.join("run_stable_relay.py"))
            .arg(backend)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ICCM relay starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(format!("{}/", url.trim()));
                }
            }
        });
        let log = child.stderr.take();
        let mut relay = StableRelay { child, url: String::new(), log };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => relay.url = url,
            Err(_) => panic!("the ICCM relay did not start:\n{}", relay.stop_and_read_log()),
        }
        relay
    }

    /// Stops the relay and returns what it logged, for a failure message.
    fn stop_and_read_log(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut stderr) = self.log.take() {
            let _ = stderr.read_to_string(&mut log);
        }
        log
    }
}

impl Drop for StableRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket through the relay and runs a session on it: initialize,
/// initialized, one `echo` call. Returns the open socket.
async fn session(url: &str, text: &str) -> Result<Ws, String> {
    let run = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| format!("connect: {e}"))?;
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "iccm", "version": "1" } }
        });
        let init = exchange(&mut ws, initialize).await?;
        if init["result"]["serverInfo"]["name"] != "hello" {
            return Err(format!("initialize answered {init}"));
        }
        send(&mut ws, json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await?;
        let call = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "echo", "arguments": { "text": text } }
        });
        let answer = exchange(&mut ws, call).await?;
        if answer["result"]["structuredContent"] != json!({ "text": text }) {
            return Err(format!("echo answered {answer}"));
        }
        Ok(ws)
    };
    tokio::time::timeout(SESSION_DEADLINE, run)
        .await
        .unwrap_or_else(|_| Err(format!("no session through the relay within {SESSION_DEADLINE:?}")))
}

async fn send(ws: &mut Ws, message: Value) -> Result<(), String> {
    ws.send(Message::text(message.to_string())).await.map_err(|e| format!("send: {e}"))
}

/// Sends a request and reads until its response (notifications skipped).
async fn exchange(ws: &mut Ws, request: Value) -> Result<Value, String> {
    send(ws, request.clone()).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
                if value.get("id") == request.get("id") {
                    return Ok(value);
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("the relay closed the connection".to_owned()),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGTERM: a clean shutdown, every connection closed with a close frame.
    Terminate,
    /// SIGKILL: a crash, connections reset.
    Kill,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iccm_relay_serves_new_sessions_after_hello_restarts_either_way() {
    let mut hello = ServerProcess::start("hello", &[]);
    let mut relay = StableRelay::start(&format!("ws://{}", hello.addr()));
    let first = session(&relay.url, "first").await;
    if let Err(e) = first {
        panic!("a session through the relay failed before any restart: {e}\n{}", relay.stop_and_read_log());
    }

    for (round, stop) in [Stop::Terminate, Stop::Kill, Stop::Terminate].into_iter().enumerate() {
        // A session open through the relay while the backend stops: the
        // relay is reading from the backend when the close (or reset) comes.
        let open = session(&relay.url, &format!("open {round}")).await;
        let open = open.unwrap_or_else(|e| panic!("round {round}: {e}\n{}", relay.stop_and_read_log()));
        match stop {
            Stop::Terminate => {
                let status = tokio::task::block_in_place(|| hello.terminate());
                assert!(status.success(), "hello exits 0 after SIGTERM, got {status}");
            }
            Stop::Kill => tokio::task::block_in_place(|| hello.kill()),
        }
        tokio::task::block_in_place(|| hello.restart());
        let text = format!("after {stop:?} {round}");
        match session(&relay.url, &text).await {
            Ok(mut ws) => {
                let _ = ws.close(None).await;
            }
            Err(e) => panic!(
                "round {round}: no new session through the relay after hello restarted ({stop:?}): {e}\n\
                 relay log:\n{}",
                relay.stop_and_read_log()
            ),
        }
        drop(open);
    }
}
