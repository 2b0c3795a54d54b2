//! `#[mcp_tool]`: see the `mcp-runtime` crate docs.
use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn mcp_tool(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
