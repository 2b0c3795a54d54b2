//! `mcp-relay` in front of `hello`, launched over stdio by the official
//! clients (Python SDK 2.x `stdio_client`, TypeScript SDK
//! `StdioClientTransport`), with the backend killed and restarted mid-session.
//! The peer scripts report what they saw; the assertions are here, once.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcp_tests::{HeldPort, ServerProcess, binary, peers, scripts_dir};
use serde_json::{Value, json};

/// A whole session, including two backend restarts' worth of waiting, fits easily.
const SESSION_TIMEOUT: Duration = Duration::from_secs(90);

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the peer reported, and how long after its `CONTROL restart` line
/// the backend was still down (the least its held call can have waited).
struct Outcome {
    report: Value,
    down_after_restart_line: Duration,
}

/// Runs a peer script, acting on its `CONTROL` lines, and returns its report.
fn run_peer(program: &Path, script: &Path, cwd: &Path) -> Outcome {
    let mut server = ServerProcess::start("hello", &[("MCP_TOOLS_PAGE_SIZE", "1")]);
    let relay = binary("mcp-relay");
    let mut child = KillOnDrop(
        Command::new(program)
            .arg(script)
            .arg(&relay)
            .arg(server.url())
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display())),
    );
    let mut to_peer = child.0.stdin.take().unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut output = Vec::new();
    // While the backend is down the test holds its port, to see the relay retry.
    let mut held: Option<HeldPort> = None;
    let mut down_after_restart_line = Duration::ZERO;
    let report = loop {
        let line = rx.recv_timeout(SESSION_TIMEOUT).unwrap_or_else(|_| {
            panic!("{} stopped talking (hung or exited); it printed:\n{}", script.display(), output.join("\n"))
        });
        match line.as_str() {
            "CONTROL kill" => {
                server.kill();
                held = Some(HeldPort::take(server.port()));
                writeln!(to_peer, "go").unwrap();
            }
            "CONTROL restart" => {
                // The peer's next call is on its way. The backend comes back
                // only after the relay has retried it since: the call waits.
                let line_seen = Instant::now();
                let port = held.take().expect("CONTROL kill came first");
                port.turn_away_pending();
                port.wait_for_attempt(Duration::from_secs(10));
                port.release();
                down_after_restart_line = line_seen.elapsed();
                server.restart();
            }
            _ => match serde_json::from_str::<Value>(&line) {
                Ok(report) if report.is_object() => break report,
                _ => output.push(line),
            },
        }
    };
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{} exited with {status}; it printed:\n{}", script.display(), output.join("\n"));
    Outcome { report, down_after_restart_line }
}

fn assert_session(client: &str, outcome: &Outcome) {
    let r = &outcome.report;
    let ctx = |what: &str| format!("{client}: {what}; report: {r:#}");
    assert_eq!(r["serverName"], "hello", "{}", ctx("serverInfo through the relay"));
    assert_eq!(r["tools"], json!(["add", "echo", "slow", "words"]), "{}", ctx("every page of tools"));
    assert_eq!(r["echo"]["structured"], json!({"text": "before"}), "{}", ctx("echo"));
    assert_eq!(r["add"]["structured"], json!({"sum": 5}), "{}", ctx("add"));

    let lost = &r["in_flight_at_kill"];
    assert_eq!(lost["error_code"], -32000, "{}", ctx("the in-flight call is answered with an error"));
    assert!(lost["message"].as_str().unwrap_or_default().contains("lost"), "{}", ctx("the error says why"));
    assert!(lost["seconds_after_kill"].as_f64().unwrap_or(99.0) < 3.0, "{}", ctx("and promptly"));

    let after = &r["add_after_restart"];
    assert_eq!(after["isError"], false, "{}", ctx("the call made while the backend was down succeeds"));
    assert_eq!(after["structured"], json!({"sum": 42}), "{}", ctx("with the right answer"));
    // The peer starts its clock as it prints the line; allow for the two
    // processes seeing that moment a little apart.
    let waited = r["seconds_waiting_for_backend"].as_f64().unwrap_or(0.0);
    let down = outcome.down_after_restart_line.as_secs_f64();
    assert!(
        waited + 0.05 >= down,
        "{} (backend down {down:.3} s after the call)",
        ctx("the call waited for the restart")
    );
    assert_eq!(r["echo_after_restart"]["structured"], json!({"text": "after"}), "{}", ctx("session goes on"));
    assert_eq!(r["ping_after_restart"], true, "{}", ctx("ping after restart"));
}

#[test]
fn python_sdk_stdio_client_through_the_relay_survives_a_backend_restart() {
    let peers = peers();
    let dir = scripts_dir().join("python");
    let outcome = run_peer(&peers.python_mcp2, &dir.join("relay_stdio_client.py"), &dir);
    assert_eq!(outcome.report["protocolVersion"], "2025-11-25", "{:#}", outcome.report);
    assert_session("python mcp 2.x", &outcome);
}

#[test]
fn typescript_sdk_stdio_client_through_the_relay_survives_a_backend_restart() {
    let _ = peers(); // panics with install instructions if absent
    let dir = scripts_dir().join("node");
    let outcome = run_peer(Path::new("node"), &dir.join("relay_stdio_client.mjs"), &dir);
    assert_session("typescript sdk 1.32.2", &outcome);
}
