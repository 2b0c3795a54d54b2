//! A private PostgreSQL cluster: `initdb` into a temporary directory, a free
//! port on 127.0.0.1, stopped and removed on drop; or one cluster shared by
//! the tests of a binary, each with a database of its own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

/// A running PostgreSQL server that belongs to one test.
#[derive(Debug)]
pub struct TestPostgres {
    dir: TempDir,
    port: u16,
    /// initdb and the server refuse to run as root; as root they run as
    /// this (unprivileged) user.
    run_as: Option<String>,
}

impl TestPostgres {
    /// Starts a fresh cluster with a `postgres` superuser (trust auth on
    /// 127.0.0.1 only) and a database `dewey`. Durability is off (`fsync`,
    /// `synchronous_commit`, `full_page_writes`): tests never survive a
    /// power cut, and they run faster without one fsync per commit.
    pub fn start() -> TestPostgres {
        Self::start_with(false)
    }

    /// Like [`TestPostgres::start`], at PostgreSQL's default durability
    /// (every commit flushed to disk): what a user runs, so what benchmarks
    /// of ingest rates should measure.
    pub fn start_durable() -> TestPostgres {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> TestPostgres {
        let run_as = is_root().then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new().prefix("mcp-pg-").tempdir().expect("a temporary directory");
        if let Some(user) = &run_as {
            chown_to(dir.path(), user);
        }
        let data = dir.path().join("data");
        let initdb = pg_bin("initdb");
        let out = run(
            &run_as,
            &initdb,
            &["-D", path_str(&data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
        );
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));

        // A free port can be taken between our probe and the server's bind:
        // try a few times rather than fail a test on a race with another one.
        for _ in 0..10 {
            let port = free_port();
            let durability =
                if durable { "" } else { "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" };
            let options = format!(
                "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} {durability} \
                 -c max_connections=200",
                path_str(dir.path())
            );
            let log = dir.path().join("postgres.log");
            let out = run(
                &run_as,
                &pg_bin("pg_ctl"),
                &["-D", path_str(&data), "-l", path_str(&log), "-o", &options, "-w", "-t", "60", "start"],
            );
            if out.status.success() {
                let pg = TestPostgres { dir, port, run_as };
                pg.create_database("dewey");
                return pg;
            }
        }
        let log = std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default();
        panic!("PostgreSQL did not start; its log:\n{log}");
    }

    /// One cluster for every test in this process, started on first use:
    /// an `initdb` per test would cost seconds of CPU each. Tests isolate
    /// themselves with [`fresh_database`](Self::fresh_database). Statics are
    /// never dropped, so a watchdog stops the cluster and removes its
    /// directory when the test process exits, however it exits.
    pub fn shared() -> &'static TestPostgres {
        static SHARED: OnceLock<TestPostgres> = OnceLock::new();
        SHARED.get_or_init(|| {
            let pg = TestPostgres::start();
            pg.stop_when_this_process_exits();
            pg
        })
    }

    /// Creates an empty database no other test in this process uses and
    /// returns its URL. Blocks (it runs `createdb`).
    pub fn fresh_database(&self, label: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(40)
            .collect();
        let name = format!("t{}_{label}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.create_database(&name);
        self.url_for(&name)
    }

    #[allow(clippy::zombie_processes, reason = "the watchdog outlives this process by design; init reaps it")]
    fn stop_when_this_process_exits(&self) {
        let data = self.dir.path().join("data");
        let pg_ctl = pg_bin("pg_ctl");
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} -D '{data}' -m immediate -w stop; rm -rf '{dir}'",
            pid = std::process::id(),
            data = data.display(),
            dir = self.dir.path().display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the PostgreSQL watchdog starts");
    }

    /// `postgres://postgres@127.0.0.1:PORT/dewey`
    pub fn url(&self) -> String {
        self.url_for("dewey")
    }

    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates another empty database on the same server.
    pub fn create_database(&self, name: &str) {
        let out = Command::new(pg_bin("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name])
            .output()
            .expect("createdb runs");
        assert!(out.status.success(), "createdb {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run(&self.run_as, &pg_bin("pg_ctl"), &["-D", path_str(&data), "-m", "immediate", "-w", "stop"]);
    }
}

/// PostgreSQL's programs: on PATH, or in Debian's versioned folders (the
/// newest installed version).
fn pg_bin(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let candidate = Path::new(dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let candidate = entry.path().join("bin").join(name);
            candidate.exists().then_some((version, candidate))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, path)| path)
        .unwrap_or_else(|| panic!("`{name}` not found: install PostgreSQL (scripts/test.sh does on Debian)"))
}

fn run(run_as: &Option<String>, program: &Path, args: &[&str]) -> Output {
    let mut command = match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    };
    command.args(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

fn chown_to(path: &Path, user: &str) {
    let status = Command::new("chown").args([user, path_str(path)]).status().expect("chown runs");
    assert!(status.success(), "cannot hand {} to {user}", path.display());
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
