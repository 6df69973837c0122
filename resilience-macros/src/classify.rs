//! `#[derive(Classify)]`: an error enum's class, variant by variant, without the forwarding
//! a hand-written impl repeats for each of `Classify`'s three methods (and forgets for
//! `retry_after`, which loses a 503's `Retry-After`).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Ident};

const KINDS: &str = "`#[classify(transparent)]` (one field whose type implements `Classify`: \
                     its class, `Retry-After` and log text), `#[classify(transient)]`, \
                     `#[classify(throttled)]` or `#[classify(permanent)]`";

/// What one variant (or the struct) is.
enum Kind {
    /// Its one field's own `Classify`, all three methods.
    Transparent,
    /// A fixed class: the `ErrorClass` expression.
    Fixed(TokenStream),
}

pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // One arm per variant for each method: `(pattern, classify, retry_after, log_summary)`.
    let mut arms = Vec::new();
    match &input.data {
        Data::Enum(e) => {
            if e.variants.is_empty() {
                return Err(syn::Error::new(
                    name.span(),
                    "`#[derive(Classify)]` needs at least one variant: an enum without any has no error to classify",
                ));
            }
            let mut errors: Option<syn::Error> = None;
            for v in &e.variants {
                let ident = &v.ident;
                match kind(&v.attrs, v.ident.span(), "variant")
                    .and_then(|k| arm(k, &v.fields, quote!(Self::#ident), v.ident.span()))
                {
                    Ok(a) => arms.push(a),
                    // Every variant's mistake at once, not one per build.
                    Err(e) => match &mut errors {
                        Some(all) => all.combine(e),
                        None => errors = Some(e),
                    },
                }
            }
            if let Some(e) = errors {
                return Err(e);
            }
        }
        Data::Struct(s) => {
            let k = kind(&input.attrs, name.span(), "struct")?;
            arms.push(arm(k, &s.fields, quote!(Self), name.span())?);
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`#[derive(Classify)]` works on enums and structs, not unions",
            ));
        }
    }
    let classify = arms.iter().map(|a| &a.classify);
    let retry_after = arms.iter().map(|a| &a.retry_after);
    let log_summary = arms.iter().map(|a| &a.log_summary);
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::resilience::Classify for #name #ty_generics #where_clause {
            fn classify(&self) -> ::resilience::ErrorClass {
                match self { #(#classify)* }
            }
            fn retry_after(&self) -> ::core::option::Option<::core::time::Duration> {
                match self { #(#retry_after)* }
            }
            fn log_summary(&self) -> ::core::option::Option<::std::borrow::Cow<'_, str>> {
                match self { #(#log_summary)* }
            }
        }
    })
}

struct Arm {
    classify: TokenStream,
    retry_after: TokenStream,
    log_summary: TokenStream,
}

fn arm(kind: Kind, fields: &Fields, path: TokenStream, span: Span) -> syn::Result<Arm> {
    match kind {
        Kind::Fixed(class) => {
            let pattern = match fields {
                Fields::Named(_) => quote!(#path { .. }),
                Fields::Unnamed(_) => quote!(#path(..)),
                Fields::Unit => quote!(#path),
            };
            Ok(Arm {
                classify: quote!(#pattern => #class,),
                retry_after: quote!(#pattern => ::core::option::Option::None,),
                // A fixed class logs no text, as `Classify`'s default: the value's own text
                // may hold what must not be logged.
                log_summary: quote!(#pattern => ::core::option::Option::None,),
            })
        }
        Kind::Transparent => {
            let mut iter = fields.iter();
            let (Some(field), None) = (iter.next(), iter.next()) else {
                return Err(syn::Error::new(
                    span,
                    "`#[classify(transparent)]` needs exactly one field, the error it forwards to",
                ));
            };
            let inner = Ident::new("__resilience_inner", Span::mixed_site());
            let pattern = match &field.ident {
                Some(f) => quote!(#path { #f: #inner }),
                None => quote!(#path(#inner)),
            };
            // Spanned at the field's type: a type without `Classify` is reported there.
            let ty = &field.ty;
            let call = |method: TokenStream| quote_spanned!(ty.span()=> <#ty as ::resilience::Classify>::#method(#inner));
            let (c, r, l) = (
                call(quote!(classify)),
                call(quote!(retry_after)),
                call(quote!(log_summary)),
            );
            Ok(Arm {
                classify: quote!(#pattern => #c,),
                retry_after: quote!(#pattern => #r,),
                log_summary: quote!(#pattern => #l,),
            })
        }
    }
}

/// The one `#[classify(…)]` of a variant or struct.
fn kind(attrs: &[Attribute], span: Span, what: &str) -> syn::Result<Kind> {
    let mut found: Option<Kind> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("classify")) {
        let ident: Ident = attr
            .parse_args()
            .map_err(|e| syn::Error::new(e.span(), format!("expected one of {KINDS}")))?;
        let kind = match ident.to_string().as_str() {
            "transparent" => Kind::Transparent,
            "transient" => Kind::Fixed(quote!(::resilience::ErrorClass::Transient)),
            "throttled" => Kind::Fixed(quote!(::resilience::ErrorClass::Throttled {
                retry_after: ::core::option::Option::None
            })),
            "permanent" => Kind::Fixed(quote!(::resilience::ErrorClass::Permanent)),
            other => {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("unknown class `{other}`: expected one of {KINDS}"),
                ));
            }
        };
        if found.is_some() {
            return Err(syn::Error::new_spanned(
                attr,
                "a second `#[classify(…)]`: give each one class",
            ));
        }
        found = Some(kind);
    }
    found.ok_or_else(|| {
        syn::Error::new(
            span,
            format!("this {what} needs its class for `#[derive(Classify)]`: {KINDS}"),
        )
    })
}
