//! Emits the code for a checked `#[mcp_tool]` fn: the fn itself, the
//! registration type named like it, and (inside `const _`) the argument
//! struct, the `ToolFactory` impl and the inventory entry.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr};

use crate::ast::{Argument, Output, Param, ParamKind, Tool};
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
const SCHEMA: &str = "__mcp_schema";

pub(crate) fn expand(tool: &Tool<'_>) -> TokenStream {
    let item = user_fn(tool.item);
    let vis = &tool.item.vis;
    let fn_ident = &tool.item.sig.ident;
    let call = Ident::new(CALL, Span::call_site());
    let schema = Ident::new(SCHEMA, Span::call_site());

    let params: Vec<ParamCode> = tool
        .params
        .iter()
        .enumerate()
        .map(|(index, param)| match &param.kind {
            ParamKind::Argument(arg) => ParamCode::argument(index, param, arg),
            ParamKind::Extractor => ParamCode::extractor(index, param),
        })
        .collect();
    let fields = params.iter().filter_map(|p| p.field.as_ref());
    let helper_fns = params.iter().map(|p| &p.helper_fns);
    let schema_params = params.iter().map(|p| &p.schema);
    let extractor_checks = params.iter().map(|p| &p.extractor_check);
    let required_state = params.iter().filter_map(|p| p.required_state.as_ref());
    let bindings = params.iter().filter_map(|p| p.binding.as_ref());
    let extractions = params.iter().map(|p| &p.extraction);
    let call_args = params.iter().map(|p| &p.value);

    let (out_span, returned, output) = output(tool);
    // A non-`Send` future is reported on the fn's name, with rustc's note
    // pointing at the `.await` that holds the culprit.
    let handler = quote_spanned! {fn_ident.span()=>
        |#call: __mcp::ToolCall| async move {
            let __McpObject(__McpArgs { #(#bindings),* }) = #call.arguments::<__McpObject>()?;
            #(#extractions)*
            // The raw arguments are parsed by now; do not hold them while the tool runs.
            ::core::mem::drop(#call);
            let #returned = #fn_ident(#(#call_args),*).await;
            #output
        }
    };
    // `from_parts` infers the output type `T` and requires its bounds; spanned
    // on the return type, its errors coincide with (and are merged into) the
    // ones `into_tool_output` reports there.
    let meta = tool_meta(tool);
    let build = quote_spanned! {out_span=>
        __mcp::Tool::from_parts(
            #meta,
            |#schema: &mut __mcp::InputSchema| {
                #(#schema_params)*
            },
            &[#(#required_state),*],
            #handler,
        )
    };
    let object_only = object_only();
    let struct_doc = format!("Registers the MCP tool `{}`: `ServerBuilder::tool::<{}>()`.", tool.name, fn_ident);

    quote! {
        #item

        #[doc = #struct_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #fn_ident {}

        const _: () = {
            use ::mcp_runtime::__private as __mcp;

            #[derive(__mcp::serde::Deserialize)]
            #[serde(deny_unknown_fields, crate = "::mcp_runtime::__private::serde")]
            struct __McpArgs {
                #(#fields,)*
            }

            #object_only

            impl __mcp::ToolFactory for #fn_ident {
                fn tool() -> __mcp::Tool {
                    #(#extractor_checks)*
                    #build
                }
            }

            // After the impl: rustc then reports our assertion (in `tool()`)
            // before serde's own message for the same parameter.
            #(#helper_fns)*

            __mcp::inventory::submit! {
                __mcp::ToolRegistration { build: <#fn_ident as __mcp::ToolFactory>::tool }
            }
        };
    }
}

/// `__McpObject`: the arguments, read from a JSON object only (the derive
/// alone would also take a positional array, which MCP does not allow).
fn object_only() -> TokenStream {
    quote! {
        struct __McpObject(__McpArgs);

        impl<'de> __mcp::serde::Deserialize<'de> for __McpObject {
            fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
            where
                D: __mcp::serde::Deserializer<'de>,
            {
                struct Visitor;
                impl<'de> __mcp::serde::de::Visitor<'de> for Visitor {
                    type Value = __McpArgs;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str("an object of named arguments")
                    }
                    fn visit_map<A>(self, map: A) -> ::core::result::Result<__McpArgs, A::Error>
                    where
                        A: __mcp::serde::de::MapAccess<'de>,
                    {
                        __mcp::serde::Deserialize::deserialize(__mcp::serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(Visitor).map(__McpObject)
            }
        }
    }
}

/// What one parameter contributes to the expansion.
///
/// Each type bound is required in exactly one place, spanned on the user's
/// type, next to an assertion carrying our own message: rustc then reports
/// each missing trait once, on that parameter, instead of once per use in
/// the generated code.
struct ParamCode {
    /// The local the user's fn is called with.
    value: Ident,
    /// A field of the argument struct (arguments only).
    field: Option<TokenStream>,
    /// `field: value` in the pattern that takes the argument struct apart.
    binding: Option<TokenStream>,
    /// Fns the field's serde attributes name.
    helper_fns: TokenStream,
    /// Statements of the `inputSchema` builder.
    schema: TokenStream,
    /// `let value = Extractor::from_tool_call(..)?` (extractors only).
    extraction: TokenStream,
    extractor_check: TokenStream,
    required_state: Option<TokenStream>,
}

impl ParamCode {
    fn argument(index: usize, param: &Param<'_>, arg: &Argument<'_>) -> ParamCode {
        let ty = param.ty;
        let ty_span = ty.span();
        let field = format_ident!("__mcp_field{}", index);
        let value = format_ident!("__mcp_param{}", index, span = Span::mixed_site());
        let wire_name = &arg.name;
        let schema_ty = arg.option_inner.unwrap_or(ty);
        let schema_span = schema_ty.span();
        let schema = Ident::new(SCHEMA, schema_span);
        let description = match &arg.description {
            Some(d) => quote!(::core::option::Option::Some(#d)),
            None => quote!(::core::option::Option::None),
        };

        // Deserialization goes through a fn of ours, so the serde derive
        // itself never requires `#ty: Deserialize` (it would, three times).
        let de_fn = format_ident!("__mcp_deserialize{}", index);
        let de_fn_path = LitStr::new(&de_fn.to_string(), ty_span);
        let mut helper_fns = quote_spanned! {ty_span=>
            fn #de_fn<'de, D>(deserializer: D) -> ::core::result::Result<#ty, D::Error>
            where
                D: __mcp::serde::Deserializer<'de>,
            {
                <#ty as __mcp::serde::Deserialize<'de>>::deserialize(deserializer)
            }
        };
        let assertion = quote_spanned! {schema_span=>
            __mcp::assert_tool_argument::<#schema_ty>();
        };
        let (field_def, schema_code) = match &param.attrs.default {
            Some(default) => {
                let default_span = default.span();
                let default_fn = format_ident!("__mcp_default{}", index, span = default_span);
                let default_fn_path = default_fn.to_string();
                helper_fns.extend(quote_spanned! {default_span=>
                    fn #default_fn() -> #ty {
                        #default
                    }
                });
                let to_value = quote_spanned! {default_span=>
                    __mcp::serde_json::to_value(#default_fn()).ok()
                };
                (
                    quote! {
                        #[serde(rename = #wire_name, deserialize_with = #de_fn_path, default = #default_fn_path)]
                        #field: #ty
                    },
                    quote_spanned! {schema_span=>
                        #assertion
                        #schema.param_with_default::<#schema_ty>(#wire_name, #description, false, #to_value);
                    },
                )
            }
            None => {
                let required = arg.option_inner.is_none();
                let serde_default = arg.option_inner.map(|_| quote!(, default));
                (
                    quote! {
                        #[serde(rename = #wire_name, deserialize_with = #de_fn_path #serde_default)]
                        #field: #ty
                    },
                    quote_spanned! {schema_span=>
                        #assertion
                        #schema.param::<#schema_ty>(#wire_name, #description, #required);
                    },
                )
            }
        };
        ParamCode {
            binding: Some(quote!(#field: #value)),
            value,
            field: Some(field_def),
            helper_fns,
            schema: schema_code,
            extraction: TokenStream::new(),
            extractor_check: TokenStream::new(),
            required_state: None,
        }
    }

    fn extractor(index: usize, param: &Param<'_>) -> ParamCode {
        let ty = param.ty;
        let ty_span = ty.span();
        let value = format_ident!("__mcp_param{}", index, span = Span::mixed_site());
        let call = Ident::new(CALL, ty_span);
        ParamCode {
            extraction: quote_spanned! {ty_span=>
                let #value = <#ty as __mcp::FromToolCall>::from_tool_call(&#call)?;
            },
            value,
            field: None,
            binding: None,
            helper_fns: TokenStream::new(),
            schema: TokenStream::new(),
            extractor_check: quote_spanned! {ty_span=>
                __mcp::assert_extractor::<#ty>();
            },
            required_state: Some(quote_spanned! {ty_span=>
                <#ty as __mcp::FromToolCall>::required_state
            }),
        }
    }
}

/// The fn's return value turned into `Result<T, CallError>`: the span of the
/// return type, the local holding the value, and the conversion.
fn output(tool: &Tool<'_>) -> (Span, Ident, TokenStream) {
    let out_span = match &tool.output {
        Output::Result(ty) | Output::Plain(Some(ty)) => ty.span(),
        Output::Plain(None) => tool.item.sig.ident.span(),
    };
    let returned = Ident::new("__mcp_returned", out_span);
    let output = match &tool.output {
        Output::Result(_) => quote_spanned! {out_span=>
            __mcp::IntoToolOutput::into_tool_output(#returned)
        },
        Output::Plain(_) => quote_spanned! {out_span=>
            __mcp::IntoToolOutput::into_tool_output(
                ::core::result::Result::Ok::<_, ::core::convert::Infallible>(#returned)
            )
        },
    };
    (out_span, returned, output)
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
