//! The JSON-RPC frames the load generator sends, and the cheap reading of the
//! frames it gets back.
//!
//! Requests are built from fixed text around the id, so the generator spends
//! its CPU on sockets rather than on serde: on a 2-core machine every cycle it
//! burns is a cycle the server under test does not get.

/// The `text` argument of every `echo` call.
pub const ECHO_TEXT: &str = "hello, bench";

/// The protocol version the generator asks for in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Id of the `initialize` request; calls start at 1.
pub const INITIALIZE_ID: u64 = 0;

pub fn initialize_request() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{INITIALIZE_ID},"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"mcp-bench","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

pub const INITIALIZED_NOTIFICATION: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

const ECHO_PREFIX: &str = r#"{"jsonrpc":"2.0","id":"#;
const ECHO_SUFFIX: &str = r#","method":"tools/call","params":{"name":"echo","arguments":{"text":"hello, bench"}}}"#;

/// A `tools/call echo` request with the given id.
pub fn echo_request(id: u64) -> String {
    let mut frame = String::with_capacity(ECHO_PREFIX.len() + 20 + ECHO_SUFFIX.len());
    frame.push_str(ECHO_PREFIX);
    // `write!` would go through the formatting machinery; itoa-by-hand is not
    // worth a dependency, and `u64::to_string` allocates a second string.
    push_decimal(&mut frame, id);
    frame.push_str(ECHO_SUFFIX);
    frame
}

fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// The numeric top-level `id` of a response, found without parsing the frame.
///
/// Safe only because the generator controls what the frame can contain: the
/// echoed text has no `"id":` in it, and once a text block embeds JSON its
/// quotes are escaped (`\"id\":`), so the first unescaped `"id":` is the
/// JSON-RPC id.
pub fn response_id(frame: &str) -> Option<u64> {
    let start = frame.find(r#""id":"#)? + 5;
    let digits = frame[start..].trim_start();
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Whether a response to `echo` reports success. A substring test, for the
/// same reason as [`response_id`]; the first response of every connection is
/// also checked in full by [`check_echo_response`].
pub fn is_echo_success(frame: &str) -> bool {
    frame.contains(r#""isError":false"#) && !frame.contains(r#""error":{"#)
}

/// Checks one `echo` response in full: the shape both servers must answer.
pub fn check_echo_response(frame: &str, id: u64) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(frame).map_err(|e| format!("the response is not JSON ({e}): {frame}"))?;
    let expected_structured = serde_json::json!({ "text": ECHO_TEXT });
    let text_block = value["result"]["content"][0]["text"].as_str().map(serde_json::from_str::<serde_json::Value>);
    let fine = value["jsonrpc"] == "2.0"
        && value["id"] == id
        && value["result"]["isError"] == false
        && value["result"]["content"][0]["type"] == "text"
        && matches!(text_block, Some(Ok(ref v)) if *v == expected_structured)
        && value["result"]["structuredContent"] == expected_structured;
    if fine {
        Ok(())
    } else {
        Err(format!(
            "the echo response to id {id} is not the expected result (text block and structuredContent {expected_structured}, isError false): {frame}"
        ))
    }
}

/// The response with its id replaced by `N`, so that the two servers' frames
/// can be compared shape for shape.
pub fn normalize_id(frame: &str) -> String {
    match frame.find(r#""id":"#) {
        Some(at) => {
            let start = at + 5;
            let end = frame[start..].bytes().position(|b| !b.is_ascii_digit()).map_or(frame.len(), |n| start + n);
            format!("{}N{}", &frame[..start], &frame[end..])
        }
        None => frame.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_is_the_json_it_claims() {
        let frame = echo_request(1234567);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["id"], 1234567);
        assert_eq!(value["method"], "tools/call");
        assert_eq!(value["params"]["name"], "echo");
        assert_eq!(value["params"]["arguments"]["text"], ECHO_TEXT);
        assert_eq!(response_id(&echo_request(0)), Some(0));
        serde_json::from_str::<serde_json::Value>(&initialize_request()).unwrap();
    }

    #[test]
    fn response_id_skips_escaped_ids_in_text() {
        let frame = r#"{"result":{"content":[{"type":"text","text":"{\"id\":7}"}]},"jsonrpc":"2.0","id":42}"#;
        assert_eq!(response_id(frame), Some(42));
        assert_eq!(response_id(r#"{"id":"x"}"#), None);
        assert_eq!(normalize_id(frame), frame.replace("42", "N"));
    }

    #[test]
    fn check_accepts_the_echo_shape_and_rejects_errors() {
        let good = r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"{\"text\":\"hello, bench\"}"}],"structuredContent":{"text":"hello, bench"},"isError":false}}"#;
        assert_eq!(check_echo_response(good, 3), Ok(()));
        assert!(is_echo_success(good));
        assert!(check_echo_response(good, 4).is_err());
        let bad = r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}"#;
        assert!(check_echo_response(bad, 3).is_err());
        assert!(!is_echo_success(bad));
    }
}
