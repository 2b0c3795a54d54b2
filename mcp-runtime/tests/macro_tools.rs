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
    Ok(serde_json::from_str(out.json().expect("a value").get()).unwrap())
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
    assert_eq!(run(&tool, json!({"a": 1})).await, invalid("invalid arguments: missing required argument `b`"));
    assert_eq!(
        run_call(&tool, ToolCall::new(None, call(json!({})).context().clone(), Arc::default())).await,
        invalid("invalid arguments: missing required arguments `a` and `b`")
    );
}

#[tokio::test]
async fn unknown_argument_is_rejected() {
    let tool = <add as ToolFactory>::tool();
    assert_eq!(
        run(&tool, json!({"a": 1, "b": 2, "c": 3})).await,
        invalid("invalid arguments: unknown argument `c` (this tool takes `a` and `b`)")
    );
    let tool = <ping as ToolFactory>::tool();
    assert_eq!(
        run(&tool, json!({"x": 1})).await,
        invalid("invalid arguments: unknown argument `x` (this tool takes no arguments)")
    );
    // An injected parameter's name is not an argument either.
    let tool = <with_state as ToolFactory>::tool();
    let mut state = StateMap::default();
    state.insert(Counter { base: 0 });
    let out = run_call(&tool, call_with_state(json!({"type": "feet", "delta": 1, "counter": 5}), state)).await;
    assert_eq!(out, invalid("invalid arguments: unknown argument `counter` (this tool takes `type` and `delta`)"));
}

/// The notes service's `add`: three required arguments.
#[mcp_tool]
async fn add_note(title: String, body: String, tags: Vec<String>, #[mcp(default)] pinned: bool) -> String {
    format!("{title}: {body} {tags:?} {pinned}")
}

#[tokio::test]
async fn every_problem_is_named_in_one_error() {
    let tool = <add_note as ToolFactory>::tool();
    assert_eq!(
        run(&tool, json!({})).await,
        invalid("invalid arguments: missing required arguments `title`, `body` and `tags`")
    );
    assert_eq!(
        run(&tool, json!({"title": 1, "tags": ["a", 2], "colour": "red", "size": 3})).await,
        invalid(
            "invalid arguments: missing required argument `body`; unknown arguments `colour` and `size` (this tool \
             takes `title`, `body`, `tags` and `pinned`); `title`: invalid type: integer `1`, expected a string; \
             `tags[1]`: invalid type: integer `2`, expected a string"
        )
    );
    // Thousands of unknown names make a bounded message.
    let mut many = serde_json::Map::new();
    for i in 0..5000 {
        many.insert(format!("k{i}"), json!(i));
    }
    let Err(CallError::InvalidArguments(message)) = run(&tool, Value::Object(many)).await else { panic!() };
    assert!(message.len() < 1000, "{} bytes: {message}", message.len());
    assert!(message.contains("`k19` and 4980 more (this tool takes"), "{message}");
    // A repeated name (which `json!` would merge) is refused, not silently resolved.
    let raw = serde_json::value::RawValue::from_string(r#"{"title":"t","title":"again","body":"b","tags":[]}"#.into());
    let repeated = ToolCall::new(Some(raw.unwrap()), call(json!({})).context().clone(), Arc::default());
    assert_eq!(run_call(&tool, repeated).await, invalid("invalid arguments: argument `title` given more than once"));
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct Filter {
    tags: Vec<String>,
    after: Option<String>,
}

/// Loose on purpose: extra fields are collected, and published as allowed.
#[derive(Debug, Deserialize, JsonSchema)]
struct Labels {
    #[allow(dead_code)]
    name: String,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// Opts out explicitly: serde ignores unknown fields, the schema says so.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = true))]
struct Lenient {
    name: String,
}

/// The notes service's `list`, with nested arguments.
#[mcp_tool]
async fn list_notes(
    filter: Filter,
    #[mcp(default)] more: Vec<Filter>,
    labels: Option<Labels>,
    lenient: Option<Lenient>,
) -> usize {
    filter.tags.len() + more.len() + labels.map_or(0, |l| l.extra.len()) + lenient.map_or(0, |l| l.name.len())
}

#[tokio::test]
async fn nested_unknown_fields_are_refused_with_their_path() {
    let tool = <list_notes as ToolFactory>::tool();
    assert_eq!(run(&tool, json!({"filter": {"tags": ["x"]}})).await, Ok(json!(1)));
    assert_eq!(
        run(&tool, json!({"filter": {"tags": [], "colour": "red"}})).await,
        invalid("invalid arguments: unknown field `filter.colour` (`filter` takes `tags` and `after`)")
    );
    assert_eq!(
        run(&tool, json!({"filter": {"tags": []}, "more": [{"tags": []}, {"tags": [], "x": 1, "y": 2}]})).await,
        invalid(
            "invalid arguments: unknown field `more[1].x` (`more[1]` takes `tags` and `after`); unknown field \
             `more[1].y` (`more[1]` takes `tags` and `after`)"
        )
    );
    // A flattened map and an explicit opt-out take extra fields, as their schemas say.
    let loose =
        json!({"filter": {"tags": []}, "labels": {"name": "n", "a": 1, "b": 2}, "lenient": {"name": "xy", "z": 0}});
    assert_eq!(run(&tool, loose).await, Ok(json!(4)));
    let props = &tool.input_schema()["properties"];
    assert_eq!(props["filter"]["additionalProperties"], json!(false));
    assert_eq!(props["more"]["items"]["additionalProperties"], json!(false));
    assert_eq!(props["labels"]["additionalProperties"], json!({}), "{props:#}");
    // (`true` is published as `{}`, which means the same and takes a description.)
    assert_eq!(props["lenient"]["additionalProperties"], json!({}), "{props:#}");
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

/// Extractors are found by trait, whatever the import calls them.
mod renamed_imports {
    use mcp_runtime::{RequestContext as Cx, State as S, mcp_tool};

    #[derive(Clone)]
    pub struct Db {
        pub name: &'static str,
    }

    #[mcp_tool]
    pub async fn which_db(db: S<Db>, cx: Cx, table: String) -> String {
        format!("{}.{table} for request {}", db.name, cx.request_id())
    }

    /// A user type that happens to be called `State` is an ordinary argument.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    pub struct State {
        pub code: String,
    }

    #[mcp_tool]
    pub async fn set_state(state: State) -> String {
        state.code
    }
}

#[tokio::test]
async fn extractors_are_recognised_by_trait_not_by_name() {
    let tool = <renamed_imports::which_db as ToolFactory>::tool();
    let props = tool.input_schema()["properties"].as_object().unwrap();
    assert_eq!(props.keys().collect::<Vec<_>>(), ["table"]);
    assert_eq!(tool.required_state()[0].type_name, std::any::type_name::<renamed_imports::Db>());
    let mut state = StateMap::default();
    state.insert(renamed_imports::Db { name: "notes" });
    let out = run_call(&tool, call_with_state(json!({"table": "t"}), state)).await;
    assert_eq!(out, Ok(json!("notes.t for request 7")));

    let tool = <renamed_imports::set_state as ToolFactory>::tool();
    assert_eq!(tool.input_schema()["required"], json!(["state"]));
    assert_eq!(run(&tool, json!({"state": {"code": "on"}})).await, Ok(json!("on")));
}

/// A user-defined extractor: who is calling, from the server's state.
struct Caller {
    name: String,
}

#[derive(Clone, Default)]
struct Directory {
    lookups: Arc<std::sync::atomic::AtomicUsize>,
}

impl mcp_runtime::FromToolCall for Caller {
    fn from_tool_call(call: &ToolCall) -> Result<Self, CallError> {
        let directory =
            call.state().get::<Directory>().ok_or_else(|| CallError::Internal("no Directory state".to_owned()))?;
        directory.lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Caller { name: format!("caller of request {}", call.context().request_id()) })
    }

    fn required_state() -> Option<mcp_runtime::tool::StateRequirement> {
        Some(mcp_runtime::tool::StateRequirement::of::<Directory>())
    }
}

#[mcp_tool]
async fn whoami(caller: Caller, greeting: String) -> String {
    format!("{greeting}, {}", caller.name)
}

#[tokio::test]
async fn user_defined_extractors_run_only_for_valid_arguments() {
    let tool = <whoami as ToolFactory>::tool();
    assert_eq!(tool.input_schema()["required"], json!(["greeting"]));
    assert_eq!(tool.required_state()[0].type_name, std::any::type_name::<Directory>());
    let directory = Directory::default();
    let with_directory = || {
        let mut state = StateMap::default();
        state.insert(directory.clone());
        state
    };
    let out = run_call(&tool, call_with_state(json!({"greeting": "hi"}), with_directory())).await;
    assert_eq!(out, Ok(json!("hi, caller of request 7")));
    let out = run_call(&tool, call_with_state(json!({"greeting": 5}), with_directory())).await;
    assert!(matches!(out, Err(CallError::InvalidArguments(_))), "{out:?}");
    assert_eq!(directory.lookups.load(std::sync::atomic::Ordering::SeqCst), 1, "the extractor ran for bad arguments");
}

/// What the notes service's `add` takes, as one type.
#[derive(Debug, Deserialize, JsonSchema)]
struct NewNote {
    title: String,
    body: String,
    #[serde(default)]
    tags: Vec<String>,
    pinned: bool,
}

#[mcp_tool]
async fn add_flat(#[mcp(flatten)] note: NewNote, cx: RequestContext) -> String {
    format!("{} ({}) {:?} {} #{}", note.title, note.body, note.tags, note.pinned, cx.request_id())
}

#[tokio::test]
async fn a_flattened_parameter_is_the_whole_arguments_object() {
    let tool = <add_flat as ToolFactory>::tool();
    assert_eq!(
        Value::Object(tool.input_schema().clone()),
        json!({
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "body": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                "pinned": {"type": "boolean"},
            },
            "required": ["title", "body", "pinned"],
            "additionalProperties": false,
            "description": "What the notes service's `add` takes, as one type.",
        })
    );
    let out = run(&tool, json!({"title": "t", "body": "b", "pinned": true})).await;
    assert_eq!(out, Ok(json!("t (b) [] true #7")));
    assert_eq!(
        run(&tool, json!({"tags": [], "colour": "red"})).await,
        invalid(
            "invalid arguments: missing required arguments `title`, `body` and `pinned`; unknown argument `colour` \
             (this tool takes `title`, `body`, `tags` and `pinned`)"
        )
    );
    assert_eq!(
        run(&tool, json!({"title": "t", "body": 1, "pinned": true})).await,
        invalid("invalid argument `body`: invalid type: integer `1`, expected a string")
    );
}

/// The conformance suite's `json_schema_2020_12_tool`: root-level
/// keywords only a hand-written schema has.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    name: Option<String>,
    contact_method: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    address: Option<Value>,
}

impl JsonSchema for Contact {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Contact".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
                }
            },
            "properties": {
                "name": {"type": "string"},
                "address": {"$ref": "#/$defs/address"},
                "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                "phone": {"type": "string"},
                "email": {"type": "string"}
            },
            "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
            "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]},
            "additionalProperties": false
        })
    }
}

/// Tool with JSON Schema 2020-12 features
#[mcp_tool]
async fn json_schema_2020_12_tool(#[mcp(flatten)] contact: Contact) -> String {
    format!(
        "{:?} via {:?} {:?}/{:?} at {:?}",
        contact.name, contact.contact_method, contact.phone, contact.email, contact.address
    )
}

#[tokio::test]
async fn a_hand_written_schema_keeps_its_2020_12_keywords() {
    let tool = <json_schema_2020_12_tool as ToolFactory>::tool();
    let schema = tool.input_schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["$defs"]["address"]["$anchor"], "addressDef");
    assert_eq!(schema["properties"]["address"]["$ref"], "#/$defs/address");
    assert!(schema["allOf"][0]["anyOf"].is_array(), "{schema:?}");
    assert!(schema.contains_key("if") && schema.contains_key("then") && schema.contains_key("else"));
    assert_eq!(schema["additionalProperties"], false);
    assert!(tool.defects().is_empty(), "{:?}", tool.defects());
    let out = run(&tool, json!({"name": "Ann", "email": "a@example.com"})).await;
    assert!(out.is_ok(), "{out:?}");
    let out = run(&tool, json!({"name": "Ann", "fax": "1"})).await;
    assert!(matches!(&out, Err(CallError::InvalidArguments(m)) if m.contains("unknown argument `fax`")), "{out:?}");
}

#[derive(Debug, Serialize, JsonSchema)]
struct Hit {
    title: String,
    score: f64,
}

/// The notes service's `search`: a list result.
#[mcp_tool]
async fn search_notes(query: String) -> Vec<Hit> {
    vec![Hit { title: query.clone(), score: 1.0 }, Hit { title: format!("{query}!"), score: 0.5 }]
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Mood {
    #[allow(dead_code)]
    Calm,
    Busy,
}

#[mcp_tool]
async fn mood() -> Mood {
    Mood::Busy
}

#[mcp_tool]
async fn maybe_hit(found: bool) -> Option<Hit> {
    found.then(|| Hit { title: "x".into(), score: 0.1 })
}

#[mcp_tool]
async fn anything() -> Value {
    json!([1, "two"])
}

#[tokio::test]
async fn non_object_results_publish_their_schema_and_a_wrapped_one() {
    let tool = <search_notes as ToolFactory>::tool();
    assert!(tool.wraps_result());
    let value_schema = tool.result_schema().unwrap();
    assert_eq!(value_schema["type"], "array");
    assert_eq!(value_schema["items"]["required"], json!(["title", "score"]));
    assert_eq!(
        Value::Object(tool.output_schema().unwrap().clone()),
        json!({
            "type": "object",
            "properties": {"result": value_schema},
            "required": ["result"],
            "x-fastmcp-wrap-result": true,
        })
    );
    assert_eq!(tool.output_schema_for("2025-06-18"), Some(&Value::Object(tool.output_schema().unwrap().clone())));
    assert_eq!(tool.output_schema_for("2026-07-28"), Some(value_schema));
    assert_eq!(
        run(&tool, json!({"query": "q"})).await,
        Ok(json!([{"title": "q", "score": 1.0}, {"title": "q!", "score": 0.5}]))
    );

    let mood = <mood as ToolFactory>::tool();
    assert_eq!(mood.result_schema(), Some(&json!({"type": "string", "enum": ["calm", "busy"]})));
    assert!(mood.wraps_result());
    let maybe = <maybe_hit as ToolFactory>::tool();
    assert!(maybe.wraps_result(), "an Option may be null: {:?}", maybe.result_schema());
    for tool in [<greet as ToolFactory>::tool(), <local_number as ToolFactory>::tool()] {
        assert!(tool.wraps_result(), "{}", tool.name());
    }
    // An object stays as it is; no schema for `()` or for any JSON at all.
    let add = <add as ToolFactory>::tool();
    assert!(!add.wraps_result());
    assert_eq!(add.output_schema_for("2026-07-28"), Some(&Value::Object(add.output_schema().unwrap().clone())));
    assert!(<ping as ToolFactory>::tool().output_schema().is_none());
    assert!(<anything as ToolFactory>::tool().output_schema().is_none());
}

#[mcp_tool]
async fn local_number() -> u32 {
    7
}

#[mcp_tool]
async fn picture() -> mcp_runtime::Content {
    mcp_runtime::Content::image([0x89, b'P', b'N', b'G'], "image/png")
}

#[mcp_tool]
async fn several() -> Vec<mcp_runtime::Content> {
    use mcp_runtime::content::{ContentAnnotations, Role};
    vec![
        mcp_runtime::Content::text("see below"),
        mcp_runtime::Content::audio_base64("UklGRg==", "audio/wav"),
        mcp_runtime::Content::embedded_text("test://doc", "text/plain", "body"),
        mcp_runtime::Content::resource_link("file:///a.txt", "a.txt").annotated(ContentAnnotations {
            audience: Some(vec![Role::User]),
            priority: Some(0.5),
            last_modified: None,
        }),
    ]
}

#[mcp_tool]
async fn chart(numbers: Vec<f64>) -> Result<mcp_runtime::CallToolResult<Vec<f64>>, ToolError> {
    if numbers.is_empty() {
        return Err("nothing to chart".into());
    }
    let mut meta = serde_json::Map::new();
    meta.insert("points".into(), json!(numbers.len()));
    Ok(mcp_runtime::CallToolResult::structured(numbers)
        .with_content(vec![mcp_runtime::Content::image_base64("AAAA", "image/png")])
        .with_meta(meta))
}

#[mcp_tool]
async fn refuse() -> mcp_runtime::CallToolResult {
    mcp_runtime::CallToolResult::error(vec![mcp_runtime::Content::text("no, because")])
}

fn output_parts(out: &mcp_runtime::tool::ToolOutput) -> (Option<Value>, Option<Value>, bool) {
    let parse = |raw: Option<&serde_json::value::RawValue>| raw.map(|r| serde_json::from_str(r.get()).unwrap());
    (parse(out.json()), parse(out.content()), out.is_error())
}

#[tokio::test]
async fn rich_results_carry_their_own_content() {
    let tool = <picture as ToolFactory>::tool();
    assert!(tool.output_schema().is_none());
    let out = tool.call(call(json!({}))).await.unwrap();
    assert_eq!(
        output_parts(&out),
        (None, Some(json!([{"type": "image", "data": "iVBORw==", "mimeType": "image/png"}])), false)
    );

    let out = <several as ToolFactory>::tool().call(call(json!({}))).await.unwrap();
    let (_, content, _) = output_parts(&out);
    assert_eq!(
        content.unwrap(),
        json!([
            {"type": "text", "text": "see below"},
            {"type": "audio", "data": "UklGRg==", "mimeType": "audio/wav"},
            {"type": "resource", "resource": {"uri": "test://doc", "mimeType": "text/plain", "text": "body"}},
            {"type": "resource_link", "uri": "file:///a.txt", "name": "a.txt",
             "annotations": {"audience": ["user"], "priority": 0.5}},
        ])
    );

    let tool = <chart as ToolFactory>::tool();
    assert_eq!(tool.result_schema().unwrap()["type"], "array", "the structured part has a schema");
    let out = tool.call(call(json!({"numbers": [1.0, 2.5]}))).await.unwrap();
    assert_eq!(
        output_parts(&out),
        (Some(json!([1.0, 2.5])), Some(json!([{"type": "image", "data": "AAAA", "mimeType": "image/png"}])), false)
    );
    assert_eq!(run(&tool, json!({"numbers": []})).await, Err(CallError::Tool("nothing to chart".to_owned())));

    let out = <refuse as ToolFactory>::tool().call(call(json!({}))).await.unwrap();
    assert_eq!(output_parts(&out), (Some(Value::Null), Some(json!([{"type": "text", "text": "no, because"}])), true));
}
