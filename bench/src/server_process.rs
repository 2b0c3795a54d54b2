//! Starts a server under test as a child process, the same way for `hello`
//! and for the bare loop, and reads its memory from /proc.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
const STDERR_TAIL_LINES: usize = 20;

/// Which server a measurement ran against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// `hello`, built on mcp-runtime (WebSocket and Streamable HTTP on one port).
    Runtime,
    /// The bench binary's own `bare-server` subcommand (WebSocket).
    Bare,
    /// The bench binary's `bare-http-server` subcommand (HTTP/1.1 + JSON).
    BareHttp,
    /// rmcp's Streamable HTTP server with its defaults (sessions, SSE answers).
    Rmcp,
    /// rmcp's Streamable HTTP server, stateless with JSON answers.
    RmcpJson,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Runtime => "runtime (hello)",
            Target::Bare => "bare loop",
            Target::BareHttp => "bare hyper handler",
            Target::Rmcp => "rmcp (sessions, SSE)",
            Target::RmcpJson => "rmcp (stateless, JSON)",
        }
    }
}

/// What to run for each target.
#[derive(Debug, Clone)]
pub struct ServerPrograms {
    pub hello: PathBuf,
    pub bench: PathBuf,
}

impl ServerPrograms {
    pub async fn start(&self, target: Target) -> anyhow::Result<ServerProcess> {
        match target {
            Target::Runtime => ServerProcess::start(target, &self.hello, &[]).await,
            Target::Bare => ServerProcess::start(target, &self.bench, &["bare-server"]).await,
            Target::BareHttp => ServerProcess::start(target, &self.bench, &["bare-http-server"]).await,
            Target::Rmcp => ServerProcess::start(target, &self.bench, &["rmcp-http-server"]).await,
            Target::RmcpJson => ServerProcess::start(target, &self.bench, &["rmcp-http-server", "--json"]).await,
        }
    }
}

/// A running server. Killed (SIGKILL) when dropped, so an error or Ctrl-C
/// anywhere in the bench leaves no server behind.
pub struct ServerProcess {
    pub target: Target,
    pub addr: SocketAddr,
    pid: u32,
    child: Child,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    async fn start(target: Target, program: &Path, args: &[&str]) -> anyhow::Result<ServerProcess> {
        let mut child = Command::new(program)
            .args(args)
            .env("MCP_HOST", "127.0.0.1")
            .env("MCP_PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", target.label(), program.display()))?;
        let pid = child.id().context("the child exited before it could be watched")?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(keep_tail(child.stderr.take().expect("stderr is piped"), stderr_tail.clone()));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();

        let announced = tokio::time::timeout(STARTUP_TIMEOUT, async {
            while let Some(line) = stdout.next_line().await? {
                if let Some(addr) = line.trim().strip_prefix("listening on ws://") {
                    return Ok(Some(addr.trim_end_matches('/').to_owned()));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let mut server = ServerProcess { target, addr: SocketAddr::from(([127, 0, 0, 1], 0)), pid, child, stderr_tail };
        let addr = match announced {
            Ok(Ok(Some(addr))) => addr,
            Ok(Ok(None)) => bail!(
                "{} ({}) closed stdout without printing `listening on ws://IP:PORT`{}",
                target.label(),
                program.display(),
                server.diagnostics().await
            ),
            Ok(Err(e)) => bail!("reading the stdout of {}: {e}", target.label()),
            Err(_) => bail!(
                "{} ({}) did not print `listening on ws://IP:PORT` within {STARTUP_TIMEOUT:?}{}",
                target.label(),
                program.display(),
                server.diagnostics().await
            ),
        };
        server.addr =
            addr.parse().with_context(|| format!("{} announced `{addr}`, which is not IP:PORT", target.label()))?;
        // Keep draining stdout so that a chatty server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Resident set size of the server process, in KiB (VmRSS).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no VmRSS line in {path}"))
    }

    /// User + system CPU time the server has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<std::time::Duration> {
        crate::cpu::process_cpu_time(Some(self.pid))
    }

    /// Fails if the server has exited, with its exit status and last stderr lines.
    pub async fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}){}", self.target.label(), self.diagnostics().await);
        }
        Ok(())
    }

    async fn diagnostics(&mut self) -> String {
        // Give the stderr reader a moment to catch the last lines of a crash.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let tail = self.stderr_tail.lock().expect("stderr tail lock");
        if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
            format!("; its last stderr lines:\n{}", lines.join("\n"))
        }
    }
}

async fn keep_tail(stderr: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut tail = tail.lock().expect("stderr tail lock");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}
