//! The Streamable HTTP load generator: HTTP/1.1 keep-alive connections
//! through hyper's client, each with one call in flight (HTTP/1.1 answers in
//! order, so more would queue, not overlap), `tools/call echo` POSTs built
//! from fixed text, latency per call.
//!
//! Each connection runs `initialize` and `notifications/initialized` first
//! and sends the `Mcp-Session-Id` it got (if any) with every call, as a
//! Streamable HTTP client does. It reads JSON answers and, from servers that
//! answer every POST with a stream, SSE ones.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::frames;
use crate::load::{Measurement, Shape};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the last calls may take after the deadline before the server counts as stuck.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// One keep-alive connection with its session.
struct HttpConnection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    session: Option<HeaderValue>,
    next_id: u64,
}

impl HttpConnection {
    async fn open(addr: SocketAddr) -> anyhow::Result<HttpConnection> {
        tokio::time::timeout(CONNECT_TIMEOUT, async {
            let stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let host = HeaderValue::from_str(&addr.to_string())?;
            let mut connection = HttpConnection { sender, host, session: None, next_id: 1 };
            let (status, session, body) = connection.post(frames::initialize_request()).await?;
            ensure!(status == 200, "initialize answered HTTP {status}: {body}");
            ensure!(body.contains(r#""result":"#), "initialize failed: {body}");
            connection.session = session;
            let (status, _, body) = connection.post(frames::INITIALIZED_NOTIFICATION.to_owned()).await?;
            ensure!((200..300).contains(&status), "notifications/initialized answered HTTP {status}: {body}");
            Ok(connection)
        })
        .await
        .map_err(|_| anyhow!("connecting to {addr} and initializing took over {CONNECT_TIMEOUT:?}"))?
    }

    /// One POST to `/mcp`: status, session header, the body's JSON-RPC
    /// message (an SSE answer's last `data:` payload).
    async fn post(&mut self, body: String) -> anyhow::Result<(u16, Option<HeaderValue>, String)> {
        let mut request = hyper::Request::post("/mcp")
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", frames::PROTOCOL_VERSION);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session.clone());
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let session = response.headers().get("mcp-session-id").cloned();
        let sse = response.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let bytes = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8(bytes.to_vec()).context("the answer is not UTF-8")?;
        let message = if sse { last_sse_data(&text).unwrap_or_default() } else { text };
        Ok((status, session, message))
    }

    /// One `echo` call, checked in full; returns the response.
    pub async fn echo_checked(&mut self) -> anyhow::Result<String> {
        let id = self.next_id;
        self.next_id += 1;
        let (status, _, body) = self.post(frames::echo_request(id)).await?;
        ensure!(status == 200, "echo answered HTTP {status}: {body}");
        frames::check_echo_response(&body, id).map_err(|e| anyhow!(e))?;
        Ok(body)
    }
}

/// The `data:` payload of the last event of an SSE body.
fn last_sse_data(body: &str) -> Option<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            (!data.is_empty() && !data.concat().is_empty()).then(|| data.join("\n"))
        })
        .last()
}

/// The connections of one shape to one server, kept across slices.
pub struct HttpConnections {
    connections: Vec<HttpConnection>,
}

impl HttpConnections {
    pub async fn open(addr: SocketAddr, shape: Shape) -> anyhow::Result<HttpConnections> {
        ensure!(shape.in_flight == 1, "HTTP/1.1 carries one call at a time per connection");
        let mut connections = Vec::with_capacity(shape.connections);
        for _ in 0..shape.connections {
            connections.push(HttpConnection::open(addr).await?);
        }
        connections[0].echo_checked().await.context("the first echo call")?;
        Ok(HttpConnections { connections })
    }

    /// All connections start together, warm up for `warmup` (not counted),
    /// then count for `duration`.
    pub async fn slice(&mut self, warmup: Duration, duration: Duration) -> anyhow::Result<Measurement> {
        let window_start = Instant::now() + warmup;
        let deadline = window_start + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for (index, mut connection) in self.connections.drain(..).enumerate() {
            tasks.spawn(async move {
                let driven =
                    tokio::time::timeout_at(deadline + DRAIN_GRACE, drive(&mut connection, window_start, deadline))
                        .await;
                (index, connection, driven)
            });
        }
        let mut total = Measurement::new(duration);
        let mut returned = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            let (index, connection, driven) = joined.context("an HTTP load task panicked")?;
            let measured = driven
                .map_err(|_| anyhow!("the server left a call unanswered {DRAIN_GRACE:?} after the deadline"))??;
            total.merge(&measured);
            returned.push((index, connection));
        }
        returned.sort_by_key(|(index, _)| *index);
        self.connections = returned.into_iter().map(|(_, connection)| connection).collect();
        Ok(total)
    }
}

/// Calls back to back until `deadline`; counts those sent and answered
/// inside [`window_start`, `deadline`].
async fn drive(
    connection: &mut HttpConnection,
    window_start: Instant,
    deadline: Instant,
) -> anyhow::Result<Measurement> {
    let mut measured = Measurement::new(deadline - window_start);
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            return Ok(measured);
        }
        let id = connection.next_id;
        connection.next_id += 1;
        let (status, _, body) = connection.post(frames::echo_request(id)).await?;
        let now = Instant::now();
        if status != 200 || !frames::is_echo_success(&body) || frames::response_id(&body) != Some(id) {
            bail!("an echo call failed (HTTP {status}): {body}");
        }
        let in_window = sent >= window_start && now <= deadline;
        measured.record(in_window.then(|| now - sent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_sse_event_carries_the_message() {
        let body = "id: 1-0\nretry: 1000\ndata: \n\nid: 1-1\ndata: {\"a\":1}\n\n";
        assert_eq!(last_sse_data(body).as_deref(), Some("{\"a\":1}"));
        assert_eq!(last_sse_data("data: \n\n"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drives_the_bare_http_handler() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(crate::bare_http::accept_loop(listener));
        let mut connections = HttpConnections::open(addr, Shape { connections: 2, in_flight: 1 }).await.unwrap();
        let measured = connections.slice(Duration::from_millis(50), Duration::from_millis(200)).await.unwrap();
        assert!(measured.calls > 0);
        assert_eq!(measured.latency_us.len(), measured.calls);
        server.abort();
    }
}
