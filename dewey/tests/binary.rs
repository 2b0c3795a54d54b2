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
