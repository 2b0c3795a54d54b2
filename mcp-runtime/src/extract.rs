//! Parameters that are injected rather than read from the arguments: any
//! type implementing [`FromToolCall`], such as [`State<T>`] and
//! [`RequestContext`], or one of your own. They stay out of the tool's
//! `inputSchema`.
//!
//! `#[mcp_tool]` tells them apart from arguments by trait, not by name: a
//! parameter whose type implements `FromToolCall` is injected, whatever it
//! is called or imported as (`use mcp_runtime::State as S` works); any other
//! parameter is an argument and needs `Deserialize` and `JsonSchema`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;

use crate::context::RequestContext;
use crate::tool::{CallError, StateRequirement, ToolCall};

/// A value a tool takes from the call instead of from its arguments.
///
/// Implement it for your own types to inject them, for example a typed
/// handle built from shared state:
///
/// ```
/// use mcp_runtime::tool::{StateRequirement, ToolCall};
/// use mcp_runtime::{CallError, FromToolCall, mcp_tool};
///
/// /// The server's connection settings, registered with `.state(..)`.
/// #[derive(Clone)]
/// struct Settings {
///     archive_url: String,
/// }
///
/// /// What a tool sees: the archive it may read, nothing else.
/// struct Archive {
///     url: String,
/// }
///
/// impl FromToolCall for Archive {
///     fn from_tool_call(call: &ToolCall) -> Result<Self, CallError> {
///         let settings = call.state().get::<Settings>().ok_or_else(|| {
///             CallError::Internal("the server has no `Settings` state".to_owned())
///         })?;
///         Ok(Archive { url: settings.archive_url.clone() })
///     }
///
///     // Checked at start-up, so a server without `Settings` does not start.
///     fn required_state() -> Option<StateRequirement> {
///         Some(StateRequirement::of::<Settings>())
///     }
/// }
///
/// /// Names the archive a document would be read from.
/// #[mcp_tool]
/// async fn locate(archive: Archive, document: String) -> String {
///     format!("{}/{document}", archive.url)
/// }
/// ```
///
/// Extractors run after the arguments were read and found valid, in
/// parameter order; the first one to fail ends the call with its error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither an MCP tool argument nor an injected parameter",
    label = "not an argument (`Deserialize` + `JsonSchema`) and not injected (`FromToolCall`)",
    note = "an argument's type needs `serde::Deserialize` and `schemars::JsonSchema` from schemars 1.x \
            (re-exported as `mcp_runtime::schemars`); a `JsonSchema` derived with schemars 0.8 is a different trait",
    note = "an injected parameter's type implements `mcp_runtime::FromToolCall`, as `State<T>` and \
            `RequestContext` do"
)]
pub trait FromToolCall: Sized {
    fn from_tool_call(call: &ToolCall) -> Result<Self, CallError>;

    /// The state the server must hold for this extractor to succeed. Checked
    /// when the server starts, so a missing `State<T>` fails at start-up,
    /// not on the first call.
    fn required_state() -> Option<StateRequirement> {
        None
    }
}

impl FromToolCall for RequestContext {
    fn from_tool_call(call: &ToolCall) -> Result<Self, CallError> {
        Ok(call.context().clone())
    }
}

/// Shared state registered on the server with `ServerBuilder::state`.
///
/// `State<T>` derefs to `T`; `T` is cloned per call, so make it cheap to
/// clone (an `Arc`, a pool handle).
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone + Send + Sync + 'static> FromToolCall for State<T> {
    fn from_tool_call(call: &ToolCall) -> Result<Self, CallError> {
        call.state().get::<T>().map(|v| State(v.clone())).ok_or_else(|| {
            CallError::Internal(format!("server state `{}` was not registered", std::any::type_name::<T>()))
        })
    }

    fn required_state() -> Option<StateRequirement> {
        Some(StateRequirement::of::<T>())
    }
}

/// The server's shared state, one value per type.
#[derive(Default)]
pub struct StateMap {
    values: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl StateMap {
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Box::new(value));
    }

    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>()).and_then(|v| v.downcast_ref())
    }

    pub fn contains(&self, type_id: TypeId) -> bool {
        self.values.contains_key(&type_id)
    }

    /// Moves every value of `other` in, replacing values of the same type.
    pub fn extend(&mut self, other: StateMap) {
        self.values.extend(other.values);
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap").field("len", &self.values.len()).finish()
    }
}
