//! The storage contract, written once and run against both backends: each
//! scenario is two tests, `sqlite::NAME` (a temporary directory) and
//! `postgres::NAME` (a database of its own on the test binary's private
//! PostgreSQL server), so one failure hides no other and any one can be run
//! alone: `cargo test -p dewey --test storage sqlite::conversation_lifecycle`.

use chrono::{Duration, Utc};
use dewey::log_batch::{self, LogEntryInput};
use dewey::model::{
    BulkTarget, ConversationQuery, LogLevel, LogQuery, NewMessage, Role, SearchQuery, SearchTerms, SortBy,
};
use dewey::{DeweyError, Storage, StorageConfig};
use serde_json::json;
use uuid::Uuid;

/// One `#[tokio::test]` per scenario and backend.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (config, _dir) = super::sqlite_config();
                    super::$name(&config).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let config = super::postgres_config(stringify!($name)).await;
                    super::$name(&config).await;
                }
            )*
        }
    };
}

scenarios!(
    conversation_lifecycle,
    automatic_turns_stop_at_the_last_turn_number,
    concurrent_appends_get_unique_consecutive_turns,
    bulk_store_is_all_or_nothing,
    search_is_ranked_and_filtered,
    startup_contexts_keep_one_active,
    log_batches_dedup_and_query,
    migrations_are_idempotent,
    replicas_share_turns,
    replicas_migrate_concurrently,
);

/// A SQLite file in a fresh directory; it lives as long as the directory.
fn sqlite_config() -> (StorageConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (StorageConfig::Sqlite { path: dir.path().join("dewey.sqlite3") }, dir)
}

/// A fresh database on the shared test PostgreSQL server.
async fn postgres_config(label: &'static str) -> StorageConfig {
    let url =
        tokio::task::spawn_blocking(move || mcp_tests::TestPostgres::shared().fresh_database(label)).await.unwrap();
    StorageConfig::Postgres { url }
}

async fn open(config: &StorageConfig) -> Storage {
    Storage::open(config).await.unwrap()
}

fn msg(role: Role, content: &str) -> NewMessage {
    NewMessage { role, content: content.to_owned(), metadata: None }
}

async fn migrations_are_idempotent(config: &StorageConfig) {
    let storage = Storage::open(config).await.unwrap();
    assert_eq!(storage.schema_version().await.unwrap(), 1);
    let c = storage.begin_conversation(None, None).await.unwrap();
    // Opening again runs the migrator again: nothing to do, data intact.
    let again = Storage::open(config).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), 1);
    let id = Uuid::parse_str(&c.conversation_id).unwrap();
    assert_eq!(again.get_conversation(id).await.unwrap().conversation.conversation_id, c.conversation_id);
}

async fn automatic_turns_stop_at_the_last_turn_number(config: &StorageConfig) {
    let storage = open(config).await;
    let c = storage.begin_conversation(None, None).await.unwrap();
    let id = Uuid::parse_str(&c.conversation_id).unwrap();
    let last = storage.store_message(id, Some(i32::MAX.into()), msg(Role::User, "last")).await.unwrap();
    assert_eq!(last.turn_number, i64::from(i32::MAX));
    // Both engines refuse the turn after it alike, as the bulk path does.
    let err = storage.store_message(id, None, msg(Role::User, "past")).await.unwrap_err();
    assert!(matches!(err, DeweyError::InvalidInput(_)), "{err}");
    assert_eq!(err.to_string(), format!("conversation {id} has no turn numbers left"));
    let bulk = storage.store_messages_bulk(BulkTarget::Existing(id), vec![msg(Role::User, "past")]).await.unwrap_err();
    assert_eq!(bulk.to_string(), err.to_string());
    assert_eq!(storage.get_conversation(id).await.unwrap().messages.len(), 1, "nothing was stored");
}

async fn conversation_lifecycle(config: &StorageConfig) {
    let storage = open(config).await;
    let c = storage.begin_conversation(Some("s1".into()), Some(json!({"k": "v"}))).await.unwrap();
    assert_eq!(c.session_id.as_deref(), Some("s1"));
    let id = Uuid::parse_str(&c.conversation_id).unwrap();

    let m1 = storage.store_message(id, None, msg(Role::User, "hello")).await.unwrap();
    let m2 = storage.store_message(id, None, msg(Role::Assistant, "hi there")).await.unwrap();
    assert_eq!((m1.turn_number, m2.turn_number), (1, 2));
    let m10 = storage.store_message(id, Some(10), msg(Role::Tool, "explicit")).await.unwrap();
    assert_eq!(m10.turn_number, 10);
    let next = storage.store_message(id, None, msg(Role::System, "after")).await.unwrap();
    assert_eq!(next.turn_number, 11);
    let taken = storage.store_message(id, Some(2), msg(Role::User, "dup")).await.unwrap_err();
    assert!(taken.is_conflict() && taken.to_string().contains("turn 2 is already taken"), "{taken}");

    let missing = Uuid::now_v7();
    let err = storage.store_message(missing, None, msg(Role::User, "x")).await.unwrap_err();
    assert!(err.is_not_found() && err.to_string().contains(&missing.to_string()), "{err}");

    let full = storage.get_conversation(id).await.unwrap();
    let turns: Vec<i64> = full.messages.iter().map(|m| m.turn_number).collect();
    assert_eq!(turns, [1, 2, 10, 11]);
    assert_eq!(full.conversation.message_count, 4);
    assert_eq!(full.conversation.metadata, Some(json!({"k": "v"})));
    assert_eq!(full.messages[1].role, Role::Assistant);
    assert_eq!(full.messages[1].content, "hi there");

    // Listing: session filter, both sort orders, paging and total.
    let other = storage.begin_conversation(Some("s2".into()), None).await.unwrap();
    let third = storage.begin_conversation(Some("s1".into()), None).await.unwrap();
    let q = |session: Option<&str>, sort_by, limit, offset| ConversationQuery {
        session_id: session.map(str::to_owned),
        sort_by,
        limit,
        offset,
    };
    let page = storage.list_conversations(q(Some("s1"), SortBy::CreatedAt, 20, 0)).await.unwrap();
    assert_eq!(page.total, 2);
    let ids: Vec<_> = page.conversations.iter().map(|c| c.conversation_id.clone()).collect();
    assert_eq!(ids, [third.conversation_id.clone(), c.conversation_id.clone()]);
    // The first conversation was written to last, so it leads by updated_at.
    storage.store_message(id, None, msg(Role::User, "touch")).await.unwrap();
    let page = storage.list_conversations(q(None, SortBy::UpdatedAt, 1, 0)).await.unwrap();
    assert_eq!((page.total, page.conversations[0].conversation_id.as_str()), (3, c.conversation_id.as_str()));
    let page = storage.list_conversations(q(None, SortBy::CreatedAt, 2, 1)).await.unwrap();
    assert_eq!(page.conversations.len(), 2);
    assert_eq!(page.conversations[0].conversation_id, other.conversation_id);

    let err = storage.delete_conversation(id, false).await.unwrap_err();
    assert!(err.is_conflict() && err.to_string().contains("force"), "{err}");
    assert_eq!(storage.get_conversation(id).await.unwrap().messages.len(), 5, "a refused delete changes nothing");
    assert_eq!(storage.delete_conversation(id, true).await.unwrap(), 5);
    assert!(storage.get_conversation(id).await.unwrap_err().is_not_found());
    let empty = Uuid::parse_str(&other.conversation_id).unwrap();
    assert_eq!(storage.delete_conversation(empty, false).await.unwrap(), 0, "an empty conversation needs no force");
    assert!(storage.delete_conversation(empty, false).await.unwrap_err().is_not_found());
}

async fn concurrent_appends_get_unique_consecutive_turns(config: &StorageConfig) {
    let storage = open(config).await;
    let c = storage.begin_conversation(None, None).await.unwrap();
    let id = Uuid::parse_str(&c.conversation_id).unwrap();
    let writers = (0..8).map(|w| {
        let storage = storage.clone();
        tokio::spawn(async move {
            let mut turns = Vec::new();
            for n in 0..25 {
                let m = storage.store_message(id, None, msg(Role::User, &format!("w{w} n{n}"))).await.unwrap();
                turns.push(m.turn_number);
            }
            turns
        })
    });
    let mut turns = Vec::new();
    for w in writers {
        turns.extend(w.await.unwrap());
    }
    turns.sort();
    assert_eq!(turns, (1..=200).collect::<Vec<i64>>());
    let stored: Vec<i64> = storage.get_conversation(id).await.unwrap().messages.iter().map(|m| m.turn_number).collect();
    assert_eq!(stored, (1..=200).collect::<Vec<i64>>());
}

async fn bulk_store_is_all_or_nothing(config: &StorageConfig) {
    let storage = open(config).await;
    let messages = vec![msg(Role::User, "a"), msg(Role::Assistant, "b"), msg(Role::User, "c")];
    let new = storage
        .store_messages_bulk(BulkTarget::New { session_id: Some("bulk".into()), metadata: None }, messages.clone())
        .await
        .unwrap();
    assert!(new.conversation_created);
    assert_eq!((new.messages_stored, new.first_turn, new.last_turn), (3, 1, 3));
    let id = Uuid::parse_str(&new.conversation_id).unwrap();
    let more = storage.store_messages_bulk(BulkTarget::Existing(id), messages).await.unwrap();
    assert_eq!((more.conversation_created, more.first_turn, more.last_turn), (false, 4, 6));
    let contents: Vec<String> =
        storage.get_conversation(id).await.unwrap().messages.into_iter().map(|m| m.content).collect();
    assert_eq!(contents, ["a", "b", "c", "a", "b", "c"]);

    let before = storage.list_conversations(all_conversations()).await.unwrap().total;
    let err = storage
        .store_messages_bulk(BulkTarget::Existing(Uuid::now_v7()), vec![msg(Role::User, "x")])
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(storage.list_conversations(all_conversations()).await.unwrap().total, before);
}

fn all_conversations() -> ConversationQuery {
    ConversationQuery { session_id: None, sort_by: SortBy::CreatedAt, limit: 1000, offset: 0 }
}

async fn search_is_ranked_and_filtered(config: &StorageConfig) {
    let storage = open(config).await;
    let a = storage.begin_conversation(Some("alpha".into()), None).await.unwrap();
    let b = storage.begin_conversation(Some("beta".into()), None).await.unwrap();
    let (a_id, b_id) = (Uuid::parse_str(&a.conversation_id).unwrap(), Uuid::parse_str(&b.conversation_id).unwrap());
    storage.store_message(a_id, None, msg(Role::User, "the database migration is running")).await.unwrap();
    storage
        .store_message(a_id, None, msg(Role::Assistant, "migration migration migration: run the database migration"))
        .await
        .unwrap();
    storage.store_message(b_id, None, msg(Role::User, "a database of cats")).await.unwrap();
    storage.store_message(b_id, None, msg(Role::User, "nothing relevant here")).await.unwrap();

    let query = |text: &str| SearchQuery {
        terms: SearchTerms::parse(text, "query").unwrap(),
        session_id: None,
        start: None,
        end: None,
        limit: 20,
        offset: 0,
    };
    let hits = storage.search(query("migrations")).await.unwrap();
    assert_eq!(hits.len(), 2, "stemming: `migrations` matches `migration`");
    assert!(hits[0].content.starts_with("migration migration"), "the denser match ranks first: {hits:?}");
    assert!(hits[0].rank >= hits[1].rank);
    assert_eq!(hits[0].session_id.as_deref(), Some("alpha"));

    let hits = storage.search(query("database")).await.unwrap();
    assert_eq!(hits.len(), 3);
    let hits = storage.search(SearchQuery { session_id: Some("beta".into()), ..query("database") }).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].content, "a database of cats");
    let paged = storage.search(SearchQuery { limit: 1, offset: 1, ..query("database") }).await.unwrap();
    assert_eq!(paged.len(), 1);

    let future = Utc::now() + Duration::hours(1);
    let none = storage.search(SearchQuery { start: Some(future), ..query("database") }).await.unwrap();
    assert!(none.is_empty());
    let past = Utc::now() - Duration::hours(1);
    let all = storage.search(SearchQuery { start: Some(past), end: Some(future), ..query("database") }).await.unwrap();
    assert_eq!(all.len(), 3);
    // Every word must match.
    assert_eq!(storage.search(query("database cats")).await.unwrap().len(), 1);
    // Operator characters are just separators.
    assert_eq!(storage.search(query("\"cats\" OR (NEAR*")).await.unwrap().len(), 0);
}

async fn startup_contexts_keep_one_active(config: &StorageConfig) {
    let storage = open(config).await;
    assert!(storage.get_startup_context(None).await.unwrap().is_none());
    let (a, created) = storage.set_startup_context("a".into(), "context A".into(), true).await.unwrap();
    assert!(created && a.is_active);
    let (b, _) = storage.set_startup_context("b".into(), "context B".into(), true).await.unwrap();
    assert!(b.is_active);
    let (a2, created) = storage.set_startup_context("a".into(), "context A v2".into(), false).await.unwrap();
    assert!(!created && !a2.is_active);
    assert_eq!(a2.content.as_deref(), Some("context A v2"));
    let active = storage.get_startup_context(None).await.unwrap().unwrap();
    assert_eq!((active.name.as_str(), active.content.as_deref()), ("b", Some("context B")));
    // Updating the active one without set_active keeps it active.
    let (b2, _) = storage.set_startup_context("b".into(), "context B v2".into(), false).await.unwrap();
    assert!(b2.is_active);

    let list = storage.list_startup_contexts(false).await.unwrap();
    assert_eq!(list.iter().map(|c| (c.name.as_str(), c.is_active)).collect::<Vec<_>>(), [("a", false), ("b", true)]);
    assert!(list.iter().all(|c| c.content.is_none()));
    let list = storage.list_startup_contexts(true).await.unwrap();
    assert_eq!(list[0].content.as_deref(), Some("context A v2"));

    // Concurrent activations still leave exactly one active.
    let racers = (0..6).map(|n| {
        let storage = storage.clone();
        tokio::spawn(async move { storage.set_startup_context(format!("r{n}"), "x".into(), true).await.unwrap() })
    });
    for r in racers {
        r.await.unwrap();
    }
    let active = storage.list_startup_contexts(false).await.unwrap().into_iter().filter(|c| c.is_active).count();
    assert_eq!(active, 1);

    let (_, _) = storage.set_startup_context("b".into(), "context B v3".into(), true).await.unwrap();
    let err = storage.delete_startup_context("b".into(), false).await.unwrap_err();
    assert!(err.is_conflict() && err.to_string().contains("force"), "{err}");
    assert!(storage.get_startup_context(Some("b".into())).await.unwrap().is_some());
    storage.delete_startup_context("b".into(), true).await.unwrap();
    assert!(storage.get_startup_context(None).await.unwrap().is_none());
    assert!(storage.get_startup_context(Some("b".into())).await.unwrap().is_none());
    storage.delete_startup_context("a".into(), false).await.unwrap();
    assert!(storage.delete_startup_context("a".into(), false).await.unwrap_err().is_not_found());
}

fn entry(v: serde_json::Value) -> LogEntryInput {
    serde_json::from_value(v).unwrap()
}

async fn log_batches_dedup_and_query(config: &StorageConfig) {
    let storage = open(config).await;
    let t0 = Utc::now() - Duration::minutes(10);
    let at = |m: i64| (t0 + Duration::minutes(m)).to_rfc3339();
    let batch = vec![
        entry(json!({"id": Uuid::new_v4().to_string(), "component": "godot", "level": "INFO",
            "message": "client connected", "trace_id": "t1", "created_at": at(0)})),
        entry(json!({"id": Uuid::new_v4().to_string(), "component": "godot", "level": "ERROR",
            "message": "connection timeout to dewey", "trace_id": "t1", "data": {"ms": 5000}, "created_at": at(1)})),
        entry(json!({"component": "fiedler", "level": "debug", "message": "sending prompt", "created_at": at(2)})),
        entry(json!({"component": "fiedler", "level": "TRACE", "message": "tool call started", "created_at": at(3)})),
        entry(json!({"component": "horace", "level": "WARNING", "message": "slow disk", "created_at": at(4)})),
    ];
    let prepared = log_batch::prepare(batch.clone()).unwrap();
    let first = storage.store_logs(prepared).await.unwrap();
    assert_eq!((first.stored, first.duplicates), (5, 0));
    // The retry: producer ids and content-derived ids both dedup.
    let retry = storage.store_logs(log_batch::prepare(batch.clone()).unwrap()).await.unwrap();
    assert_eq!((retry.stored, retry.duplicates), (0, 5));
    // A batch that repeats an entry inside itself stores it once.
    let twice =
        vec![batch[4].clone(), batch[4].clone(), entry(json!({"component":"horace","level":"INFO","message":"new"}))];
    let r = storage.store_logs(log_batch::prepare(twice).unwrap()).await.unwrap();
    assert_eq!((r.stored, r.duplicates), (1, 2));

    let q =
        LogQuery { trace_id: None, component: None, min_level: None, start: None, end: None, search: None, limit: 100 };
    let all = storage.query_logs(q.clone()).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].created_at >= w[1].created_at), "newest first");
    let traced = storage.query_logs(LogQuery { trace_id: Some("t1".into()), ..q.clone() }).await.unwrap();
    assert_eq!(traced.len(), 2);
    assert_eq!(traced[0].data, Some(json!({"ms": 5000})));
    let godot = storage.query_logs(LogQuery { component: Some("godot".into()), ..q.clone() }).await.unwrap();
    assert_eq!(godot.len(), 2);
    let warn_up = storage.query_logs(LogQuery { min_level: Some(LogLevel::Warn), ..q.clone() }).await.unwrap();
    let levels: Vec<LogLevel> = warn_up.iter().map(|l| l.level).collect();
    assert_eq!(levels, [LogLevel::Warn, LogLevel::Error]);
    let debug_up = storage.query_logs(LogQuery { min_level: Some(LogLevel::Debug), ..q.clone() }).await.unwrap();
    assert_eq!(debug_up.len(), 5, "everything but TRACE");
    let window = storage
        .query_logs(LogQuery {
            start: Some(t0 + Duration::seconds(30)),
            end: Some(t0 + Duration::minutes(3)),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 3);
    let found = storage
        .query_logs(LogQuery { search: Some(SearchTerms::parse("timeouts", "search").unwrap()), ..q.clone() })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message, "connection timeout to dewey");
    assert_eq!(storage.query_logs(LogQuery { limit: 2, ..q.clone() }).await.unwrap().len(), 2);

    let stats = storage.log_stats().await.unwrap();
    assert_eq!(stats.total_logs, 6);
    assert_eq!(stats.by_level["ERROR"], 1);
    assert_eq!(stats.by_level["INFO"], 2);
    assert_eq!(stats.by_component["fiedler"], 2);
    assert!(stats.oldest.is_some() && stats.storage_bytes.unwrap() > 0);

    assert_eq!(storage.clear_logs(Some("fiedler".into()), None).await.unwrap(), 2);
    assert_eq!(storage.clear_logs(None, Some(t0 + Duration::seconds(90))).await.unwrap(), 2);
    assert_eq!(storage.clear_logs(Some("horace".into()), Some(t0)).await.unwrap(), 0);
    let left = storage.query_logs(q.clone()).await.unwrap();
    assert_eq!(left.iter().map(|l| l.component.as_str()).collect::<Vec<_>>(), ["horace", "horace"]);
    // The search index follows deletes.
    let gone = storage
        .query_logs(LogQuery { search: Some(SearchTerms::parse("timeout", "search").unwrap()), ..q })
        .await
        .unwrap();
    assert!(gone.is_empty());
}

/// Two Dewey replicas (separate pools / writer connections) appending to one
/// conversation in the same database still give every message its own turn.
async fn replicas_share_turns(config: &StorageConfig) {
    let (a, b) = (open(config).await, open(config).await);
    let c = a.begin_conversation(None, None).await.unwrap();
    let id = Uuid::parse_str(&c.conversation_id).unwrap();
    let writers = (0..8).map(|w| {
        let storage = if w % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            for n in 0..25 {
                storage.store_message(id, None, msg(Role::User, &format!("w{w} n{n}"))).await.unwrap();
            }
        })
    });
    for w in writers {
        w.await.unwrap();
    }
    let turns: Vec<i64> = b.get_conversation(id).await.unwrap().messages.iter().map(|m| m.turn_number).collect();
    assert_eq!(turns, (1..=200).collect::<Vec<i64>>());
}

/// Several replicas starting at once on an empty database all succeed and
/// leave one schema (PostgreSQL: the advisory lock serialises them; SQLite:
/// the IMMEDIATE transaction).
async fn replicas_migrate_concurrently(config: &StorageConfig) {
    let opens = (0..6).map(|_| {
        let config = config.clone();
        tokio::spawn(async move { Storage::open(&config).await })
    });
    for open in opens {
        let storage = open.await.unwrap().expect("every replica starts");
        assert_eq!(storage.schema_version().await.unwrap(), 1);
    }
}
