//! Godot's tools end to end in this process: the facade and the worker from
//! the library, a real Dewey (the library, on SQLite) and, for Redis mode, a
//! real redis-server, all over real sockets through the runtime's client.

use std::time::{Duration, Instant};

use godot::config::Config;
use godot::tools::{DeadLetters, LevelSet, Logged, Stats};
use godot::{Facade, Queue};
use mcp_runtime::ShutdownHandle;
use mcp_runtime::client::Client;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Embedded,
    Redis,
}

/// Dewey on SQLite, in this process.
struct Dewey {
    url: String,
    shutdown: ShutdownHandle,
    dir: tempfile::TempDir,
}

impl Dewey {
    async fn start() -> Dewey {
        let dir = tempfile::tempdir().unwrap();
        let config = dewey::StorageConfig::Sqlite { path: dir.path().join("dewey.sqlite3") };
        let storage = dewey::Storage::open(&config).await.unwrap();
        let bound = dewey::server(storage, dewey::MessageFiles::disabled()).bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", bound.local_addr());
        let shutdown = bound.shutdown_handle();
        tokio::spawn(bound.serve());
        Dewey { url, shutdown, dir }
    }
}

impl Dewey {
    fn database(&self) -> std::path::PathBuf {
        self.dir.path().join("dewey.sqlite3")
    }
}

impl Drop for Dewey {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// A Godot facade (and optionally its worker) in this process.
struct Godot {
    client: Client,
    queue: Queue,
    config: Config,
    shutdown: ShutdownHandle,
    worker: CancellationToken,
    _redis: Option<mcp_tests::TestRedis>,
    _dir: tempfile::TempDir,
}

impl Godot {
    async fn start(kind: Kind, dewey_url: &str, with_worker: bool) -> Godot {
        let dir = tempfile::tempdir().unwrap();
        let (mut config, redis) = match kind {
            Kind::Embedded => (Config::embedded(dir.path()), None),
            Kind::Redis => {
                let redis = tokio::task::spawn_blocking(mcp_tests::TestRedis::start).await.unwrap();
                (Config::redis(redis.url(), "tools"), Some(redis))
            }
        };
        config.dewey_url = dewey_url.to_owned();
        config.worker.batch_timeout = Duration::from_millis(20);
        config.worker.retry_initial_delay = Duration::from_millis(50);
        config.worker.retry_max_delay = Duration::from_millis(200);
        let queue = Queue::open(&config).unwrap();
        let bound = godot::server(Facade::start(queue.clone(), &config)).bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", bound.local_addr());
        let shutdown = bound.shutdown_handle();
        tokio::spawn(bound.serve());
        let worker = CancellationToken::new();
        if with_worker {
            tokio::spawn(godot::worker::run(queue.clone(), config.clone(), worker.clone()));
        }
        let client = Client::connect(&url).await.unwrap();
        Godot { client, queue, config, shutdown, worker, _redis: redis, _dir: dir }
    }
}

impl Drop for Godot {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        self.worker.cancel();
    }
}

async fn ok<T: DeserializeOwned>(client: &Client, tool: &str, args: Value) -> T {
    let result = client.call_tool(tool, &args).await.unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert!(!result.is_error, "{tool} {args} failed: {}", result.text());
    serde_json::from_value(result.structured_content.expect("structuredContent")).unwrap()
}

async fn fails(client: &Client, tool: &str, args: Value) -> String {
    let result = client.call_tool(tool, &args).await.unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert!(result.is_error, "{tool} {args} should have failed, got {}", result.text());
    result.text()
}

/// Polls `check` until it holds, failing after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Embedded).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Redis).await })*
        }
    };
}

both_modes!(
    bad_input_is_refused_clearly_and_queues_nothing,
    levels_filter_entries_and_say_so,
    logs_and_conversations_reach_dewey_through_the_proxies,
    an_entry_dewey_refuses_goes_to_the_dead_letters_and_the_rest_arrives,
    dewey_unreachable_fails_the_proxies_at_once_and_logging_goes_on,
);

async fn bad_input_is_refused_clearly_and_queues_nothing(kind: Kind) {
    let godot = Godot::start(kind, "ws://127.0.0.1:9/", false).await;
    let c = &godot.client;
    let log = |extra: Value| {
        let mut args = json!({"component": "tests", "level": "INFO", "message": "m"});
        args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        args
    };
    let cases: Vec<(Value, &[&str])> = vec![
        (log(json!({"level": "FATAL"})), &["level", "FATAL", "ERROR, WARN, INFO, DEBUG, TRACE"]),
        (log(json!({"level": "warning"})), &["ERROR, WARN, INFO, DEBUG, TRACE"]),
        (log(json!({"level": 3})), &["level"]),
        (log(json!({"component": ""})), &["`component` is empty"]),
        (log(json!({"component": "   "})), &["`component` is empty"]),
        (log(json!({"message": "x".repeat(64 * 1024 + 1)})), &["`message`", "65537 bytes", "limit of 65536"]),
        (log(json!({"data": [1, 2]})), &["data"]),
        (log(json!({"data": "text"})), &["data"]),
        (log(json!({"data": {"k": "\u{0}"}})), &["`data.k`", "NUL"]),
        (log(json!({"message": "a\u{0}b"})), &["`message`", "NUL"]),
        (log(json!({"trace_id": ""})), &["`trace_id` is empty"]),
        (log(json!({"extra": 1})), &["extra"]),
        (json!({"component": "tests", "level": "INFO"}), &["message"]),
    ];
    for (args, needles) in &cases {
        let message = fails(c, "logger_log", args.clone()).await;
        for needle in *needles {
            assert!(message.contains(needle), "{args}: {message:?} should mention {needle:?}");
        }
    }
    let message = fails(c, "logger_set_level", json!({"component": "x", "level": "LOUD"})).await;
    assert!(message.contains("ERROR, WARN, INFO, DEBUG, TRACE"), "{message}");
    let message = fails(c, "logger_dead_letters", json!({"limit": 0})).await;
    assert!(message.contains("`limit` must be between 1 and 1000"), "{message}");
    let stats: Stats = ok(c, "logger_stats", json!({})).await;
    assert_eq!((stats.counts.accepted, stats.counts.depth), (0, 0), "nothing was queued");
    // Case does not matter for a valid level; the limit itself is accepted.
    let logged: Logged = ok(c, "logger_log", log(json!({"level": "wArN", "message": "x".repeat(64 * 1024)}))).await;
    assert_eq!(logged.status, "ok");
    assert_eq!(godot.queue.counts().await.unwrap().accepted, 1);
}

async fn levels_filter_entries_and_say_so(kind: Kind) {
    let godot = Godot::start(kind, "ws://127.0.0.1:9/", false).await;
    let c = &godot.client;
    let set: LevelSet = ok(c, "logger_set_level", json!({"component": "noisy", "level": "warn"})).await;
    assert_eq!((set.status.as_str(), set.level.as_str()), ("ok", "WARN"));
    let filtered: Logged = ok(c, "logger_log", json!({"component": "noisy", "level": "INFO", "message": "m"})).await;
    assert_eq!(filtered.status, "filtered");
    assert!(filtered.message.contains("INFO is below the level WARN"), "{}", filtered.message);
    assert!(filtered.id.is_none());
    // Bad input at a filtered level is still bad input: refused, not counted as filtered.
    for (bad, names) in [
        (json!({"component": "noisy", "level": "INFO", "message": "m", "trace_id": ""}), "`trace_id`"),
        (json!({"component": "noisy", "level": "DEBUG", "message": "a\u{0}b"}), "`message`"),
        (json!({"component": "noisy", "level": "TRACE", "message": "x".repeat(70_000)}), "`message`"),
    ] {
        let message = fails(c, "logger_log", bad.clone()).await;
        assert!(message.contains(names), "{bad}: {message}");
    }
    for level in ["WARN", "error"] {
        let kept: Logged = ok(c, "logger_log", json!({"component": "noisy", "level": level, "message": "m"})).await;
        assert_eq!(kept.status, "ok", "{level} is at or above WARN");
    }
    let other: Logged = ok(c, "logger_log", json!({"component": "quiet", "level": "TRACE", "message": "m"})).await;
    assert_eq!(other.status, "ok", "other components are not filtered");
    let stats: Stats = ok(c, "logger_stats", json!({})).await;
    assert_eq!((stats.counts.accepted, stats.counts.filtered), (3, 1));
    assert_eq!(stats.levels.get("noisy").map(String::as_str), Some("WARN"));
    assert_eq!(godot.queue.levels().await.unwrap().get("noisy"), Some(&godot::Level::Warn), "stored centrally");
    // The filtered count reaches the shared counter too.
    eventually("filtered count shared", Duration::from_secs(3), || async {
        godot.queue.counts().await.unwrap().filtered == 1
    })
    .await;
}

async fn logs_and_conversations_reach_dewey_through_the_proxies(kind: Kind) {
    let dewey = Dewey::start().await;
    let godot = Godot::start(kind, &dewey.url, true).await;
    let c = &godot.client;
    let mut ids = Vec::new();
    for i in 0..20 {
        let level = ["DEBUG", "INFO", "WARN", "ERROR"][i % 4];
        let args = json!({"component": "proxy", "level": level, "message": format!("entry {i}"), "trace_id": "t-1",
            "data": {"i": i}});
        let logged: Logged = ok(c, "logger_log", args).await;
        ids.push(logged.id.unwrap());
    }
    eventually("all 20 entries stored", Duration::from_secs(20), || async {
        let r: Value = ok(c, "logger_query", json!({"component": "proxy", "limit": 1000})).await;
        r["count"] == 20
    })
    .await;
    let r: Value = ok(c, "logger_query", json!({"trace_id": "t-1", "level": "warn"})).await;
    assert_eq!(r["count"], 10, "WARN and ERROR only: {r}");
    let stored: Vec<String> =
        r["logs"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()).collect();
    assert!(stored.iter().all(|id| ids.contains(id)), "Dewey keeps the ids Godot minted");
    assert!(r["logs"][0]["data"]["i"].is_number());
    let cleared: Value = ok(c, "logger_clear", json!({"component": "proxy"})).await;
    assert_eq!(cleared["deleted"], 20);
    let message = fails(c, "logger_clear", json!({})).await;
    assert!(message.contains("give `component` and/or `before_time`"), "Dewey's own words: {message}");

    let conversation: Value = ok(c, "conversation_begin", json!({"session_id": "s1", "metadata": {"k": 1}})).await;
    let id = conversation["conversation_id"].as_str().unwrap().to_owned();
    let stored: Value = ok(
        c,
        "conversation_store_message",
        json!({"conversation_id": id, "role": "user", "content": "hello", "metadata": {"model": "m"}}),
    )
    .await;
    assert_eq!(stored["turn_number"], 1);
    let bulk: Value = ok(
        c,
        "conversation_store_messages_bulk",
        json!({"conversation_id": id, "messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "bye"}]}),
    )
    .await;
    assert_eq!((bulk["messages_stored"].as_i64(), bulk["last_turn"].as_i64()), (Some(2), Some(3)));
    let message =
        fails(c, "conversation_store_message", json!({"conversation_id": "nope", "role": "user", "content": "x"}))
            .await;
    assert!(message.contains("`conversation_id` is not a UUID"), "{message}");
    let message =
        fails(c, "conversation_store_message", json!({"conversation_id": id, "role": "robot", "content": "x"})).await;
    assert!(message.contains("role"), "{message}");
    let stats: Stats = ok(c, "logger_stats", json!({})).await;
    assert_eq!((stats.counts.accepted, stats.counts.delivered, stats.counts.depth), (20, 20, 0));
    assert!(stats.counts.last_delivery_at.is_some());
}

async fn an_entry_dewey_refuses_goes_to_the_dead_letters_and_the_rest_arrives(kind: Kind) {
    let dewey = Dewey::start().await;
    let godot = Godot::start(kind, &dewey.url, false).await;
    let c = &godot.client;
    // Entries the facade would refuse, queued by a producer that skipped its
    // checks (or an older one): Dewey must refuse them as invalid input, and
    // the worker must not retry them for ever.
    let good = |i: usize| json!({"id": uuid::Uuid::now_v7(), "component": "dl", "level": "INFO", "message": format!("good {i}")});
    let mut payloads: Vec<String> = (0..10).map(|i| good(i).to_string()).collect();
    payloads[3] =
        json!({"id": uuid::Uuid::now_v7(), "component": "dl", "level": "INFO", "message": "bad\u{0}nul"}).to_string();
    payloads[7] = json!({"component": "dl", "level": "FATAL", "message": "bad level"}).to_string();
    payloads.push("{ not json".to_owned());
    godot.queue.push(payloads).await.unwrap();
    let _worker = tokio::spawn(godot::worker::run(godot.queue.clone(), godot.config.clone(), godot.worker.clone()));
    eventually("the good entries stored and the bad set aside", Duration::from_secs(20), || async {
        let s = godot.queue.counts().await.unwrap();
        s.delivered == 8 && s.dead_lettered == 3
    })
    .await;
    let r: Value = ok(c, "logger_query", json!({"component": "dl"})).await;
    assert_eq!(r["count"], 8);
    let dead: DeadLetters = ok(c, "logger_dead_letters", json!({})).await;
    assert_eq!(dead.count, 3);
    let reasons: Vec<&str> = dead.dead_letters.iter().map(|d| d.error.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("NUL character")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("FATAL")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("not a JSON log entry")), "{reasons:?}");
    let nul = dead.dead_letters.iter().find(|d| d.error.contains("NUL")).unwrap();
    assert_eq!(nul.entry["message"], "bad\u{0}nul", "the entry is kept as it was queued");
    let stats: Stats = ok(c, "logger_stats", json!({})).await;
    assert_eq!((stats.counts.depth, stats.counts.dead_letters), (0, 3));
}

async fn dewey_unreachable_fails_the_proxies_at_once_and_logging_goes_on(kind: Kind) {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("ws://127.0.0.1:{port}/");
    let godot = Godot::start(kind, &url, true).await;
    let c = &godot.client;
    for (tool, args) in
        [("logger_query", json!({})), ("logger_clear", json!({"component": "x"})), ("conversation_begin", json!({}))]
    {
        let started = Instant::now();
        let message = fails(c, tool, args).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{tool} took {:?}", started.elapsed());
        assert!(message.contains(&url) && message.contains("unreachable"), "{tool}: {message}");
    }
    let logged: Logged = ok(c, "logger_log", json!({"component": "x", "level": "INFO", "message": "kept"})).await;
    assert_eq!(logged.status, "ok", "the queue is the buffer");
    eventually("the worker reports Dewey unreachable", Duration::from_secs(10), || async {
        let stats: Stats = ok(c, "logger_stats", json!({})).await;
        stats.counts.last_error.is_some_and(|e| e.contains(&url))
    })
    .await;
    let stats: Stats = ok(c, "logger_stats", json!({})).await;
    assert_eq!((stats.counts.depth, stats.counts.delivered), (1, 0), "kept until Dewey is back");
}

#[tokio::test]
async fn the_catalog_keeps_the_seeds_names_and_required_lists() {
    let godot = Godot::start(Kind::Embedded, "ws://127.0.0.1:9/", false).await;
    let tools = godot.client.list_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "conversation_begin",
            "conversation_store_message",
            "conversation_store_messages_bulk",
            "logger_clear",
            "logger_dead_letters",
            "logger_log",
            "logger_query",
            "logger_set_level",
            "logger_stats",
        ]
    );
    let schema = |name: &str| tools.iter().find(|t| t.name == name).unwrap().input_schema.clone();
    let required = |name: &str| {
        let mut r: Vec<String> = serde_json::from_value(schema(name)["required"].clone()).unwrap_or_default();
        r.sort();
        r
    };
    assert_eq!(required("logger_log"), ["component", "level", "message"]);
    assert_eq!(required("logger_set_level"), ["component", "level"]);
    assert_eq!(required("conversation_store_message"), ["content", "conversation_id", "role"]);
    for optional_only in ["logger_query", "logger_clear", "conversation_begin", "conversation_store_messages_bulk"] {
        assert!(required(optional_only).is_empty(), "{optional_only}");
    }
    let levels = json!(["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]);
    assert_eq!(schema("logger_log")["properties"]["level"]["enum"], levels);
    assert_eq!(schema("logger_set_level")["properties"]["level"]["enum"], levels);
    assert_eq!(schema("logger_log")["properties"]["data"]["type"], "object");
    assert_eq!(schema("logger_query")["properties"]["limit"]["default"], 100);
    let roles = schema("conversation_store_message")["properties"]["role"]["enum"].clone();
    assert_eq!(roles, json!(["user", "assistant", "system", "tool"]));
}

/// The worker sets entries aside only when Dewey refuses the input. The
/// texts it judges are the ones a real Dewey writes, so a change of wording
/// on either side fails here rather than dead-lettering valid logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_tells_deweys_refusals_of_the_input_from_its_failures() {
    use godot::worker::{named_index, refuses_input};
    let dewey = Dewey::start().await;
    let c = Client::connect(&dewey.url).await.unwrap();
    async fn refusal(c: &Client, logs: &[Value]) -> String {
        fails(c, "dewey_store_logs_batch", json!({ "logs": logs })).await
    }
    let ok = json!({"component": "c", "level": "INFO", "message": "fine"});
    let with = |extra: Value| {
        let mut entry = ok.clone();
        entry.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        entry
    };
    let mut no_message = ok.clone();
    no_message.as_object_mut().unwrap().remove("message");
    let cases: Vec<(Vec<Value>, Option<usize>)> = vec![
        (vec![ok.clone(), with(json!({"message": "a\u{0}b"}))], Some(1)),
        (vec![ok.clone(), ok.clone(), with(json!({"data": {"k": ["\u{0}"]}}))], Some(2)),
        (vec![ok.clone(), with(json!({"component": " "}))], Some(1)),
        (vec![ok.clone(), with(json!({"created_at": "noon"}))], Some(1)),
        (vec![with(json!({"id": "nope"}))], Some(0)),
        // Refused by the runtime before Dewey's code runs.
        (vec![ok.clone(), ok.clone(), with(json!({"level": "FATAL"}))], Some(2)),
        (vec![ok.clone(), with(json!({"message": 5}))], Some(1)),
        (vec![ok.clone(), no_message], Some(1)),
        (vec![ok.clone(), json!("not an entry")], Some(1)),
        // No entry to blame: the worker halves the batch.
        (vec![ok.clone(); dewey::log_batch::MAX_LOG_BATCH + 1], None),
    ];
    for (logs, blamed) in cases {
        let text = refusal(&c, &logs).await;
        assert!(refuses_input(&text), "a refusal of the input read as a failure: {text}");
        assert_eq!(named_index(&text, logs.len()), blamed, "{text}");
    }
    // A storage error: the table gone from under Dewey. Retried, never set aside.
    let db = rusqlite::Connection::open(dewey.database()).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch("DROP TABLE logs").unwrap();
    let text = refusal(&c, std::slice::from_ref(&ok)).await;
    assert!(text.starts_with("storage error"), "{text}");
    assert!(!refuses_input(&text), "{text}");
}

/// Stands in for a Dewey with a bug: its `dewey_store_logs_batch` panics,
/// which the runtime answers with an `isError` that is not about the input.
/// (No real Dewey panics on purpose; this is the one failure that needs a
/// server of its own.)
#[mcp_runtime::mcp_tool(name = "dewey_store_logs_batch")]
async fn panicking_store_logs_batch(
    calls: mcp_runtime::State<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    /// Log entries
    logs: Vec<Value>,
) -> Result<Value, mcp_runtime::ToolError> {
    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    panic!("a bug storing {} entries", logs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dewey_that_fails_otherwise_than_on_the_input_gets_the_batch_again_and_nothing_is_set_aside() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bound = mcp_runtime::Server::builder("buggy-dewey", "0")
        .tool::<panicking_store_logs_batch>()
        .state(calls.clone())
        .log_to_godot(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let url = format!("ws://{}/", bound.local_addr());
    let _stop = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    let godot = Godot::start(Kind::Embedded, &url, false).await;
    let good = |i: usize| json!({"id": uuid::Uuid::now_v7(), "component": "buggy", "level": "INFO", "message": format!("good {i}")});
    godot.queue.push((0..10).map(|i| good(i).to_string()).collect()).await.unwrap();
    let _worker = tokio::spawn(godot::worker::run(godot.queue.clone(), godot.config.clone(), godot.worker.clone()));
    eventually("three attempts, each failing with the panic", Duration::from_secs(20), || async {
        let s = godot.queue.counts().await.unwrap();
        calls.load(std::sync::atomic::Ordering::SeqCst) >= 3
            && s.last_error.is_some_and(|e| e.contains("the tool panicked"))
    })
    .await;
    let s = godot.queue.counts().await.unwrap();
    assert_eq!((s.dead_lettered, s.delivered, s.depth), (0, 0, 10), "kept for the next attempt: {s:?}");
}
