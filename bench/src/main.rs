//! `mcp-bench`: measures `hello`'s `echo` through mcp-runtime against a bare
//! tokio-tungstenite loop (throughput, latency, memory per idle connection),
//! over Streamable HTTP against a bare hyper handler and rmcp, over stdio,
//! and the runtime's client against a raw load generator, and prints the
//! results as Markdown tables for the README.

mod bare_http;
mod bare_server;
mod client_calls;
mod cpu;
mod frames;
mod http_load;
mod idle;
mod load;
mod report;
mod rmcp_server;
mod server_process;
mod stdio_load;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::client_calls::ClientCalls;
use crate::http_load::HttpConnections;
use crate::load::{LoadConnections, Measurement, Shape};
use crate::report::{ClientRow, HttpRow, Report, ResponseFrames, StdioRow, ThroughputRow};
use crate::server_process::{ServerProcess, ServerPrograms, Target};
use crate::stdio_load::StdioServer;

/// Warm-up of each driver's connections before its first slice; not counted.
const WARMUP: Duration = Duration::from_secs(1);
/// The contenders of a row take turns in slices this long, so that all of
/// them sample the noise of a shared machine alike: bursts of load from
/// elsewhere last seconds, so short turns split them fairly.
const SLICE: Duration = Duration::from_millis(500);
/// Run before each slice, not counted: the other contender just had the cores.
const SLICE_WARMUP: Duration = Duration::from_millis(100);

const THROUGHPUT_SHAPES: [Shape; 2] = [Shape { connections: 1, in_flight: 1 }, Shape { connections: 32, in_flight: 4 }];
/// HTTP/1.1 carries one call at a time per connection.
const HTTP_SHAPES: [Shape; 2] = [Shape { connections: 1, in_flight: 1 }, Shape { connections: 32, in_flight: 1 }];
const STDIO_IN_FLIGHT: [usize; 2] = [1, 32];
const CLIENT_IN_FLIGHT: [usize; 3] = [1, 16, 256];

const RUNTIME: Driver = Driver::LoadGenerator(Target::Runtime);
const BARE: Driver = Driver::LoadGenerator(Target::Bare);
const HTTP_CONTENDERS: [Driver; 4] = [
    Driver::Http(Target::Runtime),
    Driver::Http(Target::BareHttp),
    Driver::Http(Target::Rmcp),
    Driver::Http(Target::RmcpJson),
];

#[derive(Parser)]
#[command(version, about = "Benchmark mcp-runtime's server and client against a bare WebSocket loop")]
struct Cli {
    /// Measured seconds per contender and shape, taken in 500 ms turns with the other contenders.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Run one section only (default: all of them).
    #[arg(long, value_enum)]
    only: Option<Section>,
    /// Idle connections opened for the memory measurement.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=50_000))]
    idle_connections: u64,
    /// The `hello` server binary (default: `hello` next to this executable).
    #[arg(long)]
    hello: Option<PathBuf>,
    /// Print the results as JSON on stdout; the Markdown tables go to stderr.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    Throughput,
    Idle,
    Client,
    Http,
    Stdio,
}

// Each variant is a subcommand whose name says what it serves (`bare-server`, ...).
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
enum Command {
    /// The bare tokio-tungstenite loop the runtime is measured against; the
    /// bench starts it as a child process.
    #[command(hide = true)]
    BareServer,
    /// The bare hyper handler the runtime's Streamable HTTP is measured against.
    #[command(hide = true)]
    BareHttpServer,
    /// rmcp's Streamable HTTP server with the same `echo` (`--json`: stateless, JSON answers).
    #[command(hide = true)]
    RmcpHttpServer {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Some(Command::BareServer) => return bare_server::serve().await,
            Some(Command::BareHttpServer) => return bare_http::serve().await,
            Some(Command::RmcpHttpServer { json }) => return rmcp_server::serve(json).await,
            None => {}
        }
        // Dropping `run` on Ctrl-C drops every ServerProcess, which kills it.
        tokio::select! {
            result = run(&cli) => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted; the servers were stopped"),
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let programs = locate_programs(cli)?;
    let wants = |section| cli.only.is_none_or(|only| only == section);
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build of mcp-bench; the load generator will be the bottleneck. Use --release."
        );
    }
    let idle_connections = cli.idle_connections as usize;
    if wants(Section::Idle) {
        let needed = 2 * idle_connections as u64 + 200;
        match idle::open_files_limit() {
            Some(limit) if limit < needed => bail!(
                "the open-files limit is {limit}, and {idle_connections} idle connections need about {needed} \
                 (the bench and the server each hold one descriptor per connection): raise it with `ulimit -n {needed}` \
                 or pass a smaller --idle-connections"
            ),
            _ => {}
        }
    }

    let rounds = (Duration::from_secs(cli.seconds).as_millis() / SLICE.as_millis()) as u32;
    let mut report = Report {
        machine: describe_machine(),
        method: format!(
            "All figures come from this one run of mcp-bench. The contenders of each row (runtime and bare loop; \
             client, load generator -> runtime and load generator -> bare) took turns on the same machine: after \
             a {} s warm-up each, {rounds} rounds in which each ran for {} ms (after {} ms not counted), the order \
             rotating every round; each figure sums its {rounds} slices. Latency: per call, from sending the \
             request to reading its response (HdrHistogram). CPU µs/call: user + system time of the process \
             named, over its slices, per call answered.",
            WARMUP.as_secs(),
            SLICE.as_millis(),
            SLICE_WARMUP.as_millis(),
        ),
        ..Report::default()
    };
    let mut bench = Bench { rounds, measured: HashMap::new() };

    if wants(Section::Throughput) || wants(Section::Client) || wants(Section::Http) {
        let mut targets = vec![Target::Runtime];
        if wants(Section::Throughput) || wants(Section::Client) {
            targets.push(Target::Bare);
        }
        if wants(Section::Http) {
            targets.extend([Target::BareHttp, Target::Rmcp, Target::RmcpJson]);
        }
        let servers = Servers::start(&programs, &targets).await?;
        if targets.contains(&Target::Bare) {
            report.response_frames = Some(servers.response_frames().await?);
        }
        if wants(Section::Throughput) {
            for shape in THROUGHPUT_SHAPES {
                bench.measure(&servers, shape, &[RUNTIME, BARE]).await?;
                report.throughput.push(ThroughputRow {
                    shape,
                    runtime: bench.get(RUNTIME, shape),
                    bare: bench.get(BARE, shape),
                });
            }
        }
        if wants(Section::Client) {
            report.client = Some(client_section(&mut bench, &servers).await?);
        }
        if wants(Section::Http) {
            for shape in HTTP_SHAPES {
                bench.measure(&servers, shape, &HTTP_CONTENDERS).await?;
                report.http.push(HttpRow {
                    shape,
                    runtime: bench.get(Driver::Http(Target::Runtime), shape),
                    bare: bench.get(Driver::Http(Target::BareHttp), shape),
                    rmcp: bench.get(Driver::Http(Target::Rmcp), shape),
                    rmcp_json: bench.get(Driver::Http(Target::RmcpJson), shape),
                });
            }
        }
    }
    if wants(Section::Stdio) {
        report.stdio = stdio_section(&programs, rounds).await?;
    }
    if wants(Section::Idle) {
        for target in [Target::Runtime, Target::Bare] {
            eprintln!("idle: {idle_connections} connections to the {}", target.label());
            report.idle.push(idle::measure(&programs, target, idle_connections).await?);
        }
    }

    if cli.json {
        eprint!("{}", report.markdown());
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(())
}

/// The client against the load generator on the same shapes (one
/// connection), with the bare loop beside them as the ceiling.
async fn client_section(bench: &mut Bench, servers: &Servers) -> anyhow::Result<Vec<ClientRow>> {
    let mut rows = Vec::new();
    for in_flight in CLIENT_IN_FLIGHT {
        let shape = Shape { connections: 1, in_flight };
        bench.measure(servers, shape, &[Driver::Client, RUNTIME, BARE]).await?;
        rows.push(ClientRow {
            in_flight,
            client: bench.get(Driver::Client, shape),
            load_generator: bench.get(RUNTIME, shape),
            bare: bench.get(BARE, shape),
        });
    }
    Ok(rows)
}

/// `hello --stdio` with 1 and 32 calls in flight: one contender, so no
/// turns to take, but the same slices and CPU accounting.
async fn stdio_section(programs: &ServerPrograms, rounds: u32) -> anyhow::Result<Vec<StdioRow>> {
    let mut rows = Vec::new();
    for in_flight in STDIO_IN_FLIGHT {
        let mut server = StdioServer::start(&programs.hello).await?;
        server.slice(in_flight, WARMUP, Duration::ZERO).await?;
        let mut total = Measurement::new(Duration::ZERO);
        for round in 1..=rounds {
            let cpu_before = (server.cpu_time()?, cpu::process_cpu_time(None)?);
            let mut slice = server.slice(in_flight, SLICE_WARMUP, SLICE).await?;
            slice.server_cpu = server.cpu_time()?.saturating_sub(cpu_before.0);
            slice.driver_cpu = cpu::process_cpu_time(None)?.saturating_sub(cpu_before.1);
            eprintln!("stdio, {in_flight} in flight, round {round}/{rounds}: {:.0}/s", slice.calls_per_second());
            total.add_slice(&slice);
        }
        eprintln!(
            "stdio, {in_flight} in flight: {:.0} calls/s, p50 {} µs, p99 {} µs, CPU per call: server {:.1} µs",
            total.calls_per_second(),
            total.p50_us(),
            total.p99_us(),
            total.server_cpu_us_per_call()
        );
        rows.push(StdioRow { in_flight, measured: total });
    }
    Ok(rows)
}

fn locate_programs(cli: &Cli) -> anyhow::Result<ServerPrograms> {
    let bench = std::env::current_exe().context("cannot find the path of the mcp-bench executable")?;
    let hello = match &cli.hello {
        Some(path) => path.clone(),
        None => bench.with_file_name("hello"),
    };
    if !hello.is_file() {
        bail!(
            "the `hello` server is not at {}: build it with `cargo build --release -p mcp-examples`, or pass --hello PATH",
            hello.display()
        );
    }
    Ok(ServerPrograms { hello, bench })
}

fn describe_machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "Machine: {cores} cores, 1-minute load average {load} at start; the load generator shares the cores with the \
         server under test. Everything on 127.0.0.1."
    )
}

/// The servers a run needs, started once and kept for all its sections.
struct Servers(HashMap<Target, ServerProcess>);

impl Servers {
    async fn start(programs: &ServerPrograms, targets: &[Target]) -> anyhow::Result<Servers> {
        let mut servers = HashMap::new();
        for &target in targets {
            let server = programs.start(target).await?;
            eprintln!("server: {} at {}", target.label(), server.addr);
            servers.insert(target, server);
        }
        Ok(Servers(servers))
    }

    fn get(&self, target: Target) -> &ServerProcess {
        &self.0[&target]
    }

    async fn response_frames(&self) -> anyhow::Result<ResponseFrames> {
        let mut frames = Vec::new();
        for target in [Target::Runtime, Target::Bare] {
            let mut ws = load::connect_initialized(self.get(target).addr).await?;
            let reply = load::echo_once(&mut ws, 1)
                .await
                .with_context(|| format!("the {} answered `echo` wrongly", target.label()))?;
            frames.push(frames::normalize_id(&reply));
        }
        let bare = frames.pop().expect("two frames");
        let runtime = frames.pop().expect("two frames");
        Ok(ResponseFrames { runtime, bare })
    }
}

/// What produced the calls of a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Driver {
    /// The raw load generator (module `load`) against a server.
    LoadGenerator(Target),
    /// `mcp_runtime::client::Client` against `hello`.
    Client,
    /// The Streamable HTTP load generator (module `http_load`) against a server.
    Http(Target),
}

impl Driver {
    /// The server the calls go to.
    fn target(self) -> Target {
        match self {
            Driver::LoadGenerator(target) | Driver::Http(target) => target,
            Driver::Client => Target::Runtime,
        }
    }

    fn label(self) -> String {
        match self {
            Driver::LoadGenerator(target) => format!("load generator -> {}", target.label()),
            Driver::Client => format!("mcp_runtime client -> {}", Target::Runtime.label()),
            Driver::Http(target) => format!("HTTP -> {}", target.label()),
        }
    }
}

/// A driver with its connections open, ready for the next slice.
enum Running {
    Load(LoadConnections),
    Client(ClientCalls),
    Http(HttpConnections),
}

impl Running {
    async fn open(driver: Driver, server: &ServerProcess, shape: Shape) -> anyhow::Result<Running> {
        Ok(match driver {
            Driver::LoadGenerator(_) => Running::Load(LoadConnections::open(server.addr, shape).await?),
            Driver::Client => Running::Client(ClientCalls::open(&server.url(), shape.in_flight).await?),
            Driver::Http(_) => Running::Http(HttpConnections::open(server.addr, shape).await?),
        })
    }

    async fn slice(&mut self, warmup: Duration, duration: Duration) -> anyhow::Result<Measurement> {
        match self {
            Running::Load(connections) => connections.slice(warmup, duration).await,
            Running::Client(client) => client.slice(warmup, duration).await,
            Running::Http(connections) => connections.slice(warmup, duration).await,
        }
    }
}

/// The latest measurement of each driver and shape.
struct Bench {
    /// Measured slices per driver and shape.
    rounds: u32,
    measured: HashMap<(Driver, Shape), Measurement>,
}

impl Bench {
    /// Measures `shape` with each driver (again, if a section before did:
    /// a row's contenders must take turns with each other): all connect,
    /// warm up, then take turns, one [`SLICE`] each per round, `rounds`
    /// rounds, whoever went first going last next. Each driver's figure sums
    /// its slices, so all contenders sample the machine's noise alike.
    async fn measure(&mut self, servers: &Servers, shape: Shape, drivers: &[Driver]) -> anyhow::Result<()> {
        let mut running = Vec::with_capacity(drivers.len());
        for &driver in drivers {
            let server = servers.get(driver.target());
            let mut opened =
                Running::open(driver, server, shape).await.with_context(|| format!("{shape}, {}", driver.label()))?;
            opened
                .slice(WARMUP, Duration::ZERO)
                .await
                .with_context(|| format!("{shape}, {} warm-up", driver.label()))?;
            running.push((driver, server, opened, Measurement::new(Duration::ZERO)));
        }
        for round in 1..=self.rounds {
            let mut line = format!("{shape}, round {round}/{}:", self.rounds);
            running.rotate_left(1);
            for (driver, server, opened, total) in &mut running {
                let cpu_before = (server.cpu_time()?, cpu::process_cpu_time(None)?);
                let mut slice =
                    opened.slice(SLICE_WARMUP, SLICE).await.with_context(|| format!("{shape}, {}", driver.label()))?;
                slice.server_cpu = server.cpu_time()?.saturating_sub(cpu_before.0);
                slice.driver_cpu = cpu::process_cpu_time(None)?.saturating_sub(cpu_before.1);
                line.push_str(&format!(" {} {:.0}/s;", driver.label(), slice.calls_per_second()));
                total.add_slice(&slice);
            }
            eprintln!("{line}");
        }
        for (driver, _, _, total) in running {
            eprintln!(
                "{shape}, {}: {:.0} calls/s, p50 {} µs, p99 {} µs, CPU per call: server {:.1} µs, bench {:.1} µs",
                driver.label(),
                total.calls_per_second(),
                total.p50_us(),
                total.p99_us(),
                total.server_cpu_us_per_call(),
                total.driver_cpu_us_per_call(),
            );
            self.measured.insert((driver, shape), total);
        }
        Ok(())
    }

    fn get(&self, driver: Driver, shape: Shape) -> Measurement {
        self.measured[&(driver, shape)].clone()
    }
}
