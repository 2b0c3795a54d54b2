//! The `notes` and `hello` binaries as their users meet them: the command
//! line (`--help`, `--list-tools`, a flag of the service's own) and, over a
//! real socket, what issue 11's new user ran into: a list result with
//! structured output, a refused nested unknown field, one error naming
//! every missing argument.

use std::process::Stdio;
use std::time::Duration;

use mcp_runtime::client::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A binary serving on a free port; killed when dropped.
struct Running {
    _child: Child,
    url: String,
}

async fn start(binary: &str, args: &[&str]) -> Running {
    let mut child = Command::new(binary)
        .args(args)
        .env("MCP_HOST", "127.0.0.1")
        .env("MCP_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("it prints its address")
        .unwrap()
        .expect("a line before exiting");
    let addr = line.strip_prefix("listening on ws://").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Running { _child: child, url: format!("ws://{addr}/") }
}

async fn run(binary: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary).args(args).env_remove("MCP_PORT").output().await.expect("the binary runs")
}

#[tokio::test]
async fn help_shows_the_defaults_and_the_services_own_flag() {
    let out = run(env!("CARGO_BIN_EXE_notes"), &["--help"]).await;
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in ["--list-tools", "--port <PORT>", "[env: MCP_PORT=]", "--max-notes <MAX_NOTES>", "[default: 1000]"]
    {
        assert!(help.contains(expected), "`{expected}` missing from:\n{help}");
    }
    assert!(!help.contains('\u{1b}'), "no colour codes when stdout is not a terminal:\n{help}");

    let out = run(env!("CARGO_BIN_EXE_hello"), &["--help"]).await;
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("[default: 9000]") && help.contains("MCP_MAX_IN_FLIGHT"), "{help}");

    let out = Command::new(env!("CARGO_BIN_EXE_hello")).env("MCP_PORT", "ninety").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad MCP_PORT is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("set by --port or MCP_PORT"), "{out:?}");

    let out = run(env!("CARGO_BIN_EXE_hello"), &["--lsit-tools"]).await;
    assert_eq!(out.status.code(), Some(2), "a bad flag is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--list-tools"), "and clap suggests the real one");
}

#[tokio::test]
async fn logs_redirected_to_a_file_carry_no_colour_codes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hello"))
        .env("MCP_HOST", "127.0.0.1")
        .env("MCP_PORT", "0")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("hello logs that it listens");
            if line.contains("MCP server listening") {
                return line;
            }
        }
    })
    .await
    .expect("the log line within 30 s");
    assert!(!line.contains('\u{1b}'), "{line:?}");
}

#[tokio::test]
async fn list_tools_prints_the_catalog_after_the_start_up_checks() {
    let out = run(env!("CARGO_BIN_EXE_notes"), &["--list-tools"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let catalog = String::from_utf8(out.stdout).unwrap();
    assert!(catalog.starts_with("# notes "), "{catalog}");
    assert!(catalog.contains("5 tools."), "{catalog}");
    assert!(
        catalog.contains(
            "**Output** (`structuredContent`): an array of objects, each with `id` (integer (uint64)), `title` \
             (string), `score` (number (double)); before protocol 2026-07-28 wrapped as `{\"result\": ...}`."
        ),
        "{catalog}"
    );
}

#[tokio::test]
async fn the_notes_service_does_what_its_user_expected() {
    let notes = start(env!("CARGO_BIN_EXE_notes"), &["--max-notes", "3"]).await;
    let client = Client::connect(&notes.url).await.unwrap();

    let tools = client.list_tools().await.unwrap();
    let search = tools.iter().find(|t| t.name == "search").unwrap();
    let schema = search.output_schema.as_ref().expect("a list result publishes an outputSchema");
    assert_eq!(schema["x-fastmcp-wrap-result"], true, "{schema}");

    for (title, body) in [("rust", "ownership and borrowing"), ("tea", "green, then black")] {
        let added: Value = client.call("add", json!({"title": title, "body": body, "tags": ["t"]})).await.unwrap();
        assert!(added["id"].as_u64().is_some(), "{added}");
    }
    let third = client.call_tool("add", json!({"title": "x", "body": "y"})).await.unwrap();
    assert_eq!(third.structured_content, Some(json!({"id": 3})), "{third:?}");
    let refused = client.call::<Value>("add", json!({"title": "x", "body": "y"})).await.unwrap_err();
    assert!(refused.to_string().contains("the notebook is full (3 notes)"), "{refused}");

    // A list result: structured, and read back typed.
    let raw = client.call_tool("search", json!({"query": "borrowing rust"})).await.unwrap();
    assert_eq!(raw.structured_content.as_ref().unwrap()["result"][0]["title"], "rust", "{raw:?}");
    let hits: Vec<Value> = client.call("search", json!({"query": "borrowing rust"})).await.unwrap();
    assert_eq!(hits, [json!({"id": 1, "title": "rust", "score": 1.0})]);

    // Nested arguments are as strict as the top level.
    let listed: Vec<Value> =
        client.call("list", json!({"filter": {"tags": ["t"], "title_prefix": "t"}})).await.unwrap();
    assert_eq!(listed.len(), 1);
    let nested = client.call::<Value>("list", json!({"filter": {"tags": [], "colour": "red"}})).await.unwrap_err();
    assert!(nested.is_tool_error(), "{nested}");
    assert!(
        nested.to_string().contains("unknown field `filter.colour` (`filter` takes `tags` and `title_prefix`)"),
        "{nested}"
    );

    // Every missing argument at once.
    let empty = client.call::<Value>("add", json!({})).await.unwrap_err();
    assert!(empty.to_string().contains("missing required arguments `title` and `body`"), "{empty}");

    let gone: bool = client.call("delete", json!({"id": 2})).await.unwrap();
    let again: bool = client.call("delete", json!({"id": 2})).await.unwrap();
    assert!(gone && !again);
    let mut steps = Vec::new();
    let reindexed = client.call_tool_with_progress("reindex", json!({}), |p| steps.push(p.progress)).await.unwrap();
    assert_eq!(reindexed.structured_content, Some(json!({"result": 2})));
    assert_eq!(steps, [1.0, 2.0]);
}
