//! Reads the attributes: the `#[mcp_tool(...)]` options, the `#[mcp(...)]`
//! parameter options and `///` doc comments. One helper per option, each
//! reporting a wrong value on the value's own token.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit, LitBool, LitStr, Meta, Token};

use crate::ctxt::Ctxt;

/// The options of `#[mcp_tool(...)]`, each kept with its token for errors.
#[derive(Default)]
pub(crate) struct ToolAttrs {
    pub(crate) name: Option<LitStr>,
    pub(crate) title: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) read_only: Option<bool>,
    pub(crate) destructive: Option<bool>,
    pub(crate) idempotent: Option<bool>,
    pub(crate) open_world: Option<bool>,
}

const TOOL_OPTIONS: &str = "name, title, description, read_only, destructive, idempotent, open_world";

/// One option that may be given at most once.
struct Once<'c, T> {
    cx: &'c Ctxt,
    name: &'static str,
    value: Option<T>,
}

impl<'c, T> Once<'c, T> {
    fn new(cx: &'c Ctxt, name: &'static str) -> Self {
        Once { cx, name, value: None }
    }

    /// Stores `value` unless the option was already given; a repeat is an
    /// error on the repeated option, even if its value was malformed.
    fn set(&mut self, obj: impl ToTokens, value: Option<T>) {
        if self.value.is_some() {
            self.cx.error_spanned_by(obj, format!("duplicate `{}` option", self.name));
        } else if let Some(value) = value {
            self.value = Some(value);
        }
    }
}

pub(crate) fn parse_tool_attrs(cx: &Ctxt, args: TokenStream) -> ToolAttrs {
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(e) => {
            cx.syn_error(e);
            return ToolAttrs::default();
        }
    };
    let mut name = Once::new(cx, "name");
    let mut title = Once::new(cx, "title");
    let mut description = Once::new(cx, "description");
    let mut read_only = Once::new(cx, "read_only");
    let mut destructive = Once::new(cx, "destructive");
    let mut idempotent = Once::new(cx, "idempotent");
    let mut open_world = Once::new(cx, "open_world");
    for meta in &metas {
        let path = meta.path();
        let key = path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        match key.as_str() {
            "name" => name.set(path, string_option(cx, "name", meta)),
            "title" => title.set(path, string_option(cx, "title", meta)),
            "description" => description.set(path, string_option(cx, "description", meta)),
            "read_only" => read_only.set(path, flag_option(cx, "read_only", meta)),
            "destructive" => destructive.set(path, flag_option(cx, "destructive", meta)),
            "idempotent" => idempotent.set(path, flag_option(cx, "idempotent", meta)),
            "open_world" => open_world.set(path, flag_option(cx, "open_world", meta)),
            _ => cx.error_spanned_by(
                path,
                format!("unknown #[mcp_tool] option `{}`; expected one of: {TOOL_OPTIONS}", path.to_token_stream()),
            ),
        }
    }
    ToolAttrs {
        name: name.value,
        title: title.value,
        description: description.value,
        read_only: read_only.value,
        destructive: destructive.value,
        idempotent: idempotent.value,
        open_world: open_world.value,
    }
}

/// `key = "text"`.
fn string_option(cx: &Ctxt, key: &str, meta: &Meta) -> Option<LitStr> {
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Some(s.clone()),
            other => {
                cx.error_spanned_by(other, format!("`{key}` takes a string literal: `{key} = \"...\"`"));
                None
            }
        },
        _ => {
            cx.error_spanned_by(meta, format!("`{key}` takes a string literal: `{key} = \"...\"`"));
            None
        }
    }
}

/// `key` (meaning true) or `key = true|false`.
fn flag_option(cx: &Ctxt, key: &str, meta: &Meta) -> Option<bool> {
    match meta {
        Meta::Path(_) => Some(true),
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit { lit: Lit::Bool(LitBool { value, .. }), .. }) => Some(*value),
            other => {
                cx.error_spanned_by(
                    other,
                    format!("`{key}` takes `true` or `false`: write `{key}` or `{key} = false`"),
                );
                None
            }
        },
        Meta::List(list) => {
            cx.error_spanned_by(list, format!("`{key}` takes `true` or `false`: write `{key}` or `{key} = false`"));
            None
        }
    }
}

/// The options of `#[mcp(...)]` on one parameter.
#[derive(Default)]
pub(crate) struct ParamAttrs {
    /// `default = EXPR`: used when the argument is absent.
    pub(crate) default: Option<Expr>,
    /// `flatten`: the parameter takes the whole arguments object.
    pub(crate) flatten: Option<syn::Path>,
}

pub(crate) fn parse_param_attrs(cx: &Ctxt, attrs: &[Attribute]) -> ParamAttrs {
    let mut default = Once::new(cx, "default");
    let mut flatten = Once::new(cx, "flatten");
    for attr in attrs.iter().filter(|a| a.path().is_ident("mcp")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                // Bare `default` means `Default::default()`, as in serde.
                let expr: Expr = if meta.input.peek(Token![=]) {
                    meta.value()?.parse()?
                } else {
                    syn::parse_quote_spanned!(meta.path.span()=> ::core::default::Default::default())
                };
                default.set(&meta.path, Some(expr));
                Ok(())
            } else if meta.path.is_ident("flatten") {
                if meta.input.peek(Token![=]) {
                    return Err(meta.error("`flatten` takes no value: write `#[mcp(flatten)]`"));
                }
                flatten.set(&meta.path, Some(meta.path.clone()));
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown #[mcp] parameter option `{}`; expected `default`, `default = EXPR` or `flatten`",
                    meta.path.to_token_stream()
                )))
            }
        });
        if let Err(e) = parsed {
            cx.syn_error(e);
        }
    }
    ParamAttrs { default: default.value, flatten: flatten.value }
}

/// True for the attributes `#[mcp_tool]` consumes from a parameter: rustc
/// rejects doc comments on parameters, and `#[mcp]` is ours alone.
pub(crate) fn is_param_attr_we_consume(attr: &Attribute) -> bool {
    attr.path().is_ident("doc") || attr.path().is_ident("mcp")
}

/// The text of `///` comments as rustdoc would read it: each line loses one
/// leading space, blank lines (paragraphs) stay, the whole is trimmed.
/// Non-literal docs (`#[doc = include_str!(..)]`) cannot be read here.
pub(crate) fn doc_text(cx: &Ctxt, attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        let Meta::NameValue(nv) = &attr.meta else { continue };
        match &nv.value {
            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => {
                let text = s.value();
                lines.extend(text.split('\n').map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end().to_owned()));
            }
            other => cx.error_spanned_by(
                other,
                "#[mcp_tool] reads doc comments as the description and needs them as string literals; \
                 use `description = \"...\"` instead",
            ),
        }
    }
    let text = lines.join("\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
