//! `#[mcp_tool]`: turns an `async fn` into an MCP tool. See the `mcp-runtime`
//! crate docs for the user-facing contract; this crate only emits code that
//! names `::mcp_runtime::__private`.
//!
//! The stages live apart, as in serde_derive: [`attr`] reads attributes,
//! [`ast`] models the fn, [`check`] validates it, [`expand`] emits tokens,
//! and [`ctxt`] collects every error so all of them are reported at once.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;
use syn::ItemFn;

use crate::ctxt::Ctxt;

/// Turns an `async fn` into an MCP tool.
///
/// ```
/// use mcp_runtime::{ToolError, ToolFactory, mcp_tool};
///
/// #[derive(serde::Serialize, schemars::JsonSchema)]
/// struct Sum {
///     sum: i64,
/// }
///
/// /// Add two numbers.
/// #[mcp_tool(read_only)]
/// async fn add(
///     /// First addend
///     a: i64,
///     /// Second addend; 0 when absent
///     b: Option<i64>,
/// ) -> Result<Sum, ToolError> {
///     a.checked_add(b.unwrap_or(0)).map(|sum| Sum { sum }).ok_or_else(|| "overflow".into())
/// }
///
/// let tool = <add as ToolFactory>::tool();
/// assert_eq!(tool.name(), "add");
/// assert_eq!(tool.meta().description, Some("Add two numbers."));
/// assert_eq!(tool.input_schema()["required"], serde_json::json!(["a"]));
/// ```
///
/// - **Name**: the fn's name, or `name = "..."`; checked at compile time
///   against `^[A-Za-z0-9_.-]{1,64}$`.
/// - **Description**: the fn's doc comment, or `description = "..."`;
///   `title = "..."` sets the display title.
/// - **Annotations**: `read_only`, `destructive`, `idempotent`, `open_world`
///   (bare for `true`, or `= true` / `= false`).
/// - **Arguments**: each parameter whose type is `Deserialize + JsonSchema`
///   (schemars 1.x) is one property of the `inputSchema`, named exactly like
///   the parameter (`r#type` is `type`) and described by its `///` comment.
///   `Option<T>` is optional with `T`'s schema; `#[mcp(default = EXPR)]`
///   (or bare `#[mcp(default)]` for `Default::default()`) makes a parameter
///   optional, uses `EXPR` when it is absent and publishes it as `default`.
///   Arguments must be a JSON object; unknown names, and unknown fields of
///   nested objects where the schema says `additionalProperties: false`,
///   are refused, all problems in one error.
/// - **`#[mcp(flatten)]`**: the parameter's type is the whole arguments
///   object and its schema the whole `inputSchema`; it must be the only
///   argument.
/// - **Injected parameters**: a parameter whose type implements
///   `FromToolCall` (`State<T>`, `RequestContext`, or a type of your own) is
///   built from the call, not read from the arguments, however its type is
///   imported or named. The choice is made by trait in the generated code;
///   a type that is both is injected.
/// - **Return**: `Result<T, E>` (any path whose last segment is `Result`,
///   e.g. `std::io::Result<T>`) with `E: Display`, or a plain `T`. A `T` of
///   `Serialize + JsonSchema` gets an `outputSchema` (wrapped as
///   `{"result": ..}` for older protocol versions when it is not an object);
///   `Content`, `Vec<Content>` and `CallToolResult` choose their own blocks.
///
/// Beside the fn, a hidden unit type of the same name implements
/// `ToolFactory` (register it with `ServerBuilder::tool::<add>()`), and the
/// tool is submitted to the inventory behind `discovered_tools()`.
///
/// Not allowed, each reported on the offending token: a non-`async`,
/// generic, `const` or `unsafe` fn; a `self` receiver; a pattern instead of
/// a parameter name; a borrowed or `impl Trait` parameter type; `#[cfg]` on
/// a parameter; more than 20 parameters; a parameter that is neither an
/// argument nor injected; a result or error type the runtime cannot send; a
/// future that is not `Send`; unknown, repeated or mistyped options.
#[proc_macro_attribute]
pub fn mcp_tool(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_tokens = proc_macro2::TokenStream::from(item);
    let item: ItemFn = match syn::parse2(item_tokens.clone()) {
        Ok(item) => item,
        Err(_) => {
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[mcp_tool] goes on an `async fn` (a free function, not a method, struct or module)",
            )
            .to_compile_error();
            return quote::quote!(#err #item_tokens).into();
        }
    };
    let cx = Ctxt::new();
    let attrs = attr::parse_tool_attrs(&cx, args.into());
    let tool = ast::Tool::from_item(&cx, attrs, &item);
    check::check(&cx, &tool);
    match cx.check() {
        Ok(()) => expand::expand(&tool),
        Err(errors) => expand::fallback(&item, errors),
    }
    .into()
}
