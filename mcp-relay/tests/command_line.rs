//! The relay refuses a bad command line before touching stdin or the
//! network: exit status 2 and a message that says what to fix. A desktop
//! client shows that message when its MCP configuration is wrong.

use std::process::{Command, Output, Stdio};

fn relay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-relay"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the mcp-relay binary runs")
}

fn refused(args: &[&str], says: &str) {
    let out = relay(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?} should say {says:?}, said: {stderr}");
    assert!(out.stdout.is_empty(), "nothing reaches the client's stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_url_that_is_not_websocket_is_refused() {
    refused(&["http://127.0.0.1:9020/"], "ws://");
}

#[test]
fn a_missing_url_is_refused() {
    refused(&[], "<URL>");
}

#[test]
fn delays_that_cannot_work_are_refused() {
    refused(&["ws://127.0.0.1:9/", "--reconnect-initial-delay", "0"], "--reconnect-initial-delay must be above 0");
    refused(
        &["ws://127.0.0.1:9/", "--reconnect-initial-delay", "9", "--reconnect-max-delay", "1"],
        "at most --reconnect-max-delay",
    );
    refused(&["ws://127.0.0.1:9/", "--connect-timeout", "0"], "--connect-timeout must be above 0");
    refused(&["ws://127.0.0.1:9/", "--queue-timeout", "soon"], "is not a number of seconds");
}

#[test]
fn help_names_the_backend_url() {
    let out = relay(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("The backend's WebSocket URL"));
}
