//! `mcp-runtime`: serve async fns annotated with [`mcp_tool`] as MCP tools
//! over Streamable HTTP, WebSocket and stdio, and call MCP servers as a
//! client. [`mcp_tool`] documents every option, [`Server`] the server's
//! behaviour; the repository's README, the one place for the quick start and
//! its example, follows (its Rust blocks are doctests of this crate).
//!
#![doc = include_str!("../../README.md")]

mod access;
mod arguments;
pub mod catalog;
pub mod client;
pub mod content;
pub mod context;
mod dispatch;
mod engine;
pub mod error;
pub mod extract;
mod godot_log;
mod http;
pub mod protocol;
mod registry;
pub mod schema;
mod server;
mod service;
mod stdio;
pub mod tool;
mod transport;

pub use content::{CallToolResult, Content};
pub use context::RequestContext;
pub use error::Error;
pub use extract::{FromToolCall, State, StateMap};
pub use mcp_macros::mcp_tool;
pub use protocol::{LogLevel, RequestId};
pub use server::{BoundServer, Server, ServerArgs, ServerBuilder, ShutdownHandle, init_tracing};
pub use service::McpService;
pub use tool::{Annotations, CallError, IntoToolResult, Tool, ToolError, ToolFactory};

/// The serde this crate (and `#[mcp_tool]`) uses, for naming it through
/// `mcp_runtime::serde` instead of a dependency of your own. Derives need
/// `#[serde(crate = "mcp_runtime::serde")]` then.
pub use serde;

/// The schemars (1.x) this crate uses: a tool's argument and result types
/// must implement *this* `JsonSchema`. Derives through it need
/// `#[schemars(crate = "mcp_runtime::schemars")]`.
pub use schemars;

/// What `#[mcp_tool]` expansions name. Not a public API: it changes with the
/// macro, and user code never has to add serde, schemars or inventory of its
/// own to make the macro compile.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;

    pub use crate::arguments::{
        Argument, DefaultOnInjected, FlattenOnInjected, Injected, MAX_PARAMETERS, Missing, Probe, Signature,
        ToolArgument, Unusable, probe, read_arguments,
    };
    pub use crate::extract::FromToolCall;
    pub use crate::tool::{
        Annotations, CallError, IntoToolResult, Location, ResultOk, ResultProbe, StateRequirement, Tool, ToolCall,
        ToolErrorMessage, ToolFactory, ToolMeta, ToolOutput, ToolRegistration, ToolResultValue, probe_future,
        result_probe, send_probe,
    };

    /// A tool fn's `Result`: `Err(e)` becomes a tool error with `e`'s message.
    #[inline]
    pub fn returned_result<T, E: ToolErrorMessage>(result: Result<T, E>) -> Result<T, CallError> {
        result.map_err(|e| CallError::Tool(e.message()))
    }
}
