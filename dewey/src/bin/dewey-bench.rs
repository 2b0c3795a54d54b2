//! `dewey-bench`: Dewey's throughput and latency, measured through the tools
//! over WebSocket with the runtime's client, on a private PostgreSQL and on
//! SQLite. Prints Markdown tables.
//!
//! `cargo run --release --features bench --bin dewey-bench [-- --quick] [-- --backend postgres|sqlite]`
//!
//! Per backend: 1,000-entry `dewey_store_logs_batch` and 1,000-message
//! `dewey_store_messages_bulk` calls (one client, then four at once while
//! filling the tables), and `dewey_search` / `dewey_query_logs` latency with
//! 10^4, 10^5 and 10^6 rows stored (`--quick` stops at 10^5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dewey::{MessageFiles, Storage, StorageConfig};
use hdrhistogram::Histogram;
use mcp_runtime::ShutdownHandle;
use mcp_runtime::client::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const BATCH: usize = 1000;
const FILL_CLIENTS: usize = 4;
const VOCABULARY: usize = 10_000;
const WORDS_PER_MESSAGE: usize = 30;
const COMPONENTS: [&str; 8] = ["godot", "dewey", "fiedler", "horace", "gates", "playfair", "marco", "relay"];
const READ_SAMPLES: usize = 200;
const COMMON_SAMPLES: usize = 10;
/// Calls measured with a single client, on empty tables; they are the first
/// 10,000 rows of the first tier.
const WARMUP_BATCHES: usize = 10;

/// Pronounceable pseudo-words, so both engines tokenize and stem them as
/// ordinary text; drawn with a Zipf(1) distribution like natural language.
struct Words {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Words {
    fn new() -> Words {
        const SYLLABLES: [&str; 16] =
            ["ka", "to", "ri", "me", "lu", "sa", "no", "vi", "de", "po", "fa", "gu", "ze", "bi", "ho", "ny"];
        let words: Vec<String> = (0..VOCABULARY)
            .map(|i| {
                let mut n = i + 16 * 16;
                let mut w = String::new();
                while n > 0 {
                    w.push_str(SYLLABLES[n % 16]);
                    n /= 16;
                }
                w
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Words { words, cumulative }
    }

    fn zipf<'a>(&'a self, rng: &mut StdRng) -> &'a str {
        let x = rng.random::<f64>() * self.cumulative.last().unwrap();
        let i = self.cumulative.partition_point(|c| *c < x).min(VOCABULARY - 1);
        &self.words[i]
    }

    /// A query word: uniform over the vocabulary, so most are mid- or
    /// low-frequency words, as real searches are.
    fn uniform<'a>(&'a self, rng: &mut StdRng) -> &'a str {
        &self.words[rng.random_range(0..VOCABULARY)]
    }

    fn sentence(&self, rng: &mut StdRng, n: usize) -> String {
        (0..n).map(|_| self.zipf(rng)).collect::<Vec<_>>().join(" ")
    }
}

/// Logs span the last 24 hours in arrival order, as a producer's queue
/// delivers them: entry k of the whole run is stamped 86.4 ms after entry
/// k-1 (10^6 entries = one day), give or take a second of jitter.
fn log_time(batch_no: usize, i: usize, rng: &mut StdRng) -> chrono::DateTime<Utc> {
    static START: std::sync::OnceLock<chrono::DateTime<Utc>> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| Utc::now() - chrono::Duration::days(1));
    let k = (batch_no * BATCH + i) as i64;
    start + chrono::Duration::microseconds(k * 86_400) + chrono::Duration::milliseconds(rng.random_range(-1000..1000))
}

fn log_batch(words: &Words, rng: &mut StdRng, batch_no: usize) -> Value {
    let logs: Vec<Value> = (0..BATCH)
        .map(|i| {
            let level = match rng.random_range(0..100) {
                0..30 => "TRACE",
                30..60 => "DEBUG",
                60..85 => "INFO",
                85..95 => "WARN",
                _ => "ERROR",
            };
            json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "component": COMPONENTS[rng.random_range(0..COMPONENTS.len())],
                "level": level,
                "message": format!("tool call {} {}", words.sentence(rng, 8), i),
                "trace_id": format!("trace-{batch_no}-{}", i / 10),
                "data": {"batch": batch_no, "i": i},
                "created_at": log_time(batch_no, i, rng).to_rfc3339(),
            })
        })
        .collect();
    json!({ "logs": logs })
}

fn message_batch(words: &Words, rng: &mut StdRng, batch_no: usize) -> Value {
    let messages: Vec<Value> = (0..BATCH)
        .map(|i| {
            json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": words.sentence(rng, WORDS_PER_MESSAGE),
            })
        })
        .collect();
    json!({ "messages": messages, "session_id": format!("bench-{}", batch_no % 100) })
}

struct Running {
    url: String,
    shutdown: ShutdownHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

async fn serve(storage: Storage) -> Running {
    let bound = dewey::server(storage, MessageFiles::disabled()).bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", bound.local_addr());
    let shutdown = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    Running { url, shutdown }
}

async fn client(url: &str) -> Client {
    Client::builder(url).call_timeout(Duration::from_secs(300)).connect().await.expect("connect")
}

async fn call(client: &Client, tool: &str, args: &impl serde::Serialize) -> Value {
    let result = client.call_tool(tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(!result.is_error, "{tool} failed: {}", result.text());
    result.structured_content.expect("structured output")
}

/// What one fill phase measured. Payloads are generated between rounds,
/// outside the clock and the CPU meter: producing log entries is the
/// producer's cost, not Dewey's.
struct Fill {
    rate: f64,
    latency: Histogram<u64>,
    /// CPU seconds while sending: this process (client + Dewey), PostgreSQL.
    own_cpu: f64,
    pg_cpu: f64,
}

/// Batches generated ahead of each sending round (about 250 KB each).
const ROUND: usize = 40;

/// Sends `batches` batches (numbered from `first`) with `clients` clients
/// at once.
async fn fill(
    url: &str,
    tool: &'static str,
    first: usize,
    batches: usize,
    clients: usize,
    words: &Words,
    meter: &CpuMeter,
) -> Fill {
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(Arc::new(client(url).await));
    }
    let mut rng = StdRng::seed_from_u64(first as u64 * 7919 + batches as u64);
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let (mut seconds, mut own_cpu, mut pg_cpu) = (0.0, 0.0, 0.0);
    let mut done = 0;
    while done < batches {
        let round = ROUND.min(batches - done);
        let payloads: Vec<Box<serde_json::value::RawValue>> = (0..round)
            .map(|k| {
                let args = match tool {
                    "dewey_store_logs_batch" => log_batch(words, &mut rng, first + done + k),
                    _ => message_batch(words, &mut rng, first + done + k),
                };
                serde_json::value::to_raw_value(&args).unwrap()
            })
            .collect();
        let queue = Arc::new(std::sync::Mutex::new(payloads));
        let before = meter.snapshot().await;
        let started = Instant::now();
        let tasks: Vec<_> = connections
            .iter()
            .map(|client| {
                let client = client.clone();
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut latency = Histogram::<u64>::new(3).unwrap();
                    loop {
                        let Some(args) = queue.lock().unwrap().pop() else { break latency };
                        let t = Instant::now();
                        let out = call(&client, tool, &args).await;
                        latency.record(t.elapsed().as_micros() as u64).unwrap();
                        let stored = out.get("stored").or_else(|| out.get("messages_stored")).and_then(Value::as_i64);
                        assert_eq!(stored, Some(BATCH as i64), "{tool} stored the whole batch: {out}");
                    }
                })
            })
            .collect();
        for t in tasks {
            latency.add(t.await.unwrap()).unwrap();
        }
        seconds += started.elapsed().as_secs_f64();
        let (own, pg) = meter.since(&before).await;
        own_cpu += own;
        pg_cpu += pg;
        done += round;
    }
    Fill { rate: (batches * BATCH) as f64 / seconds, latency, own_cpu, pg_cpu }
}

async fn read_latency(
    url: &str,
    words: &Words,
    seed: u64,
) -> (Histogram<u64>, Histogram<u64>, Vec<(&'static str, u64)>) {
    let client = client(url).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut search = Histogram::<u64>::new(3).unwrap();
    for _ in 0..READ_SAMPLES {
        let args = json!({"query": words.uniform(&mut rng), "limit": 20});
        let t = Instant::now();
        call(&client, "dewey_search", &args).await;
        search.record(t.elapsed().as_micros() as u64).unwrap();
    }
    let kinds: [&'static str; 5] = ["latest", "trace_id", "component+WARN", "search", "time window"];
    let mut per_kind: Vec<Histogram<u64>> = kinds.iter().map(|_| Histogram::new(3).unwrap()).collect();
    let mut query = Histogram::<u64>::new(3).unwrap();
    for n in 0..READ_SAMPLES {
        let kind = n % kinds.len();
        let args = match kind {
            0 => json!({}),
            1 => json!({"trace_id": format!("trace-{}-{}", rng.random_range(0..10), rng.random_range(0..100))}),
            2 => json!({"component": COMPONENTS[rng.random_range(0..COMPONENTS.len())], "level": "WARN"}),
            3 => json!({"search": words.uniform(&mut rng)}),
            _ => {
                let start = Utc::now() - chrono::Duration::minutes(rng.random_range(1..1400));
                json!({"start_time": start.to_rfc3339(), "end_time": (start + chrono::Duration::minutes(1)).to_rfc3339()})
            }
        };
        let t = Instant::now();
        call(&client, "dewey_query_logs", &args).await;
        let us = t.elapsed().as_micros() as u64;
        query.record(us).unwrap();
        per_kind[kind].record(us).unwrap();
    }
    let mut detail: Vec<(&'static str, u64)> =
        kinds.iter().zip(&per_kind).map(|(k, h)| (*k, h.value_at_quantile(0.5))).collect();
    // The worst case of each: the most frequent message word (in nearly every
    // message, so ranking scores nearly every row) and a word in every log.
    for (tool, args) in [
        ("dewey_search", json!({"query": words.words[0], "limit": 20})),
        ("dewey_query_logs", json!({"search": "call"})),
    ] {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for _ in 0..COMMON_SAMPLES {
            let t = Instant::now();
            call(&client, tool, &args).await;
            h.record(t.elapsed().as_micros() as u64).unwrap();
        }
        detail.push((tool, h.value_at_quantile(0.5)));
    }
    (search, query, detail)
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// CPU time (user + system) each process has used, from /proc: the machine
/// is shared, so wall-clock rates depend on the neighbours; CPU per row does
/// not.
fn cpu_times(pids: &[u32]) -> std::collections::HashMap<u32, f64> {
    let ticks = 100.0; // CLK_TCK on Linux
    pids.iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((*pid, (user + system) / ticks))
        })
        .collect()
}

/// The processes whose CPU a phase costs: this one (client and server) and
/// every PostgreSQL process of the private cluster.
struct CpuMeter {
    pg_url: Option<String>,
}

impl CpuMeter {
    async fn pids(&self) -> (Vec<u32>, Vec<u32>) {
        let mut pg = Vec::new();
        if let Some(url) = &self.pg_url {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
            let task = tokio::spawn(connection);
            let rows =
                client.query("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()", &[]).await.unwrap();
            pg = rows.iter().map(|r| r.get::<_, i32>(0) as u32).collect();
            drop(client);
            let _ = task.await;
        }
        (vec![std::process::id()], pg)
    }

    async fn snapshot(&self) -> (f64, std::collections::HashMap<u32, f64>) {
        let (own, pg) = self.pids().await;
        (cpu_times(&own).values().sum(), cpu_times(&pg))
    }

    /// CPU seconds used since `before`: (this process, PostgreSQL).
    async fn since(&self, before: &(f64, std::collections::HashMap<u32, f64>)) -> (f64, f64) {
        let (own, pg) = self.snapshot().await;
        let pg_used = pg.iter().map(|(pid, t)| t - before.1.get(pid).copied().unwrap_or(0.0)).sum();
        (own - before.0, pg_used)
    }
}

struct Report {
    ingest: Vec<String>,
    cpu: Vec<String>,
    reads: Vec<String>,
    detail: Vec<String>,
}

/// The same batches straight into the storage layer, no MCP: how much of a
/// call's time is the database's.
async fn direct_store_logs(storage: &Storage, words: &Words, batches: usize) -> (f64, Histogram<u64>) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let mut busy = Duration::ZERO;
    for n in 0..batches {
        let args = log_batch(words, &mut rng, n);
        let entries: Vec<dewey::log_batch::LogEntryInput> = serde_json::from_value(args["logs"].clone()).unwrap();
        let prepared = dewey::log_batch::prepare(entries).unwrap();
        let t = Instant::now();
        storage.store_logs(prepared).await.unwrap();
        busy += t.elapsed();
        latency.record(t.elapsed().as_micros() as u64).unwrap();
    }
    // Leave the tables empty, so the tiers below count only tool-stored rows.
    storage.clear_logs(None, Some(Utc::now() + chrono::Duration::days(1))).await.unwrap();
    ((batches * BATCH) as f64 / busy.as_secs_f64(), latency)
}

async fn bench_backend(name: &str, storage: Storage, meter: CpuMeter, tiers: &[usize], report: &mut Report) {
    let words = Words::new();
    let (rate, lat) = direct_store_logs(&storage, &words, WARMUP_BATCHES).await;
    report.ingest.push(format!(
        "| {name} | Storage::store_logs, no MCP (database time only) | 1 | {} logs/s | {} |",
        thousands(rate),
        ms(lat.value_at_quantile(0.5))
    ));
    let server = serve(storage).await;
    let url = server.url.clone();
    eprintln!("[{name}] single-client ingest");
    let logs = fill(&url, "dewey_store_logs_batch", 0, WARMUP_BATCHES, 1, &words, &meter).await;
    report.ingest.push(format!(
        "| {name} | dewey_store_logs_batch | 1 | {} logs/s | {} |",
        thousands(logs.rate),
        ms(logs.latency.value_at_quantile(0.5))
    ));
    let msgs = fill(&url, "dewey_store_messages_bulk", 0, WARMUP_BATCHES, 1, &words, &meter).await;
    report.ingest.push(format!(
        "| {name} | dewey_store_messages_bulk | 1 | {} msgs/s | {} |",
        thousands(msgs.rate),
        ms(msgs.latency.value_at_quantile(0.5))
    ));
    let mut stored = WARMUP_BATCHES * BATCH;
    for &tier in tiers {
        let batches = tier.saturating_sub(stored) / BATCH;
        eprintln!("[{name}] filling to {tier} logs and messages");
        let first = stored / BATCH;
        let logs = fill(&url, "dewey_store_logs_batch", first, batches, FILL_CLIENTS, &words, &meter).await;
        let msgs = fill(&url, "dewey_store_messages_bulk", first, batches, FILL_CLIENTS, &words, &meter).await;
        if batches >= 50 {
            let phase = format!("fill {} → {}", thousands(stored as f64), thousands(tier as f64));
            report.ingest.push(format!(
                "| {name} | dewey_store_logs_batch ({phase}) | {FILL_CLIENTS} | {} logs/s | {} |",
                thousands(logs.rate),
                ms(logs.latency.value_at_quantile(0.5))
            ));
            report.ingest.push(format!(
                "| {name} | dewey_store_messages_bulk ({phase}) | {FILL_CLIENTS} | {} msgs/s | {} |",
                thousands(msgs.rate),
                ms(msgs.latency.value_at_quantile(0.5))
            ));
            for (tool, unit, f) in
                [("dewey_store_logs_batch", "logs", &logs), ("dewey_store_messages_bulk", "msgs", &msgs)]
            {
                let per_thousand = |cpu: f64| cpu * 1000.0 / batches as f64;
                let total = per_thousand(f.own_cpu) + per_thousand(f.pg_cpu);
                report.cpu.push(format!(
                    "| {name} | {tool} ({phase}) | {:.1} ms | {:.1} ms | {:.1} ms | {} {unit}/s |",
                    per_thousand(f.own_cpu),
                    per_thousand(f.pg_cpu),
                    total,
                    thousands(2.0 * 1_000_000.0 / total),
                ));
            }
        }
        stored = tier;
        eprintln!("[{name}] read latency at {tier}");
        let (search, query, detail) = read_latency(&url, &words, tier as u64).await;
        report.reads.push(format!(
            "| {name} | {} | {} | {} | {} | {} |",
            thousands(tier as f64),
            ms(search.value_at_quantile(0.5)),
            ms(search.value_at_quantile(0.95)),
            ms(query.value_at_quantile(0.5)),
            ms(query.value_at_quantile(0.95)),
        ));
        report.detail.push(format!(
            "| {name} | {} | {} |",
            thousands(tier as f64),
            detail.iter().map(|(_, us)| ms(*us)).collect::<Vec<_>>().join(" | ")
        ));
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args.iter().position(|a| a == "--backend").and_then(|i| args.get(i + 1)).cloned();
    let tiers: &[usize] = if quick { &[10_000, 100_000] } else { &[10_000, 100_000, 1_000_000] };
    let mut report = Report { ingest: Vec::new(), cpu: Vec::new(), reads: Vec::new(), detail: Vec::new() };
    let started = Instant::now();

    // On Ctrl-C or SIGTERM the benchmark stops early but still returns from
    // here, so the private PostgreSQL and the temporary files are removed.
    let interrupted = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    tokio::pin!(interrupted);
    if only.as_deref().is_none_or(|b| b == "postgres") {
        let pg = tokio::task::spawn_blocking(mcp_tests::TestPostgres::start).await.unwrap();
        let storage = Storage::open(&StorageConfig::Postgres { url: pg.url() }).await.expect("PostgreSQL storage");
        tokio::select! {
            _ = bench_backend("PostgreSQL", storage, CpuMeter { pg_url: Some(pg.url()) }, tiers, &mut report) => {}
            _ = &mut interrupted => { eprintln!("interrupted"); return; }
        }
    }
    if only.as_deref().is_none_or(|b| b == "sqlite") {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&StorageConfig::Sqlite { path: dir.path().join("dewey.sqlite3") })
            .await
            .expect("SQLite storage");
        tokio::select! {
            _ = bench_backend("SQLite", storage, CpuMeter { pg_url: None }, tiers, &mut report) => {}
            _ = &mut interrupted => { eprintln!("interrupted"); return; }
        }
    }

    println!("## Dewey benchmark\n");
    println!(
        "Through the tools over WebSocket (runtime client and server in one process), {} CPUs, total {:.0} s.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
    println!("### Ingest (1,000 entries per call)\n");
    println!("| Backend | Tool | Clients | Throughput | p50 per call |");
    println!("|---|---|---|---|---|");
    report.ingest.iter().for_each(|l| println!("{l}"));
    println!("\n### CPU per 1,000 rows stored ({FILL_CLIENTS} clients)\n");
    println!(
        "The machine is shared, so wall-clock rates above move with the neighbours' load. CPU time per row does \
         not; the last column is what two otherwise idle cores could sustain at that cost.\n"
    );
    println!("| Backend | Tool (phase) | Dewey + client process | PostgreSQL | Total | 2 cores / total |");
    println!("|---|---|---|---|---|---|");
    report.cpu.iter().for_each(|l| println!("{l}"));
    println!("\n### Read latency ({READ_SAMPLES} calls each, one client)\n");
    println!("| Backend | Rows stored | dewey_search p50 | p95 | dewey_query_logs p50 | p95 |");
    println!("|---|---|---|---|---|---|");
    report.reads.iter().for_each(|l| println!("{l}"));
    println!("\n### dewey_query_logs p50 by filter, and common-word worst cases ({COMMON_SAMPLES} calls each)\n");
    println!(
        "| Backend | Rows stored | latest 100 | trace_id | component + level>=WARN | search word | 1-minute window | \
         dewey_search, most frequent word | dewey_query_logs, word in every log |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    report.detail.iter().for_each(|l| println!("{l}"));
}
