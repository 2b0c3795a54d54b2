//! Fuzzed input against a real server over real sockets: what any client
//! can send, seen as a client sees the answers. It aims at the WebSocket
//! seam (frames in, frames out) so it keeps working whatever happens behind
//! it.
//!
//! Each case is one frame, made from a valid request of some method (every
//! method the server knows, legacy direct calls, the stateless revision,
//! notifications) by mutating its JSON tree or its bytes, or made from
//! scratch: deep nesting, huge numbers and strings, duplicate keys, garbage,
//! binary frames, text frames that are not UTF-8, frames over the size limit.
//! After each frame a `ping` with its own id follows, so each case ends at a
//! known point. Checked for every case:
//! - every frame the server sends is one JSON-RPC 2.0 message;
//! - a request with a usable id (a string or a 64-bit integer) and a string
//!   `method` is answered exactly once, with its id (or with `id: null` if
//!   the frame could not be read as a request at all); anything else is
//!   answered at most once; no response ever carries another case's id;
//! - binary, non-UTF-8 and oversized frames close the connection with 1003,
//!   1007 and 1009, and nothing else closes it;
//! - the server is still serving at the end (no panic took it down), and the
//!   process grew by less than [`MEMORY_GROWTH_LIMIT`] after warm-up.
//!
//! `MCP_FUZZ_CASES` (default 100,000) and `MCP_FUZZ_SEED` (default: random,
//! printed) tune a run; a failure names the seed, so it replays exactly. A
//! long campaign is the same test in release mode, see the crate README.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mcp_runtime::{RequestContext, Server, ToolError, mcp_tool};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const DEFAULT_CASES: u64 = 100_000;
/// Connections fuzzed at once, each with its own stream of cases.
const CONNECTIONS: u64 = 16;
/// The server's message limit; smaller than the default so that huge (but
/// legal) strings and oversized frames both stay cheap.
const MAX_MESSAGE: usize = 256 * 1024;
/// How long one answer may take: every fuzz tool finishes at once.
const PATIENCE: Duration = Duration::from_secs(10);
const MEMORY_GROWTH_LIMIT: u64 = 64 << 20;

// ---- the server under test: quick tools covering each kind of parameter ----

#[derive(Serialize, JsonSchema)]
struct Echoed {
    text: String,
}

/// Returns its text.
#[mcp_tool]
async fn echo(text: String) -> Echoed {
    Echoed { text }
}

#[derive(Serialize, JsonSchema)]
struct Sum {
    sum: i64,
}

/// Adds two integers; overflow is a tool error.
#[mcp_tool]
async fn add(a: i64, b: i64) -> Result<Sum, ToolError> {
    a.checked_add(b).map(|sum| Sum { sum }).ok_or_else(|| ToolError::new("overflow"))
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Fast,
    Careful,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Limits {
    min: u32,
    max: u32,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Settings {
    name: String,
    tags: Vec<String>,
    limits: Option<Limits>,
    mode: Mode,
    ratio: f64,
}

/// Takes nested, typed arguments and returns them.
#[mcp_tool]
async fn configure(settings: Settings, #[mcp(default = 3)] retries: u8, note: Option<String>) -> Settings {
    let _ = (retries, note);
    settings
}

/// Sends a progress notification and a log message per step, yielding
/// between steps, then answers: the path where responses wait for
/// notifications.
#[mcp_tool]
async fn chatty(cx: RequestContext, steps: u8) -> String {
    for step in 1..=steps {
        tokio::task::yield_now().await;
        cx.progress(step.into(), Some(steps.into()), None).await;
        cx.info(format!("step {step}")).await;
    }
    format!("{steps} steps")
}

/// Fails with the given message.
#[mcp_tool]
async fn fails(message: String) -> Result<String, ToolError> {
    Err(ToolError::new(message))
}

/// Panics with the given message.
#[mcp_tool]
async fn panics(message: String) -> String {
    panic!("{TOOL_PANIC}{message}")
}

/// Starts the message of the panics the `panics` tool raises on purpose.
const TOOL_PANIC: &str = "fuzz tool panic: ";

/// Keeps the thousands of intended tool panics out of the output (and skips
/// their backtraces); any other panic is reported as usual.
fn quiet_tool_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        if !message.is_some_and(|m| m.starts_with(TOOL_PANIC)) {
            report(info);
        }
    }));
}

// ---- the harness ----

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_frames_are_answered_exactly_once_and_never_take_the_server_down() {
    let cases: u64 = std::env::var("MCP_FUZZ_CASES").map_or(DEFAULT_CASES, |v| v.parse().expect("MCP_FUZZ_CASES"));
    let seed: u64 =
        std::env::var("MCP_FUZZ_SEED").map_or_else(|_| rand::random(), |v| v.parse().expect("MCP_FUZZ_SEED"));
    eprintln!("fuzzing {cases} cases, MCP_FUZZ_SEED={seed}");
    quiet_tool_panics();

    let bound = Server::builder("fuzz", "0")
        .tool::<echo>()
        .tool::<add>()
        .tool::<configure>()
        .tool::<chatty>()
        .tool::<fails>()
        .tool::<panics>()
        .max_message_size(MAX_MESSAGE)
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/", bound.local_addr());
    let shutdown = bound.shutdown_handle();
    let server = tokio::spawn(bound.serve());

    let started = Instant::now();
    let warm = run_workers(&url, seed, cases / 20, 0).await;
    let rss_after_warm_up = resident_bytes();
    let rest = run_workers(&url, seed, cases - cases / 20, cases / 20).await;
    let grown = resident_bytes().saturating_sub(rss_after_warm_up);

    let total = warm.merge(rest);
    eprintln!("{total:?} in {:?}, resident memory grew {} KiB after warm-up", started.elapsed(), grown >> 10);
    assert!(!server.is_finished(), "the server stopped serving (seed {seed})");
    assert!(grown < MEMORY_GROWTH_LIMIT, "memory grew by {grown} bytes over the run (seed {seed})");
    assert_eq!(total.cases, cases);
    shutdown.shutdown();
}

/// What a run did, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    answered_requests: u64,
    closes: u64,
}

impl Tally {
    fn merge(self, other: Tally) -> Tally {
        Tally {
            cases: self.cases + other.cases,
            answered_requests: self.answered_requests + other.answered_requests,
            closes: self.closes + other.closes,
        }
    }
}

/// Runs `cases` cases over [`CONNECTIONS`] connections; case numbers start
/// at `first` so each case of a run has its own generator state and id.
async fn run_workers(url: &str, seed: u64, cases: u64, first: u64) -> Tally {
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|worker| {
            let url = url.to_owned();
            let range = (first + worker..first + cases).step_by(CONNECTIONS as usize);
            tokio::spawn(async move {
                let mut ws = open(&url).await;
                let mut tally = Tally::default();
                for case in range {
                    let mut rng = StdRng::seed_from_u64(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let input = generate(&mut rng, case);
                    match run_case(&mut ws, &input, case).await {
                        Ok(Outcome::Answered(n)) => tally.answered_requests += n,
                        Ok(Outcome::Closed) => {
                            tally.closes += 1;
                            ws = open(&url).await;
                        }
                        Err(e) => panic!(
                            "case {case} (MCP_FUZZ_SEED={seed} MCP_FUZZ_CASES={}): {e}\ninput: {}",
                            first + cases,
                            input.describe()
                        ),
                    }
                    tally.cases += 1;
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        total = total.merge(worker.await.expect("a fuzz worker panicked"));
    }
    total
}

/// Connects and completes the handshake, so most cases reach the methods
/// behind it.
async fn open(url: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
    let init = json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fuzz","version":"0"}}});
    ws.send(Message::text(init.to_string())).await.expect("send initialize");
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next()).await.expect("initialize answered");
        if let Some(Ok(Message::Text(text))) = frame {
            let answer: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(answer["id"], "init", "{answer}");
            break;
        }
    }
    ws.send(Message::text(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)).await.expect("send");
    ws
}

/// One frame to send, and what the server must do with it.
enum Input {
    /// A text frame; `expect` is the id it must be answered with, if any.
    Text { text: String, expect: Option<Value> },
    /// Must close the connection with this code.
    Closing { frame: Frame, code: CloseCode, what: &'static str },
}

impl Input {
    fn describe(&self) -> String {
        match self {
            Input::Text { text, .. } => clip(text),
            Input::Closing { what, .. } => (*what).to_owned(),
        }
    }
}

enum Outcome {
    /// The case is over; this many of its requests were answered (0 or 1).
    Answered(u64),
    /// The server closed the connection as it must.
    Closed,
}

async fn run_case(ws: &mut Ws, input: &Input, case: u64) -> Result<Outcome, String> {
    let (text, expect) = match input {
        Input::Closing { frame, code, what } => {
            ws.send(Message::Frame(frame.clone())).await.map_err(|e| format!("send {what}: {e}"))?;
            return expect_close(ws, *code).await.map(|()| Outcome::Closed);
        }
        Input::Text { text, expect } => (text, expect),
    };
    ws.feed(Message::text(text.as_str())).await.map_err(|e| format!("send: {e}"))?;
    let sentinel = json!(format!("sentinel-{case}"));
    let ping = json!({"jsonrpc":"2.0","id":sentinel,"method":"ping"});
    ws.send(Message::text(ping.to_string())).await.map_err(|e| format!("send: {e}"))?;

    let mut answers = 0u64;
    let mut first_answer = String::new();
    let mut sentinel_seen = false;
    // A request whose response waits for its notifications to be read can
    // be overtaken by the ping; everything else is answered before it.
    while !(sentinel_seen && (expect.is_none() || answers == 1)) {
        let frame = match tokio::time::timeout(PATIENCE, ws.next()).await {
            Err(_) if sentinel_seen => return Err(format!("the request was never answered (expected id {expect:?})")),
            Err(_) => return Err("no answer to the ping that followed".to_owned()),
            Ok(None) => return Err("the server dropped the connection".to_owned()),
            Ok(Some(Err(e))) => return Err(format!("read failed: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(close) => return Err(format!("the server closed the connection: {close:?}")),
            other => return Err(format!("the server sent a non-text frame: {other:?}")),
        };
        let message: Value =
            serde_json::from_str(&text).map_err(|e| format!("the server sent invalid JSON ({e}): {text}"))?;
        if message["jsonrpc"] != "2.0" {
            return Err(format!("not a JSON-RPC 2.0 message: {text}"));
        }
        let Some(id) = message.get("id") else {
            if message.get("method").is_none() {
                return Err(format!("neither a response nor a notification: {text}"));
            }
            continue; // progress or a log message
        };
        if *id == sentinel {
            if message["result"] != json!({}) {
                return Err(format!("the ping was not answered with {{}}: {text}"));
            }
            sentinel_seen = true;
            continue;
        }
        let ours = match expect {
            Some(expected) => id == expected || (id.is_null() && message.get("error").is_some()),
            None => true,
        };
        if !ours || (sentinel_seen && expect.is_none()) {
            return Err(format!("a response that belongs to no request of this case: {text}"));
        }
        if message.get("result").is_some() == message.get("error").is_some() {
            return Err(format!("a response needs exactly one of `result` and `error`: {text}"));
        }
        answers += 1;
        if answers > 1 {
            return Err(format!("answered twice; first {}, then {}", clip(&first_answer), clip(&text)));
        }
        first_answer = text.to_string();
    }
    Ok(Outcome::Answered(answers))
}

async fn expect_close(ws: &mut Ws, code: CloseCode) -> Result<(), String> {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await {
            Err(_) => return Err(format!("the connection was not closed with {code}")),
            Ok(Some(Ok(Message::Close(Some(frame))))) if frame.code == code => return Ok(()),
            Ok(Some(Ok(Message::Close(other)))) => return Err(format!("closed with {other:?}, expected {code}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(format!("read failed before the close frame: {e}")),
            Ok(None) => return Err(format!("dropped without the close frame {code}")),
        }
    }
}

/// At most 300 bytes of `text`, for failure messages.
fn clip(text: &str) -> String {
    match (0..=300.min(text.len())).rev().find(|i| text.is_char_boundary(*i)) {
        Some(cut) if cut < text.len() => format!("{}... ({} bytes)", &text[..cut], text.len()),
        _ => text.to_owned(),
    }
}

/// The resident set of this process (server and clients), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib << 10
}

// ---- the generator ----

/// A request's id, unique per case so that a stray answer is noticed.
fn case_id(rng: &mut StdRng, case: u64) -> Value {
    if rng.random_bool(0.5) { json!(case as i64) } else { json!(format!("c{case}")) }
}

/// A valid message of some kind, with `id` as its id when it is a request.
fn seed_message(rng: &mut StdRng, id: Value) -> Value {
    let stateless = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let arguments = [
        ("echo", json!({"text": "héllo"})),
        ("add", json!({"a": 2, "b": 3})),
        (
            "configure",
            json!({"settings": {"name": "n", "tags": ["a", "b"], "limits": {"min": 1, "max": 2},
                   "mode": "fast", "ratio": 0.5}, "retries": 2, "note": "x"}),
        ),
        ("chatty", json!({"steps": 3})),
        ("fails", json!({"message": "no"})),
        ("panics", json!({"message": "boom"})),
    ];
    let (tool, args) = arguments[rng.random_range(0..arguments.len())].clone();
    let request = |method: &str, params: Value| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    match rng.random_range(0..14) {
        0 => request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "f", "version": "1"}}),
        ),
        1 => json!({"jsonrpc": "2.0", "id": id, "method": "ping"}),
        2 => request("tools/list", json!({})),
        3 => request("tools/list", json!({"cursor": "tools-1"})),
        4..=6 => request("tools/call", json!({"name": tool, "arguments": args})),
        7 => request(
            "tools/call",
            json!({"name": tool, "arguments": args, "_meta": {"progressToken": rng.random_range(0..100)}}),
        ),
        8 => request("logging/setLevel", json!({"level": "debug"})),
        9 => request("server/discover", json!({"_meta": stateless})),
        10 => request("tools/call", json!({"name": tool, "arguments": args, "_meta": stateless})),
        // A legacy direct call: the method is the tool, params its arguments.
        11 => request(tool, args),
        12 => {
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "x"}})
        }
        _ => json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    }
}

fn generate(rng: &mut StdRng, case: u64) -> Input {
    let id = case_id(rng, case);
    let seed = seed_message(rng, id);
    let roll = rng.random_range(0..1000);
    if roll < 5 {
        let payload = seed.to_string().into_bytes();
        return Input::Closing {
            frame: Frame::message(payload, OpCode::Data(Data::Binary), true),
            code: CloseCode::Unsupported,
            what: "a binary frame",
        };
    }
    if roll < 10 {
        let mut payload = seed.to_string().into_bytes();
        let at = rng.random_range(0..=payload.len());
        let invalid: &[u8] =
            [&[0xff][..], &[0xc3, 0x28], &[0xed, 0xa0, 0x80], &[0xf8, 0x88, 0x80, 0x80, 0x80]][rng.random_range(0..4)];
        payload.splice(at..at, invalid.iter().copied());
        return Input::Closing {
            frame: text_frame(payload),
            code: CloseCode::Invalid,
            what: "a text frame that is not UTF-8",
        };
    }
    if roll < 11 {
        let text = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_MESSAGE + rng.random_range(1..1000)));
        return Input::Closing {
            frame: text_frame(text.into_bytes()),
            code: CloseCode::Size,
            what: "a frame over the size limit",
        };
    }
    let text = match roll {
        11..700 => {
            let mut value = seed;
            for _ in 0..rng.random_range(1..=3) {
                mutate(rng, &mut value, 0);
            }
            value.to_string()
        }
        700..850 => mutate_bytes(rng, seed.to_string()),
        850..900 => nested_text(rng, case),
        900..950 => oddity(rng, case),
        _ => seed.to_string(),
    };
    if text.len() > MAX_MESSAGE {
        return Input::Closing {
            frame: text_frame(text.into_bytes()),
            code: CloseCode::Size,
            what: "a frame over the size limit",
        };
    }
    let expect = expected_id(&text);
    Input::Text { text, expect }
}

fn text_frame(payload: Vec<u8>) -> Frame {
    let header = FrameHeader { opcode: OpCode::Data(Data::Text), ..FrameHeader::default() };
    Frame::from_payload(header, Bytes::from(payload))
}

/// The id a frame must be answered with: it is a JSON object with a string
/// `method` and an id that is a string or a 64-bit integer. Read leniently,
/// as a request is (fields not looked at are skipped, not validated), so a
/// request carrying, say, a lone surrogate in an unread field counts.
fn expected_id(text: &str) -> Option<Value> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        method: Option<&'a RawValue>,
    }
    if !text.trim_start().starts_with('{') {
        return None; // serde would read an array positionally
    }
    let probe: Probe<'_> = serde_json::from_str(text).ok()?;
    let id: Value = serde_json::from_str(probe.id?.get()).ok()?;
    let method_is_string = serde_json::from_str::<String>(probe.method?.get()).is_ok();
    (method_is_string && (id.is_string() || id.is_i64())).then_some(id)
}

/// Replaces, removes or adds something at a random depth of `value`.
fn mutate(rng: &mut StdRng, value: &mut Value, depth: usize) {
    let descend = depth < 8 && rng.random_bool(0.6);
    match value {
        Value::Object(map) if descend && !map.is_empty() => {
            let key = map.keys().nth(rng.random_range(0..map.len())).cloned().expect("a key");
            match rng.random_range(0..6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(random_key(rng), interesting(rng));
                }
                _ => mutate(rng, map.get_mut(&key).expect("the key"), depth + 1),
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let at = rng.random_range(0..items.len());
            match rng.random_range(0..4) {
                0 => {
                    items.remove(at);
                }
                1 => items.insert(at, interesting(rng)),
                _ => mutate(rng, &mut items[at], depth + 1),
            }
        }
        _ => *value = interesting(rng),
    }
}

fn random_key(rng: &mut StdRng) -> String {
    const KEYS: &[&str] = &[
        "id",
        "method",
        "params",
        "jsonrpc",
        "result",
        "error",
        "_meta",
        "name",
        "arguments",
        "cursor",
        "",
        "__proto__",
    ];
    KEYS[rng.random_range(0..KEYS.len())].to_owned()
}

/// A value likely to find an edge.
fn interesting(rng: &mut StdRng) -> Value {
    match rng.random_range(0..24) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(i64::MAX),
        5 => json!(i64::MIN),
        6 => json!(u64::MAX),
        7 => json!(1.5),
        8 => json!(-0.0),
        9 => json!(1e308),
        10 => json!(""),
        11 => json!("\u{0}\u{ffff}\u{10ffff}é\\\"'"),
        12 => json!("x".repeat(rng.random_range(1_000..MAX_MESSAGE / 2))),
        13 => json!([]),
        14 => json!({}),
        15 => nested_value(rng.random_range(1..300)),
        16 => json!("2025-06-18"),
        17 => json!("2026-07-28"),
        18 => json!("tools/call"),
        19 => json!("echo"),
        20 => json!("notifications/cancelled"),
        21 => json!("tools-100"),
        22 => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..4) {
                map.insert(random_key(rng), interesting_leaf(rng));
            }
            Value::Object(map)
        }
        _ => json!(rng.random::<i64>()),
    }
}

fn interesting_leaf(rng: &mut StdRng) -> Value {
    match rng.random_range(0..4) {
        0 => Value::Null,
        1 => json!(rng.random::<i32>()),
        2 => json!("s"),
        _ => json!([1, "2", null]),
    }
}

fn nested_value(depth: usize) -> Value {
    let mut value = json!(1);
    for level in 0..depth {
        value = if level % 2 == 0 { json!([value]) } else { json!({ "a": value }) };
    }
    value
}

/// Nesting far past any recursion limit, bare or inside a request.
fn nested_text(rng: &mut StdRng, case: u64) -> String {
    let depth = rng.random_range(100..20_000);
    let (open, close) = if rng.random_bool(0.5) { ("[", "]") } else { ("{\"a\":", "}") };
    let nest = format!("{}1{}", open.repeat(depth), close.repeat(depth));
    match rng.random_range(0..3) {
        0 => nest,
        1 => format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":{nest}}}}}}}"#,
            case
        ),
        _ => format!(r#"{{"jsonrpc":"2.0","id":{nest},"method":"ping"}}"#),
    }
}

/// Hand-picked shapes that a tree mutation cannot produce.
fn oddity(rng: &mut StdRng, case: u64) -> String {
    let id = case;
    match rng.random_range(0..14) {
        0 => format!(r#"{{"jsonrpc":"2.0","id":{id},"id":"c{id}","method":"ping"}}"#),
        1 => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping","method":"tools/list"}}"#),
        2 => r#"{"jsonrpc":"2.0","id":1e999999,"method":"ping"}"#.to_owned(),
        3 => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add","arguments":{{"a":123456789012345678901234567890,"b":1}}}}}}"#
        ),
        4 => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}} trailing"#),
        5 => format!("\u{feff}{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}"),
        6 => format!(r#"[{{"jsonrpc":"2.0","id":{id},"method":"ping"}}]"#),
        7 => String::new(),
        8 => " \t\r\n".to_owned(),
        9 => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"#),
        10 => format!(r#"{{"jsonrpc":"2.0","id":{id}.0,"method":"ping"}}"#),
        11 => format!(r#"{{"jsonrpc":"2.0","id":"{}","method":"ping"}}"#, "\\u0000".repeat(rng.random_range(1..100))),
        12 => {
            let len = rng.random_range(1..512);
            (0..len).map(|_| char::from(rng.random_range(0x20u8..0x7f))).collect()
        }
        _ => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"\ud800"}}}}}}"#
        ),
    }
}

/// Flips, inserts, deletes or truncates bytes; the result is made UTF-8
/// again (the non-UTF-8 frames are their own cases).
fn mutate_bytes(rng: &mut StdRng, text: String) -> String {
    let mut bytes = text.into_bytes();
    for _ in 0..rng.random_range(1..=4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..5) {
            0 => bytes[at] = rng.random(),
            1 => {
                const SYNTAX: &[u8] = b"{}[]\",:\\0-e.";
                bytes.insert(at, SYNTAX[rng.random_range(0..SYNTAX.len())]);
            }
            2 => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ => {
                let end = rng.random_range(at..bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn the_oracle_recognises_requests() {
    assert_eq!(expected_id(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#), Some(json!(7)));
    assert_eq!(expected_id(r#"{"id":"x","method":"ping"}"#), Some(json!("x")), "answered even without jsonrpc");
    assert_eq!(expected_id(r#"{"id":7,"result":{}}"#), None, "a response is never answered");
    assert_eq!(expected_id(r#"{"id":1.5,"method":"ping"}"#), None);
    assert_eq!(expected_id(r#"{"id":18446744073709551615,"method":"ping"}"#), None, "past i64");
    assert_eq!(expected_id(r#"{"method":"ping"}"#), None, "a notification");
    assert_eq!(expected_id(r#"[1,"ping"]"#), None, "not an object");
    assert_eq!(
        expected_id(r#"{"id":3,"method":"ping","x":"\ud800","y":1e999}"#),
        Some(json!(3)),
        "unread fields are skipped, not validated"
    );
    let seen: HashSet<u64> =
        (0..1000).map(|case| generate(&mut StdRng::seed_from_u64(case), case).describe().len() as u64).collect();
    assert!(seen.len() > 100, "the generator makes varied cases");
}
