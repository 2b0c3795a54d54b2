//! Startup-context tools: named texts a client loads when it starts, at
//! most one of them active.

use mcp_runtime::{State, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{DeweyError, Result};
use crate::model::{StartupContext, check_storable, check_storable_opt};
use crate::storage::{Storage, context_not_found};

/// What `dewey_get_startup_context` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartupContextLookup {
    /// False only when no name was given and no context is active.
    pub found: bool,
    pub context: Option<StartupContext>,
}

/// Get the active startup context or a specific one by name
#[mcp_tool(name = "dewey_get_startup_context", read_only)]
pub async fn get_startup_context(
    store: State<Storage>,
    /// Optional context name (defaults to active)
    name: Option<String>,
) -> Result<StartupContextLookup> {
    check_storable_opt(name.as_deref(), "name")?;
    match store.get_startup_context(name.clone()).await? {
        Some(context) => Ok(StartupContextLookup { found: true, context: Some(context) }),
        None => match name {
            Some(name) => Err(context_not_found(&name)),
            None => Ok(StartupContextLookup { found: false, context: None }),
        },
    }
}

/// What `dewey_set_startup_context` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SetStartupContext {
    pub context: StartupContext,
    /// True when the name was new, false when an existing context was replaced.
    pub created: bool,
}

/// Create or update a startup context
///
/// With `set_active` it becomes the one active context (any other is deactivated).
#[mcp_tool(name = "dewey_set_startup_context", idempotent)]
pub async fn set_startup_context(
    store: State<Storage>,
    /// Context name
    name: String,
    /// Context content
    content: String,
    /// Make this the active context
    #[mcp(default = false)]
    set_active: bool,
) -> Result<SetStartupContext> {
    if name.trim().is_empty() {
        return Err(DeweyError::invalid("`name` is empty; give the context a name"));
    }
    check_storable(&name, "name")?;
    check_storable(&content, "content")?;
    let (context, created) = store.set_startup_context(name, content, set_active).await?;
    Ok(SetStartupContext { context, created })
}

/// What `dewey_list_startup_contexts` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartupContextList {
    /// By name.
    pub contexts: Vec<StartupContext>,
    /// The name of the active context, if any.
    pub active: Option<String>,
}

/// List all available startup contexts
#[mcp_tool(name = "dewey_list_startup_contexts", read_only)]
pub async fn list_startup_contexts(
    store: State<Storage>,
    /// Include full content
    #[mcp(default = false)]
    include_content: bool,
) -> Result<StartupContextList> {
    let contexts = store.list_startup_contexts(include_content).await?;
    let active = contexts.iter().find(|c| c.is_active).map(|c| c.name.clone());
    Ok(StartupContextList { contexts, active })
}

/// What `dewey_delete_startup_context` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeletedStartupContext {
    pub name: String,
    pub deleted: bool,
    pub was_active: bool,
}

/// Delete a startup context
#[mcp_tool(name = "dewey_delete_startup_context", destructive)]
pub async fn delete_startup_context(
    store: State<Storage>,
    /// Context name
    name: String,
    /// Force delete without confirmation: required to delete the active context
    #[mcp(default = false)]
    force: bool,
) -> Result<DeletedStartupContext> {
    check_storable(&name, "name")?;
    let context = store.delete_startup_context(name, force).await?;
    Ok(DeletedStartupContext { name: context.name, deleted: true, was_active: context.is_active })
}
