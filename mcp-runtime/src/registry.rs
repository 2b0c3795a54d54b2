//! The server's tool set: unique names, state requirements checked against
//! the builder's state, and each tool's `tools/list` entry serialized once
//! (twice for tools whose result is wrapped for older protocol versions).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::tool::{Annotations, Location, Tool};

pub(crate) struct Registry {
    tools: Vec<Arc<Tool>>,
    by_name: HashMap<&'static str, Arc<Tool>, FastHash>,
    /// `tools/list` entries in listing order, already JSON, as protocol
    /// versions up to 2025-11-25 see them (non-object results wrapped).
    descriptors: Vec<String>,
    /// The same for 2026-07-28, where `outputSchema` may be any JSON type.
    /// Empty when no tool wraps its result: then both lists are the same.
    unwrapped_descriptors: Vec<String>,
}

/// The tools (name, declaration) that take one state type.
type Takers = Vec<(String, Location)>;

/// Which `tools/list` entries to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// Up to 2025-11-25: every `outputSchema` an object.
    Objects,
    /// 2026-07-28: each result's own schema.
    AnyJson,
}

impl Registry {
    /// Keeps the given order. A tool registered twice from the same place
    /// (say by `discover_tools()` and `.tool::<t>()`) is kept once. Every
    /// problem is reported at once: each pair of different tools sharing a
    /// name, each state type some tools take and `has_state` (when given)
    /// lacks, naming all of them, and each tool's definition defects.
    pub(crate) fn build(candidates: Vec<Tool>, has_state: Option<&dyn Fn(TypeId) -> bool>) -> Result<Registry, Error> {
        let mut tools: Vec<Arc<Tool>> = Vec::with_capacity(candidates.len());
        let mut by_name: HashMap<&'static str, Arc<Tool>, FastHash> =
            HashMap::with_capacity_and_hasher(candidates.len(), FastHash::default());
        let mut problems = Vec::new();
        // Per missing state type: its name and every tool that takes it.
        let mut missing: Vec<(TypeId, &'static str, Takers)> = Vec::new();
        for tool in candidates {
            if let Some(existing) = by_name.get(tool.name()) {
                if existing.meta().location != tool.meta().location {
                    problems.push(Error::DuplicateTool {
                        name: tool.name().to_owned(),
                        first: existing.meta().location,
                        second: tool.meta().location,
                    });
                }
                continue;
            }
            for requirement in tool.required_state() {
                let type_id = (requirement.type_id)();
                if has_state.is_none_or(|has| has(type_id)) {
                    continue;
                }
                let taker = (tool.name().to_owned(), tool.meta().location);
                match missing.iter_mut().find(|(id, ..)| *id == type_id) {
                    Some((.., takers)) => takers.push(taker),
                    None => missing.push((type_id, requirement.type_name, vec![taker])),
                }
            }
            for defect in tool.defects() {
                problems.push(Error::InvalidTool {
                    tool: tool.name().to_owned(),
                    location: tool.meta().location,
                    message: defect.clone(),
                });
            }
            let tool = Arc::new(tool);
            by_name.insert(tool.name(), tool.clone());
            tools.push(tool);
        }
        problems.extend(missing.into_iter().map(|(_, type_name, tools)| Error::MissingState { type_name, tools }));
        if problems.len() > 1 {
            return Err(Error::Several(problems));
        }
        if let Some(problem) = problems.pop() {
            return Err(problem);
        }
        let descriptors = tools.iter().map(|t| descriptor(t, Listing::Objects)).collect();
        let unwrapped_descriptors = match tools.iter().any(|t| t.wraps_result()) {
            true => tools.iter().map(|t| descriptor(t, Listing::AnyJson)).collect(),
            false => Vec::new(),
        };
        Ok(Registry { tools, by_name, descriptors, unwrapped_descriptors })
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
    pub(crate) fn list_json(&self, offset: usize, count: usize, listing: Listing) -> String {
        let descriptors = match listing {
            Listing::AnyJson if !self.unwrapped_descriptors.is_empty() => &self.unwrapped_descriptors,
            _ => &self.descriptors,
        };
        let end = offset.saturating_add(count).min(descriptors.len());
        let page = &descriptors[offset.min(end)..end];
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
    output_schema: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a Annotations>,
}

/// One tool as `tools/list` shows it.
pub(crate) fn descriptor(tool: &Tool, listing: Listing) -> String {
    let meta = tool.meta();
    let output_schema = match listing {
        Listing::Objects => tool.output.as_deref().map(|o| &o.object),
        Listing::AnyJson => tool.result_schema(),
    };
    let d = Descriptor {
        name: meta.name,
        title: meta.title,
        description: meta.description,
        input_schema: tool.input_schema(),
        output_schema,
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
