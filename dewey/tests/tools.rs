//! Every Dewey tool end to end: the real server bound on 127.0.0.1:0, the
//! runtime's WebSocket client, real storage. The scenarios are written once;
//! each runs as two tests of its own, `sqlite::NAME` (a temporary directory)
//! and `postgres::NAME` (a database of its own on the test binary's private
//! PostgreSQL server), so one failure hides no other and any one can be run
//! alone: `cargo test -p dewey --test tools postgres::logs_end_to_end`.

use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use dewey::model::{
    BulkStored, ConversationPage, ConversationRecord, ConversationWithMessages, LogBatchStored, StoredMessage,
};
use dewey::tools::conversations::{DeletedConversation, SearchResults};
use dewey::tools::logs::{ClearedLogs, LogQueryResult};
use dewey::tools::startup_contexts::{SetStartupContext, StartupContextList, StartupContextLookup};
use dewey::{MessageFiles, Storage, StorageConfig};
use mcp_runtime::ShutdownHandle;
use mcp_runtime::client::Client;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

/// A Dewey server running in this process; stops when dropped.
struct Dewey {
    url: String,
    shutdown: ShutdownHandle,
    /// DEWEY_FILES_DIR of this server.
    files: TempDir,
    storage: Storage,
}

impl Dewey {
    async fn start(storage: Storage) -> Dewey {
        let files = tempfile::tempdir().unwrap();
        let bound = dewey::server(storage.clone(), MessageFiles::within(files.path()).unwrap())
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let url = format!("ws://{}/", bound.local_addr());
        let shutdown = bound.shutdown_handle();
        tokio::spawn(bound.serve());
        Dewey { url, shutdown, files, storage }
    }

    async fn client(&self) -> Client {
        Client::connect(&self.url).await.unwrap()
    }

    fn files_dir(&self) -> &Path {
        self.files.path()
    }
}

impl Drop for Dewey {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// One `#[tokio::test]` per scenario and backend.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (storage, _dir) = super::sqlite_storage().await;
                    super::$name(super::Dewey::start(storage).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let storage = super::postgres_storage(stringify!($name)).await;
                    super::$name(super::Dewey::start(storage).await).await;
                }
            )*
        }
    };
}

scenarios!(
    catalog_matches_the_python_tools,
    conversations_end_to_end,
    concurrent_clients_get_unique_turns,
    retried_log_batches_are_stored_once,
    logs_end_to_end,
    startup_contexts_end_to_end,
    legacy_direct_calls_work_for_every_tool,
    bad_inputs_are_refused_and_change_nothing,
    nul_characters_are_invalid_input_naming_the_entry,
    messages_file_json_and_jsonl,
    messages_file_errors,
);

/// A fresh SQLite database; it lives as long as the directory.
async fn sqlite_storage() -> (Storage, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::Sqlite { path: dir.path().join("dewey.sqlite3") }).await.unwrap();
    (storage, dir)
}

/// A fresh database on the shared test PostgreSQL server.
async fn postgres_storage(label: &'static str) -> Storage {
    let url =
        tokio::task::spawn_blocking(move || mcp_tests::TestPostgres::shared().fresh_database(label)).await.unwrap();
    Storage::open(&StorageConfig::Postgres { url }).await.unwrap()
}

/// Calls a tool that must succeed and decodes its structured output.
async fn ok<T: DeserializeOwned>(client: &Client, tool: &str, args: Value) -> T {
    let result = client.call_tool(tool, &args).await.unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert!(!result.is_error, "{tool} {args} failed: {}", result.text());
    let structured = result.structured_content.unwrap_or_else(|| panic!("{tool} sent no structuredContent"));
    serde_json::from_value(structured).unwrap_or_else(|e| panic!("{tool}: unexpected output shape: {e}"))
}

/// Calls a tool that must fail with `isError` and returns the message.
async fn fails(client: &Client, tool: &str, args: Value) -> String {
    let result = client.call_tool(tool, &args).await.unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert!(result.is_error, "{tool} {args} should have failed, got {}", result.text());
    result.text()
}

fn id_of(c: &ConversationRecord) -> &str {
    &c.conversation_id
}

async fn conversation_count(client: &Client) -> i64 {
    ok::<ConversationPage>(client, "dewey_list_conversations", json!({})).await.total
}

async fn log_count(client: &Client) -> usize {
    ok::<LogQueryResult>(client, "dewey_query_logs", json!({"limit": 1000})).await.count
}

async fn catalog_matches_the_python_tools(dewey: Dewey) {
    let client = dewey.client().await;
    let tools = client.list_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dewey_begin_conversation",
            "dewey_clear_logs",
            "dewey_delete_conversation",
            "dewey_delete_startup_context",
            "dewey_get_conversation",
            "dewey_get_log_stats",
            "dewey_get_startup_context",
            "dewey_list_conversations",
            "dewey_list_startup_contexts",
            "dewey_query_logs",
            "dewey_search",
            "dewey_set_startup_context",
            "dewey_store_logs_batch",
            "dewey_store_message",
            "dewey_store_messages_bulk",
        ]
    );
    let schema = |name: &str| tools.iter().find(|t| t.name == name).unwrap().input_schema.clone();
    let required = |name: &str| {
        let mut r: Vec<String> = serde_json::from_value(schema(name)["required"].clone()).unwrap_or_default();
        r.sort();
        r
    };
    // The required lists of seed 004.
    assert_eq!(required("dewey_store_message"), ["content", "conversation_id", "role"]);
    assert_eq!(required("dewey_get_conversation"), ["conversation_id"]);
    assert_eq!(required("dewey_delete_conversation"), ["conversation_id"]);
    assert_eq!(required("dewey_search"), ["query"]);
    assert_eq!(required("dewey_set_startup_context"), ["content", "name"]);
    assert_eq!(required("dewey_delete_startup_context"), ["name"]);
    assert_eq!(required("dewey_store_logs_batch"), ["logs"]);
    for optional_only in [
        "dewey_begin_conversation",
        "dewey_store_messages_bulk",
        "dewey_list_conversations",
        "dewey_get_startup_context",
        "dewey_list_startup_contexts",
        "dewey_query_logs",
        "dewey_clear_logs",
        "dewey_get_log_stats",
    ] {
        assert!(required(optional_only).is_empty(), "{optional_only} has required parameters");
    }
    // Defaults and enums.
    assert_eq!(schema("dewey_list_conversations")["properties"]["limit"]["default"], 20);
    assert_eq!(schema("dewey_list_conversations")["properties"]["offset"]["default"], 0);
    assert_eq!(schema("dewey_search")["properties"]["limit"]["default"], 20);
    assert_eq!(schema("dewey_query_logs")["properties"]["limit"]["default"], 100);
    assert_eq!(schema("dewey_list_startup_contexts")["properties"]["include_content"]["default"], false);
    let roles = schema("dewey_store_message")["properties"]["role"]["enum"].clone();
    assert_eq!(roles, json!(["user", "assistant", "system", "tool"]));
    let levels = schema("dewey_query_logs")["properties"]["level"]["enum"].clone();
    assert_eq!(levels, json!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]));
    let sorts = schema("dewey_list_conversations")["properties"]["sort_by"]["enum"].clone();
    assert_eq!(sorts, json!(["created_at", "updated_at"]));
    assert_eq!(schema("dewey_store_messages_bulk")["properties"]["messages"]["items"]["type"], "object");
    let log_item = &schema("dewey_store_logs_batch")["properties"]["logs"]["items"];
    let mut item_required: Vec<String> = serde_json::from_value(log_item["required"].clone()).unwrap();
    item_required.sort();
    assert_eq!(item_required, ["component", "level", "message"]);
}

async fn conversations_end_to_end(dewey: Dewey) {
    let client = dewey.client().await;
    let c: ConversationRecord =
        ok(&client, "dewey_begin_conversation", json!({"session_id": "s1", "metadata": {"project": "iccm"}})).await;
    assert_eq!(c.session_id.as_deref(), Some("s1"));
    assert!(Uuid::parse_str(id_of(&c)).is_ok());
    let m1: StoredMessage = ok(
        &client,
        "dewey_store_message",
        json!({
            "conversation_id": id_of(&c), "role": "user", "content": "How do I migrate the database?"
        }),
    )
    .await;
    let m2: StoredMessage = ok(
        &client,
        "dewey_store_message",
        json!({
            "conversation_id": id_of(&c), "role": "assistant", "content": "Run the migrations at start-up.",
            "metadata": {"model": "x", "tokens": 12}
        }),
    )
    .await;
    assert_eq!((m1.turn_number, m2.turn_number), (1, 2));
    let bulk: BulkStored = ok(
        &client,
        "dewey_store_messages_bulk",
        json!({
            "conversation_id": id_of(&c),
            "messages": [{"role": "user", "content": "thanks"}, {"role": "tool", "content": {"exit": 0}}]
        }),
    )
    .await;
    assert_eq!((bulk.conversation_created, bulk.first_turn, bulk.last_turn), (false, 3, 4));

    let full: ConversationWithMessages =
        ok(&client, "dewey_get_conversation", json!({"conversation_id": id_of(&c)})).await;
    assert_eq!(full.messages.len(), 4);
    assert_eq!(full.messages[1].metadata, Some(json!({"model": "x", "tokens": 12})));
    assert_eq!(full.messages[3].content, r#"{"exit":0}"#);
    assert_eq!(full.conversation.metadata, Some(json!({"project": "iccm"})));

    let other: ConversationRecord = ok(&client, "dewey_begin_conversation", json!({"session_id": "s2"})).await;
    let page: ConversationPage = ok(&client, "dewey_list_conversations", json!({"session_id": "s1"})).await;
    assert_eq!(page.total, 1);
    assert_eq!(page.conversations[0].message_count, 4);
    let page: ConversationPage = ok(&client, "dewey_list_conversations", json!({"sort_by": "created_at"})).await;
    assert_eq!(page.conversations[0].conversation_id, other.conversation_id);
    let page: ConversationPage =
        ok(&client, "dewey_list_conversations", json!({"sort_by": "updated_at", "limit": 1})).await;
    assert_eq!(page.conversations.len(), 1);
    let page: ConversationPage = ok(&client, "dewey_list_conversations", json!({"offset": 1})).await;
    assert_eq!(page.conversations.len(), 1);

    let found: SearchResults = ok(&client, "dewey_search", json!({"query": "migrations database"})).await;
    assert_eq!(found.count, 1);
    assert_eq!(found.results[0].turn_number, 1);
    let found: SearchResults = ok(&client, "dewey_search", json!({"query": "migrations"})).await;
    assert_eq!(found.count, 2);
    let found: SearchResults = ok(&client, "dewey_search", json!({"query": "migrations", "session_id": "s2"})).await;
    assert_eq!(found.count, 0);
    let tomorrow = (Utc::now() + Duration::days(1)).format("%Y-%m-%d").to_string();
    let found: SearchResults =
        ok(&client, "dewey_search", json!({"query": "migrations", "start_date": tomorrow})).await;
    assert_eq!(found.count, 0);
    let found: SearchResults =
        ok(&client, "dewey_search", json!({"query": "migrations", "end_date": tomorrow, "limit": 1, "offset": 1}))
            .await;
    assert_eq!(found.count, 1);

    let err = fails(&client, "dewey_delete_conversation", json!({"conversation_id": id_of(&c)})).await;
    assert!(err.contains("has 4 messages") && err.contains("force"), "{err}");
    let deleted: DeletedConversation =
        ok(&client, "dewey_delete_conversation", json!({"conversation_id": id_of(&c), "force": true})).await;
    assert_eq!(deleted.messages_deleted, 4);
    let err = fails(&client, "dewey_get_conversation", json!({"conversation_id": id_of(&c)})).await;
    assert!(err.contains("not found"), "{err}");
    let found: SearchResults = ok(&client, "dewey_search", json!({"query": "migrations"})).await;
    assert_eq!(found.count, 0, "deleted messages leave the search index");
}

async fn concurrent_clients_get_unique_turns(dewey: Dewey) {
    let setup = dewey.client().await;
    let c: ConversationRecord = ok(&setup, "dewey_begin_conversation", json!({})).await;
    let id = c.conversation_id.clone();
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = dewey.client().await;
        let id = id.clone();
        writers.push(tokio::spawn(async move {
            let mut turns = Vec::new();
            for n in 0..25 {
                let m: StoredMessage = ok(
                    &client,
                    "dewey_store_message",
                    json!({
                        "conversation_id": id, "role": "user", "content": format!("writer {w} message {n}")
                    }),
                )
                .await;
                turns.push(m.turn_number);
            }
            turns
        }));
    }
    let mut turns = Vec::new();
    for w in writers {
        turns.extend(w.await.unwrap());
    }
    turns.sort();
    assert_eq!(turns, (1..=200).collect::<Vec<i64>>(), "turns 1..=200, each once");
    let full: ConversationWithMessages = ok(&setup, "dewey_get_conversation", json!({"conversation_id": id})).await;
    let stored: Vec<i64> = full.messages.iter().map(|m| m.turn_number).collect();
    assert_eq!(stored, (1..=200).collect::<Vec<i64>>());
}

fn godot_batch(n: usize, with_ids: bool) -> Vec<Value> {
    let t0 = Utc::now() - Duration::minutes(5);
    (0..n)
        .map(|i| {
            let level = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"][i % 5];
            let mut entry = json!({
                "component": if i % 2 == 0 { "godot" } else { "dewey" },
                "level": level,
                "message": format!("event {i} tool call completed"),
                "trace_id": format!("trace-{}", i % 3),
                "data": {"i": i, "tool_name": "dewey_search"},
                "created_at": (t0 + Duration::milliseconds(i as i64)).to_rfc3339(),
            });
            if with_ids {
                entry["id"] = json!(Uuid::new_v4().to_string());
            }
            entry
        })
        .collect()
}

async fn retried_log_batches_are_stored_once(dewey: Dewey) {
    let client = dewey.client().await;
    let mut batch = godot_batch(60, true);
    // Old producers send no id: those entries get a content-derived one.
    batch.extend(godot_batch(40, false).into_iter().map(|mut e| {
        e["message"] = json!(format!("legacy {}", e["message"].as_str().unwrap()));
        e
    }));
    let first: LogBatchStored = ok(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert_eq!((first.stored, first.duplicates), (100, 0));
    let retry: LogBatchStored = ok(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert_eq!((retry.stored, retry.duplicates), (0, 100));
    assert_eq!(log_count(&client).await, 100);

    // The same batch sent by several clients at once is still stored once.
    let fresh = godot_batch(50, true);
    let mut senders = Vec::new();
    for _ in 0..4 {
        let client = dewey.client().await;
        let fresh = fresh.clone();
        senders.push(tokio::spawn(async move {
            ok::<LogBatchStored>(&client, "dewey_store_logs_batch", json!({"logs": fresh})).await
        }));
    }
    let mut stored = 0;
    for s in senders {
        let r = s.await.unwrap();
        assert_eq!(r.stored + r.duplicates, 50);
        stored += r.stored;
    }
    assert_eq!(stored, 50);
    assert_eq!(log_count(&client).await, 150);
}

async fn logs_end_to_end(dewey: Dewey) {
    let client = dewey.client().await;
    let batch = godot_batch(25, true);
    let r: LogBatchStored = ok(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert_eq!(r.stored, 25);
    // A Godot entry exactly as its worker builds it (no id, Python isoformat).
    let python = json!({"component": "godot", "level": "info", "message": "Client connected", "trace_id": null,
        "data": {"client": "('10.0.0.5', 40000)"}, "created_at": "2025-01-01T10:00:00.123456+00:00"});
    let r: LogBatchStored = ok(&client, "dewey_store_logs_batch", json!({"logs": [python]})).await;
    assert_eq!(r.stored, 1);

    let all: LogQueryResult = ok(&client, "dewey_query_logs", json!({})).await;
    assert_eq!(all.count, 26);
    assert!(all.logs.windows(2).all(|w| w[0].created_at >= w[1].created_at), "newest first");
    assert_eq!(all.logs.last().unwrap().created_at, "2025-01-01T10:00:00.123456Z");
    let q = |args: Value| {
        let client = &client;
        async move { ok::<LogQueryResult>(client, "dewey_query_logs", args).await }
    };
    assert_eq!(q(json!({"trace_id": "trace-0"})).await.count, 9);
    assert_eq!(q(json!({"component": "dewey"})).await.count, 12);
    let errors = q(json!({"level": "ERROR"})).await;
    assert_eq!(errors.count, 5);
    assert_eq!(q(json!({"level": "WARN"})).await.count, 10);
    assert_eq!(q(json!({"level": "TRACE"})).await.count, 26);
    assert_eq!(q(json!({"level": "info"})).await.count, 16, "INFO and up, case-insensitive");
    assert_eq!(q(json!({"search": "connected"})).await.count, 1);
    assert_eq!(q(json!({"search": "event completed", "component": "godot", "level": "WARN"})).await.count, 5);
    assert_eq!(q(json!({"limit": 3})).await.count, 3);
    // A search whose newest matches fill the limit (PostgreSQL answers it
    // from the newest rows) agrees with the full answer.
    let all_events = q(json!({"search": "event"})).await;
    assert_eq!(all_events.count, 25);
    let newest = q(json!({"search": "event", "limit": 3})).await;
    let ids = |r: &LogQueryResult| r.logs.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&newest), ids(&all_events)[..3]);
    let newest_godot = q(json!({"search": "event", "component": "godot", "limit": 2})).await;
    let all_godot = q(json!({"search": "event", "component": "godot"})).await;
    assert_eq!(ids(&newest_godot), ids(&all_godot)[..2]);
    assert_eq!(q(json!({"start_time": "2025-01-01T00:00:00Z", "end_time": "2025-01-02"})).await.count, 1);
    assert_eq!(errors.logs[0].data.as_ref().unwrap()["tool_name"], "dewey_search");

    let stats: Value = ok(&client, "dewey_get_log_stats", json!({})).await;
    assert_eq!(stats["total_logs"], 26);
    assert_eq!(stats["by_level"]["ERROR"], 5);
    assert_eq!(stats["by_component"]["godot"], 14);

    let cleared: ClearedLogs = ok(&client, "dewey_clear_logs", json!({"component": "dewey"})).await;
    assert_eq!(cleared.deleted, 12);
    assert!(cleared.message.contains("removed 12"), "{}", cleared.message);
    let cleared: ClearedLogs = ok(&client, "dewey_clear_logs", json!({"before_time": "2025-06-01T00:00:00Z"})).await;
    assert_eq!(cleared.deleted, 1);
    let err = fails(&client, "dewey_clear_logs", json!({})).await;
    assert!(err.contains("component") && err.contains("before_time"), "{err}");
    assert_eq!(log_count(&client).await, 13);
    let cleared: ClearedLogs =
        ok(&client, "dewey_clear_logs", json!({"before_time": (Utc::now() + Duration::seconds(1)).to_rfc3339()})).await;
    assert_eq!(cleared.deleted, 13);
}

async fn startup_contexts_end_to_end(dewey: Dewey) {
    let client = dewey.client().await;
    let none: StartupContextLookup = ok(&client, "dewey_get_startup_context", json!({})).await;
    assert!(!none.found && none.context.is_none());
    let set: SetStartupContext = ok(
        &client,
        "dewey_set_startup_context",
        json!({"name": "dev", "content": "You are in dev.", "set_active": true}),
    )
    .await;
    assert!(set.created && set.context.is_active);
    let set: SetStartupContext =
        ok(&client, "dewey_set_startup_context", json!({"name": "prod", "content": "You are in prod."})).await;
    assert!(set.created && !set.context.is_active);
    let active: StartupContextLookup = ok(&client, "dewey_get_startup_context", json!({})).await;
    assert_eq!(active.context.unwrap().content.as_deref(), Some("You are in dev."));
    let _: SetStartupContext =
        ok(&client, "dewey_set_startup_context", json!({"name": "prod", "content": "Prod v2", "set_active": true}))
            .await;
    let list: StartupContextList = ok(&client, "dewey_list_startup_contexts", json!({})).await;
    assert_eq!(list.active.as_deref(), Some("prod"));
    assert_eq!(list.contexts.iter().filter(|c| c.is_active).count(), 1, "exactly one active");
    assert!(list.contexts.iter().all(|c| c.content.is_none()));
    let list: StartupContextList = ok(&client, "dewey_list_startup_contexts", json!({"include_content": true})).await;
    assert_eq!(list.contexts[1].content.as_deref(), Some("Prod v2"));
    let named: StartupContextLookup = ok(&client, "dewey_get_startup_context", json!({"name": "dev"})).await;
    assert!(!named.context.unwrap().is_active);
    let err = fails(&client, "dewey_get_startup_context", json!({"name": "staging"})).await;
    assert!(err.contains("\"staging\" not found"), "{err}");
    let err = fails(&client, "dewey_delete_startup_context", json!({"name": "prod"})).await;
    assert!(err.contains("active") && err.contains("force"), "{err}");
    let _: Value = ok(&client, "dewey_delete_startup_context", json!({"name": "dev"})).await;
    let deleted: Value = ok(&client, "dewey_delete_startup_context", json!({"name": "prod", "force": true})).await;
    assert_eq!(deleted["was_active"], true);
    let err = fails(&client, "dewey_delete_startup_context", json!({"name": "prod"})).await;
    assert!(err.contains("not found"), "{err}");
}

/// The Python Dewey also answered `{"method": "<tool name>", "params": {...}}`
/// with the tool's JSON as the result; old callers still do that.
async fn legacy_direct_calls_work_for_every_tool(dewey: Dewey) {
    let client = dewey.client().await;
    let c = client.request("dewey_begin_conversation", json!({"session_id": "legacy"})).await.unwrap();
    let id = c["conversation_id"].as_str().unwrap().to_owned();
    let m = client
        .request("dewey_store_message", json!({"conversation_id": id, "role": "user", "content": "legacy hello"}))
        .await
        .unwrap();
    assert_eq!(m["turn_number"], 1);
    let b = client
        .request(
            "dewey_store_messages_bulk",
            json!({"conversation_id": id, "messages": [{"role": "assistant", "content": "hi"}]}),
        )
        .await
        .unwrap();
    assert_eq!(b["last_turn"], 2);
    let g = client.request("dewey_get_conversation", json!({"conversation_id": id})).await.unwrap();
    assert_eq!(g["messages"].as_array().unwrap().len(), 2);
    let l = client.request("dewey_list_conversations", json!({"session_id": "legacy"})).await.unwrap();
    assert_eq!(l["total"], 1);
    let s = client.request("dewey_search", json!({"query": "hello"})).await.unwrap();
    assert_eq!(s["count"], 1);
    let set = client
        .request("dewey_set_startup_context", json!({"name": "n", "content": "c", "set_active": true}))
        .await
        .unwrap();
    assert_eq!(set["created"], true);
    let get = client.request("dewey_get_startup_context", json!({})).await.unwrap();
    assert_eq!(get["context"]["name"], "n");
    let list = client.request("dewey_list_startup_contexts", json!({"include_content": true})).await.unwrap();
    assert_eq!(list["contexts"][0]["content"], "c");
    let del = client.request("dewey_delete_startup_context", json!({"name": "n", "force": true})).await.unwrap();
    assert_eq!(del["deleted"], true);
    let logs = json!({"logs": [{"component": "godot", "level": "INFO", "message": "legacy log"}]});
    let stored = client.request("dewey_store_logs_batch", &logs).await.unwrap();
    assert_eq!(stored["stored"], 1);
    let stored = client.request("dewey_store_logs_batch", &logs).await.unwrap();
    assert_eq!(stored["duplicates"], 1);
    let q = client.request("dewey_query_logs", json!({"component": "godot"})).await.unwrap();
    assert_eq!(q["count"], 1);
    let stats = client.request("dewey_get_log_stats", json!({})).await.unwrap();
    assert_eq!(stats["total_logs"], 1);
    let cleared = client.request("dewey_clear_logs", json!({"component": "godot"})).await.unwrap();
    assert_eq!(cleared["deleted"], 1);
    let deleted =
        client.request("dewey_delete_conversation", json!({"conversation_id": id, "force": true})).await.unwrap();
    assert_eq!(deleted["messages_deleted"], 2);
    // A failing legacy call is a JSON-RPC error carrying the tool's message.
    let err = client.request("dewey_get_conversation", json!({"conversation_id": id})).await.unwrap_err();
    assert!(err.is_rpc_error() && err.to_string().contains("not found"), "{err}");
    let err = client
        .request("dewey_store_message", json!({"conversation_id": id, "role": "bot", "content": "x"}))
        .await
        .unwrap_err();
    assert!(err.is_rpc_error() && err.to_string().contains("role"), "{err}");
}

async fn bad_inputs_are_refused_and_change_nothing(dewey: Dewey) {
    let client = dewey.client().await;
    let c: ConversationRecord = ok(&client, "dewey_begin_conversation", json!({})).await;
    let id = c.conversation_id.clone();
    let unknown = Uuid::now_v7().to_string();
    let unknown_needles = ["not found", unknown.as_str()];
    let cases: Vec<(&str, Value, &[&str])> = vec![
        ("dewey_store_message", json!({"conversation_id": unknown, "role": "user", "content": "x"}), &unknown_needles),
        (
            "dewey_store_message",
            json!({"conversation_id": "not-a-uuid", "role": "user", "content": "x"}),
            &["`conversation_id` is not a UUID"],
        ),
        ("dewey_store_message", json!({"conversation_id": id, "role": "bot", "content": "x"}), &["role", "bot"]),
        ("dewey_store_message", json!({"conversation_id": id, "role": "user"}), &["content"]),
        (
            "dewey_store_message",
            json!({"conversation_id": id, "role": "user", "content": "x", "turn_number": 0}),
            &["turn_number", "between 1"],
        ),
        ("dewey_get_conversation", json!({"conversation_id": "123"}), &["not a UUID"]),
        ("dewey_delete_conversation", json!({"conversation_id": unknown}), &["not found"]),
        ("dewey_list_conversations", json!({"limit": 0}), &["`limit` must be between 1 and 1000, got 0"]),
        ("dewey_list_conversations", json!({"limit": 1001}), &["`limit` must be between 1 and 1000"]),
        ("dewey_list_conversations", json!({"offset": -1}), &["`offset`"]),
        ("dewey_list_conversations", json!({"sort_by": "name"}), &["sort_by"]),
        ("dewey_search", json!({"query": "x", "start_date": "last tuesday"}), &["`start_date` is not a timestamp"]),
        ("dewey_search", json!({"query": "x", "start_date": "2025-02-01", "end_date": "2025-01-01"}), &["after"]),
        ("dewey_search", json!({"query": "  ?! "}), &["no words"]),
        ("dewey_search", json!({"query": "x", "limit": 5000}), &["`limit`"]),
        ("dewey_query_logs", json!({"limit": 0}), &["`limit` must be between 1 and 1000"]),
        ("dewey_query_logs", json!({"limit": 1001}), &["`limit` must be between 1 and 1000"]),
        ("dewey_query_logs", json!({"level": "FATAL"}), &["level"]),
        ("dewey_query_logs", json!({"end_time": "31/01/2025"}), &["`end_time` is not a timestamp"]),
        ("dewey_clear_logs", json!({"before_time": "soon"}), &["`before_time` is not a timestamp"]),
        ("dewey_set_startup_context", json!({"name": " ", "content": "c"}), &["`name` is empty"]),
        ("dewey_store_messages_bulk", json!({}), &["messages"]),
        ("dewey_store_messages_bulk", json!({"messages": []}), &["no messages"]),
        (
            "dewey_store_messages_bulk",
            json!({"messages": [{"role": "user", "content": "x"}], "messages_file": "f.json"}),
            &["not both"],
        ),
        (
            "dewey_store_messages_bulk",
            json!({"conversation_id": unknown, "messages": [{"role": "user", "content": "x"}]}),
            &["not found"],
        ),
        (
            "dewey_store_messages_bulk",
            json!({"conversation_id": "nope", "messages": [{"role": "user", "content": "x"}]}),
            &["not a UUID"],
        ),
        (
            "dewey_store_messages_bulk",
            json!({"conversation_id": id, "session_id": "s", "messages": [{"role": "user", "content": "x"}]}),
            &["leave them out"],
        ),
    ];
    for (tool, args, expected) in &cases {
        let message = fails(&client, tool, args.clone()).await;
        for needle in *expected {
            assert!(message.contains(needle), "{tool} {args}: {message:?} should mention {needle:?}");
        }
    }
    // Bulk: one bad role among good messages writes none of them, and no
    // new conversation either.
    let conversations = conversation_count(&client).await;
    let mut messages: Vec<Value> = (0..10).map(|i| json!({"role": "user", "content": format!("m{i}")})).collect();
    messages[7] = json!({"role": "robot", "content": "x"});
    let message = fails(&client, "dewey_store_messages_bulk", json!({"messages": messages})).await;
    assert!(message.contains("messages[7].role"), "{message}");
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"role": "user", "content": format!("m{i}")})).collect();
    let message = fails(&client, "dewey_store_messages_bulk", json!({"messages": too_many})).await;
    assert!(message.contains("at most 1000"), "{message}");
    assert_eq!(conversation_count(&client).await, conversations);
    let full: ConversationWithMessages = ok(&client, "dewey_get_conversation", json!({"conversation_id": id})).await;
    assert!(full.messages.is_empty(), "no bad call wrote a message");

    // Logs: one bad entry rejects the batch.
    let mut batch = godot_batch(10, true);
    batch[4]["created_at"] = json!("not a time");
    let message = fails(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert!(message.contains("logs[4].created_at"), "{message}");
    let mut batch = godot_batch(10, true);
    batch[2]["level"] = json!("FATAL");
    let message = fails(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert!(message.contains("logs[2].level") || message.contains("logs.2.level"), "{message}");
    let mut batch = godot_batch(10, true);
    batch[9]["id"] = json!("12345");
    let message = fails(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert!(message.contains("logs[9].id"), "{message}");
    assert_eq!(log_count(&client).await, 0);
    let storage_conversations = dewey.storage.list_conversations(dewey::model::ConversationQuery {
        session_id: None,
        sort_by: dewey::model::SortBy::CreatedAt,
        limit: 10,
        offset: 0,
    });
    assert_eq!(storage_conversations.await.unwrap().total, 1);
}

/// PostgreSQL cannot store U+0000. Before, a batch holding one failed whole
/// as a storage error, which Godot's worker retries forever; now every
/// backend refuses it as invalid input naming the entry, and stores nothing.
async fn nul_characters_are_invalid_input_naming_the_entry(dewey: Dewey) {
    let client = dewey.client().await;
    let c: ConversationRecord = ok(&client, "dewey_begin_conversation", json!({})).await;
    let id = c.conversation_id.clone();
    let mut batch = godot_batch(10, true);
    batch[6]["message"] = json!("before\u{0}after");
    let message = fails(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert!(message.contains("`logs[6].message` contains a NUL character"), "{message}");
    assert!(!message.contains("storage error"), "{message}");
    let mut batch = godot_batch(3, false);
    batch[1]["data"] = json!({"nested": ["ok", "\u{0}"]});
    let message = fails(&client, "dewey_store_logs_batch", json!({"logs": batch})).await;
    assert!(message.contains("`logs[1].data.nested[1]`"), "{message}");
    assert_eq!(log_count(&client).await, 0, "nothing of a refused batch is stored");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("dewey_store_message", json!({"conversation_id": id, "role": "user", "content": "a\u{0}"}), "`content`"),
        (
            "dewey_store_message",
            json!({"conversation_id": id, "role": "user", "content": "a", "metadata": {"k": "\u{0}"}}),
            "`metadata.k`",
        ),
        ("dewey_begin_conversation", json!({"session_id": "s\u{0}"}), "`session_id`"),
        (
            "dewey_store_messages_bulk",
            json!({"conversation_id": id, "messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "\u{0}"}]}),
            "`messages[1].content`",
        ),
        ("dewey_set_startup_context", json!({"name": "n", "content": "\u{0}"}), "`content`"),
        ("dewey_query_logs", json!({"component": "c\u{0}"}), "`component`"),
        ("dewey_search", json!({"query": "x", "session_id": "\u{0}"}), "`session_id`"),
    ];
    for (tool, args, needle) in &cases {
        let message = fails(&client, tool, args.clone()).await;
        assert!(message.contains(needle) && message.contains("NUL character"), "{tool}: {message}");
        assert!(!message.contains("storage error"), "{tool}: {message}");
    }
    let full: ConversationWithMessages = ok(&client, "dewey_get_conversation", json!({"conversation_id": id})).await;
    assert!(full.messages.is_empty(), "no refused call wrote a message");
    assert_eq!(conversation_count(&client).await, 1);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn messages_file_json_and_jsonl(dewey: Dewey) {
    let client = dewey.client().await;
    let dir = dewey.files_dir();
    write(
        dir,
        "plain.json",
        &json!([
            {"role": "user", "content": "from a file"},
            {"role": "assistant", "content": [{"type": "text", "text": "blocks"}], "metadata": {"m": 1}}
        ])
        .to_string(),
    );
    let stored: BulkStored =
        ok(&client, "dewey_store_messages_bulk", json!({"messages_file": "plain.json", "session_id": "files"})).await;
    assert!(stored.conversation_created);
    assert_eq!(stored.messages_stored, 2);
    let full: ConversationWithMessages =
        ok(&client, "dewey_get_conversation", json!({"conversation_id": stored.conversation_id})).await;
    assert_eq!(full.conversation.session_id.as_deref(), Some("files"));
    assert_eq!(full.messages[0].content, "from a file");
    assert_eq!(
        serde_json::from_str::<Value>(&full.messages[1].content).unwrap(),
        json!([{"type": "text", "text": "blocks"}])
    );
    assert_eq!(full.messages[1].metadata, Some(json!({"m": 1})));

    // A Claude Code session file: JSONL, nested messages, other entries.
    let lines = [
        json!({"type": "summary", "summary": "Fixing Dewey", "leafUuid": "x"}),
        json!({"type": "user", "uuid": "u1", "sessionId": "abc", "message": {"role": "user", "content": "fix the bug"}}),
        json!({"type": "assistant", "uuid": "a1", "message": {"role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": "done"}, {"type": "tool_use", "name": "Edit", "input": {}}]}}),
        json!({"type": "file-history-snapshot", "snapshot": {"files": []}}),
    ];
    let jsonl = lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n") + "\n\n";
    let absolute = write(dir, "session.jsonl", &jsonl);
    let stored: BulkStored = ok(
        &client,
        "dewey_store_messages_bulk",
        json!({
            "messages_file": absolute.to_str().unwrap(), "conversation_id": full.conversation.conversation_id
        }),
    )
    .await;
    assert_eq!((stored.first_turn, stored.last_turn), (3, 6));
    let full: ConversationWithMessages =
        ok(&client, "dewey_get_conversation", json!({"conversation_id": stored.conversation_id})).await;
    let session = &full.messages[2..];
    let roles: Vec<&str> = session.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "system"]);
    assert_eq!(session[0].content, "summary");
    assert_eq!(session[1].content, "fix the bug");
    assert_eq!(session[3].content, "file-history-snapshot");
    for (message, line) in session.iter().zip(&lines) {
        assert_eq!(message.metadata.as_ref(), Some(line), "the original entry is kept as metadata");
    }
    let blocks: Value = serde_json::from_str(&session[2].content).unwrap();
    assert_eq!(blocks[1]["name"], "Edit");
    // And it is searchable like any message.
    let found: SearchResults = ok(&client, "dewey_search", json!({"query": "bug"})).await;
    assert_eq!(found.count, 1);
}

async fn messages_file_errors(dewey: Dewey) {
    let client = dewey.client().await;
    let dir = dewey.files_dir();
    let before = conversation_count(&client).await;
    let bulk = |file: &str| json!({"messages_file": file});

    let root = dir.canonicalize().unwrap();
    let outside_message = |file: &str| {
        format!(
            "`messages_file` {file} is outside the allowed directory {} (DEWEY_FILES_DIR): name a file inside it, \
             relative to it and without `..`; copy the file there first",
            root.display()
        )
    };
    let not_found_message = |file: &str| {
        format!(
            "`messages_file` not found: {file} (no readable file by that name inside the allowed directory {}, \
             DEWEY_FILES_DIR)",
            root.display()
        )
    };

    let outside = tempfile::tempdir().unwrap();
    let secret = write(outside.path(), "secret.json", r#"[{"role":"user","content":"secret"}]"#);
    let secret = secret.to_str().unwrap();
    // An existing and a missing file outside the root get the same answer.
    for file in [secret, "/nope/missing.json"] {
        let message = fails(&client, "dewey_store_messages_bulk", bulk(file)).await;
        assert_eq!(message, outside_message(file));
    }
    let relative_escape = format!("../{}/secret.json", outside.path().file_name().unwrap().to_str().unwrap());
    let message = fails(&client, "dewey_store_messages_bulk", bulk(&relative_escape)).await;
    assert_eq!(message, outside_message(&relative_escape));
    #[cfg(unix)]
    {
        // A symlink out of the root reads as missing, whether its target exists or not.
        std::os::unix::fs::symlink(secret, dir.join("link.json")).unwrap();
        let message = fails(&client, "dewey_store_messages_bulk", bulk("link.json")).await;
        assert_eq!(message, not_found_message("link.json"), "a symlink out is still outside");
        std::os::unix::fs::symlink("/nope/missing.json", dir.join("dangling.json")).unwrap();
        let message = fails(&client, "dewey_store_messages_bulk", bulk("dangling.json")).await;
        assert_eq!(message, not_found_message("dangling.json"));
    }
    let message = fails(&client, "dewey_store_messages_bulk", bulk("missing.json")).await;
    assert_eq!(message, not_found_message("missing.json"));

    write(dir, "broken.json", r#"[{"role": "user", "content": "x"},"#);
    let message = fails(&client, "dewey_store_messages_bulk", bulk("broken.json")).await;
    assert!(message.contains("broken.json") && message.contains("not a valid JSON array"), "{message}");
    write(dir, "broken.jsonl", "{\"role\": \"user\", \"content\": \"x\"}\n{\"role\": oops}\n");
    let message = fails(&client, "dewey_store_messages_bulk", bulk("broken.jsonl")).await;
    assert!(message.contains("line 2 is not valid JSON"), "{message}");
    write(dir, "text.txt", "hello");
    let message = fails(&client, "dewey_store_messages_bulk", bulk("text.txt")).await;
    assert!(message.contains("neither a JSON array nor JSONL"), "{message}");
    write(dir, "badrole.jsonl", "{\"message\": {\"role\": \"robot\", \"content\": \"x\"}}\n");
    let message = fails(&client, "dewey_store_messages_bulk", bulk("badrole.jsonl")).await;
    assert!(message.contains("message.role"), "{message}");
    std::fs::create_dir(dir.join("subdir")).unwrap();
    let message = fails(&client, "dewey_store_messages_bulk", bulk("subdir")).await;
    assert!(message.contains("not a regular file"), "{message}");
    assert_eq!(conversation_count(&client).await, before, "no failed file wrote a conversation");

    // A server without DEWEY_FILES_DIR refuses every messages_file.
    let bound = dewey::server(dewey.storage.clone(), MessageFiles::disabled()).bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", bound.local_addr());
    let shutdown = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    let closed = Client::connect(&url).await.unwrap();
    let message = fails(&closed, "dewey_store_messages_bulk", bulk("plain.json")).await;
    assert!(message.contains("DEWEY_FILES_DIR"), "{message}");
    shutdown.shutdown();
}
