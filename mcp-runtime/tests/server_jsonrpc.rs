//! JSON-RPC 2.0 framing: ids echoed with their type, notifications never
//! answered, and every error code where it belongs.

mod server_harness;

use std::time::Duration;

use serde_json::{Value, json};
use server_harness::tools::builder;
use server_harness::{TestServer, error_code, error_message};

#[tokio::test]
async fn ids_are_echoed_with_their_type() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    for id in [json!(7), json!(-3), json!(0), json!("seven"), json!(""), json!("ü\"\\"), json!(9007199254740993_i64)] {
        let response = client.request(id.clone(), "ping", None).await;
        assert_eq!(response["id"], id, "{response}");
    }
    // Byte for byte: "1" stays a string, 1 stays a number.
    client.send_text(r#"{"jsonrpc":"2.0","id":"1","method":"ping"}"#).await;
    assert_eq!(client.recv().await["id"], json!("1"));
    client.send_text(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).await;
    assert_eq!(client.recv().await["id"], json!(1));
}

#[tokio::test]
async fn requests_without_params_are_accepted() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    client.send_text(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    assert!(client.recv().await["result"]["tools"].is_array());
    client.send_text(r#"{"jsonrpc":"2.0","id":2,"method":"ping","params":null}"#).await;
    assert_eq!(client.recv().await["result"], json!({}));
}

#[tokio::test]
async fn notifications_are_never_answered_even_when_wrong() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    for text in [
        r#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#,
        r#"{"jsonrpc":"2.0","method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","method":"no/such/method","params":{}}"#,
        r#"{"jsonrpc":"1.0","method":"ping"}"#,
        r#"{"jsonrpc":"2.0","method":"ping","params":42}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":12345}}"#,
        r#"{"jsonrpc":"2.0","method":"echo","params":{"text":"legacy notification"}}"#,
    ] {
        client.send_text(text).await;
    }
    client.expect_silence(Duration::from_millis(300)).await;
    // And the connection is fine.
    assert_eq!(client.request(json!(1), "ping", None).await["result"], json!({}));
}

#[tokio::test]
async fn not_json_is_a_parse_error_with_a_null_id() {
    let server = TestServer::start(builder()).await;
    let mut client = server.connect().await;
    for text in ["{not json", "", r#"{"jsonrpc":"2.0","id":1,"method":"ping""#] {
        client.send_text(text).await;
        let response = client.recv().await;
        assert_eq!(error_code(&response), -32700, "{text:?}: {response}");
        assert_eq!(response["id"], Value::Null);
    }
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let cases: [(&str, Value, &str); 8] = [
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, json!(1), "jsonrpc"),
        (r#"{"id":2,"method":"ping"}"#, json!(2), "jsonrpc"),
        (r#"{"jsonrpc":"2.0","id":3}"#, json!(3), "method"),
        (r#"{"jsonrpc":"2.0","id":4,"method":17}"#, json!(4), "method"),
        (r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":"x"}"#, json!(5), "params"),
        (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, Value::Null, "id"),
        (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, Value::Null, "id"),
        (r#"[1, 2]"#, Value::Null, ""),
    ];
    for (text, id, mentions) in cases {
        client.send_text(text).await;
        let response = client.recv().await;
        assert_eq!(error_code(&response), -32600, "{text}: {response}");
        assert_eq!(response["id"], id, "{text}: {response}");
        assert!(error_message(&response).contains(mentions), "{text}: {response}");
    }
    for text in ["42", r#""a string""#, "null"] {
        client.send_text(text).await;
        assert_eq!(error_code(&client.recv().await), -32600, "{text}");
    }
}

#[tokio::test]
async fn batches_are_refused_with_one_error() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    client.send_text(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#).await;
    let response = client.recv().await;
    assert_eq!(error_code(&response), -32600);
    assert!(error_message(&response).contains("batch"), "{response}");
    client.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn unknown_methods_are_method_not_found() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    for method in ["resources/list", "tools/delete", "Echo", ""] {
        let response = client.request(json!(1), method, None).await;
        assert_eq!(error_code(&response), -32601, "{method}: {response}");
    }
}

#[tokio::test]
async fn wrong_params_are_invalid_params() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    let cases = [
        ("tools/list", json!([1, 2])),
        ("tools/list", json!({"cursor": 5})),
        ("tools/call", json!({"arguments": {}})),
        ("tools/call", json!({"name": 5})),
        ("tools/call", json!({"name": "echo", "arguments": "text"})),
        ("tools/call", json!({"name": "no_such_tool"})),
        ("logging/setLevel", json!({"level": "verbose"})),
        ("logging/setLevel", json!({})),
        ("tools/call", json!({"name": "echo", "_meta": "not an object"})),
    ];
    for (method, params) in cases {
        let response = client.request(json!(1), method, Some(params.clone())).await;
        assert_eq!(error_code(&response), -32602, "{method} {params}: {response}");
    }
}

#[tokio::test]
async fn client_responses_are_ignored() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    client.send_text(r#"{"jsonrpc":"2.0","id":99,"result":{}}"#).await;
    client.send_text(r#"{"jsonrpc":"2.0","id":98,"error":{"code":-1,"message":"x"}}"#).await;
    client.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn an_id_in_use_by_a_running_call_is_refused() {
    let server = TestServer::start(builder()).await;
    let mut client = server.session().await;
    client
        .send(json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nap","arguments":{"ms":300}}}))
        .await;
    let refused = client.call(5, "echo", json!({"text": "again"})).await;
    assert_eq!(error_code(&refused), -32600, "{refused}");
    assert!(error_message(&refused).contains("request id 5 is already in use by a call in flight"), "{refused}");
    // The first call is unaffected and answers once.
    let first = client.response().await;
    assert_eq!(first["id"], 5);
    assert_eq!(first["result"]["content"][0]["text"], "300", "{first}");
    client.expect_silence(Duration::from_millis(100)).await;
    // Free again once that call is over, and at once after a cancel.
    assert_eq!(client.request(json!(5), "ping", None).await["result"], json!({}));
    client
        .send(json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nap","arguments":{"ms":60000}}}))
        .await;
    client.notify("notifications/cancelled", Some(json!({"requestId": 6}))).await;
    assert_eq!(client.request(json!(6), "ping", None).await["result"], json!({}));
}
