//! `godot`: the facade and the worker in one process (`godot`), or apart
//! (`godot serve`, `godot worker`), as the seeds' two supervised processes.
//! The queue is Redis when REDIS_URL or REDIS_HOST is set, else an SQLite
//! file under ./godot-data. See the crate README.

use std::io::Write;
use std::process::ExitCode;

use godot::{Config, Facade, Queue};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "\
godot: the ICCM logging facade (MCP over WebSocket, port 9060) and its worker

Usage: godot [all|serve|worker] [--list-tools]

  all      the facade and the worker in one process (the default)
  serve    the facade only
  worker   the worker only (prints `worker running` when started)

Environment: REDIS_URL or REDIS_HOST/REDIS_PORT, LOG_QUEUE_NAME, GODOT_DATA_DIR,
MAX_QUEUE_SIZE, DEWEY_MCP_URL, BATCH_SIZE, BATCH_TIMEOUT_MS, RETRY_INITIAL_DELAY,
RETRY_MAX_DELAY, RETRY_MAX_ATTEMPTS, WORKER_LEASE_MS, WORKER_CONCURRENCY,
WORKER_NAME, WORKER_SHUTDOWN_GRACE, DEAD_LETTER_MAX, and the runtime's MCP_*
(see the README).";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    All,
    Serve,
    Worker,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str) {
        None | Some("all") => Mode::All,
        Some("serve") => Mode::Serve,
        Some("worker") => Mode::Worker,
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        // The runtime checks the server whole and prints the catalog; the
        // queue is never opened for it.
        Some("--list-tools") if args.len() == 1 => return godot::tools().state_from(open_facade).run().await,
        Some(other) => {
            eprintln!("error: unknown mode `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.len() > 1 {
        eprintln!("error: unexpected argument `{}`\n\n{USAGE}", args[1]);
        return ExitCode::from(2);
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
    tokio::spawn({
        let stop = stop.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received");
            stop.cancel();
        }
    });
    let worker =
        (mode != Mode::Serve).then(|| tokio::spawn(godot::worker::run(queue.clone(), config.clone(), stop.clone())));
    let mut code = ExitCode::SUCCESS;
    if mode == Mode::Worker {
        println!("worker running");
        let _ = std::io::stdout().flush();
    } else {
        code = serve(queue, &config, stop.clone()).await;
        // The facade stopping for any reason stops the worker too.
        stop.cancel();
    }
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    code
}

async fn serve(queue: Queue, config: &Config, stop: CancellationToken) -> ExitCode {
    let host = std::env::var("MCP_HOST").unwrap_or_else(|_| "0.0.0.0".to_owned());
    let port = match std::env::var("MCP_PORT").ok().map(|p| p.trim().parse::<u16>()) {
        None => godot::DEFAULT_PORT,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("error: MCP_PORT must be a port number from 0 to 65535");
            return ExitCode::from(2);
        }
    };
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let facade = Facade::start(queue, config);
    let bound = match godot::server(facade).bind(addr).await {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The one line on stdout, as every server of the runtime prints it.
    println!("listening on ws://{}", bound.local_addr());
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %bound.local_addr(), "Godot facade listening");
    let shutdown = bound.shutdown_handle();
    tokio::spawn(async move {
        stop.cancelled().await;
        shutdown.shutdown();
    });
    match bound.serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
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
