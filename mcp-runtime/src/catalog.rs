//! The Markdown tool catalog `--list-tools` prints: the same facts
//! `tools/list` serves (name, title, description, annotations, parameters,
//! output), for people reading a binary's capabilities.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::tool::{Annotations, Tool};

/// Renders the catalog for a server and its tools, in listing order.
pub fn markdown<'a>(
    server_name: &str,
    version: &str,
    instructions: Option<&str>,
    tools: impl IntoIterator<Item = &'a Tool>,
) -> String {
    let tools: Vec<&Tool> = tools.into_iter().collect();
    let mut out = String::new();
    let _ = writeln!(out, "# {server_name} {version}\n");
    if let Some(instructions) = instructions {
        let _ = writeln!(out, "{}\n", instructions.trim());
    }
    let plural = if tools.len() == 1 { "" } else { "s" };
    let _ = writeln!(out, "{} tool{plural}.", tools.len());
    for tool in tools {
        out.push('\n');
        render_tool(&mut out, tool);
    }
    out
}

fn render_tool(out: &mut String, tool: &Tool) {
    let meta = tool.meta();
    match meta.title {
        Some(title) => {
            let _ = writeln!(out, "## `{}`: {title}\n", meta.name);
        }
        None => {
            let _ = writeln!(out, "## `{}`\n", meta.name);
        }
    }
    if let Some(description) = meta.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    if let Some(hints) = annotation_text(&meta.annotations) {
        let _ = writeln!(out, "Hints: {hints}.\n");
    }
    render_parameters(out, tool.input_schema());
    match tool.result_schema() {
        Some(schema) if tool.wraps_result() => {
            let _ = writeln!(
                out,
                "**Output** (`structuredContent`): {}; before protocol 2026-07-28 wrapped as `{{\"result\": ...}}`.",
                value_summary(schema)
            );
        }
        Some(schema) => {
            let _ = writeln!(out, "**Output** (`structuredContent`): {}.", value_summary(schema));
        }
        None => {
            let _ = writeln!(out, "**Output**: content blocks only (no `outputSchema`).");
        }
    }
}

/// An object's fields, an array of objects' fields, or a short type.
fn value_summary(schema: &Value) -> String {
    let Some(map) = schema.as_object() else { return "any JSON".to_owned() };
    if map.get("type").and_then(Value::as_str) == Some("object") {
        return object_summary(map);
    }
    let items = map.get("items").and_then(Value::as_object);
    if map.get("type").and_then(Value::as_str) == Some("array")
        && let Some(items) = items.filter(|i| i.contains_key("properties"))
    {
        let fields = object_summary(items);
        return format!("an array of objects, each {}", fields.trim_start_matches("an object "));
    }
    type_name(schema)
}

fn annotation_text(a: &Annotations) -> Option<String> {
    let mut hints = Vec::new();
    let mut flag = |value: Option<bool>, yes: &'static str, no: &'static str| {
        if let Some(v) = value {
            hints.push(if v { yes } else { no });
        }
    };
    flag(a.read_only_hint, "read-only", "modifies state");
    flag(a.destructive_hint, "destructive", "not destructive");
    flag(a.idempotent_hint, "idempotent", "not idempotent");
    flag(a.open_world_hint, "open world", "closed world");
    (!hints.is_empty()).then(|| hints.join(", "))
}

fn render_parameters(out: &mut String, schema: &Map<String, Value>) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        let _ = writeln!(out, "**Parameters**: none.\n");
        return;
    };
    let required = required_names(schema);
    let _ = writeln!(out, "**Parameters**\n");
    let _ = writeln!(out, "| Name | Type | Required | Default | Description |");
    let _ = writeln!(out, "|------|------|----------|---------|-------------|");
    for (name, property) in properties {
        let is_required = if required.contains(&name.as_str()) { "yes" } else { "no" };
        let default = property.get("default").map(|d| format!("`{d}`")).unwrap_or_default();
        let description = property.get("description").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(
            out,
            "| `{name}` | {} | {is_required} | {} | {} |",
            cell(&type_name(property)),
            cell(&default),
            cell(description)
        );
    }
    out.push('\n');
}

fn required_names(schema: &Map<String, Value>) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `object with `sum` (integer), `note` (string, optional)`.
fn object_summary(schema: &Map<String, Value>) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return "an object".to_owned();
    };
    let required = required_names(schema);
    let fields: Vec<String> = properties
        .iter()
        .map(|(name, p)| {
            let optional = if required.contains(&name.as_str()) { "" } else { ", optional" };
            format!("`{name}` ({}{optional})", type_name(p))
        })
        .collect();
    format!("an object with {}", fields.join(", "))
}

/// A short human type for a property schema.
fn type_name(schema: &Value) -> String {
    let Some(map) = schema.as_object() else { return "any".to_owned() };
    if let Some(values) = map.get("enum").and_then(Value::as_array) {
        return values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" or ");
    }
    if let Some(value) = map.get("const") {
        return format!("`{value}`");
    }
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = map.get(key).and_then(Value::as_array) {
            return branches.iter().map(type_name).collect::<Vec<_>>().join(" or ");
        }
    }
    let base = match map.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => return "any".to_owned(),
    };
    match base.as_str() {
        "array" => match map.get("items") {
            Some(items) => format!("array of {}", type_name(items)),
            None => "array".to_owned(),
        },
        _ => match map.get("format").and_then(Value::as_str) {
            Some(format) => format!("{base} ({format})"),
            None => base,
        },
    }
}

/// Keeps a table cell on one line and its pipes from splitting columns.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}
