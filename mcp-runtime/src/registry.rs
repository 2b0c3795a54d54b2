//! The server's tool set: unique names, state requirements checked against
//! the builder's state, and each tool's `tools/list` entry serialized once.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::extract::StateMap;
use crate::tool::{Annotations, Tool};

pub(crate) struct Registry {
    tools: Vec<Arc<Tool>>,
    by_name: HashMap<&'static str, Arc<Tool>, FastHash>,
    /// `tools/list` entries in listing order, already JSON.
    descriptors: Vec<String>,
}

impl Registry {
    /// Keeps the given order. A tool registered twice from the same place
    /// (say by `discover_tools()` and `.tool::<t>()`) is kept once; two
    /// different tools with one name are an error naming both places.
    /// `state`, when given, must hold every `State<T>` a tool takes.
    pub(crate) fn build(candidates: Vec<Tool>, state: Option<&StateMap>) -> Result<Registry, Error> {
        let mut tools: Vec<Arc<Tool>> = Vec::with_capacity(candidates.len());
        let mut by_name: HashMap<&'static str, Arc<Tool>, FastHash> =
            HashMap::with_capacity_and_hasher(candidates.len(), FastHash::default());
        for tool in candidates {
            if let Some(existing) = by_name.get(tool.name()) {
                if existing.meta().location == tool.meta().location {
                    continue;
                }
                return Err(Error::DuplicateTool {
                    name: tool.name().to_owned(),
                    first: existing.meta().location,
                    second: tool.meta().location,
                });
            }
            for requirement in tool.required_state() {
                if state.is_some_and(|state| !state.contains((requirement.type_id)())) {
                    return Err(Error::MissingState {
                        tool: tool.name().to_owned(),
                        location: tool.meta().location,
                        type_name: requirement.type_name,
                    });
                }
            }
            let tool = Arc::new(tool);
            by_name.insert(tool.name(), tool.clone());
            tools.push(tool);
        }
        let descriptors = tools.iter().map(|t| descriptor(t)).collect();
        Ok(Registry { tools, by_name, descriptors })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Tool>> {
        self.by_name.get(name)
    }

    pub(crate) fn tools(&self) -> &[Arc<Tool>] {
        &self.tools
    }

    pub(crate) fn len(&self) -> usize {
        self.tools.len()
    }

    /// The JSON array of the entries `offset..offset + count`.
    pub(crate) fn list_json(&self, offset: usize, count: usize) -> String {
        let end = offset.saturating_add(count).min(self.descriptors.len());
        let page = &self.descriptors[offset.min(end)..end];
        let mut out = String::with_capacity(page.iter().map(|d| d.len() + 1).sum::<usize>() + 2);
        out.push('[');
        for (i, d) in page.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(d);
        }
        out.push(']');
        out
    }
}

/// The hasher for the maps on the request path (tool names, the in-flight
/// request ids of a connection): foldhash, several times faster than the
/// standard SipHash on short keys. Its per-process random seed still keeps a
/// client from choosing request ids that collide.
pub(crate) type FastHash = foldhash::fast::RandomState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_schema: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a Annotations>,
}

/// One tool as `tools/list` shows it.
pub(crate) fn descriptor(tool: &Tool) -> String {
    let meta = tool.meta();
    let d = Descriptor {
        name: meta.name,
        title: meta.title,
        description: meta.description,
        input_schema: tool.input_schema(),
        output_schema: tool.output_schema(),
        annotations: (!meta.annotations.is_empty()).then_some(&meta.annotations),
    };
    serde_json::to_string(&d).expect("a tool descriptor is plain JSON")
}

/// Opaque to clients; the server only ever issues offsets that start a page.
pub(crate) fn encode_cursor(offset: usize) -> String {
    format!("tools-{offset}")
}

/// The offset a cursor stands for, if this server could have issued it.
pub(crate) fn decode_cursor(cursor: &str, page_size: usize, total: usize) -> Option<usize> {
    let offset: usize = cursor.strip_prefix("tools-")?.parse().ok()?;
    (offset > 0 && offset < total && offset.is_multiple_of(page_size)).then_some(offset)
}

#[cfg(test)]
mod tests {
    use super::{decode_cursor, encode_cursor};

    #[test]
    fn only_issued_cursors_decode() {
        assert_eq!(decode_cursor(&encode_cursor(10), 10, 25), Some(10));
        assert_eq!(decode_cursor(&encode_cursor(20), 10, 25), Some(20));
        assert_eq!(decode_cursor("tools-0", 10, 25), None, "page one has no cursor");
        assert_eq!(decode_cursor("tools-30", 10, 25), None, "past the end");
        assert_eq!(decode_cursor("tools-15", 10, 25), None, "not a page start");
        assert_eq!(decode_cursor("tools--1", 10, 25), None);
        assert_eq!(decode_cursor("10", 10, 25), None);
    }
}
