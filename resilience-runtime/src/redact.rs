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
        // A token ends at white space, or at a quote or bracket that may close it in prose.
        let end = token_end(rest);
        if end == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        // Inside a query, brackets, quotes and commas are ordinary characters: once a `?`
        // starts one, the secret-bearing part runs to the next white space.
        let token = &rest[..end];
        let end = match token.find('?') {
            Some(q) if rest[q + 1..].starts_with(|c: char| !c.is_whitespace()) => {
                q + 1
                    + rest[q + 1..]
                        .find(char::is_whitespace)
                        .unwrap_or(rest.len() - q - 1)
            }
            _ => end,
        };
        out.push_str(&scrub_token(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn token_end(s: &str) -> usize {
    s.find(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '(' | ')' | '<' | '>' | ',' | '[' | ']')
    })
    .unwrap_or(s.len())
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
            // Keep a closing bracket the URL sat in, so the prose around it still reads.
            let keep = query.len()
                - query
                    .trim_end_matches([')', ']', '"', '\'', '>', ','])
                    .len();
            let tail = t[t.len() - keep..].to_string();
            t.replace_range(q + 1.., "<redacted>");
            t.push_str(&tail);
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
        for leaky in [
            "https://h/x?fields=a,b&api_key=SECRET1",
            "https://h/x?filter[key]=SECRET2",
            "(https://h/x?a=(1)&api_key=SECRET3)",
            "url (http://h/x?q='v'&k=\"SECRET4\")",
        ] {
            let r = redact(leaky);
            assert!(!r.contains("SECRET"), "{leaky} -> {r}");
            assert!(r.contains("<redacted>"), "{r}");
        }
    }
}
