//! A private Redis per test: `redis-server` on a free port of 127.0.0.1 with
//! its files in a temporary directory, killed and removed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long redis-server may take to accept connections. Generous: CI runs
/// the suite on two cores with everything else in parallel.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running redis-server that belongs to one test.
///
/// Persistence is the append-only file, flushed every second, in the
/// temporary directory: [`TestRedis::stop`] (a clean SHUTDOWN) and
/// [`TestRedis::restart`] keep every acknowledged write, [`TestRedis::kill`]
/// is a crash. No RDB snapshots, so no forks while a test runs.
#[derive(Debug)]
pub struct TestRedis {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl TestRedis {
    pub fn start() -> TestRedis {
        let dir = tempfile::Builder::new().prefix("mcp-redis-").tempdir().expect("a temporary directory");
        // A free port can be taken between our probe and the server's bind:
        // try a few, rather than fail a test on a race with another one.
        let mut last_error = String::new();
        for _ in 0..10 {
            let port = free_port();
            match spawn(dir.path(), port) {
                Ok(child) => return TestRedis { dir, port, child: Some(child) },
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding the append-only file and `redis.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server at once (SIGKILL): writes of the last second may be lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server cleanly (SIGTERM: it flushes the append-only file
    /// first) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port with the same files, after
    /// [`TestRedis::stop`] or [`TestRedis::kill`]. Retries while the old
    /// socket is being released.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let mut last_error = String::new();
        for _ in 0..50 {
            match spawn(self.dir.path(), self.port) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => {
                    last_error = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!("redis-server did not restart on port {}: {last_error}", self.port);
    }

    /// Runs one command and returns the reply in RESP form (`+OK`,
    /// `:3`, ...), for tests that inspect Redis without a client library.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("redis accepts connections");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a read timeout");
        stream.write_all(&encode(args)).expect("the command is sent");
        read_reply(&mut BufReader::new(stream))
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(dir: &Path, port: u16) -> Result<Child, String> {
    let mut child = Command::new(redis_server())
        .current_dir(dir)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .args(["--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no"])
        .args(["--protected-mode", "no", "--logfile", "redis.log", "--databases", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run redis-server: {e}"))?;
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!("redis-server exited ({status}) on port {port}: {}", tail.join(" | ")));
        }
        if ping(port) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("redis-server did not answer PING on port {port} within {STARTUP_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True once the server answers PING with PONG (not `-LOADING`).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One RESP2 reply, arrays flattened to their elements joined by newlines.
fn read_reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("redis replies");
    let line = line.trim_end().to_owned();
    match line.as_bytes().first() {
        Some(b'$') => {
            let len: i64 = line[1..].parse().expect("a bulk length");
            if len < 0 {
                return "(nil)".to_owned();
            }
            let mut data = vec![0u8; len as usize + 2];
            reader.read_exact(&mut data).expect("the bulk string");
            String::from_utf8_lossy(&data[..len as usize]).into_owned()
        }
        Some(b'*') => {
            let n: i64 = line[1..].parse().expect("an array length");
            (0..n.max(0)).map(|_| read_reply(reader)).collect::<Vec<_>>().join("\n")
        }
        _ => line,
    }
}

/// redis-server on PATH, or where Debian puts it.
fn redis_server() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/sbin"]) {
        let candidate = Path::new(dir).join("redis-server");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("`redis-server` not found: install Redis (scripts/install-test-peers.sh does on Debian)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}
