//! One server, every transport: what WebSocket, Streamable HTTP and stdio
//! share (the tools, the settings, the HTTP sessions, the access rules, the
//! shutdown signal and the tasks shutdown waits for), and [`McpService`],
//! the handle library users mount or serve.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Access;
use crate::dispatch::ServerCore;
use crate::http::{self, SessionTable};
use crate::server::ShutdownHandle;
use crate::stdio;

/// How long the end of serving waits for the Godot sink's last send (the
/// link to Godot may still have to be made; Godot may be down).
const GODOT_LOG_LAST_FLUSH: Duration = Duration::from_secs(2);

/// Settings every transport reads, resolved once by the builder.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    pub(crate) max_message_size: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) handshake_timeout: Duration,
    /// How long a request body may take to arrive in full (408 after it).
    pub(crate) body_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_sessions: usize,
    pub(crate) session_idle_timeout: Duration,
}

/// What every connection, session and call of one server shares.
pub(crate) struct Service {
    pub(crate) core: Arc<ServerCore>,
    pub(crate) config: Arc<TransportConfig>,
    pub(crate) sessions: SessionTable,
    pub(crate) access: Access,
    /// Fires when shutdown starts: no new work; calls in flight finish.
    pub(crate) shutdown: CancellationToken,
    /// Tasks shutdown waits for: HTTP calls (session calls' tasks, and a
    /// token per stateless call), and WebSocket connections upgraded outside
    /// this crate's own listener.
    pub(crate) tasks: TaskTracker,
    /// Fires when the shutdown grace is over: stateless HTTP calls still
    /// running are cancelled (session calls through their sessions).
    pub(crate) stop_calls: CancellationToken,
    sweeper_started: AtomicBool,
}

impl Service {
    pub(crate) fn new(core: ServerCore, config: TransportConfig, access: Access) -> Arc<Service> {
        let sessions = SessionTable::new(config.max_sessions, config.max_in_flight, config.session_idle_timeout);
        Arc::new(Service {
            core: Arc::new(core),
            config: Arc::new(config),
            sessions,
            access,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            stop_calls: CancellationToken::new(),
            sweeper_started: AtomicBool::new(false),
        })
    }

    /// Sends what the Godot sink still holds (the closings of the sessions
    /// that just ended), waiting at most [`GODOT_LOG_LAST_FLUSH`]: serving is over.
    pub(crate) async fn flush_godot_log(&self) {
        if let Some(log) = &self.core.godot_log {
            log.flush(GODOT_LOG_LAST_FLUSH).await;
        }
    }

    /// Starts the idle-session sweeper once, from inside the runtime.
    pub(crate) fn ensure_sweeper(self: &Arc<Self>) {
        if self.sweeper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let period = http::sweep_period(self.sessions.idle_timeout());
        let service: Weak<Service> = Arc::downgrade(self);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                let Some(service) = service.upgrade() else { return };
                service.sessions.sweep();
            }
        });
    }
}

/// A built server: its tools, settings and sessions, ready to be served on
/// any transport. Cheap to clone.
///
/// [`ServerBuilder::run`](crate::ServerBuilder::run) serves it for you.
/// Library users can instead mount [`McpService::router`] in their own axum
/// application, or serve one session over stdio with [`McpService::serve_stdio`].
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let mcp = mcp_runtime::Server::builder("t", "0").discover_tools().build()?;
/// let app = axum::Router::new().merge(mcp.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct McpService {
    pub(crate) inner: Arc<Service>,
}

impl std::fmt::Debug for McpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpService").field("tools", &self.inner.core.registry.len()).finish_non_exhaustive()
    }
}

impl McpService {
    /// The HTTP side as an axum router: Streamable HTTP at `/mcp` (POST,
    /// GET, DELETE), `GET /healthz`, and WebSocket upgrades on any path,
    /// behind the Origin, Host and bearer-token checks.
    ///
    /// Served by your own `axum::serve`, WebSocket connections run as
    /// tasks of their own; the Host check is off unless the server was
    /// bound with [`ServerBuilder::bind`](crate::ServerBuilder::bind).
    pub fn router(&self) -> axum::Router {
        self.inner.ensure_sweeper();
        http::router(self.inner.clone())
    }

    /// Serves one session over this process's stdin and stdout until stdin
    /// ends or shutdown is requested; running calls then finish (within the
    /// grace period). Only protocol messages go to stdout.
    pub async fn serve_stdio(self) -> std::io::Result<()> {
        stdio::serve(self.inner, tokio::io::stdin(), tokio::io::stdout()).await
    }

    /// [`McpService::serve_stdio`] over any byte streams (a child's pipes, a test's duplex).
    pub async fn serve_io<R, W>(self, input: R, output: W) -> std::io::Result<()>
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        stdio::serve(self.inner, input, output).await
    }

    /// Starts a graceful shutdown of everything this service serves.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { token: self.inner.shutdown.clone() }
    }
}
