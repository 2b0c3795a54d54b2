//! Shared by the `server_*` tests: a server on 127.0.0.1:0 in this process
//! and a raw tokio-tungstenite client that speaks JSON-RPC by hand, so the
//! tests see exactly the bytes a client would.

#![allow(dead_code)]

pub mod peer;
pub mod tools;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mcp_runtime::{Error, ServerBuilder, ShutdownHandle};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any single message before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
    pub task: JoinHandle<Result<(), Error>>,
}

impl TestServer {
    pub async fn start(builder: ServerBuilder) -> TestServer {
        let bound = builder.bind("127.0.0.1:0").await.expect("bind");
        let addr = bound.local_addr();
        let shutdown = bound.shutdown_handle();
        let task = tokio::spawn(bound.serve());
        TestServer { addr, shutdown, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/mcp", self.addr)
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&self.url(), None).await.0
    }

    /// A client that already ran `initialize` + `notifications/initialized`.
    pub async fn session(&self) -> Client {
        let mut client = self.connect().await;
        client.initialize("2025-06-18").await;
        client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        self.task.abort();
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Notifications seen while waiting for responses.
    pub notifications: Vec<Value>,
}

impl Client {
    /// Connects, offering `subprotocol` if given; returns the server's
    /// `Sec-WebSocket-Protocol` answer too.
    pub async fn connect(url: &str, subprotocol: Option<&str>) -> (Client, Option<String>) {
        let mut request = url.into_client_request().expect("request");
        if let Some(p) = subprotocol {
            request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
        }
        let (ws, response) = tokio_tungstenite::connect_async(request).await.expect("connect");
        let chosen = response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().expect("ascii").to_owned());
        (Client { ws, notifications: Vec::new() }, chosen)
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON-RPC message (response or notification).
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("connection ended")
                .expect("read failed");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("server sent invalid JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next response, keeping notifications aside.
    pub async fn response(&mut self) -> Value {
        loop {
            let message = self.recv().await;
            if message.get("id").is_some() {
                return message;
            }
            self.notifications.push(message);
        }
    }

    /// Sends a request and waits for the response with its id.
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

    pub async fn call(&mut self, id: i64, tool: &str, arguments: Value) -> Value {
        self.request(json!(id), "tools/call", Some(json!({"name": tool, "arguments": arguments}))).await
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(message).await;
    }

    pub async fn initialize(&mut self, version: &str) -> Value {
        let response = self
            .request(
                json!(0),
                "initialize",
                Some(json!({
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "raw-test-client", "version": "0"}
                })),
            )
            .await;
        self.notify("notifications/initialized", None).await;
        response
    }

    /// Fails if any message arrives within `window`, or if the connection
    /// ends: a closed connection is not a quiet one. Keepalive pings and
    /// pongs are not messages.
    pub async fn expect_silence(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(message))) => panic!("expected no message, got {message:?}"),
                Ok(Some(Err(e))) => panic!("expected a quiet connection, but it failed: {e}"),
                Ok(None) => panic!("expected a quiet connection, but it ended"),
            }
        }
    }

    /// Reads until the server's close frame and returns it.
    pub async fn expect_close(&mut self) -> CloseFrame {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("timed out waiting for close");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return frame,
                Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
                Some(Ok(_)) => continue,
                Some(Err(tungstenite::Error::ConnectionClosed)) | None => panic!("closed without a close frame"),
                Some(Err(e)) => panic!("read failed before the close frame: {e}"),
            }
        }
    }
}

/// The `error.code` of a JSON-RPC error response.
pub fn error_code(response: &Value) -> i64 {
    response["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error response: {response}"))
}

pub fn error_message(response: &Value) -> &str {
    response["error"]["message"].as_str().unwrap_or_else(|| panic!("not an error response: {response}"))
}

/// The first text block of a `tools/call` result.
pub fn text(response: &Value) -> &str {
    response["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text block: {response}"))
}
