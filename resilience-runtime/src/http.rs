//! HTTP errors that keep what `error_for_status()` drops: the status and the `Retry-After`.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::classify::{Classify, ErrorClass, classify_status};

/// A non-success HTTP answer: the status and the parsed `Retry-After`. It classifies itself
/// with [`classify_status`] (429 → `Throttled` with the `Retry-After`; 408, 500, 502, 503 and
/// 504 → `Transient`; every other status, other 5xx such as 501 or 507 included →
/// `Permanent`). Its text never contains the URL.
///
/// ```
/// use resilience::{Classify, ErrorClass, HttpError};
/// use std::time::Duration;
///
/// let e = HttpError::from_header(429, Some("3"));
/// assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
/// assert_eq!(e.classify(), ErrorClass::Throttled { retry_after: Some(Duration::from_secs(3)) });
/// assert_eq!(e.to_string(), "HTTP 429 (retry after 3s)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpError {
    status: u16,
    retry_after: Option<Duration>,
}

impl HttpError {
    /// An error for `status` with an already parsed `Retry-After`.
    #[must_use]
    pub fn new(status: u16, retry_after: Option<Duration>) -> Self {
        HttpError {
            status,
            retry_after,
        }
    }

    /// An error for `status` with the raw `Retry-After` header value, if any (delta-seconds or
    /// an HTTP date; an unparsable value is ignored). A date is read against this machine's
    /// clock: with reqwest, `from_headers` reads it against the response's `Date`, as the
    /// provider's clock had it.
    #[must_use]
    pub fn from_header(status: u16, retry_after: Option<&str>) -> Self {
        HttpError {
            status,
            retry_after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The provider's `Retry-After`, when it sent a valid one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(ra) = self.retry_after {
            write!(f, " (retry after {}s)", ra.as_secs_f64())?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {}

impl Classify for HttpError {
    fn classify(&self) -> ErrorClass {
        classify_status(self.status, self.retry_after)
    }
    fn log_summary(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.to_string()))
    }
    /// The `Retry-After` of any status: a `503`'s as well as a `429`'s.
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// Parses a `Retry-After` value: delta-seconds (`"120"`, decimals tolerated) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`; a wrong day name is overlooked), relative to `now`. A
/// date in the past means "now" (zero). Anything else is `None`.
///
/// ```
/// use resilience::parse_retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50
/// assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// assert_eq!(parse_retry_after("1e30", now), Some(Duration::MAX));
/// ```
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        // Too large for a `Duration` is still "wait longer than anyone will": the call then
        // gives up (it is above the max delay) instead of retrying as if no header came. So is
        // a number too large for an `f64` (`1e309`, 400 digits), which parses as infinity; the
        // words `inf` and `NaN` are no number of seconds.
        let numeric = v
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+'));
        return (secs >= 0.0 && (secs.is_finite() || numeric))
            .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let at = parse_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP date in any of its three formats; an IMF-fixdate whose day name is wrong for its
/// date too (the name is redundant: a provider that gets it wrong still named a time).
fn parse_date(v: &str) -> Option<SystemTime> {
    if let Ok(at) = httpdate::parse_http_date(v) {
        return Some(at);
    }
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let rest = v
        .get(3..)
        .filter(|r| v.len() == 29 && r.starts_with(", "))?;
    if !DAYS.contains(&&v[..3]) {
        return None;
    }
    DAYS.iter()
        .find_map(|day| httpdate::parse_http_date(&format!("{day}{rest}")).ok())
}

#[cfg(feature = "reqwest")]
mod reqwest_impls {
    use super::*;

    /// Turns a non-success `reqwest::Response` into an [`HttpError`] that keeps the status and
    /// the `Retry-After` header, which `error_for_status()` drops.
    ///
    /// ```
    /// use resilience::{Classify, ErrorClass, ResponseExt};
    /// use std::time::Duration;
    ///
    /// // A provider's answers, made here in memory: `client.post(url).send().await?` in a call.
    /// let answer = |status| {
    ///     let answer = http::Response::builder().status(status).header("retry-after", "3");
    ///     reqwest::Response::from(answer.body("").unwrap())
    /// };
    /// assert!(answer(200).check_status().is_ok());
    /// let throttled = answer(429).check_status().unwrap_err();
    /// let wait = Some(Duration::from_secs(3));
    /// assert_eq!(throttled.classify(), ErrorClass::Throttled { retry_after: wait });
    /// assert_eq!(answer(301).check_status().unwrap_err().classify(), ErrorClass::Permanent);
    /// ```
    pub trait ResponseExt: Sized + sealed::Sealed {
        /// `Ok(self)` for 2xx, 304 and a 101 that switches protocols (with an `Upgrade`
        /// header, as reqwest's `upgrade()` asks for), else the status and `Retry-After` as an
        /// [`HttpError`] (an HTTP date read against the response's `Date` and `Age`, as
        /// [`HttpError::from_headers`] reads it): a 3xx that reqwest did not follow (under
        /// `redirect::Policy::none()`, with a `Location` that does not parse, or a 307 or 308
        /// for a streamed body, which cannot be sent again) is permanent, not a success, as the
        /// request never reached its destination. Unlike `error_for_status()`, which passes
        /// every 3xx on.
        fn check_status(self) -> Result<Self, HttpError>;
    }

    /// Sealed: only reqwest's `Response` has it, so a method may be added without breaking
    /// implementations elsewhere.
    mod sealed {
        pub trait Sealed {}
        impl Sealed for reqwest::Response {}
    }

    impl ResponseExt for reqwest::Response {
        fn check_status(self) -> Result<Self, HttpError> {
            let status = self.status().as_u16();
            // Not `is_client_error() || is_server_error()`: reqwest takes any status up to
            // 999, and a 600 is no success. Nor is a redirect left unfollowed: an upload
            // answered with one was not made (a 304 answers a conditional request, which asked
            // for it).
            //
            // Of the 1xx, only a 101 reaches here (hyper reads past the others), and only one
            // that switches protocols as the request asked (`Upgrade`, RFC 9110 15.2.2, for
            // reqwest's `upgrade()`) passes: a 101 to a plain POST was an upload with no answer
            // at all, and passed as a success, recorded as done.
            let upgraded = status == 101 && self.headers().contains_key(reqwest::header::UPGRADE);
            if (200..300).contains(&status) || status == 304 || upgraded {
                return Ok(self);
            }
            Err(HttpError::from_headers(status, self.headers()))
        }
    }

    impl HttpError {
        /// An error for `status` with the response's headers: its `Retry-After` (delta-seconds
        /// or an HTTP date; an unparsable value is ignored), a date read against the
        /// response's `Date` (when it has one, or several alike) plus its `Age`, else against
        /// this machine's clock. What [`check_status`] makes; for a provider's error body,
        /// make it before reading the body, which consumes the response.
        ///
        /// [`check_status`]: ResponseExt::check_status
        ///
        /// ```
        /// # use std::time::Duration;
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// # let answer = http::Response::builder().status(503).header("retry-after", "7");
        /// # let resp = reqwest::Response::from(answer.body("overloaded, try again")?);
        /// let status = resp.status();
        /// let passed = status.is_success() || status.as_u16() == 304; // as `check_status` has it (but for an upgrade's 101)
        /// if !passed {
        ///     let error = resilience::HttpError::from_headers(status.as_u16(), resp.headers());
        ///     let body = resp.text().await?; // the provider's explanation, for your error
        ///     assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        ///     assert_eq!(body, "overloaded, try again");
        /// }
        /// # Ok(()) }
        /// ```
        #[must_use]
        pub fn from_headers(status: u16, headers: &reqwest::header::HeaderMap) -> Self {
            use reqwest::header::{AGE, DATE, RETRY_AFTER};
            let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
            // An HTTP-date `Retry-After` is a time on the provider's clock: read against the
            // time its answer was made (`Date`), so that a clock of ours that is off by
            // minutes neither drops the wait nor stretches it past the max delay. `Date` is a
            // singleton: two that differ (a proxy's appended to the origin's) say nothing
            // sure about the provider's clock, and ours is used.
            let mut dates = headers.get_all(DATE).iter();
            let first = dates.next();
            let date = first
                .filter(|&d| dates.all(|other| other == d))
                .and_then(|d| d.to_str().ok())
                .and_then(|d| parse_date(d.trim()));
            // A cache that answers with a stored response keeps the origin's `Date` and says
            // how long ago that was in `Age` (RFC 9111 §4.2.3, §5.1: its first member; an
            // invalid one is ignored): the provider's clock now reads `Date` + `Age`.
            let age = header(AGE)
                .and_then(|a| a.split(',').next()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::ZERO);
            let now = date
                .map(|d| d.checked_add(age).unwrap_or(d))
                .unwrap_or_else(SystemTime::now);
            let ra = header(RETRY_AFTER).and_then(|v| parse_retry_after(v, now));
            HttpError::new(status, ra)
        }
    }

    /// Connect errors, timeouts and failures while sending or reading the response, its body
    /// included, are transient, but for a request body streamed from a local source that fails
    /// with a local kind of I/O error (not found, permission denied, …), which is permanent
    /// over HTTP/1.1 (over HTTP/2, reqwest's default over TLS, hyper drops the body's error,
    /// and the failure stays transient); a status (from `error_for_status()`) is classified by
    /// [`classify_status`]; builder and redirect errors, and a body that is not the JSON
    /// `json()` expected, are permanent. JSON that ends early, an empty body included, is
    /// transient: a body cut off where no length was sent looks whole here. Use
    /// [`ResponseExt::check_status`] instead of `error_for_status()` to keep `Retry-After`.
    impl Classify for reqwest::Error {
        fn classify(&self) -> ErrorClass {
            if let Some(s) = self.status() {
                return classify_status(s.as_u16(), None);
            }
            // reqwest reports every failure of `bytes()`, `text()` and `json()` as a decode
            // error, a connection dropped or timed out mid-body included, so `is_decode()`
            // alone would make those permanent: only bad JSON is.
            if self.is_builder()
                || self.is_redirect()
                || (self.is_decode() && bad_json(self))
                || local_io(self)
            {
                return ErrorClass::Permanent;
            }
            ErrorClass::Transient
        }

        fn log_summary(&self) -> Option<Cow<'_, str>> {
            // reqwest's text embeds the URL, raw: the runtime redacts its query and user-info
            // before logging. Code that logs this summary itself must call `redact` too.
            //
            // A status error's text (`error_for_status()`) also repeats the provider's own
            // reason phrase when it is not the standard one (`401 invalid key sk-…`): free
            // text of the provider's, which may echo what was sent. Said here by the code and
            // its standard reason, as reqwest says a status that came without its own phrase.
            let Some(status) = self.status() else {
                return Some(Cow::Owned(with_causes(self)));
            };
            let side = if status.is_client_error() {
                "client"
            } else {
                "server"
            };
            let mut text = format!("HTTP status {side} error ({status})");
            if let Some(url) = self.url() {
                use std::fmt::Write;
                let _ = write!(text, " for url ({url})");
            }
            Some(Cow::Owned(text))
        }
    }

    /// A request body streamed from a local source that failed with a kind of I/O error only
    /// local I/O gives: a file that cannot be read. reqwest reports it as a request error
    /// holding a body error (its own `reqwest::Error`) whose source is the stream's
    /// `io::Error`; only that shape counts. Elsewhere in a chain the same kinds mean something
    /// else: hyper reports a garbled chunked response body as `InvalidInput`, and a missing
    /// Unix socket or a full connection-tracking table fails a connect with `NotFound` or
    /// `PermissionDenied`, all of which stay transient. No retry mends a bad local body, and it
    /// says nothing about the provider. Over HTTP/2 (reqwest's `http2` feature), hyper drops
    /// the body's error and reports the request as failed without it: transient there.
    fn local_io(e: &reqwest::Error) -> bool {
        use std::io::ErrorKind::*;
        if e.is_connect() || e.is_decode() {
            return false;
        }
        std::iter::successors(std::error::Error::source(e), |s| s.source())
            .filter_map(|s| s.downcast_ref::<reqwest::Error>())
            .filter(|inner| inner.is_body())
            .filter_map(|inner| std::error::Error::source(inner)?.downcast_ref::<std::io::Error>())
            .any(|io| {
                matches!(
                    io.kind(),
                    NotFound
                        | PermissionDenied
                        | InvalidInput
                        | IsADirectory
                        | NotADirectory
                        | ReadOnlyFilesystem
                        | FileTooLarge
                        | StorageFull
                        | Unsupported
                        | InvalidFilename
                )
            })
    }

    /// reqwest's text and what it wraps: its own says only `error sending request for url (…)`,
    /// and an operator reading the retry line cannot tell a refused connection from a reset one or
    /// a timeout. The causes' texts are joined with `: `, each left out that the text so far
    /// already holds (hyper's and the OS's repeat each other), at most eight; serde_json's for
    /// a body of the wrong shape by where it went wrong only. Redacted with the rest by the
    /// runtime before it is logged.
    fn with_causes(err: &reqwest::Error) -> String {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        for _ in 0..8 {
            let Some(cause) = source else { break };
            source = cause.source();
            let said = if let Some(json) = cause.downcast_ref::<serde_json::Error>()
                && json.is_data()
            {
                // A body of another shape than the type's: serde_json's text quotes the value
                // it met (`invalid type: string "…"`, an unknown variant or field), the
                // provider's own text, which may echo what was sent. Where, not what.
                format!(
                    "JSON not of the type expected at line {} column {}",
                    json.line(),
                    json.column()
                )
            } else if let Some(io) = cause.downcast_ref::<std::io::Error>()
                && io.get_ref().is_some()
            {
                // A message someone wrote into an `io::Error` (a request body stream's, a
                // custom connector's or resolver's, a TLS library's): it may carry a path, a
                // peer or a token, so, as an `io::Error`'s own summary says: one of ours by
                // its summary, else the kind. Its sources are the message's error's: not
                // followed. (The OS's texts, `Connection refused (os error 111)`, and std's
                // own fixed ones carry no message, and are kept.)
                source = None;
                crate::Classify::log_summary(io).map_or_else(String::new, Cow::into_owned)
            } else {
                cause.to_string()
            };
            if !said.is_empty() && !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
        }
        text
    }

    /// A body that was read whole and is not the JSON expected. Not a read cut short, nor JSON
    /// that ends early (a body cut off where no length was sent), which are transient.
    fn bad_json(e: &reqwest::Error) -> bool {
        std::iter::successors(std::error::Error::source(e), |s| s.source())
            .find_map(|s| s.downcast_ref::<serde_json::Error>())
            .is_some_and(|json| !json.is_io() && !json.is_eof())
    }
}

#[cfg(feature = "reqwest")]
pub use reqwest_impls::ResponseExt;

/// reqwest-middleware's error (0.5), as the `reqwest-middleware` feature makes it: a method on
/// its client (`ClientWithMiddleware`) returns `reqwest_middleware::Result` as it is.
#[cfg(feature = "reqwest-middleware")]
mod middleware_impls {
    use super::*;
    use crate::ResilienceError;
    use reqwest_middleware::Error;

    /// The client's own error (`Error::Reqwest`) as a `reqwest::Error` is classified: a
    /// timeout, a refused connection or a dropped body transient, a status from
    /// `error_for_status()` by its code; a middleware's (`Error::Middleware`, an
    /// `anyhow::Error`) by the first error in its chain that is one we know, as an
    /// `anyhow::Error` is (an [`HttpError`] from `check_status()`, a [`ResilienceError`], an
    /// `io::Error`, this error again under a middleware's wrapper), permanent when none is.
    ///
    /// Its variants are `#[error(transparent)]`, so the `reqwest::Error` inside is not in the
    /// chain of an error that wraps this one, only its source: a timeout's (a type private to
    /// reqwest) left nothing known there, permanent. This error, in such a chain, is found and
    /// classified here.
    ///
    /// ```
    /// use resilience::{Classify, ErrorClass, HttpError, ResilienceError};
    ///
    /// let throttled: reqwest_middleware::Error = HttpError::from_header(429, Some("2")).into();
    /// assert!(matches!(throttled.classify(), ErrorClass::Throttled { retry_after: Some(_) }));
    ///
    /// let open: reqwest_middleware::Error =
    ///     ResilienceError::CircuitOpen { provider: "kimi", retry_in: None }.into();
    /// assert_eq!(open.classify(), ErrorClass::Permanent);
    /// ```
    impl Classify for Error {
        fn classify(&self) -> ErrorClass {
            match self {
                Error::Reqwest(e) => e.classify(),
                Error::Middleware(e) => e.classify(),
            }
        }

        fn log_summary(&self) -> Option<Cow<'_, str>> {
            match self {
                Error::Reqwest(e) => e.log_summary(),
                Error::Middleware(e) => e.log_summary(),
            }
        }

        fn retry_after(&self) -> Option<Duration> {
            match self {
                Error::Reqwest(e) => Classify::retry_after(e),
                Error::Middleware(e) => Classify::retry_after(e),
            }
        }
    }

    /// So that a `#[resilient]` method may return `reqwest_middleware::Result`: a rejection by
    /// an open breaker, a deadline or a drain comes back as `Error::Middleware`, the
    /// [`ResilienceError`] inside (`downcast_ref::<ResilienceError>()` on it), and classifies
    /// as it does.
    impl From<ResilienceError> for Error {
        fn from(e: ResilienceError) -> Self {
            Error::Middleware(anyhow::Error::new(e))
        }
    }

    /// So that `check_status()?` works in a method that returns `reqwest_middleware::Result`:
    /// the status and its `Retry-After` are kept (`Error::Middleware`, the [`HttpError`]
    /// inside), where `error_for_status()` drops the header.
    impl From<HttpError> for Error {
        fn from(e: HttpError) -> Self {
            Error::Middleware(anyhow::Error::new(e))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// reqwest-retry's error inside this one: said once, also where this error is in
        /// turn inside an `anyhow::Error` whose chain shows reqwest-retry's words again.
        #[test]
        fn retries_inside_are_said_once_and_the_class_is_unchanged() {
            let said = "HTTP 503 (after 3 retries by a middleware inside the attempt)";
            let make = || {
                Error::Middleware(
                    anyhow::Error::new(HttpError::from_header(503, None))
                        .context("Request failed after 3 retries"),
                )
            };
            let e = make();
            assert_eq!(e.classify(), ErrorClass::Transient);
            assert_eq!(e.log_summary().as_deref(), Some(said));
            let outer = anyhow::Error::new(make()).context("uploading a.txt");
            assert_eq!(outer.classify(), ErrorClass::Transient);
            assert_eq!(outer.log_summary().as_deref(), Some(said));
            // Another layer of retries around it: the note of the error that says its own.
            let around = anyhow::Error::new(make()).context("Request failed after 5 retries");
            assert_eq!(around.log_summary().as_deref(), Some(said));
            let plain = Error::Middleware(anyhow::Error::new(HttpError::from_header(503, None)));
            assert_eq!(plain.log_summary().as_deref(), Some("HTTP 503"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_edge_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        for garbage in ["-1", "NaN", "inf", "-inf", "", "1 2", "soon"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
        assert_eq!(parse_retry_after("-0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        // Past `f64` too (infinity): a number of seconds all the same, unlike the word `inf`.
        let digits = "9".repeat(400);
        for huge in ["18446744073709551616", "1e20", "1e309", "+1E400", &digits] {
            assert_eq!(parse_retry_after(huge, now), Some(Duration::MAX), "{huge}");
        }
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past"
        );
    }

    /// An HTTP-date `Retry-After` is a time on the provider's clock, and the
    /// response says what that clock read when it answered (`Date`, RFC 9110 §6.6.1). Read
    /// against our own clock instead, a provider 10 minutes ahead asking for 5 s got 605 s
    /// (above any max delay: the call gave up at once), and one 10 minutes behind got 0 (the
    /// retry came at once, on plain backoff).
    #[cfg(feature = "reqwest")]
    #[tokio::test]
    async fn an_http_date_retry_after_is_read_against_the_responses_date() {
        use std::io::{Read, Write};
        for skew in [600i64, -600] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let theirs = if skew > 0 {
                SystemTime::now() + Duration::from_secs(skew as u64)
            } else {
                SystemTime::now() - Duration::from_secs((-skew) as u64)
            };
            let answer = format!(
                "HTTP/1.1 429 Too Many Requests\r\nDate: {}\r\nRetry-After: {}\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n",
                httpdate::fmt_http_date(theirs),
                httpdate::fmt_http_date(theirs + Duration::from_secs(5)),
            );
            std::thread::spawn(move || {
                let (mut stream, _) = listener.accept().unwrap();
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write_all(answer.as_bytes());
            });
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let resp = client.get(format!("http://{addr}/")).send().await.unwrap();
            let e = resp.check_status().unwrap_err();
            let ra = e.retry_after().expect("a valid date");
            assert!(
                (Duration::from_secs(4)..=Duration::from_secs(5)).contains(&ra),
                "provider clock {skew:+} s off ours: Retry-After read as {ra:?}, not 5 s"
            );
        }
    }

    /// `from_headers`, for code that reads the provider's body: the same reading as
    /// `check_status`, from the headers alone; without a `Date` (or with one that does not
    /// parse), our clock.
    #[cfg(feature = "reqwest")]
    #[test]
    fn from_headers_reads_a_date_against_the_responses_date() {
        use reqwest::header::{DATE, HeaderMap, HeaderValue, RETRY_AFTER};
        let theirs = SystemTime::now() + Duration::from_secs(3600);
        let mut headers = HeaderMap::new();
        let date = |t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap();
        headers.insert(DATE, date(theirs));
        headers.insert(RETRY_AFTER, date(theirs + Duration::from_secs(30)));
        let e = HttpError::from_headers(503, &headers);
        assert_eq!(e.status(), 503);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
        // A `Date` that is no date: the wait is read against our clock, an hour more.
        headers.insert(DATE, HeaderValue::from_static("yesterday"));
        let ra = HttpError::from_headers(503, &headers)
            .retry_after()
            .unwrap();
        assert!(ra > Duration::from_secs(3600), "{ra:?}");
        // Seconds do not depend on any clock.
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            HttpError::from_headers(429, &headers).retry_after(),
            Some(Duration::from_secs(7))
        );
    }

    /// A cache's stored answer keeps the origin's `Date` and says its age in `Age`: the
    /// provider's clock now reads `Date` + `Age`, and a wait that has passed in the cache is
    /// not waited again. Two `Date`s that differ leave our clock; so does none.
    #[cfg(feature = "reqwest")]
    #[test]
    fn from_headers_counts_a_cached_answers_age_and_distrusts_two_dates() {
        use reqwest::header::{AGE, DATE, HeaderMap, HeaderValue, RETRY_AFTER};
        let date = |t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap();
        let theirs = SystemTime::now() + Duration::from_secs(3600);
        let mut headers = HeaderMap::new();
        headers.insert(DATE, date(theirs));
        headers.insert(RETRY_AFTER, date(theirs + Duration::from_secs(30)));
        headers.insert(AGE, HeaderValue::from_static("20"));
        let ra = |h: &HeaderMap| HttpError::from_headers(429, h).retry_after();
        assert_eq!(ra(&headers), Some(Duration::from_secs(10)));
        headers.insert(AGE, HeaderValue::from_static("25, 99"));
        assert_eq!(
            ra(&headers),
            Some(Duration::from_secs(5)),
            "the first member"
        );
        headers.insert(AGE, HeaderValue::from_static("600"));
        assert_eq!(
            ra(&headers),
            Some(Duration::ZERO),
            "the wait passed in the cache"
        );
        headers.insert(AGE, HeaderValue::from_static("-5"));
        assert_eq!(
            ra(&headers),
            Some(Duration::from_secs(30)),
            "an invalid age is ignored"
        );
        headers.insert(AGE, HeaderValue::from_static("18446744073709551615"));
        assert!(ra(&headers).is_some(), "no overflow panic");
        headers.remove(AGE);
        // The same `Date` twice is one `Date`.
        headers.append(DATE, date(theirs));
        assert_eq!(ra(&headers), Some(Duration::from_secs(30)));
        // A second, different `Date` (a proxy's, an hour behind): our clock, an hour more.
        headers.append(DATE, date(theirs - Duration::from_secs(3600)));
        assert!(ra(&headers).unwrap() > Duration::from_secs(3600));
        // A `Date` with the wrong day name is read as leniently as a `Retry-After`.
        let mut headers = HeaderMap::new();
        headers.insert(
            DATE,
            HeaderValue::from_static("Thu, 21 Oct 2015 07:27:50 GMT"),
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(ra(&headers), Some(Duration::from_secs(10)));
    }

    /// No slicing of a non-ASCII value panics, and a date not valid for its month stays no
    /// date whatever day name is tried.
    #[test]
    fn a_date_that_is_not_one_stays_none_without_panicking() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        for v in [
            "Tu\u{e9}, 21 Oct 2015 07:28:00 GM", // 29 bytes, a char across byte 3
            "W\u{e9}, 21 Oct 2015 07:28:00 GMT", // 29 bytes, "W\u{e9}" is the name
            "Wed, 21 Oct 2015 07:28:00 G\u{e9}",
            "\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}x",
            "Mon, 31 Feb 2015 07:28:00 GMT",
            "wed, 21 Oct 2015 07:28:00 GMT", // HTTP-date is case-sensitive (RFC 9110 §5.6.7)
        ] {
            assert_eq!(parse_retry_after(v, now), None, "{v:?}");
        }
    }

    /// The day name of an IMF-fixdate is redundant (the date says which day it
    /// is); a provider that gets it wrong still asked for a time, and dropping the header
    /// retried a 429 on plain backoff (full jitter: at once, as likely as not).
    #[test]
    fn a_retry_after_date_with_the_wrong_day_name_is_still_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470); // Wed 07:27:50
        assert_eq!(
            parse_retry_after("Thu, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        // Still no date: a bad day of the month, an unknown day name.
        assert_eq!(
            parse_retry_after("Thu, 32 Oct 2015 07:28:00 GMT", now),
            None
        );
        assert_eq!(
            parse_retry_after("Xyz, 21 Oct 2015 07:28:00 GMT", now),
            None
        );
    }

    /// A provider's own reason phrase (`HTTP/1.1 401 invalid key sk-…`) is free text of the
    /// provider's, which reqwest's `error_for_status()` text repeats: the summary names the
    /// status by its code and standard reason instead, and keeps the URL (redacted when
    /// logged).
    #[cfg(feature = "reqwest")]
    #[tokio::test]
    async fn a_status_error_logs_no_reason_phrase_of_the_providers() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(2) {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 401 invalid key sk-REASON-SECRET\r\ncontent-length: 0\r\n\
                      connection: close\r\n\r\n",
                );
            }
        });
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("http://{addr}/v1/files?api_key=QUERY-SECRET");
        let err = client
            .get(&url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_err();
        // What reqwest itself says, for the record.
        assert!(err.to_string().contains("sk-REASON-SECRET"), "{err}");
        let summary = err.log_summary().unwrap();
        assert!(!summary.contains("REASON-SECRET"), "{summary}");
        assert_eq!(
            crate::redact(&summary),
            format!(
                "HTTP status client error (401 Unauthorized) for url (http://{addr}/v1/files?<redacted>)"
            )
        );
        assert_eq!(err.classify(), ErrorClass::Permanent);
    }

    /// A request that never got an answer is logged with what it met: reqwest's own text
    /// says only `error sending request for url (…)`, the same for a refused connection, a
    /// reset one and a timeout.
    #[cfg(feature = "reqwest")]
    #[tokio::test]
    async fn a_connection_error_is_logged_with_its_cause() {
        // A port that was ours a moment ago: nothing listens there now.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let err = client
            .get(format!("http://{addr}/v1/files?api_key=QUERY-SECRET"))
            .send()
            .await
            .unwrap_err();
        let summary = crate::redact(&err.log_summary().unwrap());
        assert!(
            summary.starts_with("error sending request for url"),
            "{summary}"
        );
        assert!(summary.to_lowercase().contains("refused"), "{summary}");
        assert!(!summary.contains("QUERY-SECRET"), "{summary}");
        assert_eq!(err.classify(), ErrorClass::Transient);
    }

    /// A redirect reqwest did not follow comes back as the answer, and the request never
    /// reached its destination: one under `redirect::Policy::none()`, one whose `Location`
    /// does not parse, and a 307 or 308 for a request body streamed from a file, which cannot
    /// be sent twice (`tests/runtime.rs`). Passed on as a success, a caller that reads no body
    /// (a `PUT` answered with `200` and nothing else, as object stores do) recorded the upload
    /// as done, and one that reads JSON found the empty body "cut short": transient, retried
    /// into the same redirect and counted against the breaker. A 304 answers a conditional
    /// request, which asked for it: still passed on.
    #[cfg(feature = "reqwest")]
    #[tokio::test]
    async fn a_redirect_reqwest_did_not_follow_is_no_success() {
        use std::io::{Read, Write};
        let answers = [
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\n",
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: /elsewhere\r\n",
            "HTTP/1.1 302 Found\r\nLocation: http://[::1\r\n",
            "HTTP/1.1 304 Not Modified\r\n",
        ];
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write_all(
                    format!("{answer}content-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
                );
            }
        });
        let unfollowed = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for (status, client) in [(307, &unfollowed), (308, &unfollowed), (302, &client)] {
            let url = format!("http://{addr}/upload");
            let resp = client.put(url).body("file").send().await.unwrap();
            assert_eq!(resp.status().as_u16(), status);
            let e = resp.check_status().expect_err("a redirect not followed");
            assert_eq!((e.status(), e.classify()), (status, ErrorClass::Permanent));
        }
        let resp = client.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(resp.check_status().unwrap().status().as_u16(), 304);
    }
}
