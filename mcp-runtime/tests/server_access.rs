//! Who may call: the Origin check (a page from elsewhere must not reach a
//! server on localhost, over HTTP or WebSocket: browsers apply no CORS to
//! WebSocket), the Host check against DNS rebinding on a loopback server,
//! and the bearer token. Each on both network transports.

mod server_harness;

use std::net::SocketAddr;

use serde_json::json;
use server_harness::peer::{Kind, Served, exchange, post_headers};
use server_harness::tools::builder;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn start(builder: mcp_runtime::ServerBuilder) -> (Served, SocketAddr) {
    let served = Served::start(Kind::StreamableHttp, builder).await;
    let addr = served.addr.expect("a network server");
    (served, addr)
}

fn initialize() -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})
    .to_string()
}

/// The HTTP status of a POST `initialize` with `headers`.
async fn http_status(addr: SocketAddr, headers: &[(&str, &str)]) -> (u16, String) {
    let answer = exchange(addr, "POST", "/mcp", &post_headers(headers), &initialize()).await;
    (answer.status, answer.body)
}

/// The HTTP status a WebSocket upgrade gets with `headers` (101 when it succeeds).
async fn websocket_status(addr: SocketAddr, headers: &[(&str, &str)]) -> u16 {
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    for (name, value) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_ws, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("the upgrade failed without an HTTP answer: {e}"),
    }
}

#[tokio::test]
async fn a_page_from_elsewhere_is_refused_on_http_and_websocket() {
    let (_served, addr) = start(builder()).await;
    // The hijack: a web page at evil.example calling a server on localhost.
    let (status, body) = http_status(addr, &[("origin", "http://evil.example")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil.example") && body.contains("MCP_ALLOWED_ORIGINS"), "{body}");
    assert_eq!(websocket_status(addr, &[("origin", "http://evil.example")]).await, 403);
    // Look-alikes are other origins too.
    for origin in ["http://localhost.evil.example", "null", "http://127.0.0.1.evil.example:80"] {
        assert_eq!(http_status(addr, &[("origin", origin)]).await.0, 403, "{origin}");
        assert_eq!(websocket_status(addr, &[("origin", origin)]).await, 403, "{origin}");
    }
    // No Origin (not a browser) and loopback origins on any port pass.
    assert_eq!(http_status(addr, &[]).await.0, 200);
    for origin in ["http://localhost:5173", "http://127.0.0.1", "https://[::1]:8443"] {
        assert_eq!(http_status(addr, &[("origin", origin)]).await.0, 200, "{origin}");
        assert_eq!(websocket_status(addr, &[("origin", origin)]).await, 101, "{origin}");
    }
}

#[tokio::test]
async fn listed_origins_are_allowed() {
    let (_served, addr) = start(builder().allowed_origins(["https://app.example.com"])).await;
    assert_eq!(http_status(addr, &[("origin", "https://app.example.com")]).await.0, 200);
    assert_eq!(websocket_status(addr, &[("origin", "https://app.example.com")]).await, 101);
    assert_eq!(http_status(addr, &[("origin", "https://other.example.com")]).await.0, 403);
}

#[tokio::test]
async fn a_loopback_server_refuses_other_host_names() {
    let (_served, addr) = start(builder()).await;
    // DNS rebinding: evil.example resolved to 127.0.0.1, and the browser says so in Host.
    let (status, body) = http_status(addr, &[("host", "evil.example:9000")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("DNS rebinding"), "{body}");
    assert_eq!(websocket_status(addr, &[("host", "evil.example:9000")]).await, 403);
    assert_eq!(http_status(addr, &[("host", &format!("localhost:{}", addr.port()))]).await.0, 200);
    assert_eq!(websocket_status(addr, &[("host", "localhost")]).await, 101);
}

#[tokio::test]
async fn the_bearer_token_is_required_on_http_and_websocket() {
    let (_served, addr) = start(builder().auth_token("s3cret-token")).await;
    let answer = exchange(addr, "POST", "/mcp", &post_headers(&[]), &initialize()).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.header("www-authenticate"), Some(r#"Bearer realm="mcp""#));
    let wrong =
        exchange(addr, "POST", "/mcp", &post_headers(&[("authorization", "Bearer s3cret")]), &initialize()).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").is_some_and(|v| v.contains("invalid_token")));
    assert_eq!(http_status(addr, &[("authorization", "Bearer s3cret-token")]).await.0, 200);

    assert_eq!(websocket_status(addr, &[]).await, 401);
    assert_eq!(websocket_status(addr, &[("authorization", "Bearer nope")]).await, 401);
    assert_eq!(websocket_status(addr, &[("authorization", "Bearer s3cret-token")]).await, 101);

    // Health checks need no token.
    assert_eq!(exchange(addr, "GET", "/healthz", &[], "").await.status, 200);

    // The crate's client sends it when given.
    let url = format!("ws://{addr}/");
    let refused = mcp_runtime::client::Client::builder(&url).reconnect(false).connect().await;
    assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("401")), "{refused:?}");
    let client = mcp_runtime::client::Client::builder(&url)
        .bearer_token("s3cret-token")
        .connect()
        .await
        .expect("the client connects with the token");
    let echoed: serde_json::Value = client.call("echo", json!({"text": "authorized"})).await.expect("a call");
    assert_eq!(echoed, json!({"text": "authorized"}));
}
