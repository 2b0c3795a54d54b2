//! The type-erased tool: what `#[mcp_tool]` builds from an async fn, and what
//! the registry and dispatcher hold.
//!
//! Type erasure happens in exactly one place, [`Tool::from_parts`]: the
//! generated code hands over a concrete handler, and from then on the runtime
//! only sees [`BoxedHandler`].

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::context::RequestContext;
use crate::extract::StateMap;
use crate::schema;

/// What the tool author's `Err(e)` (or a failed extraction) turns into.
///
/// Each variant maps to one line of the error contract in the README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The arguments did not deserialize into the tool's parameters. The
    /// message names the field and what was expected, so a model can retry.
    InvalidArguments(String),
    /// The tool ran and returned `Err(e)`; the message is `e.to_string()`.
    Tool(String),
    /// The tool panicked. The message says so; the panic payload is logged.
    Panicked(String),
    /// An extractor could not be built (for example `State<T>` that the
    /// server was never given). A server bug, not the caller's.
    Internal(String),
}

impl CallError {
    /// The text the caller sees.
    pub fn message(&self) -> &str {
        match self {
            CallError::InvalidArguments(m) | CallError::Tool(m) | CallError::Panicked(m) | CallError::Internal(m) => m,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A ready-made error type for tools that have no error type of their own.
///
/// Any `E: Display` works as a tool's error; this one exists so that
/// `Err("conversation not found".into())` and `ToolError::new(format!(..))` read well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(String);

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        ToolError(message.into())
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        ToolError(message)
    }
}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        ToolError(message.to_owned())
    }
}

/// MCP tool annotations (hints for clients; never trusted for security).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

impl Annotations {
    pub fn is_empty(&self) -> bool {
        *self == Annotations::default()
    }
}

/// Where a tool was declared, so that a duplicate name can name both places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub file: &'static str,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The static facts about a tool, as the macro writes them down.
#[derive(Debug, Clone, Copy)]
pub struct ToolMeta {
    pub name: &'static str,
    pub title: Option<&'static str>,
    pub description: Option<&'static str>,
    pub annotations: Annotations,
    pub location: Location,
}

/// A tool's successful result, already serialized once.
///
/// `json` is the tool's return value as JSON. When the tool publishes an
/// `outputSchema`, the same bytes are sent as `structuredContent` and as the
/// text block; otherwise only as text (a bare JSON string is sent unquoted).
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub json: Box<RawValue>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The erased handler: arguments and context in, serialized output out.
pub type BoxedHandler = Arc<dyn Fn(ToolCall) -> BoxFuture<Result<ToolOutput, CallError>> + Send + Sync>;

/// A state type that a tool's `State<T>` parameter needs from the server.
#[derive(Debug, Clone, Copy)]
pub struct StateRequirement {
    pub type_id: fn() -> TypeId,
    pub type_name: &'static str,
}

/// One tool, ready to be registered on a server.
#[derive(Clone)]
pub struct Tool {
    pub(crate) meta: ToolMeta,
    /// The `inputSchema` object, computed once at registration.
    pub(crate) input_schema: Arc<serde_json::Map<String, serde_json::Value>>,
    /// The `outputSchema`, present only when the output is a JSON object.
    pub(crate) output_schema: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    pub(crate) required_state: Vec<StateRequirement>,
    /// Client capabilities the tool cannot work without (see
    /// [`Tool::requires_client_capability`]).
    pub(crate) client_capabilities: Vec<&'static str>,
    pub(crate) handler: BoxedHandler,
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.meta.name)
            .field("location", &self.meta.location)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// Builds a tool from the pieces `#[mcp_tool]` generates.
    ///
    /// `input_schema` adds one property per ordinary parameter (see
    /// [`schema::InputSchema`]); `handler` deserializes the arguments, runs
    /// the extractors, awaits the user's fn and returns its `Ok` value.
    /// The output schema is derived here from `T`, so the macro never needs
    /// to name the return type.
    pub fn from_parts<F, Fut, T>(
        meta: ToolMeta,
        input_schema: fn(&mut schema::InputSchema),
        required_state: &[fn() -> Option<StateRequirement>],
        handler: F,
    ) -> Tool
    where
        F: Fn(ToolCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, CallError>> + Send + 'static,
        T: Serialize + JsonSchema,
    {
        let mut builder = schema::InputSchema::new();
        input_schema(&mut builder);
        let output_schema = schema::output_schema::<T>().map(Arc::new);
        let handler: BoxedHandler = Arc::new(move |call: ToolCall| {
            let fut = handler(call);
            Box::pin(async move {
                let value = fut.await?;
                encode_output(&value)
            })
        });
        Tool {
            meta,
            input_schema: Arc::new(builder.finish()),
            output_schema,
            required_state: required_state.iter().filter_map(|f| f()).collect(),
            client_capabilities: Vec::new(),
            handler,
        }
    }

    /// Marks the tool as needing a client capability (`"sampling"`,
    /// `"elicitation"`, `"roots"`, ...). A client that did not declare it
    /// (in `initialize`, or a stateless request's `_meta`) gets JSON-RPC
    /// error -32021 naming it, and the tool does not run.
    pub fn requires_client_capability(mut self, capability: &'static str) -> Tool {
        if !self.client_capabilities.contains(&capability) {
            self.client_capabilities.push(capability);
        }
        self
    }

    /// Publishes `schema` as the tool's `inputSchema` instead of the one
    /// generated from its parameters: for vocabulary the generated schema
    /// does not use (`$defs` with `$anchor`, `allOf`/`anyOf`, `if`/`then`/`else`).
    /// The arguments are still deserialized into the tool's parameters, so
    /// the two must describe the same object. The root must be
    /// `{"type": "object", ...}`.
    pub fn with_input_schema(mut self, schema: serde_json::Value) -> Result<Tool, crate::Error> {
        match schema {
            serde_json::Value::Object(map) if map.get("type").and_then(|t| t.as_str()) == Some("object") => {
                self.input_schema = Arc::new(map);
                Ok(self)
            }
            _ => Err(crate::Error::Config(format!(
                "the inputSchema given to tool `{}` must be a JSON object with \"type\": \"object\" at its root",
                self.name()
            ))),
        }
    }

    /// The client capabilities the tool needs.
    pub fn required_client_capabilities(&self) -> &[&'static str] {
        &self.client_capabilities
    }

    pub fn name(&self) -> &'static str {
        self.meta.name
    }

    pub fn meta(&self) -> &ToolMeta {
        &self.meta
    }

    pub fn input_schema(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.input_schema
    }

    pub fn output_schema(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.output_schema.as_deref()
    }

    pub fn required_state(&self) -> &[StateRequirement] {
        &self.required_state
    }

    /// Runs the tool. Panics are not caught here: the dispatcher does that,
    /// so that it can answer the call and keep the connection.
    pub fn call(&self, call: ToolCall) -> BoxFuture<Result<ToolOutput, CallError>> {
        (self.handler)(call)
    }
}

fn encode_output<T: Serialize>(value: &T) -> Result<ToolOutput, CallError> {
    let json = serde_json::value::to_raw_value(value)
        .map_err(|e| CallError::Internal(format!("the tool's result could not be serialized: {e}")))?;
    Ok(ToolOutput { json })
}

/// Implemented by the hidden type `#[mcp_tool]` emits beside each fn (named
/// like the fn, in the type namespace), so `ServerBuilder::tool::<add>()`
/// registers the tool `add` explicitly.
pub trait ToolFactory {
    fn tool() -> Tool;
}

/// An entry in the link-time tool inventory: every `#[mcp_tool]` in the
/// binary submits one, and `ServerBuilder::discover_tools` collects them.
pub struct ToolRegistration {
    pub build: fn() -> Tool,
}

inventory::collect!(ToolRegistration);

/// All tools declared with `#[mcp_tool]` anywhere in the binary.
pub fn discovered_tools() -> impl Iterator<Item = Tool> {
    inventory::iter::<ToolRegistration>.into_iter().map(|r| (r.build)())
}

/// Everything a handler needs for one call.
pub struct ToolCall {
    /// `params.arguments` as it came off the wire, not yet parsed.
    pub(crate) arguments: Option<Box<RawValue>>,
    pub(crate) context: RequestContext,
    pub(crate) state: Arc<StateMap>,
}

impl ToolCall {
    pub fn new(arguments: Option<Box<RawValue>>, context: RequestContext, state: Arc<StateMap>) -> Self {
        ToolCall { arguments, context, state }
    }

    /// Deserializes the arguments into the macro's hidden argument struct.
    /// Absent or `null` arguments mean "no arguments" (`{}`).
    pub fn arguments<A: DeserializeOwned>(&self) -> Result<A, CallError> {
        let raw = match &self.arguments {
            Some(raw) if raw.get() != "null" => raw.get(),
            _ => "{}",
        };
        // Path tracking costs on every call; only a failure needs the path,
        // so parse plainly and parse again with tracking to describe an error.
        serde_json::from_str(raw).or_else(|_| {
            let mut de = serde_json::Deserializer::from_str(raw);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| CallError::InvalidArguments(describe_argument_error(&e)))
        })
    }

    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    pub fn state(&self) -> &StateMap {
        &self.state
    }
}

/// Turns serde's message into one a model can act on: which argument, what
/// was wrong. `serde_path_to_error` gives the path; serde gives the rest.
fn describe_argument_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let inner = crate::protocol::strip_position(&inner);
    if path == "." || path.is_empty() {
        format!("invalid arguments: {inner}")
    } else {
        format!("invalid argument `{path}`: {inner}")
    }
}

/// The tool fn's return value, normalised to `Result<T, CallError>`.
///
/// Implemented for `Result<T, E>` with `E: Display`; the macro wraps a plain
/// `T` return in `Ok::<T, Infallible>` so both shapes meet here.
pub trait IntoToolOutput {
    type Output: Serialize + JsonSchema;
    fn into_tool_output(self) -> Result<Self::Output, CallError>;
}

impl<T, E> IntoToolOutput for Result<T, E>
where
    T: Serialize + JsonSchema,
    E: fmt::Display,
{
    type Output = T;
    fn into_tool_output(self) -> Result<T, CallError> {
        self.map_err(|e| CallError::Tool(e.to_string()))
    }
}
