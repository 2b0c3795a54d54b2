//! `horace-bench`: Horace's registration throughput and search latency,
//! through the tools over WebSocket with the runtime's client, on SQLite and
//! on a private PostgreSQL, with `openssl speed -evp sha256` measured in the
//! same run as the hashing reference. Prints Markdown tables.
//!
//! `cargo run --release -p horace --features bench --bin horace-bench [-- --quick] [-- --backend sqlite|postgres]`
//!
//! Per backend: 10,000 files of 4 KiB registered by 8 clients at once; 100
//! files of 64 MiB registered by one client (hash and a durable copy into
//! the version store), then checked again with `horace_update_file
//! check_for_changes` (unchanged content: hash only); the catalog topped up
//! to 100,000 files and `horace_search_files` timed per kind of filter.
//! `--quick`: 2,000 small files, 10 large ones, 20,000 cataloged.
//!
//! The files live in a temporary folder on the same filesystem as the
//! working directory (`--dir` elsewhere); at most about 300 MiB of disk at
//! once (the large files are written, measured and removed one by one).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hdrhistogram::Histogram;
use horace::catalog::CatalogConfig;
use horace::model::{FileMetadata, Observed};
use horace::root::RelPath;
use horace::{Catalog, Horace, StorageRoot};
use mcp_runtime::ShutdownHandle;
use mcp_runtime::client::Client;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};

const SMALL_SIZE: usize = 4096;
const LARGE_SIZE: usize = 64 << 20;
const SMALL_CLIENTS: usize = 8;
const SEARCH_SAMPLES: usize = 200;
const OWNERS: [&str; 10] = ["godot", "dewey", "fiedler", "horace", "gates", "playfair", "marco", "relay", "ui", "ops"];
const TAGS: usize = 20;
const EXTENSIONS: [&str; 6] = ["txt", "json", "png", "pdf", "csv", "bin"];

/// Makes the arguments of one kind of search.
type QueryArgs = Box<dyn Fn(&mut StdRng) -> Value>;

struct Sizes {
    small: usize,
    large: usize,
    cataloged: usize,
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

async fn serve(horace: Horace) -> Running {
    let bound = horace::server(horace).bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", bound.local_addr());
    let shutdown = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    Running { url, shutdown }
}

async fn client(url: &str) -> Client {
    Client::builder(url).call_timeout(Duration::from_secs(600)).connect().await.expect("connect")
}

async fn call(client: &Client, tool: &str, args: &Value) -> Value {
    let result = client.call_tool(tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(!result.is_error, "{tool} {args} failed: {}", result.text());
    result.structured_content.expect("structured output")
}

/// `openssl dgst -sha256` over the files: reading them and hashing, as
/// Horace does, in MB/s.
fn openssl_dgst(root: &Path, files: &[String]) -> Option<f64> {
    let started = Instant::now();
    let status = std::process::Command::new("openssl")
        .args(["dgst", "-sha256"])
        .args(files)
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    let bytes: u64 = files.iter().map(|f| std::fs::metadata(root.join(f)).map_or(0, |m| m.len())).sum();
    status.success().then(|| bytes as f64 / started.elapsed().as_secs_f64() / 1e6)
}

/// `openssl speed -evp sha256` on 16 KiB blocks, in MB/s (10^6 bytes).
fn openssl_sha256() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "3"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "sha256   1738260.07k": thousands of bytes per second.
    let line = text.lines().rev().find(|l| l.starts_with("sha256"))?;
    let kbytes: f64 = line.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(kbytes / 1000.0)
}

fn metadata_for(i: usize, rng: &mut StdRng) -> Value {
    let tags: Vec<String> = (0..2).map(|_| format!("tag{}", rng.random_range(0..TAGS))).collect();
    json!({"owner": OWNERS[i % OWNERS.len()], "purpose": "benchmark", "tags": tags})
}

/// Writes `count` files of `size` bytes under `root/dir`, distinct content
/// each; returns their paths relative to the root.
fn write_files(root: &Path, dir: &str, count: usize, size: usize, rng: &mut StdRng) -> Vec<String> {
    let mut base = vec![0u8; size];
    rng.fill_bytes(&mut base);
    let mut paths = Vec::with_capacity(count);
    for i in 0..count {
        let rel = format!("{dir}/{:03}/f{i:06}.{}", i / 100, EXTENSIONS[i % EXTENSIONS.len()]);
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        base[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(&path, &base).unwrap();
        paths.push(rel);
    }
    // Let writeback finish before anything is timed.
    rustix::fs::sync();
    paths
}

/// CPU seconds (user + system) of a process, from /proc (100 ticks/s).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// CPU of this process, and of the benchmark's own PostgreSQL (its
/// postmaster and every child), so CPU per call can be told apart from the
/// wall time the machine's other load stretches.
struct CpuMeter {
    postmaster: Option<u32>,
}

impl CpuMeter {
    async fn new(config: &CatalogConfig) -> CpuMeter {
        let CatalogConfig::Postgres { url } = config else { return CpuMeter { postmaster: None } };
        let (pg, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(connection);
        let backend: i32 = pg.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
        CpuMeter { postmaster: parent_of(backend as u32) }
    }

    /// (this process, PostgreSQL) CPU seconds so far.
    fn read(&self) -> (f64, f64) {
        let own = cpu_seconds(std::process::id());
        let Some(postmaster) = self.postmaster else { return (own, 0.0) };
        let mut pg = cpu_seconds(postmaster);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                && parent_of(pid) == Some(postmaster)
            {
                pg += cpu_seconds(pid);
            }
        }
        (own, pg)
    }

    /// CPU per item since `before`, as "X ms + Y ms PostgreSQL".
    fn per(&self, before: (f64, f64), items: usize) -> String {
        let now = self.read();
        self.per_item((now.0 - before.0, now.1 - before.1), items)
    }

    fn per_item(&self, spent: (f64, f64), items: usize) -> String {
        let each = |s: f64| format!("{:.2} ms", s * 1000.0 / items as f64);
        match self.postmaster {
            Some(_) => format!("{} + {} PostgreSQL", each(spent.0), each(spent.1)),
            None => each(spent.0),
        }
    }
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

struct Report {
    lines: Vec<String>,
    search: Vec<String>,
    openssl: Vec<f64>,
    dgst: Vec<f64>,
}

async fn bench_backend(name: &str, config: CatalogConfig, base: &Path, sizes: &Sizes, report: &mut Report) {
    let dir = tempfile::Builder::new().prefix("horace-bench-").tempdir_in(base).expect("a temporary folder");
    let root_path = dir.path().join("files");
    let root = StorageRoot::open(&root_path).expect("the storage root");
    let catalog = Catalog::open(&config, &root.path().display().to_string()).await.expect("the catalog");
    let horace = Horace::new(root, catalog).expect("the version store");
    let server = serve(horace.clone()).await;
    let mut rng = StdRng::seed_from_u64(9);

    // Small files, 8 clients at once.
    eprintln!("{name}: writing {} small files", sizes.small);
    let small = write_files(&root_path, "small", sizes.small, SMALL_SIZE, &mut rng);
    let work: Arc<Vec<(String, Value)>> =
        Arc::new(small.iter().enumerate().map(|(i, p)| (p.clone(), metadata_for(i, &mut rng))).collect());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    eprintln!("{name}: registering them");
    let meter = CpuMeter::new(&config).await;
    let cpu_before = meter.read();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SMALL_CLIENTS {
        let (work, next, c) = (work.clone(), next.clone(), client(&server.url).await);
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3).unwrap();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((path, metadata)) = work.get(i) else { break };
                let t = Instant::now();
                call(&c, "horace_register_file", &json!({"file_path": path, "metadata": metadata})).await;
                latency.record(t.elapsed().as_micros() as u64).unwrap();
            }
            latency
        }));
    }
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        latency.add(task.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    report.lines.push(format!(
        "| {name} | {} x 4 KiB, {SMALL_CLIENTS} clients | {} files/s | {:.1} MB/s | {} / {}; CPU per file {} |",
        thousands(sizes.small as f64),
        thousands(sizes.small as f64 / elapsed),
        (sizes.small * SMALL_SIZE) as f64 / elapsed / 1e6,
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.99)),
        meter.per(cpu_before, sizes.small),
    ));

    // Large files, one client, one at a time so that the disk holds three
    // of them at most (file, stored copy, nothing else): each is written
    // and synced (untimed), registered (hash + durable copy, timed), checked
    // for changes (hash only, timed), then removed with its stored copy.
    // openssl's figures are taken on the first files, just before.
    let c = client(&server.url).await;
    let sample = write_files(&root_path, "large", 4.min(sizes.large), LARGE_SIZE, &mut rng);
    let openssl = openssl_sha256();
    let dgst = openssl_dgst(&root_path, &sample);
    let _ = std::fs::remove_dir_all(root_path.join("large"));
    report.openssl.extend(openssl);
    report.dgst.extend(dgst);
    let reference = |rate: f64| {
        let of = |r: Option<f64>| r.map_or("n/a".to_owned(), |o| format!("{:.0}%", 100.0 * rate / o));
        format!("{} of `openssl speed`, {} of `openssl dgst`", of(openssl), of(dgst))
    };
    eprintln!("{name}: {} large files", sizes.large);
    let (mut registering, mut checking) = (Duration::ZERO, Duration::ZERO);
    for i in 0..sizes.large {
        let path = write_files(&root_path, &format!("large{i}"), 1, LARGE_SIZE, &mut rng).remove(0);
        let started = Instant::now();
        let reg =
            call(&c, "horace_register_file", &json!({"file_path": path, "metadata": metadata_for(i, &mut rng)})).await;
        registering += started.elapsed();
        let started = Instant::now();
        let checked =
            call(&c, "horace_update_file", &json!({"file_id": reg["file_id"], "check_for_changes": true})).await;
        checking += started.elapsed();
        assert_eq!(checked["content"], "unchanged");
        let _ = std::fs::remove_dir_all(root_path.join(format!("large{i}")));
        let checksum = reg["file"]["checksum"].as_str().unwrap();
        let _ = std::fs::remove_file(root_path.join(".horace/objects").join(checksum));
    }
    for (what, spent) in [
        ("register (hash + copy to the version store, fsync)", registering),
        ("check_for_changes (hash only)", checking),
    ] {
        let elapsed = spent.as_secs_f64();
        let rate = (sizes.large * LARGE_SIZE) as f64 / elapsed / 1e6;
        report.lines.push(format!(
            "| {name} | {} x 64 MiB, {what} | {:.1} files/s | {:.0} MB/s | {} |",
            sizes.large,
            sizes.large as f64 / elapsed,
            rate,
            reference(rate)
        ));
    }
    drop(c);

    // Top the catalog up through the library (the same register call the
    // tool makes, without files on disk), then time searches.
    let have = sizes.small + sizes.large;
    let missing = sizes.cataloged.saturating_sub(have);
    eprintln!("{name}: cataloging {missing} more entries");
    let started = Instant::now();
    let per_task = missing.div_ceil(SMALL_CLIENTS);
    let mut tasks = Vec::new();
    for t in 0..SMALL_CLIENTS {
        let catalog = horace.catalog().clone();
        let range = (t * per_task)..((t + 1) * per_task).min(missing);
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(100 + t as u64);
            for i in range {
                let ext = EXTENSIONS[i % EXTENSIONS.len()];
                let rel = RelPath::from_catalog(format!("synthetic/{:04}/s{i:07}.{ext}", i / 1000));
                let mime = match ext {
                    "png" => "image/png",
                    "pdf" => "application/pdf",
                    "json" => "application/json",
                    "csv" => "text/csv",
                    "txt" => "text/plain",
                    _ => "application/octet-stream",
                };
                let observed = Observed {
                    checksum: format!("{:064x}", rng.random::<u128>()),
                    size: rng.random_range(0..10_000_000),
                    mime_type: mime.to_owned(),
                    modified_at: Utc::now(),
                };
                let metadata: FileMetadata = serde_json::from_value(metadata_for(i, &mut rng)).unwrap();
                let metadata = metadata.validated().unwrap();
                catalog.register(&rel, &observed, &metadata).await.expect("catalog insert");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    eprintln!("{name}: {missing} catalog inserts in {:.1} s", started.elapsed().as_secs_f64());
    // What autovacuum does after such growth (PostgreSQL 13+ vacuums after
    // inserts too), done now so that the timings do not depend on when its
    // next round comes: statistics, and the visibility map that lets counts
    // read only indexes.
    if let CatalogConfig::Postgres { url } = &config {
        let (pg, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(connection);
        pg.batch_execute("VACUUM ANALYZE").await.expect("VACUUM ANALYZE");
    }
    let recent = (Utc::now() - chrono::Duration::seconds(2)).to_rfc3339();
    let c = client(&server.url).await;
    let kinds: Vec<(&str, QueryArgs)> = vec![
        ("no filter", Box::new(|_| json!({}))),
        ("tag", Box::new(|r| json!({"tags": [format!("tag{}", r.random_range(0..TAGS))]}))),
        (
            "two tags",
            Box::new(
                |r| json!({"tags": [format!("tag{}", r.random_range(0..TAGS)), format!("tag{}", r.random_range(0..TAGS))]}),
            ),
        ),
        ("owner", Box::new(|r| json!({"owner": OWNERS[r.random_range(0..OWNERS.len())]}))),
        ("owner + type", Box::new(|r| json!({"owner": OWNERS[r.random_range(0..OWNERS.len())], "file_type": "pdf"}))),
        ("image/*", Box::new(|_| json!({"file_type": "image/*"}))),
        (
            "size range",
            Box::new(|r| {
                let lo = r.random_range(0..9_000_000);
                json!({"min_size": lo, "max_size": lo + 100_000})
            }),
        ),
        ("created_after (last 2 s)", Box::new(move |_| json!({"created_after": recent}))),
        ("page at offset 5,000", Box::new(|_| json!({"offset": 5000}))),
    ];
    let mut all = Histogram::<u64>::new(3).unwrap();
    let mut cells = Vec::new();
    let mut measured_cpu = (0.0, 0.0);
    for (label, args) in &kinds {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for _ in 0..SEARCH_SAMPLES / 4 {
            call(&c, "horace_search_files", &args(&mut rng)).await; // warm the caches
        }
        let before = meter.read();
        for _ in 0..SEARCH_SAMPLES {
            let a = args(&mut rng);
            let t = Instant::now();
            let result = call(&c, "horace_search_files", &a).await;
            h.record(t.elapsed().as_micros() as u64).unwrap();
            assert!(result["total"].as_i64().unwrap() >= 0);
        }
        let after = meter.read();
        measured_cpu = (measured_cpu.0 + after.0 - before.0, measured_cpu.1 + after.1 - before.1);
        all.add(&h).unwrap();
        cells.push(format!("{label}: {} / {}", ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99))));
    }
    let calls = kinds.len() * SEARCH_SAMPLES;
    report.search.push(format!(
        "| {name} | {} | {} | {} | {} | {} |",
        thousands(sizes.cataloged as f64),
        ms(all.value_at_quantile(0.5)),
        ms(all.value_at_quantile(0.99)),
        meter.per_item(measured_cpu, calls),
        cells.join("<br>")
    ));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args.iter().position(|a| a == "--backend").and_then(|i| args.get(i + 1)).cloned();
    let base = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| std::env::current_dir().unwrap(), PathBuf::from);
    let sizes = if quick {
        Sizes { small: 2_000, large: 10, cataloged: 20_000 }
    } else {
        Sizes { small: 10_000, large: 100, cataloged: 100_000 }
    };
    let mut report = Report { lines: Vec::new(), search: Vec::new(), openssl: Vec::new(), dgst: Vec::new() };
    let started = Instant::now();
    if only.as_deref().is_none_or(|b| b == "sqlite") {
        let db = tempfile::tempdir().unwrap();
        let config = CatalogConfig::Sqlite { path: db.path().join("horace.sqlite3") };
        bench_backend("SQLite", config, &base, &sizes, &mut report).await;
    }
    if only.as_deref().is_none_or(|b| b == "postgres") {
        let pg = tokio::task::spawn_blocking(mcp_tests::TestPostgres::start).await.unwrap();
        bench_backend("PostgreSQL", CatalogConfig::Postgres { url: pg.url() }, &base, &sizes, &mut report).await;
    }
    let rates = |r: &[f64]| r.iter().map(|o| format!("{o:.0} MB/s")).collect::<Vec<_>>().join(", ");
    println!("## Horace benchmark\n");
    println!(
        "Through the tools over WebSocket (runtime client and server in one process), {} CPUs, total {:.0} s. \
         In this run, `openssl speed -evp sha256` (16 KiB blocks in memory): {}; `openssl dgst -sha256` over the \
         64 MiB files (read and hash): {}.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64(),
        rates(&report.openssl),
        rates(&report.dgst)
    );
    println!("### Registration\n");
    println!("| Catalog | Files | Rate | Throughput | p50 / p99 per call, or against openssl |");
    println!("|---|---|---|---|---|");
    report.lines.iter().for_each(|l| println!("{l}"));
    println!("\n### horace_search_files ({SEARCH_SAMPLES} calls per kind, one client, limit 20, p50 / p99)\n");
    println!("| Catalog | Files cataloged | p50, all kinds | p99, all kinds | CPU per search | by kind |");
    println!("|---|---|---|---|---|---|");
    report.search.iter().for_each(|l| println!("{l}"));
}
