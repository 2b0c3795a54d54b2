//! MCP lifecycle over a real socket: `initialize` per protocol version, the
//! errors before it, `ping`, and the stateless 2026-07-28 revision.

mod server_harness;

use serde_json::{Value, json};
use server_harness::tools::{TOOL_NAMES, builder};
use server_harness::{TestServer, error_code, error_message};

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";

fn stateless_meta(version: &str) -> Value {
    json!({ META_VERSION: version, META_CAPS: {}, "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"} })
}

#[tokio::test]
async fn initialize_echoes_every_supported_version() {
    let server = TestServer::start(builder()).await;
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut client = server.connect().await;
        let response = client.initialize(version).await;
        let result = &response["result"];
        assert_eq!(result["protocolVersion"], version, "{response}");
        assert_eq!(result["serverInfo"], json!({"name": "test-server", "version": "1.2.3"}));
        assert_eq!(result["capabilities"], json!({"tools": {"listChanged": false}, "logging": {}}));
        assert_eq!(result["instructions"], "Use echo to test.");
        // The session works after the handshake.
        let list = client.request(json!(1), "tools/list", None).await;
        assert!(list["result"]["tools"].is_array(), "{list}");
    }
}

#[tokio::test]
async fn initialize_answers_the_newest_version_for_an_unknown_one() {
    let server = TestServer::start(builder()).await;
    for requested in ["1999-01-01", "2026-07-28", "not a date"] {
        let mut client = server.connect().await;
        let response = client.initialize(requested).await;
        assert_eq!(response["result"]["protocolVersion"], "2025-11-25", "{requested}: {response}");
    }
}

#[tokio::test]
async fn initialize_without_a_version_is_invalid_params() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    let response = client.request(json!(1), "initialize", Some(json!({"capabilities": {}}))).await;
    assert_eq!(error_code(&response), -32602);
    assert!(error_message(&response).contains("protocolVersion"), "{response}");
    // Nothing changed: a proper initialize still works.
    assert_eq!(client.initialize("2025-06-18").await["result"]["protocolVersion"], "2025-06-18");
}

#[tokio::test]
async fn a_second_initialize_is_refused() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let response = client.request(json!(9), "initialize", Some(json!({"protocolVersion": "2025-03-26"}))).await;
    assert_eq!(error_code(&response), -32600);
    assert!(error_message(&response).contains("already initialized"), "{response}");
}

#[tokio::test]
async fn requests_before_initialize_get_an_error_not_silence() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    for (id, method, params) in [
        (1, "tools/list", None),
        (2, "tools/call", Some(json!({"name": "echo", "arguments": {"text": "x"}}))),
        (3, "logging/setLevel", Some(json!({"level": "debug"}))),
    ] {
        let response = client.request(json!(id), method, params).await;
        assert_eq!(error_code(&response), -32600, "{method}: {response}");
        assert!(error_message(&response).contains("initialize"), "{response}");
    }
}

#[tokio::test]
async fn ping_works_before_and_after_initialize() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    assert_eq!(client.request(json!("p1"), "ping", None).await, json!({"jsonrpc": "2.0", "id": "p1", "result": {}}));
    client.initialize("2025-11-25").await;
    assert_eq!(client.request(json!(2), "ping", None).await["result"], json!({}));
}

#[tokio::test]
async fn the_initialized_notification_is_not_answered() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    client.request(json!(1), "initialize", Some(json!({"protocolVersion": "2025-06-18"}))).await;
    client.notify("notifications/initialized", None).await;
    client.expect_silence(std::time::Duration::from_millis(200)).await;
}

#[tokio::test]
async fn server_discover_describes_the_stateless_revision() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    let response =
        client.request(json!(1), "server/discover", Some(json!({"_meta": stateless_meta("2026-07-28")}))).await;
    let result = &response["result"];
    assert_eq!(result["resultType"], "complete", "{response}");
    assert_eq!(result["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(result["capabilities"], json!({"tools": {"listChanged": false}}));
    assert_eq!(result["serverInfo"], json!({"name": "test-server", "version": "1.2.3"}));
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "test-server");
    assert_eq!(result["instructions"], "Use echo to test.");
    assert!(result["ttlMs"].as_u64().is_some() && result["cacheScope"] == "public", "{response}");
    // A bare probe, without _meta, is answered too.
    let bare = client.request(json!(2), "server/discover", None).await;
    assert_eq!(bare["result"]["supportedVersions"], json!(["2026-07-28"]));
}

#[tokio::test]
async fn stateless_requests_need_no_handshake() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    let list = client.request(json!(1), "tools/list", Some(json!({"_meta": stateless_meta("2026-07-28")}))).await;
    let result = &list["result"];
    assert_eq!(result["resultType"], "complete", "{list}");
    assert_eq!(result["tools"].as_array().unwrap().len(), TOOL_NAMES.len());
    assert_eq!(result["cacheScope"], "public");
    assert!(result["ttlMs"].as_u64().unwrap() > 0);

    let call = client
        .request(
            json!(2),
            "tools/call",
            Some(json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": stateless_meta("2026-07-28")})),
        )
        .await;
    assert_eq!(call["result"]["resultType"], "complete", "{call}");
    assert_eq!(call["result"]["structuredContent"], json!({"text": "hi"}));
    assert_eq!(call["result"]["isError"], false);

    // The connection is still not an initialized session.
    let plain = client.request(json!(3), "tools/list", None).await;
    assert_eq!(error_code(&plain), -32600, "{plain}");
}

#[tokio::test]
async fn an_unsupported_stateless_version_is_minus_32022_with_the_supported_list() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    for method in ["tools/list", "server/discover"] {
        let response = client.request(json!(1), method, Some(json!({"_meta": stateless_meta("2030-01-01")}))).await;
        assert_eq!(error_code(&response), -32022, "{response}");
        assert_eq!(response["error"]["data"], json!({"supported": ["2026-07-28"], "requested": "2030-01-01"}));
    }
}

#[tokio::test]
async fn stateless_requests_are_checked() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    // Capabilities are required next to the version.
    let response = client.request(json!(1), "tools/list", Some(json!({"_meta": {META_VERSION: "2026-07-28"}}))).await;
    assert_eq!(error_code(&response), -32602, "{response}");
    assert!(error_message(&response).contains("clientCapabilities"), "{response}");
    // The version must be a string.
    let response = client.request(json!(2), "tools/list", Some(json!({"_meta": {META_VERSION: 20260728}}))).await;
    assert_eq!(error_code(&response), -32602, "{response}");
    // Methods the revision removed.
    for method in ["initialize", "ping", "logging/setLevel"] {
        let response = client.request(json!(3), method, Some(json!({"_meta": stateless_meta("2026-07-28")}))).await;
        assert_eq!(error_code(&response), -32601, "{method}: {response}");
    }
}

#[tokio::test]
async fn stateless_calls_report_progress_and_can_be_cancelled() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    let mut meta = stateless_meta("2026-07-28");
    meta["progressToken"] = json!("p");
    client
        .send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
            "name":"work","arguments":{"steps":2,"step_ms":5},"_meta": meta}}))
        .await;
    let response = client.response().await;
    assert_eq!(response["result"]["resultType"], "complete", "{response}");
    let progress: Vec<&Value> =
        client.notifications.iter().filter(|n| n["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 2, "{:?}", client.notifications);

    client
        .send(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
            "name":"nap","arguments":{"ms":300},"_meta": stateless_meta("2026-07-28")}}))
        .await;
    client.notify("notifications/cancelled", Some(json!({"requestId": 2}))).await;
    let pong = client.request(json!(3), "server/discover", None).await;
    assert_eq!(pong["id"], 3, "the cancelled call must not answer first: {pong}");
    // Longer than the nap: had the cancel been ignored, its answer would come in this window.
    client.expect_silence(std::time::Duration::from_millis(700)).await;
}
