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
    // Generated locals that appear in code which can fail to type-check are
    // spanned on the user's token, so the error lands there (a `mixed_site`
    // span would be reported on the attribute instead); the `__mcp_` prefix
    // keeps them apart from the user's names.
    let local = |name: &str, at: Span| Ident::new(name, at);
    let call = local("__mcp_call", Span::call_site());

    let mut arg_fields = Vec::new();
    let mut arg_fns = Vec::new();
    let mut schema_params = Vec::new();
    let mut extractor_checks = Vec::new();
    let mut required_state = Vec::new();
    let mut arg_bindings = Vec::new();
    let mut extractions = Vec::new();
    let mut call_args = Vec::new();

    // Each type bound is required in exactly one place, spanned on the
    // user's type, next to an assertion carrying our own message: rustc then
    // reports each missing trait once, on that parameter, instead of once
    // per use in the generated code.
    for (index, param) in tool.params.iter().enumerate() {
        let ty = param.ty;
        let ty_span = ty.span();
        let value = format_ident!("__mcp_param{}", index, span = Span::mixed_site());
        call_args.push(value.clone());
        match &param.kind {
            ParamKind::Extractor => {
                extractor_checks.push(quote_spanned! {ty_span=>
                    __mcp::assert_extractor::<#ty>();
                });
                required_state.push(quote_spanned! {ty_span=>
                    <#ty as __mcp::FromToolCall>::required_state
                });
                let call_here = local("__mcp_call", ty_span);
                extractions.push(quote_spanned! {ty_span=>
                    let #value = <#ty as __mcp::FromToolCall>::from_tool_call(&#call_here)?;
                });
            }
            ParamKind::Argument(arg) => {
                let field = format_ident!("__mcp_field{}", index);
                let wire_name = &arg.name;
                let schema_ty = arg.option_inner.unwrap_or(ty);
                let schema_span = schema_ty.span();
                let schema = local("__mcp_schema", schema_span);
                let description = match &arg.description {
                    Some(d) => quote!(::core::option::Option::Some(#d)),
                    None => quote!(::core::option::Option::None),
                };
                let required = arg.is_required(param.attrs.default.as_ref());

                // Deserialization goes through a fn of ours, so the serde
                // derive itself never requires `#ty: Deserialize`.
                let de_fn = format_ident!("__mcp_deserialize{}", index);
                let de_fn_path = syn::LitStr::new(&de_fn.to_string(), ty_span);
                arg_fns.push(quote_spanned! {ty_span=>
                    fn #de_fn<'de, D>(deserializer: D) -> ::core::result::Result<#ty, D::Error>
                    where
                        D: __mcp::serde::Deserializer<'de>,
                    {
                        <#ty as __mcp::serde::Deserialize<'de>>::deserialize(deserializer)
                    }
                });
                let assertion = quote_spanned! {schema_span=>
                    __mcp::assert_tool_argument::<#schema_ty>();
                };
                if let Some(default) = &param.attrs.default {
                    let default_fn = format_ident!("__mcp_default{}", index, span = default.span());
                    let default_fn_path = default_fn.to_string();
                    arg_fns.push(quote_spanned! {default.span()=>
                        fn #default_fn() -> #ty {
                            #default
                        }
                    });
                    arg_fields.push(quote! {
                        #[serde(rename = #wire_name, deserialize_with = #de_fn_path, default = #default_fn_path)]
                        #field: #ty
                    });
                    let to_value = quote_spanned! {default.span()=>
                        __mcp::serde_json::to_value(#default_fn()).ok()
                    };
                    schema_params.push(quote_spanned! {schema_span=>
                        #assertion
                        #schema.param_with_default::<#schema_ty>(#wire_name, #description, false, #to_value);
                    });
                } else {
                    let serde_default = arg.option_inner.map(|_| quote!(, default));
                    arg_fields.push(quote! {
                        #[serde(rename = #wire_name, deserialize_with = #de_fn_path #serde_default)]
                        #field: #ty
                    });
                    schema_params.push(quote_spanned! {schema_span=>
                        #assertion
                        #schema.param::<#schema_ty>(#wire_name, #description, #required);
                    });
                }
                arg_bindings.push(quote!(#field: #value));
            }
        }
    }

    // The return type's bounds (`Serialize + JsonSchema`, `E: Display`) are
    // checked where the output is converted and where `from_parts` infers
    // `T`; both are spanned on the return type so the errors coincide there.
    let out_span = match &tool.output {
        Output::Result(ty) | Output::Plain(Some(ty)) => ty.span(),
        Output::Plain(None) => tool.item.sig.ident.span(),
    };
    let returned = local("__mcp_returned", out_span);
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
    // A non-`Send` future is reported on the fn's name, with rustc's note
    // pointing at the `.await` that holds the culprit.
    let handler = quote_spanned! {fn_ident.span()=>
        |#call: __mcp::ToolCall| async move {
            let __McpObject(__McpArgs { #(#arg_bindings),* }) = #call.arguments::<__McpObject>()?;
            #(#extractions)*
            let #returned = #fn_ident(#(#call_args),*).await;
            #output
        }
    };
    let meta = tool_meta(tool);
    let schema = local("__mcp_schema", Span::call_site());
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
                #(#arg_fields,)*
            }

            /// The arguments, read from a JSON object only: the derive alone
            /// would also take a positional array, which MCP does not allow.
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

            impl __mcp::ToolFactory for #fn_ident {
                fn tool() -> __mcp::Tool {
                    #(#extractor_checks)*
                    #build
                }
            }

            // After the impl: rustc then reports our assertion (in `tool()`)
            // before serde's own message for the same parameter.
            #(#arg_fns)*

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
