//! Tools built by `#[mcp_tool]`, called through `Tool::call` exactly as the
//! dispatcher calls them: arguments in, JSON or a `CallError` out.

use std::collections::BTreeMap;
use std::sync::Arc;

use mcp_runtime::context::SessionHandle;
use mcp_runtime::extract::StateMap;
use mcp_runtime::tool::{ToolCall, discovered_tools};
use mcp_runtime::{CallError, RequestContext, RequestId, State, Tool, ToolError, ToolFactory, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Serialize, JsonSchema)]
struct Sum {
    sum: i64,
}

/// Add two numbers.
///
/// Second paragraph.
#[mcp_tool(read_only, idempotent = true, open_world = false, title = "Adder")]
async fn add(
    /// First addend
    a: i64,
    /// Second addend
    b: i64,
) -> Result<Sum, ToolError> {
    if a == 13 {
        return Err(ToolError::new("13 is unlucky"));
    }
    Ok(Sum { sum: a + b })
}

/// Greets; every argument is optional.
#[mcp_tool(name = "greet.v2", description = "Says hello")]
async fn greet(
    name: Option<String>,
    #[mcp(default = 1)] times: u32,
    #[mcp(default = "!".to_owned())] punctuation: String,
    #[mcp(default)] shout: bool,
) -> String {
    let name = name.unwrap_or_else(|| "world".to_owned());
    let text = (0..times).map(|_| format!("hello {name}{punctuation}")).collect::<Vec<_>>().join(" ");
    if shout { text.to_uppercase() } else { text }
}

#[derive(Clone)]
struct Counter {
    base: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Unit {
    Meters,
    Feet,
}

/// Uses injected state and the request context, in any order.
#[mcp_tool(destructive = false)]
async fn with_state(cx: RequestContext, counter: State<Counter>, r#type: Unit, delta: i64) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    out.insert("request".to_owned(), json!(cx.request_id().to_string()));
    out.insert("total".to_owned(), json!(counter.base + delta));
    out.insert("type".to_owned(), json!(format!("{type:?}")));
    out
}

/// No parameters, no return value.
#[mcp_tool]
async fn ping() {}

#[mcp_tool]
async fn read_missing(path: String) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn session() -> SessionHandle {
    let (tx, rx) = mpsc::channel(8);
    // The receiver is leaked on purpose: tools may log, nobody reads here.
    std::mem::forget(rx);
    SessionHandle::new(tx)
}

fn call_with_state(args: Value, state: StateMap) -> ToolCall {
    let raw = serde_json::value::to_raw_value(&args).unwrap();
    let cx = RequestContext::new(RequestId::Number(7), None, CancellationToken::new(), session());
    ToolCall::new(Some(raw), cx, Arc::new(state))
}

fn call(args: Value) -> ToolCall {
    call_with_state(args, StateMap::default())
}

async fn run(tool: &Tool, args: Value) -> Result<Value, CallError> {
    run_call(tool, call(args)).await
}

async fn run_call(tool: &Tool, call: ToolCall) -> Result<Value, CallError> {
    let out = tool.call(call).await?;
    Ok(serde_json::from_str(out.json.get()).unwrap())
}

fn invalid(message: &str) -> Result<Value, CallError> {
    Err(CallError::InvalidArguments(message.to_owned()))
}

#[tokio::test]
async fn returns_the_ok_value_as_json() {
    let tool = <add as ToolFactory>::tool();
    assert_eq!(run(&tool, json!({"a": 2, "b": 3})).await, Ok(json!({"sum": 5})));
}

#[tokio::test]
async fn err_becomes_a_tool_error_with_its_message() {
    let tool = <add as ToolFactory>::tool();
    assert_eq!(run(&tool, json!({"a": 13, "b": 1})).await, Err(CallError::Tool("13 is unlucky".to_owned())));
    let tool = <read_missing as ToolFactory>::tool();
    let err = run(&tool, json!({"path": "/nonexistent/mcp-macro-test"})).await.unwrap_err();
    assert!(matches!(&err, CallError::Tool(m) if m.contains("No such file")), "{err:?}");
}

#[tokio::test]
async fn wrong_type_names_the_argument_and_the_expected_type() {
    let tool = <add as ToolFactory>::tool();
    assert_eq!(
        run(&tool, json!({"a": "x", "b": 1})).await,
        invalid(r#"invalid argument `a`: invalid type: string "x", expected i64"#)
    );
}

#[tokio::test]
async fn missing_required_argument_is_named() {
    let tool = <add as ToolFactory>::tool();
    assert_eq!(run(&tool, json!({"a": 1})).await, invalid("invalid arguments: missing field `b`"));
    assert_eq!(
        run_call(&tool, ToolCall::new(None, call(json!({})).context().clone(), Arc::default())).await,
        invalid("invalid arguments: missing field `a`")
    );
}

#[tokio::test]
async fn unknown_argument_is_rejected() {
    let tool = <add as ToolFactory>::tool();
    let err = run(&tool, json!({"a": 1, "b": 2, "c": 3})).await.unwrap_err();
    assert!(matches!(&err, CallError::InvalidArguments(m) if m.contains("unknown field `c`")), "{err:?}");
    let tool = <ping as ToolFactory>::tool();
    let err = run(&tool, json!({"x": 1})).await.unwrap_err();
    assert!(matches!(&err, CallError::InvalidArguments(m) if m.contains("unknown field `x`")), "{err:?}");
}

#[tokio::test]
async fn absent_arguments_take_their_defaults() {
    let tool = <greet as ToolFactory>::tool();
    assert_eq!(tool.name(), "greet.v2");
    assert_eq!(run(&tool, json!({})).await, Ok(json!("hello world!")));
    assert_eq!(run(&tool, Value::Null).await, Ok(json!("hello world!")));
    assert_eq!(
        run(&tool, json!({"name": "ann", "times": 2, "punctuation": "?"})).await,
        Ok(json!("hello ann? hello ann?"))
    );
    assert_eq!(run(&tool, json!({"name": null})).await, Ok(json!("hello world!")));
    assert_eq!(run(&tool, json!({"shout": true})).await, Ok(json!("HELLO WORLD!")));
}

#[tokio::test]
async fn arguments_that_are_not_an_object_are_rejected() {
    let tool = <add as ToolFactory>::tool();
    assert_eq!(
        run(&tool, json!([1, 2])).await,
        invalid("invalid arguments: invalid type: sequence, expected an object of named arguments")
    );
    assert_eq!(
        run(&tool, json!("a=1")).await,
        invalid(r#"invalid arguments: invalid type: string "a=1", expected an object of named arguments"#)
    );
}

#[tokio::test]
async fn nested_errors_name_the_path() {
    let tool = <with_state as ToolFactory>::tool();
    let mut state = StateMap::default();
    state.insert(Counter { base: 0 });
    let out = run_call(&tool, call_with_state(json!({"type": "yards", "delta": 2}), state)).await;
    assert_eq!(out, invalid("invalid argument `type`: unknown variant `yards`, expected `meters` or `feet`"));
}

#[tokio::test]
async fn state_and_context_are_injected() {
    let tool = <with_state as ToolFactory>::tool();
    let mut state = StateMap::default();
    state.insert(Counter { base: 40 });
    let out = run_call(&tool, call_with_state(json!({"type": "feet", "delta": 2}), state)).await;
    assert_eq!(out, Ok(json!({"request": "7", "total": 42, "type": "Feet"})));
    let names: Vec<_> = tool.required_state().iter().map(|r| r.type_name).collect();
    assert_eq!(names, [std::any::type_name::<Counter>()]);
    assert_eq!((tool.required_state()[0].type_id)(), std::any::TypeId::of::<Counter>());
}

#[tokio::test]
async fn missing_state_is_an_internal_error() {
    let tool = <with_state as ToolFactory>::tool();
    let err = run(&tool, json!({"type": "meters", "delta": 2})).await.unwrap_err();
    assert!(matches!(&err, CallError::Internal(m) if m.contains("Counter")), "{err:?}");
}

#[tokio::test]
async fn unit_return_is_null() {
    let tool = <ping as ToolFactory>::tool();
    assert_eq!(run(&tool, json!({})).await, Ok(Value::Null));
    assert!(tool.output_schema().is_none());
}

#[test]
fn metadata_comes_from_the_fn_and_the_options() {
    let tool = <add as ToolFactory>::tool();
    let meta = tool.meta();
    assert_eq!(meta.name, "add");
    assert_eq!(meta.title, Some("Adder"));
    assert_eq!(meta.description, Some("Add two numbers.\n\nSecond paragraph."));
    assert_eq!(meta.annotations.read_only_hint, Some(true));
    assert_eq!(meta.annotations.idempotent_hint, Some(true));
    assert_eq!(meta.annotations.open_world_hint, Some(false));
    assert_eq!(meta.annotations.destructive_hint, None);
    assert!(meta.location.file.ends_with("macro_tools.rs"), "{}", meta.location);
    // The location is the attribute's, so a duplicate name points at it.
    let source = include_str!("macro_tools.rs");
    let attr_line = source.lines().position(|l| l.starts_with("#[mcp_tool(read_only, idempotent")).unwrap() + 1;
    assert_eq!((meta.location.line, meta.location.column), (attr_line as u32, 1));
    assert_eq!(
        Value::Object(tool.input_schema().clone()),
        json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "format": "int64", "description": "First addend"},
                "b": {"type": "integer", "format": "int64", "description": "Second addend"},
            },
            "required": ["a", "b"],
            "additionalProperties": false,
        })
    );
    let greet = <greet as ToolFactory>::tool();
    assert_eq!(greet.meta().description, Some("Says hello"));
    assert_eq!(greet.meta().title, None);
    assert!(greet.meta().annotations.is_empty());
    let with_state = <with_state as ToolFactory>::tool();
    assert_eq!(with_state.meta().description, Some("Uses injected state and the request context, in any order."));
    assert_eq!(with_state.meta().annotations.destructive_hint, Some(false));
}

#[test]
fn defaults_and_options_are_optional_in_the_schema() {
    let tool = <greet as ToolFactory>::tool();
    let schema = Value::Object(tool.input_schema().clone());
    assert_eq!(schema["required"], json!([]));
    assert_eq!(schema["properties"]["name"], json!({"type": "string"}));
    assert_eq!(schema["properties"]["times"]["default"], json!(1));
    assert_eq!(schema["properties"]["punctuation"], json!({"type": "string", "default": "!"}));
    assert_eq!(schema["properties"]["shout"], json!({"type": "boolean", "default": false}));
}

#[test]
fn raw_identifiers_are_argument_names_without_r_hash() {
    let tool = <with_state as ToolFactory>::tool();
    let props = tool.input_schema()["properties"].as_object().unwrap();
    assert!(props.contains_key("type") && props.contains_key("delta"), "{props:?}");
    assert!(!props.contains_key("r#type"));
}

#[test]
fn inventory_collects_every_tool() {
    let names: Vec<_> = discovered_tools().map(|t| t.name()).collect();
    for expected in ["add", "greet.v2", "with_state", "ping", "read_missing"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
}

#[test]
fn the_handler_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let tool = <with_state as ToolFactory>::tool();
    assert_send(&tool.call(call(json!({}))));
}

mod first {
    /// Same fn name as in `second`: the registration types live in different modules.
    #[mcp_runtime::mcp_tool(name = "first.echo")]
    pub async fn echo(text: String) -> String {
        text
    }
}

mod second {
    #[mcp_runtime::mcp_tool(name = "second.echo")]
    pub(crate) async fn echo(text: String) -> String {
        text.repeat(2)
    }
}

#[tokio::test]
async fn tools_in_modules_and_fn_bodies() {
    let first = <first::echo as ToolFactory>::tool();
    let second = <second::echo as ToolFactory>::tool();
    assert_eq!(run(&first, json!({"text": "a"})).await, Ok(json!("a")));
    assert_eq!(run(&second, json!({"text": "a"})).await, Ok(json!("aa")));

    /// Declared inside a fn body.
    #[mcp_tool]
    async fn local(n: u8) -> u8 {
        n + 1
    }
    let local = <local as ToolFactory>::tool();
    assert_eq!(run(&local, json!({"n": 1})).await, Ok(json!(2)));
    let names: Vec<_> = discovered_tools().map(|t| t.name()).collect();
    assert!(names.contains(&"local") && names.contains(&"first.echo"), "{names:?}");
}
