//! Opening the WebSocket: resolve the host, try each address in turn, then
//! upgrade, offering the `mcp` subprotocol and falling back to none for
//! servers that do not speak it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::error::ClientError;

/// The subprotocol MCP-over-WebSocket servers announce.
pub const SUBPROTOCOL: &str = "mcp";

/// An open WebSocket to an MCP server.
pub type WebSocket = WebSocketStream<TcpStream>;

/// A `ws://` URL, checked once so that every reconnect can skip the parsing.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    uri: Uri,
    host: String,
    port: u16,
    /// `Authorization: Bearer <token>` for servers started with `MCP_AUTH_TOKEN`.
    authorization: Option<HeaderValue>,
}

impl Endpoint {
    /// Checks that `url` is a `ws://host[:port][/path]` URL.
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| ClientError::connect(url, format!("not a valid URL ({e}); expected ws://host:port/path")))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => {
                return Err(ClientError::connect(
                    url,
                    "wss:// is not supported by this build (no TLS); use ws:// or terminate TLS in a local proxy",
                ));
            }
            other => {
                return Err(ClientError::connect(
                    url,
                    format!("the scheme must be ws://, not {:?}; expected ws://host:port/path", other.unwrap_or("")),
                ));
            }
        }
        let Some(host) = uri.host() else {
            return Err(ClientError::connect(url, "the URL has no host; expected ws://host:port/path"));
        };
        // `Uri::host` keeps the brackets of an IPv6 literal; the resolver wants them off.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = uri.port_u16().unwrap_or(80);
        Ok(Endpoint { url: url.to_owned(), uri, host, port, authorization: None })
    }

    /// Sends `Authorization: Bearer <token>` with every WebSocket upgrade
    /// (servers started with `MCP_AUTH_TOKEN` require it).
    pub fn with_bearer_token(mut self, token: &str) -> Result<Endpoint, ClientError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ClientError::InvalidRequest("the bearer token must be visible ASCII (no line breaks)".into())
        })?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens the TCP connection and performs the WebSocket upgrade within
    /// `timeout` per address. Returns whether the server accepted the `mcp`
    /// subprotocol; pass that back as `offer_subprotocol` on reconnects so a
    /// server without it costs one extra round trip only the first time.
    pub async fn connect(&self, timeout: Duration, offer_subprotocol: bool) -> Result<(WebSocket, bool), ClientError> {
        if offer_subprotocol {
            match self.connect_once(timeout, true).await {
                Err(Upgrade::NoSubprotocol) => {
                    tracing::debug!(url = %self.url, "server declined the mcp subprotocol; connecting without it");
                }
                Err(Upgrade::Failed(e)) => return Err(e),
                Ok(ws) => return Ok((ws, true)),
            }
        }
        match self.connect_once(timeout, false).await {
            Ok(ws) => Ok((ws, false)),
            Err(Upgrade::Failed(e)) => Err(e),
            Err(Upgrade::NoSubprotocol) => unreachable!("no subprotocol was offered"),
        }
    }

    async fn connect_once(&self, timeout: Duration, offer_subprotocol: bool) -> Result<WebSocket, Upgrade> {
        let stream = self.connect_tcp(timeout).await?;
        let mut request = (&self.uri)
            .into_client_request()
            .map_err(|e| Upgrade::Failed(ClientError::connect_with(&self.url, "invalid WebSocket request", e)))?;
        if offer_subprotocol {
            request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
        }
        if let Some(authorization) = &self.authorization {
            request.headers_mut().insert("Authorization", authorization.clone());
        }
        let upgrade = tokio_tungstenite::client_async_with_config(request, stream, Some(websocket_config()));
        match tokio::time::timeout(timeout, upgrade).await {
            Err(_) => Err(Upgrade::Failed(ClientError::connect(
                &self.url,
                format!("the WebSocket upgrade did not complete within {timeout:?}"),
            ))),
            Ok(Ok((ws, _response))) => Ok(ws),
            Ok(Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::NoSubProtocol,
            )))) => Err(Upgrade::NoSubprotocol),
            Ok(Err(e)) => Err(Upgrade::Failed(ClientError::connect_with(&self.url, "WebSocket upgrade failed", e))),
        }
    }

    /// Resolves the host and tries every address (IPv4 and IPv6) in the
    /// resolver's order until one accepts.
    async fn connect_tcp(&self, timeout: Duration) -> Result<TcpStream, Upgrade> {
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout(timeout, tokio::net::lookup_host((self.host.as_str(), self.port))).await {
                Err(_) => {
                    return Err(Upgrade::Failed(ClientError::connect(
                        &self.url,
                        format!("resolving {} took longer than {timeout:?}", self.host),
                    )));
                }
                Ok(Err(e)) => {
                    return Err(Upgrade::Failed(ClientError::connect_with(
                        &self.url,
                        format!("could not resolve host {:?}", self.host),
                        e,
                    )));
                }
                Ok(Ok(addrs)) => addrs.collect(),
            };
        // The message already lists every address's error; the io::Error would repeat the last.
        connect_any(&addrs, timeout)
            .await
            .map_err(|(message, _)| Upgrade::Failed(ClientError::connect(&self.url, message)))
    }
}

/// tungstenite zero-fills its whole read buffer before every read; MCP
/// answers are small, so a 16 KiB buffer (instead of 128 KiB) saves that
/// work on every read. Larger frames still arrive whole: the buffer grows
/// to fit them.
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 * 1024)
}

enum Upgrade {
    NoSubprotocol,
    Failed(ClientError),
}

/// Tries each address with its own timeout; the error lists every attempt.
pub(crate) async fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, (String, io::Error)> {
    let mut failures = Vec::new();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host resolved to no addresses");
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Requests are small and latency-bound: never wait for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => {
                failures.push(format!("{addr}: {e}"));
                last = e;
            }
            Err(_) => {
                failures.push(format!("{addr}: no answer within {timeout:?}"));
                last = io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr} timed out"));
            }
        }
    }
    let tried = if failures.is_empty() { "no addresses to try".to_owned() } else { failures.join("; ") };
    Err((format!("TCP connect failed ({tried})"), last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(Endpoint::parse("ws://127.0.0.1:9/mcp").is_ok());
        let e = Endpoint::parse("http://127.0.0.1:9/").unwrap_err();
        assert!(e.is_connect() && e.to_string().contains("ws://"), "{e}");
        let e = Endpoint::parse("wss://example.com/").unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let e = Endpoint::parse("not a url").unwrap_err();
        assert!(e.is_connect(), "{e}");
        let v6 = Endpoint::parse("ws://[::1]:8080/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
    }

    #[tokio::test]
    async fn tries_each_address_until_one_accepts() {
        // A port that was just freed refuses; the listener after it accepts.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let mut addrs = vec![closed];
        // Exercise IPv6 too where the machine has it.
        if let Ok(v6) = tokio::net::TcpListener::bind("[::1]:0").await {
            let v6_closed = v6.local_addr().unwrap();
            drop(v6);
            addrs.push(v6_closed);
        }
        addrs.push(open);
        let stream = connect_any(&addrs, Duration::from_secs(5)).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), open);
    }

    #[tokio::test]
    async fn error_lists_every_address_tried() {
        let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let (message, _) = connect_any(&[a, b], Duration::from_secs(5)).await.unwrap_err();
        assert!(message.contains(&a.to_string()) && message.contains(&b.to_string()), "{message}");
    }
}
