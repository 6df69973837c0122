//! `self` in a native method's body, per attempt.
//!
//! Every attempt runs the body again, inside the retry loop, so a body that moves `self` (into
//! an `async move` block, a `move` closure, or the `async move` that `#[tracing::instrument]`
//! wraps around it) moved it "in a previous iteration of the loop". Rust has no `let self`, so,
//! as async-trait does, `self` in the body is renamed to a binding made for each attempt: a
//! reborrow of `&mut self`, or a fresh clone of a `mut self` taken by value (whose changes must
//! not leak into the next attempt, as an owned argument's do not). The receiver itself is moved
//! into a hidden binding before the loop (or, when it is cloned per attempt, held there by a
//! unique borrow, so that it still drops after the arguments), so a use of `self` the renaming
//! missed is a compile error ("use of moved value", or a borrow conflict), never a silent read
//! of the caller's value. The renaming
//! visitor follows async-trait's `ReplaceSelf` (MIT OR Apache-2.0); inside macros, which are
//! only tokens, it reads a macro by its name (`Kind`), so that data stays data: `self::` paths,
//! `quote!`/`stringify!` tokens, tracing's field names and every literal but a format string are
//! kept as written.

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Item, Macro, Path, Signature, Stmt, Token};

use crate::args::Krate;
use crate::expand::{Rebind, rebind_kind, soften_expects};

/// The name `self` becomes in the body. Without a leading underscore: rustc does not report
/// an unneeded `mut` on a binding whose name starts with one, and the user's `mut self` is
/// carried by this binding.
const NAME: &str = "resilience_self";

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
pub(crate) fn rebind(sig: &mut Signature, stmts: &mut [Stmt], krate: &Krate) -> Option<SelfBinds> {
    let r = sig.receiver()?;
    let this = r.self_token;
    let span = r.span();
    let krate = krate.at(span);
    let held = Ident::new("__resilience_receiver", Span::mixed_site());
    let copy = Ident::new("__resilience_self_copy", Span::mixed_site());
    // Spanned as the receiver's `self`, as the body's uses are (also when a `macro_rules!`
    // wrote the method), so they resolve to it, and rustc's notes point at the receiver.
    let name = Ident::new(NAME, this.span);
    let mut held_mut = None;
    // A receiver cloned per attempt stays where it is, held by a unique borrow instead of
    // moved: moved into a local of ours, it dropped before the arguments (the locals of the
    // body the arguments are moved into drop first), where without the attribute the first
    // parameter drops last. The borrow still makes a use of `self` the renaming missed a
    // compile error.
    let mut lent = false;
    let (before, inside) = match &r.kind {
        syn::ReceiverKind::Reference(_, _, Some(_)) => reborrow(&held, &copy, &name, span),
        syn::ReceiverKind::Typed(_, ty) if matches!(rebind_kind(ty), Rebind::Unique) => {
            reborrow(&held, &copy, &name, span)
        }
        // `self: Pin<&mut Self>`: each attempt gets a pin of its own (`Pin::as_mut`), which
        // its body may consume (`get_mut`, pin-project's `project`); used as it is, the first
        // attempt's body moved it. Moved into the attempt's block, so the future holds a
        // `&mut` (`Send` when `Self` is), not a `&` (`Sync` needed).
        syn::ReceiverKind::Typed(_, ty) if matches!(rebind_kind(ty), Rebind::Pin) => {
            held_mut = Some(quote!(mut));
            let m = r.mutability.map(|m| quote_spanned!(m.span=> mut));
            let attrs = &r.attrs;
            (
                quote_spanned!(span=> let #copy = #krate::__private::Pin::as_mut(&mut #held);),
                quote!(#(#attrs)* let #m #name = #copy; let _ = &#name;),
            )
        }
        // `&self`, `self: &Arc<Self>`: shared, so any number of attempts may use it.
        syn::ReceiverKind::Reference(..) => return None,
        syn::ReceiverKind::Typed(_, ty) if matches!(rebind_kind(ty), Rebind::Shared) => {
            return None;
        }
        // `self: Arc<Self>` (or `Rc`, pinned or not): a body may move it, into a spawned
        // task or a method that takes the `Arc` (the reason to take one), so each attempt
        // gets its own, as an owned argument does: a count's increment and decrement, what a
        // clone in the body would cost.
        syn::ReceiverKind::Typed(_, ty) if is_counted(ty) => {
            lent = true;
            clone_per_attempt(r, &held, &copy, &name, span, &krate)
        }
        // Any other `self` taken by value and not `mut`: the body cannot change it, and a
        // clone per attempt would need `Self: Clone`, which it may not be; a body that moves
        // it is told so by rustc, as the README says.
        _ if r.mutability.is_none() => return None,
        _ => {
            lent = true;
            clone_per_attempt(r, &held, &copy, &name, span, &krate)
        }
    };
    let prelude = if lent {
        quote_spanned!(span=> let #held = &mut #this;)
    } else {
        quote_spanned!(span=> let #held_mut #held = #this;)
    };
    // The per-attempt copy is the one changed, and dropping `mut` does not change the
    // signature's type.
    // Its `expect`s are fulfilled (or not) where the copy is bound; on the receiver, which
    // keeps its attributes, one would be reported unfulfilled.
    if let Some(syn::FnArg::Receiver(r)) = sig.inputs.first_mut() {
        // A lent receiver's `mut` is the expansion's (see `expand::ours_mut`): the user's own
        // is on the copy, where `unused_mut` reports one that is not needed.
        r.mutability = lent.then(|| Token![mut](Span::call_site().located_at(this.span)));
        soften_expects(&mut r.attrs);
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

fn clone_per_attempt(
    r: &syn::Receiver,
    held: &Ident,
    copy: &Ident,
    name: &Ident,
    span: Span,
    krate: &TokenStream,
) -> (TokenStream, TokenStream) {
    // `mut` spanned as the user's, so an unneeded one is still reported there.
    let m = r.mutability.map(|m| quote_spanned!(m.span=> mut));
    // The receiver's lint levels go with its `mut` (`#[allow(unused_mut)] mut self`), as an
    // argument's go with its pattern.
    let attrs = &r.attrs;
    (
        quote_spanned!(span=> let #copy = #krate::__private::clone_arg_from(|| &*#held);),
        // Used once by us, as `self` is never reported unused (not an `allow`, which a
        // crate's `forbid(unused)` refuses); `unused_mut` is left to report an unneeded
        // `mut self` at the user's `mut`.
        quote!(#(#attrs)* let #m #name = #copy; let _ = &#name;),
    )
}

/// `Arc<Self>`, `Rc<Self>`, or either pinned, by the last segment of its path: types whose
/// clone is a count, whatever `Self` is.
fn is_counted(ty: &syn::Type) -> bool {
    let syn::Type::Path(p) = ty else {
        return matches!(ty, syn::Type::Group(g) if is_counted(&g.elem))
            || matches!(ty, syn::Type::Paren(g) if is_counted(&g.elem));
    };
    let Some(seg) = p.path.segments.last() else {
        return false;
    };
    if seg.ident == "Arc" || seg.ident == "Rc" {
        return true;
    }
    let syn::PathArguments::AngleBracketed(a) = &seg.arguments else {
        return false;
    };
    seg.ident == "Pin"
        && matches!(a.args.first(), Some(syn::GenericArgument::Type(t)) if is_counted(t))
}

fn reborrow(held: &Ident, copy: &Ident, name: &Ident, span: Span) -> (TokenStream, TokenStream) {
    (
        quote_spanned!(span=> let #copy = &mut *#held;),
        quote!(let #name = #copy; let _ = &#name;),
    )
}

struct ReplaceSelf;

fn rename(ident: &mut Ident) {
    if ident == "self" {
        *ident = Ident::new(NAME, ident.span());
    }
}

/// A macro that defines a method (`fn name<…>(&self …`) has a `self` of its own.
fn defines_method(tokens: TokenStream) -> bool {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    tokens.iter().enumerate().any(|(i, tt)| match tt {
        // A `fn(&S) -> u32` pointer type defines nothing (taken for a method, it kept `self`
        // from being renamed in the whole macro). Anything else may name one: an identifier,
        // a `macro_rules!` fragment (`fn $name(&self)`), a pasted one (`fn [<get_ $f>]`).
        TokenTree::Ident(f)
            if f == "fn"
                && !matches!(tokens.get(i + 1),
                    Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis) =>
        {
            // Past the name and a balanced `<…>`, the first group is the parameter list.
            let mut depth = 0i32;
            let params = (i + 2..tokens.len()).find_map(|j| match &tokens[j] {
                TokenTree::Punct(p) if p.as_char() == '<' => {
                    depth += 1;
                    None
                }
                // The `>` of a `->` (in a bound, `F: Fn() -> u32`) closes nothing.
                TokenTree::Punct(p) if p.as_char() == '>' && !is_punct(tokens.get(j - 1), '-') => {
                    depth -= 1;
                    None
                }
                TokenTree::Group(g) if depth <= 0 && g.delimiter() == Delimiter::Parenthesis => {
                    Some(g.stream())
                }
                _ => None,
            });
            // `& 'a mut self` is five tokens, the longest receiver before its `self`.
            params.is_some_and(|p| {
                p.into_iter()
                    .take(6)
                    .any(|t| matches!(t, TokenTree::Ident(s) if s == "self"))
            })
        }
        TokenTree::Group(g) => defines_method(g.stream()),
        _ => false,
    })
}

fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
    matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// How a macro's tokens are read, by its name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any macro: `self` renamed wherever it is not a path root (`self::`); literals kept.
    Plain,
    /// Tokens that are never evaluated (`quote!`, `stringify!`): kept as written.
    Opaque,
    /// std's and anyhow's formatting macros: the format string is argument `n`, where `{self}`
    /// and `{self:…}` are renamed; every other literal is data and kept.
    Format(usize),
    /// tracing's events: fields keep their names (`?self`, `self.n`, `self = …`), and the
    /// message, the first literal argument, is a format string.
    Event,
    /// tracing's spans: fields as for events; the first literal argument is the span's name.
    Span,
}

fn kind_of(name: &str) -> Kind {
    match name {
        "quote" | "quote_spanned" | "stringify" | "concat" => Kind::Opaque,
        "format" | "format_args" | "print" | "println" | "eprint" | "eprintln" | "panic"
        | "unreachable" | "todo" | "unimplemented" | "anyhow" | "bail" | "eyre" | "format_err"
        | "format_ident" => Kind::Format(0),
        "write" | "writeln" | "assert" | "debug_assert" | "ensure" => Kind::Format(1),
        "assert_eq" | "assert_ne" | "debug_assert_eq" | "debug_assert_ne" => Kind::Format(2),
        "trace" | "debug" | "info" | "warn" | "error" | "event" => Kind::Event,
        "span" | "trace_span" | "debug_span" | "info_span" | "warn_span" | "error_span" => {
            Kind::Span
        }
        _ => Kind::Plain,
    }
}

/// Whether a macro of this name names what it uses as tokens: every macro [`kind_of`] knows,
/// and the other common ones of std, tokio and serde_json. Any other (`paste!`, a user's) may
/// build an identifier from pieces (see `expand::mentioned`).
pub(crate) fn names_its_uses(name: &str) -> bool {
    kind_of(name) != Kind::Plain
        || matches!(
            name,
            "vec"
                | "matches"
                | "dbg"
                | "line"
                | "column"
                | "file"
                | "module_path"
                | "env"
                | "option_env"
                | "cfg"
                | "include_str"
                | "include_bytes"
                | "select"
                | "join"
                | "try_join"
                | "pin"
                | "json"
        )
}

/// Renames `self` in a macro's tokens, as `kind` reads them.
fn rename_macro(tokens: TokenStream, kind: Kind) -> TokenStream {
    match kind {
        Kind::Opaque => tokens,
        Kind::Plain => rename_plain(tokens),
        Kind::Format(n) => {
            let mut out = Vec::new();
            for (i, (arg, comma)) in split_args(tokens).into_iter().enumerate() {
                match &arg[..] {
                    [TokenTree::Literal(lit)] if i == n => {
                        out.push(TokenTree::Literal(rename_in_format(lit)));
                    }
                    _ => out.extend(rename_plain(arg.into_iter().collect())),
                }
                out.extend(comma);
            }
            out.into_iter().collect()
        }
        Kind::Event | Kind::Span => rename_tracing(tokens, kind == Kind::Event),
    }
}

/// The top-level arguments, each with the comma after it. A turbofish's commas
/// (`HashMap::<u8, u8>::new()`) are inside its argument: split there, an `assert_eq!`'s
/// message was no longer the argument it reads as the format string.
fn split_args(tokens: TokenStream) -> Vec<(Vec<TokenTree>, Option<TokenTree>)> {
    let mut args = vec![(Vec::new(), None)];
    // The `<…>` nesting of a turbofish (`::<`) or a qualified path (`<T as Tr>::f`, a `<`
    // that starts an argument or follows an operator): a `<` after an operand (`a < b`, `x? <
    // y`) compares; a `>` after `-` is an arrow.
    let mut angle = 0u32;
    for tt in tokens {
        let current = &args.last().expect("never empty").0;
        match &tt {
            TokenTree::Punct(p)
                if p.as_char() == '<'
                    && (angle > 0
                        || current.is_empty()
                        || matches!(current.last(),
                            // Not `x? < y`, nor the second `<` of a shift (`n << 1`).
                            Some(TokenTree::Punct(q)) if q.as_char() != '?'
                                && !(q.as_char() == '<' && q.spacing() == Spacing::Joint))) =>
            {
                angle += 1;
            }
            TokenTree::Punct(p)
                if p.as_char() == '>' && angle > 0 && !is_punct(current.last(), '-') =>
            {
                angle -= 1;
            }
            _ => {}
        }
        if angle == 0 && matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
            args.last_mut().expect("never empty").1 = Some(tt);
            args.push((Vec::new(), None));
        } else {
            args.last_mut().expect("never empty").0.push(tt);
        }
    }
    if args
        .last()
        .is_some_and(|(a, c)| a.is_empty() && c.is_none())
    {
        args.pop();
    }
    args
}

/// `self` or `self.a.b`: the length of that path at the start of `tokens`, if there is one.
fn self_path(tokens: &[TokenTree]) -> Option<usize> {
    if !matches!(tokens.first(), Some(TokenTree::Ident(i)) if i == "self") {
        return None;
    }
    let mut n = 1;
    while is_punct(tokens.get(n), '.') && matches!(tokens.get(n + 1), Some(TokenTree::Ident(_))) {
        n += 2;
    }
    Some(n)
}

fn rename_tracing(tokens: TokenStream, event: bool) -> TokenStream {
    let mut out: Vec<TokenTree> = Vec::new();
    let mut message_seen = false;
    for (arg, comma) in split_args(tokens) {
        let sigil = usize::from(is_punct(arg.first(), '?') || is_punct(arg.first(), '%'));
        let path = self_path(&arg[sigil..]);
        match (&arg[..], path) {
            // `?self`, `%self.n`, `self.n` before the message: a field named after the path.
            (_, Some(n)) if !message_seen && sigil + n == arg.len() => {
                let key = &arg[sigil..];
                out.extend(key.iter().cloned());
                out.push(TokenTree::Punct(Punct::new('=', Spacing::Alone)));
                out.extend(arg[..sigil].iter().cloned());
                out.extend(rename_plain(key.iter().cloned().collect()));
            }
            // `self.n = value`: the key is a name.
            (_, Some(n))
                if sigil == 0 && is_punct(arg.get(n), '=') && !is_punct(arg.get(n + 1), '=') =>
            {
                out.extend(arg[..n].iter().cloned());
                out.extend(rename_plain(arg[n..].iter().cloned().collect()));
            }
            ([TokenTree::Literal(lit)], _) if !message_seen => {
                message_seen = true;
                out.push(TokenTree::Literal(if event {
                    rename_in_format(lit)
                } else {
                    lit.clone()
                }));
            }
            _ => out.extend(rename_plain(arg.into_iter().collect())),
        }
        out.extend(comma);
    }
    out.into_iter().collect()
}

/// `self` renamed wherever it is not the path root `self::`; a nested `name!(…)` read as its
/// name says; literals kept.
fn rename_plain(tokens: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out: Vec<TokenTree> = Vec::with_capacity(tokens.len());
    for (i, tt) in tokens.iter().enumerate() {
        match tt {
            TokenTree::Ident(ident) if ident == "self" => {
                let path_root = matches!(tokens.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
                    && is_punct(tokens.get(i + 2), ':');
                let mut ident = ident.clone();
                if !path_root {
                    rename(&mut ident);
                }
                out.push(TokenTree::Ident(ident));
            }
            TokenTree::Group(group) => {
                let kind = match (
                    i.checked_sub(2).map(|j| &tokens[j]),
                    i.checked_sub(1).map(|j| &tokens[j]),
                ) {
                    (Some(TokenTree::Ident(name)), Some(TokenTree::Punct(bang)))
                        if bang.as_char() == '!' =>
                    {
                        kind_of(&name.to_string())
                    }
                    _ => Kind::Plain,
                };
                let mut new = Group::new(group.delimiter(), rename_macro(group.stream(), kind));
                new.set_span(group.span());
                out.push(TokenTree::Group(new));
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
            let kind = mac
                .path
                .segments
                .last()
                .map_or(Kind::Plain, |s| kind_of(&s.ident.to_string()));
            mac.tokens = rename_macro(std::mem::take(&mut mac.tokens), kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(kind: Kind, tokens: &str) -> String {
        rename_macro(tokens.parse().unwrap(), kind).to_string()
    }

    #[test]
    fn any_macro_renames_the_receiver_but_not_a_path_root() {
        let plain = |t| renamed(Kind::Plain, t);
        assert_eq!(
            plain("self . n , self :: helper ()"),
            "resilience_self . n , self :: helper ()"
        );
        // Assignments in `select!` arms; `self:` is not a path root; data literals stay.
        assert_eq!(
            plain("_ = f => { * self = S :: default () ; }"),
            "_ = f => { * resilience_self = S :: default () ; }"
        );
        assert_eq!(plain("self : ? ; \"m\""), "resilience_self : ? ; \"m\"");
        assert_eq!(
            plain(r#"{ "a" : "{self}" , "b" : self . n }"#),
            r#"{ "a" : "{self}" , "b" : resilience_self . n }"#
        );
        // A nested call is read by its own name.
        assert_eq!(
            plain(r#"vec ! [format ! ("{self}") , json ! ("{self}") , quote ! (self . n)]"#),
            r#"vec ! [format ! ("{resilience_self}") , json ! ("{self}") , quote ! (self . n)]"#
        );
    }

    #[test]
    fn only_the_format_string_is_renamed() {
        assert_eq!(
            renamed(
                Kind::Format(0),
                r#""{self} {self:?} {{self}} {selfish}" , "{self}""#
            ),
            r#""{resilience_self} {resilience_self:?} {{self}} {selfish}" , "{self}""#
        );
        assert_eq!(
            renamed(
                Kind::Format(1),
                r#"s , "{}|{self:>6}" , "{self}" , self . n"#
            ),
            r#"s , "{}|{resilience_self:>6}" , "{self}" , resilience_self . n"#
        );
        assert_eq!(
            renamed(Kind::Format(2), r#"t , "hello {self}""#),
            r#"t , "hello {self}""#
        );
        assert_eq!(
            renamed(Kind::Opaque, "self . n + self :: x"),
            "self . n + self :: x"
        );
    }

    #[test]
    fn tracing_fields_keep_their_names() {
        let event = |t| renamed(Kind::Event, t);
        assert_eq!(
            event(r#"? self , "hi""#),
            r#"self = ? resilience_self , "hi""#
        );
        assert_eq!(
            event(r#"x = 1 , % self . name"#),
            r#"x = 1 , self . name = % resilience_self . name"#
        );
        assert_eq!(
            event(r#"self . n , "e""#),
            r#"self . n = resilience_self . n , "e""#
        );
        assert_eq!(
            event(r#"self . n = self . n + 1 , "f""#),
            r#"self . n = resilience_self . n + 1 , "f""#
        );
        assert_eq!(event("me = ? self"), "me = ? resilience_self");
        assert_eq!(
            event(r#"template = "{self}" , "h {self}""#),
            r#"template = "{self}" , "h {resilience_self}""#
        );
        // After the message, arguments are format arguments: `self.n` is a value.
        assert_eq!(
            event(r#""x {}" , self . n"#),
            r#""x {}" , resilience_self . n"#
        );
        assert_eq!(
            event(r#"target : "t" , ? self"#),
            r#"target : "t" , self = ? resilience_self"#
        );
        // `#[instrument]`'s span fields; a span's name is no format string.
        assert_eq!(
            renamed(
                Kind::Span,
                r#"target : "t" , L , "span-{self}" , self = debug (& self)"#
            ),
            r#"target : "t" , L , "span-{self}" , self = debug (& resilience_self)"#
        );
    }

    #[test]
    fn a_macro_defining_a_method_keeps_its_own_self() {
        for yes in [
            "impl X { fn f (& self) { } }",
            "struct T ; impl T { fn g < A : Clone + Send + Sync + 'static > (& self) -> u32 { 1 } }",
        ] {
            assert!(defines_method(yes.parse().unwrap()), "{yes}");
        }
        assert!(!defines_method(
            "(self . n , helper as fn (u32) -> u32)".parse().unwrap()
        ));
        // A pointer type, then a call on `self`: no method is defined.
        assert!(!defines_method(
            "{ let f : fn (& S) -> u32 = double ; f (self) }"
                .parse()
                .unwrap()
        ));
        // The `>` of an arrow in a bound closes no `<`.
        assert!(defines_method(
            "fn h < F : Fn () -> u32 > (& self , f : F) { }"
                .parse()
                .unwrap()
        ));
        // A name that is a `macro_rules!` fragment, or pasted, names a method all the same;
        // a receiver with a lifetime (`&'a mut self`, five tokens) is a receiver.
        for yes in [
            "($ name : ident) => { impl T { fn $ name (& self) -> u32 { self . 0 } } }",
            "impl T { fn [< get_ $ f >] (& self) -> u32 { self . 0 } }",
            "impl T { fn get < 'a > (& 'a mut self) -> & 'a mut u32 { & mut self . 0 } }",
        ] {
            assert!(defines_method(yes.parse().unwrap()), "{yes}");
        }
    }

    /// A turbofish's commas stay inside its argument; a comparison's `<` opens nothing.
    #[test]
    fn a_turbofish_does_not_move_the_format_string() {
        for (kind, given, expected) in [
            (
                Kind::Format(2),
                r#"m , HashMap :: < u8 , Vec < u8 >> :: new () , "{self:?}""#,
                r#"m , HashMap :: < u8 , Vec < u8 >> :: new () , "{resilience_self:?}""#,
            ),
            (
                Kind::Format(1),
                r#"a < b , "{self}" , c > d"#,
                r#"a < b , "{resilience_self}" , c > d"#,
            ),
            (
                Kind::Format(1),
                r#"f :: < fn (u8) -> u8 , u8 > (g) , "{self}""#,
                r#"f :: < fn (u8) -> u8 , u8 > (g) , "{resilience_self}""#,
            ),
            // A qualified path, at an argument's start or after an operator.
            (
                Kind::Format(2),
                r#"m , & < HashMap < u8 , u8 > as Default > :: default () , "{self:?}""#,
                r#"m , & < HashMap < u8 , u8 > as Default > :: default () , "{resilience_self:?}""#,
            ),
            (
                Kind::Format(1),
                r#"x ? < y , "{self}""#,
                r#"x ? < y , "{resilience_self}""#,
            ),
        ] {
            assert_eq!(renamed(kind, given), expected, "{given}");
        }
        // A shift is no qualified path (from helper-107's review).
        let shifted = renamed(Kind::Format(2), r#"self . n << 1 , 2 , "{self:?}""#);
        assert!(shifted.ends_with(r#""{resilience_self:?}""#), "{shifted}");
    }
}
