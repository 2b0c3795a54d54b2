//! The guide's "Moving the data" section, run against a real PostgreSQL:
//! what the ports' migrations do to a database holding the Python Dewey's
//! tables (they refuse it and change nothing), and the documented import
//! (set the Python tables aside, let the Rust Dewey create its own, copy the
//! rows with docs/sql/dewey-import.sql), read back through the tools of the
//! real `dewey` binary. Horace is started on the same database beside both.

mod guide;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use guide::assert_quoted;
use mcp_runtime::client::Client;
use mcp_tests::{ServerProcess, TestPostgres, binary};
use serde_json::{Value, json};

const SET_ASIDE: &str = include_str!("../sql/dewey-set-aside.sql");
const IMPORT: &str = include_str!("../sql/dewey-import.sql");

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("PostgreSQL accepts");
    tokio::spawn(connection);
    client
}

/// Runs a script on a connection of its own (a failed script leaves its
/// connection inside an aborted transaction).
async fn run_script(url: &str, sql: &str) -> Result<(), String> {
    connect(url).await.batch_execute(sql).await.map_err(|e| match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    })
}

async fn count(db: &tokio_postgres::Client, table: &str) -> i64 {
    db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0)
}

async fn table_exists(db: &tokio_postgres::Client, name: &str) -> bool {
    db.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name]).await.unwrap().get(0)
}

const C1: &str = "11111111-1111-4111-8111-111111111111";
const C2: &str = "22222222-2222-4222-8222-222222222222";

/// The Python Dewey's tables: conversations and messages with the columns
/// the seed's SQL names (`INSERT INTO conversations (session_id, metadata)
/// ... RETURNING id, session_id, created_at`, `UPDATE conversations SET
/// updated_at`, `INSERT INTO messages (conversation_id, turn_number, role,
/// content, metadata) ... RETURNING id, turn_number, created_at`); startup
/// contexts and logs with the columns their tools' parameters imply. Rows as
/// the Python services could leave them: a turn number used twice, a role
/// the Python bulk store wrote for entries without one (`NA`), two active
/// contexts, levels outside the five.
async fn create_python_dewey(db: &tokio_postgres::Client, message_id: &str) {
    db.batch_execute(&format!(
        "CREATE TABLE conversations (
             id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
             session_id TEXT,
             metadata JSONB,
             created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
             updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW());
         CREATE TABLE messages (
             id {message_id} PRIMARY KEY,
             conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
             turn_number INTEGER NOT NULL,
             role TEXT NOT NULL,
             content TEXT NOT NULL,
             metadata JSONB,
             created_at TIMESTAMPTZ NOT NULL DEFAULT NOW());
         CREATE INDEX messages_conversation_idx ON messages (conversation_id, turn_number);
         CREATE TABLE startup_contexts (
             name TEXT PRIMARY KEY,
             content TEXT NOT NULL,
             is_active BOOLEAN NOT NULL DEFAULT FALSE,
             created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
             updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW());
         CREATE TABLE logs (
             id BIGSERIAL PRIMARY KEY,
             trace_id TEXT,
             component TEXT NOT NULL,
             level TEXT NOT NULL,
             message TEXT NOT NULL,
             data JSONB,
             created_at TIMESTAMP NOT NULL DEFAULT NOW());

         INSERT INTO conversations (id, session_id, metadata, created_at, updated_at) VALUES
             ('{C1}', 'sess-a', '{{\"project\": \"iccm\"}}', '2025-03-01 10:00:00+00', '2025-03-01 10:05:00+00'),
             ('{C2}', NULL, NULL, '2025-03-02 08:00:00+00', '2025-03-02 08:00:00+00');
         INSERT INTO messages (conversation_id, turn_number, role, content, metadata, created_at) VALUES
             ('{C1}', 1, 'user', 'How do schema migrations run at start-up?', NULL, '2025-03-01 10:00:01+00'),
             ('{C1}', 2, 'assistant', 'Each replica takes an advisory lock first.', '{{\"model\": \"m1\"}}',
              '2025-03-01 10:00:02+00'),
             ('{C1}', 2, 'NA', 'snapshot', '{{\"type\": \"snapshot\"}}', '2025-03-01 10:00:03+00'),
             ('{C1}', 4, 'User', 'Thanks.', NULL, '2025-03-01 10:00:04+00');
         INSERT INTO startup_contexts (name, content, is_active, created_at, updated_at) VALUES
             ('default', 'You are Dewey.', TRUE, '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00'),
             ('review', 'Review mode.', TRUE, '2025-02-01 00:00:00+00', '2025-02-01 00:00:00+00'),
             ('draft', 'Draft.', FALSE, '2025-02-02 00:00:00+00', '2025-02-02 00:00:00+00');
         INSERT INTO logs (trace_id, component, level, message, data, created_at) VALUES
             ('t-1', 'godot', 'INFO', 'worker started', '{{\"pid\": 7}}', '2025-03-01 09:00:00'),
             ('t-1', 'dewey', 'warning', 'slow query', NULL, '2025-03-01 09:00:01'),
             (NULL, 'horace', 'CRITICAL', 'disk full', '{{\"free\": 0}}', '2025-03-01 09:00:02'),
             (NULL, 'fiedler', 'NOTICE', 'model list refreshed', '{{\"models\": 3}}', '2025-03-01 09:00:03');",
    ))
    .await
    .expect("the Python schema is created");
}

/// A binary that must fail to start: its exit code and stderr (within a
/// minute; a binary that serves instead is killed and fails the test).
fn failed_start(name: &str, envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(binary(name));
    command
        .env("MCP_HOST", "127.0.0.1")
        .env("MCP_PORT", "0")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    let child = command.spawn().expect("the binary starts");
    let pid = child.id();
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match outcome.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => {
            let output = output.expect("the binary's output is read");
            (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{name} was expected to refuse the database and exit, but it kept running");
        }
    }
}

#[tokio::test]
async fn dewey_refuses_the_python_schema_and_changes_nothing() {
    let url = TestPostgres::shared().fresh_database("dewey_refuses");
    let db = connect(&url).await;
    create_python_dewey(&db, "BIGSERIAL").await;

    let (code, stderr) = failed_start("dewey", &[("DATABASE_URL", &url)]);
    assert_eq!(code, Some(1), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert_quoted(error);

    // The migration ran in one transaction: not even its bookkeeping table is left.
    assert!(!table_exists(&db, "schema_migrations").await);
    assert_eq!(count(&db, "conversations").await, 2);
    assert_eq!(count(&db, "messages").await, 4);
    assert_eq!(count(&db, "startup_contexts").await, 3);
    assert_eq!(count(&db, "logs").await, 4);
}

#[tokio::test]
async fn horace_refuses_a_table_named_like_its_own_and_changes_nothing() {
    let url = TestPostgres::shared().fresh_database("horace_refuses");
    let db = connect(&url).await;
    db.batch_execute(
        "CREATE TABLE files (id SERIAL PRIMARY KEY, path TEXT); INSERT INTO files (path) VALUES ('a.txt');",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    let (code, stderr) = failed_start(
        "horace",
        &[
            ("DATABASE_URL", &url),
            ("HORACE_STORAGE_ROOT", root.to_str().unwrap()),
            ("HORACE_DATA_DIR", dir.path().to_str().unwrap()),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert_quoted(error);
    assert!(!table_exists(&db, "horace_schema_migrations").await);
    assert_eq!(count(&db, "files").await, 1);
}

#[tokio::test]
async fn python_dewey_with_serial_message_ids_imports_and_reads_through_the_tools() {
    import_and_read("serial_ids", "BIGSERIAL").await;
}

#[tokio::test]
async fn python_dewey_with_uuid_message_ids_imports_and_reads_through_the_tools() {
    import_and_read("uuid_ids", "UUID DEFAULT gen_random_uuid()").await;
}

/// The guide's three steps, then every kind of row read back through
/// Dewey's tools, Dewey writing after it, a second import adding nothing,
/// and Horace sharing the database.
async fn import_and_read(label: &str, message_id: &str) {
    let url = TestPostgres::shared().fresh_database(label);
    let db = connect(&url).await;
    create_python_dewey(&db, message_id).await;
    let python_message_ids: Vec<String> = db
        .query("SELECT id::text FROM messages ORDER BY created_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    // Before step 1 the import refuses, and so it does before step 2.
    let early = run_script(&url, IMPORT).await.unwrap_err();
    assert!(early.contains("run docs/sql/dewey-set-aside.sql first"), "{early}");
    run_script(&url, SET_ASIDE).await.expect("step 1");
    let early = run_script(&url, IMPORT).await.unwrap_err();
    assert!(early.contains("start the Rust Dewey once on this database"), "{early}");

    // Step 2: the Rust Dewey creates its tables in `public`.
    let mut dewey = ServerProcess::start("dewey", &[("DATABASE_URL", &url)]);
    dewey.terminate();
    // Step 3, twice: the second run adds nothing.
    run_script(&url, IMPORT).await.expect("step 3");
    let counts = [
        count(&db, "public.conversations").await,
        count(&db, "public.messages").await,
        count(&db, "public.startup_contexts").await,
        count(&db, "public.logs").await,
    ];
    assert_eq!(counts, [2, 4, 3, 4]);
    dewey.restart();
    let client = Client::connect(&dewey.url()).await.unwrap();

    // Conversations and messages: ids, turns (the duplicate turn 2 moved
    // after the last one), roles (`User` read as `user`, `NA` as `system`
    // with the original kept), metadata, timestamps.
    let got: Value = client.call("dewey_get_conversation", json!({ "conversation_id": C1 })).await.unwrap();
    let conversation = &got["conversation"];
    assert_eq!(conversation["session_id"], "sess-a");
    assert_eq!(conversation["metadata"], json!({ "project": "iccm" }));
    assert!(conversation["created_at"].as_str().unwrap().starts_with("2025-03-01T10:00:00"), "{conversation}");
    let messages = got["messages"].as_array().unwrap();
    let turns: Vec<(i64, &str, &str)> = messages
        .iter()
        .map(|m| (m["turn_number"].as_i64().unwrap(), m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        turns,
        [
            (1, "user", "How do schema migrations run at start-up?"),
            (2, "assistant", "Each replica takes an advisory lock first."),
            (4, "user", "Thanks."),
            (5, "system", "snapshot"),
        ]
    );
    assert_eq!(messages[1]["metadata"], json!({ "model": "m1" }));
    assert_eq!(messages[3]["metadata"], json!({ "type": "snapshot", "python_role": "NA" }));
    let ids: Vec<&str> = messages.iter().map(|m| m["message_id"].as_str().unwrap()).collect();
    if message_id.starts_with("UUID") {
        // Turn order is creation order here except the renumbered one (created third).
        assert_eq!(
            ids,
            [&*python_message_ids[0], &*python_message_ids[1], &*python_message_ids[3], &*python_message_ids[2]]
        );
    } else {
        let derived: String =
            db.query_one("SELECT md5('python-dewey messages ' || '1')::uuid::text", &[]).await.unwrap().get(0);
        assert_eq!(ids[0], derived, "serial id 1 maps to the documented UUID");
    }

    // Full-text search finds imported content (the port's generated column).
    let found: Value = client.call("dewey_search", json!({ "query": "migration" })).await.unwrap();
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["results"][0]["conversation_id"], C1);

    // Dewey carries on after the imported turns.
    let stored: Value = client
        .call("dewey_store_message", json!({ "conversation_id": C1, "role": "user", "content": "And now?" }))
        .await
        .unwrap();
    assert_eq!(stored["turn_number"], 6);
    let listed: Value = client.call("dewey_list_conversations", json!({})).await.unwrap();
    assert_eq!(listed["total"], 2);

    // One active startup context: the most recently updated of the two.
    let active: Value = client.call("dewey_get_startup_context", json!({})).await.unwrap();
    assert_eq!(active["context"]["name"], "review", "{active}");
    let contexts: Value = client.call("dewey_list_startup_contexts", json!({})).await.unwrap();
    assert_eq!(contexts["contexts"].as_array().unwrap().len(), 3);

    // Logs: levels normalised (WARNING as WARN, CRITICAL as ERROR, NOTICE
    // as INFO with the original kept), naive timestamps read as UTC.
    let warn: Value = client.call("dewey_query_logs", json!({ "level": "WARN" })).await.unwrap();
    let warn: Vec<(&str, &str)> = warn["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["component"].as_str().unwrap(), l["level"].as_str().unwrap()))
        .collect();
    assert_eq!(warn, [("horace", "ERROR"), ("dewey", "WARN")]);
    let notice: Value = client.call("dewey_query_logs", json!({ "component": "fiedler" })).await.unwrap();
    let notice = &notice["logs"][0];
    assert_eq!(notice["level"], "INFO");
    assert_eq!(notice["data"], json!({ "models": 3, "python_level": "NOTICE" }));
    assert!(notice["created_at"].as_str().unwrap().starts_with("2025-03-01T09:00:03"), "{notice}");
    let traced: Value = client.call("dewey_query_logs", json!({ "trace_id": "t-1" })).await.unwrap();
    assert_eq!(traced["count"], 2);

    // A second import after Dewey wrote: nothing imported twice, nothing lost.
    run_script(&url, IMPORT).await.expect("step 3 again");
    assert_eq!(count(&db, "public.messages").await, 5);
    assert_eq!(count(&db, "public.logs").await, 4);
    let active: Value = client.call("dewey_get_startup_context", json!({})).await.unwrap();
    assert_eq!(active["context"]["name"], "review");
    // The Python tables were only read.
    assert_eq!(count(&db, "python_dewey.messages").await, 4);

    // Horace's tables have names of their own: it migrates and serves on
    // the same database, beside Dewey's and the set-aside ones.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("notes.txt"), "imported").unwrap();
    let horace = ServerProcess::start(
        "horace",
        &[
            ("DATABASE_URL", &url),
            ("HORACE_STORAGE_ROOT", root.to_str().unwrap()),
            ("HORACE_DATA_DIR", dir.path().to_str().unwrap()),
        ],
    );
    let horace_client = Client::connect(&horace.url()).await.unwrap();
    let registered: Value = horace_client
        .call("horace_register_file", json!({ "file_path": "notes.txt", "metadata": { "owner": "ops" } }))
        .await
        .unwrap();
    assert_eq!(registered["status"], "registered");
    assert_eq!(count(&db, "public.messages").await, 5);
}
