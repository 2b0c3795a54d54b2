//! The model of one `#[mcp_tool]` fn, borrowed from syn: every piece keeps
//! the user's original node so errors and generated code carry its span.

use syn::{FnArg, GenericArgument, Ident, ItemFn, LitStr, Pat, PatType, PathArguments, Receiver, ReturnType, Type};

use crate::attr::{self, ToolAttrs};
use crate::ctxt::Ctxt;

pub(crate) struct Tool<'a> {
    pub(crate) item: &'a ItemFn,
    pub(crate) attrs: ToolAttrs,
    /// The tool's name and the token an error about it points at.
    pub(crate) name: String,
    pub(crate) name_token: NameToken<'a>,
    pub(crate) description: Option<String>,
    pub(crate) receivers: Vec<&'a Receiver>,
    pub(crate) params: Vec<Param<'a>>,
    pub(crate) output: Output<'a>,
}

pub(crate) enum NameToken<'a> {
    Ident(&'a Ident),
    Lit(LitStr),
}

pub(crate) struct Param<'a> {
    pub(crate) original: &'a PatType,
    /// `None` when the parameter is a pattern rather than a plain name.
    pub(crate) ident: Option<&'a Ident>,
    pub(crate) ty: &'a Type,
    /// The argument name on the wire: the parameter name without `r#`.
    /// Whether the parameter is an argument or injected is decided by its
    /// type's traits, in the generated code (see `mcp_runtime::arguments`).
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// `T` when the parameter is `Option<T>`: optional, with `T`'s schema.
    pub(crate) option_inner: Option<&'a Type>,
    /// `#[mcp(...)]` options.
    pub(crate) attrs: attr::ParamAttrs,
}

pub(crate) enum Output<'a> {
    /// `-> Result<T, E>` (any path whose last segment is `Result`).
    Result(&'a Type),
    /// `-> T`, including `()` when there is no return type.
    Plain(Option<&'a Type>),
}

impl<'a> Tool<'a> {
    pub(crate) fn from_item(cx: &Ctxt, attrs: ToolAttrs, item: &'a ItemFn) -> Tool<'a> {
        let (name, name_token) = match &attrs.name {
            Some(lit) => (lit.value(), NameToken::Lit(lit.clone())),
            None => (unraw(&item.sig.ident), NameToken::Ident(&item.sig.ident)),
        };
        let description = match &attrs.description {
            Some(lit) => Some(lit.value().trim().to_owned()).filter(|d| !d.is_empty()),
            None => attr::doc_text(cx, &item.attrs),
        };
        let mut receivers = Vec::new();
        let mut params = Vec::new();
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(r) => receivers.push(r),
                FnArg::Typed(pt) => params.push(Param::from_pat_type(cx, pt)),
            }
        }
        let output = match &item.sig.output {
            ReturnType::Default => Output::Plain(None),
            ReturnType::Type(_, ty) if last_segment_is(ty, "Result") => Output::Result(ty),
            ReturnType::Type(_, ty) => Output::Plain(Some(ty)),
        };
        Tool { item, attrs, name, name_token, description, receivers, params, output }
    }
}

impl<'a> Param<'a> {
    fn from_pat_type(cx: &Ctxt, original: &'a PatType) -> Param<'a> {
        let ident = match &*original.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(&p.ident),
            _ => None,
        };
        let ty = &*original.ty;
        Param {
            original,
            ident,
            ty,
            name: ident.map(unraw).unwrap_or_default(),
            description: attr::doc_text(cx, &original.attrs),
            option_inner: option_inner(ty),
            attrs: attr::parse_param_attrs(cx, &original.attrs),
        }
    }
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(tp) if tp.qself.is_none() => tp.path.segments.last().is_some_and(|s| s.ident == name),
        Type::Group(g) => last_segment_is(&g.elem, name),
        Type::Paren(p) => last_segment_is(&p.elem, name),
        _ => false,
    }
}

/// The type to name when `ty` lacks a trait: the element of a container
/// (`Hit` in `Vec<Hit>`, `Option<Vec<Hit>>`, a map's values...), found by
/// name, since rustc only quotes the outer type's message when the outer
/// type itself is the one missing the trait.
pub(crate) fn blamed_type(ty: &Type) -> &Type {
    const CONTAINERS: [&str; 11] =
        ["Vec", "VecDeque", "Option", "Box", "Arc", "Rc", "BTreeSet", "HashSet", "BTreeMap", "HashMap", "IndexMap"];
    match ty {
        Type::Array(a) => blamed_type(&a.elem),
        Type::Slice(s) => blamed_type(&s.elem),
        Type::Group(g) => blamed_type(&g.elem),
        Type::Paren(p) => blamed_type(&p.elem),
        Type::Path(tp) if tp.qself.is_none() => {
            let Some(last) = tp.path.segments.last() else { return ty };
            if !CONTAINERS.iter().any(|c| last.ident == c) {
                return ty;
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else { return ty };
            match args.args.iter().rev().find_map(|a| if let GenericArgument::Type(t) = a { Some(t) } else { None }) {
                Some(inner) => blamed_type(inner),
                None => ty,
            }
        }
        _ => ty,
    }
}

/// `T` for `Option<T>` / `std::option::Option<T>`, detected syntactically.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    if args.args.len() != 1 {
        return None;
    }
    match args.args.first()? {
        GenericArgument::Type(inner) => Some(inner),
        _ => None,
    }
}

pub(crate) fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}
