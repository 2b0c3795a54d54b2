//! `horace-bench`: Horace's registration throughput and search latency,
//! through the tools over WebSocket with the runtime's client, on SQLite and
//! on a private PostgreSQL, with `openssl speed -evp sha256` measured in the
//! same run as the hashing reference. Prints Markdown tables.
//!
//! `cargo run --release -p horace --features bench --bin horace-bench -- [--quick] [--backend sqlite|postgres]
//!  [--only small,large,search] [--clients N] [--dir PATH]`
//!
//! Per backend: 10,000 files of 4 KiB registered by `--clients` clients at
//! once (8 by default: each its own WebSocket connection calling
//! `horace_register_file` back to back, as agents registering their output
//! would); 100 files of 64 MiB registered by one client (hash and a durable
//! copy into the version store), then registered again (content already
//! stored: hash only); the catalog topped up to 100,000 files and
//! `horace_search_files` timed per kind of filter. `--quick`: 2,000 small
//! files, 10 large ones, 20,000 cataloged.
//!
//! PostgreSQL runs at its default durability (every commit flushed), as a
//! deployment would: Horace's version copies are durable before the catalog
//! row naming them commits, and the benchmark keeps the catalog honest too.
//!
//! The hashing reference is `openssl speed -evp sha256` measured in the same
//! run before and after the large files, both ways it can count: per second
//! of its own CPU time (its default, which the machine's other load does not
//! change) and per second of wall-clock time (`-elapsed`, which it does).
//! Horace's rates are given the same two ways: bytes per second of wall
//! time, and bytes per second of this process's CPU time (every thread:
//! reading, hashing, copying, the client).
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
/// Clients registering small files at once, unless `--clients` says otherwise;
/// also the tasks that top the catalog up.
const CLIENTS: usize = 8;
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
    horace: Horace,
    url: String,
    shutdown: ShutdownHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

async fn serve(horace: Horace) -> Running {
    let bound = horace::server(horace.clone()).bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", bound.local_addr());
    let shutdown = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    Running { horace, url, shutdown }
}

async fn client(url: &str) -> Client {
    Client::builder(url).call_timeout(Duration::from_secs(600)).connect().await.expect("connect")
}

async fn call(client: &Client, tool: &str, args: &Value) -> Value {
    let result = client.call_tool(tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(!result.is_error, "{tool} {args} failed: {}", result.text());
    result.structured_content.expect("structured output")
}

/// `openssl speed -evp sha256` on 16 KiB blocks, in MB/s (10^6 bytes):
/// per second of its CPU time, or of wall-clock time with `elapsed`.
fn openssl_sha256(elapsed: bool) -> Option<f64> {
    let mut command = std::process::Command::new("openssl");
    command.arg("speed");
    if elapsed {
        command.arg("-elapsed");
    }
    let out = command.args(["-evp", "sha256", "-bytes", "16384", "-seconds", "3"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "sha256   1738260.07k": thousands of bytes per second.
    let line = text.lines().rev().find(|l| l.starts_with("sha256"))?;
    let kbytes: f64 = line.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(kbytes / 1000.0)
}

/// `sha2` (what Horace hashes with) over a buffer in memory, in this
/// process: (MB/s of wall time, MB/s of CPU time).
fn sha2_in_memory() -> (f64, f64) {
    use sha2::Digest;
    let block = vec![0x5au8; 16 << 10];
    let (started, cpu) = (Instant::now(), thread_cpu_seconds());
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        for _ in 0..64 {
            hasher.update(&block);
        }
        bytes += 64 * block.len() as u64;
    }
    std::hint::black_box(hasher.finalize());
    (bytes as f64 / started.elapsed().as_secs_f64() / 1e6, bytes as f64 / (thread_cpu_seconds() - cpu) / 1e6)
}

fn thread_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// The 1-minute load average, from /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
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

/// Which parts to run (`--only`), and how.
struct Plan {
    sizes: Sizes,
    clients: usize,
    small: bool,
    large: bool,
    search: bool,
}

struct Report {
    lines: Vec<String>,
    search: Vec<String>,
    /// `openssl speed` per CPU second and per wall second, each time taken.
    openssl_cpu: Vec<f64>,
    openssl_wall: Vec<f64>,
    loads: Vec<String>,
}

impl Report {
    fn note_load(&mut self, when: &str) {
        self.loads.push(format!("{when} {}", load_average()));
    }
}

/// MB/s of `bytes` over `seconds`.
fn rate(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}

/// Runs the planned parts on one backend. Returns the temporary folder,
/// to be removed at the very end: on a filesystem without a journal, ext4
/// skips inodes freed in the last half minute when it allocates new ones,
/// at a cost per skipped inode, so removing one backend's 20,000 files just
/// before the next backend creates its own would slow the next one down.
async fn bench_backend(
    name: &str,
    config: CatalogConfig,
    base: &Path,
    plan: &Plan,
    report: &mut Report,
) -> tempfile::TempDir {
    let sizes = &plan.sizes;
    let dir = tempfile::Builder::new().prefix("horace-bench-").tempdir_in(base).expect("a temporary folder");
    let root_path = dir.path().join("files");
    let root = StorageRoot::open(&root_path).expect("the storage root");
    let catalog = Catalog::open(&config, &root.path().display().to_string()).await.expect("the catalog");
    let horace = Horace::new(root, catalog).expect("the version store");
    let server = serve(horace).await;
    let meter = CpuMeter::new(&config).await;
    let mut rng = StdRng::seed_from_u64(9);
    let mut registered = 0;

    if plan.small {
        registered += sizes.small;
        bench_small(name, &server, &root_path, plan, &meter, &mut rng, report).await;
    }
    if plan.large {
        registered += sizes.large;
        bench_large(name, &server, &root_path, sizes.large, &mut rng, report).await;
    }
    if plan.search {
        let missing = sizes.cataloged.saturating_sub(registered);
        bench_search(name, &server, &config, &meter, registered + missing, missing, report).await;
    }
    dir
}

/// Small files, `plan.clients` clients at once.
async fn bench_small(
    name: &str,
    server: &Running,
    root_path: &Path,
    plan: &Plan,
    meter: &CpuMeter,
    rng: &mut StdRng,
    report: &mut Report,
) {
    let (count, clients) = (plan.sizes.small, plan.clients);
    eprintln!("{name}: writing {count} small files");
    let small = write_files(root_path, "small", count, SMALL_SIZE, rng);
    let work: Arc<Vec<(String, Value)>> =
        Arc::new(small.iter().enumerate().map(|(i, p)| (p.clone(), metadata_for(i, rng))).collect());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut connected = Vec::new();
    for _ in 0..clients {
        connected.push(client(&server.url).await);
    }
    eprintln!("{name}: registering them (load {})", load_average());
    report.note_load(&format!("{name} small files:"));
    let cpu_before = meter.read();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in connected {
        let (work, next) = (work.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3).unwrap();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((path, metadata)) = work.get(i) else { break };
                let t = Instant::now();
                let reg = call(&c, "horace_register_file", &json!({"file_path": path, "metadata": metadata})).await;
                latency.record(t.elapsed().as_micros() as u64).unwrap();
                assert_eq!(reg["status"], "registered");
            }
            latency
        }));
    }
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        latency.add(task.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = meter.per(cpu_before, count);
    report.lines.push(format!(
        "| {name} | {} x 4 KiB, {clients} clients | {} files/s | {:.1} MB/s | {} / {}; CPU per file {cpu} |",
        thousands(count as f64),
        thousands(count as f64 / elapsed),
        (count * SMALL_SIZE) as f64 / elapsed / 1e6,
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.99)),
    ));
    report.note_load(&format!("{name} small files done:"));
}

/// Large files, one client, one at a time so that the disk holds two of
/// them at most (the file and its stored copy): each is written and synced
/// (untimed), registered (new content: hash + durable copy, timed),
/// registered again (content already stored: hash only, timed), then
/// removed with its stored copy. `openssl speed` is measured just before
/// and just after.
async fn bench_large(
    name: &str,
    server: &Running,
    root_path: &Path,
    count: usize,
    rng: &mut StdRng,
    report: &mut Report,
) {
    let c = client(&server.url).await;
    report.note_load(&format!("{name} large files:"));
    let before = (openssl_sha256(false), openssl_sha256(true));
    eprintln!("{name}: {count} large files (load {})", load_average());
    // (wall seconds, CPU seconds of this process) per kind of call.
    let (mut new_content, mut stored) = ((0.0, 0.0), (0.0, 0.0));
    let own_cpu = || cpu_seconds(std::process::id());
    for i in 0..count {
        let path = write_files(root_path, &format!("large{i}"), 1, LARGE_SIZE, rng).remove(0);
        let args = json!({"file_path": path, "metadata": metadata_for(i, rng)});
        let (started, cpu) = (Instant::now(), own_cpu());
        let reg = call(&c, "horace_register_file", &args).await;
        new_content.0 += started.elapsed().as_secs_f64();
        new_content.1 += own_cpu() - cpu;
        assert_eq!(reg["status"], "registered");
        let (started, cpu) = (Instant::now(), own_cpu());
        let again = call(&c, "horace_register_file", &args).await;
        stored.0 += started.elapsed().as_secs_f64();
        stored.1 += own_cpu() - cpu;
        assert_eq!(again["status"], "duplicate");
        let _ = std::fs::remove_dir_all(root_path.join(format!("large{i}")));
        let checksum = reg["file"]["checksum"].as_str().unwrap();
        let _ = std::fs::remove_file(root_path.join(".horace/objects").join(&checksum[..2]).join(checksum));
    }
    let after = (openssl_sha256(false), openssl_sha256(true));
    report.note_load(&format!("{name} large files done:"));
    let cpu_refs: Vec<f64> = [before.0, after.0].into_iter().flatten().collect();
    let wall_refs: Vec<f64> = [before.1, after.1].into_iter().flatten().collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let (cpu_ref, wall_ref) = (mean(&cpu_refs), mean(&wall_refs));
    report.openssl_cpu.extend(cpu_refs);
    report.openssl_wall.extend(wall_refs);
    let bytes = (count * LARGE_SIZE) as u64;
    for (what, (wall, cpu)) in [
        ("register, new content (hash + durable copy)", new_content),
        ("register again, content stored (hash only)", stored),
    ] {
        let of = |rate: f64, r: Option<f64>| r.map_or("n/a".to_owned(), |o| format!("{:.0}%", 100.0 * rate / o));
        let (by_wall, by_cpu) = (rate(bytes, wall), rate(bytes, cpu));
        report.lines.push(format!(
            "| {name} | {count} x 64 MiB, {what} | {:.1} files/s | {by_wall:.0} MB/s wall, {by_cpu:.0} MB/s per CPU s | \
             wall: {} of `openssl speed -elapsed`; CPU: {} of `openssl speed` |",
            count as f64 / wall,
            of(by_wall, wall_ref),
            of(by_cpu, cpu_ref),
        ));
    }
}

/// Tops the catalog up to `missing` more files through the library (the
/// same register call the tool makes, without files on disk), then times
/// searches.
async fn bench_search(
    name: &str,
    server: &Running,
    config: &CatalogConfig,
    meter: &CpuMeter,
    cataloged: usize,
    missing: usize,
    report: &mut Report,
) {
    let mut rng = StdRng::seed_from_u64(10);
    eprintln!("{name}: cataloging {missing} more entries");
    let started = Instant::now();
    let per_task = missing.div_ceil(CLIENTS);
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let catalog = server.horace.catalog().clone();
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
                    content: None,
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
    if let CatalogConfig::Postgres { url } = config {
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
        thousands(cataloged as f64),
        ms(all.value_at_quantile(0.5)),
        ms(all.value_at_quantile(0.99)),
        meter.per_item(measured_cpu, calls),
        cells.join("<br>")
    ));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let quick = args.iter().any(|a| a == "--quick");
    let only_backend = value("--backend");
    let base = value("--dir").map_or_else(|| std::env::current_dir().unwrap(), PathBuf::from);
    let parts = value("--only").unwrap_or_else(|| "small,large,search".to_owned());
    let part = |p: &str| parts.split(',').any(|x| x.trim() == p);
    let plan = Plan {
        sizes: if quick {
            Sizes { small: 2_000, large: 10, cataloged: 20_000 }
        } else {
            Sizes { small: 10_000, large: 100, cataloged: 100_000 }
        },
        clients: value("--clients").map_or(CLIENTS, |n| n.parse().expect("--clients takes a number")),
        small: part("small"),
        large: part("large"),
        search: part("search"),
    };
    let mut report = Report {
        lines: Vec::new(),
        search: Vec::new(),
        openssl_cpu: Vec::new(),
        openssl_wall: Vec::new(),
        loads: Vec::new(),
    };
    report.note_load("start:");
    let sha2 = plan.large.then(sha2_in_memory);
    let started = Instant::now();
    let mut leftovers = Vec::new();
    if only_backend.as_deref().is_none_or(|b| b == "sqlite") {
        let db = tempfile::tempdir().unwrap();
        let config = CatalogConfig::Sqlite { path: db.path().join("horace.sqlite3") };
        leftovers.push(bench_backend("SQLite", config, &base, &plan, &mut report).await);
        leftovers.push(db);
    }
    let mut pg = None;
    if only_backend.as_deref().is_none_or(|b| b == "postgres") {
        let started = tokio::task::spawn_blocking(mcp_tests::TestPostgres::start_durable).await.unwrap();
        let config = CatalogConfig::Postgres { url: started.url() };
        leftovers.push(bench_backend("PostgreSQL", config, &base, &plan, &mut report).await);
        pg = Some(started);
    }
    report.note_load("end:");
    let rates = |r: &[f64]| r.iter().map(|o| format!("{o:.0}")).collect::<Vec<_>>().join(", ");
    println!("## Horace benchmark\n");
    println!(
        "Through the tools over WebSocket (runtime client and server in one process), {} CPUs, total {:.0} s; \
         PostgreSQL at its default durability. 1-minute load average: {}.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64(),
        report.loads.join(", "),
    );
    if plan.large {
        let (sha2_wall, sha2_cpu) = sha2.unwrap_or_default();
        println!(
            "\nHashing references in this run: `openssl speed -evp sha256` (16 KiB blocks in memory) {} MB/s per \
             CPU second, {} MB/s per wall second (`-elapsed`); `sha2` in this process {sha2_cpu:.0} MB/s per CPU \
             second, {sha2_wall:.0} MB/s wall.",
            rates(&report.openssl_cpu),
            rates(&report.openssl_wall),
        );
    }
    println!("\n### Registration\n");
    println!("| Catalog | Files | Rate | Throughput | p50 / p99 per call, or against openssl |");
    println!("|---|---|---|---|---|");
    report.lines.iter().for_each(|l| println!("{l}"));
    if plan.search {
        println!("\n### horace_search_files ({SEARCH_SAMPLES} calls per kind, one client, limit 20, p50 / p99)\n");
        println!("| Catalog | Files cataloged | p50, all kinds | p99, all kinds | CPU per search | by kind |");
        println!("|---|---|---|---|---|---|");
        report.search.iter().for_each(|l| println!("{l}"));
    }
    drop((leftovers, pg));
}
