//! The connection to Dewey, shared by the proxied tools and the worker.
//!
//! Made on first use, not at start-up, so Godot starts (and `logger_log`
//! works) while Dewey is down. Once made, the runtime's client reconnects by
//! itself; while it is reconnecting, a proxied tool is told at once that
//! Dewey is unreachable instead of waiting for it.

use std::sync::RwLock;
use std::time::Duration;

use mcp_runtime::client::{Client, ClientError};
use tokio::time::Instant;

/// How long one attempt to reach Dewey may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed attempt, callers within this time get its error instead
/// of each trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A lazily made, shared client for Dewey.
#[derive(Debug)]
pub struct DeweyLink {
    url: String,
    /// The `clientInfo.name` Dewey sees. `godot-worker` marks the calls that
    /// carry logs, which the runtime's Godot sink never logs back.
    client_name: &'static str,
    call_timeout: Duration,
    client: RwLock<Option<Client>>,
    attempt: tokio::sync::Mutex<Option<(Instant, String)>>,
}

impl DeweyLink {
    pub fn new(url: &str, client_name: &'static str, call_timeout: Duration) -> DeweyLink {
        DeweyLink {
            url: url.to_owned(),
            client_name,
            call_timeout,
            client: RwLock::new(None),
            attempt: tokio::sync::Mutex::new(None),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn current(&self) -> Option<Client> {
        self.client.read().expect("the client lock is never poisoned").clone()
    }

    /// The client when Dewey is reachable now; otherwise, at once, why not.
    pub async fn now(&self) -> Result<Client, String> {
        if let Some(client) = self.current() {
            return if client.is_connected() {
                Ok(client)
            } else {
                Err(format!("Dewey at {} is unreachable (the connection dropped; reconnecting)", self.url))
            };
        }
        let mut attempt = self.attempt.lock().await;
        if let Some(client) = self.current() {
            return Ok(client);
        }
        if let Some((at, error)) = attempt.as_ref()
            && at.elapsed() < RETRY_AFTER
        {
            return Err(error.clone());
        }
        let connected = Client::builder(&self.url)
            .client_info(self.client_name, env!("CARGO_PKG_VERSION"))
            .connect_timeout(CONNECT_TIMEOUT)
            .call_timeout(self.call_timeout)
            .connect()
            .await;
        match connected {
            Ok(client) => {
                *self.client.write().expect("the client lock is never poisoned") = Some(client.clone());
                *attempt = None;
                Ok(client)
            }
            Err(e) => {
                let error = format!("Dewey at {} is unreachable: {e}", self.url);
                *attempt = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Words for a failed call, naming Dewey and what to do.
    pub fn describe(&self, tool: &str, e: &ClientError) -> String {
        if let Some(message) = e.tool_message() {
            return message.to_owned();
        }
        if e.is_connection_lost() || e.is_connect() {
            return format!(
                "Dewey at {} is unreachable: {e}; `{tool}` may or may not have been done there, check before retrying",
                self.url
            );
        }
        if e.is_timeout() {
            return format!("Dewey at {} did not answer `{tool}` within {:?}: {e}", self.url, self.call_timeout);
        }
        format!("Dewey at {} could not run `{tool}`: {e}", self.url)
    }
}
