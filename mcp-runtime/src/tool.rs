//! The type-erased tool: what `#[mcp_tool]` builds from an async fn, and what
//! the registry and dispatcher hold.
//!
//! Type erasure happens in exactly one place, [`Tool::from_parts`]: the
//! generated code hands over a concrete handler, and from then on the runtime
//! only sees [`BoxedHandler`]. What a tool returns becomes a [`ToolOutput`]
//! through [`IntoToolResult`], and a `CallToolResult` on the wire through
//! `write_call_result`, the one place that shapes it.

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::arguments::Signature;
use crate::content::{CallToolResult, Content};
use crate::context::RequestContext;
use crate::extract::StateMap;
use crate::protocol::{json_str_len, push_json_str};
use crate::schema::{self, OutputSchema, WRAPPED_RESULT_KEY};

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

/// A tool's result, serialized once, ready to be put on the wire.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// The tool's value as JSON: `structuredContent` when the tool publishes
    /// an output schema, and the text of the single text block unless
    /// `content` is given.
    pub(crate) value: Option<Box<RawValue>>,
    /// Content blocks the tool chose itself, as a JSON array.
    pub(crate) content: Option<Box<RawValue>>,
    pub(crate) is_error: bool,
    /// The result's `_meta` object.
    pub(crate) meta: Option<Box<RawValue>>,
}

impl ToolOutput {
    /// A plain value: `structuredContent` (when the tool has an output
    /// schema) and one text block of the same JSON.
    pub fn value<T: Serialize + ?Sized>(value: &T) -> Result<ToolOutput, CallError> {
        Ok(ToolOutput { value: Some(to_raw(value)?), content: None, is_error: false, meta: None })
    }

    /// The value as JSON, if the result has one.
    pub fn json(&self) -> Option<&RawValue> {
        self.value.as_deref()
    }

    /// The content blocks the tool chose itself (a JSON array), if any.
    pub fn content(&self) -> Option<&RawValue> {
        self.content.as_deref()
    }

    pub fn is_error(&self) -> bool {
        self.is_error
    }
}

fn to_raw<T: Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, CallError> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| CallError::Internal(format!("the tool's result could not be serialized: {e}")))
}

/// A result that chooses its own content blocks: [`Content`],
/// `Vec<Content>` and [`CallToolResult<T>`]. Implement it for a type of
/// your own to return that type from tools.
///
/// Everything else a tool returns is a plain value ([`ToolResultValue`]):
/// sent as `structuredContent` with an `outputSchema` from its type (see
/// [`schema::output_schema`]) and as a JSON text block (a string goes out
/// as its plain text). `#[mcp_tool]` tells the two apart by trait, as it
/// does parameters; a type that is both is returned as this.
pub trait IntoToolResult {
    /// The schemas published for this result type, if it has one.
    fn output_schema() -> Option<OutputSchema>;

    /// Serializes the result.
    fn into_tool_output(self) -> Result<ToolOutput, CallError>;
}

impl IntoToolResult for Content {
    fn output_schema() -> Option<OutputSchema> {
        None
    }

    fn into_tool_output(self) -> Result<ToolOutput, CallError> {
        Ok(ToolOutput { value: None, content: Some(to_raw(&[self])?), is_error: false, meta: None })
    }
}

impl IntoToolResult for Vec<Content> {
    fn output_schema() -> Option<OutputSchema> {
        None
    }

    fn into_tool_output(self) -> Result<ToolOutput, CallError> {
        Ok(ToolOutput { value: None, content: Some(to_raw(&self)?), is_error: false, meta: None })
    }
}

impl<T: Serialize + JsonSchema> IntoToolResult for CallToolResult<T> {
    fn output_schema() -> Option<OutputSchema> {
        schema::output_schema::<T>()
    }

    fn into_tool_output(self) -> Result<ToolOutput, CallError> {
        // Sent as `structuredContent` only when `T` has a schema (the tool
        // knows); for `()` this is a `null` nothing reads.
        let value = Some(to_raw(&self.structured)?);
        let content = self.content.as_deref().map(to_raw).transpose()?;
        let meta = self.meta.as_ref().map(to_raw).transpose()?;
        Ok(ToolOutput { value, content, is_error: self.is_error, meta })
    }
}

/// A plain value a tool returns: `structuredContent` plus a text block.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by an MCP tool",
    label = "needs `serde::Serialize` and `schemars::JsonSchema`",
    note = "derive `Serialize` and `JsonSchema` for it; `JsonSchema` must come from schemars 1.x (re-exported as \
            `mcp_runtime::schemars`): one derived with schemars 0.8 is a different trait",
    note = "or return `Content`, `Vec<Content>` or `CallToolResult` to choose the content blocks yourself"
)]
pub trait ToolResultValue: Serialize + JsonSchema {}

impl<T: Serialize + JsonSchema> ToolResultValue for T {}

/// The success type of a tool fn returning a `Result`, however the
/// `Result` is spelled (`std::io::Result<T>`, an alias...).
pub trait ResultOk {
    type Ok;
}

impl<T, E> ResultOk for Result<T, E> {
    type Ok = T;
}

/// Selects how a tool's success value `R` is sent, by its traits (the
/// same autoref selection as parameters, see the `arguments` module):
/// [`IntoToolResult`] first, then a plain value, else an error.
/// `B` is the type an error names: `R`'s element (`Hit` in `Vec<Hit>`).
pub struct ResultProbe<R, B = R>(std::marker::PhantomData<fn() -> (R, B)>);

impl<R, B> ResultProbe<R, B> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ResultProbe(std::marker::PhantomData)
    }
}

impl<R, B> Clone for ResultProbe<R, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, B> Copy for ResultProbe<R, B> {}

/// The result probe traits; the macro imports them as `_`.
pub mod result_probe {
    use super::*;

    pub trait RichProbe {
        type R;
        fn __mcp_result_kind(self) -> RichResult<Self::R>;
    }

    impl<R: IntoToolResult, B> RichProbe for &&ResultProbe<R, B> {
        type R = R;
        fn __mcp_result_kind(self) -> RichResult<R> {
            RichResult(std::marker::PhantomData)
        }
    }

    pub trait ValueProbe {
        type R;
        fn __mcp_result_kind(self) -> ValueResult<Self::R>;
    }

    impl<R: ToolResultValue, B> ValueProbe for &ResultProbe<R, B> {
        type R = R;
        fn __mcp_result_kind(self) -> ValueResult<R> {
            ValueResult(std::marker::PhantomData)
        }
    }

    /// Reports the element type first; the second bound then adds
    /// nothing new (rustc reports one missing trait per type and place).
    pub trait NeitherProbe {
        type R;
        type B;
        fn __mcp_result_kind(self) -> UnusableResult<Self::R>
        where
            Self::B: ToolResultValue,
            Self::R: ToolResultValue;
    }

    impl<R, B> NeitherProbe for ResultProbe<R, B> {
        type R = R;
        type B = B;
        fn __mcp_result_kind(self) -> UnusableResult<R>
        where
            B: ToolResultValue,
            R: ToolResultValue,
        {
            UnusableResult(std::marker::PhantomData)
        }
    }
}

/// A result that builds its own blocks.
pub struct RichResult<R>(std::marker::PhantomData<fn() -> R>);

impl<R: IntoToolResult> RichResult<R> {
    pub fn output_schema(self) -> Option<OutputSchema> {
        R::output_schema()
    }

    pub fn encode(self, result: R) -> Result<ToolOutput, CallError> {
        result.into_tool_output()
    }
}

/// A plain value.
pub struct ValueResult<R>(std::marker::PhantomData<fn() -> R>);

impl<R: ToolResultValue> ValueResult<R> {
    pub fn output_schema(self) -> Option<OutputSchema> {
        schema::output_schema::<R>()
    }

    pub fn encode(self, value: R) -> Result<ToolOutput, CallError> {
        ToolOutput::value(&value)
    }
}

/// Neither; the probe reported the error, these add none.
pub struct UnusableResult<R>(std::marker::PhantomData<fn() -> R>);

impl<R> UnusableResult<R> {
    pub fn output_schema(self) -> Option<OutputSchema> {
        None
    }

    pub fn encode(self, _: R) -> Result<ToolOutput, CallError> {
        Err(CallError::Internal("a result type that cannot be sent".to_owned()))
    }
}

/// The message of a tool fn's `Err(e)`: `e.to_string()`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of an MCP tool",
    label = "needs `std::fmt::Display`",
    note = "the model reads `e.to_string()`: implement `Display` for it, or map it into a `ToolError` with \
            `.map_err(..)`"
)]
pub trait ToolErrorMessage {
    fn message(&self) -> String;
}

impl<E: fmt::Display> ToolErrorMessage for E {
    fn message(&self) -> String {
        self.to_string()
    }
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

impl StateRequirement {
    /// The requirement for state of type `T`.
    pub fn of<T: 'static>() -> StateRequirement {
        StateRequirement { type_id: TypeId::of::<T>, type_name: std::any::type_name::<T>() }
    }
}

/// Checks that a tool's future is `Send`, to add a hint to rustc's own
/// error (which `#[diagnostic::on_unimplemented]` cannot change): by
/// autoref, as parameters are probed, the `Send` case or else an
/// unsatisfiable bound carrying the hint.
pub struct FutureProbe<F>(std::marker::PhantomData<fn() -> F>);

/// The probe for the futures `handler` returns.
pub fn probe_future<H, F>(_handler: &H) -> FutureProbe<F>
where
    H: Fn(ToolCall) -> F,
{
    FutureProbe(std::marker::PhantomData)
}

/// The `Send` probe traits; the macro imports them as `_`.
pub mod send_probe {
    use super::*;

    pub trait SendFuture {
        fn __mcp_check_send(self);
    }

    impl<F: Send> SendFuture for &FutureProbe<F> {
        fn __mcp_check_send(self) {}
    }

    pub trait NotSendFuture {
        type F;
        fn __mcp_check_send(self)
        where
            Self::F: NotSend;
    }

    impl<F> NotSendFuture for FutureProbe<F> {
        type F = F;
        fn __mcp_check_send(self)
        where
            F: NotSend,
        {
        }
    }
}

/// Never implemented: the hint a non-`Send` tool future gets.
#[diagnostic::on_unimplemented(
    message = "this MCP tool cannot run: its future is not `Send` (the server runs calls on many threads)",
    label = "holds a value that is not `Send` across an `.await`",
    note = "the next error shows which value and which `.await`; a `std::sync::MutexGuard`, an `Rc` or a \
            `RefCell` borrow is the usual one",
    note = "drop it before the `.await` (end its block or call `drop(guard)`), or use `tokio::sync::Mutex`, whose \
            guard is `Send`"
)]
pub trait NotSend {}

/// One tool, ready to be registered on a server.
#[derive(Clone)]
pub struct Tool {
    pub(crate) meta: ToolMeta,
    /// The `inputSchema` object, computed once at registration.
    pub(crate) input_schema: Arc<Map<String, Value>>,
    /// The output schemas, present when the result type has one.
    pub(crate) output: Option<Arc<OutputSchema>>,
    pub(crate) required_state: Vec<StateRequirement>,
    /// Mistakes in the tool's definition the compiler cannot see; the
    /// server refuses to start while any is left.
    pub(crate) defects: Vec<String>,
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
    /// `signature` holds the `inputSchema` and the state the parameters
    /// need; `output` the schemas of what it returns (see
    /// [`schema::output_schema`]); `handler` reads the arguments, runs the
    /// extractors, awaits the user's fn and serializes what it returned.
    pub fn from_parts<F, Fut>(meta: ToolMeta, signature: Signature, output: Option<OutputSchema>, handler: F) -> Tool
    where
        F: Fn(ToolCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, CallError>> + Send + 'static,
    {
        let (input_schema, required_state, defects) = signature.finish();
        let handler: BoxedHandler = Arc::new(move |call: ToolCall| Box::pin(handler(call)));
        Tool {
            meta,
            input_schema: Arc::new(input_schema),
            output: output.map(Arc::new),
            required_state,
            defects,
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

    pub fn input_schema(&self) -> &Map<String, Value> {
        &self.input_schema
    }

    /// The `outputSchema` as published to protocol versions up to
    /// 2025-11-25: always an object, the result wrapped as `{"result": ..}`
    /// (and marked `x-fastmcp-wrap-result`) when it is not one.
    pub fn output_schema(&self) -> Option<&Map<String, Value>> {
        self.output.as_deref().and_then(|o| o.object.as_object())
    }

    /// The schema of the result itself, any JSON type: the `outputSchema`
    /// of 2026-07-28 and later.
    pub fn result_schema(&self) -> Option<&Value> {
        self.output.as_deref().map(|o| &o.value)
    }

    /// Whether older protocol versions get the result wrapped as `{"result": ..}`.
    pub fn wraps_result(&self) -> bool {
        self.output.as_deref().is_some_and(|o| o.wrapped)
    }

    /// The `outputSchema` for a request of protocol `version`.
    pub fn output_schema_for(&self, version: &str) -> Option<&Value> {
        let output = self.output.as_deref()?;
        Some(if wraps_non_object_results(version) { &output.object } else { &output.value })
    }

    pub fn required_state(&self) -> &[StateRequirement] {
        &self.required_state
    }

    /// What is wrong with the tool's definition beyond what the compiler
    /// checks (for example a `#[mcp(flatten)]` type whose schema is not an
    /// object). A server refuses to start while any tool has a defect.
    pub fn defects(&self) -> &[String] {
        &self.defects
    }

    /// Runs the tool. Panics are not caught here: the dispatcher does that,
    /// so that it can answer the call and keep the connection.
    pub fn call(&self, call: ToolCall) -> BoxFuture<Result<ToolOutput, CallError>> {
        (self.handler)(call)
    }
}

/// Whether a request of protocol `version` needs a non-object result
/// wrapped as `{"result": value}`: `structuredContent` and `outputSchema`
/// must be objects up to 2025-11-25; SEP-2106 (2026-07-28) allows any JSON.
/// The one place the dispatcher asks, with the version it negotiated.
pub fn wraps_non_object_results(version: &str) -> bool {
    // Protocol versions are dates, so they order as strings.
    version < "2026-07-28"
}

/// Writes the `result` of a `tools/call` response (a `CallToolResult`
/// object, without its closing brace, so the caller can append members) to
/// `out`. With `wrap`, a tool whose result is not an object sends
/// `structuredContent` as `{"result": value}`.
///
/// Generic over [`ResultSink`] so the dispatcher can measure the exact
/// length first and allocate once.
pub(crate) fn write_call_result(
    out: &mut impl ResultSink,
    tool: &Tool,
    outcome: &Result<ToolOutput, CallError>,
    wrap: bool,
) {
    let output = match outcome {
        Ok(output) => output,
        Err(e) => {
            out.push(r#"{"content":[{"type":"text","text":"#);
            out.push_json_str(e.message());
            out.push(r#"}],"isError":true"#);
            return;
        }
    };
    let structured = tool.output.as_deref().zip(output.value.as_deref());
    out.push(r#"{"content":"#);
    match (&output.content, &output.value) {
        (Some(content), _) => out.push(content.get()),
        (None, Some(value)) => {
            out.push(r#"[{"type":"text","text":"#);
            let json = value.get();
            if json.starts_with('"') {
                // A string result reads as its text, not as a quoted JSON
                // string; the literal is already that text, escaped.
                out.push(json);
            } else {
                out.push_json_str(json);
            }
            out.push("}]");
        }
        (None, None) => out.push("[]"),
    }
    if let Some((schema, value)) = structured {
        out.push(r#","structuredContent":"#);
        if wrap && schema.wrapped {
            out.push(r#"{""#);
            out.push(WRAPPED_RESULT_KEY);
            out.push(r#"":"#);
            out.push(value.get());
            out.push("}");
        } else {
            out.push(value.get());
        }
    }
    out.push(if output.is_error { r#","isError":true"# } else { r#","isError":false"# });
    if let Some(meta) = &output.meta {
        out.push(r#","_meta":"#);
        out.push(meta.get());
    }
}

/// Where [`write_call_result`] writes: a `String`, or a [`Measure`] that
/// only counts the bytes.
pub(crate) trait ResultSink {
    fn push(&mut self, s: &str);
    /// `s` as a JSON string literal.
    fn push_json_str(&mut self, s: &str);
}

impl ResultSink for String {
    fn push(&mut self, s: &str) {
        self.push_str(s);
    }

    fn push_json_str(&mut self, s: &str) {
        push_json_str(self, s);
    }
}

/// Counts what would be written.
#[derive(Default)]
pub(crate) struct Measure(pub(crate) usize);

impl ResultSink for Measure {
    fn push(&mut self, s: &str) {
        self.0 += s.len();
    }

    fn push_json_str(&mut self, s: &str) {
        self.0 += json_str_len(s);
    }
}

/// The result of a legacy direct call (method = tool name): the tool's JSON
/// as it is; a result with content blocks of its own goes out as the whole
/// `CallToolResult` object, unwrapped.
pub(crate) fn legacy_result_json(tool: &Tool, output: &ToolOutput) -> String {
    match (&output.content, &output.value, output.is_error) {
        (None, Some(value), false) => value.get().to_owned(),
        _ => {
            let mut out = String::new();
            write_call_result(&mut out, tool, &Ok(output.clone()), false);
            out.push('}');
            out
        }
    }
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

    /// The arguments as sent, `None` when absent or `null`.
    pub fn raw_arguments(&self) -> Option<&RawValue> {
        self.arguments.as_deref().filter(|raw| raw.get() != "null")
    }

    /// Deserializes the whole arguments object into `A` (absent or `null`
    /// arguments read as `{}`); an error names the path of what was wrong.
    pub fn arguments<A: DeserializeOwned>(&self) -> Result<A, CallError> {
        let raw = self.raw_arguments().map_or("{}", RawValue::get);
        // Path tracking costs on every call; only a failure needs the path,
        // so parse plainly and parse again with tracking to describe an error.
        serde_json::from_str(raw).or_else(|_| {
            let mut de = serde_json::Deserializer::from_str(raw);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.inner().to_string();
                let inner = crate::protocol::strip_position(&inner);
                CallError::InvalidArguments(if path == "." || path.is_empty() {
                    format!("invalid arguments: {inner}")
                } else {
                    format!("invalid argument `{path}`: {inner}")
                })
            })
        })
    }

    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    pub fn state(&self) -> &StateMap {
        &self.state
    }
}
