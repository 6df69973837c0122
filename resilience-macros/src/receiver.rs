//! `self` in a native method's body, per attempt.
//!
//! Every attempt runs the body again, inside the retry loop, so a body that moves `self` (into
//! an `async move` block, a `move` closure, or the `async move` that `#[tracing::instrument]`
//! wraps around it) moved it "in a previous iteration of the loop". Rust has no `let self`, so,
//! as async-trait does, `self` in the body is renamed to a binding made for each attempt: a
//! reborrow of `&mut self`, or a fresh clone of a `mut self` taken by value (whose changes must
//! not leak into the next attempt, as an owned argument's do not). The receiver itself is moved
//! into a hidden binding before the loop, so a use of `self` the renaming missed is a compile
//! error ("use of moved value"), never a silent read of the caller's value. The renaming
//! visitor follows async-trait's `ReplaceSelf` (MIT OR Apache-2.0), with three refinements for
//! macros: `self::path`, a field named `self` (`self = …`, tracing's `?self`) and `{self}` in a
//! format string.

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Item, Macro, Path, Signature, Stmt};

use crate::expand::{Rebind, rebind_kind};

/// The name `self` becomes in the body.
const NAME: &str = "__resilience_self";

/// The statements that make each attempt's `self`.
pub(crate) struct SelfBinds {
    /// Before the loop: the receiver moves into a hidden binding.
    pub(crate) prelude: TokenStream,
    /// Before each attempt: its reborrow or clone, under a hidden name.
    pub(crate) before: TokenStream,
    /// Opening the attempt's `async` block: moved in as the renamed `self`, so the block owns
    /// it and is `Send` when it is.
    pub(crate) inside: TokenStream,
}

/// For a receiver that needs it, renames `self` in `stmts` and returns the statements that
/// bind it per attempt.
pub(crate) fn rebind(sig: &mut Signature, stmts: &mut [Stmt]) -> Option<SelfBinds> {
    let r = sig.receiver()?;
    let this = r.self_token;
    let span = r.span();
    let held = Ident::new("__resilience_receiver", Span::mixed_site());
    let copy = Ident::new("__resilience_self_copy", Span::mixed_site());
    // Spanned as the receiver's `self`, as the body's uses are (also when a `macro_rules!`
    // wrote the method), so they resolve to it, and rustc's notes point at the receiver.
    let name = Ident::new(NAME, this.span);
    let is_pin = |ty: &syn::Type| matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Pin"));
    let (before, inside) = match &r.kind {
        syn::ReceiverKind::Reference(_, _, Some(_)) => reborrow(&held, &copy, &name, span),
        syn::ReceiverKind::Typed(_, ty) if matches!(rebind_kind(ty), Rebind::Unique) => {
            reborrow(&held, &copy, &name, span)
        }
        // `&self`, `self: &Arc<Self>`: shared, so any number of attempts may use it.
        syn::ReceiverKind::Reference(..) => return None,
        syn::ReceiverKind::Typed(_, ty) if matches!(rebind_kind(ty), Rebind::Shared) => {
            return None;
        }
        // Taken by value and not `mut`: the body cannot change it, and a clone per attempt
        // would cost every call (an `Arc`'s count is a shared write); a body that moves it is
        // told so by rustc, as the README says. A `Pin<&mut Self>` cannot be cloned.
        _ if r.mutability.is_none() => return None,
        syn::ReceiverKind::Typed(_, ty) if is_pin(ty) => return None,
        _ => {
            // `mut` spanned as the user's, so an unneeded one is still reported there.
            let m = r.mutability.map(|m| quote_spanned!(m.span=> mut));
            (
                quote_spanned!(span=> let #copy = ::resilience::__private::clone_arg_from(|| &#held);),
                quote!(let #m #name = #copy;),
            )
        }
    };
    let prelude = quote_spanned!(span=> let #held = #this;);
    // The per-attempt copy is the one changed, and dropping `mut` does not change the
    // signature's type.
    if let Some(syn::FnArg::Receiver(r)) = sig.inputs.first_mut() {
        r.mutability = None;
    }
    let mut visitor = ReplaceSelf;
    for stmt in stmts {
        visitor.visit_stmt_mut(stmt);
    }
    Some(SelfBinds {
        prelude,
        before,
        inside,
    })
}

fn reborrow(held: &Ident, copy: &Ident, name: &Ident, span: Span) -> (TokenStream, TokenStream) {
    (
        quote_spanned!(span=> let #copy = &mut *#held;),
        quote!(let #name = #copy;),
    )
}

struct ReplaceSelf;

fn rename(ident: &mut Ident) {
    if ident == "self" {
        *ident = Ident::new(NAME, ident.span());
    }
}

/// A macro that defines a method (`fn name(&self …`) has a `self` of its own.
fn defines_method(tokens: TokenStream) -> bool {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    tokens.iter().enumerate().any(|(i, tt)| match tt {
        TokenTree::Ident(f) if f == "fn" => tokens[i + 1..].iter().take(8).any(|t| {
            matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis
                && g.stream().into_iter().take(4).any(|t| matches!(t, TokenTree::Ident(s) if s == "self")))
        }),
        TokenTree::Group(g) => defines_method(g.stream()),
        _ => false,
    })
}

fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
    matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// Macros whose top-level string literals are format strings (std's, tracing's, log's,
/// anyhow's and eyre's): only there is `{self}` in a literal a captured argument. Elsewhere
/// (`json!({"a": "{self}"})`) a literal is data and stays as written; a format string in a
/// macro not listed here that captures `{self}` is a compile error (the receiver was moved),
/// not a silent change.
const FORMAT_MACROS: &[&str] = &[
    "format",
    "format_args",
    "print",
    "println",
    "eprint",
    "eprintln",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "todo",
    "unimplemented",
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "event",
    "span",
    "trace_span",
    "debug_span",
    "info_span",
    "warn_span",
    "error_span",
    "log",
    "anyhow",
    "bail",
    "ensure",
    "eyre",
    "format_err",
];

fn is_format_macro(path: &Path) -> bool {
    path.segments
        .last()
        .is_some_and(|s| FORMAT_MACROS.iter().any(|m| s.ident == m))
}

/// Renames `self` in a macro's tokens, except where it is not the receiver: the path root
/// `self::`, and a field key (`self = …`, as `#[instrument]` writes its span's fields). A
/// field written `?self` or `%self` (tracing's shorthand) becomes `self = ?<renamed>`, so its
/// name stays `self`. In a format macro's own arguments (`formats`), `{self}` and `{self:…}` in
/// a string literal are renamed too; a nested `name!(…)` is judged by its own name.
fn rename_in_tokens(tokens: TokenStream, formats: bool) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out: Vec<TokenTree> = Vec::with_capacity(tokens.len());
    for (i, tt) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1);
        match tt {
            TokenTree::Ident(ident) if ident == "self" => {
                let path_root = matches!(next, Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint);
                let key = matches!(next, Some(TokenTree::Punct(p)) if p.as_char() == '=' && p.spacing() == Spacing::Alone);
                if path_root || key {
                    out.push(tt.clone());
                    continue;
                }
                let mut renamed = ident.clone();
                rename(&mut renamed);
                // `?self` / `%self` as a whole argument: a field shorthand.
                let n = out.len();
                let sigil = n >= 1
                    && (is_punct(out.last(), '?') || is_punct(out.last(), '%'))
                    && (n == 1 || is_punct(out.get(n - 2), ','))
                    && (next.is_none() || is_punct(next, ','));
                if sigil {
                    let s = out.pop();
                    out.push(tt.clone());
                    out.push(TokenTree::Punct(Punct::new('=', Spacing::Alone)));
                    out.extend(s);
                }
                out.push(TokenTree::Ident(renamed));
            }
            TokenTree::Group(group) => {
                // `name ! (…)`: a macro call, whose literals are format strings if it formats.
                let called = match (
                    i.checked_sub(2).map(|j| &tokens[j]),
                    i.checked_sub(1).map(|j| &tokens[j]),
                ) {
                    (Some(TokenTree::Ident(name)), Some(TokenTree::Punct(bang)))
                        if bang.as_char() == '!' =>
                    {
                        Some(FORMAT_MACROS.iter().any(|m| name == m))
                    }
                    _ => None,
                };
                let inner = rename_in_tokens(group.stream(), called.unwrap_or(false));
                let mut new = Group::new(group.delimiter(), inner);
                new.set_span(group.span());
                out.push(TokenTree::Group(new));
            }
            TokenTree::Literal(lit) if formats => {
                out.push(TokenTree::Literal(rename_in_format(lit)))
            }
            other => out.push(other.clone()),
        }
    }
    out.into_iter().collect()
}

/// `{self}` / `{self:…}` in a string literal, outside `{{` escapes, renamed; anything else as
/// it was.
fn rename_in_format(lit: &Literal) -> Literal {
    let Ok(s) = syn::parse2::<syn::LitStr>(lit.to_token_stream()) else {
        return lit.clone();
    };
    let text = s.value();
    if !text.contains("{self") {
        return lit.clone();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text.as_str();
    let mut changed = false;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with("{{") {
            out.push_str("{{");
            rest = &rest[2..];
        } else if rest.starts_with("{self}") || rest.starts_with("{self:") {
            out.push('{');
            out.push_str(NAME);
            rest = &rest["{self".len()..];
            changed = true;
        } else {
            out.push('{');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    if !changed {
        return lit.clone();
    }
    let mut new = Literal::string(&out);
    new.set_span(lit.span());
    new
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
        if !defines_method(mac.tokens.clone()) {
            let formats = is_format_macro(&mac.path);
            mac.tokens = rename_in_tokens(std::mem::take(&mut mac.tokens), formats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(tokens: &str) -> String {
        rename_in_tokens(tokens.parse().unwrap(), true).to_string()
    }

    #[test]
    fn macro_tokens_rename_the_receiver_only() {
        assert_eq!(
            renamed("self . n , self :: helper ()"),
            "__resilience_self . n , self :: helper ()"
        );
        // tracing: a field keeps its name `self`, its value is this attempt's.
        assert_eq!(
            renamed("? self , \"hi\""),
            "self = ? __resilience_self , \"hi\""
        );
        assert_eq!(
            renamed("x = 1 , % self"),
            "x = 1 , self = % __resilience_self"
        );
        assert_eq!(
            renamed("self = debug (& self)"),
            "self = debug (& __resilience_self)"
        );
        assert_eq!(renamed("me = ? self"), "me = ? __resilience_self");
        assert_eq!(
            renamed("a % self , self == b"),
            "a % __resilience_self , __resilience_self == b"
        );
        // Format strings: captured `{self}` and `{self:…}`, not `{{self}}`.
        assert_eq!(
            renamed(r#""{self} {self:?} {{self}} {selfish}""#),
            r#""{__resilience_self} {__resilience_self:?} {{self}} {selfish}""#
        );
        assert_eq!(renamed(r#""{{self}}""#), r#""{{self}}""#);
        // Data, not a format string: outside a format macro, and a nested call's literals
        // judged by its own name.
        let data = r#"{ "a" : "{self}" , "b" : self . n }"#;
        assert_eq!(
            rename_in_tokens(data.parse().unwrap(), false).to_string(),
            r#"{ "a" : "{self}" , "b" : __resilience_self . n }"#
        );
        assert_eq!(
            rename_in_tokens(
                r#"vec ! [format ! ("{self}") , json ! ("{self}")]"#
                    .parse()
                    .unwrap(),
                false
            )
            .to_string(),
            r#"vec ! [format ! ("{__resilience_self}") , json ! ("{self}")]"#
        );
    }

    #[test]
    fn a_macro_defining_a_method_keeps_its_own_self() {
        assert!(defines_method(
            "impl X { fn f (& self) { } }".parse().unwrap()
        ));
        assert!(!defines_method(
            "(self . n , helper as fn (u32) -> u32)".parse().unwrap()
        ));
    }
}
