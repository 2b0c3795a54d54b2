//! The rules a `#[mcp_tool]` fn must follow, each reported on the token the
//! user has to change.

use syn::visit::{self, Visit};
use syn::{Lifetime, Type, TypeImplTrait, TypeReference};

use crate::ast::{NameToken, Tool};
use crate::ctxt::Ctxt;

/// MCP tool names: what clients accept (`^[A-Za-z0-9_.-]{1,64}$`).
const MAX_NAME_LEN: usize = 64;

pub(crate) fn check(cx: &Ctxt, tool: &Tool<'_>) {
    check_signature(cx, tool);
    check_name(cx, tool);
    check_params(cx, tool);
}

fn check_signature(cx: &Ctxt, tool: &Tool<'_>) {
    let sig = &tool.item.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, "#[mcp_tool] needs an `async fn`: add `async` before `fn`");
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, "#[mcp_tool] cannot be a `const fn`");
    }
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(u, "#[mcp_tool] cannot be an `unsafe fn`: the runtime calls it from safe code");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "#[mcp_tool] cannot have an `extern` ABI");
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "#[mcp_tool] cannot be variadic");
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics,
            "#[mcp_tool] cannot be generic: the runtime must know every parameter's type to build its schema; \
             use concrete types",
        );
    }
    if let Some(wc) = &sig.generics.where_clause {
        cx.error_spanned_by(wc, "#[mcp_tool] cannot have a `where` clause: use concrete types");
    }
    for r in &tool.receivers {
        cx.error_spanned_by(
            r,
            "#[mcp_tool] goes on a free `async fn`, not a method: take shared data as `State<T>` instead of `self`",
        );
    }
}

fn check_name(cx: &Ctxt, tool: &Tool<'_>) {
    let name = &tool.name;
    if name.is_empty() {
        match &tool.name_token {
            NameToken::Lit(lit) => {
                cx.error_spanned_by(lit, "the MCP tool name is empty; remove `name` to use the fn name")
            }
            NameToken::Ident(ident) => cx.error_spanned_by(ident, "the MCP tool name is empty"),
        }
        return;
    }
    let problem = if name.len() > MAX_NAME_LEN {
        Some(format!("is {} bytes long; at most {MAX_NAME_LEN} are allowed", name.len()))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .map(|c| format!("contains {c:?}; only ASCII letters, digits, `_`, `.` and `-` are allowed"))
    };
    let Some(problem) = problem else { return };
    let msg = format!("invalid MCP tool name `{name}`: it {problem}");
    match &tool.name_token {
        NameToken::Ident(ident) => cx.error_spanned_by(ident, format!("{msg}; rename the fn or set `name = \"...\"`")),
        NameToken::Lit(lit) => cx.error_spanned_by(lit, msg),
    }
}

/// The runtime reads parameters into tuples of up to this many slots
/// (`mcp_runtime::__private::MAX_PARAMETERS`).
const MAX_PARAMETERS: usize = 20;

fn check_params(cx: &Ctxt, tool: &Tool<'_>) {
    if let Some(extra) = tool.params.get(MAX_PARAMETERS) {
        cx.error_spanned_by(
            extra.original,
            format!(
                "#[mcp_tool] takes at most {MAX_PARAMETERS} parameters; group related arguments into a struct \
                 (one parameter whose fields are nested arguments), or use `#[mcp(flatten)]`"
            ),
        );
    }
    let mut flattened = None;
    for param in &tool.params {
        if param.ident.is_none() {
            cx.error_spanned_by(
                &param.original.pat,
                "#[mcp_tool] parameters must be plain names, because each name is an argument name: \
                 write `name: Type` and destructure inside the fn body",
            );
        }
        for attr in &param.original.attrs {
            if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                cx.error_spanned_by(
                    attr,
                    "#[mcp_tool] cannot compile parameters in or out: every parameter is part of the tool's schema; \
                     make the whole tool conditional instead",
                );
            }
        }
        check_owned_type(cx, param.ty);
        let Some(flatten) = &param.attrs.flatten else { continue };
        if let Some(first) = flattened.replace(param.name.as_str()) {
            cx.error_spanned_by(
                flatten,
                format!(
                    "only one parameter can be `#[mcp(flatten)]`: it takes the whole arguments object, and `{first}` \
                     already does"
                ),
            );
        }
        if let Some(default) = &param.attrs.default {
            cx.error_spanned_by(
                default,
                "a `#[mcp(flatten)]` parameter has no default: it is the whole arguments object, `{}` when none \
                 are sent; give its type `#[serde(default)]` fields instead",
            );
        }
        if param.option_inner.is_some() {
            cx.error_spanned_by(
                param.ty,
                "a `#[mcp(flatten)]` parameter cannot be an `Option`: the arguments object is always there (`{}` \
                 when none are sent); make its fields optional instead",
            );
        }
    }
}

/// Arguments are deserialized into an owned value that outlives the call's
/// JSON, and their type is named outside the fn: no borrows, no lifetimes,
/// no `impl Trait` (an anonymous generic).
fn check_owned_type(cx: &Ctxt, ty: &Type) {
    struct Finder<'c> {
        cx: &'c Ctxt,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_impl_trait(&mut self, i: &'ast TypeImplTrait) {
            self.cx.error_spanned_by(
                i,
                "#[mcp_tool] parameters cannot be `impl Trait` (an anonymous generic); use a concrete type",
            );
        }
        fn visit_type_reference(&mut self, i: &'ast TypeReference) {
            self.cx.error_spanned_by(
                i,
                "#[mcp_tool] arguments are deserialized into owned values; take an owned type \
                 (for example `String` instead of `&str`, `Vec<T>` instead of `&[T]`)",
            );
        }
        fn visit_lifetime(&mut self, i: &'ast Lifetime) {
            self.cx.error_spanned_by(
                i,
                "#[mcp_tool] arguments are deserialized into owned values and cannot borrow; remove the lifetime",
            );
            visit::visit_lifetime(self, i);
        }
    }
    Finder { cx }.visit_type(ty);
}
