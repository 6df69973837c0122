//! Recognising methods that `#[async_trait]` has already rewritten.
//!
//! `#[async_trait]` on the impl expands before our attribute on the method, so we see
//! `fn f<'life0, 'async_trait>(&'life0 self, …) -> Pin<Box<dyn Future<Output = R> + Send + 'async_trait>>`
//! whose body ends in `Box::pin(async move { … })`. Like tracing's `#[instrument]`, we leave
//! the outer function alone and rewrite only that inner block.

use syn::{
    Block, Expr, ExprAsync, GenericArgument, PathArguments, ReturnType, Stmt, Type, TypeParamBound,
};

/// The inner `async move` block of an async-trait-shaped body, if that is what `block` is.
pub(crate) fn inner_async_block(block: &mut Block) -> Option<&mut ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else {
        return None;
    };
    let Expr::Path(path) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_string(), "pin".to_string()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first_mut() {
        Some(Expr::Async(inner)) if inner.capture.is_some() => Some(inner),
        _ => None,
    }
}

/// `R` in `-> Pin<Box<dyn Future<Output = R> + …>>`.
pub(crate) fn future_output(ret: &ReturnType) -> Option<&Type> {
    let ReturnType::Type(_, ty) = ret else {
        return None;
    };
    let pin = last_generic(ty, "Pin")?;
    let boxed = last_generic(pin, "Box")?;
    let Type::TraitObject(obj) = boxed else {
        return None;
    };
    obj.bounds.iter().find_map(|b| {
        let TypeParamBound::Trait(t) = b else {
            return None;
        };
        let seg = t.path.segments.last()?;
        if seg.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &seg.arguments else {
            return None;
        };
        args.args.iter().find_map(|a| match a {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

fn last_generic<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_output_and_the_inner_block() {
        let mut f: syn::ItemFn = syn::parse_quote! {
            fn f<'life0, 'async_trait>(&'life0 self) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<u8, E>> + ::core::marker::Send + 'async_trait>> {
                Box::pin(async move { Ok(1) })
            }
        };
        let out = future_output(&f.sig.output).expect("output");
        assert_eq!(quote::quote!(#out).to_string(), "Result < u8 , E >");
        assert!(inner_async_block(&mut f.block).is_some());
        let mut plain: syn::ItemFn = syn::parse_quote! { fn g() -> u8 { 1 } };
        assert!(inner_async_block(&mut plain.block).is_none());
        assert!(future_output(&plain.sig.output).is_none());
    }
}
