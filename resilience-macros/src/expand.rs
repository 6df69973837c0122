//! Rewriting the annotated function.
//!
//! A native `async fn` keeps its signature; its body becomes:
//!
//! ```text
//! let site = { static SITE: CallSite = CallSite::new("kimi", "upload_file"); &SITE };
//! let mut __resilience_call = Call::new(site);
//! // `hooks::<ReturnType>()`, spanned at the return type, is where the bounds are checked.
//! if __resilience_call.plain() {
//!     if let Err(rejected) = __resilience_call.start_plain(hooks::<ReturnType>()) { return rejected; }
//! } else if let Err(rejected) = __resilience_call.start_ext(hooks::<ReturnType>()) {
//!     return rejected;
//! }
//! loop {
//!     let owned_arg = <Ty as CloneArg>::clone_arg(&owned_arg); // a fresh copy per attempt
//!     match {
//!         let __resilience_out = __resilience_call.attempt(|| async { body }).await;
//!         match __resilience_call.clean(hooks::<ReturnType>(), __resilience_out) {
//!             Ok(r) => break r, // a clean success: the hot path
//!             Err(out) => __resilience_call.finish_slow(hooks::<ReturnType>(), out),
//!         }
//!     } {
//!         Step::Done(__resilience_result) => return __resilience_result,
//!         Step::Retry => {}
//!     }
//!     // The backoff sleep; the method's error if the deadline passed during it, or if
//!     // `resilience::drain()` ended it (the same future as `execute`'s: both honour the drain).
//!     if let Err(r) = __resilience_call.backoff(hooks::<ReturnType>()).await { return r; }
//!     // The retry's turn at the breaker.
//!     if let Err(rejected) = __resilience_call.permit(hooks::<ReturnType>()) { return rejected; }
//! }
//! ```
//!
//! The body runs inside its own `async` block, so `?` and `return` end the attempt, never the
//! loop, and the breaker always hears the outcome.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, Expr, FnArg, Pat, PatIdent, ReturnType, Signature, Stmt, Token, Type,
    Visibility, braced,
};

use crate::args::{Args, Krate};
use crate::async_trait;

/// The annotated item: a function with a body, or a trait method declaration without one. If
/// the body does not parse (half-typed code in an editor), it is kept as raw tokens and the
/// item is emitted unchanged, so the editor still sees it.
pub(crate) struct MaybeFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    default: Option<Token![default]>,
    sig: Signature,
    body: Body,
}

enum Body {
    /// The body's inner attributes (`#![allow(…)]`) and its statements.
    Block(Vec<Attribute>, Block),
    /// A body that does not parse, and why.
    Raw(TokenStream, syn::Error),
    None(Token![;]),
}

impl Parse for MaybeFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let default: Option<Token![default]> = input.parse()?;
        let sig: Signature = input.parse()?;
        let body = if input.peek(Token![;]) {
            Body::None(input.parse()?)
        } else {
            let fork = input.fork();
            let parsed = parse_body(&fork).and_then(|body| match fork.is_empty() {
                true => Ok(body),
                false => Err(fork.error("unexpected tokens after the body")),
            });
            match parsed {
                Ok((inner, block)) => {
                    // Parsed already, on the fork, up to the end: skip the tokens, not parse
                    // the body a second time.
                    input.parse::<TokenStream>()?;
                    Body::Block(inner, block)
                }
                Err(why) => {
                    let content;
                    let brace = braced!(content in input);
                    let inner: TokenStream = content.parse()?;
                    let mut raw = TokenStream::new();
                    brace.surround(&mut raw, |t| t.extend(inner));
                    Body::Raw(raw, why)
                }
            }
        };
        Ok(MaybeFn {
            attrs,
            vis,
            default,
            sig,
            body,
        })
    }
}

/// A function body: `syn::Block` alone refuses inner attributes, and a body that did not
/// parse would be emitted unchanged, without resilience.
fn parse_body(input: ParseStream<'_>) -> syn::Result<(Vec<Attribute>, Block)> {
    let content;
    let brace_token = braced!(content in input);
    let inner = content.call(Attribute::parse_inner)?;
    let stmts = content.call(Block::parse_within)?;
    Ok((inner, Block { brace_token, stmts }))
}

impl ToTokens for MaybeFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for a in &self.attrs {
            a.to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.default.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        match &self.body {
            Body::Block(inner, b) => b.brace_token.surround(tokens, |t| {
                for a in inner {
                    a.to_tokens(t);
                }
                t.extend(b.stmts.iter().map(ToTokens::to_token_stream));
            }),
            Body::Raw(t, _) => t.to_tokens(tokens),
            Body::None(semi) => semi.to_tokens(tokens),
        }
    }
}

/// How an argument is made available to each attempt.
pub(crate) enum Rebind {
    /// `&T`: references are `Copy`; the body can use it as often as it likes.
    Shared,
    /// `&mut T`: reborrowed per attempt.
    Unique,
    /// `Pin<&mut T>`: reborrowed per attempt with `Pin::as_mut` (it cannot be cloned), so the
    /// body may consume each attempt's pin (`get_mut`, pin-project's `project`).
    Pin,
    /// Anything else: cloned per attempt.
    Owned,
}

pub(crate) fn rebind_kind(ty: &Type) -> Rebind {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => Rebind::Unique,
        Type::Reference(_) => Rebind::Shared,
        Type::Group(g) => rebind_kind(&g.elem),
        Type::Paren(p) => rebind_kind(&p.elem),
        ty if is_pin_mut(ty) => Rebind::Pin,
        _ => Rebind::Owned,
    }
}

pub(crate) fn expand(args: Args, mut item: MaybeFn) -> syn::Result<TokenStream> {
    // Given twice, each call would run a retry loop inside another's: 9 attempts for 3, and
    // two breakers' worth of counting. (A repeated key is refused by the parser.)
    if let Some(again) = item.attrs.iter().find(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "resilient")
    }) {
        return Err(syn::Error::new_spanned(
            again,
            "`#[resilient]` is given twice on this method: each call would retry inside the \
             other's retries (9 attempts for 3); keep one",
        ));
    }
    if let Some(c) = &item.sig.constness {
        return Err(syn::Error::new(
            c.span,
            "`#[resilient]` cannot be used on a `const fn`: it needs an `async fn`",
        ));
    }
    // `async extern "C" fn` compiles, with rustc's `improper_ctypes_definitions` warning at the
    // return type, which says nothing of us; but no foreign caller can poll a Rust future.
    if let Some(abi) = &item.sig.abi
        && abi.name.as_ref().is_none_or(|n| n.value() != "Rust")
    {
        return Err(syn::Error::new_spanned(
            abi,
            "`#[resilient]` cannot be used on an `extern` function: it returns a Rust future, \
             which no foreign caller can poll; remove the ABI",
        ));
    }
    let block = match &mut item.body {
        Body::None(_) => {
            return Err(syn::Error::new(
                item.sig.fn_token.span,
                "`#[resilient]` needs a method body: annotate the method in the `impl` block \
                 (or give this trait method a default body), not its declaration",
            ));
        }
        // The body does not parse: emit the item as it is, so rustc reports on the user's own
        // code (half-typed code in an editor), and say that it is without resilience, in case
        // rustc accepts what syn does not.
        Body::Raw(_, why) => {
            let why = syn::Error::new(
                why.span(),
                format!(
                    "`#[resilient]` could not read this body ({why}), so it runs without resilience"
                ),
            );
            let mut out = item.into_token_stream();
            out.extend(why.to_compile_error());
            return Ok(out);
        }
        Body::Block(inner, b) => {
            // The body moves into a closure, where `#![…]` cannot follow it; on the function
            // it means the same (a lint level, mostly).
            for mut a in inner.drain(..) {
                a.style = syn::AttrStyle::Outer;
                item.attrs.push(a);
            }
            b
        }
    };
    // Both labels spanned as ours, where they were written: neither is a literal of the body,
    // and the method's is one the user never wrote, so a lint on literals (clippy's
    // `non_ascii_literal`, at a method named `téléverser`) has nothing to say of them.
    let ours = |mut l: syn::LitStr| {
        l.set_span(Span::call_site().located_at(l.span()));
        l
    };
    let method = ours(args.name.clone().unwrap_or_else(|| {
        syn::LitStr::new(
            &syn::ext::IdentExt::unraw(&item.sig.ident).to_string(),
            item.sig.ident.span(),
        )
    }));
    let provider = &ours(args.provider.clone());
    let krate = &args.krate;
    let site = {
        let no_retry = (!args.retry).then(|| quote!(.without_retry()));
        let site = site_ident();
        // The static inside a block: an item is not hygienic, and at the body's level a
        // body's `let __RESILIENCE_SITE` would clash with it (and the body could read it).
        let prelude = krate.prelude();
        quote! {
            #prelude
            let #site: &'static #krate::__private::CallSite = {
                static __RESILIENCE_SITE: #krate::__private::CallSite =
                    #krate::__private::CallSite::new(#provider, #method) #no_retry;
                // Known from the program's start, so its series are made when the recorder is
                // switched on, before its first call.
                #krate::__private::inventory::submit! {
                    #krate::__private::Registered(&__RESILIENCE_SITE)
                }
                &__RESILIENCE_SITE
            };
        }
    };

    if item.sig.asyncness.is_some() {
        let ret = result_type(&item.sig)?.clone();
        if args.retry {
            check_no_borrow_through_unique(&item.sig, &ret)?;
        }
        let mut stmts = std::mem::take(&mut block.stmts);
        let used = mentioned(quote!(#(#stmts)*));
        let bindings = renamed_pattern_bindings(&item.sig);
        let named = named_patterns(&item.sig);
        let (mut before, mut inside) = rebind_params(&mut item.sig, args.retry, &used, krate);
        skip_generated_names(&mut item.attrs, &item.sig, false, &bindings, &named);
        let mut site = site;
        if args.retry
            && let Some(binds) = crate::receiver::rebind(&mut item.sig, &mut stmts, krate)
        {
            site.extend(binds.prelude);
            before.insert(0, binds.before);
            inside.insert(0, binds.inside);
        }
        let body = {
            let user = user_block(quote!(#(#stmts)*), block.brace_token.span.join());
            quote!(#(#inside)* #user)
        };
        let harness = harness(
            &args,
            &site,
            &ret,
            &before,
            &body,
            block.brace_token.span.join(),
        );
        // The user's braces, so that a lint on the method that suggests rewriting its body
        // (`async_fn_in_trait`) edits the body as written, not the attribute.
        let braces = block.brace_token;
        *block = syn::parse2(quote!({ #harness }))?;
        block.brace_token = braces;
        return Ok(item.into_token_stream());
    }

    let receiver = receiver_kind(&item.sig);
    let Some(ret) = async_trait::future_output(&item.sig.output).cloned() else {
        return Err(not_async(&item.sig));
    };
    let Some(inner) = async_trait::inner_async_block(block) else {
        return Err(not_async(&item.sig));
    };
    // async-trait wrote this `()` itself, spanned at its own attribute: name the method.
    if matches!(&ret, Type::Tuple(t) if t.elems.is_empty()) {
        return Err(syn::Error::new(
            item.sig.ident.span(),
            "`#[resilient]` methods must return `Result<T, E>`; this one returns `()`",
        ));
    }
    check_result_type(&ret)?;
    if args.retry {
        check_no_borrow_through_unique(&item.sig, &ret)?;
    }
    let mut params = Vec::new();
    let mut bindings = Vec::new();
    let mut site = site;
    if args.retry {
        let held;
        (params, held, bindings) = param_rebinds(&mut item.sig, &mut inner.block.stmts, krate);
        // A receiver taken by value that the body never names is not copied, as such an
        // argument is not: async-trait's move of it goes before the loop, so `Self` need not
        // be `Clone` (the native path never clones a `self` without `mut`). A `self` that
        // async-trait left as it was (`"{self}"`) counts as naming it. It goes ahead of the
        // arguments' moves, where async-trait put it, so that they drop before it, as without
        // us.
        let named = async_trait_body_mentions(&inner.block.stmts).is_none_or(|u| {
            ["__self", "self"]
                .iter()
                .any(|n| u.names(&syn::Ident::new(n, Span::call_site())))
        });
        if matches!(receiver, ReceiverKind::Owned(_))
            && !named
            && let Some(at) = inner.block.stmts.iter().position(moves_self)
        {
            inner.block.stmts.remove(at).to_tokens(&mut site);
        }
        site.extend(held);
        for stmt in &mut inner.block.stmts {
            if let Some(copy) = rebind_self_let(stmt, &receiver, krate) {
                params.insert(0, copy);
            }
        }
        if let ReceiverKind::Pin = receiver
            && let Some(FnArg::Receiver(r)) = item.sig.inputs.first_mut()
        {
            // Reborrowed per attempt (`Pin::as_mut(&mut self)`), which needs a `mut` binding.
            r.mutability = Some(Default::default());
        }
    }
    skip_generated_names(&mut item.attrs, &item.sig, true, &bindings, &[]);
    let stmts = &inner.block.stmts;
    let harness = harness(
        &args,
        &site,
        &ret,
        &params,
        &user_block(quote!(#(#stmts)*), inner.block.brace_token.span.join()),
        inner.block.brace_token.span.join(),
    );
    let braces = inner.block.brace_token;
    inner.block = syn::parse2(quote!({ #harness }))?;
    inner.block.brace_token = braces;
    Ok(item.into_token_stream())
}

/// Adds the names a pattern argument is given (`__resilience_argN`) to the `skip` of a
/// `#[tracing::instrument]` below ours, which records every argument by name: it would record
/// the whole value by its `Debug`, the fields the pattern leaves out included
/// (`Creds { user, .. }`, `(tenant, _)`: a key), into a span that every `[RETRY]` line of the
/// call is logged in. Without us it records the pattern's bindings; it cannot see them here
/// (each attempt binds them in the body), so it records nothing of such an argument. In an
/// `#[async_trait]` impl (`async_trait`) the name is async-trait's (`__argN`, for `_` too,
/// `N` the argument's place, `self` counted), given before we run, and the value recorded the
/// same way. Elsewhere, or at another place, an `__arg1` is the user's own: recorded as before.
/// `bindings` are the names the renamed patterns bind, which a `skip` may list (`skip(key)` for
/// `(tenant, key)`, as tracing allows without us): they are no parameters of the function any
/// more, and tracing refuses a `skip` of a name that is none, so they leave the `skip`, which
/// has the whole pattern's name instead. `named`: the places of the parameters that took the
/// name of their pattern of one name ([`param_name`]), skipped as the others are.
fn skip_generated_names(
    attrs: &mut [Attribute],
    sig: &Signature,
    async_trait: bool,
    bindings: &[String],
    named: &[usize],
) {
    let generated_name = |i: usize, name: &str| {
        name.starts_with("__resilience_arg")
            || async_trait && name == format!("__arg{i}")
            || named.contains(&i)
    };
    let generated: Vec<syn::Ident> = sig
        .inputs
        .iter()
        .enumerate()
        .filter_map(|(i, arg)| match arg {
            FnArg::Typed(t) => match &*t.pat {
                // Cloned, not made anew from its text: a raw name (`ref r#type`) is one.
                Pat::Ident(p) if generated_name(i, &p.ident.to_string()) => {
                    let mut name = p.ident.clone();
                    name.set_span(Span::call_site());
                    Some(name)
                }
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    if generated.is_empty() {
        return;
    }
    // A binding that shares its name with one the signature still binds stays in the `skip`:
    // tracing matches a `skip` by name, and such a name exists where a pattern and another
    // argument come from different macro contexts (`(tenant, key)` written in a
    // `macro_rules!`, `$key` from its caller: no E0415). Without us `skip(key)` skips that
    // argument; taken out, it was recorded. The other may be a pattern's binding too: in an
    // `#[async_trait]` impl a pattern on a shared reference stays in the signature, and
    // tracing records each of its bindings.
    let params: Vec<String> = sig
        .inputs
        .iter()
        .flat_map(|arg| match arg {
            FnArg::Typed(t) => pattern_bindings(&t.pat),
            FnArg::Receiver(_) => Vec::new(),
        })
        .collect();
    let bindings: Vec<String> = bindings
        .iter()
        .filter(|b| !params.contains(b))
        .cloned()
        .collect();
    let skips = Skips {
        generated,
        bindings: &bindings,
    };
    for attr in attrs.iter_mut() {
        skip_in(&mut attr.meta, &skips);
    }
}

/// What [`skip_generated_names`] changes in an `#[instrument]`'s `skip`.
struct Skips<'a> {
    /// Added.
    generated: Vec<syn::Ident>,
    /// Taken out.
    bindings: &'a [String],
}

/// The name of ours a pattern's parameter is given, hygienic, so the body cannot name it
/// (it names the pattern's bindings, bound per attempt). A pattern of one name (`ref x`,
/// `ref mut x`, `x @ Some(_)`) gives its name, as rustc's own lowering of an `async fn`
/// keeps it, so that rustdoc shows `x`, as without us, not `__resilience_arg0`; any other
/// (a tuple, a struct) shows `__argN` without us, rustc's name, and `__resilience_argN` with.
fn param_name(pat: &Pat, i: usize) -> syn::Ident {
    match pat {
        Pat::Ident(p) => {
            let mut name = p.ident.clone();
            name.set_span(Span::mixed_site().located_at(p.ident.span()));
            name
        }
        _ => format_ident!("__resilience_arg{}", i, span = Span::mixed_site()),
    }
}

/// The places of the parameters that [`param_name`] names after their pattern (`ref x`).
fn named_patterns(sig: &Signature) -> Vec<usize> {
    sig.inputs
        .iter()
        .enumerate()
        .filter_map(|(i, arg)| match arg {
            FnArg::Typed(t) if kept_name(&t.pat).is_none() && matches!(&*t.pat, Pat::Ident(_)) => {
                Some(i)
            }
            _ => None,
        })
        .collect()
}

/// The name a parameter keeps through [`rebind_params`]: a plain `name` or `mut name`'s. Any
/// other pattern but `_` is given one of ours ([`param_name`]).
fn kept_name(pat: &Pat) -> Option<&syn::Ident> {
    match pat {
        Pat::Ident(PatIdent {
            ident,
            subpat: None,
            by_ref: None,
            ..
        }) => Some(ident),
        _ => None,
    }
}

/// The names bound by the argument patterns that [`rebind_params`] gives a name of its own
/// (see [`kept_name`]; `_` binds none).
fn renamed_pattern_bindings(sig: &Signature) -> Vec<String> {
    let mut names = Vec::new();
    for arg in &sig.inputs {
        let FnArg::Typed(arg) = arg else { continue };
        if kept_name(&arg.pat).is_none() && !matches!(&*arg.pat, Pat::Wild(_)) {
            names.extend(pattern_bindings(&arg.pat));
        }
    }
    names
}

/// The names `pat` binds.
fn pattern_bindings(pat: &Pat) -> Vec<String> {
    use syn::visit_mut::VisitMut;
    struct Collect(Vec<String>);
    impl VisitMut for Collect {
        fn visit_pat_ident_mut(&mut self, p: &mut PatIdent) {
            self.0.push(p.ident.to_string());
            syn::visit_mut::visit_pat_ident_mut(self, p);
        }
    }
    let mut collect = Collect(Vec::new());
    collect.visit_pat_mut(&mut pat.clone());
    collect.0
}

/// [`skip_generated_names`] for one attribute: an `#[instrument]`, or one under a
/// `#[cfg_attr(…, instrument(…))]`.
fn skip_in(meta: &mut syn::Meta, skips: &Skips<'_>) {
    use syn::punctuated::Punctuated;
    let generated = &skips.generated;
    match meta {
        syn::Meta::Path(path) if is_instrument(path) => {
            let path = path.clone();
            *meta = syn::Meta::List(syn::MetaList {
                path,
                delimiter: syn::MacroDelimiter::Paren(Default::default()),
                tokens: quote!(skip(#(#generated),*)),
            });
        }
        syn::Meta::List(list) if is_instrument(&list.path) => {
            list.tokens = with_skips(list.tokens.clone(), skips);
        }
        syn::Meta::List(list) if list.path.is_ident("cfg_attr") => {
            let Ok(mut metas) =
                list.parse_args_with(Punctuated::<syn::Meta, Token![,]>::parse_terminated)
            else {
                return;
            };
            // The first is the condition.
            for meta in metas.iter_mut().skip(1) {
                skip_in(meta, skips);
            }
            list.tokens = metas.into_token_stream();
        }
        _ => {}
    }
}

/// tracing's `#[instrument]`: `instrument`, `tracing::instrument` or
/// `tracing_attributes::instrument`, with or without a leading `::`.
fn is_instrument(path: &syn::Path) -> bool {
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    matches!(
        names.iter().map(String::as_str).collect::<Vec<_>>()[..],
        ["instrument"] | ["tracing" | "tracing_attributes", "instrument"]
    )
}

/// `#[instrument(…)]`'s arguments with `names` skipped: added to its `skip(…)`, or a
/// `skip(…)` of their own; nothing when it skips all (`skip_all`).
fn with_skips(tokens: TokenStream, skips: &Skips<'_>) -> TokenStream {
    use proc_macro2::{Delimiter, Group, TokenTree};
    let names = &skips.generated;
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    // Top-level arguments only: `fields(skip = 1)` names no argument.
    let is_word = |t: &TokenTree, w: &str| matches!(t, TokenTree::Ident(i) if i == w);
    if trees.iter().any(|t| is_word(t, "skip_all")) {
        return trees.into_iter().collect();
    }
    let mut out = Vec::with_capacity(trees.len() + 1);
    let mut added = false;
    let mut iter = trees.into_iter().peekable();
    while let Some(tree) = iter.next() {
        let opens_skip = is_word(&tree, "skip")
            && matches!(iter.peek(), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
        out.push(tree);
        if opens_skip && let Some(TokenTree::Group(g)) = iter.next() {
            let inner = without_bindings(g.stream(), skips.bindings);
            // A name skipped already (async-trait's `__arg2`, skipped by hand before we did,
            // or an argument of one's own called `__arg1`) is not added again: tracing refuses
            // a name skipped twice, and code that compiled would stop.
            let listed = |n: &&syn::Ident| {
                inner
                    .clone()
                    .into_iter()
                    .any(|t| matches!(t, TokenTree::Ident(i) if i == **n))
            };
            let names: Vec<&syn::Ident> = names.iter().filter(|n| !listed(n)).collect();
            let comma = (!names.is_empty() && needs_comma(&inner)).then(|| quote!(,));
            let mut merged = Group::new(Delimiter::Parenthesis, quote!(#inner #comma #(#names),*));
            merged.set_span(g.span());
            out.push(TokenTree::Group(merged));
            added = true;
        }
    }
    let mut tokens: TokenStream = out.into_iter().collect();
    if !added {
        let comma = needs_comma(&tokens).then(|| quote!(,));
        tokens.extend(quote!(#comma skip(#(#names),*)));
    }
    tokens
}

/// A `skip(…)`'s names without those in `bindings`, each with its comma.
fn without_bindings(list: TokenStream, bindings: &[String]) -> TokenStream {
    use proc_macro2::TokenTree;
    let mut out = TokenStream::new();
    let mut item: Vec<TokenTree> = Vec::new();
    let mut flush = |item: &mut Vec<TokenTree>, comma: Option<TokenTree>| {
        let binding =
            matches!(&item[..], [TokenTree::Ident(i)] if bindings.contains(&i.to_string()));
        if !binding {
            out.extend(item.drain(..).chain(comma));
        }
        item.clear();
    };
    for t in list {
        if matches!(&t, TokenTree::Punct(p) if p.as_char() == ',') {
            flush(&mut item, Some(t));
        } else {
            item.push(t);
        }
    }
    if !item.is_empty() {
        flush(&mut item, None);
    }
    out
}

/// Whether a list must get a `,` before more items: it has some, and no trailing `,`.
fn needs_comma(list: &TokenStream) -> bool {
    list.clone()
        .into_iter()
        .last()
        .is_some_and(|t| !matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == ','))
}

fn not_async(sig: &Signature) -> syn::Error {
    // `async_fn_in_trait`'s suggestion (a `fn` returning `impl Future<…> + Send`, its body an
    // `async` block) reads as an async method, and its fix is not obvious: say it.
    if let ReturnType::Type(_, ty) = &sig.output
        && let Type::ImplTrait(it) = &**ty
        && it.bounds.iter().any(|b| {
            matches!(b, syn::TypeParamBound::Trait(t)
                if t.path.segments.last().is_some_and(|s| s.ident == "Future"))
        })
    {
        return syn::Error::new(
            sig.fn_token.span,
            "`#[resilient]` needs an `async fn`, not a `fn` returning `impl Future`: write \
             `async fn` returning the future's `Output`, with the `async` block's statements as \
             its body; for futures that are `Send`, declare the method in the trait as \
             `fn … -> impl Future<Output = …> + Send;` (no body) and put `#[resilient]` on each \
             impl's `async fn`",
        );
    }
    syn::Error::new(
        sig.fn_token.span,
        "`#[resilient]` needs an `async fn` (or a method rewritten by `#[async_trait]`)",
    )
}

/// The loop shared by both shapes. `body` is the user's statements.
fn harness(
    args: &Args,
    site: &TokenStream,
    ret: &Type,
    rebinds: &[TokenStream],
    body: &TokenStream,
    braces: Span,
) -> TokenStream {
    // The loop's own locals, hygienic: a body's variable of the same name neither sees nor
    // hides them.
    let site_ref = site_ident();
    let [call, out, result, rejected, early] = [
        "__resilience_call",
        "__resilience_out",
        "__resilience_result",
        "__resilience_rejected",
        "__resilience_ret",
    ]
    .map(|n| syn::Ident::new(n, Span::mixed_site()));
    // What the method returns (a success, a rejection, the error after the backoff), placed
    // at the return type, hygiene kept: rustc reports a returned borrow that outlives what
    // the signature allows (`Ok(key)` from `key: &str` out of `-> Result<&str, E>` on
    // `&self`: "lifetime may not live long enough", E0621) where it is returned, which was
    // the attribute. The user's own `return` is inside the attempt's block, not the method's.
    let [result, rejected] = [result, rejected].map(|mut i| {
        i.set_span(i.span().located_at(ret.span()));
        i
    });
    // Spanned at the return type: a missing bound is reported there. Each use names the
    // constant afresh (a promoted `'static`), so the optimiser sees the function pointers and
    // inlines them; rustc reports the identical errors of the three uses once.
    let krate = &args.krate;
    let hooks = {
        let krate = krate.at(ret.span());
        quote_spanned! {ret.span()=> #krate::__private::hooks::<#ret>() }
    };
    // Fixes the block's output type early, so `?` in the body knows what to convert into.
    // rustc names the first `return`'s value as where the block's type was inferred ("return
    // type inferred to be `Result<…>` here", beside a body's mistyped `return` or tail): placed
    // at the return type, the note points at the user's code, not at the attribute.
    let inferred_here = {
        let mut e = early.clone();
        e.set_span(e.span().located_at(ret.span()));
        e
    };
    let guard = quote! {
        if let #krate::__private::Option::Some(#early) =
            #krate::__private::Option::None::<#ret>
        {
            return #inferred_here;
        };
    };
    // The body's `async` block placed at the body's braces: rustc labels the block by its
    // span (a `?` that cannot convert into the method's result: "this function returns a
    // `Result`"; a stray `break`: "enclosing `async` block"), and that was the attribute.
    let async_kw = quote_spanned!(Span::call_site().located_at(braces)=> async);
    let body = {
        let mut g = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, quote!(#guard #body));
        g.set_span(braces);
        g
    };
    // The first attempt's permit is the call's start, outside the loop, where what
    // `Call::new` wrote is known; a retry's comes after its backoff. Two ways in, each with
    // its own check (see `Call::plain`).
    let start = quote! {
        if #call.plain() {
            if let #krate::__private::Result::Err(#rejected) = #call.start_plain(#hooks) {
                return #rejected;
            }
        } else if let #krate::__private::Result::Err(#rejected) = #call.start_ext(#hooks) {
            return #rejected;
        }
    };
    let permit = quote! {
        if let #krate::__private::Result::Err(#rejected) =
            #call.permit(#hooks)
        {
            return #rejected;
        }
    };
    if !args.retry {
        // One attempt: the body may consume its arguments, so it takes them by move.
        return quote! {
            #site
            let mut #call = #krate::__private::Call::new(#site_ref);
            #start
            #(#rebinds)*
            let #out = #call.attempt(move || #async_kw move #body).await;
            // The clean success is the block's value, where the call's drop follows what
            // `clean` tested (see `Call::clean`); anything else returns.
            match #call.clean(#hooks, #out) {
                #krate::__private::Result::Ok(#result) => #result,
                #krate::__private::Result::Err(#out) => {
                    return #call.finish_once_slow(#hooks, #out);
                }
            }
        };
    }
    quote! {
        #site
        let mut #call = #krate::__private::Call::new(#site_ref);
        #start
        loop {
            #(#rebinds)*
            // Nothing of an attempt may live across the backoff's `.await`. A `match`'s
            // scrutinee lives to the end of the `match`, so with the `.await` in the `Retry`
            // arm the step (which holds the method's result in `Done`) was kept in the caller's
            // future whenever it has drop glue (a `Result` whose error is an `io::Error` has):
            // as large as the result, and `!Send` for a result that is not `Send`. The `.await` follows the `match`. And the attempt's result, bound
            // at the loop's scope, had a drop flag there, written on every call: it is scoped
            // to the scrutinee.
            // A clean success (the hot path) leaves the loop where it is found, by `break`,
            // the loop's only one, as every other way out is a `return`: so the call's drop
            // that follows is one of its own, where what `clean` tested is known (see
            // `Call::clean`); the rest goes out of line and comes back with a `Step`.
            match {
                let #out = #call.attempt(|| #async_kw #body).await;
                match #call.clean(#hooks, #out) {
                    #krate::__private::Result::Ok(#result) => break #result,
                    #krate::__private::Result::Err(#out) => #call.finish_slow(#hooks, #out),
                }
            } {
                #krate::__private::Step::Done(#result) => return #result,
                #krate::__private::Step::Retry => {}
            }
            if let #krate::__private::Result::Err(#result) = #call.backoff(#hooks).await {
                return #result;
            }
            #permit
        }
    }
}

/// The user's statements in a block of their own, spanned at their braces. Items the body
/// declares are visible throughout their block, so beside our statements (the guard that
/// names the return type, the per-attempt copies that name the arguments' types) a body's
/// `use std::io::Result;` or `struct Error;` took over the names those use, and clippy's
/// `items_after_statements` saw the body's first item after ours.
///
/// Spanned as the user's braces, so that its tail's temporaries follow the user's edition's
/// rules (a span of ours gave an edition-2021 body 2024's drop order). It opens with an empty
/// statement of ours: a plain block of one expression as another's tail is rustc's
/// `unused_braces` ("unnecessary braces around block return value", an error under
/// `-D warnings`), which a block of two statements is not. (A label did the same, but code in
/// the body could name it, and it turned a stray `break`'s error into one about a labeled
/// block the user never wrote.)
fn user_block(stmts: TokenStream, braces: Span) -> TokenStream {
    let empty = proc_macro2::Punct::new(';', proc_macro2::Spacing::Alone);
    let mut empty = proc_macro2::TokenTree::Punct(empty);
    empty.set_span(Span::mixed_site());
    let mut g = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, quote!(#empty #stmts));
    g.set_span(braces);
    g.into_token_stream()
}

/// The local that holds the call site: hygienic, unlike the `static` it points to.
fn site_ident() -> syn::Ident {
    syn::Ident::new("__resilience_site", Span::mixed_site())
}

/// The declared return type, which must at least look like it could be a `Result` (a path:
/// `Result<T, E>` or an alias). Whether it really is one is checked by the type system.
fn result_type(sig: &Signature) -> syn::Result<&Type> {
    match &sig.output {
        ReturnType::Default => Err(syn::Error::new(
            sig.paren_token.span.close(),
            "`#[resilient]` methods must return `Result<T, E>`; this one returns `()`",
        )),
        ReturnType::Type(_, ty) => check_result_type(ty).map(|()| &**ty),
    }
}

fn check_result_type(ty: &Type) -> syn::Result<()> {
    if mentions_impl_trait(ty) {
        return Err(syn::Error::new_spanned(
            ty,
            "`#[resilient]` cannot name an `impl Trait` return type inside the body; \
             name the concrete type or return a boxed one",
        ));
    }
    match ty {
        Type::Path(_) | Type::Group(_) | Type::Paren(_) | Type::Macro(_) => Ok(()),
        other => Err(syn::Error::new_spanned(
            other,
            "`#[resilient]` methods must return `Result<T, E>` (or an alias of it)",
        )),
    }
}

/// A retried method cannot return a borrow taken through what each attempt reborrows (`&mut
/// self`, a `&mut` argument, a `Pin<&mut …>`): one attempt's borrow cannot outlive the loop
/// that makes the next. rustc says so at the attribute (E0499, "in previous iteration of
/// loop"); this says it at the return type's reference, with what to do. A reference (or a
/// path's lifetime) is refused when its lifetime is a reborrowed input's: named on it (and on
/// no other input, as rustc alone can tell which one the value comes from), or elided onto it
/// (onto `&mut self`; with no `self`, onto the only reference argument). A borrow from
/// elsewhere is fine: `'static`, a leak's or an arena's `&'a mut` from `&'a self`.
fn check_no_borrow_through_unique(sig: &Signature, ret: &Type) -> syn::Result<()> {
    let Some(lent) = Lent::of(sig) else {
        return Ok(());
    };
    match lent.borrowed_in(ret) {
        Some((at, true)) => Err(syn::Error::new_spanned(
            at,
            "a retried `#[resilient]` method cannot return a `&mut` borrow taken through a \
             `&mut` receiver or argument, which each attempt borrows anew, and one attempt's \
             borrow cannot outlive the next; return an owned value, or use `retry = false`",
        )),
        Some((at, false)) => Err(syn::Error::new_spanned(
            at,
            "a retried `#[resilient]` method cannot return a borrow taken through `&mut self` \
             or a `&mut` argument: each attempt borrows it anew, and one attempt's borrow \
             cannot outlive the next; return an owned value, borrow through `&self` instead, \
             or use `retry = false`",
        )),
        None => Ok(()),
    }
}

/// The lifetimes of what each attempt reborrows, as the return type can name them.
struct Lent {
    /// Named on a reborrowed input and on no other: `&'a mut self`, `buf: &'a mut [u8]`.
    named: Vec<syn::Ident>,
    /// Elided output lifetimes are a reborrowed input's: the receiver is `&mut self` (or
    /// `Pin<&mut Self>`), or, with no `self`, a `&mut` argument is the only reference in.
    elided: bool,
}

impl Lent {
    /// Only what is surely a reborrowed input's, so that no signature that compiles is
    /// refused: the outer `&mut`'s own lifetime (not one inside the type it points to, which
    /// keeps its full length), declared on the method (one of the `impl`'s may be in `Self`),
    /// named on no other input and in no bound (`'b: 'a`, `T: Into<&'a str>`: a value of that
    /// lifetime may come from elsewhere). What is left out is left to rustc.
    fn of(sig: &Signature) -> Option<Lent> {
        if !reborrows_unique(sig) {
            return None;
        }
        let declared: Vec<syn::Ident> = sig
            .generics
            .lifetimes()
            .filter(|l| l.bounds.is_empty())
            .map(|l| l.lifetime.ident.clone())
            .collect();
        // Every lifetime a bound names, and every lifetime bounded.
        let mut other = Vec::new();
        for param in &sig.generics.params {
            match param {
                syn::GenericParam::Lifetime(l) if !l.bounds.is_empty() => {
                    lifetimes_in(l.to_token_stream(), &mut other);
                }
                syn::GenericParam::Type(t) => lifetimes_in(t.bounds.to_token_stream(), &mut other),
                _ => {}
            }
        }
        if let Some(w) = &sig.generics.where_clause {
            // Not async-trait's own `'life0: 'async_trait` and `Self: 'async_trait`, which
            // say only that the future holds them.
            let async_trait = |b: &syn::Lifetime| b.ident == "async_trait";
            for predicate in &w.predicates {
                let ours = match predicate {
                    syn::WherePredicate::Lifetime(l) => l.bounds.iter().all(async_trait),
                    syn::WherePredicate::Type(t) => t
                        .bounds
                        .iter()
                        .all(|b| matches!(b, syn::TypeParamBound::Lifetime(l) if async_trait(l))),
                    _ => false,
                };
                if !ours {
                    lifetimes_in(predicate.to_token_stream(), &mut other);
                }
            }
        }
        // Per reborrowed input, its outer lifetime (`None`: elided).
        let mut outer: Vec<Option<syn::Ident>> = Vec::new();
        let mut refs = 0;
        for input in &sig.inputs {
            let ty = match input {
                FnArg::Receiver(r) => match &r.kind {
                    syn::ReceiverKind::Reference(_, l, m) => {
                        refs += 1;
                        let l = l.as_ref().map(|l| l.ident.clone()).filter(|l| l != "_");
                        match m {
                            Some(_) => outer.push(l),
                            None => other.extend(l),
                        }
                        continue;
                    }
                    syn::ReceiverKind::Typed(_, ty) => &**ty,
                    _ => continue,
                },
                FnArg::Typed(t) => &*t.ty,
            };
            refs += count_refs(ty);
            // Every lifetime the input names, inside a trait object, a `fn` type or an `impl
            // Trait` too (`src: impl Fn() -> &'a str`): a value of it may come from there.
            let mut lifetimes = Vec::new();
            lifetimes_in(ty.to_token_stream(), &mut lifetimes);
            match outer_unique(ty) {
                Some(l) => {
                    let l = l.filter(|l| l != "_");
                    // The outer one once; any other is inside the type pointed to.
                    if let Some(at) = lifetimes.iter().position(|x| Some(x) == l.as_ref()) {
                        lifetimes.remove(at);
                    }
                    other.extend(lifetimes);
                    outer.push(l);
                }
                None => other.extend(lifetimes),
            }
        }
        let lent = |l: &syn::Ident| declared.contains(l) && !other.contains(l);
        let named: Vec<syn::Ident> = outer
            .iter()
            .flatten()
            .filter(|l| lent(l))
            .cloned()
            .collect();
        // Elided output lifetimes go to `self`'s, or, with no `self`, to the only reference.
        let receiver = match receiver_kind(sig) {
            ReceiverKind::Unique | ReceiverKind::Pin => outer.first(),
            ReceiverKind::Shared => None,
            ReceiverKind::None | ReceiverKind::Owned(_) => {
                (refs == 1).then(|| outer.first()).flatten()
            }
        };
        let elided = receiver.is_some_and(|l| l.as_ref().is_none_or(lent));
        Some(Lent { named, elided })
    }

    /// Where `ty` holds a borrow with one of these lifetimes, and whether it is a `&mut`.
    fn borrowed_in(&self, ty: &Type) -> Option<(TokenStream, bool)> {
        let ours = |l: Option<&syn::Lifetime>| match l {
            None => self.elided,
            Some(l) if l.ident == "_" => self.elided,
            Some(l) => self.named.contains(&l.ident),
        };
        match ty {
            Type::Reference(r) if ours(r.lifetime.as_ref()) => {
                Some((r.to_token_stream(), r.mutability.is_some()))
            }
            Type::Reference(r) => self.borrowed_in(&r.elem),
            Type::Paren(t) => self.borrowed_in(&t.elem),
            Type::Group(t) => self.borrowed_in(&t.elem),
            Type::Slice(t) => self.borrowed_in(&t.elem),
            Type::Array(t) => self.borrowed_in(&t.elem),
            Type::Tuple(t) => t.elems.iter().find_map(|t| self.borrowed_in(t)),
            Type::Path(p) => p.path.segments.iter().find_map(|s| match &s.arguments {
                syn::PathArguments::AngleBracketed(a) => a.args.iter().find_map(|a| match a {
                    syn::GenericArgument::Type(t) => self.borrowed_in(t),
                    syn::GenericArgument::Lifetime(l) if ours(Some(l)) => {
                        Some((l.to_token_stream(), false))
                    }
                    _ => None,
                }),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// The lifetime of the `&mut` that an input reborrowed per attempt is (`None` inside: elided),
/// or `None` for an input that is not one: `&'a mut T`, `Pin<&'a mut T>`.
fn outer_unique(ty: &Type) -> Option<Option<syn::Ident>> {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => {
            Some(r.lifetime.as_ref().map(|l| l.ident.clone()))
        }
        Type::Group(g) => outer_unique(&g.elem),
        Type::Paren(p) => outer_unique(&p.elem),
        Type::Path(p) if is_pin_mut(ty) => {
            p.path.segments.last().and_then(|s| match &s.arguments {
                syn::PathArguments::AngleBracketed(a) => match a.args.first() {
                    Some(syn::GenericArgument::Type(t)) => outer_unique(t),
                    _ => None,
                },
                _ => None,
            })
        }
        _ => None,
    }
}

/// Every lifetime named in `tokens`.
fn lifetimes_in(tokens: TokenStream, out: &mut Vec<syn::Ident>) {
    let tokens: Vec<proc_macro2::TokenTree> = tokens.into_iter().collect();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '\'' => {
                if let Some(proc_macro2::TokenTree::Ident(id)) = tokens.get(i + 1) {
                    out.push(id.clone());
                }
            }
            proc_macro2::TokenTree::Group(g) => lifetimes_in(g.stream(), out),
            _ => {}
        }
    }
}

/// The input lifetime positions in `ty`: its references and the lifetimes its paths name.
fn count_refs(ty: &Type) -> usize {
    match ty {
        Type::Reference(r) => 1 + count_refs(&r.elem),
        Type::Paren(t) => count_refs(&t.elem),
        Type::Group(t) => count_refs(&t.elem),
        Type::Slice(t) => count_refs(&t.elem),
        Type::Array(t) => count_refs(&t.elem),
        Type::Tuple(t) => t.elems.iter().map(count_refs).sum(),
        Type::Path(p) => p
            .path
            .segments
            .iter()
            .map(|s| match &s.arguments {
                syn::PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .map(|a| match a {
                        syn::GenericArgument::Type(t) => count_refs(t),
                        syn::GenericArgument::Lifetime(_) => 1,
                        _ => 0,
                    })
                    .sum(),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// For a native `async fn`: gives each argument a plain name in the signature (dropping `mut`
/// and patterns there, which does not change the signature's type) and returns the statements
/// that make each attempt's arguments: those to run before the attempt (a clone or reborrow,
/// under a hidden name) and those that open its `async` block, binding the original patterns.
/// Moved into the block, an attempt's copy is owned by it, so the future is `Send` whenever the
/// argument is (captured by reference, it would need the argument to be `Sync`). A parameter's
/// `#[cfg]` goes onto its statements, which must vanish with it.
fn rebind_params(
    sig: &mut Signature,
    retry: bool,
    used: &Mentioned,
    krate: &Krate,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let (mut before, mut inside) = (Vec::new(), Vec::new());
    for (i, arg) in sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(arg) = arg else { continue };
        let span = arg.span();
        if matches!(&*arg.pat, Pat::Wild(_)) {
            continue;
        }
        let ParamAttrs { cfgs, binding } = ParamAttrs::of(&arg.attrs);
        let original = (*arg.pat).clone();
        // A `ref mut` binding borrows what it is bound from mutably: that must be a `mut` place.
        let ref_mut = binds_ref_mut(original.to_token_stream());
        let (name, own_name) = match kept_name(&arg.pat) {
            Some(ident) => (ident.clone(), true),
            None => (param_name(&arg.pat, i), false),
        };
        // A name of the user's own, bound as is: not `ref x` or `x @ (a, b)`, whose parameter
        // is named `x` too ([`param_name`]) but whose pattern each attempt must still bind.
        let plain = own_name && matches!(&original, Pat::Ident(p) if p.mutability.is_none());
        // Whether a statement of ours binds the parameter's own name again for the body (each
        // attempt's copy, or the pattern's `mut`): the parameter's binding is then ours
        // ([`ours_mut`]). A name of ours (a pattern's parameter) is never bound again.
        let rebound = own_name
            && if retry {
                !(plain && (!used.names(&name) || matches!(rebind_kind(&arg.ty), Rebind::Shared)))
            } else {
                !matches!(&original, Pat::Ident(p) if p.mutability.is_none() && p.by_ref.is_none() && p.subpat.is_none() && p.ident == name)
            };
        *arg.pat = Pat::Ident(PatIdent {
            attrs: Vec::new(),
            by_ref: None,
            mutability: rebound.then(|| ours_mut(&name)),
            ident: name.clone(),
            subpat: None,
        });
        if !retry {
            // One attempt, moved into the body: rebind patterns only.
            if !matches!(&original, Pat::Ident(p) if p.mutability.is_none() && p.by_ref.is_none() && p.subpat.is_none() && p.ident == name)
            {
                soften_expects(&mut arg.attrs);
                let remut =
                    ref_mut.then(|| quote_spanned!(span=> #(#cfgs)* let mut #name = #name;));
                before.push(quote_spanned!(span=> #remut #(#binding)* let #original = #name;));
            }
            continue;
        }
        // An argument the body never names needs no copy: none is made (a clone saved), and
        // an unused one warns at the parameter as without the attribute, not at a copy of it
        // (with `#[instrument]` below, which records it, it is used and does not warn).
        if plain && !used.names(&name) {
            continue;
        }
        let copy = format_ident!("__resilience_copy{}", i, span = Span::mixed_site());
        match rebind_kind(&arg.ty) {
            // A plain `x: &T` needs nothing: the body's block captures the reference itself.
            Rebind::Shared if plain => continue,
            Rebind::Shared => {
                soften_expects(&mut arg.attrs);
                let remut =
                    ref_mut.then(|| quote_spanned!(span=> #(#cfgs)* let mut #name = #name;));
                before.push(quote_spanned!(span=> #remut #(#binding)* let #original = #name;));
                continue;
            }
            Rebind::Unique => {
                before.push(quote_spanned!(span=> #(#cfgs)* let #copy = &mut *#name;))
            }
            Rebind::Pin => {
                // `as_mut` takes the parameter by `&mut`: its binding becomes `mut` (the
                // user's own `mut` is on the pattern each attempt binds).
                if let Pat::Ident(p) = &mut *arg.pat {
                    p.mutability.get_or_insert_with(|| ours_mut(&name));
                }
                let krate = krate.at(span);
                before.push(quote_spanned!(span=> #(#cfgs)* let #copy = #krate::__private::Pin::as_mut(&mut #name);));
            }
            Rebind::Owned => {
                let clone = owned_rebind(&copy, &name, &arg.ty, span, krate);
                before.push(quote!(#(#cfgs)* #clone));
            }
        }
        soften_expects(&mut arg.attrs);
        let remut = ref_mut.then(|| quote_spanned!(span=> #(#cfgs)* let mut #copy = #copy;));
        inside.push(quote_spanned!(span=> #remut #(#binding)* let #original = #copy;));
    }
    (before, inside)
}

/// The `mut` of a parameter whose name a statement of ours binds again for the body (each
/// attempt's copy, or the pattern's own `mut`), spanned as ours at the parameter's name. The
/// parameter's pattern (`mut name`) then has a span of ours, as rustc joins a span of the
/// expansion with one of the input (the expansion's wins), so clippy reads the parameter as
/// generated, not as a binding of the user's that each attempt's copy shadows
/// (`shadow_unrelated` at every named owned or `&mut` argument, `shadow_same` at a `mut` one,
/// `shadow_reuse` in an `#[async_trait]` impl; a crate that denies them could not otherwise use
/// the attribute), and rustc's `unused_mut` says nothing of a `mut` of ours. The name itself
/// keeps the user's span, hygiene included: code that another attribute below ours writes with
/// the user's tokens before the attempts (`#[instrument(parent = &span)]`) must find the
/// parameter where the name and that attribute come from different places (a `macro_rules!`
/// that takes the argument's name from its caller, or puts `#[resilient]` on its caller's
/// items): a name re-spanned at the call site resolved there, not where it was written. The
/// copy keeps the user's pattern and span, so rustc still reports an unneeded `mut` or an
/// unused binding there, and its lint levels hold.
fn ours_mut(name: &syn::Ident) -> Token![mut] {
    Token![mut](Span::call_site().located_at(name.span()))
}

/// Whether an attempt reborrows a `&mut` of the caller's (receiver or argument).
fn reborrows_unique(sig: &Signature) -> bool {
    matches!(receiver_kind(sig), ReceiverKind::Unique | ReceiverKind::Pin)
        || sig.inputs.iter().any(|a| {
            matches!(a, FnArg::Typed(t) if matches!(rebind_kind(&t.ty), Rebind::Unique | Rebind::Pin))
        })
}

fn binds_ref_mut(tokens: TokenStream) -> bool {
    let tokens: Vec<proc_macro2::TokenTree> = tokens.into_iter().collect();
    tokens.iter().enumerate().any(|(i, t)| match t {
        proc_macro2::TokenTree::Ident(r) if r == "ref" => {
            matches!(tokens.get(i + 1), Some(proc_macro2::TokenTree::Ident(m)) if m == "mut")
        }
        proc_macro2::TokenTree::Group(g) => binds_ref_mut(g.stream()),
        _ => false,
    })
}

/// A parameter's attributes, for the statements that make it per attempt. (On a parameter,
/// rustc allows `cfg`, `cfg_attr` and lint levels only.)
struct ParamAttrs {
    /// For a statement that copies it: its `cfg`s and `cfg_attr`s (which may hold a `cfg`),
    /// each `expect` in them an `allow` (a copy fulfils no expectation).
    cfgs: Vec<Attribute>,
    /// For the statement that binds its pattern: all of them, as written. Lint levels hold
    /// for the pattern (`unused_mut`), and also for the parameter's own name, which keeps
    /// them, with each `expect` made an `allow` there ([`soften_expects`]): whether an
    /// expectation is fulfilled is for the pattern's binding to say.
    binding: Vec<Attribute>,
}

impl ParamAttrs {
    fn of(attrs: &[Attribute]) -> Self {
        let mut cfgs: Vec<Attribute> = attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
            .cloned()
            .collect();
        soften_expects(&mut cfgs);
        ParamAttrs {
            cfgs,
            binding: attrs.to_vec(),
        }
    }
}

/// Turns every `expect` lint level in `attrs` (also under `cfg_attr`) into an `allow`.
pub(crate) fn soften_expects(attrs: &mut [Attribute]) {
    fn swap(tokens: TokenStream) -> TokenStream {
        use proc_macro2::{Group, TokenTree};
        tokens
            .into_iter()
            .map(|tt| match tt {
                TokenTree::Ident(i) if i == "expect" => {
                    TokenTree::Ident(syn::Ident::new("allow", i.span()))
                }
                TokenTree::Group(g) => {
                    let mut swapped = Group::new(g.delimiter(), swap(g.stream()));
                    swapped.set_span(g.span());
                    TokenTree::Group(swapped)
                }
                other => other,
            })
            .collect()
    }
    for a in attrs {
        if (a.path().is_ident("expect") || a.path().is_ident("cfg_attr"))
            && let Ok(meta) = syn::parse2(swap(a.meta.to_token_stream()))
        {
            a.meta = meta;
        }
    }
}

/// The identifiers a body's tokens name, macros included, and its string literals, where a
/// format string captures an argument by name (`"{id}"`); and whether it calls a macro that
/// could name an argument without its token (`paste!` joining pieces), in which case every
/// argument counts as named. Any macro this crate does not know counts so, not only paste's:
/// seq-macro's `arg~K` makes `arg0` with the prefix's span, and `paste!` reached through a
/// user's forwarding `macro_rules!` or a renamed import (`use paste::paste as join;`) shows
/// neither its name nor the argument's. Narrowed to paste's names (tried, stop 42, found by
/// helper-234), such a body that compiled stopped compiling (moved in a previous attempt),
/// a future with a `Cell` argument was no longer `Send` (borrowed, not copied), and a retry
/// saw what the failed attempt left in a `Cell` argument. An unused argument that is not
/// `Clone` beside such a macro is named `_` (`_: Permit`), which no macro can name.
pub(crate) struct Mentioned {
    idents: std::collections::HashSet<String>,
    literals: Vec<String>,
    opaque: bool,
}

/// Keywords that a `!` can follow without a macro call (`if !(a && b)`).
const NOT_MACROS: &[&str] = &[
    "if", "while", "match", "return", "in", "let", "else", "break", "yield",
];

impl Mentioned {
    fn names(&self, ident: &syn::Ident) -> bool {
        let name = syn::ext::IdentExt::unraw(ident).to_string();
        self.opaque
            || self.idents.contains(&name)
            || self.literals.iter().any(|l| {
                l.match_indices(&name)
                    .any(|(at, _)| at > 0 && l.as_bytes()[at - 1] == b'{')
            })
    }
}

fn mentioned(tokens: TokenStream) -> Mentioned {
    use proc_macro2::TokenTree;
    fn walk(tokens: TokenStream, m: &mut Mentioned) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tt) in tokens.iter().enumerate() {
            match tt {
                TokenTree::Ident(id) => {
                    let name = syn::ext::IdentExt::unraw(id).to_string();
                    let called = matches!(tokens.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!')
                        && matches!(
                            tokens.get(i + 2),
                            Some(TokenTree::Group(_) | TokenTree::Ident(_))
                        );
                    if called
                        && !crate::receiver::names_its_uses(&name)
                        && !NOT_MACROS.contains(&name.as_str())
                    {
                        m.opaque = true;
                    }
                    m.idents.insert(name);
                }
                TokenTree::Group(g) => walk(g.stream(), m),
                TokenTree::Literal(l) => {
                    // The value, escapes and line continuations resolved, as rustc reads it.
                    let text = syn::parse2::<syn::LitStr>(l.to_token_stream())
                        .map_or_else(|_| l.to_string(), |s| s.value());
                    if text.contains('{') {
                        m.literals.push(text);
                    }
                }
                TokenTree::Punct(_) => {}
            }
        }
    }
    let mut m = Mentioned {
        idents: std::collections::HashSet::new(),
        literals: Vec::new(),
        opaque: false,
    };
    walk(tokens, &mut m);
    m
}

/// For an async-trait body: each argument, made per attempt. async-trait leaves a reference
/// argument in the signature as written (a `mut` included) and moves every other one into its
/// block with a `let` (`let mut x = x;`, or `let pat = { let __arg1 = __arg1; __arg1 };` for a
/// pattern or `_`), ahead of `let __ret: R = { body };`. An argument the body never names is
/// not copied, as on the native path: async-trait's `let` for it moves out of the attempts
/// (where it would move the argument into the first) to before the loop, so the call's future
/// still owns it until the call ends (a guard's drop comes when it would without us). A
/// parameter's `#[cfg]` goes onto its statements. A pattern on a reference type is the one
/// argument async-trait leaves as written, in the signature, with no `let`: on a `&mut`, it is
/// given a name of ours and bound per attempt to a reborrow, as on the native path (kept, its
/// `&mut` bindings were the caller's, and a body that moves one, into a `let` or an `async
/// move` block, moved it "in previous iteration of loop"). Returns the statements to make
/// before each attempt, those to run once before the loop, and the names the renamed
/// patterns bind (for [`skip_generated_names`]).
fn param_rebinds(
    sig: &mut Signature,
    stmts: &mut Vec<Stmt>,
    krate: &Krate,
) -> (Vec<TokenStream>, TokenStream, Vec<String>) {
    let used = async_trait_body_mentions(stmts);
    // The body and async-trait's `let`s.
    let anywhere = mentioned(quote!(#(#stmts)*));
    let (mut out, mut held, mut bindings) = (Vec::new(), TokenStream::new(), Vec::new());
    for (i, arg) in sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(arg) = arg else { continue };
        let span = arg.span();
        if !matches!(&*arg.pat, Pat::Ident(_) | Pat::Wild(_))
            && matches!(rebind_kind(&arg.ty), Rebind::Unique)
        {
            bindings.extend(pattern_bindings(&arg.pat));
            let name = format_ident!("__resilience_arg{}", i, span = Span::mixed_site());
            let pat = std::mem::replace(
                &mut *arg.pat,
                Pat::Ident(PatIdent {
                    attrs: Vec::new(),
                    by_ref: None,
                    mutability: None,
                    ident: name.clone(),
                    subpat: None,
                }),
            );
            let ParamAttrs { binding, .. } = ParamAttrs::of(&arg.attrs);
            soften_expects(&mut arg.attrs);
            out.push(quote_spanned!(span=> #(#binding)* let #pat = &mut *#name;));
            continue;
        }
        let Pat::Ident(pat) = &mut *arg.pat else {
            continue;
        };
        let ident = pat.ident.clone();
        let kind = rebind_kind(&arg.ty);
        // Never named: only async-trait's own `let x = x;` moves it (a pattern's `let` binds
        // names of its own, so it is kept and the argument copied).
        if used.as_ref().is_some_and(|u| !u.names(&ident)) {
            if let Some(at) = stmts.iter().position(|s| moves_whole(s, &ident)) {
                stmts.remove(at).to_tokens(&mut held);
                continue;
            }
            // A reference needs nothing, unless async-trait's `let pat = { let __argN =
            // __argN; __argN };` moves it in each attempt: a pattern on a `&mut` whose type
            // async-trait does not read as a reference (a `macro_rules!` fragment, `$t:ty`,
            // or parentheses), reborrowed then as any other `&mut`.
            if !matches!(kind, Rebind::Owned) && !anywhere.names(&ident) {
                continue;
            }
        }
        let ParamAttrs { cfgs, binding } = ParamAttrs::of(&arg.attrs);
        // Only a reference argument still has its `mut` here: it moves onto the copy, with
        // the parameter's lint levels (`#[allow(unused_mut)]`).
        let m = pat.mutability.take();
        if m.is_some() {
            soften_expects(&mut arg.attrs);
        }
        if matches!(kind, Rebind::Shared) && m.is_none() {
            continue;
        }
        // Each attempt's copy binds the parameter's name again: the parameter's own binding
        // is ours, as on the native path ([`ours_mut`]).
        pat.mutability = Some(ours_mut(&ident));
        let param = &ident;
        out.push(match kind {
            Rebind::Shared => quote_spanned!(span=> #(#binding)* let #m #ident = #param;),
            Rebind::Unique => quote_spanned!(span=> #(#binding)* let #m #ident = &mut *#param;),
            Rebind::Pin => {
                let krate = krate.at(span);
                quote_spanned!(span=> #(#binding)* let #m #ident = #krate::__private::Pin::as_mut(&mut #param);)
            }
            Rebind::Owned => {
                // The caller's value moves into a local before the loop, beside those the body
                // never names: left to the `async move` block, it dropped after every local,
                // out of the order the arguments drop in without us (the last first). Under a
                // name of ours: the user's, bound again, is shadowing to clippy.
                let kept = format_ident!("__resilience_kept{}", i, span = Span::mixed_site());
                quote!(#(#cfgs)* let #kept = #param;).to_tokens(&mut held);
                let clone = owned_rebind(&ident, &kept, &arg.ty, span, krate);
                quote!(#(#cfgs)* #clone)
            }
        });
    }
    (out, held, bindings)
}

/// What the user's body in an async-trait block, `let __ret = { … }`, names; `None` in a shape
/// we do not know, where everything counts as named.
fn async_trait_body_mentions(stmts: &[Stmt]) -> Option<Mentioned> {
    stmts.iter().find_map(|s| match s {
        Stmt::Local(l)
            if matches!(&l.pat, Pat::Type(t) if is_ident(&t.pat, "__ret"))
                || is_ident(&l.pat, "__ret") =>
        {
            l.init.as_ref().map(|i| mentioned(i.expr.to_token_stream()))
        }
        _ => None,
    })
}

/// `let [mut] __self = self;`: async-trait moving the receiver into its block.
fn moves_self(stmt: &Stmt) -> bool {
    let Stmt::Local(l) = stmt else { return false };
    matches!(l.init.as_ref().map(|i| &*i.expr), Some(Expr::Path(e)) if e.path.is_ident("self"))
}

fn is_ident(pat: &Pat, name: &str) -> bool {
    matches!(pat, Pat::Ident(p) if p.ident == name)
}

/// `let [mut] x = x;`: async-trait moving the argument `x` into its block, whole.
fn moves_whole(stmt: &Stmt, ident: &syn::Ident) -> bool {
    let Stmt::Local(l) = stmt else { return false };
    matches!(&l.pat, Pat::Ident(p) if p.ident == *ident && p.subpat.is_none())
        && matches!(l.init.as_ref().map(|i| &*i.expr), Some(Expr::Path(e)) if e.path.is_ident(ident))
}

/// `let pat = <Ty as CloneArg>::clone_arg(&name);` spanned at the argument, so a missing
/// `Clone` is reported there. Naming the type makes it the obligation's subject; with an
/// inferred one, rustc would suggest borrowing the argument (`&T` is `Clone`), which is wrong
/// advice here. `impl Trait` cannot be named in an expression, so it is inferred, from a
/// closure that lends the argument (for the same reason).
fn owned_rebind(
    pat: &dyn ToTokens,
    name: &syn::Ident,
    ty: &Type,
    span: Span,
    krate: &Krate,
) -> TokenStream {
    let krate = krate.at(span);
    if mentions_impl_trait(ty) {
        quote_spanned!(span=> let #pat = #krate::__private::clone_arg_from(|| &#name);)
    } else {
        quote_spanned!(span=> let #pat = <#ty as #krate::__private::CloneArg>::clone_arg(&#name);)
    }
}

/// `Pin<&mut …>`: never cloned (it cannot be); reborrowed per attempt (`Pin::as_mut`), as a
/// receiver or an argument, natively or in an async-trait method ([`Rebind::Pin`]). Other pins
/// (`Pin<&Self>`, `Pin<Box<Self>>`) are cloned, as any owned value.
pub(crate) fn is_pin_mut(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(seg) = p.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(a) = &seg.arguments else {
        return false;
    };
    seg.ident == "Pin"
        && matches!(a.args.first(), Some(syn::GenericArgument::Type(t)) if matches!(rebind_kind(t), Rebind::Unique))
}

fn mentions_impl_trait(ty: &Type) -> bool {
    fn scan(ts: TokenStream) -> bool {
        ts.into_iter().any(|t| match t {
            proc_macro2::TokenTree::Ident(i) => i == "impl",
            proc_macro2::TokenTree::Group(g) => scan(g.stream()),
            _ => false,
        })
    }
    scan(ty.to_token_stream())
}

enum ReceiverKind {
    None,
    Shared,
    Unique,
    /// `self: Pin<&mut Self>` (async-trait): reborrowed per attempt, never cloned.
    Pin,
    Owned(Span),
}

fn receiver_kind(sig: &Signature) -> ReceiverKind {
    let Some(r) = sig.receiver() else {
        return ReceiverKind::None;
    };
    match &r.kind {
        syn::ReceiverKind::Reference(_, _, Some(_)) => ReceiverKind::Unique,
        syn::ReceiverKind::Reference(_, _, None) => ReceiverKind::Shared,
        syn::ReceiverKind::Typed(_, ty) if is_pin_mut(ty) => ReceiverKind::Pin,
        syn::ReceiverKind::Typed(_, ty) => match rebind_kind(ty) {
            Rebind::Shared => ReceiverKind::Shared,
            Rebind::Unique => ReceiverKind::Unique,
            Rebind::Pin => ReceiverKind::Pin,
            Rebind::Owned => ReceiverKind::Owned(r.span()),
        },
        _ => ReceiverKind::Owned(r.span()),
    }
}

/// async-trait moves `self` into `__self` at the top of the body; per attempt, that move must
/// become a reborrow (`&mut self`) or a clone (`self: Arc<Self>`).
/// For an owned receiver, the clone is made before the attempt's block, as an owned
/// argument's is, and returned to be put there: made inside it, from `&self`, the block would
/// hold that borrow, and be `Send` only when `Self` is `Sync`.
fn rebind_self_let(stmt: &mut Stmt, receiver: &ReceiverKind, krate: &Krate) -> Option<TokenStream> {
    let Stmt::Local(local) = stmt else {
        return None;
    };
    let init = local.init.as_mut()?;
    let Expr::Path(p) = &*init.expr else {
        return None;
    };
    if !p.path.is_ident("self") {
        return None;
    }
    let self_token = &p.path;
    let mut before = None;
    let new: Expr = match receiver {
        ReceiverKind::Unique => syn::parse_quote!(&mut *#self_token),
        ReceiverKind::Pin => {
            syn::parse_quote!(#krate::__private::Pin::as_mut(&mut #self_token))
        }
        ReceiverKind::Owned(span) => {
            let copy = syn::Ident::new("__resilience_self_copy", Span::mixed_site());
            let krate = krate.at(*span);
            before = Some(quote_spanned! {*span=>
                let #copy = #krate::__private::clone_arg_from(|| &#self_token);
            });
            syn::parse_quote!(#copy)
        }
        ReceiverKind::Shared | ReceiverKind::None => return None,
    };
    *init.expr = new;
    before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(attr: &str, item: &str) -> String {
        let args: Args = syn::parse_str(attr).unwrap();
        let item: MaybeFn = syn::parse_str(item).unwrap();
        match expand(args, item) {
            Ok(t) => t.to_string(),
            Err(e) => format!("ERROR: {e}"),
        }
    }

    #[test]
    fn native_expansion_names_only_the_facade() {
        let out = expand_str(
            r#"provider = "kimi""#,
            "async fn up(&self, p: &Path, mut n: Vec<u8>, (a, b): (u8, u8)) -> Result<u8, E> { Ok(a) }",
        );
        assert!(out.contains("CallSite :: new (\"kimi\" , \"up\")"), "{out}");
        // Cloned before the attempt, moved into its block there.
        assert!(
            out.contains("let __resilience_copy2 = < Vec < u8 > as :: resilience :: __private :: CloneArg > :: clone_arg (& n)"),
            "{out}"
        );
        assert!(
            out.contains(
                "let __resilience_copy3 = < (u8 , u8) as :: resilience :: __private :: CloneArg > :: clone_arg (& __resilience_arg3)"
            ),
            "{out}"
        );
        assert!(
            out.contains("async { if let :: resilience :: __private :: Option :: Some")
                && out.contains(
                    "let mut n = __resilience_copy2 ; let (a , b) = __resilience_copy3 ;"
                ),
            "{out}"
        );
        assert!(
            out.contains(
                "async fn up (& self , p : & Path , mut n : Vec < u8 > , __resilience_arg3 : (u8 , u8))"
            ),
            "{out}"
        );
        for forbidden in [":: tokio", ":: tracing", ":: metrics", ":: core", ":: std"] {
            assert!(!out.contains(forbidden), "{forbidden} in {out}");
        }
    }

    #[test]
    fn with_a_crate_path_the_expansion_names_only_it() {
        for item in [
            "async fn up(&self, n: Vec<u8>, p: Pin<&mut u8>, i: impl AsRef<str>) -> Result<u8, E> { Ok(0) }",
            "async fn up(mut self: Arc<Self>, n: Vec<u8>) -> Result<u8, E> { Ok(0) }",
            "async fn up(self: Pin<&mut Self>) -> Result<u8, E> { Ok(0) }",
            // As async-trait writes a method.
            "fn up<'a>(mut self, n: Vec<u8>, p: Pin<&'a mut u8>) -> Pin<Box<dyn Future<Output = Result<u8, E>> + Send + 'a>> { Box::pin(async move { let mut __self = self; let n = n; let p = p; let __ret: Result<u8, E> = { Ok(0) }; __ret }) }",
        ] {
            let out = expand_str(r#"provider = "kimi", crate = my_sdk::res"#, item);
            // Named once, first in the body; by its alias after.
            assert!(!out.contains("resilience ::"), "{out}");
            assert_eq!(out.matches("my_sdk").count(), 1, "{out}");
            assert!(
                out.contains("{ use my_sdk :: res as __resilience_crate ;"),
                "{out}"
            );
            assert!(
                out.contains("__resilience_crate :: __private :: CallSite :: new"),
                "{out}"
            );
            assert!(
                out.contains("__resilience_crate :: __private :: hooks"),
                "{out}"
            );
        }
    }

    #[test]
    fn an_argument_counts_as_named_unless_surely_not() {
        let id = syn::Ident::new("id", Span::call_site());
        let named = |body: &str| mentioned(body.parse().unwrap()).names(&id);
        assert!(named("Ok (id . len ())"));
        assert!(named(r#"Ok (format ! ("{id:?}"))"#));
        assert!(
            named("Ok (format ! (\"{\\\n id}\"))"),
            "a line continuation"
        );
        assert!(!named("if ! (a && b) { Ok (1) } else { Ok (x != y) }"));
        // `{identity}` counts too: a harmless extra copy.
        assert!(named(
            r#"Ok (format ! ("{identity}") . len () + vec ! [1] . len ())"#
        ));
        assert!(!named(
            r#"Ok (format ! ("{other}") . len () + vec ! [1] . len ())"#
        ));
        // A macro that may build the name from pieces: every argument counts as named.
        assert!(named("let c = paste :: paste ! { & [< i d >] } ; Ok (1)"));
        assert!(named("macro_rules ! m { () => { 1 } } Ok (m ! ())"));
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(
            expand_str(
                r#"provider = "k""#,
                "const fn f() -> Result<u8, E> { Ok(1) }"
            )
            .contains("const fn")
        );
        assert!(
            expand_str(r#"provider = "k""#, "fn f() -> Result<u8, E> { Ok(1) }")
                .contains("needs an `async fn`")
        );
        assert!(
            expand_str(r#"provider = "k""#, "async fn f(&self) -> Result<u8, E>;")
                .contains("annotate the method in the `impl`")
        );
        assert!(
            expand_str(r#"provider = "k""#, "async fn f() { }").contains("must return `Result")
        );
        assert!(
            expand_str(r#"provider = "k""#, "async fn f() -> (u8, E) { todo!() }")
                .contains("must return `Result")
        );
    }

    /// A pattern argument's generated name goes into a `#[tracing::instrument]`'s `skip`
    /// below ours, whatever the attribute's shape; no other attribute is touched.
    #[test]
    fn instrument_below_skips_the_generated_names() {
        let item = |attr: &str| {
            format!(
                "{attr} async fn up(&self, n: &str, (a, _): (u8, u8), Creds {{ user, .. }}: Creds) -> Result<u8, E> {{ Ok(a) }}"
            )
        };
        for (attr, expected) in [
            (
                "#[instrument]",
                "# [instrument (skip (__resilience_arg2 , __resilience_arg3))]",
            ),
            (
                "#[tracing::instrument(skip(self, n))]",
                "# [tracing :: instrument (skip (self , n , __resilience_arg2 , __resilience_arg3))]",
            ),
            (
                "#[tracing::instrument(skip(self,),)]",
                "# [tracing :: instrument (skip (self , __resilience_arg2 , __resilience_arg3) ,)]",
            ),
            (
                "#[::tracing::instrument(level = \"info\", fields(skip = 1))]",
                "# [:: tracing :: instrument (level = \"info\" , fields (skip = 1) , skip (__resilience_arg2 , __resilience_arg3))]",
            ),
            (
                "#[instrument(level = \"info\",)]",
                "# [instrument (level = \"info\" , skip (__resilience_arg2 , __resilience_arg3))]",
            ),
            (
                "#[tracing::instrument(skip_all, err)]",
                "# [tracing :: instrument (skip_all , err)]",
            ),
            ("#[other::instrument(x)]", "# [other :: instrument (x)]"),
            (
                "#[cfg_attr(feature = \"t\", tracing::instrument(skip(n)), allow(unused))]",
                "# [cfg_attr (feature = \"t\" , tracing :: instrument (skip (n , __resilience_arg2 , __resilience_arg3)) , allow (unused))]",
            ),
        ] {
            let out = expand_str(r#"provider = "kimi""#, &item(attr));
            assert!(out.contains(expected), "{attr}: {out}");
        }
        // No pattern argument, nothing to add.
        let out = expand_str(
            r#"provider = "kimi""#,
            "#[instrument(skip(n))] async fn up(n: &str) -> Result<u8, E> { Ok(1) }",
        );
        assert!(out.contains("# [instrument (skip (n))]"), "{out}");
    }

    /// Review: a name the `skip` lists already is not listed again (tracing refuses a name
    /// skipped twice: code that compiled stopped), and outside an `#[async_trait]` impl an
    /// argument called `__arg1` is the user's own, recorded as before.
    /// A pattern of one name gives the parameter that name (rustdoc shows `x`, as without
    /// us), hygienic as ours are, and `#[instrument]` below still skips it, as it skipped the
    /// name of ours before. A raw name is kept raw (made anew from its text, it panicked).
    #[test]
    fn a_pattern_of_one_name_names_its_parameter() {
        for retry in ["", ", retry = false"] {
            let out = expand_str(
                &format!(r#"provider = "kimi"{retry}"#),
                "#[instrument] async fn up(ref x: u8, ref mut r#type: u8, y @ 0..=9: u8, (a, _): (u8, u8)) -> Result<u8, E> { Ok(*x + *r#type + y + a) }",
            );
            assert!(
                out.contains(
                    "async fn up (x : u8 , r#type : u8 , y : u8 , __resilience_arg3 : (u8 , u8))"
                ),
                "{out}"
            );
            assert!(
                out.contains("# [instrument (skip (x , r#type , y , __resilience_arg3))]"),
                "{out}"
            );
        }
        let out = expand_str(
            r#"provider = "kimi""#,
            "#[instrument(skip(x))] async fn up(ref x: u8) -> Result<u8, E> { Ok(*x) }",
        );
        assert!(out.contains("# [instrument (skip (x))]"), "{out}");
    }

    #[test]
    fn instrument_below_skips_a_name_once() {
        let out = expand_str(
            r#"provider = "kimi""#,
            "#[instrument(skip(__resilience_arg0))] async fn up((a, _): (u8, u8)) -> Result<u8, E> { Ok(a) }",
        );
        assert!(
            out.contains("# [instrument (skip (__resilience_arg0))]"),
            "{out}"
        );
        let out = expand_str(
            r#"provider = "kimi""#,
            "#[instrument] async fn up(__arg1: u8, __arg2: u8) -> Result<u8, E> { Ok(__arg1) }",
        );
        assert!(out.contains("# [instrument]"), "{out}");
    }

    /// Review: a `skip` that names a pattern's binding, as tracing allows without us, loses
    /// it (tracing refuses a name that is no parameter) and gets the pattern's own name.
    #[test]
    fn instrument_below_drops_a_skipped_binding_of_a_renamed_pattern() {
        for (attr, expected) in [
            // `ref r` names its parameter `r` (see `a_pattern_of_one_name_names_its_parameter`),
            // so a `skip(r)` names a parameter still.
            (
                "#[instrument(skip(key))]",
                "# [instrument (skip (__resilience_arg1 , r))]",
            ),
            (
                "#[tracing::instrument(skip(key, self, tenant), err)]",
                "# [tracing :: instrument (skip (self , __resilience_arg1 , r) , err)]",
            ),
            (
                "#[cfg_attr(all(), instrument(skip(r, self)))]",
                "# [cfg_attr (all () , instrument (skip (r , self , __resilience_arg1)))]",
            ),
        ] {
            let item = format!(
                "{attr} async fn up(&self, (tenant, key): (u8, u8), ref r: String) -> Result<u8, E> {{ Ok(tenant + key + r.len() as u8) }}"
            );
            for retry in ["", ", retry = false"] {
                let out = expand_str(&format!(r#"provider = "kimi"{retry}"#), &item);
                assert!(out.contains(expected), "{attr}{retry}: {out}");
            }
        }
        // A binding named as a parameter that is still there (a pattern and a plain argument
        // from different macro contexts, as rustc allows) stays skipped: tracing matches a
        // `skip` by name, and without us it skips that parameter.
        let out = expand_str(
            r#"provider = "kimi""#,
            "#[instrument(skip(key))] async fn up((tenant, key): (u8, u8), key: &str) -> Result<u8, E> { Ok(tenant) }",
        );
        assert!(
            out.contains("# [instrument (skip (key , __resilience_arg0))]"),
            "{out}"
        );
        // A plain argument keeps its place in the `skip`.
        let out = expand_str(
            r#"provider = "kimi""#,
            "#[instrument(skip(key))] async fn up(key: &str, (a, _): (u8, u8)) -> Result<u8, E> { Ok(a) }",
        );
        assert!(
            out.contains("# [instrument (skip (key , __resilience_arg1))]"),
            "{out}"
        );
    }

    #[test]
    fn unparsable_body_is_kept() {
        let out = expand_str(
            r#"provider = "k""#,
            "async fn f() -> Result<u8, E> { let x = ; }",
        );
        assert!(!out.contains("__RESILIENCE_SITE"), "{out}");
    }
}
