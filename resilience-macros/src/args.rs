//! Parsing and checking `#[resilient(...)]` arguments.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitBool, LitStr, Token};

mod kw {
    syn::custom_keyword!(provider);
    syn::custom_keyword!(retry);
    syn::custom_keyword!(name);
}

const VALID: &str = "valid arguments are `provider = \"name\"` (required), `retry = false`, \
                     `name = \"label\"` and `crate = path::to::resilience`";

/// The path the expansion names the facade by: `::resilience`, or the one `crate = …` gives,
/// for a crate that reaches it another way (a renamed dependency, or a crate of your own that
/// re-exports it, from a `macro_rules!` as `$crate::resilience`).
pub(crate) struct Krate {
    path: syn::Path,
    /// Written by the user, not our default.
    given: bool,
}

impl Default for Krate {
    fn default() -> Self {
        Krate {
            path: syn::parse_quote!(::resilience),
            given: false,
        }
    }
}

impl Krate {
    /// `crate = path` or, as serde and tokio write it, `crate = "path"`: a path to a module
    /// (no generic arguments), the facade or a re-export of it.
    pub(crate) fn parse_value(input: ParseStream<'_>) -> syn::Result<Self> {
        const EXPECTED: &str = "`crate` takes the path the `resilience` facade is reached by, \
                                e.g. `crate = my_sdk::resilience`";
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            return lit
                .parse_with(syn::Path::parse_mod_style)
                .map(Krate::given)
                .map_err(|_| syn::Error::new(lit.span(), EXPECTED));
        }
        let fork = input.fork();
        if fork.call(syn::Path::parse_mod_style).is_ok()
            && (fork.is_empty() || fork.peek(Token![,]))
        {
            return input.call(syn::Path::parse_mod_style).map(Krate::given);
        }
        // Consume what is there so the error points at the whole value, not its first token.
        let value: TokenStream = input
            .step(|cursor| {
                let mut rest = *cursor;
                let mut seen = TokenStream::new();
                while let Some((tt, next)) = rest.token_tree() {
                    if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                        break;
                    }
                    seen.extend([tt]);
                    rest = next;
                }
                Ok((seen, rest))
            })
            .unwrap_or_default();
        if value.is_empty() {
            return Err(input.error(EXPECTED));
        }
        Err(syn::Error::new_spanned(value, EXPECTED))
    }

    fn given(path: syn::Path) -> Self {
        Krate { path, given: true }
    }

    /// For a path the user gave, the `use` that names it once, to go first in the scope of
    /// the expansion's other paths (which name [`ALIAS`]): a path that does not resolve is
    /// one error, at the path, not one for each use (rustc reports nothing through an import
    /// that failed). A `$crate` in it keeps naming its crate. Nothing for ours.
    pub(crate) fn prelude(&self) -> TokenStream {
        if !self.given {
            return TokenStream::new();
        }
        let (path, alias) = (&self.path, self.alias(self.span()));
        quote::quote_spanned!(self.span()=> use #path as #alias;)
    }

    /// Where the user's path is: the `use`, and its error, are placed there.
    fn span(&self) -> Span {
        self.path
            .segments
            .last()
            .map_or_else(Span::call_site, |s| s.ident.span())
    }

    /// The alias, resolved as the user's path is (so that its uses find its `use`), placed
    /// at `at`.
    fn alias(&self, at: Span) -> Ident {
        Ident::new(ALIAS, self.span().located_at(at))
    }

    /// The path, placed at `span`, where rustc reports an error in the code around it. Ours
    /// is spanned there whole, as the user's own code is, so the error carries no "in this
    /// macro expansion" notes.
    pub(crate) fn at(&self, span: Span) -> TokenStream {
        if self.given {
            return self.alias(span).into_token_stream();
        }
        self.path
            .to_token_stream()
            .into_iter()
            .map(|mut t| {
                t.set_span(span);
                t
            })
            .collect()
    }
}

/// The name [`Krate::prelude`] gives a path the user gave.
const ALIAS: &str = "__resilience_crate";

impl ToTokens for Krate {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        if self.given {
            self.alias(self.span()).to_tokens(tokens);
        } else {
            self.path.to_tokens(tokens);
        }
    }
}

/// Settings users look for among the arguments, by the names they try: `(names, the
/// `Settings` method, the variable's setting part)`.
const SETTINGS: &[(&[&str], &str, &str)] = &[
    (
        &["max_attempts", "attempts", "retries", "max_retries"],
        "max_attempts",
        "RETRY_MAX_ATTEMPTS",
    ),
    (
        &["timeout", "attempt_timeout"],
        "attempt_timeout",
        "RETRY_ATTEMPT_TIMEOUT",
    ),
    (
        &["total_timeout", "deadline"],
        "total_timeout",
        "RETRY_TOTAL_TIMEOUT",
    ),
    (
        &["base_delay", "delay", "backoff"],
        "base_delay",
        "RETRY_BASE_DELAY",
    ),
    (&["max_delay"], "max_delay", "RETRY_MAX_DELAY"),
    (&["jitter"], "jitter", "RETRY_JITTER"),
    (
        &["failure_threshold", "threshold"],
        "failure_threshold",
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
    ),
    (
        &["success_threshold"],
        "success_threshold",
        "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
    ),
    (
        &["breaker_timeout", "reset_timeout", "open_timeout"],
        "breaker_timeout",
        "CIRCUIT_BREAKER_TIMEOUT",
    ),
    (
        &["half_open_max_calls"],
        "half_open_max_calls",
        "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS",
    ),
];

/// Other names users give the attribute's own keys. `retries = false` (a `bool`) means
/// `retry`, where `retries = 5` is the setting.
const SYNONYMS: &[(&str, &[&str])] = &[
    ("name", &["method", "label", "operation", "op"]),
    ("retry", &["retryable", "idempotent", "retry_enabled"]),
];

/// What to add to the "unknown argument" error: the key it is a slip or another name of, or,
/// for a setting, where settings are given (per provider, not per method). `boolean`: the
/// value given is `true` or `false`.
fn hint(unknown: &str, boolean: bool, provider: Option<&LitStr>) -> String {
    let synonym = SYNONYMS
        .iter()
        .find(|(_, names)| names.contains(&unknown))
        .map(|(key, _)| *key)
        .or_else(|| (boolean && unknown.starts_with("retr")).then_some("retry"));
    if let Some(key) = synonym {
        return format!(" (did you mean `{key}`?)");
    }
    let Some((_, method, var)) = SETTINGS.iter().find(|(names, ..)| names.contains(&unknown))
    else {
        // A slip: one edit off a short key, two off a longer one.
        return ["provider", "retry", "name", "crate"]
            .into_iter()
            .find(|k| strsim::levenshtein(k, unknown) <= if k.len() > 4 { 2 } else { 1 })
            .map_or_else(String::new, |key| format!(" (did you mean `{key}`?)"));
    };
    let part = provider.map_or_else(|| "<PROVIDER>".to_owned(), |p| env_name(&p.value()));
    // A timeout is the one setting a method can hold on its own without a second breaker: on
    // the request its body sends, once per attempt.
    let own = if *method == "attempt_timeout" {
        ", or bound the request its body sends (reqwest's `RequestBuilder::timeout`: a \
         transient error, retried)"
    } else {
        ""
    };
    format!(
        ". Settings belong to the provider, not the method: `Settings::{method}` in code, or \
         `RESILIENCE_{part}_{var}`; give this method a provider of its own to set it for it \
         alone{own}"
    )
}

/// The provider's part of a variable name: the runtime's `env_provider_name`, written again so
/// that the proc-macro crate need not depend on the runtime (tokio, reqwest and all, built
/// once more for the host) for one mapping.
fn env_name(provider: &str) -> String {
    provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A provider name the runtime refuses whatever the other names are (its `name_clashes`'
/// first two rules), as a compile error at the name instead of an error logged at its first
/// call. Clashes between names, and with the global variables, are the runtime's to find.
fn provider_name_problem(name: &str) -> Option<String> {
    let shown = name.escape_debug();
    if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Some(format!(
            "provider `{shown}` has no ASCII letter or digit: its name makes its \
             RESILIENCE_<PROVIDER>_… variables, e.g. `provider = \"kimi\"`"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Some(format!(
            "provider `{shown}` contains the control character U+{:04X}: give a name an \
             operator can read and type, e.g. `provider = \"kimi\"`",
            u32::from(c)
        ));
    }
    if let Some(c) = crate::invisible::invisible_in(name) {
        return Some(format!(
            "provider `{shown}` contains the invisible character U+{:04X} (pasted along?): it \
             would be a breaker of its own that looks like `{}`; give a name an operator can \
             read and type",
            u32::from(c),
            name.chars()
                .filter(|&x| x != c)
                .collect::<String>()
                .escape_debug()
        ));
    }
    if name.trim() != name {
        return Some(format!(
            "provider `{shown}` has leading or trailing spaces: it would read RESILIENCE_{}_… \
             variables, not the RESILIENCE_{}_… an operator sets for `{}`",
            env_name(name),
            env_name(name.trim()),
            name.trim().escape_debug()
        ));
    }
    None
}

pub(crate) struct Args {
    pub(crate) provider: LitStr,
    pub(crate) retry: bool,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Krate,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut provider: Option<LitStr> = None;
        let mut retry: Option<LitBool> = None;
        let mut name: Option<LitStr> = None;
        let mut krate: Option<Krate> = None;
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::provider) {
                let key: kw::provider = input.parse()?;
                if provider.is_some() {
                    return Err(syn::Error::new(key.span, "`provider` set multiple times"));
                }
                equals(input, key.span, "provider = \"kimi\"")?;
                let no_retry = retry.as_ref().is_some_and(|b| !b.value);
                let lit = string_value(
                    input,
                    "provider",
                    "provider = \"kimi\"",
                    no_retry,
                    krate.as_ref(),
                )?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "`provider` must not be empty"));
                }
                if let Some(why) = provider_name_problem(&lit.value()) {
                    return Err(syn::Error::new(lit.span(), why));
                }
                provider = Some(lit);
            } else if lookahead.peek(kw::retry) {
                let key: kw::retry = input.parse()?;
                if retry.is_some() {
                    return Err(syn::Error::new(key.span, "`retry` set multiple times"));
                }
                equals(input, key.span, "retry = false")?;
                retry = Some(input.parse::<LitBool>().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`retry` takes `true` or `false`, e.g. `retry = false`",
                    )
                })?);
            } else if lookahead.peek(kw::name) {
                let key: kw::name = input.parse()?;
                if name.is_some() {
                    return Err(syn::Error::new(key.span, "`name` set multiple times"));
                }
                equals(input, key.span, "name = \"upload\"")?;
                let lit = string_value(input, "name", "name = \"upload\"", false, None)?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "`name` must not be empty"));
                }
                // The name is each log line's `method` and is written into its message as is:
                // a newline there would start a forged line of its own.
                if let Some(c) = lit.value().chars().find(|c| c.is_control()) {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "`name` contains the control character U+{:04X}: a name is shown in \
                             log lines and metric labels; give it printable characters only",
                            u32::from(c)
                        ),
                    ));
                }
                name = Some(lit);
            } else if lookahead.peek(Token![crate]) {
                let key: Token![crate] = input.parse()?;
                if krate.is_some() {
                    return Err(syn::Error::new(key.span, "`crate` set multiple times"));
                }
                equals(input, key.span, "crate = my_sdk::resilience")?;
                krate = Some(Krate::parse_value(input)?);
            } else if input.peek(Ident) {
                let unknown: Ident = input.parse()?;
                let boolean = input.peek(Token![=]) && input.peek2(syn::LitBool);
                let hint = hint(&unknown.to_string(), boolean, provider.as_ref());
                return Err(syn::Error::new(
                    unknown.span(),
                    format!("unknown argument `{unknown}`: {VALID}{hint}"),
                ));
            } else if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "a bare string: name the argument, e.g. `provider = {}`; {VALID}",
                        lit.to_token_stream()
                    ),
                ));
            } else {
                // One error at the token, with the valid keys in it (not a second error).
                let e = lookahead.error();
                return Err(syn::Error::new(e.span(), format!("{e}; {VALID}")));
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        let provider = provider.ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "missing `provider = \"name\"`: every `#[resilient]` call belongs to a provider, e.g. `#[resilient(provider = \"kimi\")]`",
            )
        })?;
        Ok(Args {
            provider,
            retry: retry.is_none_or(|b| b.value),
            name,
            krate: krate.unwrap_or_default(),
        })
    }
}

/// The `=` after `key`; without it, an error at the key (or at what stands there instead)
/// showing the form expected.
fn equals(input: ParseStream<'_>, key: Span, example: &str) -> syn::Result<()> {
    if let Some(eq) = input.parse::<Option<Token![=]>>()? {
        // No value: said at the key and its `=`, as the end of an attribute's input has no span
        // of its own (the parser's error underlined the whole attribute).
        if input.is_empty() || input.peek(Token![,]) {
            let at = key.join(eq.span).unwrap_or(key);
            return Err(syn::Error::new(
                at,
                format!("expected a value after `=`, e.g. `{example}`"),
            ));
        }
        return Ok(());
    }
    let at = if input.is_empty() || input.peek(Token![,]) {
        key
    } else {
        input.span()
    };
    Err(syn::Error::new(
        at,
        format!("expected `=` and a value, e.g. `{example}`; {VALID}"),
    ))
}

/// `no_retry` and `krate`: `retry = false` and `crate = …` given before the value (ones given
/// after it are looked for here), for the call site suggested in place of a `provider` that is
/// no literal.
fn string_value(
    input: ParseStream<'_>,
    key: &str,
    example: &str,
    no_retry: bool,
    krate: Option<&Krate>,
) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        return input.parse();
    }
    // Consume what is there so the error points at the whole value, not its first token.
    let value: syn::Expr = input.parse()?;
    // Why, and where a name kept in a `const` goes instead: a user who keeps provider names
    // in constants would otherwise look for a way round the rule.
    let why = if key == "provider" {
        // The whole path (`consts::KIMI`): its last segment alone may not be in scope.
        let named = match &value {
            syn::Expr::Path(p) if p.qself.is_none() => {
                Some(p.path.to_token_stream().to_string().replace(' ', ""))
            }
            _ => None,
        };
        // `retry = false` after the value, at the top level of the arguments.
        let rest: Vec<TokenTree> = input
            .fork()
            .parse::<TokenStream>()
            .map(|t| t.into_iter().collect())
            .unwrap_or_default();
        let no_retry = no_retry
            || rest.windows(3).any(|w| {
                matches!(&w[0], TokenTree::Ident(i) if i == "retry")
                    && matches!(&w[1], TokenTree::Punct(p) if p.as_char() == '=')
                    && matches!(&w[2], TokenTree::Ident(i) if i == "false")
            });
        // The facade by the path `crate = …` gives, before or after the value: where the
        // attribute needed it, `resilience` does not resolve, and the advice would not compile.
        let facade = krate
            .map(|k| k.path.clone())
            .or_else(|| crate_after(&rest))
            .map_or_else(
                || "resilience".to_owned(),
                |p| p.to_token_stream().to_string().replace(' ', ""),
            );
        match named {
            Some(named) => {
                // An associated const (`Self::NAME`): a `static`, an item of its own, cannot
                // name `Self` (E0401), so the advice names the type instead.
                let (named, self_note) = match named.strip_prefix("Self::") {
                    Some(rest) => (
                        format!("YourType::{rest}"),
                        " (a `static` cannot name `Self`: name the type)",
                    ),
                    None => (named, ""),
                };
                format!(
                    ": a macro sees tokens, not values, and the name is checked and registered at \
                     compile time. For a name kept in a `const`, declare the call site yourself: \
                     `static SITE: {facade}::CallSite = {facade}::CallSite::new({named}, \"upload\"){};`{self_note} \
                     and call `SITE.execute(|| async {{ … }})`",
                    if no_retry { ".without_retry()" } else { "" }
                )
            }
            // A field, a call, a `format!`: a name known only at run time, which no `static`
            // call site can hold. The `const` advice would not compile there.
            None => format!(
                ": a macro sees tokens, not values, and the name is checked and registered at \
                 compile time. For a name known only at run time, make the method's call site \
                 once, when the client is made, and keep it: \
                 `{facade}::{}(&name, \"upload\")` gives a `&'static CallSite`; call \
                 `site.execute(|| async {{ … }})`",
                if no_retry {
                    "call_site_without_retry"
                } else {
                    "call_site"
                }
            ),
        }
    } else {
        ": a macro sees tokens, not values".to_owned()
    };
    Err(syn::Error::new_spanned(
        value,
        format!("`{key}` must be a string literal, e.g. `{example}`{why}"),
    ))
}

/// The path of a `crate = …` among the arguments after a value, at their top level. `None`
/// for one that is not a valid path: that mistake is reported once this one is mended, and
/// the advice meanwhile names the facade's own name.
fn crate_after(rest: &[TokenTree]) -> Option<syn::Path> {
    let is_comma = |t: &TokenTree| matches!(t, TokenTree::Punct(p) if p.as_char() == ',');
    let start = (0..rest.len()).find(|&i| {
        matches!(&rest[i], TokenTree::Ident(k) if k == "crate")
            && matches!(rest.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '=')
            && (i == 0 || is_comma(&rest[i - 1]))
    })? + 2;
    let value: TokenStream = rest[start..]
        .iter()
        .take_while(|t| !is_comma(t))
        .cloned()
        .collect();
    syn::parse::Parser::parse2(Krate::parse_value, value)
        .ok()
        .map(|k| k.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> syn::Result<Args> {
        syn::parse_str::<Args>(s)
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(_) => panic!("`{s}` should not parse"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_all_keys() {
        let a = parse(r#"provider = "kimi", retry = false, name = "upload""#).unwrap();
        assert_eq!(a.provider.value(), "kimi");
        assert!(!a.retry);
        assert_eq!(a.name.unwrap().value(), "upload");
        assert!(parse(r#"provider = "kimi","#).unwrap().retry);
    }

    /// A name known only at run time (a field): no `static` call site can hold it, so the
    /// advice is a call site made by name at run time (`resilience::call_site`), not a `const` one.
    #[test]
    fn a_provider_known_at_run_time_is_sent_to_a_named_call_site() {
        let e = err("provider = self.name");
        assert!(
            e.contains("resilience::call_site(&name, \"upload\")"),
            "{e}"
        );
        assert!(!e.contains("CallSite::new(KIMI"), "{e}");
        let e = err("provider = self.name, retry = false");
        assert!(
            e.contains("resilience::call_site_without_retry(&name, \"upload\")"),
            "{e}"
        );
    }

    /// An associated const: a `static` cannot name `Self`, so the advice names a type.
    #[test]
    fn an_associated_const_is_not_suggested_as_self_in_a_static() {
        let e = err("provider = Self::NAME");
        assert!(
            e.contains(
                "CallSite::new(YourType::NAME, \"upload\");` (a `static` cannot name `Self`"
            ),
            "{e}"
        );
        assert!(!e.contains("new(Self::"), "{e}");
    }

    /// A name kept in a `const` reached by a path: the suggested call site names the same
    /// path, not its last segment, which is not in scope where the path was needed.
    #[test]
    fn a_provider_given_by_a_path_is_suggested_by_that_path() {
        let e = err("provider = consts::KIMI");
        assert!(e.contains("CallSite::new(consts::KIMI, \"upload\")"), "{e}");
        let e = err("provider = crate::names::KIMI");
        assert!(
            e.contains("CallSite::new(crate::names::KIMI, \"upload\")"),
            "{e}"
        );
        let e = err("provider = KIMI");
        assert!(e.contains("CallSite::new(KIMI, \"upload\")"), "{e}");
    }

    /// `crate = …`, before or after the provider, as a path or a string: the suggested call
    /// site names the facade by it, since `resilience` is not in scope where it was needed.
    #[test]
    fn a_suggested_call_site_names_the_facade_by_the_crate_path() {
        for s in [
            "provider = KIMI, crate = my_sdk::resilience",
            "crate = my_sdk::resilience, provider = KIMI",
            "provider = KIMI, retry = false, crate = \"my_sdk::resilience\"",
        ] {
            let e = err(s);
            assert!(
                e.contains(
                    "`static SITE: my_sdk::resilience::CallSite = \
                     my_sdk::resilience::CallSite::new(KIMI, \"upload\")"
                ),
                "{s}: {e}"
            );
        }
        let e = err("provider = KIMI, crate = ::renamed");
        assert!(e.contains("::renamed::CallSite::new(KIMI"), "{e}");
        // Not a path: that is the next error; the advice names the facade meanwhile.
        let e = err("provider = KIMI, crate = 3");
        assert!(e.contains("resilience::CallSite::new(KIMI"), "{e}");
        let e = err("provider = KIMI, name = \"crate\", retry = false");
        assert!(e.contains("static SITE: resilience::CallSite"), "{e}");
    }

    /// `retry = false` (an operation that is not idempotent), before or after the provider:
    /// the call site suggested instead makes one attempt too, or following the advice would
    /// retry what must not be retried.
    #[test]
    fn a_suggested_call_site_keeps_retry_false() {
        for s in [
            "provider = KIMI, retry = false",
            "retry = false, provider = KIMI",
            "provider = KIMI, name = \"upload\", retry = false",
        ] {
            let e = err(s);
            assert!(
                e.contains("CallSite::new(KIMI, \"upload\").without_retry()"),
                "{s}: {e}"
            );
        }
        let e = err("provider = KIMI, retry = true");
        assert!(!e.contains("without_retry"), "{e}");
        let e = err("provider = KIMI");
        assert!(!e.contains("without_retry"), "{e}");
    }

    /// The rule is one file in two crates (`invisible.rs`): the copies must not drift apart,
    /// or the macro would accept names the runtime refuses, or the reverse.
    #[test]
    fn the_invisible_rule_is_the_runtime_s() {
        assert_eq!(
            include_str!("invisible.rs"),
            include_str!("../../resilience-runtime/src/invisible.rs")
        );
    }

    /// The runtime's rule: a joiner between two letters of a script that joins or stacks
    /// them, or a selector after an emoji, is part of the name; where it shows nothing, or a
    /// character that never shows, the name is refused.
    #[test]
    fn joiners_are_refused_only_where_they_show_nothing() {
        for name in [
            "fa-کتاب\u{200c}ها",
            "lk-ශ්\u{200d}රී",
            "dev-🧑\u{200d}💻",
            "cloud-☁\u{fe0f}",
            "flag-\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "hi-\u{915}\u{94D}\u{200D}\u{937}",
            "rainbow-\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",
        ] {
            assert_eq!(provider_name_problem(name), None, "{name:?}");
        }
        for name in [
            "ki\u{200d}mi",
            "kimi\u{200c}",
            "fa-کتاب\u{200c}",
            "glm\u{fe0f}",
            "glm\u{34f}",
            "glm\u{e0041}",
            "glm\u{3164}",
            "glm\u{E0067}\u{E007F}",
            "flag-\u{1F3F4}\u{E0067}\u{E0062}",
            "cloud-\u{2601}\u{FE0F}\u{FE0F}",
            "zh-\u{6708}\u{4E4B}\u{200D}\u{6697}\u{9762}",
            "ru-\u{44F}\u{43D}\u{200C}\u{434}\u{435}\u{43A}\u{441}",
        ] {
            let why = provider_name_problem(name).unwrap_or_default();
            assert!(why.contains("invisible character"), "{name:?}: {why}");
        }
    }

    #[test]
    fn rejects_mistakes() {
        assert!(err("").contains("missing `provider"));
        assert!(err("provider = kimi").contains("string literal"));
        assert!(err(r#"provider = """#).contains("must not be empty"));
        assert!(err(r#"provider = "--""#).contains("provider `--` has no ASCII letter or digit"));
        assert!(err(r#"provider = " kimi""#).contains(
            "it would read RESILIENCE__KIMI_… variables, not the RESILIENCE_KIMI_… an operator sets for `kimi`"
        ));
        assert!(err("provider = \"kimi\\n\"").contains("contains the control character U+000A"));
        assert!(err("provider = \"ki\\u{1}mi\"").contains("control character U+0001"));
        assert!(
            err("provider = \"p\", name = \"up\\nload\"")
                .contains("`name` contains the control character U+000A")
        );
        assert!(err(r#"provider = "-kimi ""#).contains(
            "it would read RESILIENCE__KIMI__… variables, not the RESILIENCE__KIMI_… an operator sets for `-kimi`"
        ));
        assert!(parse(r#"provider = "kimi-v2.1 é""#).is_ok());
        assert!(err(r#"provider = "a", timeout = 3"#).contains("unknown argument `timeout`"));
        assert!(err(r#"provider = "kimi-v2", max_attempts = 5"#).contains(
            "`Settings::max_attempts` in code, or `RESILIENCE_KIMI_V2_RETRY_MAX_ATTEMPTS`"
        ));
        assert!(
            err(r#"timeout = 5, provider = "a""#)
                .contains("RESILIENCE_<PROVIDER>_RETRY_ATTEMPT_TIMEOUT")
        );
        assert!(err(r#"providr = "a""#).contains("(did you mean `provider`?)"));
        assert!(err(r#"provider = "a", retyr = false"#).contains("(did you mean `retry`?)"));
        assert!(!err(r#"provider = "a", colour = 1"#).contains("did you mean"));
        assert!(!err(r#"provider = "a", mode = 1"#).contains("did you mean"));
        // Other names for the attribute's own keys; `retries` as a switch is `retry`, and as a
        // number the setting.
        assert!(err(r#"provider = "a", method = "m""#).contains("(did you mean `name`?)"));
        assert!(err(r#"provider = "a", idempotent = false"#).contains("(did you mean `retry`?)"));
        assert!(err(r#"provider = "a", retries = false"#).contains("(did you mean `retry`?)"));
        assert!(err(r#"provider = "a", retries = 5"#).contains("Settings::max_attempts"));
        assert!(err(r#"provider = "a", retries = 5"#).contains("`Settings::max_attempts`"));
        assert!(err(r#"provider = "a", provider = "b""#).contains("set multiple times"));
        assert!(err(r#"provider = "a", retry = "no""#).contains("`retry` takes"));
    }

    #[test]
    fn crate_takes_a_path_bare_or_quoted() {
        let path = |s: &str| {
            let k = parse(s).unwrap().krate;
            if k.given {
                assert_eq!(k.to_token_stream().to_string(), ALIAS);
            }
            k.path.to_token_stream().to_string()
        };
        assert_eq!(path(r#"provider = "a""#), ":: resilience");
        assert_eq!(path(r#"provider = "a", crate = res"#), "res");
        assert_eq!(
            path(r#"crate = ::my_sdk::resilience, provider = "a""#),
            ":: my_sdk :: resilience"
        );
        assert_eq!(
            path(r#"provider = "a", crate = "crate::sdk::res""#),
            "crate :: sdk :: res"
        );
        for bad in [
            r#"provider = "a", crate = 3"#,
            r#"provider = "a", crate = "3""#,
            r#"provider = "a", crate = a::<B>"#,
            r#"provider = "a", crate = a::"#,
        ] {
            assert!(
                err(bad).contains("`crate` takes the path"),
                "{bad}: {}",
                err(bad)
            );
        }
        // No value at all: said at the key (tests/ui's argument-values.rs shows where).
        for bad in [r#"provider = "a", crate = "#, r#"crate =, provider = "a""#] {
            assert!(
                err(bad).contains("expected a value after `=`, e.g. `crate = my_sdk::resilience`"),
                "{bad}: {}",
                err(bad)
            );
        }
        assert!(err(r#"provider = "a", crate"#).contains("e.g. `crate = my_sdk::resilience`"));
        assert!(err(r#"provider = "a", crate = a, crate = b"#).contains("set multiple times"));
        assert!(err(r#"provider = "a", krate = res"#).contains("(did you mean `crate`?)"));
    }

    #[test]
    fn a_missing_value_or_key_is_one_error_naming_the_valid_keys() {
        // Where each error points is checked by the trybuild tests (`key-without-value`,
        // `bare-string`): spans carry no positions outside a compiler.
        for (input, says) in [
            (r#"provider = "a", retry"#, "e.g. `retry = false`"),
            (r#"provider("kimi")"#, "e.g. `provider = \"kimi\"`"),
            (r#"name, provider = "a""#, "e.g. `name = \"upload\"`"),
            (r#""kimi""#, "name the argument, e.g. `provider = \"kimi\"`"),
            ("3", "expected one of"),
        ] {
            let e = parse(input).err().expect(input);
            assert_eq!(e.clone().into_iter().count(), 1, "{input}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(says) && text.contains(VALID),
                "{input}: {text}"
            );
        }
    }
}
