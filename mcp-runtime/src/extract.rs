//! Parameters that are injected rather than read from the arguments:
//! [`State<T>`] and [`RequestContext`]. They implement [`FromToolCall`] and
//! stay out of the tool's `inputSchema`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;

use crate::context::RequestContext;
use crate::tool::{CallError, StateRequirement, ToolCall};

/// A value a tool takes from the call instead of from its arguments.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into an MCP tool",
    label = "not an extractor",
    note = "injected parameters are `State<T>` and `RequestContext`; every other parameter is read from the arguments"
)]
pub trait FromToolCall: Sized {
    fn from_tool_call(call: &ToolCall) -> Result<Self, CallError>;

    /// The state the server must hold for this extractor to succeed. Checked
    /// when the server is built, so a missing `State<T>` fails at start-up,
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
        Some(StateRequirement { type_id: TypeId::of::<T>, type_name: std::any::type_name::<T>() })
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
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap").field("len", &self.values.len()).finish()
    }
}
