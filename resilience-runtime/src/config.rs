//! Settings: built-in defaults, code ([`Settings`]), and environment variables, per provider.
//!
//! Precedence, highest first (a more specific setting always wins, and the environment beats
//! code at the same level, so operators can override what the code chose without a rebuild):
//!
//! 1. `RESILIENCE_<PROVIDER>_<NAME>` (per-provider environment variable)
//! 2. [`Builder::provider`](crate::Builder::provider) / [`configure`](crate::configure) (per-provider code)
//! 3. `<NAME>` (global environment variable, e.g. `RETRY_MAX_ATTEMPTS`)
//! 4. [`Builder::defaults`](crate::Builder::defaults) (global code)
//! 5. the built-in default (the original plan's values)
//!
//! A provider's configuration is resolved once, when the provider is first used, and is fixed
//! from then on: the per-call hot path reads plain fields, never a lock.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use crate::error::ConfigProblem;

/// How the backoff delay is randomised. Full jitter is the default (AWS's analysis shows it
/// spreads retries of many clients best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly the exponential delay.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d/2, d]`.
    Equal,
    /// Uniform in `[base, 3 × previous delay]`, capped at the maximum delay.
    Decorrelated,
}

impl Jitter {
    /// The name used in `RETRY_JITTER` and in `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names `RETRY_JITTER` takes, in any case: [`as_str`](Jitter::as_str)'s, and `true` for
/// `full`, `false` for `none`. For a service that reads its settings from a file of its own.
///
/// ```
/// use resilience::Jitter;
/// assert_eq!("Equal".parse(), Ok(Jitter::Equal));
/// assert_eq!("false".parse(), Ok(Jitter::None));
/// assert_eq!(Jitter::Decorrelated.to_string().parse(), Ok(Jitter::Decorrelated));
/// assert!(" full".parse::<Jitter>().is_err()); // no trimming, as `str::parse` for numbers
/// ```
impl std::str::FromStr for Jitter {
    type Err = crate::ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ("full", Jitter::Full),
            ("true", Jitter::Full),
            ("none", Jitter::None),
            ("false", Jitter::None),
            ("equal", Jitter::Equal),
            ("decorrelated", Jitter::Decorrelated),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|(_, jitter)| jitter)
        .ok_or_else(|| {
            crate::ParseNameError::new(
                s,
                "jitter",
                "full (or true), none (or false), equal or decorrelated",
            )
        })
    }
}

/// The effective configuration of one provider. Read it with
/// [`Provider::config`](crate::Provider::config); set it with [`Settings`] or the environment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// `RESILIENCE_ENABLED`: `false` runs every call once, directly.
    pub enabled: bool,
    /// `RESILIENCE_RETRY_ENABLED`: `false` makes exactly one attempt (the breaker still applies).
    pub retry_enabled: bool,
    /// `RETRY_MAX_ATTEMPTS`: all attempts, the first included.
    pub max_attempts: u32,
    /// `RETRY_BASE_DELAY`: the delay before the first retry, before jitter.
    pub base_delay: Duration,
    /// `RETRY_MAX_DELAY`: the cap on any backoff delay, and on any `Retry-After` we will honour.
    pub max_delay: Duration,
    /// `RETRY_EXPONENTIAL_BASE`: the growth factor of the delay.
    pub exponential_base: f64,
    /// `RETRY_JITTER`.
    pub jitter: Jitter,
    /// `RETRY_ATTEMPT_TIMEOUT`: an attempt running longer fails with
    /// [`ResilienceError::AttemptTimeout`](crate::ResilienceError::AttemptTimeout) (transient).
    pub attempt_timeout: Option<Duration>,
    /// `RETRY_TOTAL_TIMEOUT`: the deadline for the whole call, backoff sleeps included.
    pub total_timeout: Option<Duration>,
    /// `RESILIENCE_RETRY_BUDGET_ENABLED`.
    pub retry_budget_enabled: bool,
    /// `RETRY_BUDGET_RATIO`: each call earns this many retries (0.2 = retries add at most 20%).
    pub retry_budget_ratio: f64,
    /// `RETRY_BUDGET_MIN_PER_SECOND`: retries earned per second regardless of traffic.
    pub retry_budget_min_per_second: f64,
    /// `RETRY_BUDGET_CAPACITY`: the most retries the budget can hold (the largest burst).
    pub retry_budget_capacity: u32,
    /// `RESILIENCE_CIRCUIT_BREAKER_ENABLED` (set in code by
    /// [`Settings::circuit_breaker_enabled`]).
    #[doc(alias = "circuit_breaker_enabled")]
    pub breaker_enabled: bool,
    /// `CIRCUIT_BREAKER_FAILURE_THRESHOLD`: consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    /// `CIRCUIT_BREAKER_SUCCESS_THRESHOLD`: half-open successes that close it.
    pub success_threshold: u32,
    /// `CIRCUIT_BREAKER_TIMEOUT`: how long an open breaker rejects before it lets probes through.
    pub breaker_timeout: Duration,
    /// `CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS`: probes admitted at the same time when half-open.
    pub half_open_max_calls: u32,
    /// `CIRCUIT_BREAKER_FAILURE_RATE`: when set, the breaker opens on this failure rate over the
    /// last `window_size` calls instead of on consecutive failures.
    pub failure_rate: Option<f64>,
    /// `CIRCUIT_BREAKER_WINDOW_SIZE`: calls in the failure-rate window.
    pub window_size: u32,
    /// `CIRCUIT_BREAKER_MINIMUM_CALLS`: calls the window needs before the rate counts.
    pub minimum_calls: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            retry_enabled: true,
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            exponential_base: 2.0,
            jitter: Jitter::Full,
            attempt_timeout: None,
            total_timeout: None,
            retry_budget_enabled: true,
            retry_budget_ratio: 0.2,
            retry_budget_min_per_second: 10.0,
            retry_budget_capacity: 100,
            breaker_enabled: true,
            failure_threshold: 5,
            success_threshold: 2,
            breaker_timeout: Duration::from_secs(60),
            half_open_max_calls: 1,
            failure_rate: None,
            window_size: 100,
            minimum_calls: 20,
        }
    }
}

impl Config {
    /// The number of attempts a call may make: 1 when retries or the whole library are off.
    pub(crate) fn effective_attempts(&self) -> u32 {
        if self.retry_enabled && self.enabled {
            self.max_attempts
        } else {
            1
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Bool(bool),
    Count(u32),
    Secs(Duration),
    OptSecs(Option<Duration>),
    Float(f64),
    OptFloat(Option<f64>),
    Jitter(Jitter),
}

impl Value {
    /// The value as it was given, for `Settings`'s `Debug`.
    fn inner(&self) -> &dyn fmt::Debug {
        match self {
            Value::Bool(v) => v,
            Value::Count(v) => v,
            Value::Secs(v) => v,
            Value::OptSecs(v) => v,
            Value::Float(v) => v,
            Value::OptFloat(v) => v,
            Value::Jitter(v) => v,
        }
    }
}

macro_rules! keys {
    ($( $key:ident => $var:literal, $setter:ident, $kind:ident, $expected:literal; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        enum Key { $($key),* }

        const KEYS: &[Key] = &[$(Key::$key),*];
        const N_KEYS: usize = KEYS.len();

        impl Key {
            /// The global environment variable.
            fn var(self) -> &'static str { match self { $(Key::$key => $var),* } }
            /// The `Settings` method, for problems in values given in code.
            fn setter(self) -> &'static str { match self { $(Key::$key => stringify!($setter)),* } }
            fn kind(self) -> Kind { match self { $(Key::$key => Kind::$kind),* } }
            fn expected(self) -> &'static str { match self { $(Key::$key => $expected),* } }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Attempts,
    Count,
    Count16,
    Window,
    Secs,
    OptSecs,
    Base,
    NonNegative,
    /// A share of calls, kept in millionths: 0, or at least one millionth (less would be 0).
    Share,
    Rate,
    Jitter,
}

keys! {
    Enabled => "RESILIENCE_ENABLED", enabled, Bool, "true or false (also 1/0, yes/no, on/off)";
    RetryEnabled => "RESILIENCE_RETRY_ENABLED", retry_enabled, Bool, "true or false (also 1/0, yes/no, on/off)";
    MaxAttempts => "RETRY_MAX_ATTEMPTS", max_attempts, Attempts, "a whole number of attempts from 1 to 1000 (the first attempt counts)";
    BaseDelay => "RETRY_BASE_DELAY", base_delay, Secs, "a number of seconds from 0 to 31536000 (a year; decimals allowed, e.g. 0.5; or with a unit: 300ms, 2s, 1.5m, 1h)";
    MaxDelay => "RETRY_MAX_DELAY", max_delay, Secs, "a number of seconds from 0 to 31536000 (a year; decimals allowed, e.g. 0.5; or with a unit: 300ms, 2s, 1.5m, 1h)";
    ExponentialBase => "RETRY_EXPONENTIAL_BASE", exponential_base, Base, "a finite number from 1.0 to 1000";
    Jitter => "RETRY_JITTER", jitter, Jitter, "one of full, none, equal, decorrelated, true (= full), false (= none)";
    AttemptTimeout => "RETRY_ATTEMPT_TIMEOUT", attempt_timeout, OptSecs, "a number of seconds above 0 (1 ns at least) and below 31536000 (a year; or with a unit: 300ms, 2s, 1.5m, 1h), or none";
    TotalTimeout => "RETRY_TOTAL_TIMEOUT", total_timeout, OptSecs, "a number of seconds above 0 (1 ns at least) and below 31536000 (a year; or with a unit: 300ms, 2s, 1.5m, 1h), or none";
    BudgetEnabled => "RESILIENCE_RETRY_BUDGET_ENABLED", retry_budget_enabled, Bool, "true or false (also 1/0, yes/no, on/off)";
    BudgetRatio => "RETRY_BUDGET_RATIO", retry_budget_ratio, Share, "0, or a finite number from 0.000001 (one retry per million calls; 0.2 lets retries add 20% to calls)";
    BudgetMinPerSecond => "RETRY_BUDGET_MIN_PER_SECOND", retry_budget_min_per_second, NonNegative, "a finite number of retries per second, 0 or more";
    BudgetCapacity => "RETRY_BUDGET_CAPACITY", retry_budget_capacity, Count, "a whole number of retries from 1 to 4294967295";
    BreakerEnabled => "RESILIENCE_CIRCUIT_BREAKER_ENABLED", circuit_breaker_enabled, Bool, "true or false (also 1/0, yes/no, on/off)";
    FailureThreshold => "CIRCUIT_BREAKER_FAILURE_THRESHOLD", failure_threshold, Count, "a whole number of failures from 1 to 4294967295";
    SuccessThreshold => "CIRCUIT_BREAKER_SUCCESS_THRESHOLD", success_threshold, Count16, "a whole number from 1 to 65535";
    BreakerTimeout => "CIRCUIT_BREAKER_TIMEOUT", breaker_timeout, Secs, "a number of seconds from 0 to 31536000 (a year; decimals allowed, e.g. 0.5; or with a unit: 300ms, 2s, 1.5m, 1h)";
    HalfOpenMaxCalls => "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", half_open_max_calls, Count16, "a whole number from 1 to 65535";
    FailureRate => "CIRCUIT_BREAKER_FAILURE_RATE", failure_rate, Rate, "a fraction above 0 and at most 1 (e.g. 0.5), or none";
    WindowSize => "CIRCUIT_BREAKER_WINDOW_SIZE", window_size, Window, "a whole number of attempts from 1 to 4096";
    MinimumCalls => "CIRCUIT_BREAKER_MINIMUM_CALLS", minimum_calls, Count, "a whole number of attempts from 1 to 4294967295";
}

/// Every global environment variable of the provider settings, in README order. Not
/// `RESILIENCE_METRICS_ADDR`, which only `telemetry::serve_from_env` reads and no provider
/// has a variable of its own for.
pub fn variables() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.var())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_f64(s: &str) -> Option<f64> {
    let v = s.parse::<f64>().ok().filter(|v| v.is_finite())?;
    // A number too small for an `f64` (`1e-400`) parses as 0, but is not 0: taken as 0, it
    // passed where 0 is allowed and a small number is not (`RETRY_BUDGET_RATIO`: "0, or from
    // 0.000001", where `1e-7` is refused). The smallest `f64` of its sign stands for it.
    if v == 0.0 && writes_a_non_zero(s) {
        return Some(f64::from_bits(1).copysign(v));
    }
    Some(v)
}

/// Whether the number `s` writes has a digit other than 0 before any exponent: it is not 0.
fn writes_a_non_zero(s: &str) -> bool {
    s.bytes()
        .take_while(|b| !matches!(b, b'e' | b'E'))
        .any(|b| matches!(b, b'1'..=b'9'))
}

/// The longest duration any setting takes: a year. Longer values are surely mistakes, and
/// capping them keeps every deadline and timestamp computation far from overflow.
const MAX_SECS: u64 = 365 * 24 * 3600;

/// Seconds in any form an `f64` is read from, exactly, digits past the nanosecond cut
/// (`9e-10`, as `0.0000000009`, is no time).
fn parse_secs(s: &str) -> Option<Duration> {
    // A unit, as Go and humantime write one (`300ms`, `2s`, `1.5m`, `1h`): written so often
    // that refusing it (or, without `init()`, running without the setting) helps no one. A
    // bare number is seconds, as the original plan has it.
    let (number, scale) = [("ms", 0), ("s", 1), ("m", 60), ("h", 3600)]
        .into_iter()
        .find_map(|(unit, scale)| Some((s.strip_suffix(unit)?.trim_end(), scale)))
        .unwrap_or((s, 1));
    let mut number = decimal(number)?;
    // Scaled as written, before the cut to the nanosecond: `0.0000000001h` is 360 ns, which
    // a `Duration` multiplied after the cut lost (as it did 3.6 µs at a year's edge).
    match scale {
        0 => number.point -= 3,
        1 => {}
        k => number.times(k),
    }
    let (d, cut) = number.secs()?;
    // Past the year by less than the nanosecond kept: cut down, it would be the year, which
    // `RETRY_MAX_DELAY` allows.
    (!cut || d < Duration::from_secs(MAX_SECS)).then_some(d)
}

/// A number as written, kept exactly: `0.digits × 10^point`, the digits (ASCII) without
/// leading or trailing zeros, none for 0. Through an `f64` (16 significant digits), a value
/// just outside a limit was rounded onto it: `RETRY_MAX_DELAY=31536000.000000001` taken as
/// the year its message allows, `RETRY_EXPONENTIAL_BASE=0.99999999999999999` as 1.0.
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    point: i64,
}

/// `s` in the forms an `f64` is read from, less the words (`inf`, `nan`), which are no
/// finite number: `[+-]digits[.digits][(e|E)[+-]digits]`, with a digit on one side of the
/// point at least.
fn decimal(s: &str) -> Option<Decimal> {
    fn signed(s: &str) -> (bool, &str) {
        match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        }
    }
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let (negative, t) = signed(s);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let exponent = match exponent.map(signed) {
        None => 0,
        Some((_, e)) if e.is_empty() || !all_digits(e) => return None,
        // Held to a bound far past any number of digits an environment holds, so that it
        // cannot overflow, and changes no result.
        Some((negative, e)) => {
            let e = e
                .bytes()
                .fold(0i64, |n, b| (n * 10 + i64::from(b - b'0')).min(1 << 50));
            if negative { -e } else { e }
        }
    };
    let written: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let leading = written.iter().take_while(|&&b| b == b'0').count();
    let mut digits = written[leading..].to_vec();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    Some(Decimal {
        negative,
        digits,
        point: int.len() as i64 - leading as i64 + exponent,
    })
}

impl Decimal {
    /// Multiplied by `k`, exactly: the digits times `k`, the carry making new leading digits.
    fn times(&mut self, k: u32) {
        let mut carry = 0;
        for b in self.digits.iter_mut().rev() {
            let n = u32::from(*b - b'0') * k + carry;
            *b = b'0' + (n % 10) as u8;
            carry = n / 10;
        }
        let mut head = Vec::new();
        while carry > 0 {
            head.push(b'0' + (carry % 10) as u8);
            carry /= 10;
        }
        head.reverse();
        self.point += head.len() as i64;
        head.append(&mut self.digits);
        self.digits = head;
        while self.digits.last() == Some(&b'0') {
            self.digits.pop();
        }
    }

    /// Seconds, to the nanosecond, and whether non-zero digits past it were cut; `None` when
    /// negative or past what a `Duration` holds.
    fn secs(&self) -> Option<(Duration, bool)> {
        if self.digits.is_empty() {
            return Some((Duration::ZERO, false));
        }
        // Past 20 digits before the point is past any `u64`: the loop below stays short.
        if self.negative || self.point > 20 {
            return None;
        }
        let digit = |i: i64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| self.digits.get(i))
                .map_or(0, |b| b - b'0')
        };
        let mut secs = 0u64;
        for i in 0..self.point {
            secs = secs.checked_mul(10)?.checked_add(u64::from(digit(i)))?;
        }
        let nanos = (self.point..self.point + 9).fold(0, |n, i| n * 10 + u32::from(digit(i)));
        let cut = self.digits.len() as i64 > self.point + 9;
        Some((Duration::new(secs, nanos), cut))
    }

    /// Compared with `bound`, a number written in the same forms.
    fn cmp(&self, bound: &str) -> std::cmp::Ordering {
        let b = decimal(bound).expect("a bound is a number");
        let sign = |d: &Decimal| match (d.digits.is_empty(), d.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        // With no leading or trailing zeros, the digits of two numbers with one point compare
        // as text.
        let size = self
            .point
            .cmp(&b.point)
            .then_with(|| self.digits.cmp(&b.digits));
        sign(self).cmp(&sign(&b)).then(match sign(self) {
            0 => std::cmp::Ordering::Equal,
            1 => size,
            _ => size.reverse(),
        })
    }
}

/// Whether the number `s` writes is within `kind`'s range as its message states it: its
/// `f64` may have been rounded onto a bound from outside. Words (`inf`) are the `f64`
/// check's.
fn written_within(kind: Kind, s: &str) -> bool {
    let Some(x) = decimal(s) else { return true };
    match kind {
        Kind::Base => x.cmp("1").is_ge() && x.cmp("1000").is_le(),
        Kind::NonNegative => x.cmp("0").is_ge(),
        Kind::Share => x.cmp("0").is_eq() || x.cmp("0.000001").is_ge(),
        Kind::Rate => x.cmp("0").is_gt() && x.cmp("1").is_le(),
        _ => true,
    }
}

fn is_none_word(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "none" | "off")
}

impl Key {
    fn parse(self, raw: &str) -> Option<Value> {
        let s = raw.trim();
        let v = match self.kind() {
            Kind::Bool => Value::Bool(parse_bool(s)?),
            Kind::Attempts | Kind::Count | Kind::Count16 | Kind::Window => {
                Value::Count(s.parse::<u32>().ok()?)
            }
            Kind::Secs => Value::Secs(parse_secs(s)?),
            Kind::OptSecs if is_none_word(s) => Value::OptSecs(None),
            Kind::OptSecs => Value::OptSecs(Some(parse_secs(s)?)),
            Kind::Base | Kind::NonNegative | Kind::Share if !written_within(self.kind(), s) => {
                return None;
            }
            Kind::Base | Kind::NonNegative | Kind::Share => Value::Float(parse_f64(s)?),
            Kind::Rate if is_none_word(s) => Value::OptFloat(None),
            Kind::Rate if !written_within(self.kind(), s) => return None,
            Kind::Rate => Value::OptFloat(Some(parse_f64(s)?)),
            Kind::Jitter => Value::Jitter(s.parse().ok()?),
        };
        self.valid(v).then_some(v)
    }

    /// Range checks shared by environment values and values given in code.
    fn valid(self, v: Value) -> bool {
        match (self.kind(), v) {
            (Kind::Bool, Value::Bool(_)) | (Kind::Jitter, Value::Jitter(_)) => true,
            (Kind::Attempts, Value::Count(n)) => (1..=1000).contains(&n),
            (Kind::Count, Value::Count(n)) => n >= 1,
            (Kind::Count16, Value::Count(n)) => (1..=65535).contains(&n),
            (Kind::Window, Value::Count(n)) => (1..=4096).contains(&n),
            (Kind::Secs, Value::Secs(d)) => d <= Duration::from_secs(MAX_SECS),
            (Kind::OptSecs, Value::OptSecs(d)) => {
                d.is_none_or(|d| !d.is_zero() && d.as_secs() < MAX_SECS)
            }
            (Kind::Base, Value::Float(f)) => f.is_finite() && (1.0..=1000.0).contains(&f),
            (Kind::NonNegative, Value::Float(f)) => f.is_finite() && f >= 0.0,
            (Kind::Share, Value::Float(f)) => f == 0.0 || (f.is_finite() && f >= 1e-6),
            (Kind::Rate, Value::OptFloat(r)) => {
                r.is_none_or(|r| r.is_finite() && r > 0.0 && r <= 1.0)
            }
            _ => false,
        }
    }
}

impl Config {
    /// `key`'s value here, as a setting would give it.
    fn value(&self, key: Key) -> Value {
        match key {
            Key::Enabled => Value::Bool(self.enabled),
            Key::RetryEnabled => Value::Bool(self.retry_enabled),
            Key::MaxAttempts => Value::Count(self.max_attempts),
            Key::BaseDelay => Value::Secs(self.base_delay),
            Key::MaxDelay => Value::Secs(self.max_delay),
            Key::ExponentialBase => Value::Float(self.exponential_base),
            Key::Jitter => Value::Jitter(self.jitter),
            Key::AttemptTimeout => Value::OptSecs(self.attempt_timeout),
            Key::TotalTimeout => Value::OptSecs(self.total_timeout),
            Key::BudgetEnabled => Value::Bool(self.retry_budget_enabled),
            Key::BudgetRatio => Value::Float(self.retry_budget_ratio),
            Key::BudgetMinPerSecond => Value::Float(self.retry_budget_min_per_second),
            Key::BudgetCapacity => Value::Count(self.retry_budget_capacity),
            Key::BreakerEnabled => Value::Bool(self.breaker_enabled),
            Key::FailureThreshold => Value::Count(self.failure_threshold),
            Key::SuccessThreshold => Value::Count(self.success_threshold),
            Key::BreakerTimeout => Value::Secs(self.breaker_timeout),
            Key::HalfOpenMaxCalls => Value::Count(self.half_open_max_calls),
            Key::FailureRate => Value::OptFloat(self.failure_rate),
            Key::WindowSize => Value::Count(self.window_size),
            Key::MinimumCalls => Value::Count(self.minimum_calls),
        }
    }

    /// The settings that `new` would change in provider `name`, made with `self`: one problem
    /// each, naming the setting, the value refused and the one it keeps.
    pub(crate) fn changes(&self, new: &Config, name: &str) -> Vec<ConfigProblem> {
        KEYS.iter()
            .filter(|&&k| self.value(k) != new.value(k))
            .map(|&k| ConfigProblem {
                settled: None,
                name_only: false,
                variable: format!(
                    "provider `{}`: Settings::{} ({})",
                    name.escape_debug(),
                    k.setter(),
                    provider_variable(name, k.var())
                ),
                value: show(new.value(k)),
                expected: format!(
                    "{}{}, the value it was set up with: a provider's configuration is fixed \
                     when the provider is made, at its first call, by provider() or by \
                     configure() (give settings before any of them, at start-up)",
                    show(self.value(k)),
                    // The variables' unit, which the bare number of a duration does not say.
                    match self.value(k) {
                        Value::Secs(_) | Value::OptSecs(Some(_)) => " (seconds)",
                        _ => "",
                    }
                ),
            })
            .collect()
    }
}

fn show(v: Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Count(n) => n.to_string(),
        Value::Secs(d) | Value::OptSecs(Some(d)) => secs_text(d),
        Value::OptSecs(None) | Value::OptFloat(None) => "none".into(),
        Value::Float(f) | Value::OptFloat(Some(f)) => f.to_string(),
        Value::Jitter(j) => j.as_str().into(),
    }
}

/// `d` in seconds, exactly: an `f64` would round a value just past a limit onto it, and the
/// message would then show a valid value as the bad one.
fn secs_text(d: Duration) -> String {
    match d.subsec_nanos() {
        0 => d.as_secs().to_string(),
        n => {
            let frac = format!("{n:09}");
            format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
        }
    }
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// Given in code; where, when known (`Builder::provider("glm")`, `configure("glm")`,
    /// `Builder::defaults`): two providers' bad values must read as two problems, and say
    /// which to fix.
    Code(Option<String>),
    Env(String),
}

/// Settings given in code: every field optional, unset fields fall through to the next layer.
/// Values are checked when the provider is resolved: [`init`](crate::Builder::init) and
/// [`configure`](crate::configure) return the problems.
///
/// The layers, highest first (a more specific setting wins, and the environment beats code at
/// the same level, so operators can override what the code chose without a rebuild):
///
/// 1. `RESILIENCE_<PROVIDER>_<NAME>` (per-provider environment variable);
/// 2. [`Builder::provider`](crate::Builder::provider) / [`configure`](crate::configure);
/// 3. `<NAME>` (global environment variable, e.g. `RETRY_MAX_ATTEMPTS`);
/// 4. [`Builder::defaults`](crate::Builder::defaults);
/// 5. the built-in default (the original plan's values).
///
/// ```
/// use resilience::{Jitter, Settings};
/// use std::time::Duration;
///
/// let kimi = Settings::new()
///     .max_attempts(5)
///     .base_delay(Duration::from_millis(200))
///     .jitter(Jitter::Equal)
///     .breaker_timeout(Duration::from_secs(30));
/// # let _ = kimi;
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Settings {
    values: [Option<(Value, Source)>; N_KEYS],
}

/// What was set, by the method that set it, in the table's order:
/// `Settings { max_attempts: 5, jitter: Equal }` (not the 21 slots it keeps them in).
///
/// ```
/// use resilience::Settings;
/// use std::time::Duration;
///
/// let s = Settings::new().breaker_timeout(Duration::from_secs(30)).max_attempts(5);
/// assert_eq!(format!("{s:?}"), "Settings { max_attempts: 5, breaker_timeout: 30s }");
/// ```
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Settings");
        for (key, slot) in KEYS.iter().zip(&self.values) {
            if let Some((value, _)) = slot {
                s.field(key.setter(), value.inner());
            }
        }
        s.finish()
    }
}

macro_rules! setters {
    ($( $(#[$doc:meta])* $name:ident($ty:ty) => $key:ident, |$v:ident| $conv:expr; )*) => {
        impl Settings {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, $v: $ty) -> Self {
                    self.values[Key::$key as usize] = Some(($conv, Source::Code(None)));
                    self
                }
            )*
        }
    };
}

setters! {
    /// `RESILIENCE_ENABLED`: `false` runs calls once, directly (no breaker, no retry).
    enabled(bool) => Enabled, |v| Value::Bool(v);
    /// `RESILIENCE_RETRY_ENABLED`: `false` makes exactly one attempt per call.
    retry_enabled(bool) => RetryEnabled, |v| Value::Bool(v);
    /// `RETRY_MAX_ATTEMPTS`: all attempts, the first included (1 to 1000).
    max_attempts(u32) => MaxAttempts, |v| Value::Count(v);
    /// `RETRY_BASE_DELAY`.
    base_delay(Duration) => BaseDelay, |v| Value::Secs(v);
    /// `RETRY_MAX_DELAY`.
    max_delay(Duration) => MaxDelay, |v| Value::Secs(v);
    /// `RETRY_EXPONENTIAL_BASE` (1.0 to 1000).
    exponential_base(f64) => ExponentialBase, |v| Value::Float(v);
    /// `RETRY_JITTER`.
    jitter(Jitter) => Jitter, |v| Value::Jitter(v);
    /// `RETRY_ATTEMPT_TIMEOUT`: `None` for no per-attempt timeout.
    attempt_timeout(Option<Duration>) => AttemptTimeout, |v| Value::OptSecs(v);
    /// `RETRY_TOTAL_TIMEOUT`: `None` for no deadline.
    total_timeout(Option<Duration>) => TotalTimeout, |v| Value::OptSecs(v);
    /// `RESILIENCE_RETRY_BUDGET_ENABLED`.
    retry_budget_enabled(bool) => BudgetEnabled, |v| Value::Bool(v);
    /// `RETRY_BUDGET_RATIO`.
    retry_budget_ratio(f64) => BudgetRatio, |v| Value::Float(v);
    /// `RETRY_BUDGET_MIN_PER_SECOND`.
    retry_budget_min_per_second(f64) => BudgetMinPerSecond, |v| Value::Float(v);
    /// `RETRY_BUDGET_CAPACITY`.
    retry_budget_capacity(u32) => BudgetCapacity, |v| Value::Count(v);
    /// `RESILIENCE_CIRCUIT_BREAKER_ENABLED`: named after its variable, as the other switches'
    /// setters are; the field it sets is [`Config::breaker_enabled`].
    #[doc(alias = "breaker_enabled")]
    circuit_breaker_enabled(bool) => BreakerEnabled, |v| Value::Bool(v);
    /// `CIRCUIT_BREAKER_FAILURE_THRESHOLD`.
    failure_threshold(u32) => FailureThreshold, |v| Value::Count(v);
    /// `CIRCUIT_BREAKER_SUCCESS_THRESHOLD` (1 to 65535).
    success_threshold(u32) => SuccessThreshold, |v| Value::Count(v);
    /// `CIRCUIT_BREAKER_TIMEOUT`.
    breaker_timeout(Duration) => BreakerTimeout, |v| Value::Secs(v);
    /// `CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS` (1 to 65535).
    half_open_max_calls(u32) => HalfOpenMaxCalls, |v| Value::Count(v);
    /// `CIRCUIT_BREAKER_FAILURE_RATE`: `Some(rate)` switches the breaker to failure-rate mode.
    failure_rate(Option<f64>) => FailureRate, |v| Value::OptFloat(v);
    /// `CIRCUIT_BREAKER_WINDOW_SIZE` (1 to 4096).
    window_size(u32) => WindowSize, |v| Value::Count(v);
    /// `CIRCUIT_BREAKER_MINIMUM_CALLS`.
    minimum_calls(u32) => MinimumCalls, |v| Value::Count(v);
}

/// Turns a provider name into its environment form: upper case, every character that is not
/// an ASCII letter or digit replaced by `_` (`kimi-v2` → `KIMI_V2`).
#[must_use]
pub fn env_provider_name(provider: &str) -> String {
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

/// The per-provider variable for a global one: `RESILIENCE_<PROVIDER>_` + the global name
/// without a leading `RESILIENCE_`.
#[must_use]
pub fn provider_variable(provider: &str, global: &str) -> String {
    format!(
        "RESILIENCE_{}_{}",
        env_provider_name(provider),
        global.strip_prefix("RESILIENCE_").unwrap_or(global)
    )
}

/// Problems with provider names whose environment variables are not theirs alone, one per
/// name involved: a name that is empty in environment form, a variable that is also a global
/// one (provider `retry`'s `ENABLED` is `RESILIENCE_RETRY_ENABLED`, the global retry switch),
/// one that another provider reads for another setting (`kimi-retry`'s `ENABLED` is `kimi`'s
/// `RETRY_ENABLED`), or two names with one environment form (`kimi-v2`, `kimi.v2`). Linear in
/// the number of names (each name's variables are made once).
pub(crate) fn name_clashes(names: &[&str], extra_globals: &[&str]) -> Vec<ConfigProblem> {
    use std::collections::{BTreeMap, HashMap};
    // Escaped: a name with a newline or a NUL would break the one-problem-per-line text.
    let problem = |name: &str, expected: String| ConfigProblem {
        settled: None,
        name_only: false,
        variable: format!("provider `{}`", name.escape_debug()),
        value: name.escape_debug().to_string(),
        expected,
    };
    let mut problems = Vec::new();
    // Names by environment form; BTreeMap for a stable order of the problems.
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for &name in names {
        if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
            problems.push(problem(
                name,
                "a provider name with at least one ASCII letter or digit, which names its \
                 RESILIENCE_<PROVIDER>_… variables"
                    .into(),
            ));
            continue;
        }
        // ` kimi` would read `RESILIENCE__KIMI_…`, not the `RESILIENCE_KIMI_…` an operator
        // sets for it, and be a breaker of its own: a stray space, never meant.
        if name.trim() != name
            || name.chars().any(char::is_control)
            || crate::invisible::invisible_in(name).is_some()
        {
            problems.push(problem(
                name,
                format!(
                    "a provider name without leading or trailing spaces, control characters \
                     or invisible ones (this one reads RESILIENCE_{}_… variables)",
                    env_provider_name(name)
                ),
            ));
            continue;
        }
        let group = groups.entry(env_provider_name(name)).or_default();
        if !group.contains(&name) {
            group.push(name);
        }
    }
    // Every variable, with whose it is: a global's (`None`) or a provider group's.
    let mut owners: HashMap<String, Vec<(Option<&str>, &str)>> = HashMap::new();
    for var in KEYS
        .iter()
        .map(|k| k.var())
        .chain(extra_globals.iter().copied())
    {
        owners.entry(var.to_owned()).or_default().push((None, var));
    }
    for (env, group) in &groups {
        for name in group {
            if let Some(other) = group.iter().find(|o| *o != name) {
                problems.push(problem(
                    name,
                    format!(
                        "a name whose RESILIENCE_{env}_… variables are its own, but provider \
                         `{}` reads them too (names are upper-cased and every other \
                         character becomes `_`)",
                        // Escaped as the problem's own name is (`a\b`, `it's`, a U+2028).
                        other.escape_debug()
                    ),
                ));
            }
        }
        for &key in KEYS {
            let var = provider_variable(env, key.var());
            owners.entry(var).or_default().push((Some(env), key.var()));
        }
    }
    for (env, group) in &groups {
        for &key in KEYS {
            let var = provider_variable(env, key.var());
            for &(owner, other_key) in &owners[&var] {
                let clash = match owner {
                    None => format!("{var}, its {}, is a global variable", key.var()),
                    Some(o) if o != env => {
                        format!(
                            "{var}, its {}, is provider `{}`'s {other_key}",
                            key.var(),
                            groups[o][0].escape_debug()
                        )
                    }
                    Some(_) => continue,
                };
                for name in group {
                    problems.push(problem(
                        name,
                        format!("a name whose variables are its own, but {clash}"),
                    ));
                }
            }
        }
    }
    problems
}

/// Reads environment-like values through `lookup`; injected so tests never touch the process
/// environment (which is shared by every test thread).
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Empty settings: everything falls through to the next layer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the global variables (`provider = None`) or one provider's variables. Bad values
    /// are reported and left unset, so they fall through to the next layer.
    pub(crate) fn from_env(
        lookup: Lookup<'_>,
        provider: Option<&str>,
    ) -> (Self, Vec<ConfigProblem>) {
        let mut s = Settings::new();
        let mut problems = Vec::new();
        for &key in KEYS {
            let var = match provider {
                None => key.var().to_string(),
                Some(p) => provider_variable(p, key.var()),
            };
            let Some(raw) = lookup(&var) else { continue };
            match key.parse(&raw) {
                Some(v) => s.values[key as usize] = Some((v, Source::Env(var))),
                None => problems.push(ConfigProblem {
                    settled: Some(Settled::bad(key)),
                    name_only: false,
                    variable: var,
                    value: raw,
                    expected: key.expected().to_string(),
                }),
            }
        }
        (s, problems)
    }

    /// These settings, each value given in code marked as given at `scope`.
    pub(crate) fn scoped(mut self, scope: &str) -> Settings {
        for (_, source) in self.values.iter_mut().flatten() {
            if let Source::Code(s) = source {
                *s = Some(scope.to_owned());
            }
        }
        self
    }

    /// `self` over the settings given the same name before (`configure`, `Builder::provider`
    /// again), if any: later settings add to earlier ones.
    pub(crate) fn after(self, earlier: Option<&Settings>) -> Settings {
        match earlier {
            Some(earlier) => self.over(earlier),
            None => self,
        }
    }

    /// The values `self` gives that `earlier` gave otherwise, as the setter's name, the
    /// earlier value and this one (`max_attempts`, `2`, `5`): what layering `self` over
    /// `earlier` changes of what was set.
    pub(crate) fn replaced(&self, earlier: &Settings) -> Vec<(&'static str, String, String)> {
        KEYS.iter()
            .filter_map(|&key| {
                let (new, _) = self.values[key as usize].as_ref()?;
                let (old, _) = earlier.values[key as usize].as_ref()?;
                (new != old).then(|| (key.setter(), show(*old), show(*new)))
            })
            .collect()
    }

    /// Layers `self` over `lower`: values set here win.
    pub(crate) fn over(&self, lower: &Settings) -> Settings {
        let mut out = lower.clone();
        for (i, v) in self.values.iter().enumerate() {
            if v.is_some() {
                out.values[i] = v.clone();
            }
        }
        out
    }

    /// Resolves these settings over the built-in defaults. Every problem is reported; a bad
    /// value is replaced by the default, and a conflict (base delay above max delay, minimum
    /// calls above the window) is settled in favour of the cap.
    pub(crate) fn resolve(&self) -> (Config, Vec<ConfigProblem>) {
        let mut c = Config::default();
        let mut problems = Vec::new();
        let name = |key: Key, src: &Source| match src {
            Source::Env(var) => var.clone(),
            Source::Code(None) => format!("Settings::{}", key.setter()),
            Source::Code(Some(scope)) => format!("{scope}: Settings::{}", key.setter()),
        };
        // A value refused below is no setting: the conflicts after the loop see the default
        // that applies instead, and never name a value nobody gave.
        let given = |key: Key| {
            self.values[key as usize]
                .as_ref()
                .filter(|(v, _)| key.valid(*v))
        };
        // Where a cap came from, for a conflict's message: its setting, or its default's name.
        let set_by =
            |key: Key| given(key).map_or_else(|| key.var().to_string(), |(_, s)| name(key, s));
        for &key in KEYS {
            let Some((v, src)) = &self.values[key as usize] else {
                continue;
            };
            if !key.valid(*v) {
                problems.push(ConfigProblem {
                    settled: Some(Settled::bad(key)),
                    name_only: false,
                    variable: name(key, src),
                    value: show(*v),
                    expected: key.expected().to_string(),
                });
                continue;
            }
            match (key, *v) {
                (Key::Enabled, Value::Bool(b)) => c.enabled = b,
                (Key::RetryEnabled, Value::Bool(b)) => c.retry_enabled = b,
                (Key::MaxAttempts, Value::Count(n)) => c.max_attempts = n,
                (Key::BaseDelay, Value::Secs(d)) => c.base_delay = d,
                (Key::MaxDelay, Value::Secs(d)) => c.max_delay = d,
                (Key::ExponentialBase, Value::Float(f)) => c.exponential_base = f,
                (Key::Jitter, Value::Jitter(j)) => c.jitter = j,
                (Key::AttemptTimeout, Value::OptSecs(d)) => c.attempt_timeout = d,
                (Key::TotalTimeout, Value::OptSecs(d)) => c.total_timeout = d,
                (Key::BudgetEnabled, Value::Bool(b)) => c.retry_budget_enabled = b,
                (Key::BudgetRatio, Value::Float(f)) => c.retry_budget_ratio = f,
                (Key::BudgetMinPerSecond, Value::Float(f)) => c.retry_budget_min_per_second = f,
                (Key::BudgetCapacity, Value::Count(n)) => c.retry_budget_capacity = n,
                (Key::BreakerEnabled, Value::Bool(b)) => c.breaker_enabled = b,
                (Key::FailureThreshold, Value::Count(n)) => c.failure_threshold = n,
                (Key::SuccessThreshold, Value::Count(n)) => c.success_threshold = n,
                (Key::BreakerTimeout, Value::Secs(d)) => c.breaker_timeout = d,
                (Key::HalfOpenMaxCalls, Value::Count(n)) => c.half_open_max_calls = n,
                (Key::FailureRate, Value::OptFloat(r)) => c.failure_rate = r,
                (Key::WindowSize, Value::Count(n)) => c.window_size = n,
                (Key::MinimumCalls, Value::Count(n)) => c.minimum_calls = n,
                _ => unreachable!("valid() matched kind and value"),
            }
        }
        if c.base_delay > c.max_delay {
            match given(Key::BaseDelay) {
                // Only a max delay below the default base was set: the base follows it down.
                None => c.base_delay = c.max_delay,
                Some((_, src)) => {
                    let max = set_by(Key::MaxDelay);
                    problems.push(ConfigProblem {
                        settled: Some(Settled::conflict(Key::BaseDelay, src, given(Key::MaxDelay))),
                        name_only: false,
                        variable: name(Key::BaseDelay, src),
                        value: secs_text(c.base_delay),
                        expected: format!(
                            "at most the maximum delay ({max}={})",
                            secs_text(c.max_delay)
                        ),
                    });
                    c.base_delay = Config::default().base_delay.min(c.max_delay);
                }
            }
        }
        if c.failure_rate.is_some() && c.minimum_calls > c.window_size {
            // As with the delays: only a window below the default minimum was set, so the
            // minimum follows it down; a minimum set above the window is an error.
            if let Some((_, src)) = given(Key::MinimumCalls) {
                let window = set_by(Key::WindowSize);
                problems.push(ConfigProblem {
                    settled: Some(Settled::conflict(
                        Key::MinimumCalls,
                        src,
                        given(Key::WindowSize),
                    )),
                    name_only: false,
                    variable: name(Key::MinimumCalls, src),
                    value: c.minimum_calls.to_string(),
                    expected: format!("at most the window size ({window}={})", c.window_size),
                });
            }
            c.minimum_calls = c.window_size;
        }
        (c, problems)
    }
}

/// How a refused value is settled: which setting it was for, and whether it was bad (it
/// falls through to the next setting in line) or in conflict with another setting (settled
/// by [`Settings::resolve`]'s own rule, whatever the layers below say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    key: Key,
    conflict: bool,
    /// A conflict with a cap no layer of these settings gave: the built-in default's.
    against_default: bool,
    /// A conflict no variable takes part in: a value given in code against a cap given in
    /// code or left at its built-in default.
    no_variable: bool,
}

impl Settled {
    fn bad(key: Key) -> Self {
        Settled {
            key,
            conflict: false,
            against_default: false,
            no_variable: false,
        }
    }

    /// `key`'s value, given by `src`, in conflict with its cap, given by `cap` (`None`: the
    /// built-in default).
    fn conflict(key: Key, src: &Source, cap: Option<&(Value, Source)>) -> Self {
        let code = |s: &Source| matches!(s, Source::Code(_));
        Settled {
            key,
            conflict: true,
            against_default: cap.is_none(),
            no_variable: code(src) && cap.is_none_or(|(_, s)| code(s)),
        }
    }

    /// A conflict no variable takes part in (a value given in code against a cap given in
    /// code or left at its default): the code's own problem, also where it shows only with the
    /// environment (a variable that turns failure-rate mode on finds `minimum_calls(200)`
    /// beside `window_size(50)`, or beside the default window of 100: alike, whether that
    /// 100 is written out or not).
    pub(crate) fn of_code(self) -> bool {
        self.conflict && self.no_variable
    }
}

/// A conflict of the code settings read alone with a built-in default, which the values that
/// apply here do not have as such (a variable sets the cap, or overrides the value): still
/// the code's, as settings given in code must hold in any environment, and said so, as the
/// default it names may not be what applies here (helper-240). True of every such case, a
/// cap the environment leaves too low or a cap given in code but refused included
/// (helper-242): it claims nothing of the values that apply.
pub(crate) fn read_alone(p: &mut ConfigProblem) {
    let Some(s) = p.settled.filter(|s| s.conflict && s.against_default) else {
        return;
    };
    let (what, cap, default) = match s.key {
        Key::BaseDelay => (
            "maximum delay",
            Key::MaxDelay,
            secs_text(Config::default().max_delay),
        ),
        _ => (
            "window size",
            Key::WindowSize,
            Config::default().window_size.to_string(),
        ),
    };
    p.expected = format!(
        "at most the {what} of the code settings read without the environment, its default \
         ({}={default}): settings given in code must hold without the environment; give a \
         valid {} in code beside it, or a smaller value",
        cap.var(),
        cap.setter()
    );
}

/// A provider's settings in the two parts that [`used_instead`] tells apart: its own (its
/// variables over its code settings) and the global ones below them (the global variables
/// over the global code settings). Neither holds a value refused as bad.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    pub(crate) own: Settings,
    pub(crate) below: Settings,
}

/// What provider `c` uses in place of the value `p` refuses, and why, for the line that logs
/// it: the value itself (`0.5`), which no description of the layers can give, as a cap may
/// lower what a bad value fell through to (`RETRY_BASE_DELAY=soon` beside
/// `RETRY_MAX_DELAY=0.5` gets 0.5, not the 1 s default). A bad value falls through to the next
/// setting in line (a global variable's are the global code settings, then the default: the
/// provider's own come before it, and would have beaten it). A bad global variable is found by
/// every provider, also one that sets the value itself, whose line must not name its own
/// setting as the global code settings' or the default.
pub(crate) fn used_instead(p: &ConfigProblem, c: &Config, layers: &Layers) -> String {
    let Some(Settled { key, conflict, .. }) = p.settled else {
        return "the next setting in line instead".to_owned();
    };
    let global = variables().any(|v| v == p.variable);
    let set = |s: &Settings| s.values[key as usize].as_ref().map(|(v, _)| *v);
    let own = set(&layers.own).filter(|v| key.valid(*v));
    // The setting next in line, when one is given: for a bad global variable, the provider's
    // own (which beats it) or else the global code settings; for a bad provider variable, its
    // code settings or else the global ones. The first layer that sets it counts, even with a
    // value `resolve` refuses (which then gives the default, not the layers below).
    let next = set(&layers.own)
        .or_else(|| set(&layers.below))
        .filter(|v| key.valid(*v));
    // One the provider does not have was in conflict in turn (on a line of its own), and
    // settled by the conflict's rule, not used (`RETRY_BASE_DELAY=soon` beside its own 5 and
    // `RETRY_MAX_DELAY=3` gets 1, not 3; a minimum of its own above its window gets the
    // window). Nothing is stored rounded, so only those two conflicts make them differ.
    let refused = next.is_some_and(|v| v != c.value(key));
    // The two settings a conflict can settle: its rule, and the cap the value was above.
    let rule = match key {
        Key::BaseDelay => Some((
            "the built-in base delay, or the maximum delay where that is lower",
            "maximum delay",
        )),
        Key::MinimumCalls => Some(("the window size", "window")),
        _ => None,
    };
    let why: std::borrow::Cow<'_, str> = match rule {
        Some((rule, _)) if conflict => rule.into(),
        Some((rule, cap)) if refused => {
            let whose = match (own.is_some(), global) {
                (true, false) => "the provider's code setting, next in line, is above its",
                (true, true) => {
                    "the provider's own setting, which comes before the global variable, is \
                     above its"
                }
                (false, _) => "the global setting next in line is above the",
            };
            format!("{rule}: {whose} {cap}").into()
        }
        _ if global && own.is_some() => {
            "the provider's own setting, which comes before the global variable; a provider \
             that sets none of its own uses the global code settings, then the built-in default"
                .into()
        }
        _ if global => {
            "the next setting in line: the global code settings, then the built-in default, \
             where the provider sets none of its own"
                .into()
        }
        _ => "the next setting in line: the provider's code settings, the global variable, the \
             global code settings, then the built-in default"
            .into(),
    };
    // The caps that `resolve` applies after the layers, whatever a value fell through to.
    let cap = match key {
        Key::BaseDelay if !conflict && !refused => ", at most the maximum delay",
        Key::MinimumCalls if !conflict && !refused && c.failure_rate.is_some() => {
            ", at most the window size"
        }
        _ => "",
    };
    format!("{} instead ({why}{cap})", show(c.value(key)))
}

/// What [`scan_provider_vars`] finds in an environment's `RESILIENCE_*` variables.
pub(crate) struct Scan {
    /// Provider variables whose values are bad.
    pub(crate) problems: Vec<ConfigProblem>,
    /// Provider variables no provider can read: the provider part is not in the upper-case
    /// form (`RESILIENCE_kimi_…`).
    pub(crate) misnamed: Vec<ConfigProblem>,
    /// Names that match no setting at all (likely typos).
    pub(crate) unknown: Vec<String>,
    /// Names without our prefix near a global's (`RETRY_MAX_ATEMPTS`), with the global's: a
    /// warning in either mode, never a problem, as the name may be another program's.
    pub(crate) near_globals: Vec<(String, &'static str)>,
    /// The providers named, in their environment form.
    pub(crate) providers: Vec<String>,
    /// The names of the provider variables read, as found (upper-cased where case does not
    /// matter): strict mode's near misses are among them.
    pub(crate) provider_vars: Vec<String>,
}

/// Sorts the `RESILIENCE_*` variables of an environment into per-provider ones (by the longest
/// known setting suffix).
pub(crate) fn scan_provider_vars(
    vars: impl Iterator<Item = (String, String)>,
    extra_globals: &[&str],
) -> Scan {
    scan_names(vars, extra_globals, cfg!(windows))
}

/// [`scan_provider_vars`], with names found whatever their case (`any_case`) as Windows finds
/// them: there `RESILIENCE_kimi_RETRY_JITTER` is what provider `kimi`'s read of
/// `RESILIENCE_KIMI_RETRY_JITTER` gets, so the scan sorts each name in upper case, the form
/// every read uses. (Sorted as written, it was "read by no provider" and refused by `init()`
/// while the provider used its value; and strict mode, which looked for near misses among
/// the names as written, let one in another case through: helper-245.) A parameter, so that
/// it is tested everywhere.
fn scan_names(
    vars: impl Iterator<Item = (String, String)>,
    extra_globals: &[&str],
    any_case: bool,
) -> Scan {
    let mut scan = Scan {
        problems: Vec::new(),
        misnamed: Vec::new(),
        unknown: Vec::new(),
        near_globals: Vec::new(),
        providers: Vec::new(),
        provider_vars: Vec::new(),
    };
    // The globals set under their own names: beside a switch's, a bare one is another
    // program's.
    let mut globals_set: Vec<String> = Vec::new();
    for (name, value) in vars {
        let name = if any_case {
            name.to_ascii_uppercase()
        } else {
            name
        };
        if in_another_case(&name).is_some() {
            scan.unknown.push(name);
            continue;
        }
        let Some(rest) = name.strip_prefix("RESILIENCE_") else {
            // A switch written as the other globals are (`RETRY_ENABLED`, beside
            // `RETRY_MAX_ATTEMPTS`) is read by nothing: said, as a typo is.
            if unprefixed_switch(&name).is_some() {
                scan.unknown.push(name);
            } else if let Some(var) = near_global(&name) {
                scan.near_globals.push((name, var));
            }
            continue;
        };
        if KEYS.iter().any(|k| k.var() == name) || extra_globals.contains(&name.as_str()) {
            globals_set.push(name);
            continue;
        }
        match split_provider_var(rest) {
            Some((key, provider, suffix)) => {
                let provider = provider.to_string();
                let env_form = env_provider_name(&provider);
                if env_form != provider {
                    // `RESILIENCE_kimi_…` or `RESILIENCE_KIMI-V2_…`: no provider reads it, as
                    // every provider's variables are upper case with `_` for other characters.
                    // Its name is the problem: the value, which nothing reads, is not kept (it
                    // may be a secret, and showing it, even redacted, tells nothing).
                    scan.misnamed.push(ConfigProblem {
                        settled: None,
                        name_only: true,
                        expected: format!(
                            "the provider upper-cased, other characters than A-Z and 0-9 as `_` \
                             (RESILIENCE_{env_form}_{suffix}): no provider reads this name"
                        ),
                        value: name.clone(),
                        variable: name,
                    });
                    continue;
                }
                if !scan.providers.contains(&provider) {
                    scan.providers.push(provider);
                }
                scan.provider_vars.push(name.clone());
                if key.parse(&value).is_none() {
                    scan.problems.push(ConfigProblem {
                        settled: None,
                        name_only: false,
                        variable: name,
                        value,
                        expected: key.expected().to_string(),
                    });
                }
            }
            None => scan.unknown.push(name),
        }
    }
    // In any case: `retry_enabled` beside `RESILIENCE_RETRY_ENABLED` is another program's too.
    scan.unknown.retain(|u| {
        unprefixed_switch(&u.to_ascii_uppercase())
            .is_none_or(|var| !globals_set.iter().any(|s| s == var))
    });
    scan
}

/// A provider variable's name after `RESILIENCE_` split into its setting, its provider part
/// and the setting's suffix, by the longest suffix: `RESILIENCE_KIMI_RETRY_ENABLED` is `KIMI`
/// and `RETRY_ENABLED`, not `KIMI_RETRY` and `ENABLED`.
fn split_provider_var(rest: &str) -> Option<(Key, &str, &'static str)> {
    static SUFFIXES: LazyLock<Vec<(Key, &'static str)>> = LazyLock::new(|| {
        let mut suffixes: Vec<(Key, &'static str)> = KEYS
            .iter()
            .map(|&k| (k, k.var().strip_prefix("RESILIENCE_").unwrap_or(k.var())))
            .collect();
        suffixes.sort_by_key(|(_, s)| std::cmp::Reverse(s.len()));
        suffixes
    });
    SUFFIXES.iter().find_map(|&(key, suffix)| {
        let provider = rest.strip_suffix(suffix)?.strip_suffix('_')?;
        (!provider.is_empty()).then_some((key, provider, suffix))
    })
}

/// A variable's provider part and setting suffix (`RESILIENCE_KIMII_RETRY_MAX_ATTEMPTS`:
/// `KIMII`, `RETRY_MAX_ATTEMPTS`), as [`scan_provider_vars`] reads it; `None` for a name
/// that is no provider's variable.
pub(crate) fn provider_var_parts(name: &str) -> Option<(&str, &'static str)> {
    let rest = name.strip_prefix("RESILIENCE_")?;
    if KEYS.iter().any(|k| k.var() == name) {
        return None;
    }
    split_provider_var(rest).map(|(_, provider, suffix)| (provider, suffix))
}

/// A switch's value (`RESILIENCE_STRICT`), read as the on/off settings are; `Err` with what
/// was expected.
pub(crate) fn parse_switch(raw: &str) -> Result<bool, &'static str> {
    parse_bool(raw.trim()).ok_or(Key::Enabled.expected())
}

/// `name` in upper case, when that is a name of ours and `name` is not: where a variable is
/// found by its exact name, and we read upper-case names only, `resilience_enabled=false` is
/// read by nothing. Where case does not matter (Windows, which finds it as
/// `RESILIENCE_ENABLED`), every name comes here as found, in upper case already
/// ([`scan_names`]), and so is none of these.
/// Not a name with our prefix as it is (`RESILIENCE_kimi_…`), which the scan sorts itself.
/// "Ours": a global (`RESILIENCE_METRICS_ADDR` too), or a name [`meant`] would name one for
/// in upper case (a provider's variable, a switch without its prefix, a near miss); not any
/// name with the prefix (another tool's `resilience_hub_region`, whose upper-case form
/// nothing reads either).
fn in_another_case(name: &str) -> Option<String> {
    if name.starts_with("RESILIENCE_") {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    if upper == name {
        return None;
    }
    // `upper` is in upper case: `meant` does not come back here.
    let ours = KEYS.iter().any(|k| k.var() == upper)
        || crate::registry::OTHER_VARIABLES.contains(&upper.as_str())
        || meant(&upper).is_some();
    ours.then_some(upper)
}

/// The switch (`RESILIENCE_RETRY_ENABLED`) that `name` is without its prefix, if it is one.
/// Not the bare `ENABLED`, which is too common a name to be ours.
fn unprefixed_switch(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| k.var())
        .find(|var| name != "ENABLED" && var.strip_prefix("RESILIENCE_") == Some(name))
}

/// The global that `name`, without our prefix and in upper case, is within two edits of
/// (`RETRY_MAX_ATEMPTS`, `CIRCUIT_BREAKER_TIMOUT`; a switch by the name it has without its
/// prefix, `RETRY_ENABLD`), but is not. Such a name may be another program's, so it is said
/// and never refused; nothing further off is said, as unrelated names are many.
fn near_global(name: &str) -> Option<&'static str> {
    if name.starts_with("RESILIENCE_") || name.bytes().any(|b| b.is_ascii_lowercase()) {
        return None;
    }
    KEYS.iter()
        .map(|k| k.var())
        .map(|var| (var, var.strip_prefix("RESILIENCE_").unwrap_or(var)))
        // The bare `ENABLED` is too common a name to be meant as ours.
        .filter(|&(_, bare)| bare != "ENABLED")
        .map(|(var, bare)| (strsim::osa_distance(name, bare), var))
        .filter(|&(d, _)| (1..=2).contains(&d))
        .min_by_key(|&(d, _)| d)
        .map(|(_, var)| var)
}

/// The variable an unknown `RESILIENCE_…` name was likely meant to be: one of ours in lower
/// or mixed case (`retry_max_attempts`), a switch without its prefix (`RETRY_ENABLED`), a
/// global setting given
/// the prefix that globals do not take (`RESILIENCE_RETRY_MAX_ATTEMPTS`), or a provider's
/// setting with its setting part misspelt (`RESILIENCE_KIMI_RETRY_MAX_ATEMPTS`: within two
/// edits, a swap of neighbours one, of a setting part of more than four characters).
pub(crate) fn meant(unknown: &str) -> Option<String> {
    if let Some(upper) = in_another_case(unknown) {
        let meant = meant(&upper).unwrap_or(upper);
        return Some(format!("{meant} (names are read in upper case only)"));
    }
    let Some(rest) = unknown.strip_prefix("RESILIENCE_") else {
        return unprefixed_switch(unknown)
            .map(|var| format!("{var} (the on/off switches take the RESILIENCE_ prefix)"));
    };
    if let Some(k) = KEYS.iter().find(|k| k.var() == rest) {
        return Some(format!(
            "{} (of the global settings, only the on/off switches take the RESILIENCE_ prefix)",
            k.var()
        ));
    }
    // A prefixed global misspelt (`RESILIENCE_STICT`, `RESILIENCE_ENABLD`): it has no `_` to
    // split a provider off at, or splits into a provider part that is not one. Its distance is
    // the whole name's, so a provider's setting misspelt (`RESILIENCE_X_ENABLD`, 3 from
    // `RESILIENCE_ENABLED`) is still found below; a tie goes to the global.
    let mut best: Option<(usize, String)> = KEYS
        .iter()
        .map(|k| k.var())
        .chain(crate::registry::OTHER_VARIABLES.iter().copied())
        .filter(|var| var.starts_with("RESILIENCE_"))
        .map(|var| (strsim::osa_distance(unknown, var), var))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(d, var)| (d, var.to_owned()));
    let suffixes = KEYS
        .iter()
        .map(|k| k.var().strip_prefix("RESILIENCE_").unwrap_or(k.var()));
    for (i, _) in rest.match_indices('_').filter(|&(i, _)| i > 0) {
        let (provider, tail) = (&rest[..i], &rest[i + 1..]);
        for suffix in suffixes.clone() {
            let d = strsim::osa_distance(tail, suffix);
            if d <= 2 && suffix.len() > 4 && best.as_ref().is_none_or(|(b, _)| d < *b) {
                // The provider part in the form a provider reads (`kimi` → `KIMI`).
                let provider = env_provider_name(provider);
                best = Some((d, format!("RESILIENCE_{provider}_{suffix}")));
            }
        }
    }
    best.map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_global_misspelt_without_the_prefix_is_near_one_of_ours() {
        for (typo, var) in [
            ("RETRY_MAX_ATEMPTS", "RETRY_MAX_ATTEMPTS"),
            ("RETRY_MAX_ATTEMPT", "RETRY_MAX_ATTEMPTS"),
            ("CIRCUIT_BREAKER_TIMOUT", "CIRCUIT_BREAKER_TIMEOUT"),
            ("RETRY_BASE_DELAYS", "RETRY_BASE_DELAY"),
            ("RETRY_ENABLD", "RESILIENCE_RETRY_ENABLED"),
            // Two edits: still near.
            ("RETRY_MAX_ATEMTS", "RETRY_MAX_ATTEMPTS"),
            ("CIRCUIT_BREAKR_TIMOUT", "CIRCUIT_BREAKER_TIMEOUT"),
        ] {
            assert_eq!(near_global(typo), Some(var), "{typo}");
        }
        // Ours exactly, prefixed, in lower case (`in_another_case`'s), far off, or near the
        // bare `ENABLED`: not said.
        for name in [
            "RETRY_MAX_ATTEMPTS",
            "RETRY_ENABLED",
            "RESILIENCE_RETRY_MAX_ATEMPTS",
            "retry_max_atempts",
            "RETRY_COUNT",
            // Three edits: too far to be told from another program's.
            "RETRY_MAX_ATMPS",
            "PATH",
            "ENABLE",
            "ENABLED",
        ] {
            assert_eq!(near_global(name), None, "{name}");
        }
        let scan = scan_provider_vars(
            env(&[
                ("RETRY_MAX_ATEMPTS", "4"),
                ("RETRY_MAX_ATTEMPTS", "3"),
                ("HOME", "/"),
            ])
            .into_iter(),
            &[],
        );
        assert_eq!(
            scan.near_globals,
            [("RETRY_MAX_ATEMPTS".to_owned(), "RETRY_MAX_ATTEMPTS")]
        );
        assert!(scan.unknown.is_empty(), "{:?}", scan.unknown);
    }

    #[test]
    fn an_unknown_variable_names_the_one_meant() {
        assert_eq!(
            meant("RESILIENCE_RETRY_MAX_ATTEMPTS").as_deref(),
            Some(
                "RETRY_MAX_ATTEMPTS (of the global settings, only the on/off switches take the RESILIENCE_ prefix)"
            )
        );
        assert_eq!(
            meant("RETRY_ENABLED").as_deref(),
            Some("RESILIENCE_RETRY_ENABLED (the on/off switches take the RESILIENCE_ prefix)")
        );
        assert_eq!(
            meant("CIRCUIT_BREAKER_ENABLED").as_deref(),
            Some(
                "RESILIENCE_CIRCUIT_BREAKER_ENABLED (the on/off switches take the RESILIENCE_ prefix)"
            )
        );
        assert_eq!(meant("RETRY_MAX_ATTEMPTS"), None);
        assert_eq!(meant("ENABLED"), None);
        assert_eq!(
            meant("RESILIENCE_KIMI_RETRY_MAX_ATEMPTS").as_deref(),
            Some("RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS")
        );
        assert_eq!(
            meant("RESILIENCE_KIMI_V2_CIRCUIT_BREAKER_TIMOUT").as_deref(),
            Some("RESILIENCE_KIMI_V2_CIRCUIT_BREAKER_TIMEOUT")
        );
        assert_eq!(
            meant("RESILIENCE_GLM_RETRY_JITER").as_deref(),
            Some("RESILIENCE_GLM_RETRY_JITTER")
        );
        assert_eq!(
            meant("RESILIENCE_kimi-v2_RETRY_MAX_ATEMPTS").as_deref(),
            Some("RESILIENCE_KIMI_V2_RETRY_MAX_ATTEMPTS")
        );
        assert_eq!(meant("RESILIENCE_SOMETHING_ELSE"), None);
        // Not `meant`'s: no prefix; `near_global` says it, as a warning only.
        assert_eq!(meant("RETRY_MAX_ATEMPTS"), None);
        // A prefixed global misspelt, whole.
        for (typo, var) in [
            ("RESILIENCE_STICT", "RESILIENCE_STRICT"),
            ("RESILIENCE_STRICTT", "RESILIENCE_STRICT"),
            ("RESILIENCE_ENABLD", "RESILIENCE_ENABLED"),
            ("RESILIENCE_METRICS_ADR", "RESILIENCE_METRICS_ADDR"),
            ("RESILIENCE_RETRY_ENABLD", "RESILIENCE_RETRY_ENABLED"),
            // Two edits.
            ("RESILIENCE_ENBLD", "RESILIENCE_ENABLED"),
            ("RESILIENCE_SRTICT_", "RESILIENCE_STRICT"),
        ] {
            assert_eq!(meant(typo).as_deref(), Some(var), "{typo}");
        }
        // Three edits: none.
        assert_eq!(meant("RESILIENCE_ENBL"), None);
        // A provider's setting misspelt is still the provider's.
        assert_eq!(
            meant("RESILIENCE_X_ENABLD").as_deref(),
            Some("RESILIENCE_X_ENABLED")
        );
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve(pairs: &[(&str, &str)], provider: &str) -> (Config, Vec<ConfigProblem>) {
        let map = env(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        let (g, mut p1) = Settings::from_env(&lookup, None);
        let (p, p2) = Settings::from_env(&lookup, Some(provider));
        let (c, p3) = p.over(&g).resolve();
        p1.extend(p2);
        p1.extend(p3);
        (c, p1)
    }

    /// A duration may carry a unit, as Go and humantime write one; a bare number is seconds.
    #[test]
    fn durations_take_a_unit() {
        let ms = Duration::from_millis;
        for (raw, d) in [
            ("300ms", ms(300)),
            ("0.5ms", Duration::from_micros(500)),
            ("2s", ms(2000)),
            ("2 s", ms(2000)),
            ("1.5m", ms(90_000)),
            ("1h", ms(3_600_000)),
            ("2", ms(2000)),
            ("1e3ms", ms(1000)),
            ("8760h", Duration::from_secs(MAX_SECS)),
        ] {
            assert_eq!(
                Key::MaxDelay.parse(raw),
                Some(Value::Secs(d)),
                "RETRY_MAX_DELAY={raw}"
            );
        }
        assert_eq!(
            Key::AttemptTimeout.parse("300ms"),
            Some(Value::OptSecs(Some(ms(300))))
        );
        let (c, problems) = resolve(
            &[
                ("RESILIENCE_KIMI_RETRY_ATTEMPT_TIMEOUT", "300ms"),
                ("CIRCUIT_BREAKER_TIMEOUT", "30s"),
            ],
            "kimi",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (c.attempt_timeout, c.breaker_timeout),
            (Some(ms(300)), Duration::from_secs(30))
        );
        // Not a unit, in another case, alone, negative, past a year: refused, the units named.
        for raw in ["2S", "2sec", "ms", "-1s", "8761h", "1d", "2 ss"] {
            let (_, problems) = resolve(&[("RETRY_MAX_DELAY", raw)], "kimi");
            assert_eq!(problems.len(), 1, "{raw}: {problems:?}");
            assert!(
                problems[0]
                    .expected
                    .contains("or with a unit: 300ms, 2s, 1.5m, 1h"),
                "{raw}: {problems:?}"
            );
        }
    }

    /// A minute or an hour is scaled as written, before the cut to the nanosecond: the digits
    /// past a minute's or an hour's nanosecond still make nanoseconds.
    #[test]
    fn minutes_and_hours_are_exact_past_their_nanosecond() {
        for (raw, d) in [
            ("0.0000000001h", Duration::from_nanos(360)),
            ("1.0000000001h", Duration::new(3600, 360)),
            ("0.00000000001m", Duration::ZERO),
            ("0.0000000000166666m", Duration::ZERO),
            ("0.0000000000166667m", Duration::from_nanos(1)),
            (
                "8759.99999999999999h",
                Duration::new(MAX_SECS - 1, 999_999_999),
            ),
            ("1.5e-11h", Duration::from_nanos(54)),
        ] {
            assert_eq!(parse_secs(raw), Some(d), "{raw}");
        }
        // 360 ns is above 0, and a hair under the year below it.
        for raw in ["0.0000000001h", "8759.99999999999999h"] {
            assert!(Key::AttemptTimeout.parse(raw).is_some(), "{raw}");
        }
    }

    #[test]
    fn defaults_are_the_original_plan() {
        let (c, problems) = resolve(&[], "kimi");
        assert!(problems.is_empty());
        assert_eq!(c, Config::default());
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.base_delay, Duration::from_secs(1));
        assert_eq!(c.max_delay, Duration::from_secs(60));
        assert_eq!(c.exponential_base, 2.0);
        assert_eq!(c.jitter, Jitter::Full);
        assert_eq!(c.failure_threshold, 5);
        assert_eq!(c.success_threshold, 2);
        assert_eq!(c.breaker_timeout, Duration::from_secs(60));
        assert_eq!(c.half_open_max_calls, 1);
        assert!(c.enabled && c.retry_enabled && c.breaker_enabled && c.retry_budget_enabled);
    }

    /// Values past what the setting holds are refused with the bounds, not only the floor
    /// (4294967296 is "a whole number, at least 1"); a budget ratio under one millionth would
    /// deposit nothing per call.
    #[test]
    fn refusals_state_the_whole_range() {
        for var in [
            "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
            "RETRY_BUDGET_CAPACITY",
            "CIRCUIT_BREAKER_MINIMUM_CALLS",
        ] {
            let (_, problems) = resolve(&[(var, "4294967296")], "kimi");
            assert_eq!(problems.len(), 1, "{var}");
            assert!(
                problems[0].expected.contains("from 1 to 4294967295"),
                "{}",
                problems[0]
            );
        }
        let (c, problems) = resolve(&[("RETRY_BUDGET_RATIO", "0.0000001")], "kimi");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].expected.contains("0.000001"), "{}", problems[0]);
        assert_eq!(c.retry_budget_ratio, Config::default().retry_budget_ratio);
        for good in ["0", "0.000001", "5"] {
            let (_, problems) = resolve(&[("RETRY_BUDGET_RATIO", good)], "kimi");
            assert!(problems.is_empty(), "{good}: {problems:?}");
        }
    }

    #[test]
    fn good_values_parse() {
        let (c, problems) = resolve(
            &[
                ("RESILIENCE_ENABLED", "yes"),
                ("RETRY_MAX_ATTEMPTS", " 4 "),
                ("RETRY_BASE_DELAY", "0.25"),
                ("RETRY_MAX_DELAY", "10"),
                ("RETRY_EXPONENTIAL_BASE", "3"),
                ("RETRY_JITTER", "false"),
                ("RETRY_ATTEMPT_TIMEOUT", "2.5"),
                ("RETRY_TOTAL_TIMEOUT", "none"),
                ("CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
                ("CIRCUIT_BREAKER_WINDOW_SIZE", "50"),
                ("CIRCUIT_BREAKER_MINIMUM_CALLS", "10"),
                ("RESILIENCE_CIRCUIT_BREAKER_ENABLED", "OFF"),
            ],
            "kimi",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.max_attempts, 4);
        assert_eq!(c.base_delay, Duration::from_millis(250));
        assert_eq!(c.max_delay, Duration::from_secs(10));
        assert_eq!(c.exponential_base, 3.0);
        assert_eq!(c.jitter, Jitter::None);
        assert_eq!(c.attempt_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(c.total_timeout, None);
        assert_eq!(c.failure_rate, Some(0.5));
        assert_eq!((c.window_size, c.minimum_calls), (50, 10));
        assert!(!c.breaker_enabled);
        for (s, j) in [
            ("true", Jitter::Full),
            ("equal", Jitter::Equal),
            ("Decorrelated", Jitter::Decorrelated),
            ("none", Jitter::None),
            ("full", Jitter::Full),
        ] {
            let (c, p) = resolve(&[("RETRY_JITTER", s)], "x");
            assert!(p.is_empty());
            assert_eq!(c.jitter, j, "{s}");
        }
    }

    #[test]
    fn provider_overrides_global_and_names_are_normalised() {
        let (c, problems) = resolve(
            &[
                ("RETRY_MAX_ATTEMPTS", "4"),
                ("RESILIENCE_KIMI_V2_RETRY_MAX_ATTEMPTS", "5"),
                ("RESILIENCE_KIMI_V2_CIRCUIT_BREAKER_TIMEOUT", "0.5"),
                ("RESILIENCE_KIMI_V2_ENABLED", "false"),
                ("RESILIENCE_GLM_RETRY_MAX_ATTEMPTS", "9"),
            ],
            "kimi-v2",
        );
        assert!(problems.is_empty());
        assert_eq!(c.max_attempts, 5);
        assert_eq!(c.breaker_timeout, Duration::from_millis(500));
        assert!(!c.enabled);
        assert_eq!(
            provider_variable("kimi", "RESILIENCE_RETRY_ENABLED"),
            "RESILIENCE_KIMI_RETRY_ENABLED"
        );
        assert_eq!(
            provider_variable("glm.4", "CIRCUIT_BREAKER_TIMEOUT"),
            "RESILIENCE_GLM_4_CIRCUIT_BREAKER_TIMEOUT"
        );
    }

    #[test]
    fn bad_values_are_named_and_fall_back() {
        let cases: &[(&str, &str)] = &[
            ("RETRY_MAX_ATTEMPTS", "abc"),
            ("RETRY_MAX_ATTEMPTS", "0"),
            ("RETRY_MAX_ATTEMPTS", "-1"),
            ("RETRY_BASE_DELAY", "-1"),
            ("RETRY_BASE_DELAY", "NaN"),
            ("RETRY_MAX_DELAY", "inf"),
            ("RETRY_EXPONENTIAL_BASE", "0.5"),
            ("RETRY_JITTER", "sometimes"),
            ("CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "0"),
            ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "0"),
            ("CIRCUIT_BREAKER_FAILURE_RATE", "1.5"),
            ("RETRY_ATTEMPT_TIMEOUT", "0"),
            ("RESILIENCE_ENABLED", "maybe"),
            ("RETRY_BUDGET_RATIO", "-0.1"),
        ];
        for (var, value) in cases {
            let (c, problems) = resolve(&[(var, value)], "kimi");
            assert_eq!(problems.len(), 1, "{var}={value}: {problems:?}");
            assert_eq!(problems[0].variable, *var);
            assert_eq!(problems[0].value, *value);
            assert!(!problems[0].expected.is_empty());
            assert_eq!(
                c,
                Config::default(),
                "{var}={value} must fall back to the default"
            );
        }
        let (_, problems) = resolve(&[("RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS", "x")], "kimi");
        assert_eq!(problems[0].variable, "RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS");
        let shown = problems[0].to_string();
        assert!(
            shown.contains("RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS=x: expected"),
            "{shown}"
        );
        assert!(shown.contains("whole number"), "{shown}");
    }

    #[test]
    fn base_above_max_is_reported_and_capped() {
        let (c, problems) = resolve(
            &[
                ("RETRY_BASE_DELAY", "5"),
                ("RESILIENCE_KIMI_RETRY_MAX_DELAY", "2"),
            ],
            "kimi",
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].variable, "RETRY_BASE_DELAY");
        assert!(
            problems[0]
                .expected
                .contains("RESILIENCE_KIMI_RETRY_MAX_DELAY=2"),
            "{}",
            problems[0].expected
        );
        assert_eq!(c.base_delay, Duration::from_secs(1));
        assert_eq!(c.max_delay, Duration::from_secs(2));
    }

    #[test]
    fn a_refused_value_is_not_reported_again_by_a_conflict() {
        // Refused, the base is no setting: the default base follows the small max down, as
        // with no base given, and the one problem names the value given.
        let (c, problems) = Settings::new()
            .base_delay(Duration::from_secs(2 * 31_536_000))
            .max_delay(Duration::from_millis(500))
            .resolve();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].value, "63072000");
        assert_eq!(c.base_delay, Duration::from_millis(500));
        let (c, problems) = Settings::new()
            .failure_rate(Some(0.5))
            .window_size(10)
            .minimum_calls(0)
            .resolve();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].value, "0");
        assert_eq!(c.minimum_calls, 10);
        // A refused cap is named by the default that applies, not as the setting refused.
        let (_, problems) = Settings::new()
            .base_delay(Duration::from_secs(100))
            .max_delay(Duration::from_secs(2 * 31_536_000))
            .resolve();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[1].value, "100");
        assert!(
            problems[1].expected.ends_with("(RETRY_MAX_DELAY=60)"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_small_max_delay_alone_takes_the_base_down_and_huge_durations_are_refused() {
        let (c, problems) = Settings::new()
            .max_delay(Duration::from_millis(500))
            .resolve();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (c.base_delay, c.max_delay),
            (Duration::from_millis(500), Duration::from_millis(500))
        );
        let (c, problems) = resolve(&[("RETRY_TOTAL_TIMEOUT", "1e19")], "kimi");
        assert_eq!(problems.len(), 1);
        assert_eq!(c.total_timeout, None);
        let (_, problems) = Settings::new().total_timeout(Some(Duration::MAX)).resolve();
        assert_eq!(problems[0].variable, "Settings::total_timeout");
        // The messages say "from 0 to 31536000": both ends are accepted, one more is not.
        let year = Duration::from_secs(31_536_000);
        let (c, problems) = Settings::new().max_delay(year).resolve();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.max_delay, year);
        let (_, problems) = resolve(&[("RETRY_MAX_DELAY", "31536000.001")], "kimi");
        assert_eq!(problems.len(), 1, "{problems:?}");
        // A nanosecond past the limit is shown as it is, not rounded onto the limit.
        let (_, problems) = Settings::new()
            .base_delay(year + Duration::from_nanos(1))
            .resolve();
        assert_eq!(problems[0].value, "31536000.000000001");
        let (_, problems) = Settings::new()
            .max_delay(Duration::from_millis(1500))
            .base_delay(Duration::from_millis(2250))
            .resolve();
        assert_eq!(problems[0].value, "2.25");
        assert!(problems[0].expected.ends_with("=1.5)"), "{problems:?}");
        // A positive number of seconds that rounds to no time is told apart from 0.
        let (_, problems) = resolve(&[("RETRY_ATTEMPT_TIMEOUT", "1e-10")], "kimi");
        assert!(
            problems[0].expected.contains("1 ns at least"),
            "{problems:?}"
        );
    }

    #[test]
    fn code_values_are_checked_and_layered() {
        let code = Settings::new().exponential_base(f64::NAN).max_attempts(7);
        let (c, problems) = code.resolve();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].variable, "Settings::exponential_base");
        assert_eq!(c.max_attempts, 7);
        assert_eq!(c.exponential_base, 2.0);
        let env_layer = Settings::new().max_attempts(2);
        assert_eq!(env_layer.over(&code).resolve().0.max_attempts, 2);
    }

    #[test]
    fn scan_finds_provider_variables_and_typos() {
        let vars = env(&[
            ("RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS", "abc"),
            ("RESILIENCE_KIMI_RETRY_ENABLED", "true"),
            ("RESILIENCE_GLM_CIRCUIT_BREAKER_TIMEOUT", "0.5"),
            ("RESILIENCE_ENABLED", "true"),
            ("RESILIENCE_METRICS_ADDR", "127.0.0.1:1"),
            ("RESILIENCE_KIMI_RETRY_MAX_ATEMPTS", "3"),
            ("PATH", "/bin"),
            ("RETRY_MAX_ATTEMPTS", "4"),
            ("ENABLED", "1"),
            ("RETRY_ENABLED", "false"),
        ]);
        let Scan {
            problems,
            misnamed,
            mut unknown,
            near_globals,
            providers,
            ..
        } = scan_provider_vars(vars.into_iter(), &["RESILIENCE_METRICS_ADDR"]);
        assert!(near_globals.is_empty(), "{near_globals:?}");
        // In the map's order.
        unknown.sort();
        assert!(misnamed.is_empty(), "{misnamed:?}");
        assert!(
            providers.contains(&"KIMI".to_string()) && providers.contains(&"GLM".to_string()),
            "{providers:?}"
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].variable, "RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS");
        assert_eq!(
            unknown,
            ["RESILIENCE_KIMI_RETRY_MAX_ATEMPTS", "RETRY_ENABLED"]
        );
    }

    /// A variable no provider can read (its provider part not upper case) is refused by its
    /// name: its value, which nothing reads and which may be a secret, is neither kept nor
    /// shown, redacted or not.
    #[test]
    fn a_misnamed_variable_is_refused_without_its_value() {
        let secret = "sk-live-0123456789abcdef";
        let vars = env(&[("RESILIENCE_kimi_RETRY_JITTER", secret)]);
        let misnamed = scan_provider_vars(vars.into_iter(), &[]).misnamed;
        let [p] = &misnamed[..] else {
            panic!("{misnamed:?}")
        };
        let shown = format!("{p} {p:?}");
        assert!(
            !shown.contains(secret) && !p.value.contains(secret),
            "{shown}"
        );
        assert!(
            p.to_string()
                .starts_with("RESILIENCE_kimi_RETRY_JITTER: expected the provider upper-cased"),
            "{p}"
        );
    }

    /// Where names are found whatever their case (Windows), a provider's variable in another
    /// case is the provider's: its value is checked, and its name is not "read by no
    /// provider". One that differs in more than case still is.
    #[test]
    fn a_provider_variable_in_another_case_is_read_where_case_does_not_matter() {
        let vars = || {
            env(&[
                ("RESILIENCE_kimi_RETRY_JITTER", "full"),
                ("resilience_glm_retry_max_attempts", "abc"),
                ("RESILIENCE_KIMI-V2_RETRY_JITTER", "full"),
            ])
        };
        let mut scan = scan_names(vars().into_iter(), &[], true);
        scan.providers.sort();
        assert_eq!(scan.providers, ["GLM", "KIMI"]);
        let [bad] = &scan.problems[..] else {
            panic!("{:?}", scan.problems)
        };
        assert_eq!(
            bad.to_string(),
            format!(
                "RESILIENCE_GLM_RETRY_MAX_ATTEMPTS=abc: expected {}",
                Key::MaxAttempts.expected()
            )
        );
        let [misnamed] = &scan.misnamed[..] else {
            panic!("{:?}", scan.misnamed)
        };
        assert_eq!(misnamed.variable, "RESILIENCE_KIMI-V2_RETRY_JITTER");
        assert!(scan.unknown.is_empty(), "{:?}", scan.unknown);
        // Where case matters, the first is read by no provider, and the second is a typo.
        let scan = scan_names(vars().into_iter(), &[], false);
        assert!(scan.providers.is_empty(), "{:?}", scan.providers);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(scan.misnamed.len(), 2, "{:?}", scan.misnamed);
        assert_eq!(scan.unknown, ["resilience_glm_retry_max_attempts"]);
    }

    /// A name read in upper case only (outside Windows), written in
    /// another case (`resilience_enabled=false` in a compose file, `retry_max_attempts`), was
    /// ignored without a word, while `RESILIENCE_kimi_…` is refused: it is a typo too, said
    /// with the name meant. Names of other programs' in lower case stay unsaid.
    #[test]
    fn a_name_of_ours_in_another_case_is_a_typo() {
        let vars = env(&[
            ("resilience_enabled", "false"),
            ("retry_max_attempts", "5"),
            ("Circuit_Breaker_Timeout", "2"),
            ("resilience_kimi_retry_max_attempts", "7"),
            ("Resilience_Metrics_Addr", "0.0.0.0:9464"),
            ("retry_after", "5"),
            ("path", "/bin"),
            ("enabled", "1"),
        ]);
        let mut unknown =
            scan_provider_vars(vars.into_iter(), &["RESILIENCE_METRICS_ADDR"]).unknown;
        unknown.sort();
        if cfg!(windows) {
            // Read there whatever their case: no typo.
            assert_eq!(unknown, Vec::<String>::new());
            return;
        }
        assert_eq!(
            unknown,
            [
                "Circuit_Breaker_Timeout",
                "Resilience_Metrics_Addr",
                "resilience_enabled",
                "resilience_kimi_retry_max_attempts",
                "retry_max_attempts",
            ]
        );
        for (typo, upper) in [
            ("resilience_enabled", "RESILIENCE_ENABLED"),
            ("retry_max_attempts", "RETRY_MAX_ATTEMPTS"),
            ("Circuit_Breaker_Timeout", "CIRCUIT_BREAKER_TIMEOUT"),
            (
                "resilience_kimi_retry_max_attempts",
                "RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS",
            ),
        ] {
            assert_eq!(
                meant(typo),
                Some(format!("{upper} (names are read in upper case only)")),
                "{typo}"
            );
        }
    }

    /// The README's table of variables is a contract: each row's variable, in `variables()`'s
    /// order, its default as the variable would be given it, and its `Settings` method.
    #[test]
    fn the_readme_table_is_the_code_s() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        // Not packaged with the crate: checked in the workspace only.
        let Ok(readme) = std::fs::read_to_string(path) else {
            return;
        };
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("a Configuration section");
        let rows: Vec<Vec<&str>> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let unquote = |s: &str| s.trim_matches('`').to_owned();
        let ours: Vec<&Vec<&str>> = rows
            .iter()
            .filter(|r| unquote(r[0]) != "RESILIENCE_METRICS_ADDR")
            .collect();
        let vars: Vec<String> = ours.iter().map(|r| unquote(r[0])).collect();
        assert_eq!(vars, variables().collect::<Vec<_>>());
        let default = Config::default();
        for (row, &key) in ours.iter().zip(KEYS) {
            assert_eq!(row.len(), 4, "{row:?}");
            assert_eq!(
                key.parse(&unquote(row[1])),
                Some(default.value(key)),
                "{}: default {}",
                key.var(),
                row[1]
            );
            assert!(
                row[3].starts_with(&format!("`{}(", key.setter())),
                "{}: {}",
                key.var(),
                row[3]
            );
        }
        let addr = rows
            .iter()
            .find(|r| unquote(r[0]) == "RESILIENCE_METRICS_ADDR")
            .expect("RESILIENCE_METRICS_ADDR's row");
        #[cfg(feature = "telemetry")]
        assert_eq!(unquote(addr[1]), crate::telemetry::DEFAULT_ADDR);
        let _ = addr;
    }

    /// Review: with the switch set under its own name, a bare one is another program's.
    #[test]
    fn a_bare_switch_beside_the_prefixed_one_is_not_a_typo() {
        let vars = env(&[
            ("RESILIENCE_RETRY_ENABLED", "false"),
            ("RETRY_ENABLED", "true"),
        ]);
        let scan = scan_provider_vars(vars.into_iter(), &[]);
        assert!(scan.unknown.is_empty(), "{:?}", scan.unknown);
    }

    /// A bare switch in lower case (`retry_enabled`) beside the prefixed
    /// switch it would be is another program's, as `RETRY_ENABLED` there is (README,
    /// "Typos"); the retain that says so compared the lower-case name, and warned.
    #[cfg(not(windows))]
    #[test]
    fn a_bare_switch_in_lower_case_beside_the_prefixed_one_is_not_a_typo() {
        let vars = env(&[
            ("RESILIENCE_RETRY_ENABLED", "false"),
            ("retry_enabled", "true"),
        ]);
        let scan = scan_provider_vars(vars.into_iter(), &[]);
        assert!(scan.unknown.is_empty(), "{:?}", scan.unknown);
        // Alone, it is still said, as `RETRY_ENABLED` is.
        let scan = scan_provider_vars(env(&[("retry_enabled", "true")]).into_iter(), &[]);
        assert_eq!(scan.unknown, ["retry_enabled"]);
    }

    /// A lower-case name with our prefix that is no name of ours in upper
    /// case either (another tool's `resilience_hub_region`) is not "one of ours in another
    /// case": it was warned about, with a "did you mean RESILIENCE_HUB_REGION", a name that
    /// nothing reads. One that is ours, or near one, in upper case still is.
    #[cfg(not(windows))]
    #[test]
    fn a_lower_case_name_that_is_none_of_ours_in_upper_case_is_not_a_typo() {
        let vars = env(&[
            ("resilience_hub_region", "eu-west-1"),
            ("Resilience_Profile", "strict"),
            ("resilience_kimi_retry_max_atempts", "5"),
            ("resilience_kimi_retry_max_attempts", "5"),
            ("resilience_metrics_addr", "0.0.0.0:9464"),
        ]);
        let mut unknown =
            scan_provider_vars(vars.into_iter(), &["RESILIENCE_METRICS_ADDR"]).unknown;
        unknown.sort();
        assert_eq!(
            unknown,
            [
                "resilience_kimi_retry_max_atempts",
                "resilience_kimi_retry_max_attempts",
                "resilience_metrics_addr",
            ]
        );
        assert_eq!(meant("resilience_hub_region"), None);
        assert_eq!(
            meant("resilience_kimi_retry_max_atempts").as_deref(),
            Some("RESILIENCE_KIMI_RETRY_MAX_ATTEMPTS (names are read in upper case only)")
        );
    }

    /// Review: a duration in exponent form is read as exactly as in plain form; through an
    /// `f64`, `3.1536000000000001e7` (the year and a nanosecond) was taken as the year, and
    /// `9e-10` was a nanosecond where `0.0000000009` is under one.
    #[test]
    fn a_duration_reads_alike_in_every_notation() {
        let year = Duration::from_secs(MAX_SECS);
        let (_, problems) = resolve(&[("RETRY_MAX_DELAY", "3.1536000000000001e7")], "kimi");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let (c, problems) = resolve(
            &[("RETRY_TOTAL_TIMEOUT", "3.1535999999999999999e7")],
            "kimi",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.total_timeout, Some(year - Duration::from_nanos(1)));
        for (plain, exponent) in [
            ("31536000.000000001", "3.1536000000000001e7"),
            ("31536000.000000001", "31536000000000001E-9"),
            ("31535999.999999999", "3.1535999999999999999e7"),
            ("0.0000000009", "9e-10"),
            ("0.0000000005", "5e-10"),
            ("0.0000000015", "1.5e-9"),
            ("1.0000000005", "1.0000000005e0"),
            ("2.5", "25e-1"),
            ("1000", "1e3"),
            ("1000", "1.e+3"),
            ("0", "0e99999999999999999999999"),
            ("0", "-0.0e-5"),
            ("0", "+0E+0"),
        ] {
            for key in [
                Key::BaseDelay,
                Key::MaxDelay,
                Key::AttemptTimeout,
                Key::TotalTimeout,
            ] {
                assert_eq!(
                    key.parse(plain),
                    key.parse(exponent),
                    "{key:?}: {plain} vs {exponent}"
                );
            }
        }
    }

    /// Review: past the year by less than the nanosecond kept, a duration was cut down to
    /// the year, which the message allows.
    #[test]
    fn a_duration_past_the_year_by_a_fraction_of_a_nanosecond_is_refused() {
        let year = Duration::from_secs(MAX_SECS);
        for past in [
            "31536000.0000000001",
            "31536000.00000000000000000001",
            "3.15360000000000000001e7",
        ] {
            let (c, problems) = resolve(&[("RETRY_MAX_DELAY", past)], "kimi");
            assert_eq!(problems.len(), 1, "{past}: {problems:?}");
            assert_eq!(c.max_delay, Config::default().max_delay);
        }
        for at in ["31536000.0000000000", "31536000", "3.1536e7"] {
            let (c, problems) = resolve(&[("CIRCUIT_BREAKER_TIMEOUT", at)], "kimi");
            assert!(problems.is_empty(), "{at}: {problems:?}");
            assert_eq!(c.breaker_timeout, year);
        }
        let (c, problems) = resolve(&[("RETRY_ATTEMPT_TIMEOUT", "31535999.9999999999")], "kimi");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.attempt_timeout, Some(year - Duration::from_nanos(1)));
    }

    /// Review: a number is checked against its range as written, not as the `f64` it rounds
    /// to: `0.99999999999999999` is below the 1.0 an exponential base needs, though its `f64`
    /// is 1.0.
    #[test]
    fn a_number_rounded_onto_a_bound_from_outside_is_refused() {
        for (var, outside) in [
            ("RETRY_EXPONENTIAL_BASE", "0.99999999999999999"),
            ("RETRY_EXPONENTIAL_BASE", "1000.00000000000001"),
            ("RETRY_EXPONENTIAL_BASE", "1.00000000000000001e3"),
            ("CIRCUIT_BREAKER_FAILURE_RATE", "1.00000000000000001"),
            ("RETRY_BUDGET_RATIO", "0.00000099999999999999999"),
            ("RETRY_BUDGET_RATIO", "9.9999999999999999999e-7"),
        ] {
            let (c, problems) = resolve(&[(var, outside)], "kimi");
            assert_eq!(problems.len(), 1, "{var}={outside}: {problems:?}");
            assert_eq!(c, Config::default(), "{var}={outside}");
        }
        for (var, inside) in [
            ("RETRY_EXPONENTIAL_BASE", "1.00000000000000001"),
            ("RETRY_EXPONENTIAL_BASE", "999.999999999999999"),
            ("RETRY_EXPONENTIAL_BASE", "1e0"),
            ("RETRY_EXPONENTIAL_BASE", "1000.000"),
            ("CIRCUIT_BREAKER_FAILURE_RATE", "0.99999999999999999"),
            ("CIRCUIT_BREAKER_FAILURE_RATE", "1"),
            ("CIRCUIT_BREAKER_FAILURE_RATE", "1e-400"),
            ("RETRY_BUDGET_RATIO", "0.00000100000000000000001"),
            ("RETRY_BUDGET_RATIO", "1e-6"),
            ("RETRY_BUDGET_RATIO", "-0"),
            ("RETRY_BUDGET_MIN_PER_SECOND", "-0.0"),
        ] {
            let (_, problems) = resolve(&[(var, inside)], "kimi");
            assert!(problems.is_empty(), "{var}={inside}: {problems:?}");
        }
    }

    /// Review: the exact reader takes the forms an `f64` is read from, no more and no less
    /// (less the words, no finite number), and any duration written in any of them, with any
    /// number of zeros, is read as that duration to the nanosecond (seeded).
    #[test]
    fn the_exact_reader_takes_the_forms_of_an_f64_and_any_notation_of_a_duration() {
        use rand::{Rng, SeedableRng};
        let pieces = [
            "",
            "+",
            "-",
            "0",
            "00",
            "1",
            "7",
            "9",
            ".",
            "e",
            "E",
            "e-",
            "E+",
            "inf",
            "NaN",
            "infinity",
            "\u{663}",
            "x",
            " ",
            "_",
            "999999999999999999999",
        ];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(132);
        for _ in 0..20_000 {
            let s: String = (0..rng.random_range(1..=6))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            let word = matches!(
                s.strip_prefix(['+', '-'])
                    .unwrap_or(&s)
                    .to_ascii_lowercase()
                    .as_str(),
                "inf" | "infinity" | "nan"
            );
            assert_eq!(
                s.parse::<f64>().is_ok(),
                decimal(&s).is_some() || word,
                "{s:?}"
            );
        }
        for _ in 0..20_000 {
            let d = Duration::new(
                rng.random_range(0..=MAX_SECS),
                rng.random_range(0..1_000_000_000),
            );
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            let all = d.as_nanos();
            let zeros = "0".repeat(rng.random_range(0..4));
            let shift = rng.random_range(0..30);
            for text in [
                format!("{zeros}{secs}.{nanos:09}{zeros}"),
                format!("+{all}e-9"),
                format!("{all}{zeros}E-{}", 9 + zeros.len()),
                format!("0.{}{all:028}e{}", "0".repeat(shift), 19 + shift),
                format!("{secs}.{nanos:09}{}e0", rng.random_range(0..10u32)),
            ] {
                assert_eq!(parse_secs(&text), Some(d), "{text}");
            }
        }
    }

    /// `text` trimmed, its unit taken off (white space before it too): the number, a year
    /// and a nanosecond in that unit (a nanosecond is `1 / per_ns` of it).
    fn in_unit(text: &str) -> (&str, u64, u64) {
        let t = text.trim();
        for (unit, year, per_ns) in [
            ("ms", MAX_SECS * 1000, 1_000_000),
            ("s", MAX_SECS, 1_000_000_000),
            ("m", MAX_SECS / 60, 60_000_000_000),
            ("h", MAX_SECS / 3600, 3_600_000_000_000),
        ] {
            if let Some(n) = t.strip_suffix(unit) {
                return (n.trim_end(), year, per_ns);
            }
        }
        (t, MAX_SECS, 1_000_000_000)
    }

    /// `text`, a plain decimal (`[+]digits[.digits]`, trimmed), with a unit or none (seconds),
    /// against a year, exactly, every digit written (one past the nanosecond kept is still
    /// past the year); `None` for any other form (an exponent, a sign, a word).
    fn against_a_year(text: &str) -> Option<std::cmp::Ordering> {
        let (t, year, _) = in_unit(text);
        let t = t.strip_prefix('+').unwrap_or(t);
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let int = int.trim_start_matches('0');
        let year = year.to_string();
        Some(
            int.len()
                .cmp(&year.len())
                .then_with(|| int.cmp(year.as_str()))
                .then_with(|| {
                    if frac.bytes().any(|b| b != b'0') {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                }),
        )
    }

    /// Whether the plain decimal `text`, with a unit or none, is below a nanosecond (0
    /// included): its fraction against the nanosecond's digits in that unit, by long division
    /// (an hour's does not end: 0.000000000000277…).
    fn below_a_nanosecond(text: &str) -> bool {
        let (t, _, per_ns) = in_unit(text);
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if !int.bytes().all(|b| matches!(b, b'0' | b'+')) {
            return false;
        }
        let mut rest = 1;
        for b in frac.bytes() {
            rest *= 10;
            let (digit, due) = (u64::from(b - b'0'), rest / per_ns);
            rest %= per_ns;
            if digit != due {
                return digit < due;
            }
        }
        rest > 0
    }

    /// Review (extremes): every variable, global and per provider, given hostile values (a
    /// fixed table, then random strings of the same pieces, seeded): each is accepted as the
    /// value it writes, within the range its message states, or refused with one problem
    /// that names the variable, the value as given and what was expected, on one line, and
    /// the setting falls back to its default.
    #[test]
    fn every_variable_takes_hostile_values_as_written_or_names_them() {
        use rand::{Rng, SeedableRng};
        let table = [
            "",
            " ",
            "\t",
            "-1",
            "-0",
            "0",
            "-0.0",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "infinity",
            "1e308",
            "1e309",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "4294967295",
            "4294967296",
            "65535",
            "65536",
            "4096",
            "4097",
            "1000",
            "1001",
            "18446744073709551615s",
            "9999999999999h",
            "1e30s",
            "1e30",
            "0.5",
            "2.5",
            "1.0",
            "\u{663}",
            "\u{ff14}",
            "+3",
            "+0.5",
            "0003",
            "1S",
            "1MS",
            "1s",
            "3abc",
            "3 4",
            "3\0",
            "\u{0}3",
            "3\n",
            "3\n4",
            "1e-400",
            "-1e-400",
            "0.0e-400",
            "1e-7",
            "1e-6",
            "0.000001",
            "0x10",
            "1_000",
            "true",
            "TRUE",
            "none",
            "NONE",
            "full",
            "1.",
            ".5",
            "5e-324",
            "31536000",
            "31536000.000000001",
            "31535999.999999999",
            "31535999.9999999999",
            "31536000.0000000001",
            "1e-9",
            "1e-10",
            "0.0000000015",
            "100",
            "1.5",
            "1e-300",
            "\u{3000}4\u{3000}",
            "3\r",
            "\u{200b}3",
            "3\u{202e}",
            "3.1536000000000001e7",
            "3.1535999999999999999e7",
            "31536000000000001e-9",
            "9e-10",
            "5e-10",
            "-0e5",
            "0e99999999999999999999",
            "1e99999999999999999999",
            "0.99999999999999999",
            "1.00000000000000001",
            "1000.00000000000001",
            "0.00000099999999999999999",
            "ms",
            "300ms",
            "1 s",
            "1\ts",
            "1s ",
            "-1s",
            "+2s",
            "1.s",
            ".5s",
            "1e-3s",
            "1_000ms",
            "1S",
            "1sec",
            "1 m s",
            "1m30s",
            "1\u{b5}s",
            "1d",
            "8760h",
            "8760.0000000001h",
            "8759.99999999999999h",
            "525600m",
            "525600.00000000000001m",
            "31536000000ms",
            "31535999999.9999999999ms",
            "0.0000000001h",
            "0.0000000000166666m",
            "0.0000000000166667m",
            "0.000001ms",
            "0.0000009999ms",
            "1e30h",
            "1e99999999999999999999h",
        ];
        let pieces = [
            "",
            " ",
            "+",
            "-",
            "0",
            "1",
            "9",
            ".",
            "e",
            "E",
            "-",
            "inf",
            "NaN",
            "\0",
            "\n",
            "s",
            "ms",
            "m",
            "h",
            "H",
            "\u{663}",
            "\u{ff14}",
            "_",
            "x",
            "1e308",
            "18446744073709551616",
            "31536000",
            "999999999",
        ];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(128);
        let mut values: Vec<String> = table.iter().map(|s| s.to_string()).collect();
        values.extend((0..3000).map(|_| {
            (0..rng.random_range(1..=5))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect::<String>()
        }));
        let mut wrong = Vec::new();
        for &key in KEYS {
            for raw in &values {
                for provider in [None, Some("kimi-v2")] {
                    let var = match provider {
                        None => key.var().to_string(),
                        Some(p) => provider_variable(p, key.var()),
                    };
                    let map = env(&[(&var, raw)]);
                    let lookup = |k: &str| map.get(k).cloned();
                    let (settings, problems) = Settings::from_env(&lookup, provider);
                    let (c, conflicts) = settings.resolve();
                    let Some(v) = key.parse(raw) else {
                        let shown = problems.iter().map(|p| p.to_string()).collect::<Vec<_>>();
                        let named = problems.len() == 1
                            && problems[0].variable == var
                            && problems[0].value == *raw
                            && problems[0].expected == key.expected()
                            && shown[0].starts_with(&format!("{var}="))
                            && shown[0].ends_with(&format!(": expected {}", key.expected()))
                            && !shown[0].contains(['\n', '\r', '\0']);
                        if !named || c.value(key) != Config::default().value(key) {
                            wrong.push(format!("{var}={raw:?}: {shown:?}"));
                        }
                        // Refused for its range: a number the message's range leaves out.
                        let outside = match (key.kind(), against_a_year(raw)) {
                            (Kind::Secs, Some(o)) => o.is_gt(),
                            (Kind::OptSecs, Some(o)) => o.is_ge() || below_a_nanosecond(raw),
                            _ => true,
                        };
                        if !outside {
                            wrong.push(format!("{var}={raw:?} refused, but in range: {shown:?}"));
                        }
                        continue;
                    };
                    // A base delay above the default max delay (60 s) is a conflict, named
                    // with both values.
                    let conflict = key == Key::BaseDelay
                        && matches!(v, Value::Secs(d) if d > Config::default().max_delay);
                    if conflict {
                        let named = conflicts.len() == 1
                            && conflicts[0].variable == var
                            && conflicts[0].value == show(v)
                            && conflicts[0].expected
                                == "at most the maximum delay (RETRY_MAX_DELAY=60)";
                        if !problems.is_empty() || !named {
                            wrong.push(format!("{var}={raw:?}: {problems:?} {conflicts:?}"));
                        }
                    } else if !problems.is_empty() || !conflicts.is_empty() || c.value(key) != v {
                        wrong.push(format!("{var}={raw:?}: {problems:?} {conflicts:?}"));
                    }
                    let sane = match (key.kind(), v) {
                        (
                            Kind::Attempts | Kind::Count | Kind::Count16 | Kind::Window,
                            Value::Count(n),
                        ) => {
                            let t = raw.trim();
                            let digits = t.strip_prefix('+').unwrap_or(t).trim_start_matches('0');
                            digits == n.to_string()
                        }
                        (Kind::Secs, Value::Secs(d)) | (Kind::OptSecs, Value::OptSecs(Some(d))) => {
                            let year = Duration::from_secs(MAX_SECS);
                            let in_range = match against_a_year(raw) {
                                Some(o) if key.kind() == Kind::Secs => o.is_le(),
                                Some(o) => o.is_lt(),
                                None => true,
                            };
                            in_range
                                && d <= year
                                && (key.kind() == Kind::Secs || !d.is_zero() && d < year)
                        }
                        // A number written as 0 only is 0: one too small for an `f64` is not.
                        (Kind::Share | Kind::NonNegative, Value::Float(f)) => {
                            f.is_finite()
                                && f >= 0.0
                                && (f != 0.0 || !writes_a_non_zero(raw.trim()))
                        }
                        (Kind::Base, Value::Float(f)) => (1.0..=1000.0).contains(&f),
                        (Kind::Rate, Value::OptFloat(r)) => r.is_none_or(|r| r > 0.0 && r <= 1.0),
                        (Kind::Bool, Value::Bool(_)) | (Kind::Jitter, Value::Jitter(_)) => true,
                        (Kind::OptSecs, Value::OptSecs(None)) => true,
                        _ => false,
                    };
                    if !sane {
                        wrong.push(format!("{var}={raw:?} accepted as {}", show(v)));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    /// The line that ignores a value names the value used instead and where it comes from:
    /// the next setting in line for a bad value (a global variable's not itself), the
    /// conflict's own rule for a value in conflict, and the cap that then applies.
    #[test]
    fn the_value_used_instead_is_the_one_named() {
        let (c, problems) = resolve(
            &[
                ("RETRY_BASE_DELAY", "5"),
                ("RETRY_MAX_DELAY", "2"),
                ("CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
                ("CIRCUIT_BREAKER_MINIMUM_CALLS", "50"),
                ("RESILIENCE_KIMI_CIRCUIT_BREAKER_WINDOW_SIZE", "10"),
                ("RETRY_MAX_ATTEMPTS", "many"),
                ("RESILIENCE_KIMI_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "0"),
            ],
            "kimi",
        );
        // Kimi sets none of these settings of its own.
        let instead = |problems: &[ConfigProblem], c: &Config, var: &str| {
            let p = problems.iter().find(|p| p.variable == var).unwrap();
            used_instead(p, c, &Layers::default())
        };
        assert_eq!(c.base_delay, Duration::from_secs(1));
        assert_eq!(
            instead(&problems, &c, "RETRY_BASE_DELAY"),
            "1 instead (the built-in base delay, or the maximum delay where that is lower)"
        );
        assert_eq!(c.minimum_calls, 10);
        assert_eq!(
            instead(&problems, &c, "CIRCUIT_BREAKER_MINIMUM_CALLS"),
            "10 instead (the window size)"
        );
        assert_eq!(
            instead(&problems, &c, "RETRY_MAX_ATTEMPTS"),
            format!(
                "{} instead (the next setting in line: the global code settings, then the built-in \
                 default, where the provider sets none of its own)",
                c.max_attempts
            )
        );
        assert_eq!(
            instead(
                &problems,
                &c,
                "RESILIENCE_KIMI_CIRCUIT_BREAKER_FAILURE_THRESHOLD"
            ),
            format!(
                "{} instead (the next setting in line: the provider's code settings, the global \
                 variable, the global code settings, then the built-in default)",
                c.failure_threshold
            )
        );
        // A bad value falls through to the default, which a cap then lowers: the line names
        // the value used, not the default (it named the 1 s default here).
        let (c, problems) = resolve(
            &[
                ("RETRY_BASE_DELAY", "soon"),
                ("RETRY_MAX_DELAY", "0.5"),
                ("CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
                ("CIRCUIT_BREAKER_WINDOW_SIZE", "4"),
                ("RESILIENCE_KIMI_CIRCUIT_BREAKER_MINIMUM_CALLS", "some"),
            ],
            "kimi",
        );
        assert_eq!(c.base_delay, Duration::from_millis(500));
        assert!(
            instead(&problems, &c, "RETRY_BASE_DELAY")
                .starts_with("0.5 instead (the next setting in line: the global code settings,"),
        );
        assert!(
            instead(&problems, &c, "RETRY_BASE_DELAY").ends_with(", at most the maximum delay)"),
        );
        assert_eq!(c.minimum_calls, 4);
        assert!(
            instead(
                &problems,
                &c,
                "RESILIENCE_KIMI_CIRCUIT_BREAKER_MINIMUM_CALLS"
            )
            .starts_with("4 instead (the next setting in line: the provider's code settings,"),
        );
        assert!(
            instead(
                &problems,
                &c,
                "RESILIENCE_KIMI_CIRCUIT_BREAKER_MINIMUM_CALLS"
            )
            .ends_with(", at most the window size)"),
        );
    }

    /// Env over provider code over global env over global code, as `Registry::resolve_own`:
    /// the configuration, the problems and the provider's layers.
    fn resolve_layers(
        pairs: &[(&str, &str)],
        provider: &str,
        provider_code: Settings,
        global_code: Settings,
    ) -> (Config, Vec<ConfigProblem>, Layers) {
        let map = env(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        let (g, mut problems) = Settings::from_env(&lookup, None);
        let (p, p2) = Settings::from_env(&lookup, Some(provider));
        let own = p.over(&provider_code.scoped(&format!("Builder::provider(\"{provider}\")")));
        let below = g.over(&global_code.scoped("Builder::defaults"));
        let (c, p3) = own.over(&below).resolve();
        problems.extend(p2);
        problems.extend(p3);
        (c, problems, Layers { own, below })
    }

    /// A valid value of every setting, none of them the default's.
    fn not_default() -> Config {
        Config {
            enabled: false,
            retry_enabled: false,
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            exponential_base: 3.0,
            jitter: Jitter::Equal,
            attempt_timeout: Some(Duration::from_millis(2500)),
            total_timeout: Some(Duration::from_secs(30)),
            retry_budget_enabled: false,
            retry_budget_ratio: 0.5,
            retry_budget_min_per_second: 2.5,
            retry_budget_capacity: 7,
            breaker_enabled: false,
            failure_threshold: 9,
            success_threshold: 3,
            breaker_timeout: Duration::from_millis(1500),
            half_open_max_calls: 4,
            failure_rate: Some(0.25),
            window_size: 50,
            minimum_calls: 10,
        }
    }

    /// `key` set to `v` in code.
    fn setting(key: Key, v: Value) -> Settings {
        let mut s = Settings::new();
        s.values[key as usize] = Some((v, Source::Code(None)));
        s
    }

    /// For every setting, whichever layer a bad variable falls through to, the line names the
    /// value the provider has, as its variable would take it back (`none`, seconds, `full`).
    #[test]
    fn every_setting_s_line_names_the_value_used_as_its_variable_takes_it() {
        let other = not_default();
        for &k in KEYS {
            let shown = show(other.value(k));
            let own = provider_variable("kimi", k.var());
            // What, the variables, the provider's code settings, the global ones.
            type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Settings, Settings);
            let cases: [Case; 6] = [
                (
                    "bad global",
                    &[(k.var(), "x")],
                    Settings::new(),
                    Settings::new(),
                ),
                (
                    "bad global over global code",
                    &[(k.var(), "x")],
                    Settings::new(),
                    setting(k, other.value(k)),
                ),
                (
                    "bad global beside the provider's own",
                    &[(k.var(), "x"), (own.as_str(), shown.as_str())],
                    Settings::new(),
                    Settings::new(),
                ),
                (
                    "bad global beside the provider's own code setting",
                    &[(k.var(), "x")],
                    setting(k, other.value(k)),
                    Settings::new(),
                ),
                (
                    "bad provider variable over the global one",
                    &[(own.as_str(), "x"), (k.var(), shown.as_str())],
                    Settings::new(),
                    Settings::new(),
                ),
                (
                    "bad provider variable over its code",
                    &[(own.as_str(), "x")],
                    setting(k, other.value(k)),
                    Settings::new(),
                ),
            ];
            for (case, pairs, provider_code, global_code) in cases {
                let (c, problems, own) = resolve_layers(pairs, "kimi", provider_code, global_code);
                assert_eq!(problems.len(), 1, "{k:?}, {case}: {problems:?}");
                let line = used_instead(&problems[0], &c, &own);
                let (named, _) = line.split_once(" instead (").unwrap();
                assert_eq!(k.parse(named), Some(c.value(k)), "{k:?}, {case}: {line}");
                if case != "bad global" {
                    assert_eq!(named, shown, "{k:?}, {case}: {line}");
                }
                // A provider's own setting is named as its own, never as what the global
                // code settings or the default gave.
                assert_eq!(
                    line.contains("the provider's own setting"),
                    case.starts_with("bad global beside the provider's own"),
                    "{k:?}, {case}: {line}"
                );
            }
        }
    }

    /// A bad value whose next setting in line is in conflict gets that conflict's rule, not
    /// the next setting capped, and its line says so: for a bad global variable, beside the
    /// provider's own setting (which beats it) or the global code settings; for a bad provider
    /// variable, beside its code setting or the global variable. A next setting within the
    /// cap is named as what the bad value falls to.
    #[test]
    fn a_bad_value_whose_next_setting_is_in_conflict_names_the_conflict_s_rule() {
        const BASE: &str = "the built-in base delay, or the maximum delay where that is lower";
        const CAPS: [(&str, &str); 2] = [
            ("RETRY_MAX_DELAY", "3"),
            ("CIRCUIT_BREAKER_WINDOW_SIZE", "10"),
        ];
        let code = setting;
        let none = Settings::new;
        // The bad variable, the other variables, the provider's and the global code settings,
        // the value used, and the line's text after it.
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, &'a str)],
            Settings,
            Settings,
            Value,
            String,
        );
        let cases: [Case; 8] = [
            (
                "RETRY_BASE_DELAY",
                &[("RESILIENCE_KIMI_RETRY_BASE_DELAY", "5")],
                none(),
                none(),
                Value::Secs(Duration::from_secs(1)),
                format!(
                    "{BASE}: the provider's own setting, which comes before the global \
                     variable, is above its maximum delay"
                ),
            ),
            (
                "RETRY_BASE_DELAY",
                &[],
                code(Key::BaseDelay, Value::Secs(Duration::from_secs(5))),
                none(),
                Value::Secs(Duration::from_secs(1)),
                format!(
                    "{BASE}: the provider's own setting, which comes before the global \
                     variable, is above its maximum delay"
                ),
            ),
            (
                "CIRCUIT_BREAKER_MINIMUM_CALLS",
                &[("RESILIENCE_KIMI_CIRCUIT_BREAKER_MINIMUM_CALLS", "50")],
                none(),
                none(),
                Value::Count(10),
                "the window size: the provider's own setting, which comes before the global \
                 variable, is above its window"
                    .into(),
            ),
            (
                "RESILIENCE_KIMI_RETRY_BASE_DELAY",
                &[("RETRY_BASE_DELAY", "2")],
                code(Key::BaseDelay, Value::Secs(Duration::from_secs(5))),
                none(),
                Value::Secs(Duration::from_secs(1)),
                format!(
                    "{BASE}: the provider's code setting, next in line, is above its maximum delay"
                ),
            ),
            (
                "RESILIENCE_KIMI_CIRCUIT_BREAKER_MINIMUM_CALLS",
                &[("CIRCUIT_BREAKER_MINIMUM_CALLS", "5")],
                code(Key::MinimumCalls, Value::Count(50)),
                none(),
                Value::Count(10),
                "the window size: the provider's code setting, next in line, is above its window"
                    .into(),
            ),
            (
                "RESILIENCE_KIMI_RETRY_BASE_DELAY",
                &[("RETRY_BASE_DELAY", "5")],
                none(),
                none(),
                Value::Secs(Duration::from_secs(1)),
                format!("{BASE}: the global setting next in line is above the maximum delay"),
            ),
            (
                "RETRY_BASE_DELAY",
                &[],
                none(),
                code(Key::BaseDelay, Value::Secs(Duration::from_secs(5))),
                Value::Secs(Duration::from_secs(1)),
                format!("{BASE}: the global setting next in line is above the maximum delay"),
            ),
            (
                "RESILIENCE_KIMI_CIRCUIT_BREAKER_MINIMUM_CALLS",
                &[("CIRCUIT_BREAKER_MINIMUM_CALLS", "50")],
                none(),
                none(),
                Value::Count(10),
                "the window size: the global setting next in line is above the window".into(),
            ),
        ];
        let within = [
            (
                "RETRY_BASE_DELAY",
                &[("RESILIENCE_KIMI_RETRY_BASE_DELAY", "2")][..],
                none(),
                Value::Secs(Duration::from_secs(2)),
                "2 instead (the provider's own ",
            ),
            (
                "RESILIENCE_KIMI_RETRY_BASE_DELAY",
                &[],
                code(Key::BaseDelay, Value::Secs(Duration::from_secs(2))),
                Value::Secs(Duration::from_secs(2)),
                "2 instead (the next setting in line: the provider's code settings,",
            ),
            (
                "RESILIENCE_KIMI_RETRY_BASE_DELAY",
                &[("RETRY_BASE_DELAY", "2")],
                none(),
                Value::Secs(Duration::from_secs(2)),
                "2 instead (the next setting in line: the provider's code settings,",
            ),
        ]
        .map(|(bad, vars, provider_code, used, starts)| {
            (bad, vars, provider_code, none(), used, starts.to_string())
        });
        for (i, (bad, vars, provider_code, global_code, used, text)) in
            cases.into_iter().chain(within).enumerate()
        {
            let mut pairs = vec![(bad, "soon"), ("CIRCUIT_BREAKER_FAILURE_RATE", "0.5")];
            pairs.extend_from_slice(&CAPS);
            pairs.extend_from_slice(vars);
            let (c, problems, layers) = resolve_layers(&pairs, "kimi", provider_code, global_code);
            let p = problems.iter().find(|p| p.variable == bad).unwrap();
            let key = p.settled.unwrap().key;
            assert_eq!(c.value(key), used, "case {i}: {problems:?}");
            let line = used_instead(p, &c, &layers);
            if i < 8 {
                assert_eq!(line, format!("{} instead ({text})", show(used)), "case {i}");
            } else {
                assert!(line.starts_with(&text), "case {i}: {line}");
                assert!(
                    line.ends_with(", at most the maximum delay)"),
                    "case {i}: {line}"
                );
            }
        }
    }

    /// A provider code setting that is itself invalid (refused on its own line) is
    /// not skipped over to the global layers: `resolve` gives the default in its place, so
    /// the global setting is not next in line and must not be named as in conflict.
    #[test]
    fn an_invalid_code_setting_is_not_skipped_for_the_global_one() {
        // Minimum calls: code 0 (invalid), global 5 within the window 10; default 20 follows
        // the window down to 10.
        let (c, line) = line_for(
            "RESILIENCE_KIMI_CIRCUIT_BREAKER_MINIMUM_CALLS",
            &[
                ("CIRCUIT_BREAKER_MINIMUM_CALLS", "5"),
                ("CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
                ("CIRCUIT_BREAKER_WINDOW_SIZE", "10"),
            ],
            setting(Key::MinimumCalls, Value::Count(0)),
        );
        assert_eq!(c.minimum_calls, 10);
        assert!(!line.contains("global setting next in line"), "{line}");
        // Base delay: code above a year (invalid), global 2 within the max 3; default 1.
        let too_long = Value::Secs(Duration::from_secs(MAX_SECS + 1));
        let (c, line) = line_for(
            "RESILIENCE_KIMI_RETRY_BASE_DELAY",
            &[("RETRY_BASE_DELAY", "2"), ("RETRY_MAX_DELAY", "3")],
            setting(Key::BaseDelay, too_long),
        );
        assert_eq!(c.base_delay, Duration::from_secs(1));
        assert!(!line.contains("global setting next in line"), "{line}");
        assert!(line.ends_with(", at most the maximum delay)"), "{line}");
    }

    /// A bad provider base delay over a valid global 2, above the provider's own max delay
    /// of 1: the global setting next in line is what is in conflict there.
    #[test]
    fn a_global_setting_next_in_line_above_the_provider_s_own_max_delay() {
        let (c, line) = line_for(
            "RESILIENCE_KIMI_RETRY_BASE_DELAY",
            &[
                ("RETRY_BASE_DELAY", "2"),
                ("RESILIENCE_KIMI_RETRY_MAX_DELAY", "1"),
            ],
            Settings::new(),
        );
        assert_eq!(c.base_delay, Duration::from_secs(1));
        assert_eq!(
            line,
            "1 instead (the built-in base delay, or the maximum delay where that is lower: the \
             global setting next in line is above the maximum delay)"
        );
    }

    /// Kimi's configuration with `bad=soon` beside `vars` and its code settings, and the line
    /// for `bad`.
    fn line_for(bad: &str, vars: &[(&str, &str)], provider_code: Settings) -> (Config, String) {
        let mut pairs = vec![(bad, "soon")];
        pairs.extend_from_slice(vars);
        let (c, problems, layers) = resolve_layers(&pairs, "kimi", provider_code, Settings::new());
        let p = problems.iter().find(|p| p.variable == bad).unwrap();
        let line = used_instead(p, &c, &layers);
        (c, line)
    }

    /// The value a conflict settles on, and the caps: only in failure-rate mode is a bad
    /// minimum capped by the window.
    #[test]
    fn conflicts_and_caps_name_the_value_used() {
        let (c, problems, own) = resolve_layers(
            &[("RETRY_MAX_DELAY", "0.5")],
            "kimi",
            Settings::new().base_delay(Duration::from_secs(5)),
            Settings::new(),
        );
        assert_eq!(c.base_delay, Duration::from_millis(500));
        assert_eq!(
            used_instead(&problems[0], &c, &own),
            "0.5 instead (the built-in base delay, or the maximum delay where that is lower)"
        );
        let (c, problems) = resolve(
            &[
                ("CIRCUIT_BREAKER_MINIMUM_CALLS", "x"),
                ("CIRCUIT_BREAKER_WINDOW_SIZE", "4"),
            ],
            "kimi",
        );
        assert_eq!(c.minimum_calls, 20);
        let line = used_instead(&problems[0], &c, &Layers::default());
        assert!(
            line.starts_with("20 instead (") && !line.contains("window"),
            "{line}"
        );
    }
}
