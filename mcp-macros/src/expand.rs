//! Emits the code for a checked `#[mcp_tool]` fn: the fn itself, the
//! registration type named like it, and (inside `const _`) the argument
//! struct, the `ToolFactory` impl and the inventory entry.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn};

use crate::ast::{Output, ParamKind, Tool};
use crate::attr;

/// The user's fn with the parameter attributes rustc would reject removed.
pub(crate) fn user_fn(item: &ItemFn) -> ItemFn {
    let mut item = item.clone();
    for input in &mut item.sig.inputs {
        if let FnArg::Typed(pt) = input {
            pt.attrs.retain(|a| !attr::is_param_attr_we_consume(a));
        }
    }
    item
}

pub(crate) fn expand(tool: &Tool<'_>) -> TokenStream {
    let item = user_fn(tool.item);
    let vis = &tool.item.vis;
    let fn_ident = &tool.item.sig.ident;
    // Generated locals live at `mixed_site`, so they never shadow or get
    // shadowed by the user's names (a parameter called `call`, say).
    let call = Ident::new("__mcp_call", Span::mixed_site());
    let schema = Ident::new("__mcp_schema", Span::mixed_site());

    let mut arg_fields = Vec::new();
    let mut arg_defaults = Vec::new();
    let mut schema_params = Vec::new();
    let mut assertions = Vec::new();
    let mut required_state = Vec::new();
    let mut arg_bindings = Vec::new();
    let mut extractions = Vec::new();
    let mut call_args = Vec::new();

    for (index, param) in tool.params.iter().enumerate() {
        let ty = param.ty;
        let local = format_ident!("__mcp_param{}", index, span = Span::mixed_site());
        call_args.push(local.clone());
        match &param.kind {
            ParamKind::Extractor => {
                assertions.push(quote_spanned! {ty.span()=>
                    const _: () = __mcp::assert_extractor::<#ty>();
                });
                required_state.push(quote! { <#ty as __mcp::FromToolCall>::required_state });
                extractions.push(quote! {
                    let #local = <#ty as __mcp::FromToolCall>::from_tool_call(&#call)?;
                });
            }
            ParamKind::Argument(arg) => {
                let field = format_ident!("__mcp_field{}", index);
                let wire_name = &arg.name;
                let schema_ty = arg.option_inner.unwrap_or(ty);
                assertions.push(quote_spanned! {schema_ty.span()=>
                    const _: () = __mcp::assert_tool_argument::<#schema_ty>();
                });
                let description = match &arg.description {
                    Some(d) => quote!(::core::option::Option::Some(#d)),
                    None => quote!(::core::option::Option::None),
                };
                let required = arg.is_required(param.attrs.default.as_ref());
                if let Some(default) = &param.attrs.default {
                    let default_fn = format_ident!("__mcp_default{}", index);
                    let default_fn_path = default_fn.to_string();
                    arg_defaults.push(quote_spanned! {default.span()=>
                        fn #default_fn() -> #ty {
                            #default
                        }
                    });
                    arg_fields.push(quote! {
                        #[serde(rename = #wire_name, default = #default_fn_path)]
                        #field: #ty
                    });
                    schema_params.push(quote! {
                        #schema.param_with_default::<#schema_ty>(
                            #wire_name,
                            #description,
                            false,
                            __mcp::serde_json::to_value(#default_fn()).ok(),
                        );
                    });
                } else {
                    let serde_default = arg.option_inner.map(|_| quote!(, default));
                    arg_fields.push(quote! {
                        #[serde(rename = #wire_name #serde_default)]
                        #field: #ty
                    });
                    schema_params.push(quote! {
                        #schema.param::<#schema_ty>(#wire_name, #description, #required);
                    });
                }
                arg_bindings.push(quote!(#field: #local));
            }
        }
    }

    let invoke = quote!(#fn_ident(#(#call_args),*).await);
    let output = match &tool.output {
        Output::Result(ty) => quote_spanned! {ty.span()=>
            __mcp::IntoToolOutput::into_tool_output(#invoke)
        },
        Output::Plain(ty) => {
            let span = ty.map_or_else(|| tool.item.sig.ident.span(), |t| t.span());
            quote_spanned! {span=>
                __mcp::IntoToolOutput::into_tool_output(
                    ::core::result::Result::Ok::<_, ::core::convert::Infallible>(#invoke)
                )
            }
        }
    };

    let meta = tool_meta(tool);
    let struct_doc = format!("Registers the MCP tool `{}`: `ServerBuilder::tool::<{}>()`.", tool.name, fn_ident);

    quote! {
        #item

        #[doc = #struct_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #fn_ident {}

        const _: () = {
            use ::mcp_runtime::__private as __mcp;

            #(#assertions)*

            #[derive(__mcp::serde::Deserialize)]
            #[serde(deny_unknown_fields, crate = "::mcp_runtime::__private::serde")]
            struct __McpArgs {
                #(#arg_fields,)*
            }

            #(#arg_defaults)*

            impl __mcp::ToolFactory for #fn_ident {
                fn tool() -> __mcp::Tool {
                    __mcp::Tool::from_parts(
                        #meta,
                        |#schema: &mut __mcp::InputSchema| {
                            #(#schema_params)*
                        },
                        &[#(#required_state),*],
                        |#call: __mcp::ToolCall| async move {
                            let __McpArgs { #(#arg_bindings),* } = #call.arguments::<__McpArgs>()?;
                            #(#extractions)*
                            #output
                        },
                    )
                }
            }

            __mcp::inventory::submit! {
                __mcp::ToolRegistration { build: <#fn_ident as __mcp::ToolFactory>::tool }
            }
        };
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
