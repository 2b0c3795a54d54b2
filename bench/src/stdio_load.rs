//! stdio: `hello --stdio` as a child process, newline-delimited `echo`
//! calls written to its stdin with a fixed number in flight, answers read
//! from its stdout, latency per call.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use futures_util::FutureExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

use crate::frames;
use crate::load::Measurement;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// `hello --stdio`, initialized. Killed when dropped.
pub struct StdioServer {
    _child: Child,
    pid: u32,
    stdin: BufWriter<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl StdioServer {
    pub async fn start(hello: &Path) -> anyhow::Result<StdioServer> {
        let mut child = Command::new(hello)
            .arg("--stdio")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} --stdio", hello.display()))?;
        let pid = child.id().context("hello --stdio exited at once")?;
        let stdin = BufWriter::new(child.stdin.take().expect("stdin is piped"));
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let mut server = StdioServer { _child: child, pid, stdin, stdout, next_id: 1 };
        tokio::time::timeout(STARTUP_TIMEOUT, async {
            server.write(&frames::initialize_request()).await?;
            server.stdin.flush().await?;
            let answer = server.read().await?;
            ensure!(answer.contains(r#""result":"#), "initialize failed: {answer}");
            server.write(frames::INITIALIZED_NOTIFICATION).await?;
            let id = server.next_id;
            server.next_id += 1;
            server.write(&frames::echo_request(id)).await?;
            server.stdin.flush().await?;
            let answer = server.read().await?;
            frames::check_echo_response(&answer, id).map_err(|e| anyhow!(e))
        })
        .await
        .map_err(|_| anyhow!("hello --stdio did not answer initialize and echo within {STARTUP_TIMEOUT:?}"))??;
        Ok(server)
    }

    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        crate::cpu::process_cpu_time(Some(self.pid))
    }

    async fn write(&mut self, line: &str) -> anyhow::Result<()> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        Ok(())
    }

    async fn read(&mut self) -> anyhow::Result<String> {
        self.stdout.next_line().await?.ok_or_else(|| anyhow!("hello --stdio closed its stdout"))
    }

    /// Keeps `in_flight` calls outstanding; counts those sent and answered
    /// inside [`now + warmup`, `now + warmup + duration`].
    pub async fn slice(
        &mut self,
        in_flight: usize,
        warmup: Duration,
        duration: Duration,
    ) -> anyhow::Result<Measurement> {
        let window_start = Instant::now() + warmup;
        let deadline = window_start + duration;
        tokio::time::timeout_at(deadline + DRAIN_GRACE, self.drive(in_flight, window_start, deadline))
            .await
            .map_err(|_| anyhow!("hello --stdio left calls unanswered {DRAIN_GRACE:?} after the deadline"))?
    }

    async fn drive(
        &mut self,
        in_flight: usize,
        window_start: Instant,
        deadline: Instant,
    ) -> anyhow::Result<Measurement> {
        let mut measured = Measurement::new(deadline - window_start);
        let mut sent_at: HashMap<u64, Instant> = HashMap::with_capacity(in_flight * 2);
        for _ in 0..in_flight {
            let id = self.next_id;
            self.next_id += 1;
            sent_at.insert(id, Instant::now());
            self.write(&frames::echo_request(id)).await?;
        }
        self.stdin.flush().await?;
        while !sent_at.is_empty() {
            // One line, then every line already buffered, answered with one flush.
            let mut ready = Some(self.stdout.next_line().await);
            let mut wrote = false;
            while let Some(line) = ready.take() {
                let line = line?.ok_or_else(|| anyhow!("hello --stdio closed its stdout"))?;
                let now = Instant::now();
                if let Some(id) = frames::response_id(&line) {
                    let sent = sent_at.remove(&id).with_context(|| format!("an answer to id {id}, not in flight"))?;
                    if !frames::is_echo_success(&line) {
                        bail!("an echo call failed: {line}");
                    }
                    let in_window = sent >= window_start && now <= deadline;
                    measured.record(in_window.then(|| now - sent));
                    if now < deadline {
                        let id = self.next_id;
                        self.next_id += 1;
                        sent_at.insert(id, Instant::now());
                        self.write(&frames::echo_request(id)).await?;
                        wrote = true;
                    }
                }
                // `next_line` is cancel-safe: a pending poll loses nothing.
                ready = self.stdout.next_line().now_or_never();
            }
            if wrote {
                self.stdin.flush().await?;
            }
        }
        Ok(measured)
    }
}
