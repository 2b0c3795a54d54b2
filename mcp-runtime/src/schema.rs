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

/// Builds a tool's `inputSchema`, one property per ordinary parameter.
///
/// The generated code calls [`InputSchema::param`] once per parameter, in
/// declaration order. (`properties` keeps that order only when serde_json's
/// `preserve_order` feature is on; `required` always does.)
pub struct InputSchema {
    generator: SchemaGenerator,
    properties: Map<String, Value>,
    required: Vec<Value>,
}

impl Default for InputSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl InputSchema {
    pub fn new() -> Self {
        InputSchema {
            // Arguments are deserialized, so `#[serde(default)]` fields are
            // optional and `skip_deserializing` ones absent.
            generator: settings().for_deserialize().into_generator(),
            properties: Map::new(),
            required: Vec::new(),
        }
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

    pub fn finish(mut self) -> Map<String, Value> {
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
        match root {
            Value::Object(map) => map,
            _ => unreachable!("root is built as an object"),
        }
    }
}

/// The `outputSchema` for a tool returning `T`, if `T` is a JSON object
/// (MCP requires `outputSchema` to describe an object; anything else is sent
/// as text only).
///
/// It describes `T` as serialized, and keeps `null` where `T` can serialize
/// one: clients check `structuredContent` against this schema, so an
/// `Option` field that is `None` must validate.
pub fn output_schema<T: JsonSchema>() -> Option<Map<String, Value>> {
    let mut generator = settings().for_serialize().into_generator();
    let schema: Schema = generator.root_schema_for::<T>();
    let mut value = schema.to_value();
    let Value::Object(map) = &mut value else { return None };
    if map.get("type") != Some(&Value::String("object".into())) {
        return None;
    }
    map.remove("$schema");
    map.remove("title");
    rewrite_schema(&mut value, Nulls::Keep);
    match value {
        Value::Object(map) => Some(map),
        _ => None,
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
