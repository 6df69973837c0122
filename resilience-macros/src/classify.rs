//! `#[derive(Classify)]`: an error enum's class, variant by variant, without the forwarding
//! a hand-written impl repeats for each of `Classify`'s three methods (and forgets for
//! `retry_after`, which loses a 503's `Retry-After`).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Field, Fields, Ident, Token};

use crate::args::Krate;

const KINDS: &str = "`#[classify(transparent)]` (forwards to the variant's error field: its \
                     class, `Retry-After` and log text), `#[classify(transient)]`, \
                     `#[classify(throttled)]` or `#[classify(permanent)]`";

const CLASSES: [&str; 4] = ["transparent", "transient", "throttled", "permanent"];

/// What one variant (or the struct) is.
enum Kind {
    /// Its error field's own `Classify`, all three methods.
    Transparent,
    /// A fixed class: the `ErrorClass` expression, where `log` was written, if it was (the
    /// value's `Display` text is then its log text), and whether the class is retried (its
    /// `Retry-After` is then its error field's, if it has one that can tell).
    Fixed(TokenStream, Option<Span>, bool),
}

/// The impl, or, when the input is wrong, the errors and an impl whose methods are never
/// called: without one, every use of the type would add an error of its own ("does not
/// implement `Classify`", and "derive it"), as thiserror also avoids.
pub(crate) fn derive(input: DeriveInput) -> TokenStream {
    let mut generics = input.generics.clone();
    // A path that does not parse is reported with the other mistakes, in the impl that names
    // the default: without an impl, each use of the type would add an error of its own (and
    // advise deriving `Classify`); with it, a crate without `::resilience` gets one more.
    let (krate, krate_error) = match container_crate(&input.attrs) {
        Ok(krate) => (krate, None),
        Err(e) => (Krate::default(), Some(e)),
    };
    let arms = match (arms(&input, &krate), krate_error) {
        (Ok(arms), None) => Ok(arms),
        (Ok(_), Some(e)) => Err(e),
        (Err(more), Some(mut e)) => {
            e.combine(more);
            Err(e)
        }
        (Err(e), None) => Err(e),
    };
    let body = match arms {
        Ok(arms) => {
            add_bounds(
                &mut generics,
                arms.iter().filter_map(|a| a.forwarded),
                &krate,
            );
            // `log` formats the whole value: a generic type's `Display` (thiserror's, whose
            // bounds are inferred: `E: Display` for a `{0}` of type `E`) holds for some
            // arguments only, so the impl asks for it as thiserror's own impls do, rather than
            // failing for every argument. (Without generics the bound would be a trivial
            // one, refused by rustc; the missing `Display` is reported at `log` there.)
            if let Some(at) = arms.iter().find_map(|a| a.logs)
                && !generics.params.is_empty()
            {
                let name = &input.ident;
                let (_, ty_generics, _) = input.generics.split_for_impl();
                generics
                    .make_where_clause()
                    .predicates
                    .push(syn::parse_quote_spanned!(at=> #name #ty_generics: ::core::fmt::Display));
            }
            let classify = arms.iter().map(|a| &a.classify);
            let retry_after = arms.iter().map(|a| &a.retry_after);
            let log_summary = arms.iter().map(|a| &a.log_summary);
            // `*self`: an enum without variants has nothing to match, and a reference to one
            // would still need an arm.
            quote! {
                fn classify(&self) -> #krate::ErrorClass {
                    match *self { #(#classify)* }
                }
                fn retry_after(&self) -> ::core::option::Option<::core::time::Duration> {
                    match *self { #(#retry_after)* }
                }
                fn log_summary(&self) -> ::core::option::Option<#krate::__private::Cow<'_, str>> {
                    match *self { #(#log_summary)* }
                }
            }
        }
        Err(e) => {
            let error = e.into_compile_error();
            quote! {
                fn classify(&self) -> #krate::ErrorClass {
                    #error
                    ::core::unreachable!()
                }
            }
        }
    };
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let derived = quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Classify for #name #ty_generics #where_clause {
            #body
        }
    };
    // Registered, so that an error chain (an `anyhow::Error`'s, an `io::Error`'s inner one)
    // finds the type and its class: without it, a transient error of the user's own, `?`'d
    // into an `anyhow::Result`, was permanent there. Only a type without generics has one
    // type to register; and only one that is an `Error` can be found in a chain, which the
    // probe tells at compile time.
    let registered = input.generics.params.is_empty().then(|| {
        quote! {
            #krate::__private::inventory::submit! {
                #krate::__private::ChainType(|| {
                    #[allow(unused_imports)]
                    use #krate::__private::{ChainFallback as _, ChainSpecific as _};
                    (&&#krate::__private::Probe::<#name>::NEW).resilience_chain_type()
                })
            }
        }
    });
    let prelude = krate.prelude();
    if prelude.is_empty() && registered.is_none() {
        return derived;
    }
    // A scope for the `use` of a path given with `crate = …`, as serde's derive makes one,
    // and for the registration.
    quote! {
        const _: () = {
            #prelude
            #derived
            #registered
        };
    }
}

fn arms<'a>(input: &'a DeriveInput, krate: &Krate) -> syn::Result<Vec<Arm<'a>>> {
    let name = &input.ident;
    let params: Vec<Ident> = input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    let mut arms = Vec::new();
    let mut errors: Option<syn::Error> = None;
    // Every mistake at once, not one per build.
    let mut note = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    match &input.data {
        Data::Enum(e) => {
            for attr in classify_attrs(&input.attrs).filter(|a| has_class_part(a)) {
                note(syn::Error::new_spanned(
                    attr,
                    "`#[classify(…)]` goes on each variant of an enum, not on the enum",
                ));
            }
            for v in &e.variants {
                let ident = &v.ident;
                let dead = expects_dead_code(&input.attrs) || expects_dead_code(&v.attrs);
                match kind(&v.attrs, v.ident.span(), "variant", krate)
                    .map(|k| if dead { unread(k) } else { k })
                    .and_then(|k| {
                        let at = v.ident.span();
                        arm(k, &v.fields, quote!(Self::#ident), at, &params, krate)
                    }) {
                    Ok(a) => arms.push(a),
                    Err(e) => note(e),
                }
            }
            for f in e.variants.iter().flat_map(|v| &v.fields) {
                field_attrs(f, &mut note);
            }
        }
        Data::Struct(s) => {
            // A packed struct's field is not bound: a fixed class forwards nothing of it (its
            // `Retry-After` neither), as before fixed classes forwarded it.
            let dead = packed(&input.attrs) || expects_dead_code(&input.attrs);
            match kind(&input.attrs, name.span(), "struct", krate)
                .map(|k| if dead { unread(k) } else { k })
                .and_then(|k| arm(k, &s.fields, quote!(Self), name.span(), &params, krate))
            {
                Ok(a) => arms.push(a),
                Err(e) => note(e),
            }
            for f in &s.fields {
                field_attrs(f, &mut note);
            }
        }
        Data::Union(u) => note(syn::Error::new(
            u.union_token.span,
            "`#[derive(Classify)]` works on enums and structs, not unions",
        )),
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(arms),
    }
}

fn classify_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("classify"))
}

/// A `#[classify(…)]`'s items, split at its top-level commas: the `crate = …` ones, and the
/// others (a class). `None` for an attribute without parentheses.
struct Items {
    krate: Vec<TokenStream>,
    class: Vec<TokenStream>,
    /// Everything between the parentheses.
    all: TokenStream,
}

fn items(attr: &Attribute) -> Option<Items> {
    let syn::Meta::List(list) = &attr.meta else {
        return None;
    };
    let mut out = Items {
        krate: Vec::new(),
        class: Vec::new(),
        all: list.tokens.clone(),
    };
    let mut push = |item: TokenStream| {
        match item.clone().into_iter().next() {
            None => {}
            Some(TokenTree::Ident(i)) if i == "crate" => out.krate.push(item),
            Some(_) => out.class.push(item),
        };
    };
    let mut item = TokenStream::new();
    // A comma between angle brackets is a path's (`crate = a::<B, C>`), not the list's.
    let mut angles = 0usize;
    for tt in list.tokens.clone() {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' && angles == 0 => {
                push(std::mem::take(&mut item));
                continue;
            }
            TokenTree::Punct(p) if p.as_char() == '<' => angles += 1,
            TokenTree::Punct(p) if p.as_char() == '>' => angles = angles.saturating_sub(1),
            _ => {}
        }
        item.extend([tt]);
    }
    push(item);
    Some(out)
}

/// Says more than where the facade is: a class, or something that is not an item list.
fn has_class_part(attr: &Attribute) -> bool {
    items(attr).is_none_or(|i| !i.class.is_empty() || i.krate.is_empty())
}

/// The enum's or struct's `crate = …`, in an attribute of its own or beside the struct's
/// class: the path the impl names the facade by.
fn container_crate(attrs: &[Attribute]) -> syn::Result<Krate> {
    let mut found = None;
    for item in classify_attrs(attrs)
        .filter_map(items)
        .flat_map(|i| i.krate)
    {
        let krate = syn::parse::Parser::parse2(
            |input: syn::parse::ParseStream<'_>| {
                let key: Token![crate] = input.parse()?;
                // Nothing after `=` too: at the key, as the end of these tokens has no span of
                // its own (the parser's error underlined the whole derive).
                if input.parse::<Option<Token![=]>>()?.is_none() || input.is_empty() {
                    return Err(syn::Error::new(
                        key.span,
                        "expected `=` and a path, e.g. `#[classify(crate = my_sdk::resilience)]`",
                    ));
                }
                Krate::parse_value(input)
            },
            item.clone(),
        )?;
        if found.is_some() {
            return Err(syn::Error::new_spanned(
                item,
                "a second `crate = …`: give the path once",
            ));
        }
        found = Some(krate);
    }
    Ok(found.unwrap_or_default())
}

fn field_attrs(f: &Field, note: &mut impl FnMut(syn::Error)) {
    for attr in classify_attrs(&f.attrs) {
        if !has_class_part(attr) {
            note(syn::Error::new_spanned(
                attr,
                "`#[classify(crate = …)]` goes on the enum or struct, not on a field",
            ));
            continue;
        }
        note(syn::Error::new_spanned(
            attr,
            "`#[classify(…)]` goes on the variant, not on a field; a transparent variant \
             forwards to its one field, or, with several, to the one marked `#[source]` or \
             `#[from]` (thiserror's) or named `source`",
        ));
    }
}

struct Arm<'a> {
    classify: TokenStream,
    retry_after: TokenStream,
    log_summary: TokenStream,
    /// A transparent variant's error field's type.
    forwarded: Option<&'a syn::Type>,
    /// Where a fixed class's `log` was written, if it was: the impl then needs the type's
    /// `Display`.
    logs: Option<Span>,
}

/// `E: Classify` for each forwarded field that is a type parameter (`E`), a projection of
/// one (`T::Error`, `<T as Transport>::Error`), or one of these behind the pointers `Classify`
/// forwards through (`Box<E>`, `Arc<E>`, `&E`), as thiserror infers its bounds: `enum
/// Error<E> { Inner(E) }` then needs no `where` of its own, and `Error<String>` is refused at
/// the use, naming `String`. Any other type gets none: a bound on a private type would draw
/// `private_bounds` warnings on a public enum, a bound naming the enum itself (`Box<Error<E>>`,
/// a recursive error) would overflow the trait solver, and a missing `Classify` is reported
/// at the field's type already.
fn add_bounds<'a>(
    generics: &mut syn::Generics,
    forwarded: impl Iterator<Item = &'a syn::Type>,
    krate: &Krate,
) {
    let params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    if params.is_empty() {
        return;
    }
    let mut seen = Vec::new();
    for ty in forwarded {
        let Some(bounded) = parameter_behind_pointers(ty, &params) else {
            continue;
        };
        let key = bounded.to_token_stream().to_string();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(#bounded: #krate::Classify));
    }
}

/// `ty` without the `Box`, `Arc` and `&` around it, if what is left is a type parameter or a
/// projection of one.
fn parameter_behind_pointers<'t>(ty: &'t syn::Type, params: &[Ident]) -> Option<&'t syn::Type> {
    match ty {
        syn::Type::Reference(r) if r.mutability.is_none() => {
            parameter_behind_pointers(&r.elem, params)
        }
        syn::Type::Paren(p) => parameter_behind_pointers(&p.elem, params),
        syn::Type::Group(g) => parameter_behind_pointers(&g.elem, params),
        syn::Type::Path(p) => {
            if let Some(q) = &p.qself {
                // `<T as Transport>::Error`
                return matches!(&*q.ty, syn::Type::Path(inner)
                    if inner.qself.is_none() && starts_with_param(&inner.path, params))
                .then_some(ty);
            }
            if starts_with_param(&p.path, params) {
                return Some(ty); // `E`, `T::Error`
            }
            let last = p.path.segments.last()?;
            if last.ident != "Box" && last.ident != "Arc" {
                return None;
            }
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            match args.args.first() {
                Some(syn::GenericArgument::Type(inner)) if args.args.len() == 1 => {
                    parameter_behind_pointers(inner, params)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `E` or `E::…`, `E` a type parameter (no leading `::`, no generic arguments on it).
fn starts_with_param(path: &syn::Path, params: &[Ident]) -> bool {
    path.leading_colon.is_none()
        && path
            .segments
            .first()
            .is_some_and(|s| s.arguments.is_none() && params.contains(&s.ident))
}

fn arm<'a>(
    kind: Kind,
    fields: &'a Fields,
    path: TokenStream,
    span: Span,
    params: &[Ident],
    krate: &Krate,
) -> syn::Result<Arm<'a>> {
    match kind {
        Kind::Fixed(class, log, retried) => {
            let pattern = match fields {
                Fields::Named(_) => quote!(#path { .. }),
                Fields::Unnamed(_) => quote!(#path(..)),
                Fields::Unit => quote!(#path),
            };
            // A fixed class logs no text, as `Classify`'s default: the value's own text may
            // hold what must not be logged. With `log`, its `Display` text, which the runtime
            // redacts as every summary; spanned at `log`, so a type without `Display` is
            // reported there.
            let summary = match log {
                None => quote!(::core::option::Option::None),
                Some(at) => quote_spanned! {at=>
                    ::core::option::Option::Some(#krate::__private::Cow::Owned(
                        ::std::string::ToString::to_string(self),
                    ))
                },
            };
            // A retried class waits what its error field asks, when that field is `Classify`
            // (`#[classify(throttled)] RateLimited(HttpError)`: the 429's `Retry-After`, which
            // a fixed `None` dropped without a word); any other field, or none, asks nothing
            // (`Forward`'s fallback, chosen at compile time, costs no bound).
            // Not a field whose type holds a lifetime of the item's: the forwarding is picked
            // by the type with its lifetimes erased, so a `Classify` that holds for some
            // lifetimes only (`impl Classify for Borrowed<'static>`, `for dyn MyError`, which
            // is `dyn MyError + 'static`) was taken for `Borrowed<'a>` too, and failed to
            // borrow-check, where a fixed class compiled before it forwarded anything.
            let retry_after = match error_field(fields, span) {
                Ok((index, field))
                    if retried
                        && lifetime_free(&field.ty)
                        && !names_a_parameter(&field.ty, params)
                        && !expects_dead_code(&field.attrs) =>
                {
                    let (bound, inner) = bind(&path, index, field);
                    let r = forward(krate, &inner, quote!(resilience_retry_after));
                    quote!(#bound => #r,)
                }
                _ => quote!(#pattern => ::core::option::Option::None,),
            };
            Ok(Arm {
                classify: quote!(#pattern => #class,),
                retry_after,
                log_summary: quote!(#pattern => #summary,),
                forwarded: None,
                logs: log,
            })
        }
        Kind::Transparent => {
            let (index, field) = error_field(fields, span)?;
            let (pattern, inner) = bind(&path, index, field);
            // Spanned at the field's type: a type without `Classify` is reported there, by
            // this call only. The other two take `Forward`'s fallback for such a type, which
            // adds no error of its own: when all three required `Classify`, it came three times.
            let ty = &field.ty;
            let at = krate.at(ty.span());
            let c =
                quote_spanned!(ty.span()=> <#ty as #at::__private::Forwarded>::classify(#inner));
            let (r, l) = (
                forward(krate, &inner, quote!(resilience_retry_after)),
                forward(krate, &inner, quote!(resilience_log_summary)),
            );
            Ok(Arm {
                classify: quote!(#pattern => #c,),
                retry_after: quote!(#pattern => #r,),
                log_summary: quote!(#pattern => #l,),
                forwarded: Some(ty),
                logs: None,
            })
        }
    }
}

/// Whether `ty`, past the shared references around it (whose `Classify` holds for every
/// lifetime), names no lifetime but `'static` and, under such a reference, no trait object
/// (whose lifetime is the reference's).
fn lifetime_free(ty: &syn::Type) -> bool {
    let mut ty = ty;
    let mut referenced = false;
    loop {
        match ty {
            syn::Type::Reference(r) if r.mutability.is_none() => {
                referenced = true;
                ty = &r.elem;
            }
            syn::Type::Paren(p) => ty = &p.elem,
            syn::Type::Group(g) => ty = &g.elem,
            _ => break,
        }
    }
    fn clean(tokens: TokenStream, referenced: bool) -> bool {
        let mut quote_seen = false;
        for tt in tokens {
            match tt {
                TokenTree::Group(g) => {
                    if !clean(g.stream(), referenced) {
                        return false;
                    }
                    quote_seen = false;
                }
                // A lifetime is a `'` joined to an ident.
                TokenTree::Punct(p) if p.as_char() == '\'' => quote_seen = true,
                TokenTree::Ident(i) => {
                    if (quote_seen && i != "static") || (referenced && !quote_seen && i == "dyn") {
                        return false;
                    }
                    quote_seen = false;
                }
                TokenTree::Punct(p) => {
                    // A nested reference's lifetime may be elided in a pattern of the user's
                    // macro: refuse any `&` but the outer ones.
                    if p.as_char() == '&' {
                        return false;
                    }
                    quote_seen = false;
                }
                TokenTree::Literal(_) => quote_seen = false,
            }
        }
        true
    }
    clean(ty.to_token_stream(), referenced)
}

/// Whether `ty` names one of the item's type parameters anywhere (`E`, `Wrap<E>`,
/// `E::Error`): the forwarding is picked for the parameter as the item declares it, and a
/// `Classify` that needs more of it than is proved there (`impl<T: Classify + 'static>
/// Classify for Wrap<T>`) was picked all the same and failed to compile, where a fixed class
/// compiled before it forwarded anything; a parameter without a `Classify` bound gave no
/// `Retry-After` whatever. Such a field is not read.
fn names_a_parameter(ty: &syn::Type, params: &[Ident]) -> bool {
    fn names(tokens: TokenStream, params: &[Ident]) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Ident(i) => params.contains(&i),
            TokenTree::Group(g) => names(g.stream(), params),
            _ => false,
        })
    }
    !params.is_empty() && names(ty.to_token_stream(), params)
}

/// `kind`, reading no field: a fixed class forwards no `Retry-After`.
fn unread(kind: Kind) -> Kind {
    match kind {
        Kind::Fixed(class, log, _) => Kind::Fixed(class, log, false),
        k @ Kind::Transparent => k,
    }
}

/// Whether `attrs` expect `dead_code` (`#[expect(dead_code)]`, `#[expect(unused)]`, or either
/// under a `cfg_attr`): a fixed class's field was never read, and a user who said so with
/// `expect` (which `clippy::allow_attributes` asks for) gets "this lint expectation is
/// unfulfilled" once it is, an error under `#![deny(warnings)]`. Such a field is not read.
fn expects_dead_code(attrs: &[Attribute]) -> bool {
    fn mentions(tokens: TokenStream, word: &str) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Ident(i) => i == word,
            TokenTree::Group(g) => mentions(g.stream(), word),
            _ => false,
        })
    }
    attrs.iter().any(|a| {
        let syn::Meta::List(list) = &a.meta else {
            return false;
        };
        let expect = a.path().is_ident("expect")
            || (a.path().is_ident("cfg_attr") && mentions(list.tokens.clone(), "expect"));
        expect
            && (mentions(list.tokens.clone(), "dead_code")
                || mentions(list.tokens.clone(), "unused"))
    })
}

/// Whether the struct is `#[repr(packed)]` (or `packed(N)`): a reference to its field may be
/// unaligned, so a fixed class binds none.
fn packed(attrs: &[Attribute]) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("repr")).any(|a| {
        let syn::Meta::List(list) = &a.meta else {
            return false;
        };
        list.tokens
            .clone()
            .into_iter()
            .any(|tt| matches!(&tt, TokenTree::Ident(i) if i == "packed"))
    })
}

/// A pattern for the variant at `path` that binds its field `index` by reference, and the
/// name it binds it to.
fn bind(path: &TokenStream, index: usize, field: &Field) -> (TokenStream, Ident) {
    let inner = Ident::new("__resilience_inner", Span::mixed_site());
    let pattern = match &field.ident {
        Some(f) => quote!(#path { #f: ref #inner, .. }),
        None => {
            let skip = (0..index).map(|_| quote!(_,));
            quote!(#path(#(#skip)* ref #inner, ..))
        }
    };
    (pattern, inner)
}

/// `method` of `Forward`'s, on the field bound to `inner`: the field's own `Classify` method
/// when its type has one, else `None`. Names of `Forward`'s own: a call by method sees the
/// traits in scope at the derive, and one of the user's with a `retry_after` for all types
/// was ambiguous.
fn forward(krate: &Krate, inner: &Ident, method: TokenStream) -> TokenStream {
    quote! {{
        #[allow(unused_imports)]
        use #krate::__private::{ForwardFallback as _, ForwardSpecific as _};
        (&&#krate::__private::Forward(#inner)).#method()
    }}
}

/// The field a transparent variant forwards to: its only one, or, beside context fields (a
/// path, a backtrace), the one thiserror calls its source: marked `#[source]` or `#[from]`,
/// or named `source`.
fn error_field(fields: &Fields, span: Span) -> syn::Result<(usize, &Field)> {
    let all: Vec<&Field> = fields.iter().collect();
    if let [only] = all[..] {
        return Ok((0, only));
    }
    if all.is_empty() {
        return Err(syn::Error::new(
            span,
            "`#[classify(transparent)]` forwards to the variant's error field, and this one \
             has none: give it a fixed class (`#[classify(permanent)]`, …)",
        ));
    }
    let marked = |f: &Field| {
        f.attrs
            .iter()
            .any(|a| a.path().is_ident("source") || a.path().is_ident("from"))
    };
    // `r#source` too, as thiserror reads it.
    let named = |f: &Field| {
        f.ident
            .as_ref()
            .is_some_and(|i| syn::ext::IdentExt::unraw(i) == "source")
    };
    let pick = |test: &dyn Fn(&Field) -> bool| -> Vec<(usize, &Field)> {
        all.iter()
            .copied()
            .enumerate()
            .filter(|(_, f)| test(f))
            .collect()
    };
    let mut sources = pick(&marked);
    if sources.is_empty() {
        sources = pick(&named);
    }
    match sources[..] {
        [one] => Ok(one),
        _ => Err(syn::Error::new(
            span,
            "`#[classify(transparent)]` on a variant of several fields forwards to the one \
             marked `#[source]` or `#[from]` (thiserror's), or named `source`: mark one",
        )),
    }
}

/// The one `#[classify(…)]` of a variant or struct.
fn kind(attrs: &[Attribute], span: Span, what: &str, krate: &Krate) -> syn::Result<Kind> {
    let mut found: Option<Kind> = None;
    for attr in classify_attrs(attrs) {
        let Some(items) = items(attr) else {
            return Err(syn::Error::new_spanned(
                attr,
                format!("write the class in parentheses: {KINDS}"),
            ));
        };
        if let Some(krate) = items.krate.first()
            && what == "variant"
        {
            return Err(syn::Error::new_spanned(
                krate,
                "`crate = …` goes on the enum, not on a variant",
            ));
        }
        // `log` after a fixed class (`#[classify(permanent, log)]`): its text is logged. Any
        // other word after a class (`permanent, loud`) is an error at that word.
        let mut log = None;
        let mut class = &items.class[..];
        let word = |t: &TokenStream| syn::parse2::<Ident>(t.clone()).ok();
        let is_class = |w: &Ident| CLASSES.contains(&&*w.to_string());
        if let [first, last] = class
            && let Some(last_word) = word(last)
        {
            let first_word = word(first);
            if last_word == "log" {
                if first_word.is_some_and(|w| w == "transparent") {
                    return Err(syn::Error::new(
                        last_word.span(),
                        "`log` is for a fixed class: a transparent variant logs its field's own \
                         text already",
                    ));
                }
                log = Some(last_word.span());
                class = &class[..1];
            } else if first_word.is_some_and(|w| is_class(&w)) && !is_class(&last_word) {
                return Err(syn::Error::new(
                    last_word.span(),
                    format!(
                        "unknown word `{last_word}` after the class: only `log` may follow a \
                         fixed class, to log the value's text (`#[classify(permanent, log)]`)"
                    ),
                ));
            }
        }
        let ident: Ident = match class {
            // Only `crate = …`, read by `container_crate`.
            [] if !items.krate.is_empty() => continue,
            // Empty parentheses have no token of their own to point at: the attribute is
            // the mistake (spanned at nothing, the error fell on the derive).
            [] => {
                return Err(syn::Error::new_spanned(
                    attr,
                    format!("write the class in the parentheses: {KINDS}"),
                ));
            }
            // One item that is no word (`"transient"`, `transient = true`): not two classes.
            [one] => syn::parse2(one.clone()).map_err(|_| {
                syn::Error::new_spanned(one, format!("write the class as a bare word: {KINDS}"))
            })?,
            _ => {
                return Err(syn::Error::new_spanned(
                    &items.all,
                    format!(
                        "one class per {what}: {KINDS}; a fixed class may add `log` to log the \
                         value's text (`#[classify(permanent, log)]`)"
                    ),
                ));
            }
        };
        let kind = match ident.to_string().as_str() {
            "transparent" => Kind::Transparent,
            "transient" => Kind::Fixed(quote!(#krate::ErrorClass::Transient), log, true),
            // The class's own `retry_after` is `None`: `Classify::retry_after` is what the
            // runtime reads, and the impl forwards it to the field (see `arm`).
            "throttled" => Kind::Fixed(
                quote!(#krate::ErrorClass::Throttled {
                    retry_after: ::core::option::Option::None
                }),
                log,
                true,
            ),
            "permanent" => Kind::Fixed(quote!(#krate::ErrorClass::Permanent), log, false),
            other => {
                let hint = if other == "log" {
                    " (`log` goes after a fixed class: `#[classify(permanent, log)]`)".to_owned()
                } else {
                    CLASSES
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(other))
                        .map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
                };
                return Err(syn::Error::new(
                    ident.span(),
                    format!("unknown class `{other}`{hint}: expected one of {KINDS}"),
                ));
            }
        };
        if found.is_some() {
            return Err(syn::Error::new_spanned(
                attr.to_token_stream(),
                format!("a second `#[classify(…)]`: give each {what} one class"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One use of `Forwarded` per transparent field, the call that requires `Classify`: each
    /// other use added the same error again, which trybuild's output cannot show (it drops
    /// repeated messages, as rustc's does, though rustc counts them: "due to 3 previous errors").
    #[test]
    fn a_forwarded_field_requires_classify_once() {
        for input in [
            "enum E { #[classify(transparent)] A(String), #[classify(transparent)] B { source: u8 } }",
            "#[classify(crate = re::facade)] enum E { #[classify(transparent)] A(String), #[classify(transparent)] B { source: u8 } }",
        ] {
            let out = derive(syn::parse_str(input).unwrap()).to_string();
            assert_eq!(out.matches("Forwarded").count(), 2, "{out}");
            assert_eq!(out.matches("ForwardSpecific as _").count(), 4, "{out}");
        }
        let out = derive(syn::parse_str("#[classify(transparent)] struct W(String);").unwrap());
        assert_eq!(out.to_string().matches("Forwarded").count(), 1, "{out}");
    }
}
