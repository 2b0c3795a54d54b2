//! One MCP session over any of the three transports, seen as a stream of
//! JSON-RPC messages, so that a behaviour test runs unchanged on WebSocket,
//! Streamable HTTP and stdio. Built on raw clients (tokio-tungstenite,
//! hyper's HTTP/1.1 client, a duplex pipe), never on the crate's own client.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mcp_runtime::{ServerBuilder, ShutdownHandle};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::PATIENCE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    WebSocket,
    StreamableHttp,
    Stdio,
}

pub const ALL: [Kind; 3] = [Kind::WebSocket, Kind::StreamableHttp, Kind::Stdio];

/// A server serving one transport, and how to stop it.
pub struct Served {
    pub kind: Kind,
    pub addr: Option<SocketAddr>,
    pub shutdown: ShutdownHandle,
    pub task: JoinHandle<Result<(), mcp_runtime::Error>>,
    /// stdio: the client's ends of the pipes, taken by the first peer.
    stdio: Option<DuplexStream>,
}

impl Served {
    pub async fn start(kind: Kind, builder: ServerBuilder) -> Served {
        match kind {
            Kind::WebSocket | Kind::StreamableHttp => {
                let bound = builder.bind("127.0.0.1:0").await.expect("bind");
                let addr = bound.local_addr();
                let shutdown = bound.shutdown_handle();
                let task = tokio::spawn(bound.serve());
                Served { kind, addr: Some(addr), shutdown, task, stdio: None }
            }
            Kind::Stdio => {
                let service = builder.build().expect("build");
                let shutdown = service.shutdown_handle();
                let (client, server) = tokio::io::duplex(64 * 1024);
                let (read, write) = tokio::io::split(server);
                let task = tokio::spawn(async move {
                    service.serve_io(read, write).await.map_err(|e| panic!("stdio failed: {e}"))
                });
                Served { kind, addr: None, shutdown, task, stdio: Some(client) }
            }
        }
    }

    /// A peer that has completed `initialize` and `notifications/initialized`.
    pub async fn session(&mut self) -> Peer {
        let mut peer = match self.kind {
            Kind::WebSocket => {
                let url = format!("ws://{}/mcp", self.addr.expect("a network server"));
                let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
                let (mut sink, mut stream) = ws.split();
                let (inbox_tx, inbox) = mpsc::unbounded_channel();
                let (out, mut outgoing) = mpsc::unbounded_channel::<String>();
                tokio::spawn(async move {
                    while let Some(text) = outgoing.recv().await {
                        if sink.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some(Ok(message)) = stream.next().await {
                        match message {
                            Message::Text(text) => {
                                let _ = inbox_tx.send(Incoming::Message(serde_json::from_str(&text).expect("JSON")));
                            }
                            Message::Close(frame) => {
                                let code = frame.map(|f| u16::from(f.code));
                                let _ = inbox_tx.send(Incoming::Closed(code));
                            }
                            _ => {}
                        }
                    }
                    let _ = inbox_tx.send(Incoming::Closed(None));
                });
                Peer { inbox, out: Out::Channel(out), notifications: Vec::new() }
            }
            Kind::StreamableHttp => {
                let (inbox_tx, inbox) = mpsc::unbounded_channel();
                let http = Http { addr: self.addr.expect("a network server"), session: None, inbox: inbox_tx };
                Peer { inbox, out: Out::Http(http), notifications: Vec::new() }
            }
            Kind::Stdio => {
                let pipe = self.stdio.take().expect("one stdio session per server");
                let (read, write) = tokio::io::split(pipe);
                let (inbox_tx, inbox) = mpsc::unbounded_channel();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let _ = inbox_tx.send(Incoming::Message(serde_json::from_str(&line).expect("JSON line")));
                    }
                    let _ = inbox_tx.send(Incoming::Closed(None));
                });
                Peer { inbox, out: Out::Stdio(Some(write)), notifications: Vec::new() }
            }
        };
        let init = peer
            .request(
                json!(0),
                "initialize",
                Some(json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}})),
            )
            .await;
        assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
        peer.notify("notifications/initialized", None).await;
        peer
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        self.task.abort();
    }
}

pub enum Incoming {
    Message(Value),
    /// The connection (or stream of messages) ended; the WebSocket close code if any.
    Closed(Option<u16>),
}

enum Out {
    Channel(mpsc::UnboundedSender<String>),
    Http(Http),
    Stdio(Option<WriteHalf<DuplexStream>>),
}

/// Streamable HTTP: each message is a POST on a fresh connection whose
/// answer (202, JSON or an SSE stream) is read by a task of its own and
/// forwarded, in order, to the inbox.
struct Http {
    addr: SocketAddr,
    session: Option<String>,
    inbox: mpsc::UnboundedSender<Incoming>,
}

/// What a POST got: its status and the messages of its body.
pub struct Posted {
    pub status: u16,
    pub session: Option<String>,
    pub messages: Vec<Value>,
}

/// One POST to `/mcp`, its body read to the end (JSON, or every SSE event).
pub async fn post(
    addr: SocketAddr,
    session: Option<&str>,
    body: &str,
    forward: Option<&mpsc::UnboundedSender<Incoming>>,
) -> Posted {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::post("/mcp")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).expect("request");
    let response = sender.send_request(request).await.expect("POST");
    let status = response.status().as_u16();
    let session = response.headers().get("mcp-session-id").map(|v| v.to_str().expect("ascii").to_owned());
    let sse = response.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mut body = response.into_body();
    let mut messages = Vec::new();
    let mut buffer = String::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(data) = frame.data_ref() else { continue };
        buffer.push_str(std::str::from_utf8(data).expect("UTF-8"));
        if !sse {
            continue;
        }
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data: Vec<&str> =
                event.lines().filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:"))).collect();
            let data = data.join("\n");
            if data.trim().is_empty() {
                continue; // the priming event
            }
            let message: Value = serde_json::from_str(&data).expect("SSE data is JSON");
            if let Some(forward) = forward {
                let _ = forward.send(Incoming::Message(message.clone()));
            }
            messages.push(message);
        }
    }
    if !sse && !buffer.is_empty() {
        let message: Value = serde_json::from_str(&buffer).expect("a JSON body");
        if let Some(forward) = forward {
            let _ = forward.send(Incoming::Message(message.clone()));
        }
        messages.push(message);
    }
    Posted { status, session, messages }
}

/// A session as a stream of messages.
pub struct Peer {
    inbox: mpsc::UnboundedReceiver<Incoming>,
    out: Out,
    /// Notifications seen while waiting for responses, in arrival order.
    pub notifications: Vec<Value>,
}

impl Peer {
    pub async fn send(&mut self, message: Value) {
        let text = message.to_string();
        match &mut self.out {
            Out::Channel(out) => out.send(text).expect("the connection is open"),
            Out::Stdio(write) => {
                let write = write.as_mut().expect("stdin is open");
                write.write_all(text.as_bytes()).await.expect("write");
                write.write_all(b"\n").await.expect("write");
            }
            Out::Http(http) => {
                if message["method"] == "initialize" {
                    // The session id comes with the answer: wait for it.
                    let posted = post(http.addr, None, &text, Some(&http.inbox)).await;
                    http.session = posted.session;
                    assert!(http.session.is_some(), "initialize issued no Mcp-Session-Id");
                    return;
                }
                if message.get("id").is_none() {
                    // A notification is answered 202 once handled: later
                    // messages arrive after it.
                    let posted = post(http.addr, http.session.as_deref(), &text, Some(&http.inbox)).await;
                    assert_eq!(posted.status, 202, "a notification is accepted with 202");
                    return;
                }
                // A request is answered when its call ends: its POST runs
                // beside the others (tests that need it running wait for a
                // sign of that, such as its first progress).
                let (addr, session, inbox) = (http.addr, http.session.clone(), http.inbox.clone());
                tokio::spawn(async move { post(addr, session.as_deref(), &text, Some(&inbox)).await });
            }
        }
    }

    /// stdio: closes the server's stdin (end of input).
    pub async fn close_input(&mut self) {
        if let Out::Stdio(write) = &mut self.out {
            let mut write = write.take().expect("stdin is open");
            write.shutdown().await.expect("close stdin");
        }
    }

    pub async fn recv(&mut self) -> Incoming {
        tokio::time::timeout(PATIENCE, self.inbox.recv())
            .await
            .expect("timed out waiting for a message")
            .unwrap_or(Incoming::Closed(None))
    }

    /// The next message, which must come.
    pub async fn message(&mut self) -> Value {
        match self.recv().await {
            Incoming::Message(message) => message,
            Incoming::Closed(code) => panic!("the session ended ({code:?}) while a message was expected"),
        }
    }

    /// The next response, keeping notifications aside.
    pub async fn response(&mut self) -> Value {
        loop {
            let message = self.message().await;
            if message.get("id").is_some() {
                return message;
            }
            self.notifications.push(message);
        }
    }

    pub async fn request(&mut self, id: Value, method: &str, params: Option<Value>) -> Value {
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(message).await;
        let response = self.response().await;
        assert_eq!(response["id"], id, "response for another id: {response}");
        response
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(message).await;
    }

    /// Fails if a message arrives within `window`.
    pub async fn expect_silence(&mut self, window: Duration) {
        if let Ok(Some(Incoming::Message(message))) = tokio::time::timeout(window, self.inbox.recv()).await {
            panic!("expected no message, got {message}");
        }
    }

    /// The session's HTTP id (Streamable HTTP only).
    pub fn http_session(&self) -> Option<&str> {
        match &self.out {
            Out::Http(http) => http.session.as_deref(),
            _ => None,
        }
    }
}

/// A raw HTTP/1.1 exchange: status, headers, body as text (the whole body:
/// do not use it on a stream that stays open).
pub struct Exchange {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `data:` payloads of an SSE body, priming events (empty data) included as `None`.
    pub fn events(&self) -> Vec<(Option<String>, Option<Value>)> {
        self.body
            .split("\n\n")
            .filter(|e| !e.trim().is_empty() && !e.starts_with(':'))
            .map(|event| {
                let id = event.lines().find_map(|l| l.strip_prefix("id: ")).map(str::to_owned);
                let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                let data = data.join("\n");
                let value = (!data.is_empty()).then(|| serde_json::from_str(&data).expect("SSE data is JSON"));
                (id, value)
            })
            .collect()
    }
}

/// Sends one request with `headers` (a `host` header is added unless given)
/// and reads the whole answer.
pub async fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Exchange {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request = request.header("host", addr.to_string());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).expect("request");
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("timed out waiting for the answer")
        .expect("the request failed");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(PATIENCE, response.into_body().collect())
        .await
        .expect("timed out reading the body")
        .expect("body")
        .to_bytes();
    Exchange { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// The headers of a Streamable HTTP POST, plus `extra`.
pub fn post_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    headers.extend_from_slice(extra);
    headers
}

/// `initialize` over Streamable HTTP; the session id it issued.
pub async fn http_session(addr: SocketAddr) -> String {
    let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let answer = exchange(addr, "POST", "/mcp", &post_headers(&[]), &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let session = answer.header("mcp-session-id").expect("a session id").to_owned();
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
    let answer = exchange(addr, "POST", "/mcp", &post_headers(&[("mcp-session-id", &session)]), &initialized).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    session
}
