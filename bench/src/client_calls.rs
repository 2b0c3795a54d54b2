//! Calls through `mcp_runtime::client::Client`: one connection, a fixed
//! number of calls in flight, each a task looping `call_tool("echo", ..)`
//! the way an application shares one client between tasks.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use mcp_runtime::client::Client;
use tokio::time::Instant;

use crate::frames::ECHO_TEXT;
use crate::load::Measurement;

/// How long the in-flight calls may take to come back after the deadline.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

#[derive(serde::Serialize)]
struct EchoArguments {
    text: &'static str,
}

/// A client connected to `hello`, kept across the slices of a measurement.
pub struct ClientCalls {
    client: Client,
    in_flight: usize,
}

impl ClientCalls {
    /// Connects a client to `url` and checks one `echo` call in full.
    pub async fn open(url: &str, in_flight: usize) -> anyhow::Result<ClientCalls> {
        let client = Client::connect(url).await.with_context(|| format!("the client cannot connect to {url}"))?;
        let first = client.call_tool("echo", EchoArguments { text: ECHO_TEXT }).await?;
        let expected = serde_json::json!({ "text": ECHO_TEXT });
        ensure!(
            !first.is_error && first.structured_content.as_ref() == Some(&expected),
            "the client's echo call returned {first:?}, expected structuredContent {expected}"
        );
        Ok(ClientCalls { client, in_flight })
    }

    /// Keeps `in_flight` calls outstanding for `warmup` + `duration`; counts
    /// those sent and answered inside the window.
    pub async fn slice(&mut self, warmup: Duration, duration: Duration) -> anyhow::Result<Measurement> {
        let window_start = Instant::now() + warmup;
        let deadline = window_start + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.in_flight {
            let client = self.client.clone();
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
}
