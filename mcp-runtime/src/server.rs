//! Building, binding, serving and shutting down an MCP server, and `run()`,
//! the whole `main` of a tool binary: WebSocket and Streamable HTTP on one
//! port, or stdio.

use std::any::TypeId;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::Instrument;

use crate::access::Access;
use crate::catalog;
use crate::dispatch::ServerCore;
use crate::error::Error;
use crate::extract::{State, StateMap};
use crate::protocol;
use crate::registry::Registry;
use crate::service::{McpService, Service, TransportConfig};
use crate::tool::{self, Tool, ToolFactory};
use crate::transport::{self, UpgradeSlot};

const DEFAULT_TOOLS_PAGE_SIZE: usize = 100;
const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
const DEFAULT_MAX_IN_FLIGHT: usize = 64;
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const DEFAULT_MAX_SESSIONS: usize = 10_000;
const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(1800);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole request body must arrive within this: a client trickling a
/// 16 MiB body must not hold a connection slot forever. 30 s lets the
/// largest message through at about 560 KB/s.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Entry point: `Server::builder("name", "1.0.0")`.
///
/// A binary's whole `main` is
/// `Server::builder("adder", "1.0.0").discover_tools().default_port(9000).run().await`
/// (the README's quick start has the complete file); [`ServerBuilder::run`]
/// handles the command line, [`ServerArgs`] lets a service add flags of its own.
///
/// In a library or a test, bind and serve yourself:
///
/// ```no_run
/// # async fn example() -> Result<(), mcp_runtime::Error> {
/// let bound = mcp_runtime::Server::builder("t", "0").discover_tools().bind("127.0.0.1:0").await?;
/// let addr = bound.local_addr();
/// let shutdown = bound.shutdown_handle();
/// let server = tokio::spawn(bound.serve());
/// // ... connect to ws://{addr} or POST to http://{addr}/mcp ...
/// shutdown.shutdown(); // calls in flight finish, connections close with 1012
/// server.await.expect("serve panicked")?;
/// # Ok(()) }
/// ```
///
/// Or mount it in your own axum application with
/// [`ServerBuilder::build`] and [`McpService::router`].
///
/// # Protocol behaviour
///
/// - Transports: WebSocket (a GET with `Upgrade: websocket` on any path)
///   and Streamable HTTP (`/mcp`) on one port, or stdio (`--stdio`).
/// - JSON-RPC 2.0, one message per WebSocket text frame, HTTP POST or
///   stdio line. Ids (string or
///   integer) are echoed byte for byte; notifications are never answered.
///   Batches (arrays) get one `-32600`: MCP 2025-06-18 removed batching.
/// - Sessions: `initialize` echoes 2024-11-05, 2025-03-26, 2025-06-18 or
///   2025-11-25 and answers 2025-11-25 for anything else. Before it, `ping`
///   and `server/discover` work and everything else gets `-32600` saying to
///   initialize first, except legacy direct calls (method = tool name, params
///   = arguments, the tool's JSON as `result`), which old clients send
///   without a handshake.
/// - Stateless (2026-07-28): a request whose
///   `params._meta["io.modelcontextprotocol/protocolVersion"]` is set is
///   served on its own, with `resultType: "complete"`; it must also carry
///   `_meta["io.modelcontextprotocol/clientCapabilities"]`. An unknown
///   version is `-32022` with `data: {supported, requested}`.
/// - Calls on one connection run concurrently, up to `max_in_flight`;
///   `notifications/cancelled` drops the call and fires its token, and the
///   call gets no response. They run inside the connection's task, so a
///   tool must not block the thread: put CPU-heavy or blocking work in
///   `tokio::task::spawn_blocking`.
#[derive(Debug)]
pub struct Server {
    _private: (),
}

impl Server {
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ServerBuilder {
        ServerBuilder {
            name: name.into(),
            version: version.into(),
            instructions: None,
            tools: Vec::new(),
            state: StateMap::default(),
            setup: None,
            default_port: 0,
            tools_page_size: None,
            max_message_size: None,
            max_in_flight: None,
            max_connections: None,
            ping_interval: None,
            shutdown_grace: None,
            body_timeout: None,
            max_sessions: None,
            session_idle_timeout: None,
            allowed_origins: Vec::new(),
            auth_token: None,
            godot_url: None,
        }
    }
}

/// Collects tools, state and limits. Nothing is checked until
/// [`ServerBuilder::bind`] (or [`ServerBuilder::run`], or `--list-tools`),
/// which reports every problem at once: each duplicate tool name, each
/// `State<T>` the tools take and the builder lacks (naming every tool that
/// takes it), each tool definition the compiler could not check.
///
/// Limits can also come from the environment, which wins over the builder
/// so operators can tune a binary without rebuilding it: `MCP_TOOLS_PAGE_SIZE`,
/// `MCP_MAX_MESSAGE_SIZE` (bytes), `MCP_MAX_IN_FLIGHT`, `MCP_MAX_CONNECTIONS`,
/// `MCP_PING_INTERVAL_SECS` (0 turns keepalive off), `MCP_SHUTDOWN_GRACE_SECS`,
/// `MCP_BODY_TIMEOUT_SECS`, `MCP_MAX_SESSIONS`, `MCP_SESSION_IDLE_SECS`, `MCP_ALLOWED_ORIGINS`
/// (comma-separated) and `MCP_AUTH_TOKEN`.
pub struct ServerBuilder {
    name: String,
    version: String,
    instructions: Option<String>,
    tools: Vec<Tool>,
    state: StateMap,
    setup: Option<Setup>,
    default_port: u16,
    tools_page_size: Option<usize>,
    max_message_size: Option<usize>,
    max_in_flight: Option<usize>,
    max_connections: Option<usize>,
    ping_interval: Option<Duration>,
    shutdown_grace: Option<Duration>,
    body_timeout: Option<Duration>,
    max_sessions: Option<usize>,
    session_idle_timeout: Option<Duration>,
    allowed_origins: Vec<String>,
    auth_token: Option<String>,
    /// `Some(None)`: the Godot sink is off whatever the environment says.
    godot_url: Option<Option<String>>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("tools", &self.tools.iter().map(Tool::name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Adds every `#[mcp_tool]` linked into the binary, sorted by name so the
    /// listing order does not depend on the linker.
    pub fn discover_tools(mut self) -> Self {
        let mut found: Vec<Tool> = tool::discovered_tools().collect();
        found.sort_by(|a, b| a.name().cmp(b.name()));
        self.tools.extend(found);
        self
    }

    /// Adds one `#[mcp_tool]` explicitly: `.tool::<add>()`.
    pub fn tool<T: ToolFactory>(mut self) -> Self {
        self.tools.push(T::tool());
        self
    }

    /// Adds an already-built [`Tool`] (for example from [`Tool::from_parts`]).
    pub fn add_tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Shared state for tools taking `State<T>`; one value per type.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// State made by `setup`, which [`ServerBuilder::run`] awaits after the
    /// command line is handled and logging is set up, before binding: so
    /// `--help` and `--list-tools` never open a database. It returns one
    /// `State(value)` or a tuple of up to four; their types count as present
    /// for `--list-tools`'s checks. An `Err` stops the server, printed as
    /// `error: {e}`.
    ///
    /// ```no_run
    /// # #[derive(Clone)] struct Db;
    /// # impl Db { async fn open(_: &str) -> Result<Db, String> { Ok(Db) } }
    /// use mcp_runtime::{Server, State};
    ///
    /// # async fn example() -> std::process::ExitCode {
    /// Server::builder("notes", "1.0.0")
    ///     .discover_tools()
    ///     .state_from(|| async {
    ///         let url = std::env::var("NOTES_DB").map_err(|_| "set NOTES_DB".to_owned())?;
    ///         Ok::<_, String>(State(Db::open(&url).await?))
    ///     })
    ///     .run()
    ///     .await
    /// # }
    /// ```
    ///
    /// Only [`ServerBuilder::run`] runs it; [`ServerBuilder::bind`] checks
    /// the state that is there.
    pub fn state_from<S, F, Fut, E>(mut self, setup: F) -> Self
    where
        S: StateSet,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
        E: fmt::Display,
    {
        let make: SetupFn = Box::new(move || {
            Box::pin(async move {
                let set = setup().await.map_err(|e| e.to_string())?;
                let mut state = StateMap::default();
                set.insert_into(&mut state);
                Ok(state)
            })
        });
        self.setup = Some(Setup { make, provides: S::types() });
        self
    }

    /// The start-up checks `bind()` and `--list-tools` run, without binding:
    /// every problem at once, in one [`Error`] (see [`Error::problems`]):
    /// the tools, the state they take, and every setting (builder value or
    /// environment variable). State `state_from` will make counts as present.
    pub fn check(&self) -> Result<(), Error> {
        both(self.settings(), self.registry()).map(drop)
    }

    fn registry(&self) -> Result<Registry, Error> {
        let provides: &[TypeId] = self.setup.as_ref().map_or(&[], |s| &s.provides);
        let has_state = |type_id: TypeId| self.state.contains(type_id) || provides.contains(&type_id);
        Registry::build(self.tools.clone(), Some(&has_state))
    }

    /// Every setting, from the environment (which wins), the builder or the
    /// default, checked: the one place `build()` and `check()` read them.
    fn settings(&self) -> Result<Settings, Error> {
        let mut problems = Problems::default();
        let mut count = |env: &str, builder: Option<usize>, default: usize, what: &str| {
            let value = problems.env::<usize>(env).or(builder).unwrap_or(default);
            problems.require(value >= 1, || format!("the {what} ({env}) must be at least 1"));
            value
        };
        let tools_page_size =
            count("MCP_TOOLS_PAGE_SIZE", self.tools_page_size, DEFAULT_TOOLS_PAGE_SIZE, "tools page size");
        let max_message_size =
            count("MCP_MAX_MESSAGE_SIZE", self.max_message_size, DEFAULT_MAX_MESSAGE_SIZE, "maximum message size");
        let max_in_flight =
            count("MCP_MAX_IN_FLIGHT", self.max_in_flight, DEFAULT_MAX_IN_FLIGHT, "calls in flight per connection");
        let max_connections =
            count("MCP_MAX_CONNECTIONS", self.max_connections, DEFAULT_MAX_CONNECTIONS, "connection limit");
        let max_sessions = count("MCP_MAX_SESSIONS", self.max_sessions, DEFAULT_MAX_SESSIONS, "session limit");
        for (what, env, value) in [
            ("connection limit", "MCP_MAX_CONNECTIONS", max_connections),
            ("calls in flight per connection", "MCP_MAX_IN_FLIGHT", max_in_flight),
        ] {
            problems.require(value <= Semaphore::MAX_PERMITS, || {
                format!("the {what} ({env}) must be at most {}, got {value}", Semaphore::MAX_PERMITS)
            });
        }
        let mut seconds = |env: &str, builder: Option<Duration>, default: Duration| {
            problems.env::<u64>(env).map(Duration::from_secs).or(builder).unwrap_or(default)
        };
        let ping_interval = seconds("MCP_PING_INTERVAL_SECS", self.ping_interval, DEFAULT_PING_INTERVAL);
        let shutdown_grace = seconds("MCP_SHUTDOWN_GRACE_SECS", self.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        let body_timeout = seconds("MCP_BODY_TIMEOUT_SECS", self.body_timeout, DEFAULT_BODY_TIMEOUT);
        let session_idle_timeout = seconds("MCP_SESSION_IDLE_SECS", self.session_idle_timeout, DEFAULT_SESSION_IDLE);
        problems.require(!body_timeout.is_zero(), || {
            "the request body timeout (MCP_BODY_TIMEOUT_SECS) must be at least 1 s".to_owned()
        });
        problems.require(!session_idle_timeout.is_zero(), || {
            "the session idle timeout (MCP_SESSION_IDLE_SECS) must be at least 1 s".to_owned()
        });
        let allowed_origins = match std::env::var("MCP_ALLOWED_ORIGINS") {
            Ok(list) => list.split(',').map(str::to_owned).collect(),
            Err(_) => self.allowed_origins.clone(),
        };
        let auth_token = std::env::var("MCP_AUTH_TOKEN").ok().or_else(|| self.auth_token.clone());
        problems.require(auth_token.as_deref().is_none_or(|t| !t.trim().is_empty() && t.trim() == t), || {
            "the bearer token (MCP_AUTH_TOKEN) must be non-empty, without surrounding spaces".to_owned()
        });
        let godot_url = self.godot_url.clone().unwrap_or_else(crate::godot_log::url_from_env);
        if let Some(url) = &godot_url
            && let Err(e) = crate::godot_log::check_url(url)
        {
            problems.0.push(e);
        }
        problems.into_result(Settings {
            tools_page_size,
            transport: TransportConfig {
                max_message_size,
                max_in_flight,
                ping_interval: (!ping_interval.is_zero()).then_some(ping_interval),
                shutdown_grace,
                handshake_timeout: HANDSHAKE_TIMEOUT,
                body_timeout,
                max_connections,
                max_sessions,
                session_idle_timeout,
            },
            allowed_origins,
            auth_token,
            godot_url,
        })
    }

    /// Text `initialize` and `server/discover` return to tell the model how to use the tools.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// The port [`ServerBuilder::run`] listens on when `MCP_PORT` is unset.
    pub fn default_port(mut self, port: u16) -> Self {
        self.default_port = port;
        self
    }

    /// Tools per `tools/list` page (default 100).
    pub fn tools_page_size(mut self, size: usize) -> Self {
        self.tools_page_size = Some(size);
        self
    }

    /// Largest accepted message (and frame), in bytes (default 16 MiB); bigger ones close the connection with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Calls one connection may have running (default 64); one more waits unstarted, then the server stops reading from it.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = Some(calls);
        self
    }

    /// Open connections before new ones are refused with HTTP 503 (default 10,000).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// Keepalive ping period (default 30 s); a peer that has sent nothing by
    /// the next ping is dropped. `Duration::ZERO` turns keepalive off.
    pub fn ping_interval(mut self, period: Duration) -> Self {
        self.ping_interval = Some(period);
        self
    }

    /// How long shutdown waits for calls in flight (default 10 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = Some(grace);
        self
    }

    /// How long a Streamable HTTP request body may take to arrive in full
    /// before the request is answered 408 (default 30 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = Some(timeout);
        self
    }

    /// Streamable HTTP sessions open at once (default 10,000). Past it a new
    /// session closes the quiet one (no running call, no open stream) used
    /// the longest ago; `initialize` gets 503 only when every session is busy.
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = Some(sessions);
        self
    }

    /// How long a Streamable HTTP session may go without a request, an open
    /// stream or a running call before it is closed (default 30 minutes).
    pub fn session_idle_timeout(mut self, idle: Duration) -> Self {
        self.session_idle_timeout = Some(idle);
        self
    }

    /// Browser origins allowed besides loopback ones (`https://app.example.com`;
    /// `*` allows any). Requests with any other `Origin` get 403.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Requires `Authorization: Bearer <token>` on every HTTP request and
    /// WebSocket upgrade (`/healthz` excepted).
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }

    /// Where to log connections and tool calls (Godot's `ws://` URL), or
    /// `None` for nowhere. Without this call, `GODOT_URL` decides (and
    /// `LOGGING_ENABLED=false` turns it off); see the README.
    pub fn log_to_godot(mut self, url: Option<&str>) -> Self {
        self.godot_url = Some(url.map(str::to_owned));
        self
    }

    /// The Markdown tool catalog (what `--list-tools` prints), after the
    /// same checks as [`ServerBuilder::check`].
    pub fn catalog_markdown(&self) -> Result<String, Error> {
        let (_, registry) = both(self.settings(), self.registry())?;
        Ok(catalog::markdown(
            &self.name,
            &self.version,
            self.instructions.as_deref(),
            registry.tools().iter().map(|t| &**t),
        ))
    }

    /// Checks the tools and settings and builds the service, ready to be
    /// served on any transport (see [`McpService`]). Every problem is
    /// reported at once, as by [`ServerBuilder::check`].
    pub fn build(self) -> Result<McpService, Error> {
        let has_state = |type_id: TypeId| self.state.contains(type_id);
        let registry = Registry::build(self.tools.clone(), Some(&has_state));
        let (settings, registry) = both(self.settings(), registry)?;
        let godot_log = settings.godot_url.map(|url| crate::godot_log::GodotLog::new(&url, &self.name)).transpose()?;
        let mut core = ServerCore::new(
            self.name,
            self.version,
            self.instructions,
            registry,
            Arc::new(self.state),
            settings.tools_page_size,
        );
        core.godot_log = godot_log;
        let access = Access::new(&settings.allowed_origins, settings.auth_token);
        Ok(McpService { inner: Service::new(core, settings.transport, access) })
    }

    /// Checks the tools and opens the listening socket.
    pub async fn bind<A: ToSocketAddrs + fmt::Display>(self, addr: A) -> Result<BoundServer, Error> {
        let service = self.build()?;
        let addr_text = addr.to_string();
        let listener =
            TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr: addr_text.clone(), source })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind { addr: addr_text, source })?;
        // DNS rebinding: a server only reachable on loopback answers only loopback names.
        service.inner.access.set_loopback_only(local_addr.ip().is_loopback());
        Ok(BoundServer { listener, local_addr, service })
    }

    /// The whole `main` of a tool binary: reads the command line
    /// ([`ServerArgs`]: `--help`, `--list-tools`, `--stdio`, `--host`, `--port`, with
    /// the environment variables and defaults listed in `--help`), then
    /// [`ServerBuilder::run_with`]. Returns the process exit code: 0 after a
    /// clean shutdown, `--help` or `--list-tools`, 2 for a bad command line,
    /// 1 when the server cannot start.
    pub async fn run(self) -> ExitCode {
        let command = self.command();
        let args = command.try_get_matches().and_then(|m| <ServerArgs as clap::FromArgMatches>::from_arg_matches(&m));
        match args {
            Ok(args) => self.run_with(args).await,
            Err(e) => {
                let _ = e.print();
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
            }
        }
    }

    /// The command line [`ServerBuilder::run`] parses: [`ServerArgs`]
    /// under this server's name and version, with its default port shown.
    pub fn command(&self) -> clap::Command {
        let command = <ServerArgs as clap::Args>::augment_args(clap::Command::new(self.name.clone()));
        ServerArgs::with_defaults(command, self.default_port).version(self.version.clone()).about(format!(
            "{} {}: an MCP server over Streamable HTTP and WebSocket (one port), or stdio",
            self.name, self.version
        ))
    }

    /// [`ServerBuilder::run`] with the command line already parsed, for a
    /// service whose own `clap` parser flattens [`ServerArgs`] in. With
    /// `--list-tools`, prints the catalog after the start-up checks and
    /// returns; otherwise sets up logging, awaits
    /// [`state_from`](ServerBuilder::state_from), then either serves one
    /// session on stdin/stdout (`--stdio` or `MCP_TRANSPORT=stdio`) until
    /// end of input or a signal, or binds, prints `listening on
    /// ws://IP:PORT` and `listening on http://IP:PORT/mcp` on stdout and
    /// serves until SIGINT/SIGTERM.
    pub async fn run_with(mut self, args: ServerArgs) -> ExitCode {
        if args.list_tools {
            return match self.catalog_markdown() {
                Ok(markdown) => {
                    print!("{markdown}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }

        let stdio = match std::env::var("MCP_TRANSPORT").as_deref() {
            Err(_) | Ok("") | Ok("network") => args.stdio,
            Ok("stdio") => true,
            Ok(other) => {
                eprintln!("error: MCP_TRANSPORT must be `stdio` or `network`, got {other:?}");
                return ExitCode::from(2);
            }
        };
        init_tracing();
        if !stdio {
            raise_open_file_limit();
        }
        if let Some(setup) = self.setup.take() {
            match (setup.make)().await {
                Ok(state) => self.state.extend(state),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        if stdio {
            return self.run_stdio().await;
        }
        let host = args.host;
        let port = args.port.unwrap_or(self.default_port);
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let bound = match self.bind(addr).await {
            Ok(bound) => bound,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        // The lines on stdout: scripts and tests wait for the first. One
        // write, unchecked: a reader that takes the first line and closes
        // the pipe must not make the second fail (println! would panic).
        let addr = bound.local_addr();
        let announce = format!("listening on ws://{addr}\nlistening on http://{addr}/mcp\n");
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(announce.as_bytes()).and_then(|()| stdout.flush());
        drop(stdout);
        tracing::info!(
            addr = %bound.local_addr(),
            tools = bound.service.inner.core.registry.len(),
            auth = bound.service.inner.access.requires_token(),
            "MCP server listening (WebSocket and Streamable HTTP)"
        );

        let shutdown = bound.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; finishing calls in flight");
            shutdown.shutdown();
        });
        match bound.serve().await {
            Ok(()) => {
                tracing::info!("server stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// `run()` with `--stdio`: one session on stdin/stdout; EOF or a signal
    /// drains the running calls and exits 0.
    async fn run_stdio(self) -> ExitCode {
        let service = match self.build() {
            Ok(service) => service,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(tools = service.inner.core.registry.len(), "MCP server on stdio");
        let shutdown = service.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; finishing calls in flight");
            shutdown.shutdown();
        });
        match service.serve_stdio().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

// The docs are `cfg(doc)` only: clap would turn a doc comment into the
// `about` of every command this is flattened into, replacing the service's.
#[cfg_attr(
    doc,
    doc = r#"The framework's command line. [`ServerBuilder::run`] parses it alone; a
service with flags or subcommands of its own flattens it into its own
`clap` parser and calls [`ServerBuilder::run_with`]:

```no_run
use clap::Parser;
use mcp_runtime::{Server, ServerArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Where the notes live
    #[arg(long, env = "NOTES_DIR", default_value = "./notes")]
    notes_dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    # let _ = &cli.notes_dir;
    Server::builder("notes", "1.0.0").discover_tools().default_port(9000).run_with(cli.server).await
}
```

To show the service's port as `--port`'s default and list the environment
settings in `--help`, as `run()` does, parse with
`ServerArgs::with_defaults(Cli::command(), 9000)` and `Cli::from_arg_matches`."#
)]
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Check the server as if starting it, print the tool catalog as Markdown and exit
    #[arg(long)]
    pub list_tools: bool,
    /// Serve one session on stdin/stdout instead of the network (also MCP_TRANSPORT=stdio)
    #[arg(long)]
    pub stdio: bool,
    /// Address to listen on
    #[arg(long, env = "MCP_HOST", default_value = "0.0.0.0", value_name = "ADDR")]
    pub host: String,
    /// Port to listen on; 0 picks a free one [default: the service's port]
    #[arg(long, env = "MCP_PORT", value_name = "PORT", value_parser = parse_port)]
    pub port: Option<u16>,
}

impl Default for ServerArgs {
    fn default() -> Self {
        ServerArgs { list_tools: false, stdio: false, host: "0.0.0.0".to_owned(), port: None }
    }
}

impl ServerArgs {
    /// `command` (which includes these arguments) with `default_port`
    /// shown as `--port`'s default and the environment settings listed
    /// after the options (appended to the command's own `after_help`).
    pub fn with_defaults(command: clap::Command, default_port: u16) -> clap::Command {
        let after = match command.get_after_help() {
            Some(own) => format!("{own}\n\n{ENVIRONMENT_HELP}"),
            None => ENVIRONMENT_HELP.to_owned(),
        };
        command
            .mut_arg("port", |arg| {
                arg.default_value(default_port.to_string()).help("Port to listen on; 0 picks a free one")
            })
            .after_help(after)
    }
}

/// A port from `--port` or `MCP_PORT`, saying which two places it may come from.
fn parse_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| "a port is a number from 0 to 65535 (0 picks a free one); set by --port or MCP_PORT".to_owned())
}

/// The settings only the environment sets, with their defaults.
const ENVIRONMENT_HELP: &str = "\
Environment (these win over the service's builder):
  RUST_LOG                 log filter for stderr [default: info]
  MCP_TOOLS_PAGE_SIZE      tools per tools/list page [default: 100]
  MCP_MAX_MESSAGE_SIZE     largest message in bytes [default: 16777216]
  MCP_MAX_IN_FLIGHT        running calls per connection [default: 64]
  MCP_MAX_CONNECTIONS      open connections [default: 10000]
  MCP_MAX_SESSIONS         Streamable HTTP sessions open at once [default: 10000]
  MCP_SESSION_IDLE_SECS    idle Streamable HTTP sessions close after this [default: 1800]
  MCP_ALLOWED_ORIGINS      browser origins allowed besides loopback, comma-separated
  MCP_AUTH_TOKEN           require `Authorization: Bearer <token>` on HTTP and WebSocket
  MCP_TRANSPORT            `stdio` does what --stdio does
  MCP_PING_INTERVAL_SECS   keepalive period, 0 = off [default: 30]
  MCP_SHUTDOWN_GRACE_SECS  time calls get to finish on shutdown [default: 10]
  MCP_BODY_TIMEOUT_SECS    time a request body gets to arrive in full [default: 30]
  GODOT_URL                log connections and tool calls to this Godot (ws://) [default: off]
  LOGGING_ENABLED          false turns GODOT_URL off [default: true]";

type SetupFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<StateMap, String>> + Send>> + Send>;

/// `state_from`'s work and the state types it promises.
struct Setup {
    make: SetupFn,
    provides: Vec<TypeId>,
}

/// What [`ServerBuilder::state_from`] may return: one `State(value)` or a
/// tuple of up to four, each value becoming state of its type.
pub trait StateSet: Send + 'static {
    fn types() -> Vec<TypeId>;
    fn insert_into(self, state: &mut StateMap);
}

impl<T: Clone + Send + Sync + 'static> StateSet for State<T> {
    fn types() -> Vec<TypeId> {
        vec![TypeId::of::<T>()]
    }

    fn insert_into(self, state: &mut StateMap) {
        state.insert(self.0);
    }
}

macro_rules! state_tuples {
    ($(($($name:ident),+)),+) => {$(
        impl<$($name: StateSet),+> StateSet for ($($name,)+) {
            fn types() -> Vec<TypeId> {
                let mut types = Vec::new();
                $(types.extend($name::types());)+
                types
            }

            #[allow(non_snake_case)]
            fn insert_into(self, state: &mut StateMap) {
                let ($($name,)+) = self;
                $($name.insert_into(state);)+
            }
        }
    )+};
}

state_tuples!((A, B), (A, B, C), (A, B, C, D));

/// A server with its socket open, ready to [`serve`](BoundServer::serve).
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: McpService,
}

impl fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundServer").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl BoundServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.service.shutdown_handle()
    }

    /// Serves WebSocket and Streamable HTTP until shut down, then drains:
    /// `/healthz` answers 503 and new work is refused, calls in flight get
    /// the grace period to finish (then they are cancelled), WebSocket
    /// connections close with 1012 (Service Restart), and it returns.
    pub async fn serve(self) -> Result<(), Error> {
        let BoundServer { listener, local_addr: _, service } = self;
        let service = service.inner;
        service.ensure_sweeper();
        let router = crate::http::router(service.clone());
        let connections = TaskTracker::new();
        // One permit per open connection; a connection past the limit still
        // gets its handshake, to be told 503 rather than reset.
        let slots = Arc::new(Semaphore::new(service.config.max_connections));
        let shutdown = service.shutdown.clone();
        let accepting = CancellationToken::new();
        let accept_loop = {
            let (service, connections, slots, accepting) =
                (service.clone(), connections.clone(), slots.clone(), accepting.clone());
            async move {
                loop {
                    let accepted = tokio::select! {
                        biased;
                        _ = accepting.cancelled() => break,
                        accepted = listener.accept() => accepted,
                    };
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors or a connection reset before
                            // accept: keep serving, but do not spin on it.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let slot = slots.clone().try_acquire_owned().ok();
                    let connection = serve_tcp(service.clone(), router.clone(), stream, slot.is_some());
                    connections.spawn(
                        async move {
                            connection.await;
                            drop(slot);
                        }
                        .instrument(tracing::info_span!("connection", %peer)),
                    );
                }
            }
        };
        let accept_task = tokio::spawn(accept_loop);

        shutdown.cancelled().await;
        // Draining: the listener stays open so /healthz can say 503, while
        // calls in flight get their grace.
        let running = service.sessions.running_calls();
        let open_now = service.config.max_connections - slots.available_permits();
        tracing::info!(connections = open_now, http_calls = running, "draining: letting calls in flight finish");
        service.tasks.close();
        let grace = service.config.shutdown_grace;
        if tokio::time::timeout(grace, service.tasks.wait()).await.is_err() {
            tracing::warn!(
                calls = service.sessions.running_calls(),
                "shutdown grace period over; cancelling Streamable HTTP calls in flight"
            );
            service.sessions.cancel_all_calls();
            service.stop_calls.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), service.tasks.wait()).await;
        }
        service.sessions.close_all();
        // WebSocket connections drain on their own within the grace; the
        // margin covers closing handshakes with slow peers.
        connections.close();
        if tokio::time::timeout(Duration::from_secs(5), connections.wait()).await.is_err() {
            tracing::warn!("some connections did not close in time; leaving them");
        }
        accepting.cancel();
        let _ = accept_task.await;
        service.flush_godot_log().await; // godot_log hook: the closings just recorded
        Ok(())
    }
}

/// One TCP connection: HTTP/1.1 through hyper until it ends, then the
/// WebSocket in the same task if the connection was upgraded.
async fn serve_tcp(service: Arc<Service>, router: axum::Router, stream: TcpStream, admitted: bool) {
    // Boxed, like every short-lived stage: the task keeps room for its
    // largest state for as long as the connection lives, and an idle
    // WebSocket should pay for its own loop only. Everything of the HTTP
    // stage (hyper's buffers, the router) is gone before the WebSocket runs.
    let upgraded = Box::pin(serve_http(service.clone(), router, stream, admitted)).await;
    if let Some(pending) = upgraded {
        Box::pin(pending.run(service)).await;
    }
}

/// HTTP/1.1 on one connection until it closes or is upgraded (then the
/// WebSocket handshake it answered).
async fn serve_http(
    service: Arc<Service>,
    router: axum::Router,
    stream: TcpStream,
    admitted: bool,
) -> Option<transport::PendingUpgrade> {
    // Responses are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    // godot_log hook: the sink logs who opened a session; nothing else reads the peer.
    let peer = if service.core.godot_log.is_some() { stream.peer_addr().ok() } else { None };
    let io = TokioIo::new(stream);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(service.config.handshake_timeout);
    if !admitted {
        let max = service.config.max_connections;
        tracing::warn!(max_connections = max, "refused a connection: at the connection limit");
        http.keep_alive(false);
        let refuse =
            hyper::service::service_fn(move |_: Request<Incoming>| async move { Ok::<_, Infallible>(over_limit(max)) });
        let _ = tokio::time::timeout(service.config.handshake_timeout, http.serve_connection(io, refuse)).await;
        return None;
    }
    let slot = UpgradeSlot::default();
    let handler = {
        let slot = slot.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            if request.headers().contains_key(header::UPGRADE) {
                request.extensions_mut().insert(slot.clone());
            }
            if let Some(peer) = peer {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            }
            router.clone().oneshot(request)
        })
    };
    // A connection made while draining gets one answer (a health check's
    // 503, say) and is closed.
    let draining = service.shutdown.is_cancelled();
    if draining {
        http.keep_alive(false);
    }
    let connection = http.serve_connection(io, handler).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = if draining {
        connection.await
    } else {
        tokio::select! {
            result = connection.as_mut() => result,
            _ = service.shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
    slot.take()
}

fn over_limit(max: usize) -> Response<axum::body::Body> {
    let message = format!("this MCP server is at its limit of {max} connections; retry later");
    let body = protocol::error_response(None, protocol::error_code::INVALID_REQUEST, &message, None);
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Triggers graceful shutdown of a [`BoundServer`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    pub(crate) token: CancellationToken,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    pub fn is_shutdown(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// The settings [`ServerBuilder::settings`] resolved.
struct Settings {
    tools_page_size: usize,
    transport: TransportConfig,
    allowed_origins: Vec<String>,
    auth_token: Option<String>,
    godot_url: Option<String>,
}

/// Setting problems found so far: all are reported, not only the first.
#[derive(Default)]
struct Problems(Vec<Error>);

impl Problems {
    /// A whole number from the environment, `None` when unset (or unusable,
    /// which is recorded).
    fn env<T: FromStr>(&mut self, name: &str) -> Option<T> {
        let text = std::env::var(name).ok()?;
        let parsed = text.trim().parse::<T>().ok();
        if parsed.is_none() {
            self.0.push(Error::Config(format!(
                "environment variable {name} must be a non-negative whole number, got {text:?}"
            )));
        }
        parsed
    }

    fn require(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(Error::Config(problem()));
        }
    }

    fn into_result<T>(self, value: T) -> Result<T, Error> {
        match Error::from_problems(self.0) {
            None => Ok(value),
            Some(error) => Err(error),
        }
    }
}

/// Both results, or every problem of either in one error.
fn both<A, B>(a: Result<A, Error>, b: Result<B, Error>) -> Result<(A, B), Error> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let mut problems = Vec::new();
            for e in [a.err(), b.err()].into_iter().flatten() {
                problems.extend(e.into_problems());
            }
            Err(Error::from_problems(problems).expect("at least one was an error"))
        }
    }
}

/// Installs the stderr log subscriber `run()` uses (filter from `RUST_LOG`,
/// default `info`). Call it first when a service logs before `run()` (opening
/// a database, migrations); `run()` then keeps it. A subscriber the
/// application installed itself wins over both.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: not in files, pipes or CI logs.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // A subscriber installed by the application first wins.
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_env_filter(filter).try_init();
}

/// Each connection is a file descriptor; the usual soft limit of 1024 would
/// cap the server far below its connection limit.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(limit = ?limit.maximum, "raised the open file limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
