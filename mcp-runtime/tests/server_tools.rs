//! tools/list and tools/call end to end: pagination, results, tool errors,
//! panics, progress, cancellation, logging levels and legacy direct calls.

mod server_harness;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_harness::tools::{Progressed, TOOL_NAMES, builder};
use server_harness::{TestServer, error_code, error_message, text};

#[tokio::test]
async fn tools_list_walks_every_page_in_registration_order() {
    for page_size in [1, 3, 8, 100] {
        let server = TestServer::start(builder().tools_page_size(page_size)).await;
        let mut client = server.session().await;
        let mut names = Vec::new();
        let mut cursor: Option<Value> = None;
        let mut pages = 0;
        loop {
            let params = cursor.take().map(|c| json!({"cursor": c}));
            let response = client.request(json!(pages), "tools/list", params).await;
            let result = &response["result"];
            let tools = result["tools"].as_array().unwrap_or_else(|| panic!("{response}"));
            assert!(tools.len() <= page_size, "{response}");
            names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
            pages += 1;
            match result.get("nextCursor") {
                Some(next) => cursor = Some(next.clone()),
                None => break,
            }
        }
        assert_eq!(names, TOOL_NAMES, "page size {page_size}");
        assert_eq!(pages, TOOL_NAMES.len().div_ceil(page_size), "page size {page_size}");
    }
}

#[tokio::test]
async fn tools_list_describes_each_tool() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let response = client.request(json!(1), "tools/list", None).await;
    let tools = response["result"]["tools"].as_array().unwrap();
    let echo = &tools[0];
    assert_eq!(echo["name"], "echo");
    assert_eq!(echo["description"], "Returns its text.");
    assert_eq!(echo["inputSchema"]["type"], "object");
    assert_eq!(echo["inputSchema"]["required"], json!(["text"]));
    assert_eq!(echo["outputSchema"]["properties"]["text"]["type"], "string");
    assert_eq!(echo["annotations"], json!({"readOnlyHint": true}));
    let greet = tools.iter().find(|t| t["name"] == "greet").unwrap();
    assert_eq!(
        greet["outputSchema"],
        json!({"type": "object", "properties": {"result": {"type": "string"}}, "required": ["result"],
               "x-fastmcp-wrap-result": true}),
        "a string result is wrapped for 2025-06-18"
    );
    assert!(greet.get("annotations").is_none());
}

#[tokio::test]
async fn a_bad_cursor_is_invalid_params() {
    let server = TestServer::start(builder().tools_page_size(2)).await;
    let mut client = server.session().await;
    for cursor in [json!("garbage"), json!("tools-1"), json!("tools-800"), json!("")] {
        let response = client.request(json!(1), "tools/list", Some(json!({"cursor": cursor}))).await;
        assert_eq!(error_code(&response), -32602, "{cursor}: {response}");
        assert!(error_message(&response).contains("cursor"), "{response}");
    }
}

#[tokio::test]
async fn structured_results_carry_the_same_json_as_text() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let response = client.call(1, "echo", json!({"text": "héllo \"wörld\"\n"})).await;
    let result = &response["result"];
    assert_eq!(result["isError"], false, "{response}");
    assert_eq!(result["structuredContent"], json!({"text": "héllo \"wörld\"\n"}));
    assert_eq!(result["content"][0]["type"], "text");
    let from_text: Value = serde_json::from_str(text(&response)).unwrap();
    assert_eq!(from_text, result["structuredContent"]);

    let sum = client.call(2, "add", json!({"a": 2, "b": 40})).await;
    assert_eq!(sum["result"]["structuredContent"], json!({"sum": 42}));
}

#[tokio::test]
async fn scalar_results_are_wrapped_and_read_as_plain_text() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let greet = client.call(1, "greet", json!({"name": "Ann"})).await;
    assert_eq!(text(&greet), "hello \"Ann\"", "a string's text block is the string itself: {greet}");
    assert_eq!(greet["result"]["structuredContent"], json!({"result": "hello \"Ann\""}));
    assert_eq!(greet["result"]["isError"], false);
    let answer = client.call(2, "answer", json!({})).await;
    assert_eq!(text(&answer), "42");
    assert_eq!(answer["result"]["structuredContent"], json!({"result": 42}));
    // No arguments at all is the same as {}.
    let answer = client.request(json!(3), "tools/call", Some(json!({"name": "answer"}))).await;
    assert_eq!(text(&answer), "42");
}

#[tokio::test]
async fn tool_errors_are_results_with_is_error() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let response = client.call(1, "add", json!({"a": i64::MAX, "b": 1})).await;
    assert_eq!(response["result"]["isError"], true, "{response}");
    assert_eq!(text(&response), "the sum does not fit in 64 bits");
}

#[tokio::test]
async fn bad_arguments_name_the_field() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let wrong_type = client.call(1, "add", json!({"a": "two", "b": 3})).await;
    assert_eq!(wrong_type["result"]["isError"], true, "{wrong_type}");
    assert!(text(&wrong_type).contains("`a`"), "{wrong_type}");
    let missing = client.call(2, "add", json!({"a": 1})).await;
    assert_eq!(missing["result"]["isError"], true);
    assert!(text(&missing).contains('b'), "{missing}");
}

#[tokio::test]
async fn unknown_tools_are_invalid_params() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let response = client.call(1, "nope", json!({})).await;
    assert_eq!(error_code(&response), -32602);
    assert!(error_message(&response).contains("nope"), "{response}");
}

#[tokio::test]
async fn a_panicking_tool_gets_is_error_and_the_server_goes_on() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let mut other = server.session().await;
    // A call on another connection, running across the panic.
    other
        .send(json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nap","arguments":{"ms":300}}}))
        .await;
    let response = client.call(1, "boom", json!({"message": "kaboom"})).await;
    assert_eq!(response["result"]["isError"], true, "{response}");
    assert_eq!(text(&response), "the tool panicked: kaboom");
    // Same connection still serves; the other call still completes.
    assert_eq!(client.call(2, "echo", json!({"text": "after"})).await["result"]["structuredContent"]["text"], "after");
    assert_eq!(other.response().await["result"]["content"][0]["text"], "300");
}

#[tokio::test]
async fn progress_notifications_arrive_before_the_response() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    client
        .send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
            "name":"work","arguments":{"steps":3,"step_ms":5},"_meta":{"progressToken":"tok-1"}}}))
        .await;
    let mut progress = Vec::new();
    loop {
        let message = client.recv().await;
        if message.get("id").is_some() {
            assert_eq!(text(&message), "3 steps", "{message}");
            break;
        }
        if message["method"] == "notifications/progress" {
            progress.push(message["params"].clone());
        }
    }
    assert_eq!(progress.len(), 3, "{progress:?}");
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(p["progressToken"], "tok-1");
        assert_eq!(p["progress"], json!((i + 1) as f64));
        assert_eq!(p["total"], json!(3.0));
        assert_eq!(p["message"], "working");
    }
    // Without a progressToken there are no progress notifications.
    let response = client.call(2, "work", json!({"steps": 2, "step_ms": 1})).await;
    assert_eq!(text(&response), "2 steps");
    assert!(client.notifications.iter().all(|n| n["method"] != "notifications/progress"), "{:?}", client.notifications);
}

/// Found by the fuzz test: the token is echoed into every progress
/// notification of the call, and one nested deeper than the client's JSON
/// parser allows made each of them unreadable. MCP's tokens are strings or
/// numbers; anything else is refused with the request.
#[tokio::test]
async fn progress_tokens_are_strings_or_numbers() {
    let server = TestServer::start(builder().state(Progressed::default())).await;
    let mut client = server.session().await;
    let call = |token: &Value| json!({"name": "work", "arguments": {"steps": 1, "step_ms": 1}, "_meta": {"progressToken": token}});
    let nested = (0..130).fold(json!(1), |inner, _| json!({ "a": inner }));
    for token in [nested, json!(true), json!([1]), json!({})] {
        let response = client.request(json!(1), "tools/call", Some(call(&token))).await;
        assert_eq!(error_code(&response), -32602, "{response}");
        assert!(error_message(&response).contains("progressToken"), "{response}");
    }
    for token in [json!("t"), json!(7), json!(2.5)] {
        client.notifications.clear();
        let response = client.request(json!(2), "tools/call", Some(call(&token))).await;
        assert_eq!(text(&response), "1 steps", "{response}");
        let echoed: Vec<&Value> = client
            .notifications
            .iter()
            .filter(|n| n["method"] == "notifications/progress")
            .map(|n| &n["params"]["progressToken"])
            .collect();
        assert_eq!(echoed, [&token], "the token comes back as sent");
    }
}

#[tokio::test]
async fn cancellation_stops_the_work_fires_the_token_and_sends_no_response() {
    let seen = Progressed::default();
    let server = TestServer::start(builder().state(seen.clone())).await;
    let mut client = server.session().await;
    client
        .send(json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{
            "name":"work","arguments":{"steps":1000,"step_ms":10},"_meta":{"progressToken":1}}}))
        .await;
    // Wait until it is demonstrably running.
    let running_by = Instant::now() + Duration::from_secs(10);
    while seen.steps.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < running_by, "the call never got to step 3");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.notify("notifications/cancelled", Some(json!({"requestId": "long", "reason": "test"}))).await;
    // The ping's answer proves the cancel was processed (same connection, in order).
    let pong = client.request(json!("after"), "ping", None).await;
    assert_eq!(pong["result"], json!({}));
    let steps_at_cancel = seen.steps.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(seen.steps.load(Ordering::SeqCst) <= steps_at_cancel + 1, "the work went on after the cancel");
    assert_eq!(seen.cancelled.load(Ordering::SeqCst), 1, "the call's CancellationToken did not fire");
    // Drain progress sent before the cancel; no response for "long" ever
    // comes, and the connection stays open (a dropped one is not silence).
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        match tokio::time::timeout_at(deadline.into(), futures_util::StreamExt::next(&mut client.ws)).await {
            Err(_) => break,
            Ok(Some(Ok(message))) => {
                let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
                assert!(message.get("id").is_none(), "a cancelled call was answered: {message}");
            }
            Ok(other) => panic!("the connection ended after the cancel: {other:?}"),
        }
    }
}

#[tokio::test]
async fn dropping_the_connection_cancels_its_calls() {
    let seen = Progressed::default();
    let server = TestServer::start(builder().state(seen.clone())).await;
    let mut client = server.session().await;
    client
        .send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"work","arguments":{"steps":1000,"step_ms":10}}}))
        .await;
    let running_by = Instant::now() + Duration::from_secs(10);
    while seen.steps.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < running_by, "the call never got to step 2");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the token never fired after the connection dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let steps = seen.steps.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(seen.steps.load(Ordering::SeqCst) <= steps + 1, "the work went on after the connection dropped");
}

#[tokio::test]
async fn set_level_filters_log_notifications() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;

    let levels = |client: &mut server_harness::Client| -> Vec<String> {
        let found = client
            .notifications
            .iter()
            .filter(|n| n["method"] == "notifications/message")
            .map(|n| n["params"]["level"].as_str().unwrap().to_owned())
            .collect();
        client.notifications.clear();
        found
    };

    client.call(1, "chatty", json!({})).await;
    assert_eq!(levels(&mut client), ["info", "error"], "the default level is info");

    let response = client.request(json!(2), "logging/setLevel", Some(json!({"level": "debug"}))).await;
    assert_eq!(response["result"], json!({}));
    client.call(3, "chatty", json!({})).await;
    assert_eq!(levels(&mut client), ["debug", "info", "error"]);

    client.request(json!(4), "logging/setLevel", Some(json!({"level": "error"}))).await;
    client.call(5, "chatty", json!({})).await;
    assert_eq!(levels(&mut client), ["error"]);

    let message = client.notifications.first().cloned();
    assert!(message.is_none());
}

#[tokio::test]
async fn log_notifications_carry_logger_and_data() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    client.call(1, "chatty", json!({})).await;
    let info = client.notifications.iter().find(|n| n["params"]["level"] == "info").expect("an info log");
    assert_eq!(info["params"], json!({"level": "info", "logger": "chatty", "data": "an info line"}));
}

#[tokio::test]
async fn legacy_direct_calls_return_the_tool_json() {
    let server = TestServer::start(builder()).await;
    // Old ICCM clients never initialize.
    let mut client = server.connect().await;
    let sum = client.request(json!(1), "add", Some(json!({"a": 2, "b": 3}))).await;
    assert_eq!(sum, json!({"jsonrpc": "2.0", "id": 1, "result": {"sum": 5}}));
    let greet = client.request(json!("g"), "greet", Some(json!({"name": "Bo"}))).await;
    assert_eq!(greet["result"], "hello \"Bo\"");

    let bad = client.request(json!(2), "add", Some(json!({"a": "x", "b": 3}))).await;
    assert_eq!(error_code(&bad), -32602, "{bad}");
    assert!(error_message(&bad).contains("`a`"), "{bad}");
    let failed = client.request(json!(3), "add", Some(json!({"a": i64::MAX, "b": 1}))).await;
    assert_eq!(error_code(&failed), -32000, "{failed}");
    assert_eq!(error_message(&failed), "the sum does not fit in 64 bits");
    let panicked = client.request(json!(4), "boom", Some(json!({"message": "legacy"}))).await;
    assert_eq!(error_code(&panicked), -32603, "{panicked}");
    assert!(error_message(&panicked).contains("legacy"));
    // No params is no arguments.
    assert_eq!(client.request(json!(5), "answer", None).await["result"], 42);
}

#[tokio::test]
async fn a_response_after_notifications_waits_behind_a_ping_barrier() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    client
        .send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
            "name":"work","arguments":{"steps":1,"step_ms":1},"_meta":{"progressToken":"b"}}}))
        .await;
    // Reading with tungstenite answers the ping, which releases the response.
    let mut order = Vec::new();
    while !order.contains(&"response") {
        let frame = tokio::time::timeout(Duration::from_secs(5), client.ws.next()).await.unwrap().unwrap().unwrap();
        order.push(match frame {
            Message::Ping(payload) if payload.len() == 8 => "barrier ping",
            Message::Text(text) if text.contains("notifications/progress") => "progress",
            Message::Text(text) if text.contains("\"id\":1") => "response",
            _ => continue,
        });
    }
    assert_eq!(order, ["progress", "barrier ping", "response"]);
    // Calls without notifications are answered directly.
    assert_eq!(text(&client.call(2, "answer", json!({})).await), "42");
}

/// Tools of the notes service a new user wrote from the README alone:
/// a list result, nested arguments, several required ones, rich content.
mod notes {
    use mcp_runtime::content::{CallToolResult, Content};
    use mcp_runtime::{Server, ServerBuilder, mcp_tool};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, JsonSchema)]
    pub struct Hit {
        pub title: String,
        pub score: f64,
    }

    /// Finds notes.
    #[mcp_tool]
    pub async fn search(query: String) -> Vec<Hit> {
        vec![Hit { title: query, score: 1.0 }]
    }

    #[derive(Deserialize, JsonSchema)]
    pub struct Filter {
        pub tags: Vec<String>,
    }

    /// Adds a note.
    #[mcp_tool]
    pub async fn add(title: String, body: String, tags: Vec<String>) -> u32 {
        (title.len() + body.len() + tags.len()) as u32
    }

    /// Lists notes.
    #[mcp_tool]
    pub async fn list(filter: Filter) -> Vec<String> {
        filter.tags
    }

    /// A picture, a sound, a document and a link.
    #[mcp_tool]
    pub async fn media() -> Vec<Content> {
        vec![
            Content::image([0x89, b'P', b'N', b'G'], "image/png"),
            Content::audio([b'R', b'I', b'F', b'F'], "audio/wav"),
            Content::embedded_text("test://embedded-resource", "text/plain", "This is an embedded resource content."),
            Content::resource_link("test://doc", "doc"),
        ]
    }

    /// Counts, with a chart and `_meta`.
    #[mcp_tool]
    pub async fn chart(numbers: Vec<u32>) -> CallToolResult<u32> {
        let mut meta = serde_json::Map::new();
        meta.insert("source".into(), "test".into());
        CallToolResult::structured(numbers.iter().sum()).with_content(vec![Content::text("chart")]).with_meta(meta)
    }

    /// Always refuses, with blocks of its choosing.
    #[mcp_tool]
    pub async fn refuse() -> CallToolResult {
        CallToolResult::error(vec![Content::text("This tool intentionally returns an error for testing")])
    }

    pub fn builder() -> ServerBuilder {
        Server::builder("notes", "1")
            .tool::<search>()
            .tool::<add>()
            .tool::<list>()
            .tool::<media>()
            .tool::<chart>()
            .tool::<refuse>()
    }
}

fn stateless_params(mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    params
}

fn assert_valid(schema: &Value, instance: &Value) {
    if let Err(e) = jsonschema::draft202012::validate(schema, instance) {
        panic!("{instance} does not match {schema}: {e}");
    }
}

#[tokio::test]
async fn list_results_are_wrapped_for_sessions_and_bare_for_2026_07_28() {
    let server = TestServer::start(notes::builder()).await;
    let mut client = server.session().await;

    let listed = client.request(json!(1), "tools/list", None).await;
    let search = listed["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "search").unwrap();
    let wrapped_schema = &search["outputSchema"];
    assert_eq!(wrapped_schema["type"], "object", "{search}");
    assert_eq!(wrapped_schema["x-fastmcp-wrap-result"], true);
    assert_eq!(wrapped_schema["properties"]["result"]["type"], "array");
    let call = client.call(2, "search", json!({"query": "rust"})).await;
    let structured = &call["result"]["structuredContent"];
    assert_eq!(structured, &json!({"result": [{"title": "rust", "score": 1.0}]}));
    assert_valid(wrapped_schema, structured);
    let from_text: Value = serde_json::from_str(text(&call)).unwrap();
    assert_eq!(from_text, structured["result"], "the text block carries the bare value");

    let listed = client.request(json!(3), "tools/list", Some(stateless_params(json!({})))).await;
    let search = listed["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "search").unwrap();
    let bare_schema = &search["outputSchema"];
    assert_eq!(bare_schema["type"], "array", "{search}");
    assert_eq!(bare_schema, &wrapped_schema["properties"]["result"]);
    let call = client
        .request(json!(4), "tools/call", Some(stateless_params(json!({"name": "search", "arguments": {"query": "q"}}))))
        .await;
    let structured = &call["result"]["structuredContent"];
    assert_eq!(structured, &json!([{"title": "q", "score": 1.0}]), "{call}");
    assert_valid(bare_schema, structured);
    // An object result is the same under both.
    let add = listed["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "add").unwrap();
    assert_eq!(add["outputSchema"]["type"], "integer");
}

#[tokio::test]
async fn one_is_error_names_every_missing_argument_and_nested_unknown_fields() {
    let server = TestServer::start(notes::builder()).await;
    let mut client = server.session().await;
    let call = client.call(1, "add", json!({})).await;
    assert_eq!(call["result"]["isError"], true, "{call}");
    assert_eq!(text(&call), "invalid arguments: missing required arguments `title`, `body` and `tags`");
    let call = client.call(2, "list", json!({"filter": {"tags": [], "colour": "red"}})).await;
    assert_eq!(call["result"]["isError"], true, "{call}");
    assert_eq!(text(&call), "invalid arguments: unknown field `filter.colour` (`filter` takes `tags`)");
    let listed = client.request(json!(3), "tools/list", None).await;
    let list = listed["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "list").unwrap();
    assert_eq!(list["inputSchema"]["properties"]["filter"]["additionalProperties"], false, "{list}");
}

#[tokio::test]
async fn rich_content_goes_out_as_the_tool_built_it() {
    let server = TestServer::start(notes::builder()).await;
    let mut client = server.session().await;
    let media = client.call(1, "media", json!({})).await;
    assert_eq!(
        media["result"],
        json!({
            "content": [
                {"type": "image", "data": "iVBORw==", "mimeType": "image/png"},
                {"type": "audio", "data": "UklGRg==", "mimeType": "audio/wav"},
                {"type": "resource", "resource": {"uri": "test://embedded-resource", "mimeType": "text/plain",
                    "text": "This is an embedded resource content."}},
                {"type": "resource_link", "uri": "test://doc", "name": "doc"},
            ],
            "isError": false,
        })
    );
    let chart = client.call(2, "chart", json!({"numbers": [1, 2, 3]})).await;
    assert_eq!(
        chart["result"],
        json!({"content": [{"type": "text", "text": "chart"}], "structuredContent": {"result": 6}, "isError": false,
               "_meta": {"source": "test"}})
    );
    let refuse = client.call(3, "refuse", json!({})).await;
    assert_eq!(
        refuse["result"],
        json!({"content": [{"type": "text", "text": "This tool intentionally returns an error for testing"}],
               "isError": true})
    );
    let listed = client.request(json!(4), "tools/list", None).await;
    let media = listed["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "media").unwrap();
    assert!(media.get("outputSchema").is_none(), "content blocks have no schema: {media}");
}

#[tokio::test]
async fn legacy_calls_get_the_bare_value() {
    let server = TestServer::start(notes::builder()).await;
    let mut client = server.connect().await;
    let search = client.request(json!(1), "search", Some(json!({"query": "x"}))).await;
    assert_eq!(search["result"], json!([{"title": "x", "score": 1.0}]));
    let refuse = client.request(json!(2), "refuse", None).await;
    assert_eq!(refuse["result"]["isError"], true, "{refuse}");
}
