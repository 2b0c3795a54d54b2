//! `godot-bench`: Godot's throughput next to its references, all in one run
//! on this machine, every part real (release binaries, redis-server,
//! PostgreSQL at its default durability). Prints Markdown tables.
//!
//! `cargo build --release --bins -p godot -p dewey -p mcp-examples --features godot/bench && target/release/godot-bench [--quick]`
//!
//! 1. `logger_log` calls/s at 32 connections x 4 in flight (Redis mode,
//!    facade only), beside the runtime's bare `echo` (the `hello` binary)
//!    and the seeds' pattern (LPUSH + LTRIM per call, one request at a time
//!    per connection: `bench/seed_godot.py`), in alternating slices.
//! 2. The worker draining a backlog of 1,000,000 entries from Redis into
//!    Dewey on PostgreSQL with fsync and synchronous_commit on.
//! 3. Dewey's own ingest (`dewey_store_logs_batch`, 4 clients, batches of
//!    1,000) at the default durability, and with it off (labelled).
//! 4. The embedded queue end to end: `logger_log` at 32 x 4 into `godot`
//!    (facade and worker, SQLite queue) until everything is in Dewey.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use godot::config::Config;
use godot::{Level, LogEntry, Queue};
use hdrhistogram::Histogram;
use mcp_runtime::client::Client;
use mcp_tests::{TestPostgres, TestRedis};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const CONNECTIONS: usize = 32;
const IN_FLIGHT: usize = 4;

struct Options {
    rounds: usize,
    slice: Duration,
    backlog: usize,
    embedded: usize,
    ingest: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let options = if quick {
        Options { rounds: 1, slice: Duration::from_secs(2), backlog: 100_000, embedded: 50_000, ingest: 50_000 }
    } else {
        Options { rounds: 3, slice: Duration::from_secs(4), backlog: 1_000_000, embedded: 200_000, ingest: 200_000 }
    };
    println!("# godot-bench{}\n", if quick { " (--quick)" } else { "" });
    println!("machine: {} cores; other work on it is not controlled: read ratios, and repeat.\n", cores());
    let redis = tokio::task::spawn_blocking(TestRedis::start).await?;
    let durable = tokio::task::spawn_blocking(TestPostgres::start_durable).await?;
    let redis_port = redis.port().to_string();

    // 1. logger_log next to echo and the seeds' pattern.
    let hello = Server::start("hello", &[], &[]).await?;
    let facade = Server::start(
        "godot",
        &["serve"],
        &[
            ("REDIS_URL", &redis.url()),
            ("LOG_QUEUE_NAME", "bench-log"),
            ("MAX_QUEUE_SIZE", "100000000"),
            ("DEWEY_MCP_URL", "ws://127.0.0.1:9/"),
        ],
    )
    .await?;
    let seed = Server::start_program(
        &peers().join("py-godot-seed/bin/python"),
        &[script("seed_godot.py").to_str().unwrap(), "127.0.0.1", &redis_port, "bench-seed", "100000000"],
        &[],
    )
    .await?;
    // The raw generator (pre-built frames, one flush per batch) for the
    // Rust servers; the runtime's `Client` as generator for the seeds'
    // Python server (the raw generator's batched frames left its
    // connections unanswered) and for `logger_log` again, so the ratio
    // compares like with like.
    let contenders: [(&str, &Server, Driver); 4] = [
        ("runtime `echo` (hello), raw generator", &hello, Driver::Raw(echo_frame)),
        ("Godot `logger_log` (Redis), raw generator", &facade, Driver::Raw(log_frame)),
        ("Godot `logger_log` (Redis), `Client` generator", &facade, Driver::Client),
        ("seeds' pattern (Python, LPUSH + LTRIM), `Client` generator", &seed, Driver::Client),
    ];
    let mut results: Vec<Vec<Measured>> = vec![Vec::new(); contenders.len()];
    for round in 0..options.rounds {
        for (n, (name, server, driver)) in contenders.iter().enumerate() {
            let warmup = Duration::from_millis(500);
            let m = match driver {
                Driver::Raw(frame) => load(server.addr, *frame, warmup, options.slice).await?,
                Driver::Client => load_with_client(&server.url(), warmup, options.slice).await?,
            };
            eprintln!("round {}: {name}: {:.0} calls/s, {} connections stalled", round + 1, m.rate, m.stalled);
            results[n].push(m);
        }
    }
    println!("## `logger_log` at {CONNECTIONS} connections x {IN_FLIGHT} in flight\n");
    println!(
        "Median of {} slices of {:?} each, contenders alternating; p50/p99 from the median slice.\n",
        options.rounds, options.slice
    );
    println!("| server, load generator | calls/s | p50 / p99 µs | calls stalled (all slices) |");
    println!("| --- | --: | --: | --: |");
    let medians: Vec<Measured> = results.iter().map(|r| median(r)).collect();
    for (n, ((name, ..), m)) in contenders.iter().zip(&medians).enumerate() {
        let stalled: usize = results[n].iter().map(|r| r.stalled).sum();
        println!("| {name} | {} | {} / {} | {stalled} |", thousands(m.rate), m.p50, m.p99);
    }
    println!(
        "\n`logger_log` / seeds' pattern, same generator: {:.1}x. `logger_log` / `echo`, raw generator: {:.0}%.",
        medians[2].rate / medians[3].rate,
        100.0 * medians[1].rate / medians[0].rate
    );
    println!(
        "\nGodot facade peak RSS {} MiB; Redis used memory peak {}.\n",
        rss_mib(facade.pid()),
        redis_memory(&redis)
    );
    drop((hello, facade, seed));

    // 3. Dewey's ingest, durable and not.
    println!("## Dewey ingest: `dewey_store_logs_batch`, 4 clients, batches of 1,000\n");
    println!("| PostgreSQL | logs/s |");
    println!("| --- | --: |");
    durable.create_database("ingest");
    let dewey = Server::start("dewey", &[], &[("DATABASE_URL", &durable.url_for("ingest"))]).await?;
    let rate = ingest(&dewey.url(), options.ingest).await?;
    println!("| default durability (fsync, synchronous_commit on) | {} |", thousands(rate));
    drop(dewey);
    let fast = tokio::task::spawn_blocking(TestPostgres::start).await?;
    let dewey = Server::start("dewey", &[], &[("DATABASE_URL", &fast.url())]).await?;
    let rate = ingest(&dewey.url(), options.ingest).await?;
    println!("| fsync, synchronous_commit, full_page_writes off (not what a user runs) | {} |\n", thousands(rate));
    drop((dewey, fast));

    // 2. The worker draining a backlog.
    let dewey = Server::start("dewey", &[], &[("DATABASE_URL", &durable.url())]).await?;
    let mut config = Config::redis(redis.url(), "bench-drain");
    config.max_queue_size = options.backlog as u64 * 2;
    let queue = Queue::open(&config)?;
    let pushed_at = Instant::now();
    fill(&queue, options.backlog).await?;
    let push_rate = options.backlog as f64 / pushed_at.elapsed().as_secs_f64();
    println!("## Worker drain: a backlog of {} entries from Redis into Dewey\n", thousands(options.backlog as f64));
    println!("PostgreSQL at its default durability; backlog queued at {} entries/s.\n", thousands(push_rate));
    println!("| BATCH_SIZE | WORKER_CONCURRENCY | logs/s | worker peak RSS MiB |");
    println!("| --: | --: | --: | --: |");
    let (batch, lanes) = ("1000", "4");
    let started = Instant::now();
    let worker = Worker::start(&[
        ("REDIS_URL", &redis.url()),
        ("LOG_QUEUE_NAME", "bench-drain"),
        ("DEWEY_MCP_URL", &dewey.url()),
        ("BATCH_SIZE", batch),
        ("WORKER_CONCURRENCY", lanes),
    ])?;
    let delivered = wait_delivered(&queue, options.backlog as u64, Duration::from_secs(1800)).await?;
    let rate = delivered as f64 / started.elapsed().as_secs_f64();
    println!("| {batch} | {lanes} | {} | {} |\n", thousands(rate), rss_mib(worker.pid()));
    drop((worker, dewey));

    // 4. The embedded queue end to end.
    durable.create_database("embedded");
    let dewey = Server::start("dewey", &[], &[("DATABASE_URL", &durable.url_for("embedded"))]).await?;
    let dir = tempfile::tempdir()?;
    let godot = Server::start(
        "godot",
        &[],
        &[("GODOT_DATA_DIR", dir.path().to_str().unwrap()), ("DEWEY_MCP_URL", &dewey.url())],
    )
    .await?;
    let started = Instant::now();
    let sent = send_n(godot.addr, options.embedded).await?;
    let facade_rate = sent as f64 / started.elapsed().as_secs_f64();
    let client = Client::connect(&godot.url()).await?;
    loop {
        let stats: Value = client.call("logger_stats", json!({})).await?;
        if stats["delivered"].as_u64() >= Some(sent) {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(1800), "the embedded run did not finish: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    println!("## Embedded queue end to end (SQLite, synchronous=FULL) into Dewey on durable PostgreSQL\n");
    println!("| entries | `logger_log` accepted/s | end to end logs/s | godot peak RSS MiB |");
    println!("| --: | --: | --: | --: |");
    println!(
        "| {} | {} | {} | {} |",
        thousands(sent as f64),
        thousands(facade_rate),
        thousands(rate),
        rss_mib(godot.pid())
    );
    Ok(())
}

type Frame = fn(u64) -> String;

enum Driver {
    Raw(Frame),
    Client,
}

fn echo_frame(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello, bench"}}}}}}"#
    )
}

/// A typical entry: a short message, a trace id, a little data.
fn log_frame(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"logger_log","arguments":{{"component":"bench","level":"INFO","message":"request {id} handled in 12 ms","trace_id":"trace-{}","data":{{"route":"/v1/items","status":200}}}}}}}}"#,
        id / 16
    )
}

#[derive(Clone)]
struct Measured {
    /// Connections (raw generator) or calls (`Client`) left unanswered.
    stalled: usize,
    rate: f64,
    p50: u64,
    p99: u64,
}

fn median(slices: &[Measured]) -> Measured {
    let mut sorted = slices.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted[sorted.len() / 2].clone()
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connect(addr: std::net::SocketAddr, initialize: bool) -> anyhow::Result<Ws> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream).await?;
    if initialize {
        ws.send(Message::text(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"godot-bench","version":"0"}}}"#,
        ))
        .await?;
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message? {
                anyhow::ensure!(text.contains(r#""result""#), "initialize failed: {text}");
                break;
            }
        }
        ws.send(Message::text(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)).await?;
    }
    Ok(ws)
}

/// The numeric top-level id of a response (the first unescaped `"id":`).
fn response_id(text: &str) -> Option<u64> {
    let start = text.find(r#""id":"#)? + 5;
    text[start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(None, |n, d| Some(n.unwrap_or(0) * 10 + (d - b'0') as u64))
}

fn failed(text: &str) -> bool {
    text.contains(r#""isError":true"#) || text.contains(r#""error":{"#)
}

/// The write half of a connection as a task: frames sent to it are written
/// in batches, one flush for everything queued, so the generator spends its
/// CPU on sockets rather than on syscalls per frame.
fn writer(ws: Ws) -> (tokio::sync::mpsc::UnboundedSender<String>, futures_util::stream::SplitStream<Ws>) {
    let (mut sink, stream) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.feed(Message::text(frame)).await.is_err() {
                return;
            }
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(Message::text(frame)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    (tx, stream)
}

/// Closed loop: `IN_FLIGHT` calls outstanding on each of `CONNECTIONS`
/// connections; counts calls sent and answered inside the window.
async fn load(
    addr: std::net::SocketAddr,
    frame: Frame,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Measured> {
    // Every connection open before any load starts.
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(writer(connect(addr, true).await?));
    }
    let start = Instant::now() + warmup;
    let deadline = start + window;
    let mut tasks = tokio::task::JoinSet::new();
    for (c, (tx, mut stream)) in connections.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut sent: HashMap<u64, Instant> = HashMap::new();
            let mut next = 1 + (c as u64) * 1_000_000_000;
            for _ in 0..IN_FLIGHT {
                sent.insert(next, Instant::now());
                tx.send(frame(next))?;
                next += 1;
            }
            while !sent.is_empty() {
                // A connection whose calls stop being answered is counted
                // as stalled (the seeds' pattern does that under load) and
                // the others' calls are still measured.
                let Ok(message) = tokio::time::timeout_at(deadline + Duration::from_secs(10), stream.next()).await
                else {
                    return anyhow::Ok((histogram, true));
                };
                let Some(message) = message else { anyhow::bail!("the server closed the connection") };
                let Message::Text(text) = message? else { continue };
                let Some(id) = response_id(&text) else { continue };
                anyhow::ensure!(!failed(&text), "a call failed: {text}");
                let Some(at) = sent.remove(&id) else { continue };
                let now = Instant::now();
                if at >= start && now <= deadline {
                    histogram.saturating_record(((now - at).as_micros() as u64).max(1));
                }
                if now < deadline {
                    sent.insert(next, Instant::now());
                    tx.send(frame(next))?;
                    next += 1;
                }
            }
            anyhow::Ok((histogram, false))
        });
    }
    merge(tasks, window).await
}

/// The same closed loop through the runtime's `Client`: `IN_FLIGHT` tasks
/// per connection, each calling `logger_log` in turn. A call unanswered
/// within 10 s counts as stalled.
/// One window's figures from the connections' latency histograms: calls
/// per second, p50 and p99, and how many connections stalled.
async fn merge(
    mut tasks: tokio::task::JoinSet<anyhow::Result<(Histogram<u64>, bool)>>,
    window: Duration,
) -> anyhow::Result<Measured> {
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut stalled = 0;
    while let Some(joined) = tasks.join_next().await {
        let (histogram, stuck) = joined??;
        total.add(histogram)?;
        stalled += usize::from(stuck);
    }
    Ok(Measured {
        stalled,
        rate: total.len() as f64 / window.as_secs_f64(),
        p50: total.value_at_quantile(0.5),
        p99: total.value_at_quantile(0.99),
    })
}

async fn load_with_client(url: &str, warmup: Duration, window: Duration) -> anyhow::Result<Measured> {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        clients.push(Client::builder(url).call_timeout(Duration::from_secs(10)).connect().await?);
    }
    let start = Instant::now() + warmup;
    let deadline = start + window;
    let mut tasks = tokio::task::JoinSet::new();
    for (c, client) in clients.into_iter().enumerate() {
        for k in 0..IN_FLIGHT {
            let client = client.clone();
            tasks.spawn(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let id = (c * IN_FLIGHT + k) as u64 * 1_000_000_000 + n;
                    let args = json!({"component": "bench", "level": "INFO", "message": format!("request {id} handled in 12 ms"),
                        "trace_id": format!("trace-{}", id / 16), "data": {"route": "/v1/items", "status": 200}});
                    let at = Instant::now();
                    match client.call_tool("logger_log", args).await {
                        Ok(r) if !r.is_error => {}
                        Ok(r) => anyhow::bail!("a call failed: {}", r.text()),
                        Err(e) if e.is_timeout() => return Ok((histogram, true)),
                        Err(e) => return Err(e.into()),
                    }
                    let now = Instant::now();
                    if at >= start && now <= deadline {
                        histogram.saturating_record(((now - at).as_micros() as u64).max(1));
                    }
                }
                anyhow::Ok((histogram, false))
            });
        }
    }
    merge(tasks, window).await
}

/// Sends exactly `n` `logger_log` calls at 32 x 4 and returns how many were queued.
async fn send_n(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<u64> {
    let per = n / CONNECTIONS;
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(writer(connect(addr, true).await?));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (c, (tx, mut stream)) in connections.into_iter().enumerate() {
        tasks.spawn(async move {
            let first = 1 + (c * per) as u64;
            let (mut next, end) = (first, first + per as u64);
            let mut open = 0;
            let mut done = 0u64;
            while next < end && open < IN_FLIGHT {
                tx.send(log_frame(next))?;
                next += 1;
                open += 1;
            }
            while open > 0 {
                let Some(message) = stream.next().await else { anyhow::bail!("the server closed the connection") };
                let Message::Text(text) = message? else { continue };
                anyhow::ensure!(!failed(&text), "a call failed: {text}");
                open -= 1;
                done += 1;
                if next < end {
                    tx.send(log_frame(next))?;
                    next += 1;
                    open += 1;
                }
            }
            anyhow::Ok(done)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined??;
    }
    Ok(done)
}

/// Queues `n` entries straight into the queue (the backlog a Dewey outage leaves).
async fn fill(queue: &Queue, n: usize) -> anyhow::Result<()> {
    const CHUNK: usize = 5_000;
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let queue = queue.clone();
        tasks.spawn(async move {
            let mut i = lane * CHUNK;
            while i < n {
                let end = (i + CHUNK).min(n);
                let payloads: Vec<String> = (i..end)
                    .map(|k| {
                        let data = json!({"route": "/v1/items", "status": 200, "n": k}).as_object().cloned();
                        let message = format!("request {k} handled in {} ms", k % 97);
                        LogEntry::new(
                            format!("service-{}", k % 8),
                            Level::Info,
                            message,
                            Some(format!("t-{}", k / 16)),
                            data,
                        )
                        .expect("a valid entry")
                        .to_json()
                    })
                    .collect();
                queue.push(payloads).await?;
                i += 4 * CHUNK;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

async fn wait_delivered(queue: &Queue, n: u64, limit: Duration) -> anyhow::Result<u64> {
    let started = Instant::now();
    loop {
        let counts = queue.counts().await?;
        if counts.delivered >= n {
            return Ok(counts.delivered);
        }
        anyhow::ensure!(started.elapsed() < limit, "only {} of {n} delivered within {limit:?}", counts.delivered);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `total` entries through `dewey_store_logs_batch` from 4 clients, 1,000 per call.
async fn ingest(url: &str, total: usize) -> anyhow::Result<f64> {
    const BATCH: usize = 1000;
    let batches: Vec<Value> = (0..total / BATCH)
        .map(|b| {
            let logs: Vec<Value> = (0..BATCH)
                .map(|i| {
                    let k = b * BATCH + i;
                    json!({"id": uuid::Uuid::now_v7(), "component": format!("service-{}", k % 8), "level": "INFO",
                        "message": format!("request {k} handled in {} ms", k % 97), "trace_id": format!("t-{}", k / 16),
                        "data": {"route": "/v1/items", "status": 200, "n": k}, "created_at": chrono::Utc::now().to_rfc3339()})
                })
                .collect();
            json!({"logs": logs})
        })
        .collect();
    let batches = std::sync::Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, batches) = (Client::connect(url).await?, batches.clone());
        tasks.spawn(async move {
            loop {
                let Some(batch) = batches.lock().unwrap().pop() else { return anyhow::Ok(()) };
                let r = client.call_tool("dewey_store_logs_batch", batch).await?;
                anyhow::ensure!(!r.is_error, "{}", r.text());
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok((total / BATCH * BATCH) as f64 / started.elapsed().as_secs_f64())
}

/// A server process started from a release binary; killed when dropped.
struct Server {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Server {
    async fn start(name: &str, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Server> {
        Server::start_program(&sibling(name), args, envs).await
    }

    async fn start_program(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Server> {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("MCP_HOST", "127.0.0.1")
            .env("MCP_PORT", "0")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??.unwrap_or_default();
        let addr = line
            .strip_prefix("listening on ws://")
            .ok_or_else(|| anyhow::anyhow!("{} printed {line:?}", program.display()))?
            .trim_end_matches('/')
            .parse()?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { child, addr })
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

/// `godot worker`; killed when dropped.
struct Worker {
    child: Child,
}

impl Worker {
    fn start(envs: &[(&str, &str)]) -> anyhow::Result<Worker> {
        let mut command = Command::new(sibling("godot"));
        command.arg("worker").env("RUST_LOG", "error").stdout(Stdio::null()).kill_on_drop(true);
        for (k, v) in envs {
            command.env(k, v);
        }
        Ok(Worker { child: command.spawn()? })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

/// A binary built next to this one (`target/release/NAME`).
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().expect("own path").parent().expect("a directory").join(name)
}

fn peers() -> PathBuf {
    std::env::var_os("MCP_TEST_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-peers"))
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench").join(name)
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn rss_mib(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or("?".into(), |kb| format!("{:.0}", kb / 1024.0))
}

fn redis_memory(redis: &TestRedis) -> String {
    let info = redis.command(&["INFO", "memory"]);
    info.lines().find_map(|l| l.strip_prefix("used_memory_peak_human:")).unwrap_or("?").trim().to_owned()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
