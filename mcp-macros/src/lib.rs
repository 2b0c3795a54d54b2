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

/// Declares an MCP tool. See `mcp_runtime::mcp_tool`.
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
