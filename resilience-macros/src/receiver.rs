//! `self` in a native method's body, per attempt.
//!
//! Every attempt runs the body again, inside the retry loop, so a body that moves `self` (into
//! an `async move` block, a `move` closure, or the `async move` that `#[tracing::instrument]`
//! wraps around it) moved it "in a previous iteration of the loop". Rust has no `let self`, so,
//! as async-trait does, `self` in the body is renamed to a binding made for each attempt: a
//! reborrow of `&mut self`, or a fresh clone of a `mut self` taken by value (whose changes must
//! not leak into the next attempt, as an owned argument's do not). The renaming visitor follows
//! async-trait's `ReplaceSelf` (MIT OR Apache-2.0), heuristics for macros included.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Item, Macro, Path, Signature, Stmt};

use crate::expand::{Rebind, rebind_kind};

/// The name `self` becomes in the body. Spanned at the call site, as the user's own tokens
/// are, so the renamed uses resolve to it.
const NAME: &str = "__resilience_self";

/// For a receiver that needs it, renames `self` in `stmts` and returns the statement to run
/// before each attempt (outside the attempt's `async` block) and the one that opens the block
/// (moving that attempt's `self` in, so the block owns it and is `Send` when it is).
pub(crate) fn rebind(
    sig: &mut Signature,
    stmts: &mut [Stmt],
) -> Option<(TokenStream, TokenStream)> {
    let r = sig.receiver()?;
    let this = &r.self_token;
    let span = r.span();
    let copy = Ident::new("__resilience_self_copy", Span::mixed_site());
    let name = Ident::new(NAME, Span::call_site());
    let unique = (
        quote_spanned!(span=> let #copy = &mut *#this;),
        quote!(let #name = #copy;),
    );
    let binds = match &r.kind {
        syn::ReceiverKind::Reference(_, _, Some(_)) => unique,
        syn::ReceiverKind::Typed(_, ty) if matches!(rebind_kind(ty), Rebind::Unique) => unique,
        // `&self`, `self: &Arc<Self>`: shared, so any number of attempts may use it.
        syn::ReceiverKind::Reference(..) | syn::ReceiverKind::Typed(..) => return None,
        // `self` by value and not `mut`: the body cannot change it, and a clone per attempt
        // would cost every call (an `Arc`'s count is a shared write); a body that moves it is
        // told so by rustc, as the README says.
        _ if r.mutability.is_none() => return None,
        _ => (
            quote_spanned!(span=> let #copy = ::resilience::__private::clone_arg_from(|| &#this);),
            quote!(let mut #name = #copy;),
        ),
    };
    // The per-attempt copy is the one changed: a `mut` left on `self` would be unused (a
    // warning at the user's code), and dropping it does not change the signature's type.
    if let Some(syn::FnArg::Receiver(r)) = sig.inputs.first_mut() {
        r.mutability = None;
    }
    let mut visitor = ReplaceSelf;
    for stmt in stmts {
        visitor.visit_stmt_mut(stmt);
    }
    Some(binds)
}

struct ReplaceSelf;

fn rename(ident: &mut Ident) {
    if ident == "self" {
        *ident = Ident::new(NAME, ident.span());
    }
}

/// A macro whose input holds `fn` likely defines a `self` of its own.
fn contains_fn(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => ident == "fn",
        TokenTree::Group(group) => contains_fn(group.stream()),
        _ => false,
    })
}

/// Renames `self` in a macro's tokens, but not the path root `self::` (async-trait renames that
/// too, which breaks `println!("{}", self::helper())`).
fn rename_in_tokens(tokens: TokenStream) -> TokenStream {
    let mut out: Vec<TokenTree> = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(tt) = tokens.next() {
        out.push(match tt {
            TokenTree::Ident(mut ident) => {
                let path_root = matches!(tokens.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Joint);
                if !path_root {
                    rename(&mut ident);
                }
                TokenTree::Ident(ident)
            }
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), rename_in_tokens(group.stream()));
                new.set_span(group.span());
                TokenTree::Group(new)
            }
            other => other,
        });
    }
    out.into_iter().collect()
}

impl VisitMut for ReplaceSelf {
    fn visit_ident_mut(&mut self, i: &mut Ident) {
        rename(i);
    }

    fn visit_path_mut(&mut self, p: &mut Path) {
        // `self`, but not `self::function`.
        if p.segments.len() == 1 {
            self.visit_ident_mut(&mut p.segments[0].ident);
        }
        for segment in &mut p.segments {
            self.visit_path_arguments_mut(&mut segment.arguments);
        }
    }

    fn visit_item_mut(&mut self, i: &mut Item) {
        // A nested item has its own `self`; but a local `macro_rules!` may use ours, and
        // `select!`-like macros look like items while being expressions.
        if let Item::Macro(i) = i
            && (i.mac.path.is_ident("macro_rules")
                || i.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "select"))
        {
            self.visit_macro_mut(&mut i.mac);
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        if !contains_fn(mac.tokens.clone()) {
            mac.tokens = rename_in_tokens(std::mem::take(&mut mac.tokens));
        }
    }
}
