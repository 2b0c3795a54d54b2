//! `mcp-bench`: measures `hello`'s `echo` through mcp-runtime against a bare
//! tokio-tungstenite loop (throughput, latency, memory per idle connection)
//! and the runtime's client against a raw load generator, and prints the
//! results as Markdown tables for the README.

mod bare_server;
mod client_calls;
mod cpu;
mod frames;
mod idle;
mod load;
mod report;
mod server_process;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::client_calls::ClientCalls;
use crate::load::{LoadConnections, Measurement, Shape};
use crate::report::{ClientRow, Report, ResponseFrames, ThroughputRow};
use crate::server_process::{ServerProcess, ServerPrograms, Target};

/// Warm-up of each driver's connections before its first slice; not counted.
const WARMUP: Duration = Duration::from_secs(1);
/// The contenders of a row take turns in slices this long, so that all of
/// them sample the noise of a shared machine alike: bursts of load from
/// elsewhere last seconds, so short turns split them fairly.
const SLICE: Duration = Duration::from_millis(500);
/// Run before each slice, not counted: the other contender just had the cores.
const SLICE_WARMUP: Duration = Duration::from_millis(100);

const THROUGHPUT_SHAPES: [Shape; 2] = [Shape { connections: 1, in_flight: 1 }, Shape { connections: 32, in_flight: 4 }];
const CLIENT_IN_FLIGHT: [usize; 3] = [1, 16, 256];

const RUNTIME: Driver = Driver::LoadGenerator(Target::Runtime);
const BARE: Driver = Driver::LoadGenerator(Target::Bare);

#[derive(Parser)]
#[command(version, about = "Benchmark mcp-runtime's server and client against a bare WebSocket loop")]
struct Cli {
    /// Measured seconds per contender and shape, taken in 500 ms turns with the other contenders.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Run one section only.
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
}

#[derive(Subcommand)]
enum Command {
    /// The bare tokio-tungstenite loop the runtime is measured against; the
    /// bench starts it as a child process.
    #[command(hide = true)]
    BareServer,
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
        if let Some(Command::BareServer) = cli.command {
            return bare_server::serve().await;
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

    if wants(Section::Throughput) || wants(Section::Client) {
        let servers = Servers::start(&programs).await?;
        report.response_frames = Some(servers.response_frames().await?);
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

/// Both servers, started once and kept for the throughput and client sections.
struct Servers {
    runtime: ServerProcess,
    bare: ServerProcess,
}

impl Servers {
    async fn start(programs: &ServerPrograms) -> anyhow::Result<Servers> {
        let runtime = programs.start(Target::Runtime).await?;
        let bare = programs.start(Target::Bare).await?;
        eprintln!(
            "servers: {} at {}, {} at {}",
            Target::Runtime.label(),
            runtime.url(),
            Target::Bare.label(),
            bare.url()
        );
        Ok(Servers { runtime, bare })
    }

    fn get(&self, target: Target) -> &ServerProcess {
        match target {
            Target::Runtime => &self.runtime,
            Target::Bare => &self.bare,
        }
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
}

impl Driver {
    /// The server the calls go to.
    fn target(self) -> Target {
        match self {
            Driver::LoadGenerator(target) => target,
            Driver::Client => Target::Runtime,
        }
    }

    fn label(self) -> String {
        match self {
            Driver::LoadGenerator(target) => format!("load generator -> {}", target.label()),
            Driver::Client => format!("mcp_runtime client -> {}", Target::Runtime.label()),
        }
    }
}

/// A driver with its connections open, ready for the next slice.
enum Running {
    Load(LoadConnections),
    Client(ClientCalls),
}

impl Running {
    async fn open(driver: Driver, server: &ServerProcess, shape: Shape) -> anyhow::Result<Running> {
        Ok(match driver {
            Driver::LoadGenerator(_) => Running::Load(LoadConnections::open(server.addr, shape).await?),
            Driver::Client => Running::Client(ClientCalls::open(&server.url(), shape.in_flight).await?),
        })
    }

    async fn slice(&mut self, warmup: Duration, duration: Duration) -> anyhow::Result<Measurement> {
        match self {
            Running::Load(connections) => connections.slice(warmup, duration).await,
            Running::Client(client) => client.slice(warmup, duration).await,
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
