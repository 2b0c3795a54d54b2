//! `mcp-runtime`: serve async fns annotated with [`mcp_tool`] as MCP tools
//! over WebSocket, Streamable HTTP and stdio, and call MCP servers as a client.
//!
//! Start at the crate README for the ten-line example.

mod access;
pub mod catalog;
pub mod client;
pub mod context;
mod dispatch;
mod engine;
pub mod error;
pub mod extract;
mod http;
pub mod protocol;
mod registry;
pub mod schema;
mod server;
mod service;
mod stdio;
pub mod tool;
mod transport;

pub use context::RequestContext;
pub use error::Error;
pub use extract::{FromToolCall, State, StateMap};
pub use mcp_macros::mcp_tool;
pub use protocol::{LogLevel, RequestId};
pub use server::{BoundServer, Server, ServerBuilder, ShutdownHandle, init_tracing};
pub use service::McpService;
pub use tool::{Annotations, CallError, Tool, ToolError, ToolFactory};

/// What `#[mcp_tool]` expansions name. Not a public API: it changes with the
/// macro, and user code never has to add serde, schemars or inventory of its
/// own to make the macro compile.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;

    pub use crate::extract::FromToolCall;
    pub use crate::schema::InputSchema;
    pub use crate::tool::{
        Annotations, CallError, IntoToolOutput, Location, StateRequirement, Tool, ToolCall, ToolFactory, ToolMeta,
        ToolRegistration,
    };

    /// Bounds every ordinary (non-injected) parameter must meet; the macro
    /// asserts it per parameter so the error lands on that parameter's type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be an MCP tool parameter",
        label = "needs `serde::Deserialize` and `schemars::JsonSchema`",
        note = "derive `Deserialize` and `JsonSchema` for it, or inject it with `State<T>` / `RequestContext`"
    )]
    pub trait ToolArgument: serde::de::DeserializeOwned + schemars::JsonSchema {}
    impl<T: serde::de::DeserializeOwned + schemars::JsonSchema> ToolArgument for T {}

    pub const fn assert_tool_argument<T: ToolArgument>() {}
    pub const fn assert_extractor<T: FromToolCall>() {}
}
