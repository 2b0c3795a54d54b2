//! The server's error type: what can go wrong building or binding a server.
//! (The client has its own, [`ClientError`](crate::client::ClientError).)

use std::io;

use crate::tool::Location;

/// Everything building or binding a server can fail with. Each variant's message says what to
/// change; the `is_*` predicates let callers branch without matching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two different tools share a name; clients could not tell them apart.
    #[error(
        "two tools are named `{name}`: one declared at {first}, the other at {second}; \
         rename one of them so every tool name is unique"
    )]
    DuplicateTool { name: String, first: Location, second: Location },

    /// Tools take `State<T>` but the builder was never given a `T`.
    #[error(
        "{} `State<{type_name}>`, but the server has no state of that type; add `.state(value)` with a \
         `{type_name}` to the server builder",
        takers(tools)
    )]
    MissingState { type_name: &'static str, tools: Vec<(String, Location)> },

    /// A tool's definition has a mistake the compiler cannot see, such as a
    /// `#[mcp(flatten)]` type whose schema is not an object.
    #[error("tool `{tool}` (declared at {location}): {message}")]
    InvalidTool { tool: String, location: Location, message: String },

    /// Several of the above, all found by one start-up check, so that one
    /// run shows everything to fix.
    #[error("{} problems stop the server from starting:{}", .0.len(), bullets(.0))]
    Several(Vec<Error>),

    /// A setting (builder value, environment variable or argument) is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The listening socket could not be created.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: io::Error,
    },
}

/// "tool `a` (declared at f.rs:1:1) takes", "tools `a` (..) and `b` (..) take".
fn takers(tools: &[(String, Location)]) -> String {
    let named: Vec<String> = tools.iter().map(|(name, at)| format!("`{name}` (declared at {at})")).collect();
    match named.split_last() {
        Some((last, [])) => format!("tool {last} takes"),
        Some((last, rest)) => format!("tools {} and {last} take", rest.join(", ")),
        None => "no tool takes".to_owned(),
    }
}

fn bullets(errors: &[Error]) -> String {
    errors.iter().map(|e| format!("\n  - {e}")).collect()
}

impl Error {
    /// `problems` as one error: `None` for none, the error itself for one,
    /// [`Error::Several`] for more.
    pub(crate) fn from_problems(mut problems: Vec<Error>) -> Option<Error> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Error::Several(problems)),
        }
    }

    /// The problems this error stands for, owned.
    pub(crate) fn into_problems(self) -> Vec<Error> {
        match self {
            Error::Several(errors) => errors,
            single => vec![single],
        }
    }

    /// Every problem this error stands for: the list of [`Error::Several`],
    /// or the error itself.
    pub fn problems(&self) -> &[Error] {
        match self {
            Error::Several(errors) => errors,
            single => std::slice::from_ref(single),
        }
    }

    /// True if this is, or [`Error::Several`] includes, a duplicate tool name.
    pub fn is_duplicate_tool(&self) -> bool {
        self.problems().iter().any(|e| matches!(e, Error::DuplicateTool { .. }))
    }

    /// True if this is, or [`Error::Several`] includes, missing state.
    pub fn is_missing_state(&self) -> bool {
        self.problems().iter().any(|e| matches!(e, Error::MissingState { .. }))
    }

    /// True if this is, or [`Error::Several`] includes, an invalid tool.
    pub fn is_invalid_tool(&self) -> bool {
        self.problems().iter().any(|e| matches!(e, Error::InvalidTool { .. }))
    }

    /// True if this is, or [`Error::Several`] includes, an unusable setting.
    pub fn is_config(&self) -> bool {
        self.problems().iter().any(|e| matches!(e, Error::Config(_)))
    }

    pub fn is_bind(&self) -> bool {
        matches!(self, Error::Bind { .. })
    }
}
