//! `mcp-relay`: serves a WebSocket MCP server to a desktop client as a stdio
//! MCP server, and keeps the client's session alive across backend restarts.
//!
//! ```text
//! mcp-relay ws://127.0.0.1:8080/
//! ```
//!
//! # What it does
//!
//! * Every message is forwarded unchanged: one line of JSON on stdin becomes
//!   one WebSocket text frame; one frame becomes one line on stdout. The only
//!   edit ever made is turning raw line breaks between JSON tokens (from a
//!   pretty-printing backend) into spaces, because a raw line break would
//!   split the message on stdio. Strings cannot hold raw line breaks, so no
//!   value changes.
//! * stdout carries protocol only; all logs go to stderr (`--log` or `RUST_LOG`).
//! * The backend is connected at start-up, offering the `mcp` subprotocol and
//!   also accepting servers that answer without it. Every address the host
//!   name resolves to is tried in turn.
//!
//! # When the backend goes away
//!
//! * stdio stays open; the relay reconnects with exponential backoff and
//!   jitter (`--reconnect-initial-delay`, `--reconnect-max-delay`).
//! * Requests the client had sent that the backend had not answered are
//!   answered at once with a JSON-RPC error (code -32000, "the connection to
//!   the backend was lost before it answered"): the backend may or may not
//!   have run them, so the relay never re-sends them on its own. The one
//!   exception is an unanswered `initialize`, which is safe to repeat and is
//!   sent again to the new backend.
//! * On the new connection the relay replays the client's `initialize` and
//!   `notifications/initialized`, swallowing the backend's answer to that
//!   `initialize` (the client already has one), then sends what was queued.
//!
//! # Messages that arrive while the backend is down
//!
//! They are queued, in order, and sent once the backend is back and the
//! session replayed. The queue is bounded: a request waits at most
//! `--queue-timeout` (default 30 s) and at most `--queue-limit` messages
//! (default 1000) wait. A request that times out or does not fit is answered
//! with a JSON-RPC error (code -32000) naming the backend and its last
//! connection error; a notification that does not fit is dropped (there is
//! nobody to tell). A `notifications/cancelled` for a queued request removes
//! both. Queueing rather than failing at once means a backend restart of a
//! few seconds is invisible to the user; the timeout means a backend that
//! stays down never leaves the client waiting forever.
//!
//! A backend started with `MCP_AUTH_TOKEN` needs the same token from the
//! relay: `--auth-token` or the `MCP_AUTH_TOKEN` environment variable.
//!
//! A dead backend that never closes its socket is detected with WebSocket
//! pings (`--ping-interval`, default 15 s): no frame at all for three
//! intervals counts as a lost connection.
//!
//! The relay exits (status 0) when the client closes stdin or stdout.

mod backend;
mod relay;
mod stdio;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mcp_runtime::client::Endpoint;

/// Serve a WebSocket MCP server over stdio, surviving backend restarts.
///
/// Launch it from a desktop client's MCP configuration, for example
/// `{"command": "mcp-relay", "args": ["ws://127.0.0.1:8080/"]}`.
#[derive(Debug, Parser)]
#[command(name = "mcp-relay", version)]
struct Args {
    /// The backend's WebSocket URL, e.g. ws://127.0.0.1:8080/
    url: String,

    /// Seconds to wait for the TCP connect (per address), the WebSocket
    /// upgrade, and the backend's answer to a replayed initialize.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    connect_timeout: Duration,

    /// Seconds before the first reconnect retry; doubles per failure.
    #[arg(long, value_name = "SECONDS", default_value = "0.1", value_parser = seconds)]
    reconnect_initial_delay: Duration,

    /// The longest wait between reconnect attempts, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    reconnect_max_delay: Duration,

    /// How long a request may wait for the backend to come back, in seconds,
    /// before it is answered with an error.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    queue_timeout: Duration,

    /// How many messages may wait while the backend is down.
    #[arg(long, value_name = "COUNT", default_value_t = 1000)]
    queue_limit: usize,

    /// Seconds between WebSocket pings to the backend; 0 turns them off.
    #[arg(long, value_name = "SECONDS", default_value = "15", value_parser = seconds)]
    ping_interval: Duration,

    /// The backend's bearer token, for servers started with `MCP_AUTH_TOKEN`:
    /// sent as `Authorization: Bearer <token>` with every connection.
    #[arg(long, value_name = "TOKEN", env = "MCP_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,

    /// Log filter for stderr (tracing-subscriber syntax, e.g. `debug` or `mcp_relay=trace`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds (e.g. 10 or 0.5)"))?;
    Duration::try_from_secs_f64(value).map_err(|_| format!("{text:?} must be a number of seconds, 0 or more"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|e| {
        eprintln!("mcp-relay: ignoring the log filter {:?} ({e}); using `info`", args.log);
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();

    let endpoint = Endpoint::parse(&args.url).and_then(|endpoint| match &args.auth_token {
        Some(token) => endpoint.with_bearer_token(token),
        None => Ok(endpoint),
    });
    let endpoint = match endpoint {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("mcp-relay: {e}");
            return ExitCode::from(2);
        }
    };
    if args.reconnect_initial_delay > args.reconnect_max_delay || args.reconnect_initial_delay.is_zero() {
        eprintln!(
            "mcp-relay: --reconnect-initial-delay must be above 0 and at most --reconnect-max-delay ({:?} > {:?})",
            args.reconnect_initial_delay, args.reconnect_max_delay
        );
        return ExitCode::from(2);
    }
    if args.connect_timeout.is_zero() {
        eprintln!("mcp-relay: --connect-timeout must be above 0");
        return ExitCode::from(2);
    }
    let config = relay::Config {
        endpoint,
        connect_timeout: args.connect_timeout,
        reconnect_initial_delay: args.reconnect_initial_delay,
        reconnect_max_delay: args.reconnect_max_delay,
        queue_timeout: args.queue_timeout,
        queue_limit: args.queue_limit,
        ping_interval: (!args.ping_interval.is_zero()).then_some(args.ping_interval),
    };

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcp-relay: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(relay::run(config));
    // A blocking read of stdin may still be parked in the runtime's thread
    // pool; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::SUCCESS
}
