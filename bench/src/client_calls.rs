//! Calls through `mcp_runtime::client::Client`: one connection, a fixed
//! number of calls in flight, each a task looping `call_tool("echo", ..)`
//! the way an application shares one client between tasks.
//!
//! The load generator drives a connection from one task, so it never wakes
//! another thread; the client's callers and its reader are separate tasks,
//! which the bench's multi-thread runtime spreads over both workers. With
//! `MCP_BENCH_CLIENT_RUNTIME=current_thread` the client, its callers and its
//! reader run on one current-thread runtime of their own instead, which
//! shows how much of the gap is the cross-thread hand-over.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use mcp_runtime::client::Client;
use tokio::time::Instant;

use crate::frames::ECHO_TEXT;
use crate::load::Measurement;

/// How long the in-flight calls may take to come back after the deadline.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Chooses the runtime the client runs on: `multi_thread` (the default, the
/// bench's own two-worker runtime) or `current_thread`.
pub const RUNTIME_VARIABLE: &str = "MCP_BENCH_CLIENT_RUNTIME";

#[derive(serde::Serialize)]
struct EchoArguments {
    text: &'static str,
}

/// Where the client's tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRuntime {
    /// The bench's multi-thread runtime (2 workers), like the load generator.
    MultiThread,
    /// A current-thread runtime on a thread of its own.
    CurrentThread,
}

impl ClientRuntime {
    /// Reads [`RUNTIME_VARIABLE`]; anything but the two names is an error.
    pub fn from_env() -> anyhow::Result<ClientRuntime> {
        match std::env::var(RUNTIME_VARIABLE).as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("multi_thread") => Ok(ClientRuntime::MultiThread),
            Ok("current_thread") => Ok(ClientRuntime::CurrentThread),
            other => bail!("{RUNTIME_VARIABLE} must be `multi_thread` or `current_thread`, not {other:?}"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ClientRuntime::MultiThread => "multi_thread, 2 workers",
            ClientRuntime::CurrentThread => "current_thread, own thread",
        }
    }
}

/// A current-thread runtime kept running on its own thread until dropped.
struct DedicatedRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DedicatedRuntime {
    fn start() -> anyhow::Result<DedicatedRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot build the client's current-thread runtime")?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-client".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })
            .context("cannot start the client's thread")?;
        Ok(DedicatedRuntime { handle, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for DedicatedRuntime {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client connected to `hello`, kept across the slices of a measurement.
pub struct ClientCalls {
    // Declared before `runtime`: the client is dropped while its tasks' runtime still runs.
    client: Client,
    in_flight: usize,
    runtime: Option<DedicatedRuntime>,
}

impl ClientCalls {
    /// Connects a client to `url`, on the runtime [`RUNTIME_VARIABLE`]
    /// names, and checks one `echo` call in full.
    pub async fn open(url: &str, in_flight: usize) -> anyhow::Result<ClientCalls> {
        let on = ClientRuntime::from_env()?;
        eprintln!("the client runs on: {} ({RUNTIME_VARIABLE})", on.label());
        let runtime = match on {
            ClientRuntime::MultiThread => None,
            ClientRuntime::CurrentThread => Some(DedicatedRuntime::start()?),
        };
        let connect = connect_checked(url.to_owned());
        let client = match &runtime {
            None => connect.await?,
            Some(runtime) => runtime.handle.spawn(connect).await.context("the client's connect task panicked")??,
        };
        Ok(ClientCalls { client, in_flight, runtime })
    }

    /// Keeps `in_flight` calls outstanding for `warmup` + `duration`; counts
    /// those sent and answered inside the window.
    pub async fn slice(&mut self, warmup: Duration, duration: Duration) -> anyhow::Result<Measurement> {
        let calls = run_slice(self.client.clone(), self.in_flight, warmup, duration);
        match &self.runtime {
            None => calls.await,
            Some(runtime) => runtime.handle.spawn(calls).await.context("the client's slice task panicked")?,
        }
    }
}

async fn connect_checked(url: String) -> anyhow::Result<Client> {
    let client = Client::connect(&url).await.with_context(|| format!("the client cannot connect to {url}"))?;
    let first = client.call_tool("echo", EchoArguments { text: ECHO_TEXT }).await?;
    let expected = serde_json::json!({ "text": ECHO_TEXT });
    ensure!(
        !first.is_error && first.structured_content.as_ref() == Some(&expected),
        "the client's echo call returned {first:?}, expected structuredContent {expected}"
    );
    Ok(client)
}

async fn run_slice(
    client: Client,
    in_flight: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Measurement> {
    let window_start = Instant::now() + warmup;
    let deadline = window_start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let client = client.clone();
        tasks.spawn(tokio::time::timeout_at(deadline + DRAIN_GRACE, async move {
            let mut measured = Measurement::new(duration);
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    return Ok::<_, anyhow::Error>(measured);
                }
                let result = client.call_tool("echo", EchoArguments { text: ECHO_TEXT }).await?;
                if result.is_error {
                    bail!("an echo call through the client failed: {}", result.text());
                }
                let now = Instant::now();
                let in_window = sent >= window_start && now <= deadline;
                measured.record(in_window.then(|| now - sent));
            }
        }));
    }
    let mut total = Measurement::new(duration);
    while let Some(joined) = tasks.join_next().await {
        let measured = joined
            .context("a client task panicked")?
            .map_err(|_| anyhow!("client calls were still unanswered {DRAIN_GRACE:?} after the deadline"))??;
        total.merge(&measured);
    }
    Ok(total)
}
