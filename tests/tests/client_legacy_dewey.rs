//! The client against a Python `websockets` server that answers like the
//! production Dewey: no subprotocol, protocol 2024-11-05, tool output only as
//! JSON text, tool failures as JSON-RPC errors, legacy direct calls.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use mcp_runtime::client::Client;
use mcp_tests::{peers, scripts_dir};
use serde::Deserialize;
use serde_json::json;

/// The Python server, killed on drop.
struct LegacyServer {
    child: Child,
    url: String,
}

impl LegacyServer {
    fn start() -> LegacyServer {
        let script = scripts_dir().join("python/legacy_dewey_server.py");
        let mut child = Command::new(peers().python_mcp2)
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = match line.trim().strip_prefix("listening on ") {
            Some(url) => format!("{url}/"),
            None => {
                let _ = child.kill();
                panic!("legacy server printed {line:?} instead of its address");
            }
        };
        LegacyServer { child, url }
    }
}

impl Drop for LegacyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Sum {
    sum: i64,
}

#[tokio::test]
async fn typed_calls_decode_the_json_text_of_a_legacy_server() {
    let server = LegacyServer::start();
    let client = Client::connect(&server.url).await.unwrap();

    let info = client.server_info().unwrap();
    assert_eq!(info.protocol_version, "2024-11-05");
    assert_eq!(info.server_info.name, "dewey-mcp-server");

    let tools = client.list_tools().await.unwrap();
    assert_eq!(tools.len(), 3);

    // Only pretty-printed text, no structuredContent: the typed call reads the text.
    let raw = client.call_tool("dewey_add", json!({ "a": 2, "b": 40 })).await.unwrap();
    assert_eq!(raw.structured_content, None);
    assert!(raw.text().contains('\n'), "the legacy server pretty-prints: {raw:?}");
    assert_eq!(client.call::<Sum>("dewey_add", json!({ "a": 2, "b": 40 })).await.unwrap(), Sum { sum: 42 });

    // Dewey reports tool failures as JSON-RPC errors with its own codes.
    let e = client.call::<Sum>("dewey_get_conversation", json!({ "conversation_id": "c-1" })).await.unwrap_err();
    assert!(e.is_rpc_error(), "{e}");
    assert_eq!(e.rpc_code(), Some(-32001));
    assert!(e.to_string().contains("c-1 not found"), "{e}");

    // Legacy direct call: the method is the tool name, the result is bare.
    let direct = client.request("dewey_add", json!({ "a": 1, "b": 1 })).await.unwrap();
    assert_eq!(direct, json!({ "sum": 2 }));

    // The client offered `mcp`, was refused, and connected again without it.
    #[derive(Deserialize)]
    struct Offered {
        offered: Vec<Option<String>>,
    }
    let offered: Offered = client.call("dewey_offered_subprotocols", json!({})).await.unwrap();
    assert_eq!(offered.offered, [Some("mcp".to_owned()), None], "first offered `mcp`, then nothing");
}

#[tokio::test]
async fn many_concurrent_calls_on_a_legacy_server() {
    let server = LegacyServer::start();
    let client = Client::connect(&server.url).await.unwrap();
    let calls = (0..200).map(|i| {
        let client = client.clone();
        async move { client.call::<Sum>("dewey_add", json!({ "a": i, "b": 1 })).await.map(|s| (i, s.sum)) }
    });
    for result in futures_join_all(calls).await {
        let (i, sum) = result.unwrap();
        assert_eq!(sum, i + 1);
    }
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
