//! Every schema `#[mcp_tool]` publishes, over a matrix of parameter and
//! return types: valid JSON Schema 2020-12, shaped the way clients accept
//! (see `assert_client_compatible`), and in agreement with the tool itself:
//! what the schema accepts the tool accepts, what it rejects the tool rejects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use mcp_runtime::context::SessionHandle;
use mcp_runtime::extract::StateMap;
use mcp_runtime::schema::make_client_compatible;
use mcp_runtime::tool::ToolCall;
use mcp_runtime::{CallError, RequestContext, RequestId, Tool, ToolFactory, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A unit enum.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
enum Color {
    Red,
    Green,
}

/// Variants with docs: schemars writes these as `oneOf` of `const`s.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum Level {
    /// Barely
    Low,
    /// Very much
    VeryHigh,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Shape {
    Circle { r: f64 },
    Square { side: f64 },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
enum External {
    Unit,
    Struct { r: f64 },
    Tuple(i32, String),
    Newtype(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Num(i64),
    Text(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
enum Untagged {
    Num(i64),
    Words(Vec<String>),
}

/// A struct whose field names are JSON Schema keywords: data, not keywords.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Tricky {
    x: f64,
    y: Option<f64>,
    nullable: Option<String>,
    r#type: String,
    default: Option<u8>,
    #[serde(default, rename = "anyOf")]
    any_of: Vec<u8>,
    #[serde(rename = "oneOf")]
    one_of: Option<Color>,
    r#const: Option<bool>,
    #[serde(rename = "enum")]
    enumeration: Option<Level>,
    #[serde(rename = "$ref")]
    reference: Option<String>,
}

/// A recursive type: the one place `$defs`/`$ref` may appear.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Tree {
    label: String,
    children: Vec<Tree>,
    parent: Option<Box<Tree>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Renamed {
    #[serde(rename = "X")]
    x_val: i32,
    #[serde(default = "seven")]
    with_default: u32,
    opt_thing: Option<Color>,
}

fn seven() -> u32 {
    7
}

/// What every tool returns, so each has an `outputSchema`; the `Option`s
/// are `None` in the samples, which is what clients will validate.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
struct Report {
    received: usize,
    note: Option<String>,
    level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    tree: Option<Tree>,
}

fn report() -> Report {
    Report { received: 1, ..Report::default() }
}

#[mcp_tool]
#[allow(clippy::too_many_arguments)] // one parameter per argument, as in a real tool
async fn primitives(
    /// A signed integer
    int: i64,
    small: u8,
    float: f64,
    flag: bool,
    text: String,
    letter: char,
    maybe: Option<String>,
    #[mcp(default = 3)] count: u32,
) -> Report {
    let _ = (int, small, float, flag, text, letter, maybe, count);
    report()
}

#[mcp_tool]
async fn collections(
    names: Vec<String>,
    scores: HashMap<String, i32>,
    colors: BTreeMap<String, Color>,
    by_id: BTreeMap<u32, String>,
    pair: (i32, String),
    tags: Option<Vec<String>>,
    unique: BTreeSet<i32>,
) -> Report {
    let _ = (names, scores, colors, by_id, pair, tags, unique);
    report()
}

#[mcp_tool]
#[allow(clippy::too_many_arguments)]
async fn enums(
    color: Color,
    /// How much
    level: Level,
    shape: Shape,
    external: External,
    adjacent: Adjacent,
    untagged: Untagged,
    maybe_color: Option<Color>,
    #[mcp(default = Level::Low)] default_level: Level,
) -> Report {
    let _ = (color, level, shape, external, adjacent, untagged, maybe_color, default_level);
    report()
}

#[mcp_tool]
async fn nested(tricky: Tricky, renamed: Renamed, any: serde_json::Value, maybe_tricky: Option<Tricky>) -> Report {
    let _ = (tricky, renamed, any, maybe_tricky);
    report()
}

#[mcp_tool]
async fn recursive(tree: Tree, maybe_tree: Option<Tree>, forest: Vec<Tree>) -> Tree {
    let _ = (maybe_tree, forest);
    tree
}

#[mcp_tool]
async fn nothing() -> Report {
    report()
}

#[mcp_tool]
async fn reports(count: usize) -> Vec<Report> {
    (0..count).map(|_| report()).collect()
}

#[mcp_tool]
async fn maybe_tree(found: bool) -> Option<Tree> {
    found.then(|| Tree { label: "t".into(), children: vec![], parent: None })
}

#[mcp_tool]
async fn forest() -> Vec<Tree> {
    vec![Tree {
        label: "t".into(),
        children: vec![Tree { label: "c".into(), children: vec![], parent: None }],
        parent: None,
    }]
}

#[mcp_tool]
async fn level() -> Level {
    Level::VeryHigh
}

#[mcp_tool]
async fn shape() -> Shape {
    Shape::Circle { r: 1.0 }
}

#[mcp_tool]
async fn count() -> u8 {
    7
}

#[mcp_tool]
async fn words() -> String {
    "some words".into()
}

#[mcp_tool]
async fn either(number: bool) -> Untagged {
    if number { Untagged::Num(1) } else { Untagged::Words(vec!["w".into()]) }
}

/// Every result that is not an object: its own schema (2026-07-28) and the
/// wrapped one (earlier versions) are valid 2020-12, client-shaped, and
/// describe what the tool sends, bare and wrapped.
#[tokio::test]
async fn non_object_results_validate_bare_and_wrapped() {
    let cases: Vec<(Tool, Vec<Value>)> = vec![
        (<reports as ToolFactory>::tool(), vec![json!({"count": 0}), json!({"count": 2})]),
        (<maybe_tree as ToolFactory>::tool(), vec![json!({"found": true}), json!({"found": false})]),
        (<forest as ToolFactory>::tool(), vec![json!({})]),
        (<level as ToolFactory>::tool(), vec![json!({})]),
        (<shape as ToolFactory>::tool(), vec![json!({})]),
        (<count as ToolFactory>::tool(), vec![json!({})]),
        (<words as ToolFactory>::tool(), vec![json!({})]),
        (<either as ToolFactory>::tool(), vec![json!({"number": true}), json!({"number": false})]),
    ];
    for (tool, samples) in cases {
        let name = tool.name();
        let bare = tool.result_schema().unwrap_or_else(|| panic!("{name} has a schema")).clone();
        let wrapped = Value::Object(tool.output_schema().unwrap().clone());
        assert_valid_2020_12(name, &bare);
        assert_valid_2020_12(name, &wrapped);
        assert_client_compatible(&wrapped, Direction::Output);
        // `shape` is an object of an internally tagged enum: not wrapped.
        assert_eq!(tool.wraps_result(), name != "shape", "{name}: {bare}");
        for sample in samples {
            let out = tool.call(call(&sample)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            let out: Value = serde_json::from_str(out.json().unwrap().get()).unwrap();
            if let Err(e) = jsonschema::draft202012::validate(&bare, &out) {
                panic!("{name}: {out} does not match its own schema: {e}\n{bare:#}");
            }
            let sent = if tool.wraps_result() { json!({"result": out}) } else { out };
            if let Err(e) = jsonschema::draft202012::validate(&wrapped, &sent) {
                panic!("{name}: {sent} does not match the published outputSchema: {e}\n{wrapped:#}");
            }
        }
    }
}

struct Case {
    tool: Tool,
    valid: Vec<Value>,
    invalid: Vec<Value>,
}

fn cases() -> Vec<Case> {
    let prim = json!({"int": -5, "small": 255, "float": 1.5, "flag": true, "text": "hi", "letter": "x"});
    let with = |base: &Value, key: &str, v: Value| {
        let mut base = base.clone();
        base[key] = v;
        base
    };
    let without = |base: &Value, key: &str| {
        let mut base = base.clone();
        base.as_object_mut().unwrap().remove(key);
        base
    };
    let coll = json!({
        "names": ["a"], "scores": {"a": 1}, "colors": {"a": "Red"}, "by_id": {"1": "one"},
        "pair": [1, "x"], "unique": [1, 2],
    });
    let en = json!({
        "color": "Green", "level": "very-high", "shape": {"kind": "circle", "r": 1.0},
        "external": "Unit", "adjacent": {"t": "Num", "c": 3}, "untagged": ["a"],
    });
    let tricky = json!({"x": 1.0, "type": "t"});
    let nest = json!({"tricky": tricky, "renamed": {"X": 1}, "any": [1, "two"]});
    let tree = json!({"label": "root", "children": [{"label": "leaf", "children": []}]});
    let rec = json!({"tree": tree, "forest": []});
    vec![
        Case {
            tool: <primitives as ToolFactory>::tool(),
            valid: vec![
                prim.clone(),
                with(&with(&prim, "maybe", json!("m")), "count", json!(9)),
                with(&prim, "int", json!(i64::MIN)),
            ],
            invalid: vec![
                with(&prim, "small", json!(256)),
                with(&prim, "small", json!(-1)),
                with(&prim, "int", json!("5")),
                with(&prim, "float", json!("1.5")),
                with(&prim, "flag", json!(1)),
                with(&prim, "letter", json!("xy")),
                with(&prim, "maybe", json!(5)),
                with(&prim, "count", json!(-1)),
                with(&prim, "extra", json!(1)),
                without(&prim, "text"),
                json!([1, 2]),
            ],
        },
        Case {
            tool: <collections as ToolFactory>::tool(),
            valid: vec![
                coll.clone(),
                with(&coll, "tags", json!(["t"])),
                with(&coll, "names", json!([])),
                with(&coll, "scores", json!({})),
            ],
            invalid: vec![
                with(&coll, "names", json!("a")),
                with(&coll, "names", json!([1])),
                with(&coll, "scores", json!({"a": "1"})),
                with(&coll, "colors", json!({"a": "Blue"})),
                with(&coll, "pair", json!([1])),
                with(&coll, "pair", json!([1, "x", 2])),
                with(&coll, "pair", json!(["x", 1])),
                // (`unique: [1, 1]` breaks `uniqueItems`, but a `BTreeSet` quietly dedups it.)
                with(&coll, "unique", json!([1, "x"])),
                with(&coll, "tags", json!("t")),
                without(&coll, "by_id"),
            ],
        },
        Case {
            tool: <enums as ToolFactory>::tool(),
            valid: vec![
                en.clone(),
                with(&en, "shape", json!({"kind": "square", "side": 2.0})),
                with(&en, "external", json!({"Struct": {"r": 1.0}})),
                with(&en, "external", json!({"Tuple": [1, "x"]})),
                with(&en, "external", json!({"Newtype": "n"})),
                with(&en, "adjacent", json!({"t": "Text", "c": "x"})),
                with(&en, "untagged", json!(5)),
                with(&with(&en, "maybe_color", json!("Red")), "default_level", json!("low")),
                // Inside a union nothing is promised: serde drops such a
                // field unseen, and the schema says nothing against it.
                with(&en, "external", json!({"Struct": {"r": 1.0, "extra": 2}})),
                with(&en, "shape", json!({"kind": "circle", "r": 1.0, "extra": 2})),
            ],
            invalid: vec![
                with(&en, "color", json!("Blue")),
                with(&en, "color", json!("red")),
                with(&en, "level", json!("VeryHigh")),
                with(&en, "shape", json!({"kind": "triangle"})),
                with(&en, "shape", json!({"kind": "circle"})),
                with(&en, "external", json!("Struct")),
                with(&en, "external", json!({"Unknown": 1})),
                with(&en, "adjacent", json!({"t": "Num", "c": "x"})),
                with(&en, "untagged", json!("words")),
                with(&en, "maybe_color", json!("Blue")),
                with(&en, "default_level", json!(1)),
            ],
        },
        Case {
            tool: <nested as ToolFactory>::tool(),
            valid: vec![
                nest.clone(),
                with(
                    &nest,
                    "tricky",
                    json!({
                        "x": 1.0, "y": 2.0, "nullable": "n", "type": "t", "default": 1, "anyOf": [1],
                        "oneOf": "Red", "const": true, "enum": "low", "$ref": "r",
                    }),
                ),
                with(&nest, "renamed", json!({"X": 1, "withDefault": 2, "optThing": "Green"})),
                with(&nest, "any", json!(null)),
                with(&nest, "maybe_tricky", tricky.clone()),
            ],
            invalid: vec![
                with(&nest, "tricky", json!({"x": 1.0})),
                with(&nest, "tricky", with(&tricky, "nullable", json!(1))),
                with(&nest, "tricky", with(&tricky, "anyOf", json!(["x"]))),
                with(&nest, "tricky", with(&tricky, "enum", json!("medium"))),
                with(&nest, "renamed", json!({"x_val": 1})),
                with(&nest, "renamed", json!({"X": 1, "unknown": 1})),
                with(&nest, "renamed", json!({"X": 1, "optThing": "Blue"})),
                without(&nest, "any"),
                // Nested objects are as strict as the root.
                with(&nest, "tricky", with(&tricky, "extra", json!(1))),
                with(&nest, "maybe_tricky", with(&tricky, "extra", json!(1))),
            ],
        },
        Case {
            tool: <recursive as ToolFactory>::tool(),
            valid: vec![
                rec.clone(),
                with(&rec, "maybe_tree", tree.clone()),
                with(&rec, "forest", json!([tree.clone(), {"label": "x", "children": [], "parent": tree.clone()}])),
            ],
            invalid: vec![
                with(&rec, "tree", json!({"label": "root"})),
                with(&rec, "tree", json!({"label": "root", "children": [{"label": 1, "children": []}]})),
                with(&rec, "forest", json!([{"label": "x", "children": [], "parent": {"label": 2}}])),
                // Through `$defs`/`$ref` too.
                with(&rec, "tree", json!({"label": "r", "children": [{"label": "l", "children": [], "x": 1}]})),
            ],
        },
        Case {
            tool: <nothing as ToolFactory>::tool(),
            valid: vec![json!({})],
            invalid: vec![json!({"a": 1}), json!("x")],
        },
    ]
}

fn call(args: &Value) -> ToolCall {
    let (tx, _rx) = mpsc::channel(1);
    let cx = RequestContext::new(RequestId::Number(1), None, CancellationToken::new(), SessionHandle::new(tx));
    ToolCall::new(Some(serde_json::value::to_raw_value(args).unwrap()), cx, Arc::new(StateMap::default()))
}

#[tokio::test]
async fn every_schema_is_valid_client_compatible_and_agrees_with_the_tool() {
    for case in cases() {
        let name = case.tool.name();
        let input = Value::Object(case.tool.input_schema().clone());
        assert_valid_2020_12(name, &input);
        assert_client_compatible(&input, Direction::Input);
        let validator = jsonschema::draft202012::new(&input).unwrap();
        for sample in &case.valid {
            if let Err(e) = validator.validate(sample) {
                panic!("{name}: schema rejects valid {sample}: {e}\n{input:#}");
            }
            let out = case.tool.call(call(sample)).await;
            let out = out.unwrap_or_else(|e| panic!("{name}: tool rejects valid {sample}: {e}"));
            let out: Value = serde_json::from_str(out.json().expect("a value").get()).unwrap();
            let output_schema = Value::Object(case.tool.output_schema().expect("object output").clone());
            if let Err(e) = jsonschema::draft202012::validate(&output_schema, &out) {
                panic!("{name}: output {out} does not match outputSchema: {e}\n{output_schema:#}");
            }
        }
        for sample in &case.invalid {
            assert!(!validator.is_valid(sample), "{name}: schema accepts invalid {sample}\n{input:#}");
            match case.tool.call(call(sample)).await {
                Err(CallError::InvalidArguments(_)) => {}
                other => panic!(
                    "{name}: tool did not reject invalid {sample}: {:?}",
                    other.map(|o| o.json().map(|j| j.get().to_owned()))
                ),
            }
        }
        let output = Value::Object(case.tool.output_schema().unwrap().clone());
        assert_valid_2020_12(name, &output);
        assert_client_compatible(&output, Direction::Output);
    }
}

#[test]
fn keyword_named_fields_survive() {
    let tool = <nested as ToolFactory>::tool();
    let props = &tool.input_schema()["properties"]["tricky"]["properties"];
    for field in ["x", "y", "nullable", "type", "default", "anyOf", "oneOf", "const", "enum", "$ref"] {
        assert!(props.get(field).is_some(), "property `{field}` lost: {props:#}");
    }
    assert_eq!(props["nullable"], json!({"type": "string"}));
    assert_eq!(props["oneOf"], json!({"description": "A unit enum.", "enum": ["Red", "Green"], "type": "string"}));
    assert_eq!(props["anyOf"]["default"], json!([]));
    let required = &tool.input_schema()["properties"]["tricky"]["required"];
    assert_eq!(required, &json!(["x", "type"]));
}

#[test]
fn parameter_docs_and_defaults_are_published() {
    let tool = <primitives as ToolFactory>::tool();
    let props = &tool.input_schema()["properties"];
    assert_eq!(props["int"]["description"], "A signed integer");
    assert_eq!(props["count"]["default"], 3);
    assert_eq!(props["maybe"], json!({"type": "string"}));
    let tool = <enums as ToolFactory>::tool();
    let props = &tool.input_schema()["properties"];
    assert_eq!(props["level"]["enum"], json!(["low", "very-high"]));
    assert_eq!(props["level"]["description"], "How much\n\n- `low`: Barely\n- `very-high`: Very much");
    assert_eq!(props["default_level"]["default"], "low");
    assert_eq!(props["maybe_color"]["enum"], json!(["Red", "Green"]));
    let required: Vec<_> = tool.input_schema()["required"].as_array().unwrap().iter().collect();
    assert!(!required.contains(&&json!("maybe_color")) && !required.contains(&&json!("default_level")));
}

#[test]
fn recursive_types_and_only_they_use_defs() {
    let tool = <recursive as ToolFactory>::tool();
    let defs = tool.input_schema()["$defs"].as_object().unwrap();
    assert_eq!(defs.keys().collect::<Vec<_>>(), ["Tree"]);
    for other in [<primitives as ToolFactory>::tool(), <nested as ToolFactory>::tool()] {
        assert!(!other.input_schema().contains_key("$defs"), "{}", other.name());
    }
}

#[test]
fn output_schema_keeps_the_nulls_a_tool_really_sends() {
    let tool = <nothing as ToolFactory>::tool();
    let out = Value::Object(tool.output_schema().unwrap().clone());
    assert_eq!(out["properties"]["note"]["type"], json!(["string", "null"]));
    assert!(out.get("title").is_none() && out.get("$schema").is_none());
    // Required as serialized: `note` is always sent, `skipped` may be omitted.
    let required = out["required"].as_array().unwrap();
    assert!(required.contains(&json!("note")) && !required.contains(&json!("skipped")));
}

#[test]
fn rewriting_touches_schema_positions_only() {
    let mut schema = json!({
        "type": "object",
        "properties": {
            "nullable": {"type": ["string", "null"], "nullable": true},
            "default": {"type": "integer", "default": null},
            "anyOf": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "kept"},
            "const": {"const": "x"},
            "type": {"oneOf": [{"const": "a"}, {"const": "b", "description": "B!"}, {"type": "null"}]},
            "any": true,
        },
        "default": {"nullable": null, "type": ["a", "null"]},
        "examples": [{"anyOf": [null]}],
        "enum": [{"const": 1}],
    });
    make_client_compatible(&mut schema);
    let once = schema.clone();
    make_client_compatible(&mut schema);
    assert_eq!(schema, once, "rewriting is idempotent");
    assert_eq!(
        schema,
        json!({
            "type": "object",
            "properties": {
                "nullable": {"type": "string"},
                "default": {"type": "integer"},
                "anyOf": {"type": "integer", "description": "kept"},
                "const": {"enum": ["x"]},
                "type": {"enum": ["a", "b"], "description": "- `b`: B!"},
                "any": {},
            },
            "default": {"nullable": null, "type": ["a", "null"]},
            "examples": [{"anyOf": [null]}],
            "enum": [{"const": 1}],
        })
    );
}

fn assert_valid_2020_12(name: &str, schema: &Value) {
    if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
        panic!("{name}: not a valid 2020-12 schema: {e}\n{schema:#}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
}

/// The shape rules of the issue, checked independently of the code that
/// enforces them. Outputs may admit `null` (as `[T, "null"]`), since a
/// tool's `None` is sent as `null`; everything else holds for both.
fn assert_client_compatible(schema: &Value, direction: Direction) {
    let root = schema.as_object().expect("root schema is an object");
    assert_eq!(root.get("type"), Some(&json!("object")), "root type: {schema:#}");
    // (An output that is an enum of objects has its variants' properties instead.)
    let variants = root.contains_key("oneOf") || root.contains_key("anyOf");
    assert!(
        root.get("properties").is_some_and(Value::is_object) || (direction == Direction::Output && variants),
        "root properties: {schema:#}"
    );
    assert!(!root.contains_key("title"), "root title: {schema:#}");
    if direction == Direction::Input {
        assert!(root.get("required").is_some_and(Value::is_array), "root required: {schema:#}");
        assert_eq!(root.get("additionalProperties"), Some(&json!(false)), "root additionalProperties: {schema:#}");
    }
    let defs = root.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut refs = Vec::new();
    check_subschema(schema, direction, true, &mut refs, "#");
    for (r, at) in &refs {
        if r == "#" {
            assert_eq!(direction, Direction::Output, "`$ref: #` at {at} in an input schema");
            continue;
        }
        let target = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("$ref {r} at {at} not into $defs"));
        assert!(defs.contains_key(target), "$ref {r} at {at} has no definition");
    }
    for (name, def) in &defs {
        assert!(reaches(def, name, &defs, &mut BTreeSet::new()), "$defs/{name} is not recursive: inline it");
    }
}

fn check_subschema(schema: &Value, direction: Direction, is_root: bool, refs: &mut Vec<(String, String)>, at: &str) {
    let map = match schema {
        Value::Object(map) => map,
        Value::Bool(false) => return,
        other => panic!("subschema at {at} is {other}, expected an object"),
    };
    assert!(!map.contains_key("$schema"), "$schema at {at}");
    assert!(!map.contains_key("nullable"), "nullable at {at}");
    assert!(!map.contains_key("const"), "const instead of enum at {at}");
    assert!(map.get("default") != Some(&Value::Null), "default null at {at}");
    if !is_root {
        assert!(!map.contains_key("$defs") && !map.contains_key("definitions"), "nested $defs at {at}");
    }
    match (map.get("type"), direction) {
        (None | Some(Value::String(_)), _) => {}
        (Some(Value::Array(types)), Direction::Output) => {
            assert!(types.len() == 2 && types.contains(&json!("null")), "type {types:?} at {at}")
        }
        (Some(other), _) => panic!("type {other} at {at}: one type name expected"),
    }
    if direction == Direction::Input {
        assert_ne!(map.get("type"), Some(&json!("null")), "null type at {at}");
        if let Some(Value::Array(values)) = map.get("enum") {
            assert!(!values.contains(&Value::Null), "null in enum at {at}");
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            assert!(branches.len() > 1, "{key} with one branch at {at}");
            let all_constants = branches.iter().all(|b| {
                b.as_object().is_some_and(|b| {
                    b.contains_key("enum") && b.keys().all(|k| ["enum", "type", "description"].contains(&k.as_str()))
                })
            });
            assert!(!all_constants, "{key} of constants instead of one enum list at {at}");
        }
    }
    if let Some(Value::String(r)) = map.get("$ref") {
        refs.push((r.clone(), at.to_owned()));
    }
    for_each_subschema(map, |key, sub| check_subschema(sub, direction, false, refs, &format!("{at}/{key}")));
}

/// Calls `f` on every subschema of `map` (and only on subschemas).
fn for_each_subschema(map: &Map<String, Value>, mut f: impl FnMut(String, &Value)) {
    for (key, value) in map {
        match key.as_str() {
            "items"
            | "additionalProperties"
            | "propertyNames"
            | "contains"
            | "not"
            | "if"
            | "then"
            | "else"
            | "unevaluatedProperties"
            | "unevaluatedItems" => f(key.clone(), value),
            "prefixItems" | "allOf" | "anyOf" | "oneOf" => {
                for (i, sub) in value.as_array().unwrap().iter().enumerate() {
                    f(format!("{key}/{i}"), sub);
                }
            }
            "properties" | "patternProperties" | "$defs" | "dependentSchemas" => {
                for (name, sub) in value.as_object().unwrap() {
                    f(format!("{key}/{name}"), sub);
                }
            }
            _ => {}
        }
    }
}

/// True if `schema` refers (directly or through other definitions) to `$defs/name`.
fn reaches(schema: &Value, name: &str, defs: &Map<String, Value>, seen: &mut BTreeSet<String>) -> bool {
    let Value::Object(map) = schema else { return false };
    if let Some(Value::String(r)) = map.get("$ref")
        && let Some(target) = r.strip_prefix("#/$defs/")
    {
        if target == name {
            return true;
        }
        if seen.insert(target.to_owned()) && defs.get(target).is_some_and(|d| reaches(d, name, defs, seen)) {
            return true;
        }
    }
    let mut found = false;
    for_each_subschema(map, |_, sub| found = found || reaches(sub, name, defs, seen));
    found
}
