//! The official MCP clients connected to `hello` when it shuts down
//! (SIGTERM): the call in flight is finished by the drain, the connection is
//! closed with 1012 (Service Restart, the close the ICCM relay survives, see
//! iccm_relay.rs), and each client ends its session on its own, promptly,
//! saying why. The peer scripts report; the assertions are here.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcp_tests::{ServerProcess, peers, scripts_dir};
use serde_json::Value;

/// From SIGTERM to the client's report: the drain (a 300 ms call) plus the
/// close. Far below the server's 10 s grace, so a client that waits for the
/// grace to run out, or hangs, fails.
const ENDS_WITHIN: Duration = Duration::from_secs(5);

/// Runs the peer against a fresh `hello`, sends SIGTERM at its `CONTROL
/// terminate` line, and returns its report.
fn run_peer(program: &Path, script: &Path, cwd: &Path) -> Value {
    let mut server = ServerProcess::start("hello", &[]);
    let mut child = Command::new(program)
        .arg(script)
        .arg(server.url())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let fail = |child: &mut std::process::Child, why: String| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{}: {why}", script.display());
    };
    let mut terminated_at = None;
    let report = loop {
        let wait = match terminated_at {
            Some(at) => ENDS_WITHIN.saturating_sub(Instant::elapsed(&at)),
            None => Duration::from_secs(60),
        };
        let Ok(line) = rx.recv_timeout(wait) else {
            fail(&mut child, format!("no report within {ENDS_WITHIN:?} of SIGTERM (or the peer died)"))
        };
        if line == "CONTROL terminate" {
            terminated_at = Some(Instant::now());
            let status = server.terminate();
            assert!(status.success(), "hello exits 0 after SIGTERM, got {status}");
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(report) if report.is_object() => break report,
            _ => eprintln!("peer: {line}"),
        }
    };
    assert!(terminated_at.is_some(), "the peer reported before asking for the shutdown: {report}");
    let status = child.wait().expect("the peer exits");
    assert!(status.success(), "{} exited with {status}", script.display());
    report
}

#[test]
fn typescript_sdk_finishes_the_drained_call_and_closes_on_shutdown() {
    peers();
    let dir = scripts_dir().join("node");
    let r = run_peer(Path::new("node"), &dir.join("shutdown_ws_client.mjs"), &dir);
    assert_eq!(r["slow"], serde_json::json!(["done after 3 steps"]), "the drain finished the call: {r}");
    assert_eq!(r["closed"], true, "the transport reported the close: {r}");
    let ping = r["ping_after_shutdown"].as_str().unwrap_or_default();
    assert!(ping.contains("Not connected"), "a request after the close fails at once: {r}");
}

#[test]
fn python_sdk_ends_the_session_naming_the_restart_on_shutdown() {
    let peers = peers();
    let dir = scripts_dir().join("python");
    let r = run_peer(&peers.python_mcp1, &dir.join("shutdown_ws_client.py"), &dir);
    // mcp 1.30's transport raises the close out of `websocket_client`. (It
    // also drops a response read just before a close frame, whatever the
    // code: the drained call's answer reaches the socket but not the caller,
    // so the report's `slow` is not asserted.)
    let ended: Vec<&str> = r["ended_with"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert!(
        ended.iter().any(|e| e.contains("1012") && e.contains("service restart")),
        "the session ends with the server's 1012 close: {r}"
    );
}
