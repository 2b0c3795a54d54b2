//! Emits the code for a checked `#[mcp_tool]` fn: the fn itself, the
//! registration type named like it, and (inside `const _`) the
//! `ToolFactory` impl and the inventory entry.
//!
//! Which parameters are arguments and which are injected, and how the
//! result is sent, is decided by the types' traits in the generated code
//! (`mcp_runtime::arguments` explains the probes), not here: the macro
//! cannot see traits, and an import can rename any type.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, Type};

use crate::ast::{Output, Param, Tool, blamed_type};
use crate::attr;

/// The user's fn with the parameter attributes rustc would reject removed.
pub(crate) fn user_fn(item: &ItemFn) -> ItemFn {
    let mut item = item.clone();
    // A tool's parameters are its input schema, so many of them is normal,
    // not a smell: don't make every service silence clippy by hand.
    item.attrs.push(syn::parse_quote!(#[allow(clippy::too_many_arguments)]));
    for input in &mut item.sig.inputs {
        if let FnArg::Typed(pt) = input {
            pt.attrs.retain(|a| !attr::is_param_attr_we_consume(a));
        }
    }
    item
}

// Generated names that appear in code which can fail to type-check are
// spanned on the user's token, so the error lands there (a `mixed_site` span
// would be reported on the attribute instead); the `__mcp_` prefix keeps
// them apart from the user's names.
const CALL: &str = "__mcp_call";
const ARGS: &str = "__mcp_slots";
const SIGNATURE: &str = "__mcp_signature";

pub(crate) fn expand(tool: &Tool<'_>) -> TokenStream {
    let item = user_fn(tool.item);
    let vis = &tool.item.vis;
    let fn_ident = &tool.item.sig.ident;
    let call = Ident::new(CALL, Span::call_site());
    let args = Ident::new(ARGS, Span::call_site());
    let signature = Ident::new(SIGNATURE, Span::call_site());

    let params: Vec<ParamCode> =
        tool.params.iter().enumerate().map(|(index, param)| ParamCode::new(index, param)).collect();
    let describe = params.iter().map(|p| &p.describe);
    let slots = params.iter().map(|p| &p.slot);
    let injects = params.iter().map(|p| &p.inject);
    let helper_fns = params.iter().map(|p| &p.helper_fns);
    let values = params.iter().map(|p| &p.value);
    let names = tool.params.iter().map(|p| p.name.as_str());
    let count = tool.params.len();

    let result = ResultCode::new(tool);
    let (out_span, returned, into_value, result_kind) =
        (result.span, &result.returned, &result.into_value, &result.kind);
    // The handler is a fn of its own, so that `tool()` can ask whether its
    // future is `Send` (to add a hint to rustc's error); the error itself
    // lands on the return type, with rustc's note at the culprit `.await`.
    let handler = quote_spanned! {out_span=>
        // Not an `async fn`: the `'static` bound is the contract.
        #[allow(clippy::manual_async_fn)]
        fn __mcp_handle(
            #call: __mcp::ToolCall,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<__mcp::ToolOutput, __mcp::CallError>,
        > + 'static {
            async move {
                let mut #args = (#(#slots,)*);
                __mcp::read_arguments(&#call, &__MCP_NAMES, &mut #args)?;
                #(#injects)*
                // The raw arguments are parsed by now; do not hold them while the tool runs.
                ::core::mem::drop(#call);
                let #returned = #fn_ident(#(#values),*).await;
                #into_value
            }
        }
    };
    let send_check = quote_spanned! {fn_ident.span()=>
        (&__mcp::probe_future(&__mcp_handle)).__mcp_check_send();
    };
    let output_schema = quote_spanned! {out_span=> #result_kind.output_schema() };
    let meta = tool_meta(tool);
    let build = quote_spanned! {out_span=>
        __mcp::Tool::from_parts(#meta, #signature, #output_schema, __mcp_handle)
    };
    let struct_doc = format!("Registers the MCP tool `{}`: `ServerBuilder::tool::<{}>()`.", tool.name, fn_ident);

    quote! {
        #item

        #[doc = #struct_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #fn_ident {}

        const _: () = {
            use ::mcp_runtime::__private as __mcp;
            #[allow(unused_imports)]
            use ::mcp_runtime::__private::probe::{
                ArgumentProbe as _, InjectedProbe as _, NeitherProbe as _, SchemalessProbe as _,
                UndeserializableProbe as _,
            };
            #[allow(unused_imports)]
            use ::mcp_runtime::__private::result_probe::{
                NeitherProbe as _, RichProbe as _, ValueProbe as _,
            };
            #[allow(unused_imports)]
            use ::mcp_runtime::__private::send_probe::{NotSendFuture as _, SendFuture as _};

            /// Every parameter's name, in order: an argument name, or (for an
            /// injected parameter) a name no argument may use.
            static __MCP_NAMES: [&str; #count] = [#(#names),*];

            impl __mcp::ToolFactory for #fn_ident {
                fn tool() -> __mcp::Tool {
                    let mut #signature = __mcp::Signature::new();
                    #(#describe)*
                    #send_check
                    #build
                }
            }

            #handler

            #(#helper_fns)*

            __mcp::inventory::submit! {
                __mcp::ToolRegistration { build: <#fn_ident as __mcp::ToolFactory>::tool }
            }
        };
    }
}

/// What one parameter contributes to the expansion. Every use of the
/// parameter's type is spanned on that type, so an unsuitable type is
/// reported there, once, with the runtime's message.
struct ParamCode {
    /// The local the user's fn is called with.
    value: Ident,
    /// `tool()`: adds the parameter to the `Signature`.
    describe: TokenStream,
    /// The handler: the parameter's slot in the tuple the arguments fill.
    slot: TokenStream,
    /// The handler, once the arguments are read: the value (injected: built).
    inject: TokenStream,
    /// The fn a default expression becomes.
    helper_fns: TokenStream,
}

impl ParamCode {
    fn new(index: usize, param: &Param<'_>) -> ParamCode {
        let ty = param.ty;
        let ty_span = ty.span();
        let value = format_ident!("__mcp_param{}", index, span = Span::mixed_site());
        let call = Ident::new(CALL, ty_span);
        let args = Ident::new(ARGS, ty_span);
        let signature = Ident::new(SIGNATURE, ty_span);
        let position = syn::Index::from(index);
        let schema_ty: &Type = param.option_inner.unwrap_or(ty);
        // Errors about the type name and point at the type to fix (`Hit`
        // for a `Vec<Hit>`).
        let blamed = blamed_type(ty);
        let kind = quote_spanned! {blamed.span()=>
            (&&&&__mcp::Probe::<#ty, #schema_ty, #blamed>::new()).__mcp_param_kind()
        };
        let name = &param.name;
        let description = match &param.description {
            Some(d) => quote!(::core::option::Option::Some(#d)),
            None => quote!(::core::option::Option::None),
        };
        let mut helper_fns = TokenStream::new();

        let (describe, slot) = if param.attrs.flatten.is_some() {
            (
                quote_spanned! {ty_span=> #kind.describe_flatten(&mut #signature, #name); },
                quote_spanned! {ty_span=> #kind.slot_whole() },
            )
        } else if let Some(default) = &param.attrs.default {
            let default_span = default.span();
            let default_fn = format_ident!("__mcp_default{}", index, span = default_span);
            helper_fns.extend(quote_spanned! {default_span=>
                fn #default_fn() -> #ty {
                    #default
                }
            });
            // Spanned on the default: a default that cannot be published
            // (not `Serialize`, or on an injected parameter) is reported there.
            let signature = Ident::new(SIGNATURE, default_span);
            (
                quote_spanned! {default_span=>
                    #kind.describe_default::<#schema_ty>(&mut #signature, #name, #description, #default_fn);
                },
                quote_spanned! {ty_span=> #kind.slot(__mcp::Missing::Default(#default_fn)) },
            )
        } else {
            let required = param.option_inner.is_none();
            let missing = match param.option_inner {
                Some(_) => quote_spanned! {ty_span=> __mcp::Missing::Default(|| ::core::option::Option::None) },
                None => quote_spanned! {ty_span=> __mcp::Missing::Required },
            };
            (
                quote_spanned! {ty_span=>
                    #kind.describe::<#schema_ty>(&mut #signature, #name, #description, #required);
                },
                quote_spanned! {ty_span=> #kind.slot(#missing) },
            )
        };
        let inject = quote_spanned! {ty_span=>
            let #value = #kind.inject(&#call, #args.#position)?;
        };
        ParamCode { value, describe, slot, inject, helper_fns }
    }
}

/// How the fn's return value becomes the call's output.
struct ResultCode {
    /// The return type's span (the fn name's when there is none).
    span: Span,
    /// The local holding what the fn returned.
    returned: Ident,
    /// The handler's last expression: the success value, serialized.
    into_value: TokenStream,
    /// The result kind, chosen by the success type's traits.
    kind: TokenStream,
}

impl ResultCode {
    fn new(tool: &Tool<'_>) -> ResultCode {
        let span = match &tool.output {
            Output::Result(ty) | Output::Plain(Some(ty)) => ty.span(),
            Output::Plain(None) => tool.item.sig.ident.span(),
        };
        let returned = Ident::new("__mcp_returned", span);
        let success = match &tool.output {
            Output::Result(ty) => quote_spanned!(span=> <#ty as __mcp::ResultOk>::Ok),
            Output::Plain(Some(ty)) => quote!(#ty),
            Output::Plain(None) => quote!(()),
        };
        // The type an error names, and where: `Hit` in `Result<Vec<Hit>, E>`.
        let blamed: Option<&Type> = match &tool.output {
            Output::Result(Type::Path(tp)) => match tp.path.segments.last().map(|s| &s.arguments) {
                Some(PathArguments::AngleBracketed(args)) => match args.args.first() {
                    Some(GenericArgument::Type(ok)) => Some(blamed_type(ok)),
                    _ => None,
                },
                _ => None,
            },
            Output::Plain(Some(ty)) => Some(blamed_type(ty)),
            _ => None,
        };
        let (blamed, blame_span) = match blamed {
            Some(ty) => (ty.to_token_stream(), ty.span()),
            None => (success.clone(), span),
        };
        let kind = quote_spanned! {blame_span=>
            (&&__mcp::ResultProbe::<#success, #blamed>::new()).__mcp_result_kind()
        };
        let into_value = match &tool.output {
            Output::Result(_) => quote_spanned! {span=>
                #kind.encode(__mcp::returned_result(#returned)?)
            },
            Output::Plain(_) => quote_spanned! {span=> #kind.encode(#returned) },
        };
        ResultCode { span, returned, into_value, kind }
    }
}

fn tool_meta(tool: &Tool<'_>) -> TokenStream {
    fn opt_str(s: Option<String>) -> TokenStream {
        match s {
            Some(s) => quote!(::core::option::Option::Some(#s)),
            None => quote!(::core::option::Option::None),
        }
    }
    fn opt_bool(b: Option<bool>) -> TokenStream {
        match b {
            Some(b) => quote!(::core::option::Option::Some(#b)),
            None => quote!(::core::option::Option::None),
        }
    }
    let name = &tool.name;
    let title = opt_str(tool.attrs.title.as_ref().map(|t| t.value()));
    let description = opt_str(tool.description.clone());
    let read_only = opt_bool(tool.attrs.read_only);
    let destructive = opt_bool(tool.attrs.destructive);
    let idempotent = opt_bool(tool.attrs.idempotent);
    let open_world = opt_bool(tool.attrs.open_world);
    quote! {
        __mcp::ToolMeta {
            name: #name,
            title: #title,
            description: #description,
            annotations: __mcp::Annotations {
                read_only_hint: #read_only,
                destructive_hint: #destructive,
                idempotent_hint: #idempotent,
                open_world_hint: #open_world,
            },
            location: __mcp::Location {
                file: ::core::file!(),
                line: ::core::line!(),
                column: ::core::column!(),
            },
        }
    }
}

/// What is emitted when the fn breaks a rule: the errors, the fn (minus the
/// attributes rustc would reject) and a registration type whose `tool()` is
/// never reached, so code naming the tool keeps compiling and the user sees
/// only the real mistakes.
pub(crate) fn fallback(item: &ItemFn, errors: syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    let user_fn = user_fn(item);
    let has_receiver = item.sig.inputs.iter().any(|i| matches!(i, FnArg::Receiver(_)));
    if has_receiver {
        // A method lives in an `impl` block, where a struct cannot go.
        return quote!(#errors #user_fn);
    }
    let vis = &item.vis;
    let fn_ident = &item.sig.ident;
    quote! {
        #errors
        #user_fn

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #fn_ident {}

        impl ::mcp_runtime::__private::ToolFactory for #fn_ident {
            fn tool() -> ::mcp_runtime::__private::Tool {
                ::core::unreachable!("#[mcp_tool] reported a compile error for this fn")
            }
        }
    }
}
