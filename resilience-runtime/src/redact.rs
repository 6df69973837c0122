//! Scrubbing of error text before it reaches a log line: URL user-info, query strings and
//! fragments are removed, because HTTP client errors embed the request URL and API keys (or
//! OAuth tokens, in fragments) often travel there.

const REDACTED: &str = "<redacted>";

/// Returns `text` with every URL's user-info (`user:pass@`), query string (`?key=value…`) and
/// fragment (`#…`) replaced by `<redacted>`.
///
/// What counts as a URL, each checked by this module's tests:
/// - anything with a scheme (`https://…`, any case, IPv6 hosts included): its user-info, and
///   everything from its first `?` or `#` to the next white space;
/// - a path (`/upload?…`, `/cb#…`): its query or fragment, with or without `=`, URLs inside it
///   included (`?redirect_uri=https://…`);
/// - any word with a `key=value` query or fragment (`x?key=…`);
/// - a scheme-less `user:password@host`: its user-info (look-alikes such as `10:30@office`
///   are redacted too).
///
/// Brackets, quotes and commas do not end a URL (passwords and queries may hold them), except
/// that closing ones after a query are kept so the prose around a URL still reads.
/// Percent-encoded URLs (`https%3A%2F%2F…`) are not recognised.
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
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        scrub_word(&rest[..end], &mut out);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Scrubs one white-space-delimited word into `out`.
fn scrub_word(word: &str, out: &mut String) {
    // A `://` after the first `?` or `#` is inside a query (`?redirect_uri=https://…`):
    // the word is then a relative URL, whose whole query goes.
    let (body, secret) = match (word.find("://"), word.find(['?', '#'])) {
        (Some(sep), q) if q.is_none_or(|q| sep < q) => url_parts(word, sep),
        _ => relative_parts(word),
    };
    let mut body = body.to_string();
    redact_user_info(&mut body);
    out.push_str(&body);
    if let Some(secret) = secret {
        // `?` or `#` itself stays, so the reader sees what was there.
        out.push_str(&secret[..1]);
        out.push_str(REDACTED);
        let inner = &secret[1..];
        out.push_str(
            &inner[inner
                .trim_end_matches([')', ']', '"', '\'', '>', ',', '.', ';'])
                .len()..],
        );
    }
}

/// Splits a word holding a scheme (`://` at `sep`) into what precedes its query or fragment
/// and the query or fragment itself (to the end of the word).
fn url_parts(word: &str, sep: usize) -> (&str, Option<&str>) {
    let auth_start = sep + 3;
    // The authority ends at the path, query or fragment; an IPv6 host's brackets and a
    // password's punctuation do not end it.
    let after = word[auth_start..]
        .find(['/', '?', '#'])
        .map_or(word.len(), |i| auth_start + i);
    match word[after..].find(['?', '#']) {
        Some(i) if after + i + 1 < word.len() => (&word[..after + i], Some(&word[after + i..])),
        _ => (word, None),
    }
}

/// Splits a word without a scheme: a path's query or fragment (`/x?…`, `/cb#…`), or any
/// `key=value` one.
fn relative_parts(word: &str) -> (&str, Option<&str>) {
    let Some(q) = word.find(['?', '#']) else {
        return (word, None);
    };
    let query = &word[q + 1..];
    let path = word[..q].trim_start_matches(['(', '[', '"', '\'', '<']);
    if !query.is_empty() && (path.starts_with('/') || query.contains('=')) {
        (&word[..q], Some(&word[q..]))
    } else {
        (word, None)
    }
}

/// Replaces user-info in `body`: before the last `@` of each authority after a `://`, and in
/// a scheme-less `user:password@host` before the first scheme (a `:` before the `@`; an
/// e-mail address has none, though look-alikes such as `10:30@office` go too).
fn redact_user_info(body: &mut String) {
    // Right to left, so the offsets still to visit stay valid.
    let mut search_end = body.len();
    while let Some(sep) = body[..search_end].rfind("://") {
        let auth_start = sep + 3;
        let auth_end = body[auth_start..]
            .find(['/', '?', '#'])
            .map_or(body.len(), |i| auth_start + i);
        if let Some(at) = body[auth_start..auth_end].rfind('@') {
            body.replace_range(auth_start..auth_start + at, REDACTED);
        }
        search_end = sep;
    }
    // What precedes the first URL's scheme (`db=user:pw@h,api=https://…`): the whole body
    // when there is none.
    let end = body.find("://").map_or(body.len(), |sep| {
        body[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1)
    });
    if let Some(at) = body[..end].rfind('@') {
        // From the last separator before the `:`, so `db=user:pw@h` keeps `db=`.
        let start = body[..at]
            .rfind(['(', '[', '"', '\'', '<', '=', ',', ';'])
            .map_or(0, |i| i + 1);
        if body[start..at].contains(':') {
            body.replace_range(start..at, REDACTED);
        }
    }
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
            redact("mail bob@example.com now"),
            "mail bob@example.com now"
        );
        assert_eq!(redact("  two\tspaces  "), "  two\tspaces  ");
        assert_eq!(redact("see https://h/x."), "see https://h/x.");
        assert_eq!(
            redact("«ünïcode» (http://h/?a=1)"),
            "«ünïcode» (http://h/?<redacted>)"
        );
        assert!(!redact("x https://api.example/v1?access_token=AAA&b=2 y").contains("AAA"));
    }

    #[test]
    fn nothing_secret_survives_awkward_shapes() {
        for (leaky, expected) in [
            (
                "https://h/x?fields=a,b&api_key=SECRET1",
                "https://h/x?<redacted>",
            ),
            ("https://h/x?filter[key]=SECRET2", "https://h/x?<redacted>"),
            (
                "(https://h/x?a=(1)&api_key=SECRET3)",
                "(https://h/x?<redacted>)",
            ),
            (
                "url (http://h/x?q='v'&k=\"SECRET4\")",
                "url (http://h/x?<redacted>\")",
            ),
            // Fragments carry OAuth tokens.
            (
                "https://h/cb#access_token=SECRET5",
                "https://h/cb#<redacted>",
            ),
            ("https://h#SECRET6", "https://h#<redacted>"),
            // Punctuation in a password does not end the URL.
            ("(https://user:pa(SECRET7@h/x)", "(https://<redacted>@h/x)"),
            ("'https://u:a,b'SECRET8@h/'", "'https://<redacted>@h/'"),
            // IPv6 hosts.
            (
                "http://[::1]:8080/x?SECRET9",
                "http://[::1]:8080/x?<redacted>",
            ),
            (
                "url (http://u:p@[::1]:80/x?SECRET10)",
                "url (http://<redacted>@[::1]:80/x?<redacted>)",
            ),
            // No scheme.
            (
                "connect to user:SECRET11@db.example:5432 failed",
                "connect to <redacted>@db.example:5432 failed",
            ),
            (
                "GET /upload?SECRET12 failed",
                "GET /upload?<redacted> failed",
            ),
            ("HTTPS://U:SECRET13@H/", "HTTPS://<redacted>@H/"),
            // A URL inside a query does not make the query part of its URL.
            (
                "GET /oauth/callback?redirect_uri=https://app.example/cb&code=SECRET16 failed",
                "GET /oauth/callback?<redacted> failed",
            ),
            ("x?next=http://a/&api_key=SECRET17", "x?<redacted>"),
            ("(/cb?state=https://a/&token=SECRET18)", "(/cb?<redacted>)"),
            (
                "url=(/v1/files?next=https://h/&key=SECRET19)",
                "url=(/v1/files?<redacted>)",
            ),
            ("/cb#access_token=SECRET20", "/cb#<redacted>"),
            // A scheme-less DSN before a URL in the same word.
            (
                "db=user:SECRET21@h,api=https://h/",
                "db=<redacted>@h,api=https://h/",
            ),
            // Two URLs in one word: the second's user-info, then the first's query.
            (
                "a=http://h/,b=http://u:SECRET14@g/",
                "a=http://h/,b=http://<redacted>@g/",
            ),
            ("http://h/?a=1,http://u:SECRET15@g/", "http://h/?<redacted>"),
        ] {
            let r = redact(leaky);
            assert_eq!(r, expected, "{leaky}");
            assert!(!r.contains("SECRET"), "{leaky} -> {r}");
        }
    }
}
