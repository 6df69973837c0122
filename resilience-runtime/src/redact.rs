//! Scrubbing of error text before it reaches a log line: URL query strings and user-info are
//! removed, because HTTP client errors embed the request URL and API keys often travel there.

/// Returns `text` with every URL's user-info (`user:pass@`) and every query string
/// (`?key=value…`) replaced by `<redacted>`.
///
/// ```
/// use resilience::redact;
/// assert_eq!(
///     redact("error sending request for url (https://bob:pw@api.example/v1/files?key=SECRET)"),
///     "error sending request for url (https://<redacted>@api.example/v1/files?<redacted>)"
/// );
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        // Tokens end at white space, quotes, brackets and commas: the places a URL ends in prose.
        let end = rest
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(c, '"' | '\'' | '(' | ')' | '<' | '>' | ',' | '[' | ']')
            })
            .unwrap_or(rest.len());
        if end == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        out.push_str(&scrub_token(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn scrub_token(token: &str) -> String {
    let mut t = token.to_string();
    if let Some(scheme_end) = t.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = t[auth_start..]
            .find(['/', '?', '#'])
            .map_or(t.len(), |i| auth_start + i);
        if let Some(at) = t[auth_start..auth_end].rfind('@') {
            t.replace_range(auth_start..auth_start + at, "<redacted>");
        }
    }
    if let Some(q) = t.find('?') {
        let query = &t[q + 1..];
        if query.contains('=') || t.contains("://") && !query.is_empty() {
            t.replace_range(q + 1.., "<redacted>");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn strips_queries_and_credentials() {
        assert_eq!(
            redact("GET /upload?api_key=s3cr3t failed"),
            "GET /upload?<redacted> failed"
        );
        assert_eq!(redact("http://u:p@h:1/x"), "http://<redacted>@h:1/x");
        assert_eq!(redact("http://h/x?tok"), "http://h/x?<redacted>");
        assert_eq!(redact("what? nothing here"), "what? nothing here");
        assert_eq!(redact("plain text, no url"), "plain text, no url");
        assert_eq!(
            redact("«ünïcode» (http://h/?a=1)"),
            "«ünïcode» (http://h/?<redacted>)"
        );
        assert!(!redact("x https://api.example/v1?access_token=AAA&b=2 y").contains("AAA"));
    }
}
