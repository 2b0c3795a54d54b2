//! JSON Schemas for tool inputs and outputs, shaped for what MCP clients
//! accept: a root `{"type":"object","properties","required",
//! "additionalProperties":false}`, no root `title`, no `$schema`, optional
//! values as their inner type (no `nullable`, no `[T, "null"]`), nested types
//! inlined, `$defs`/`$ref` only where a type is recursive.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

fn generator() -> SchemaGenerator {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    settings.into_generator()
}

/// Builds a tool's `inputSchema`, one property per ordinary parameter.
///
/// The generated code calls [`InputSchema::param`] once per parameter, in
/// declaration order; the order is kept in `properties` and `required`.
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
        InputSchema { generator: generator(), properties: Map::new(), required: Vec::new() }
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
        let schema = self.generator.subschema_for::<T>();
        let mut value = schema.to_value();
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
pub fn output_schema<T: JsonSchema>() -> Option<Map<String, Value>> {
    let mut generator = generator();
    let schema: Schema = generator.root_schema_for::<T>();
    let mut value = schema.to_value();
    let Value::Object(map) = &mut value else { return None };
    if map.get("type") != Some(&Value::String("object".into())) {
        return None;
    }
    map.remove("$schema");
    map.remove("title");
    make_client_compatible(&mut value);
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Rewrites the constructs clients reject, everywhere in the tree:
/// `"type": [T, "null"]` becomes `"type": T`; `anyOf`/`oneOf` with a
/// `{"type":"null"}` branch loses that branch (and collapses when one branch
/// is left); `nullable` is dropped.
pub fn make_client_compatible(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("nullable");
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.pop().expect("one element");
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(branches)) = map.get_mut(key) {
                    branches.retain(|b| !is_null_schema(b));
                    if branches.len() == 1 {
                        let only = branches.pop().expect("one element");
                        map.remove(key);
                        if let Value::Object(inner) = only {
                            for (k, v) in inner {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            // A `null` default means "absent" for an optional value: drop it.
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            for v in map.values_mut() {
                make_client_compatible(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_client_compatible),
        _ => {}
    }
}

fn is_null_schema(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1 && m.get("type") == Some(&Value::String("null".into())))
}
