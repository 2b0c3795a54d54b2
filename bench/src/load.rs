//! The load generator: raw tokio-tungstenite connections, pre-built
//! `tools/call echo` frames, a fixed number of calls in flight per connection
//! (closed loop: each response sends the next request), latency per call
//! matched by id.
//!
//! It is independent of mcp-runtime on purpose, so that the runtime's server
//! and the bare loop are measured by the same code, and so that the runtime's
//! client can be measured against it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _, TryStreamExt as _};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::frames;

pub type Connection = WebSocketStream<TcpStream>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the in-flight calls may take to come back after the deadline
/// before the server counts as stuck.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Connections x calls in flight on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Shape {
    pub connections: usize,
    pub in_flight: usize,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.connections == 1 { "" } else { "s" };
        write!(f, "{} connection{plural} x {} in flight", self.connections, self.in_flight)
    }
}

/// Calls completed in the measured window and their latencies.
#[derive(Clone)]
pub struct Measurement {
    pub calls: u64,
    pub window: Duration,
    /// Microseconds from sending a request to reading its response.
    pub latency_us: Histogram<u64>,
    /// Every call answered, warm-up and the last in-flight ones included:
    /// what the CPU times below were spent on.
    pub answered: u64,
    /// CPU time of the server process over the whole run (set by the caller).
    pub server_cpu: Duration,
    /// CPU time of the bench process, which drove the calls, over the whole run.
    pub driver_cpu: Duration,
}

impl Measurement {
    pub fn new(window: Duration) -> Measurement {
        Measurement {
            calls: 0,
            window,
            latency_us: new_histogram(),
            answered: 0,
            server_cpu: Duration::ZERO,
            driver_cpu: Duration::ZERO,
        }
    }

    /// A call answered; `latency` is `None` outside the measured window.
    pub fn record(&mut self, latency: Option<Duration>) {
        self.answered += 1;
        if let Some(latency) = latency {
            self.calls += 1;
            self.latency_us.saturating_record((latency.as_micros() as u64).max(1));
        }
    }

    pub fn merge(&mut self, other: &Measurement) {
        self.calls += other.calls;
        self.answered += other.answered;
        self.latency_us.add(&other.latency_us).expect("histograms with the same bounds add up");
    }

    /// Adds a later slice of the same measurement: its calls, its window,
    /// its CPU times.
    pub fn add_slice(&mut self, slice: &Measurement) {
        self.merge(slice);
        self.window += slice.window;
        self.server_cpu += slice.server_cpu;
        self.driver_cpu += slice.driver_cpu;
    }

    pub fn server_cpu_us_per_call(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.answered.max(1) as f64
    }

    pub fn driver_cpu_us_per_call(&self) -> f64 {
        self.driver_cpu.as_secs_f64() * 1e6 / self.answered.max(1) as f64
    }

    pub fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64()
    }

    pub fn p50_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.50)
    }

    pub fn p99_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.99)
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits: far beyond any sane echo latency.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// tungstenite zeroes the free part of its read buffer before every read
/// attempt (`FrameCodec::read_in`), would-block ones included: with the
/// default 128 KiB buffer that memset was 7% of the generator's CPU. 16 KiB
/// still takes a hundred pipelined responses per read.
fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 * 1024)
}

/// Opens a WebSocket to the server and completes the MCP handshake
/// (`initialize`, then `notifications/initialized`).
pub async fn connect_initialized(addr: SocketAddr) -> anyhow::Result<Connection> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(format!("ws://{addr}/"), stream, Some(config()))
            .await
            .with_context(|| format!("WebSocket handshake with {addr} failed"))?;
        ws.send(Message::text(frames::initialize_request())).await?;
        loop {
            let message =
                ws.next().await.ok_or_else(|| anyhow!("{addr} closed the connection during initialize"))??;
            let Message::Text(text) = message else { continue };
            if frames::response_id(&text) != Some(frames::INITIALIZE_ID) {
                // A notification (a log message, say) before the response.
                continue;
            }
            ensure!(text.contains(r#""result":"#), "initialize failed: {}", text.as_str());
            break;
        }
        ws.send(Message::text(frames::INITIALIZED_NOTIFICATION)).await?;
        Ok(ws)
    })
    .await
    .map_err(|_| anyhow!("connecting to {addr} and initializing took over {CONNECT_TIMEOUT:?}"))?
}

/// Opens `count` initialized connections, at most `parallel` handshakes at a time
/// (the server's accept backlog is finite).
pub async fn connect_many(addr: SocketAddr, count: usize, parallel: usize) -> anyhow::Result<Vec<Connection>> {
    futures_util::stream::iter(0..count)
        .map(|_| connect_initialized(addr))
        .buffer_unordered(parallel)
        .try_collect()
        .await
}

/// One `echo` call, checked in full; returns the response frame.
pub async fn echo_once(ws: &mut Connection, id: u64) -> anyhow::Result<String> {
    ws.send(Message::text(frames::echo_request(id))).await?;
    let reply = tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if frames::response_id(&text) == Some(id) => return Ok(text),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(anyhow!(e)),
                None => bail!("the server closed the connection"),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no response to an echo call within {CONNECT_TIMEOUT:?}"))??;
    frames::check_echo_response(&reply, id).map_err(|e| anyhow!(e))?;
    Ok(reply.as_str().to_owned())
}

/// The connections of one shape to one server, kept open across the slices
/// of a measurement so that switching between servers costs no handshakes.
pub struct LoadConnections {
    shape: Shape,
    /// Each connection with the id its next request gets: ids keep growing
    /// across slices, so a late answer could never be taken for a new call.
    connections: Vec<(Connection, u64)>,
}

impl LoadConnections {
    /// Connects and initializes every connection of `shape`.
    pub async fn open(addr: SocketAddr, shape: Shape) -> anyhow::Result<LoadConnections> {
        let connections = connect_many(addr, shape.connections, 64).await?;
        Ok(LoadConnections { shape, connections: connections.into_iter().map(|ws| (ws, 1)).collect() })
    }

    /// All connections start together, warm up for `warmup` (not counted),
    /// then count for `duration`; returns once every call sent has been answered.
    pub async fn slice(&mut self, warmup: Duration, duration: Duration) -> anyhow::Result<Measurement> {
        let window_start = Instant::now() + warmup;
        let deadline = window_start + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (mut ws, next_id)) in self.connections.drain(..).enumerate() {
            let in_flight = self.shape.in_flight;
            tasks.spawn(async move {
                let driven = tokio::time::timeout_at(
                    deadline + DRAIN_GRACE,
                    drive(&mut ws, next_id, in_flight, window_start, deadline),
                )
                .await;
                (index, ws, driven)
            });
        }
        let mut total = Measurement::new(duration);
        let mut returned = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            let (index, ws, driven) = joined.context("a load-generator task panicked")?;
            let (measured, next_id) = driven
                .map_err(|_| anyhow!("the server left calls unanswered {DRAIN_GRACE:?} after the deadline"))??;
            total.merge(&measured);
            returned.push((index, ws, next_id));
        }
        returned.sort_by_key(|(index, _, _)| *index);
        self.connections = returned.into_iter().map(|(_, ws, next_id)| (ws, next_id)).collect();
        Ok(total)
    }
}

/// Keeps `in_flight` calls outstanding on one connection until `deadline`,
/// then waits for the last ones. Counts calls sent and answered inside
/// [`window_start`, `deadline`]. Returns the next unused id.
async fn drive(
    ws: &mut Connection,
    mut next_id: u64,
    in_flight: usize,
    window_start: Instant,
    deadline: Instant,
) -> anyhow::Result<(Measurement, u64)> {
    let mut measured = Measurement::new(deadline - window_start);
    let mut sent_at: HashMap<u64, Instant> = HashMap::with_capacity(in_flight * 2);
    let mut checked_one = false;
    for _ in 0..in_flight {
        sent_at.insert(next_id, Instant::now());
        ws.feed(Message::text(frames::echo_request(next_id))).await?;
        next_id += 1;
    }
    ws.flush().await?;
    while !sent_at.is_empty() {
        // Wait for one frame, then take every frame already read without
        // waiting, answering each with a new request, and flush once: one
        // write syscall per batch instead of per call, as any efficient
        // client does. The generator must not be the bottleneck.
        let mut ready = Some(ws.next().await);
        let mut fed = false;
        while let Some(message) = ready.take() {
            let message = match message {
                Some(message) => message.context("reading a response")?,
                None => bail!("the server closed the connection with {} calls in flight", sent_at.len()),
            };
            let now = Instant::now();
            match message {
                Message::Text(text) => {
                    // A frame without a numeric id is a notification: nothing to match.
                    if let Some(id) = frames::response_id(&text) {
                        let sent = sent_at
                            .remove(&id)
                            .with_context(|| format!("a response to id {id}, which is not in flight"))?;
                        if !checked_one {
                            frames::check_echo_response(&text, id).map_err(|e| anyhow!(e))?;
                            checked_one = true;
                        } else if !frames::is_echo_success(&text) {
                            bail!("an echo call failed: {}", text.as_str());
                        }
                        let in_window = sent >= window_start && now <= deadline;
                        measured.record(in_window.then(|| now - sent));
                        if now < deadline {
                            sent_at.insert(next_id, Instant::now());
                            ws.feed(Message::text(frames::echo_request(next_id))).await?;
                            next_id += 1;
                            fed = true;
                        }
                    }
                }
                Message::Close(frame) => bail!("the server closed the connection: {frame:?}"),
                _ => {}
            }
            // `next` is cancel-safe: a pending poll loses nothing.
            ready = ws.next().now_or_never();
        }
        if fed {
            ws.flush().await?;
        }
    }
    Ok((measured, next_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator against the bare loop in-process: every call is
    /// answered, counted once, and timed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drives_the_bare_loop_and_counts_every_call() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(crate::bare_server::accept_loop(listener));

        let shape = Shape { connections: 3, in_flight: 4 };
        let mut connections = LoadConnections::open(addr, shape).await.unwrap();
        for _ in 0..2 {
            let measured = connections.slice(Duration::from_millis(100), Duration::from_millis(200)).await.unwrap();
            assert!(measured.calls > 0, "no call answered in the window");
            assert_eq!(measured.latency_us.len(), measured.calls);
            assert!(measured.answered > measured.calls, "warm-up calls are answered but not counted");
            assert!(measured.p50_us() <= measured.p99_us());
        }
        assert!(connections.connections.iter().all(|(_, next_id)| *next_id > 1));

        let mut ws = connect_initialized(addr).await.unwrap();
        let reply = echo_once(&mut ws, 77).await.unwrap();
        assert_eq!(frames::response_id(&reply), Some(77));
        server.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address() {
        // Bind then drop: the port is (almost certainly) closed right after.
        let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let error = connect_initialized(addr).await.unwrap_err();
        assert!(format!("{error:#}").contains(&addr.to_string()), "{error:#}");
    }
}
