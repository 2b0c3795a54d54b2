//! The input of `dewey_store_messages_bulk`: reading `messages_file` from
//! the one directory Dewey may read, and normalising entries (plain
//! `{role, content}` messages and Claude Code session lines) into messages.

use std::io;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::error::{DeweyError, Result};
use crate::model::{NewMessage, Role, check_storable, check_storable_json};

/// Most messages one bulk call stores, inline or from a file.
pub const MAX_BULK_MESSAGES: usize = 1000;

/// Larger files are refused before they are read into memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Where `messages_file` may point: inside one directory (DEWEY_FILES_DIR),
/// or nowhere when none is configured. A caller on the network must not be
/// able to make Dewey read arbitrary files.
#[derive(Debug, Clone, Default)]
pub struct MessageFiles {
    root: Option<PathBuf>,
}

impl MessageFiles {
    /// `messages_file` is refused with a message saying how to enable it.
    pub fn disabled() -> Self {
        MessageFiles { root: None }
    }

    /// Files under `dir` (which must exist) may be read.
    pub fn within(dir: &Path) -> io::Result<Self> {
        let root = dir.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", root.display())));
        }
        Ok(MessageFiles { root: Some(root) })
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Reads the file's entries (JSON array or JSONL), unnormalised.
    pub async fn load(&self, path: &str) -> Result<Vec<Value>> {
        let Some(root) = &self.root else {
            return Err(DeweyError::File(
                "`messages_file` is disabled on this server: start Dewey with DEWEY_FILES_DIR=<directory> to allow \
                 reading files from that directory, or send `messages` inline"
                    .into(),
            ));
        };
        let requested = Path::new(path);
        // Refused before touching the disk, so the answer says nothing about
        // what exists elsewhere on the machine.
        let escapes = requested.components().any(|c| matches!(c, Component::ParentDir))
            || (requested.is_absolute() && !requested.starts_with(root));
        if escapes {
            return Err(DeweyError::File(format!(
                "`messages_file` {path} is outside the allowed directory {} (DEWEY_FILES_DIR): name a file inside \
                 it, relative to it and without `..`; copy the file there first",
                root.display()
            )));
        }
        let joined = if requested.is_absolute() { requested.to_path_buf() } else { root.join(requested) };
        // canonicalize resolves symlinks, so the prefix check below cannot be
        // walked around. A symlink out of the root and a missing file get the
        // same answer: telling them apart would reveal files outside it.
        let not_found = || {
            DeweyError::File(format!(
                "`messages_file` not found: {path} (no readable file by that name inside the allowed directory {}, \
                 DEWEY_FILES_DIR)",
                root.display()
            ))
        };
        let resolved = tokio::fs::canonicalize(&joined).await.map_err(|_| not_found())?;
        if !resolved.starts_with(root) {
            return Err(not_found());
        }
        let file = tokio::fs::File::open(&resolved).await.map_err(|_| not_found())?;
        let cannot_read = |e: io::Error| DeweyError::File(format!("`messages_file` {path} cannot be read: {e}"));
        // The metadata of the opened file, not of the path: the path could be
        // swapped between a check and the read.
        if !file.metadata().await.map_err(cannot_read)?.is_file() {
            return Err(DeweyError::File(format!("`messages_file` {path} is not a regular file")));
        }
        // Reading one byte past the limit tells an oversized file without
        // trusting a size reported before the read.
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).await.map_err(cannot_read)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(DeweyError::File(format!(
                "`messages_file` {path} is larger than {MAX_FILE_BYTES} bytes, the most that is read; split it"
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| DeweyError::File(format!("`messages_file` {path} is not UTF-8 text")))?;
        parse_entries(&text, path)
    }
}

/// A JSON array, or JSONL (one object per line, as Claude Code session
/// files are), told apart by the first non-blank character.
pub fn parse_entries(text: &str, path: &str) -> Result<Vec<Value>> {
    match text.trim_start().chars().next() {
        None => Err(DeweyError::File(format!("`messages_file` {path} is empty"))),
        Some('[') => match serde_json::from_str::<Vec<Value>>(text) {
            Ok(entries) => Ok(entries),
            Err(e) => Err(DeweyError::File(format!("`messages_file` {path} is not a valid JSON array: {e}"))),
        },
        Some('{') => text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| {
                serde_json::from_str::<Value>(line).map_err(|e| {
                    DeweyError::File(format!("`messages_file` {path}: line {} is not valid JSON: {e}", n + 1))
                })
            })
            .collect(),
        Some(c) => Err(DeweyError::File(format!(
            "`messages_file` {path} is neither a JSON array nor JSONL: it starts with {c:?} instead of '[' or '{{'"
        ))),
    }
}

/// Normalises entries the way Godot's bulk store did:
/// - `{"message": {"role", "content"}, ...}` (a Claude Code session line):
///   the nested role and content, the whole entry kept as metadata;
/// - `{"role", "content", "metadata"?}`: taken as is;
/// - anything else (snapshots, summaries): a `system` message whose content
///   is the entry's `type`, the whole entry kept as metadata.
///
/// Content that is not a string (Claude's content blocks) is stored as its
/// JSON text. `source` names the input in errors (`messages` or the file).
pub fn normalise(entries: Vec<Value>, source: &str) -> Result<Vec<NewMessage>> {
    if entries.is_empty() {
        return Err(DeweyError::invalid(format!("{source} holds no messages; give at least one")));
    }
    if entries.len() > MAX_BULK_MESSAGES {
        return Err(DeweyError::invalid(format!(
            "{source} holds {} messages; at most {MAX_BULK_MESSAGES} per call, split them",
            entries.len()
        )));
    }
    entries.into_iter().enumerate().map(|(i, entry)| normalise_one(entry, &format!("{source}[{i}]"))).collect()
}

/// One entry, `at` naming it in errors (`messages[3]`). Anything PostgreSQL
/// could not store is refused here as the caller's to fix, never left to
/// fail later as a storage error.
fn normalise_one(entry: Value, at: &str) -> Result<NewMessage> {
    let Value::Object(map) = &entry else {
        return Err(DeweyError::invalid(format!("{at} is not a JSON object")));
    };
    if let Some(Value::Object(nested)) = map.get("message") {
        let role = role_of(nested.get("role"), &format!("{at}.message.role"))?;
        check_storable_json(&entry, at)?;
        let content = content_text(nested.get("content"));
        return Ok(NewMessage { role, content, metadata: Some(entry) });
    }
    if map.contains_key("role") && map.contains_key("content") {
        let role = role_of(map.get("role"), &format!("{at}.role"))?;
        let content = content_text(map.get("content"));
        check_storable(&content, &format!("{at}.content"))?;
        let metadata = map.get("metadata").filter(|m| !m.is_null()).cloned();
        if let Some(metadata) = &metadata {
            check_storable_json(metadata, &format!("{at}.metadata"))?;
        }
        return Ok(NewMessage { role, content, metadata });
    }
    check_storable_json(&entry, at)?;
    let content = map.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    Ok(NewMessage { role: Role::System, content, metadata: Some(entry) })
}

fn role_of(value: Option<&Value>, what: &str) -> Result<Role> {
    match value {
        Some(Value::String(s)) => Role::parse(s).ok_or_else(|| {
            DeweyError::invalid(format!("`{what}` is {s:?}; a role is one of user, assistant, system, tool"))
        }),
        Some(other) => {
            Err(DeweyError::invalid(format!("`{what}` must be a string (user, assistant, system, tool), got {other}")))
        }
        None => Err(DeweyError::invalid(format!("`{what}` is missing; give user, assistant, system or tool"))),
    }
}

fn content_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claude_code_lines_are_normalised() {
        let entries = vec![
            json!({"type":"user","uuid":"u1","message":{"role":"user","content":"hello"}}),
            json!({"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"hi"}]}}),
            json!({"type":"file-history-snapshot","snapshot":{}}),
            json!({"role":"tool","content":{"ok":true},"metadata":{"k":1}}),
        ];
        let out = normalise(entries.clone(), "messages").unwrap();
        assert_eq!(
            out[0],
            NewMessage { role: Role::User, content: "hello".into(), metadata: Some(entries[0].clone()) }
        );
        assert_eq!(out[1].role, Role::Assistant);
        assert_eq!(out[1].content, json!([{"type":"text","text":"hi"}]).to_string());
        assert_eq!(
            out[2],
            NewMessage {
                role: Role::System,
                content: "file-history-snapshot".into(),
                metadata: Some(entries[2].clone())
            }
        );
        assert_eq!(out[3].metadata, Some(json!({"k":1})));
    }

    #[test]
    fn bad_roles_and_shapes_name_the_entry() {
        let err = normalise(vec![json!({"role":"bot","content":"x"})], "messages").unwrap_err();
        assert!(err.to_string().contains("messages[0].role"), "{err}");
        let err = normalise(vec![json!({"message":{"content":"x"}})], "messages").unwrap_err();
        assert!(err.to_string().contains("messages[0].message.role"), "{err}");
        let err = normalise(vec![json!(3)], "messages").unwrap_err();
        assert!(err.to_string().contains("messages[0] is not a JSON object"), "{err}");
        assert!(normalise(vec![], "messages").is_err());
        assert!(normalise(vec![json!({"role":"user","content":"x"}); 1001], "messages").is_err());
    }

    #[test]
    fn nul_characters_name_the_entry() {
        let ok = json!({"role":"user","content":"x"});
        let err = normalise(vec![ok.clone(), json!({"role":"user","content":"a\0b"})], "messages").unwrap_err();
        assert!(err.is_invalid_input() && err.to_string().contains("`messages[1].content`"), "{err}");
        let err = normalise(vec![json!({"role":"user","content":"x","metadata":{"m":"\0"}})], "messages").unwrap_err();
        assert!(err.to_string().contains("`messages[0].metadata.m`"), "{err}");
        let line = json!({"type":"user","message":{"role":"user","content":[{"type":"text","text":"\0"}]}});
        let err = normalise(vec![line], "messages_file s.jsonl").unwrap_err();
        assert!(err.to_string().contains("`messages_file s.jsonl[0].message.content[0].text`"), "{err}");
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let err = parse_entries("{\"a\":1}\n\n{oops}\n", "f.jsonl").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert_eq!(parse_entries("{\"a\":1}\n{\"b\":2}", "f").unwrap().len(), 2);
        assert!(parse_entries("[1,", "f").unwrap_err().to_string().contains("not a valid JSON array"));
        assert!(parse_entries("hello", "f").unwrap_err().to_string().contains("neither a JSON array nor JSONL"));
    }
}
