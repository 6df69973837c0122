//! The `#[resilient]` attribute. Depend on the `resilience` facade, which re-exports it.

#![forbid(unsafe_code)]

mod args;
mod async_trait;
mod classify;
mod expand;
mod invisible;
mod receiver;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Makes every call of an async method go through its provider's shared circuit breaker,
/// retry policy and retry budget, with logs and metrics.
///
/// # Arguments
///
/// | argument | required | meaning |
/// |---|---|---|
/// | `provider = "kimi"` | yes | the provider whose breaker, retry policy and budget the calls share (a non-empty string literal) |
/// | `retry = false` | no | for non-idempotent operations: breaker only, exactly one attempt; owned arguments are moved, not cloned |
/// | `name = "upload"` | no | the method label in logs and metrics (default: the function's name) |
/// | `crate = my_sdk::resilience` | no | the path to the facade, for a crate that renames the dependency or reaches it through a re-export (default `::resilience`; also `crate = "path"`) |
///
/// ```
/// use resilience::{resilient, Classify, HttpError, ResilienceError};
///
/// #[derive(Debug, Classify)]
/// pub enum UploadError {
///     #[classify(transparent)]
///     Http(HttpError),
///     #[classify(transparent)]
///     Resilience(ResilienceError),
/// }
/// # impl From<ResilienceError> for UploadError { fn from(e: ResilienceError) -> Self { UploadError::Resilience(e) } }
///
/// struct Kimi;
///
/// impl Kimi {
///     /// Retried on transient errors, rejected at once while kimi's breaker is open.
///     #[resilient(provider = "doc-macro-kimi")]
///     async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<u64, UploadError> {
///         Ok(bytes.len() as u64)
///     }
///
///     /// Not idempotent: one attempt, but still fail-fast while the breaker is open.
///     #[resilient(provider = "doc-macro-kimi", retry = false, name = "delete")]
///     async fn delete_file(&self, id: u64) -> Result<(), UploadError> {
///         Ok(())
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # assert_eq!(Kimi.upload_file("a", vec![1, 2, 3]).await.unwrap(), 3);
/// # Kimi.delete_file(3).await.unwrap();
/// # }
/// ```
///
/// # Requirements
///
/// - An `async fn` (free function, inherent or trait-impl method, trait default method), or a
///   method rewritten by `#[async_trait]` (put `#[resilient]` on the method inside the
///   `#[async_trait]` impl).
/// - The return type is `Result<T, E>` (an alias is fine) where `E` implements
///   [`Classify`](../resilience/trait.Classify.html) and `From<ResilienceError>`.
/// - With retries on, owned arguments (and a `mut self`) implement `Clone`: each attempt gets a
///   fresh copy. Borrowed arguments are shared (`&T`) or reborrowed (`&mut T`, `&mut self`)
///   per attempt.
///
/// `?` and `return` in the body end the current attempt with that value; the retry loop and
/// the breaker always see the outcome. The signature's types are never changed, so the
/// attribute works on trait impls, and each attempt owns its copies of the arguments, so the
/// returned future is `Send` whenever the arguments and the body's future are.
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    resilient_impl(args.into(), item.into()).into()
}

fn resilient_impl(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let parsed_item = match syn::parse2::<expand::MaybeFn>(item.clone()) {
        Ok(i) => i,
        Err(e) => {
            let e = not_a_function(&item).unwrap_or(e);
            return with_error(item, e);
        }
    };
    let args = match syn::parse2::<args::Args>(args) {
        Ok(a) => a,
        Err(e) => return with_error(parsed_item.into_token_stream(), e),
    };
    let original = parsed_item.to_token_stream();
    expand::expand(args, parsed_item).unwrap_or_else(|e| with_error(original, e))
}

/// For an item that is no function at all, an error saying where the attribute goes, at
/// the item's keyword (syn's own is "expected `fn`").
fn not_a_function(item: &proc_macro2::TokenStream) -> Option<syn::Error> {
    use syn::spanned::Spanned;
    let (span, what) = match syn::parse2::<syn::Item>(item.clone()).ok()? {
        syn::Item::Impl(i) => (
            i.impl_token.span(),
            "an `impl` block: annotate its `async fn`s",
        ),
        syn::Item::Trait(t) => (
            t.trait_token.span(),
            "a trait: annotate the `async fn`s of its impls (or its methods' default bodies)",
        ),
        syn::Item::Struct(s) => (s.struct_token.span(), "a struct"),
        syn::Item::Enum(e) => (e.enum_token.span(), "an enum"),
        syn::Item::Mod(m) => (m.mod_token.span(), "a module"),
        syn::Item::Const(c) => (c.const_token.span(), "a `const`"),
        syn::Item::Static(s) => (s.static_token.span(), "a `static`"),
        syn::Item::Type(t) => (t.type_token.span(), "a type alias"),
        syn::Item::Union(u) => (u.union_token.span(), "a union"),
        syn::Item::Use(u) => (u.use_token.span(), "a `use`"),
        syn::Item::ForeignMod(f) => (f.abi.extern_token.span(), "an `extern` block"),
        syn::Item::Macro(m) => (m.mac.path.span(), "a macro"),
        syn::Item::ExternCrate(e) => (e.extern_token.span(), "an `extern crate`"),
        _ => return None,
    };
    Some(syn::Error::new(
        span,
        format!("`#[resilient]` goes on an `async fn`, not on {what}"),
    ))
}

/// On any error, the original item is still emitted beside the error, so one mistake gives
/// one error instead of a cascade of "cannot find function" errors at every caller.
fn with_error(item: proc_macro2::TokenStream, e: syn::Error) -> proc_macro2::TokenStream {
    let mut out = e.into_compile_error();
    out.extend(item);
    out
}

/// Implements [`Classify`](../resilience/trait.Classify.html) for an error enum (or struct),
/// variant by variant. Every variant (or the struct) says which, on itself (not on the enum,
/// nor on a field):
///
/// - `#[classify(transparent)]` forwards to the variant's error field: its class, its
///   `Retry-After`, its log text. That is its only field or, beside context fields (a path, a
///   backtrace), the one marked `#[source]` or `#[from]` (thiserror's) or named `source`.
///   Use it for an [`HttpError`](../resilience/struct.HttpError.html): its 429 is throttled
///   with its header, its 404 permanent.
/// - `#[classify(transient)]`, `#[classify(throttled)]`, `#[classify(permanent)]`: that class,
///   whatever the field holds, and no log text (the value's own text may hold secrets). A
///   transient or throttled variant waits the `Retry-After` its error field gives when that
///   field's type is `Classify` (`#[classify(throttled)] RateLimited(HttpError)` keeps the
///   429's header; the field picked as for `transparent`); any other variant gives none, as
///   does a field whose type names a type parameter of the item (`E`, `Wrap<E>`, bounded or
///   not: make such a variant `transparent`), holds a lifetime
///   (`Borrowed<'a>`, `&'a dyn MyError`; `&'a HttpError` forwards), is a
///   `#[repr(packed)]` struct's, or is under `#[expect(dead_code)]` (there, on its variant or
///   on the item): such a field is not read.
///
/// A forwarded field whose type names a type parameter (`E`, `Box<E>`, `T::Error`) gets its
/// `Classify` bound from the derive, as thiserror's derive does. It sits beside that derive,
/// whose `#[from]` can write the `From<ResilienceError>` a `#[resilient]` method's error also
/// needs. `__resilience_inner` is a reserved name in the generated match.
///
/// In a crate that reaches the facade by another path (a renamed dependency, a re-export),
/// give it on the enum or struct: `#[classify(crate = res)]`, as `#[resilient(crate = res)]`.
///
/// ```
/// use resilience::{Classify, ErrorClass, HttpError, ResilienceError};
///
/// #[derive(Debug, Classify)]
/// enum UploadError {
///     #[classify(transparent)]
///     Http(HttpError),
///     #[classify(transparent)]
///     Resilience(ResilienceError),
///     #[classify(permanent)]
///     TooLarge { bytes: u64 },
/// }
///
/// let busy = UploadError::Http(HttpError::from_header(503, Some("2")));
/// assert_eq!(busy.classify(), ErrorClass::Transient);
/// assert_eq!(busy.retry_after(), Some(std::time::Duration::from_secs(2)));
/// assert_eq!(UploadError::TooLarge { bytes: 1 }.classify(), ErrorClass::Permanent);
///
/// // A fixed class over an `HttpError` still waits what the provider asked.
/// #[derive(Debug, Classify)]
/// enum ChatError {
///     #[classify(throttled)]
///     Overloaded(HttpError),
/// }
/// let overloaded = ChatError::Overloaded(HttpError::from_header(529, Some("7")));
/// assert!(matches!(overloaded.classify(), ErrorClass::Throttled { .. }));
/// assert_eq!(overloaded.retry_after(), Some(std::time::Duration::from_secs(7)));
/// ```
// `source` and `from` are thiserror's, read here to pick a transparent variant's error field;
// declared here too, so that they may mark it without thiserror's derive.
#[proc_macro_derive(Classify, attributes(classify, source, from))]
pub fn derive_classify(item: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(item) {
        Ok(input) => classify::derive(input).into(),
        Err(e) => e.into_compile_error().into(),
    }
}
