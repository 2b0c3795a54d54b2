//! `godot`: the facade and the worker in one process (`godot`), or apart
//! (`godot serve`, `godot worker`), as the seeds' two supervised processes.
//! The queue is Redis when REDIS_URL or REDIS_HOST is set, else an SQLite
//! file under ./godot-data. See the crate README.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use godot::{Config, Facade, Queue};
use mcp_runtime::ServerArgs;
use tokio_util::sync::CancellationToken;

/// The ICCM logging facade (MCP, port 9060) and its worker.
#[derive(Parser)]
#[command(name = "godot", version)]
#[command(after_help = "\
Godot's environment: REDIS_URL or REDIS_HOST/REDIS_PORT, LOG_QUEUE_NAME, GODOT_DATA_DIR,
MAX_QUEUE_SIZE, DEWEY_MCP_URL, BATCH_SIZE, BATCH_TIMEOUT_MS, RETRY_INITIAL_DELAY,
RETRY_MAX_DELAY, RETRY_MAX_ATTEMPTS, WORKER_LEASE_MS, WORKER_CONCURRENCY, WORKER_NAME,
WORKER_SHUTDOWN_GRACE, DEAD_LETTER_MAX (see godot/README.md).")]
struct Cli {
    /// What this process runs
    #[arg(value_enum, default_value_t = Mode::All)]
    mode: Mode,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    /// The facade and the worker in one process
    All,
    /// The facade only
    Serve,
    /// The worker only (prints `worker running` when started)
    Worker,
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = ServerArgs::with_defaults(Cli::command(), godot::DEFAULT_PORT);
    let cli = match command.try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if cli.server.list_tools {
        // The runtime checks the server whole and prints the catalog; the
        // queue is never opened for it.
        return godot::tools().state_from(open_facade).run_with(cli.server).await;
    }
    mcp_runtime::init_tracing();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let queue = match Queue::open(&config) {
        Ok(queue) => queue,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(queue = %config.queue_description(), dewey = %config.dewey_url, "godot starting");

    let stop = CancellationToken::new();
    let worker = (cli.mode != Mode::Serve)
        .then(|| tokio::spawn(godot::worker::run(queue.clone(), config.clone(), stop.clone())));
    let code = if cli.mode == Mode::Worker {
        println!("worker running");
        let _ = std::io::stdout().flush();
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        ExitCode::SUCCESS
    } else {
        // The runtime serves the facade until SIGTERM or Ctrl-C and drains
        // its calls; the worker keeps delivering meanwhile.
        godot::server(Facade::start(queue, &config)).run_with(cli.server).await
    };
    // The facade stopping for any reason stops the worker too.
    stop.cancel();
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    code
}

/// The facade's state as `run()` would make it; only `--list-tools` goes
/// through `run()`, which never calls this.
async fn open_facade() -> Result<mcp_runtime::State<Facade>, String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let queue = Queue::open(&config).map_err(|e| e.to_string())?;
    Ok(mcp_runtime::State(Facade::start(queue, &config)))
}

async fn wait_for_signal() {
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
