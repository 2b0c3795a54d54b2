//! JSON Schemas for tool inputs and outputs, shaped for what MCP clients
//! accept: a root `{"type":"object","properties","required",
//! "additionalProperties":false}`, no root `title`, no `$schema`, optional
//! values as their inner type (no `nullable`, no `[T, "null"]`), enums as
//! `enum` lists, nested types inlined, `$defs`/`$ref` only where a type is
//! recursive.
//!
//! schemars writes standard 2020-12; [`make_client_compatible`] then
//! rewrites, in schema positions only, what clients choke on. Output schemas
//! keep their `null`s: a tool's `None` is sent as `null` in
//! `structuredContent`, and clients validate that against `outputSchema`.
//!
//! Input objects are strict at every depth: each struct-like object
//! (one with `properties`) that does not say otherwise gets
//! `"additionalProperties": false`, and the runtime refuses an unknown field
//! exactly where the published schema says so (`ArgumentSchema::rejects_unknown_field`), so
//! the two cannot disagree. A map, a `#[serde(flatten)]` map, or a type whose
//! schema sets `additionalProperties` itself (for example with
//! `#[schemars(extend("additionalProperties" = true))]`) keeps what it says.
//! Inside `anyOf`/`oneOf`/`allOf` (enums with data, untagged enums) nothing
//! is added: serde buffers those values and drops unknown fields before they
//! can be seen, so the schema does not promise a refusal there.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

/// Inlines every non-recursive type; a recursive one becomes a `$ref` into
/// the root's `$defs` (schemars only emits `$ref`s it cannot inline).
fn settings() -> SchemaSettings {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    settings
}

/// Arguments are deserialized, so `#[serde(default)]` fields are optional
/// and `skip_deserializing` ones absent.
fn input_generator() -> SchemaGenerator {
    settings().for_deserialize().into_generator()
}

/// Builds a tool's `inputSchema`, one property per ordinary parameter.
///
/// The generated code calls [`InputSchema::param`] once per parameter, in
/// declaration order. (`properties` keeps that order only when serde_json's
/// `preserve_order` feature is on; `required` always does.)
pub struct InputSchema {
    generator: SchemaGenerator,
    properties: Map<String, Value>,
    required: Vec<Value>,
    /// Set by [`InputSchema::whole`]: one type's schema is the whole root.
    whole: Option<Value>,
}

impl Default for InputSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl InputSchema {
    pub fn new() -> Self {
        InputSchema { generator: input_generator(), properties: Map::new(), required: Vec::new(), whole: None }
    }

    /// Adds parameter `name` of type `T`. For an `Option<U>` parameter the
    /// macro passes `U` and `required = false`.
    pub fn param<T: JsonSchema>(&mut self, name: &str, description: Option<&str>, required: bool) {
        self.param_with_default::<T>(name, description, required, None)
    }

    /// As [`InputSchema::param`], also publishing the parameter's default.
    pub fn param_with_default<T: JsonSchema>(
        &mut self,
        name: &str,
        description: Option<&str>,
        required: bool,
        default: Option<Value>,
    ) {
        let mut value = self.generator.subschema_for::<T>().to_value();
        // `true` (any value, e.g. `serde_json::Value`) has nowhere to put a
        // description; `{}` means the same and does.
        if value == Value::Bool(true) {
            value = Value::Object(Map::new());
        }
        if let Value::Object(map) = &mut value {
            if let Some(d) = description {
                map.insert("description".into(), Value::String(d.to_owned()));
            }
            if let Some(d) = default {
                map.insert("default".into(), d);
            }
        }
        self.properties.insert(name.to_owned(), value);
        if required {
            self.required.push(Value::String(name.to_owned()));
        }
    }

    /// Makes `T`'s own schema the whole `inputSchema` (a `#[mcp(flatten)]`
    /// parameter): its properties are the tool's arguments, and root-level
    /// keywords (`allOf`, `if`/`then`/`else`, `$defs`, even `$schema`) are
    /// published as the type states them. Returns `T`'s root `type` when it
    /// is not `"object"`, which MCP requires of every `inputSchema`.
    pub fn whole<T: JsonSchema>(&mut self) -> Result<(), String> {
        let root = whole_schema::<T>();
        let kind = root.get("type").cloned();
        self.whole = Some(Value::Object(root));
        match kind {
            Some(Value::String(t)) if t == "object" => Ok(()),
            Some(other) => Err(format!("its schema has type {other}")),
            None => Err("its schema has no `type`".to_owned()),
        }
    }

    pub fn finish(mut self) -> Map<String, Value> {
        if let Some(Value::Object(root)) = self.whole.take() {
            return root;
        }
        let mut root = Map::new();
        root.insert("type".into(), "object".into());
        root.insert("properties".into(), Value::Object(std::mem::take(&mut self.properties)));
        root.insert("required".into(), Value::Array(std::mem::take(&mut self.required)));
        root.insert("additionalProperties".into(), false.into());
        let defs = self.generator.take_definitions(true);
        if !defs.is_empty() {
            root.insert("$defs".into(), Value::Object(defs));
        }
        let mut root = Value::Object(root);
        make_client_compatible(&mut root);
        forbid_unknown_fields(&mut root);
        match root {
            Value::Object(map) => map,
            _ => unreachable!("root is built as an object"),
        }
    }
}

/// `T`'s schema as a whole `inputSchema`: its root schema with the same
/// rewrites as every input, minus a root `title`.
fn whole_schema<T: JsonSchema>() -> Map<String, Value> {
    let mut value = input_generator().root_schema_for::<T>().to_value();
    if value == Value::Bool(true) {
        value = Value::Object(Map::new());
    }
    if let Value::Object(map) = &mut value {
        map.remove("title");
    }
    make_client_compatible(&mut value);
    forbid_unknown_fields(&mut value);
    match value {
        Value::Object(map) => map,
        other => Map::from_iter([("not".to_owned(), other)]),
    }
}

/// One parameter's schema exactly as the `inputSchema` publishes it, with
/// the definitions its `$ref`s point into. The runtime rebuilds it only
/// when an argument had fields serde ignored, to decide which to refuse.
pub(crate) struct ArgumentSchema {
    schema: Value,
    defs: Map<String, Value>,
}

impl ArgumentSchema {
    pub(crate) fn of<T: JsonSchema>() -> ArgumentSchema {
        let mut generator = input_generator();
        let mut schema = generator.subschema_for::<T>().to_value();
        let mut defs = generator.take_definitions(true);
        for def in std::iter::once(&mut schema).chain(defs.values_mut()) {
            make_client_compatible(def);
            forbid_unknown_fields(def);
        }
        ArgumentSchema { schema, defs }
    }

    /// A `#[mcp(flatten)]` parameter: the whole `inputSchema`.
    pub(crate) fn whole<T: JsonSchema>() -> ArgumentSchema {
        let mut root = whole_schema::<T>();
        let defs = match root.remove("$defs") {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        ArgumentSchema { schema: Value::Object(root), defs }
    }

    /// The properties a whole-arguments schema requires.
    pub(crate) fn required(&self) -> Vec<&str> {
        self.schema
            .get("required")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |names| names.iter().filter_map(Value::as_str).collect())
    }

    /// For an unknown field serde skipped at `path` (inside this argument;
    /// its last step is the field's name): `Some(names the object takes)`
    /// when the published schema refuses the field there, `None` when it
    /// allows it or the place is inside a union the schema leaves open.
    pub(crate) fn rejects_unknown_field(&self, path: &[Step]) -> Option<Vec<String>> {
        let (Step::Key(field), parents) = path.split_last()? else { return None };
        let mut at = self.resolve(&self.schema)?;
        for step in parents {
            let next = match step {
                Step::Key(key) => at
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .or_else(|| at.get("additionalProperties").filter(|a| a.is_object())),
                Step::Index(index) => at
                    .get("prefixItems")
                    .and_then(|p| p.get(*index))
                    .or_else(|| at.get("items").filter(|i| i.is_object())),
            }?;
            at = self.resolve(next)?;
        }
        let properties = at.get("properties").and_then(Value::as_object)?;
        if at.get("additionalProperties") != Some(&Value::Bool(false)) || properties.contains_key(field) {
            return None;
        }
        Some(properties.keys().cloned().collect())
    }

    /// Follows `$ref`s into the definitions (or the root); `None` for a
    /// reference elsewhere or a cycle of pure references.
    fn resolve<'s>(&'s self, mut schema: &'s Value) -> Option<&'s Value> {
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { return Some(schema) };
            schema = match reference.strip_prefix("#/$defs/") {
                Some(name) => self.defs.get(name)?,
                None if reference == "#" => &self.schema,
                None => return None,
            };
        }
        None
    }
}

/// One step of a path into an argument's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// Adds `"additionalProperties": false` to every struct-like object of an
/// input schema that does not set it, following `properties`,
/// `additionalProperties`, `items`, `prefixItems` and `$defs`: exactly the
/// places [`ArgumentSchema::rejects_unknown_field`] walks, so the runtime
/// refuses an unknown field where, and only where, the schema says so.
pub(crate) fn forbid_unknown_fields(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties", "$defs"] {
        if let Some(Value::Object(entries)) = map.get_mut(key) {
            entries.values_mut().for_each(forbid_unknown_fields);
        }
    }
    for key in ["additionalProperties", "items"] {
        if let Some(child @ Value::Object(_)) = map.get_mut(key) {
            forbid_unknown_fields(child);
        }
    }
    if let Some(Value::Array(items)) = map.get_mut("prefixItems") {
        items.iter_mut().for_each(forbid_unknown_fields);
    }
}

/// The root key under which a non-object result is wrapped for protocol
/// versions that require `structuredContent` to be an object.
pub const WRAPPED_RESULT_KEY: &str = "result";

/// Marks a wrapped `outputSchema` so a client can unwrap
/// `structuredContent["result"]`: the marker FastMCP publishes and its
/// client unwraps, so FastMCP clients get the bare value too.
pub const WRAPPED_RESULT_MARKER: &str = "x-fastmcp-wrap-result";

/// A tool's output schemas, for results that have one.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    /// The schema of the value itself, any JSON type: what a 2026-07-28
    /// request gets (SEP-2106 allows any root type).
    pub value: Value,
    /// What versions up to 2025-11-25 get, which require an object: `value`
    /// itself when it describes an object, else
    /// `{"type":"object","properties":{"result":value},"required":["result"],
    /// "x-fastmcp-wrap-result":true}`. Always a JSON object.
    pub object: Value,
    /// Whether `object` is the wrapper.
    pub wrapped: bool,
}

/// The `outputSchema` for a tool returning `T`, or `None` when `T` has
/// nothing to describe: `()` (its schema is `null`) and types whose schema
/// admits any JSON (`serde_json::Value`) are sent as text only.
///
/// It describes `T` as serialized, and keeps `null` where `T` can serialize
/// one: clients check `structuredContent` against this schema, so an
/// `Option` field that is `None` must validate.
pub fn output_schema<T: JsonSchema>() -> Option<OutputSchema> {
    let mut generator = settings().for_serialize().into_generator();
    let schema: Schema = generator.root_schema_for::<T>();
    let mut value = schema.to_value();
    let Value::Object(map) = &mut value else { return None };
    map.remove("$schema");
    map.remove("title");
    const DESCRIBING: [&str; 10] =
        ["type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf", "properties", "items", "not"];
    if !DESCRIBING.iter().any(|k| map.contains_key(*k)) || map.get("type") == Some(&Value::String("null".into())) {
        return None;
    }
    rewrite_schema(&mut value, Nulls::Keep);
    // An enum whose variants are all objects (internally tagged, say) is an
    // object: say so at the root, where MCP looks, instead of wrapping it.
    if let Value::Object(map) = &mut value
        && !map.contains_key("type")
        && ["oneOf", "anyOf"].iter().any(|key| {
            map.get(*key).and_then(Value::as_array).is_some_and(|branches| {
                !branches.is_empty() && branches.iter().all(|b| b.get("type") == Some(&Value::String("object".into())))
            })
        })
    {
        map.insert("type".into(), Value::String("object".into()));
    }
    if value.get("type") == Some(&Value::String("object".into())) {
        return Some(OutputSchema { object: value.clone(), value, wrapped: false });
    }
    Some(OutputSchema { object: Value::Object(wrap_result_schema(value.clone())), value, wrapped: true })
}

/// `{"type":"object","properties":{"result":schema},...}`; the definitions
/// move to the wrapper's root, where their `$ref`s still point, and a `$ref`
/// to the old root now points at `result`.
fn wrap_result_schema(mut schema: Value) -> Map<String, Value> {
    let defs = schema.as_object_mut().and_then(|m| m.remove("$defs"));
    repoint_root_refs(&mut schema);
    let mut wrapper = Map::new();
    wrapper.insert("type".into(), "object".into());
    wrapper.insert("properties".into(), Value::Object(Map::from_iter([(WRAPPED_RESULT_KEY.to_owned(), schema)])));
    wrapper.insert("required".into(), Value::Array(vec![WRAPPED_RESULT_KEY.into()]));
    wrapper.insert(WRAPPED_RESULT_MARKER.into(), Value::Bool(true));
    if let Some(mut defs) = defs {
        repoint_root_refs(&mut defs);
        wrapper.insert("$defs".into(), defs);
    }
    wrapper
}

fn repoint_root_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("$ref") == Some(&Value::String("#".into())) {
                map.insert("$ref".into(), Value::String(format!("#/properties/{WRAPPED_RESULT_KEY}")));
            }
            map.values_mut().for_each(repoint_root_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(repoint_root_refs),
        _ => {}
    }
}

/// Rewrites an input schema into the shape clients accept. Only schema
/// positions are touched (a property *named* `nullable`, `type` or
/// `default` is data, not a keyword, and stays as it is):
/// - `"type": [T, "null"]` becomes `"type": T`; `nullable` is dropped;
///   `null` leaves `enum` lists and `default: null` is dropped;
/// - `anyOf`/`oneOf` lose `null` branches, and a single branch left is
///   merged into the schema that held it;
/// - `const: x` becomes `enum: [x]`, and a `oneOf`/`anyOf` whose branches
///   are all such constants becomes one `enum` list (branch descriptions
///   move into the description);
/// - the `true` schema becomes `{}`.
pub fn make_client_compatible(schema: &mut Value) {
    rewrite_schema(schema, Nulls::Strip);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Nulls {
    /// Inputs: an absent argument already means `None`, so `null` is not
    /// offered.
    Strip,
    /// Outputs: `None` is really sent as `null`.
    Keep,
}

/// Keywords whose value is one subschema.
const SINGLE_SUBSCHEMA: &[&str] = &[
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "contentSchema",
];
/// Keywords whose value is an array of subschemas.
const SUBSCHEMA_ARRAYS: &[&str] = &["prefixItems", "allOf", "anyOf", "oneOf", "items"];
/// Keywords whose value maps names to subschemas.
const SUBSCHEMA_MAPS: &[&str] = &["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];

fn rewrite_schema(schema: &mut Value, nulls: Nulls) {
    if *schema == Value::Bool(true) {
        *schema = Value::Object(Map::new());
        return;
    }
    let Value::Object(map) = schema else { return };
    // Children first: a branch merged into its parent below is already clean.
    for (key, child) in map.iter_mut() {
        let key = key.as_str();
        match child {
            Value::Object(_) | Value::Bool(_) if SINGLE_SUBSCHEMA.contains(&key) => rewrite_schema(child, nulls),
            Value::Array(items) if SUBSCHEMA_ARRAYS.contains(&key) => {
                items.iter_mut().for_each(|s| rewrite_schema(s, nulls))
            }
            Value::Object(entries) if SUBSCHEMA_MAPS.contains(&key) => {
                entries.values_mut().for_each(|s| rewrite_schema(s, nulls))
            }
            _ => {}
        }
    }
    if nulls == Nulls::Strip {
        strip_null(map);
    }
    if let Some(value) = map.remove("const") {
        map.entry("enum").or_insert_with(|| Value::Array(vec![value]));
    }
    for key in ["oneOf", "anyOf"] {
        collapse_constant_branches(map, key);
    }
}

fn strip_null(map: &mut Map<String, Value>) {
    map.remove("nullable");
    if let Some(Value::Array(types)) = map.get_mut("type") {
        if types.iter().any(|t| t != "null") {
            types.retain(|t| t != "null");
        }
        if types.len() == 1 {
            let only = types.pop().expect("one element");
            map.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && values.iter().any(|v| !v.is_null())
    {
        values.retain(|v| !v.is_null());
    }
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = map.get_mut(key) else { continue };
        if branches.iter().all(is_null_schema) {
            continue;
        }
        branches.retain(|b| !is_null_schema(b));
        if branches.len() == 1 {
            let only = branches.pop().expect("one element");
            map.remove(key);
            merge_into(map, only);
        }
    }
}

/// Merges a lone remaining branch into the schema that held it; the outer
/// schema's own keys (its description, say) win.
fn merge_into(map: &mut Map<String, Value>, branch: Value) {
    match branch {
        Value::Object(inner) => {
            for (k, v) in inner {
                map.entry(k).or_insert(v);
            }
        }
        // `false` accepts nothing; keep that meaning.
        Value::Bool(false) => {
            map.insert("not".into(), Value::Object(Map::new()));
        }
        _ => {}
    }
}

/// `{"type":"null"}`, `{"const":null}` or `{"enum":[null]}`, with or
/// without a description or title.
fn is_null_schema(v: &Value) -> bool {
    let Value::Object(m) = v else { return false };
    let mut only_null = false;
    for (k, v) in m {
        match k.as_str() {
            "type" if v == "null" => only_null = true,
            "enum" if v.as_array().is_some_and(|a| a.len() == 1 && a[0].is_null()) => only_null = true,
            "const" if v.is_null() => only_null = true,
            "description" | "title" => {}
            _ => return false,
        }
    }
    only_null
}

/// `oneOf: [{const: "a"}, {const: "b"}]` (schemars' shape for an enum whose
/// variants have doc comments) becomes `enum: ["a", "b"]`.
fn collapse_constant_branches(map: &mut Map<String, Value>, key: &str) {
    let Some(Value::Array(branches)) = map.get(key) else { return };
    if branches.is_empty() {
        return;
    }
    let mut values = Vec::new();
    let mut types = Vec::new();
    let mut notes = Vec::new();
    for branch in branches {
        let Value::Object(b) = branch else { return };
        let Some(Value::Array(enum_values)) = b.get("enum") else { return };
        if b.keys().any(|k| !matches!(k.as_str(), "enum" | "type" | "description" | "title")) {
            return;
        }
        if let Some(t) = b.get("type")
            && !types.contains(t)
        {
            types.push(t.clone());
        }
        if let Some(Value::String(d)) = b.get("description") {
            for v in enum_values {
                let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                notes.push(format!("- `{shown}`: {d}"));
            }
        }
        values.extend(enum_values.iter().cloned());
    }
    map.remove(key);
    if types.len() == 1 && !map.contains_key("type") {
        map.insert("type".into(), types.pop().expect("one element"));
    }
    map.insert("enum".into(), Value::Array(values));
    if !notes.is_empty() {
        let notes = notes.join("\n");
        let description = match map.get("description") {
            Some(Value::String(d)) => format!("{d}\n\n{notes}"),
            _ => notes,
        };
        map.insert("description".into(), Value::String(description));
    }
}
