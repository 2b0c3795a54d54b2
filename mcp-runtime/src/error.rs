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

    /// A tool takes `State<T>` but the builder was never given a `T`.
    #[error(
        "tool `{tool}` (declared at {location}) takes `State<{type_name}>`, but the server has no \
         state of that type; add `.state(value)` with a `{type_name}` to the server builder"
    )]
    MissingState { tool: String, location: Location, type_name: &'static str },

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

impl Error {
    pub fn is_duplicate_tool(&self) -> bool {
        matches!(self, Error::DuplicateTool { .. })
    }

    pub fn is_missing_state(&self) -> bool {
        matches!(self, Error::MissingState { .. })
    }

    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_))
    }

    pub fn is_bind(&self) -> bool {
        matches!(self, Error::Bind { .. })
    }
}
