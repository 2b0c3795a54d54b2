//! The `dewey` binary itself: zero set-up on SQLite, PostgreSQL with
//! DATABASE_URL, and `--list-tools` without touching any storage.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_runtime::client::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary, started in `cwd` with only the given Dewey variables set;
/// killed when dropped.
struct DeweyProcess {
    _child: Child,
    url: String,
}

async fn start(cwd: &Path, envs: &[(&str, &str)]) -> DeweyProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dewey"));
    command
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("DEWEY_DATA_DIR")
        .env_remove("DEWEY_FILES_DIR")
        .env("MCP_HOST", "127.0.0.1")
        .env("MCP_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the dewey binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("dewey prints its address within a minute")
        .unwrap()
        .expect("dewey printed a line before exiting");
    let addr = line.strip_prefix("listening on ws://").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    DeweyProcess { url: format!("ws://{addr}/"), _child: child }
}

async fn store_and_read_back(url: &str) {
    let client = Client::connect(url).await.unwrap();
    let c: Value = client.call("dewey_begin_conversation", json!({"session_id": "bin"})).await.unwrap();
    let id = c["conversation_id"].as_str().unwrap();
    let m: Value = client
        .call("dewey_store_message", json!({"conversation_id": id, "role": "user", "content": "hi"}))
        .await
        .unwrap();
    assert_eq!(m["turn_number"], 1);
    let full: Value = client.call("dewey_get_conversation", json!({"conversation_id": id})).await.unwrap();
    assert_eq!(full["messages"][0]["content"], "hi");
}

#[tokio::test]
async fn runs_on_sqlite_with_no_setup() {
    let cwd = tempfile::tempdir().unwrap();
    let dewey = start(cwd.path(), &[]).await;
    store_and_read_back(&dewey.url).await;
    assert!(cwd.path().join("dewey-data/dewey.sqlite3").is_file(), "the default data directory is ./dewey-data");
}

#[tokio::test]
async fn uses_postgres_when_database_url_is_set() {
    let pg = tokio::task::spawn_blocking(mcp_tests::TestPostgres::start).await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let url = pg.url();
    let dewey = start(cwd.path(), &[("DATABASE_URL", &url)]).await;
    store_and_read_back(&dewey.url).await;
    assert!(!cwd.path().join("dewey-data").exists(), "no SQLite file when DATABASE_URL is set");
}

#[tokio::test]
async fn refuses_a_database_url_that_is_not_postgres() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dewey"))
        .current_dir(cwd.path())
        .env("DATABASE_URL", "mysql://localhost/dewey")
        .env("MCP_PORT", "0")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL must be a postgres://"), "{stderr}");
}

#[tokio::test]
async fn lists_tools_without_storage() {
    let cwd = tempfile::tempdir().unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_dewey")).arg("--list-tools").current_dir(cwd.path()).output().await.unwrap();
    assert!(out.status.success());
    let catalog = String::from_utf8(out.stdout).unwrap();
    assert!(catalog.contains("## `dewey_store_logs_batch`") && catalog.contains("15 tools"), "{catalog}");
    assert!(!cwd.path().join("dewey-data").exists());
}

#[tokio::test]
async fn serves_stdio_with_its_storage() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dewey"))
        .arg("--stdio")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("DEWEY_DATA_DIR")
        .env_remove("DEWEY_FILES_DIR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the dewey binary starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for message in [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"dewey_begin_conversation","arguments":{"session_id":"stdio"}}}),
    ] {
        stdin.write_all(format!("{message}\n").as_bytes()).await.unwrap();
    }
    // Only protocol on stdout: every line is a JSON-RPC response here.
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("dewey answers within a minute")
            .unwrap()
            .expect("dewey keeps stdout open");
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout carried {line:?}: {e}"));
        answers.push(answer);
    }
    assert_eq!(answers[0]["result"]["serverInfo"]["name"], "dewey", "{:?}", answers[0]);
    assert!(answers[1]["result"]["structuredContent"]["conversation_id"].is_string(), "{:?}", answers[1]);
    // End of input: it drains and exits 0.
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("dewey exits").unwrap();
    assert!(status.success(), "{status}");
    assert!(dir.path().join("dewey-data").exists(), "the SQLite store was opened");
}
