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
    // A query that qualifies on its own (after a path, or with `=`) goes whole, URLs inside
    // it included (`?redirect_uri=https://…&code=…`). Otherwise a URL in the word has its
    // own query or fragment removed (`{"q":"what?","url":"https://h/x?…"}`).
    let (body, secret) = match (relative_parts(word), word.find("://")) {
        (found @ (_, Some(_)), _) => found,
        (_, Some(sep)) => url_parts(word, sep),
        (plain, None) => plain,
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
                .trim_end_matches([')', ']', '}', '"', '\'', '>', ',', '.', ';'])
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
    // Every `?` and `#`, not only the first: prose may come before the path
    // (`{"q":"why?","next":"/a?…"}`).
    for (q, _) in word.match_indices(['?', '#']) {
        let query = &word[q + 1..];
        let before = &word[..q];
        let path = before
            .rfind(['(', '[', '{', '"', '\'', '<', ',', ':', '='])
            .map_or(before, |i| &before[i + 1..]);
        if !query.is_empty() && (path.starts_with('/') || query.contains('=')) {
            return (before, Some(&word[q..]));
        }
    }
    (word, None)
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
    // Scheme-less `user:password@host`, every one in the word, right to left: from the user
    // name before the nearest `:` to the `@`, whatever the password holds (`=`, `,`, `/`, `@`…).
    let mut end = body.len();
    while let Some(at) = body[..end].rfind('@') {
        end = at;
        let Some(colon) = body[..at].rfind(':') else {
            break; // no `:` before this `@`, nor before any earlier one
        };
        let password = &body[colon + 1..at];
        // A scheme (`https://<redacted>@h`) or a URL's port and path (`h:8080/a@b`).
        let after_digits = password.trim_start_matches(|c: char| c.is_ascii_digit());
        if password.starts_with('/')
            || (after_digits.len() < password.len() && after_digits.starts_with('/'))
        {
            continue;
        }
        // A field that starts after the `:` (`time=10:30,email=bob@…`): not one credential.
        if let Some(i) = password.find([',', ';'])
            && password[i + 1..].contains('=')
        {
            continue;
        }
        let user_start = body[..colon]
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        // No user name (`:pw@h`, `x=:pw@h`) only where a field starts: not after a quote
        // (`"email":"bob@…"`) nor in a Rust path (`a::b@c`).
        let field_start = body[..colon]
            .chars()
            .next_back()
            .is_none_or(|c| matches!(c, '=' | ',' | ';' | '(' | '['));
        if user_start == colon && !field_start {
            continue;
        }
        body.replace_range(user_start..at, REDACTED);
        end = user_start;
    }
}

#[cfg(test)]
mod tests {
    use super::redact;
    use rand::{Rng, SeedableRng};

    /// Random words from the characters the scanner cares about, multi-byte ones included:
    /// no panic, and a password, query or fragment placed around them never survives.
    #[test]
    fn random_text_never_panics_and_never_keeps_a_placed_secret() {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', '9', '.', '-', '_', ':', '/', '?', '#', '@', '=', '&', ',', ';', '"',
            '\'', '(', ')', '[', ']', '{', '}', '<', '>', '%', ' ', '\t', 'é', '€', '日', '😀',
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let word = |rng: &mut rand::rngs::StdRng| -> String {
            let n = rng.random_range(0..12);
            (0..n)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
                .collect()
        };
        for _ in 0..20_000 {
            let (a, b) = (word(&mut rng), word(&mut rng));
            let _ = redact(&format!("{a}{b}"));
            for placed in [
                format!("{a} https://u:SECRET@h/{b}"),
                format!("{a} https://h/x?k=SECRET{b}"),
                format!("{a} https://h/x#SECRET{b}"),
                format!("{a} user:SECRET@db {b}"),
            ] {
                let r = redact(&placed);
                assert!(!r.contains("SECRET"), "{placed:?} -> {r:?}");
            }
        }
    }

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
            redact("{\"email\":\"bob@example.com\"}"),
            "{\"email\":\"bob@example.com\"}"
        );
        assert_eq!(redact("see http://h:8080/a@b"), "see http://h:8080/a@b");
        for prose in [
            "time=10:30,email=bob@example.com",
            "ts=10:30:00,user=bob@example.com",
            "at module::Type::method@0x1234",
            "a::b@c",
        ] {
            assert_eq!(redact(prose), prose);
        }
        assert_eq!(
            redact("Connection refused (os error 111)"),
            "Connection refused (os error 111)"
        );
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
            // Scheme-less DSNs, anywhere in a word, whatever their passwords hold.
            (
                "db=user:SECRET21@h,api=https://h/",
                "db=<redacted>@h,api=https://h/",
            ),
            (
                "api=https://h/,db=user:SECRET22@h",
                "api=https://h/,db=<redacted>@h",
            ),
            (
                "a=u:SECRET23@h,b=v:SECRET24@g",
                "a=<redacted>@h,b=<redacted>@g",
            ),
            ("user:p=SECRET25@db.example", "<redacted>@db.example"),
            ("user:pa,SECRET26@db", "<redacted>@db"),
            ("user:pa;SECRET27@db", "<redacted>@db"),
            // A `?` or `#` in prose before a URL in the same word (compact JSON).
            (
                "{\"q\":\"what?\",\"url\":\"https://h/x?SECRET28\"}",
                "{\"q\":\"what?\",\"url\":\"https://h/x?<redacted>\"}",
            ),
            (
                "{\"msg\":\"done?\",\"url\":\"https://h/cb#SECRET29\"}",
                "{\"msg\":\"done?\",\"url\":\"https://h/cb#<redacted>\"}",
            ),
            ("what?https://h/x?SECRET30", "what?https://h/x?<redacted>"),
            (
                "{\"q\":\"why?\",\"next\":\"/a?SECRET32\"}",
                "{\"q\":\"why?\",\"next\":\"/a?<redacted>\"}",
            ),
            // Passwords holding `@` or `/`, no user name, a non-ASCII user name.
            ("u:p@SECRET33@h", "<redacted>@h"),
            ("user:SEC/RET34@db", "<redacted>@db"),
            (":SECRET35@h", "<redacted>@h"),
            ("x=:SECRET36@h", "x=<redacted>@h"),
            ("ü:SECRET37@h", "<redacted>@h"),
            ("user:SECRET38@[::1]:5432/db", "<redacted>@[::1]:5432/db"),
            ("id#https://h/cb#SECRET31", "id#https://h/cb#<redacted>"),
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
