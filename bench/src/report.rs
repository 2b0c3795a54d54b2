//! The results of one run, as Markdown tables for the README and as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::idle::IdleMemory;
use crate::load::{Measurement, Shape};
use crate::server_process::Target;

/// Runtime throughput must reach this share of the bare loop's, in both shapes.
pub const THROUGHPUT_TARGET: f64 = 0.85;
/// Most RSS a `hello` idle connection may cost, in KiB.
pub const IDLE_TARGET_KIB: f64 = 8.0;
/// Runtime Streamable HTTP throughput must reach this share of the bare hyper handler's.
pub const HTTP_TARGET: f64 = 0.80;
/// The client must reach this share of the load generator with 16 calls in flight.
pub const CLIENT_TARGET: f64 = 0.80;
pub const CLIENT_TARGET_IN_FLIGHT: usize = 16;

#[derive(Default)]
pub struct Report {
    pub machine: String,
    pub method: String,
    pub response_frames: Option<ResponseFrames>,
    pub throughput: Vec<ThroughputRow>,
    pub idle: Vec<IdleMemory>,
    /// `None` when the section was not run.
    pub client: Option<Vec<ClientRow>>,
    pub http: Vec<HttpRow>,
    pub stdio: Vec<StdioRow>,
}

/// One Streamable HTTP shape: the runtime, the bare hyper handler, rmcp twice.
pub struct HttpRow {
    pub shape: Shape,
    pub runtime: Measurement,
    pub bare: Measurement,
    pub rmcp: Measurement,
    pub rmcp_json: Measurement,
}

impl HttpRow {
    pub fn ratio(&self) -> f64 {
        self.runtime.calls_per_second() / self.bare.calls_per_second()
    }
}

pub struct StdioRow {
    pub in_flight: usize,
    pub measured: Measurement,
}

/// One `echo` response from each server, ids replaced by `N`.
pub struct ResponseFrames {
    pub runtime: String,
    pub bare: String,
}

pub struct ThroughputRow {
    pub shape: Shape,
    pub runtime: Measurement,
    pub bare: Measurement,
}

impl ThroughputRow {
    pub fn ratio(&self) -> f64 {
        self.runtime.calls_per_second() / self.bare.calls_per_second()
    }
}

pub struct ClientRow {
    pub in_flight: usize,
    pub client: Measurement,
    pub load_generator: Measurement,
    pub bare: Measurement,
}

impl ClientRow {
    pub fn ratio(&self) -> f64 {
        self.client.calls_per_second() / self.load_generator.calls_per_second()
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## mcp-bench results\n");
        let _ = writeln!(out, "{}\n", self.machine);
        let _ = writeln!(out, "{}\n", self.method);
        if let Some(frames) = &self.response_frames {
            if frames.runtime == frames.bare {
                let _ = writeln!(
                    out,
                    "Both servers answer `echo` with the same frame ({} bytes, ids aside): `{}`\n",
                    frames.runtime.len(),
                    frames.runtime
                );
            } else {
                let _ = writeln!(
                    out,
                    "The servers' `echo` frames differ (ids aside):\n- runtime ({} bytes): `{}`\n- bare ({} bytes): `{}`\n",
                    frames.runtime.len(),
                    frames.runtime,
                    frames.bare.len(),
                    frames.bare
                );
            }
        }
        if !self.throughput.is_empty() {
            let _ = writeln!(out, "### Throughput: `hello`'s `echo` through the runtime vs the bare loop\n");
            let _ = writeln!(
                out,
                "| Shape | Runtime calls/s | p50 µs | p99 µs | CPU µs/call | Bare calls/s | p50 µs | p99 µs | CPU µs/call | Runtime / bare | Target ≥ {:.0}% |",
                THROUGHPUT_TARGET * 100.0
            );
            let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
            for row in &self.throughput {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.1} | {:.1}% | {} |",
                    row.shape,
                    rate(&row.runtime),
                    row.runtime.p50_us(),
                    row.runtime.p99_us(),
                    row.runtime.server_cpu_us_per_call(),
                    rate(&row.bare),
                    row.bare.p50_us(),
                    row.bare.p99_us(),
                    row.bare.server_cpu_us_per_call(),
                    row.ratio() * 100.0,
                    verdict_at_least(row.ratio(), THROUGHPUT_TARGET),
                );
            }
            out.push('\n');
        }
        if !self.idle.is_empty() {
            let _ = writeln!(
                out,
                "### Server memory per idle connection ({} connections, each initialized, then idle)\n",
                group_thousands(self.idle[0].connections as u64)
            );
            let _ = writeln!(
                out,
                "| Server | RSS before (KiB) | RSS after (KiB) | Per idle connection (KiB) | Target ≤ {IDLE_TARGET_KIB} KiB |"
            );
            let _ = writeln!(out, "|---|--:|--:|--:|---|");
            for row in &self.idle {
                let per = row.kib_per_connection();
                let verdict = match row.target {
                    Target::Runtime if per <= IDLE_TARGET_KIB => "met".to_owned(),
                    Target::Runtime => {
                        format!("missed by {:.1} KiB", per - IDLE_TARGET_KIB)
                    }
                    _ => "(reference)".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {per:.1} | {verdict} |",
                    row.target.label(),
                    group_thousands(row.rss_before_kib),
                    group_thousands(row.rss_after_kib),
                );
            }
            out.push('\n');
        }
        if !self.http.is_empty() {
            let _ = writeln!(
                out,
                "### Streamable HTTP: `hello`'s `echo` (session, JSON answers, keep-alive) vs a bare hyper handler and rmcp\n"
            );
            let _ = writeln!(
                out,
                "| Shape | Runtime calls/s | p50 µs | p99 µs | CPU µs/call | Bare hyper calls/s | p50 µs | p99 µs | CPU µs/call | Runtime / bare | Target ≥ {:.0}% | rmcp (sessions, SSE) calls/s | CPU µs/call | rmcp (stateless, JSON) calls/s | CPU µs/call | Runtime / best rmcp |",
                HTTP_TARGET * 100.0
            );
            let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|");
            for row in &self.http {
                let best_rmcp = row.rmcp.calls_per_second().max(row.rmcp_json.calls_per_second());
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.1} | {:.1}% | {} | {} | {:.1} | {} | {:.1} | {:.1}x |",
                    row.shape,
                    rate(&row.runtime),
                    row.runtime.p50_us(),
                    row.runtime.p99_us(),
                    row.runtime.server_cpu_us_per_call(),
                    rate(&row.bare),
                    row.bare.p50_us(),
                    row.bare.p99_us(),
                    row.bare.server_cpu_us_per_call(),
                    row.ratio() * 100.0,
                    verdict_at_least(row.ratio(), HTTP_TARGET),
                    rate(&row.rmcp),
                    row.rmcp.server_cpu_us_per_call(),
                    rate(&row.rmcp_json),
                    row.rmcp_json.server_cpu_us_per_call(),
                    row.runtime.calls_per_second() / best_rmcp,
                );
            }
            out.push('\n');
        }
        if !self.stdio.is_empty() {
            let _ = writeln!(out, "### stdio: `hello --stdio`'s `echo`, newline-delimited JSON-RPC on its pipes\n");
            let _ = writeln!(out, "| Calls in flight | Calls/s | p50 µs | p99 µs | Server CPU µs/call |");
            let _ = writeln!(out, "|--:|--:|--:|--:|--:|");
            for row in &self.stdio {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.1} |",
                    row.in_flight,
                    rate(&row.measured),
                    row.measured.p50_us(),
                    row.measured.p99_us(),
                    row.measured.server_cpu_us_per_call(),
                );
            }
            out.push('\n');
        }
        if let Some(rows) = &self.client {
            let _ = writeln!(
                out,
                "### Client: `mcp_runtime::client::Client` vs the load generator (1 connection, against `hello`)\n"
            );
            let _ = writeln!(
                out,
                "| Calls in flight | Client calls/s | p50 µs | p99 µs | Client CPU µs/call | Load generator calls/s | p50 µs | p99 µs | Load generator CPU µs/call | Bare loop calls/s | Client / load generator | Target ≥ {:.0}% at {CLIENT_TARGET_IN_FLIGHT} |",
                CLIENT_TARGET * 100.0
            );
            let _ = writeln!(out, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
            for row in rows {
                let verdict = if row.in_flight == CLIENT_TARGET_IN_FLIGHT {
                    verdict_at_least(row.ratio(), CLIENT_TARGET)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.1} | {} | {:.1}% | {verdict} |",
                    row.in_flight,
                    rate(&row.client),
                    row.client.p50_us(),
                    row.client.p99_us(),
                    row.client.driver_cpu_us_per_call(),
                    rate(&row.load_generator),
                    row.load_generator.p50_us(),
                    row.load_generator.p99_us(),
                    row.load_generator.driver_cpu_us_per_call(),
                    rate(&row.bare),
                    row.ratio() * 100.0,
                );
            }
            out.push('\n');
        }
        out
    }

    pub fn json(&self) -> Value {
        let throughput: Vec<Value> = self
            .throughput
            .iter()
            .map(|row| {
                json!({
                    "shape": row.shape,
                    "runtime": measurement_json(&row.runtime),
                    "bare": measurement_json(&row.bare),
                    "runtime_over_bare": row.ratio(),
                    "target": THROUGHPUT_TARGET,
                    "met": row.ratio() >= THROUGHPUT_TARGET,
                })
            })
            .collect();
        let idle: Vec<Value> = self
            .idle
            .iter()
            .map(|row| {
                let mut value = serde_json::to_value(row).expect("plain data serializes");
                value["kib_per_connection"] = json!(row.kib_per_connection());
                value
            })
            .collect();
        let client = match &self.client {
            None => Value::Null,
            Some(rows) => json!({
                "available": true,
                "rows": rows.iter().map(|row| json!({
                    "connections": 1,
                    "in_flight": row.in_flight,
                    "client": measurement_json(&row.client),
                    "load_generator": measurement_json(&row.load_generator),
                    "bare": measurement_json(&row.bare),
                    "client_over_load_generator": row.ratio(),
                })).collect::<Vec<_>>(),
                "target": { "in_flight": CLIENT_TARGET_IN_FLIGHT, "client_over_load_generator": CLIENT_TARGET },
            }),
        };
        let http: Vec<Value> = self
            .http
            .iter()
            .map(|row| {
                json!({
                    "shape": row.shape,
                    "runtime": measurement_json(&row.runtime),
                    "bare_hyper": measurement_json(&row.bare),
                    "rmcp_sessions_sse": measurement_json(&row.rmcp),
                    "rmcp_stateless_json": measurement_json(&row.rmcp_json),
                    "runtime_over_bare": row.ratio(),
                    "target": HTTP_TARGET,
                    "met": row.ratio() >= HTTP_TARGET,
                })
            })
            .collect();
        let stdio: Vec<Value> = self
            .stdio
            .iter()
            .map(|row| json!({ "in_flight": row.in_flight, "runtime": measurement_json(&row.measured) }))
            .collect();
        json!({
            "machine": self.machine,
            "method": self.method,
            "throughput": throughput,
            "idle": idle,
            "idle_target_kib": IDLE_TARGET_KIB,
            "client": client,
            "http": http,
            "stdio": stdio,
        })
    }
}

fn measurement_json(m: &Measurement) -> Value {
    json!({
        "calls": m.calls,
        "seconds": m.window.as_secs_f64(),
        "calls_per_second": m.calls_per_second(),
        "p50_us": m.p50_us(),
        "p99_us": m.p99_us(),
        "calls_answered_incl_warmup": m.answered,
        "server_cpu_us_per_call": m.server_cpu_us_per_call(),
        "bench_cpu_us_per_call": m.driver_cpu_us_per_call(),
    })
}

fn verdict_at_least(ratio: f64, target: f64) -> String {
    if ratio >= target { "met".to_owned() } else { format!("missed by {:.1} points", (target - ratio) * 100.0) }
}

fn rate(m: &Measurement) -> String {
    group_thousands(m.calls_per_second().round() as u64)
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }
}
