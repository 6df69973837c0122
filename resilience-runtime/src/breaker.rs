//! The per-provider circuit breaker.
//!
//! ```text
//!            failure_threshold consecutive failures
//!  Closed ───────────────────────────────────────────▶ Open ◀──────────┐
//!    ▲                                                   │ timeout      │ any probe fails
//!    │ success_threshold probe successes                 ▼              │
//!    └────────────────────────────────────────────── HalfOpen ─────────┘
//!                                        (at most half_open_max_calls probes at a time)
//! ```
//!
//! Why not a mutex around a state struct, as most breakers do? Because every call of every
//! task reads the breaker. Here the state and a generation number share one atomic word: a
//! call on a healthy provider does one load to be admitted and one load to report success,
//! and writes nothing, so threads calling the same provider never contend. Transitions are rare
//! and take a mutex, which keeps their logs and metrics in order.
//!
//! Every permit remembers the generation it was issued in; a result that arrives after the
//! breaker moved on (a slow call finishing after the breaker opened) is ignored instead of
//! corrupting the new state. A half-open probe's slot is released when its permit is dropped,
//! so a cancelled probe can never wedge the breaker half-open; nor can one that never answers,
//! whose slot lapses after the breaker timeout (see `Breaker::restart_probes`).

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::classify::ErrorClass;
use crate::config::Config;
use crate::error::ResilienceError;

/// The state of a provider's circuit breaker.
///
/// Name a state by its variant or [`as_str`](Self::as_str): its representation and the
/// values of its discriminants are not part of the API (the dashboard's state panel, for one,
/// encodes the states its own way), and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are rejected at once until the breaker timeout passes.
    Open,
    /// A limited number of probe calls are let through to test recovery.
    HalfOpen,
    /// Opened by hand ([`Provider::force_open`](crate::Provider::force_open)): rejects every
    /// call until [`reset`](crate::Provider::reset).
    ForcedOpen,
    /// The breaker is switched off (`RESILIENCE_CIRCUIT_BREAKER_ENABLED=false`,
    /// [`Provider::disable_breaker`](crate::Provider::disable_breaker), or the whole library
    /// with `RESILIENCE_ENABLED=false`): admits everything, records nothing.
    Disabled,
}

impl CircuitState {
    /// All states, in the order of the `resilience_circuit_state` gauge. A slice, not an
    /// array: the enum may grow, and an array's length would be part of the API.
    pub const ALL: &'static [CircuitState] = &[
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
        CircuitState::ForcedOpen,
        CircuitState::Disabled,
    ];

    /// The snake-case name used in logs, metric labels and `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::ForcedOpen => "forced_open",
            CircuitState::Disabled => "disabled",
        }
    }

    /// `true` for the states that reject calls.
    pub fn is_open(self) -> bool {
        matches!(self, CircuitState::Open | CircuitState::ForcedOpen)
    }

    fn tag(self) -> u64 {
        match self {
            CircuitState::Closed => CLOSED,
            CircuitState::Open => OPEN,
            CircuitState::HalfOpen => HALF_OPEN,
            CircuitState::ForcedOpen => FORCED_OPEN,
            CircuitState::Disabled => DISABLED,
        }
    }

    fn from_tag(tag: u64) -> Self {
        match tag {
            CLOSED => CircuitState::Closed,
            OPEN => CircuitState::Open,
            HALF_OPEN => CircuitState::HalfOpen,
            FORCED_OPEN => CircuitState::ForcedOpen,
            _ => CircuitState::Disabled,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`as_str`](CircuitState::as_str)'s names, in any case: for a service that reads a state
/// back from a log line, a label or `/health`.
///
/// ```
/// use resilience::CircuitState;
/// assert_eq!("half_open".parse(), Ok(CircuitState::HalfOpen));
/// for &state in CircuitState::ALL {
///     assert_eq!(state.to_string().parse(), Ok(state));
/// }
/// let err = "half-open".parse::<CircuitState>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "unknown circuit state half-open: expected closed, open, half_open, forced_open or disabled"
/// );
/// ```
impl std::str::FromStr for CircuitState {
    type Err = crate::ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CircuitState::ALL
            .iter()
            .copied()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                crate::ParseNameError::new(
                    s,
                    "circuit state",
                    "closed, open, half_open, forced_open or disabled",
                )
            })
    }
}

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const FORCED_OPEN: u64 = 3;
const DISABLED: u64 = 4;
const TAG_BITS: u32 = 3;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// The ticket of an attempt the breaker does not track (switched off, or the runtime is).
pub(crate) const UNTRACKED: u64 = DISABLED;
/// No attempt in flight: a tag no state uses, and one without `HALF_OPEN`'s bit (see
/// [`Breaker::release`]).
pub(crate) const NO_TICKET: u64 = 5;
/// The least time a half-open round's probes hold their slots: the breaker timeout, but not
/// less than this, so a timeout of 0 cannot abandon every probe as soon as the next call comes.
const PROBE_WAIT_MIN: Duration = Duration::from_secs(1);
/// The consecutive-failure count's value in failure-rate mode (see `Breaker::failures`).
const WINDOW_MODE: u32 = u32::MAX;

/// A word stamped with the breaker generation it counts for: the generation's low
/// `64 - below` bits above a value of `below` bits. A read-modify-write that checks the stamp
/// ([`stamped_for`]) and changes the value counts only in that generation, and a move restamps
/// the word before it stores its state: the failure count ([`count_word`]) and the window's
/// place ([`Window::place`]).
fn stamped(generation: u64, below: u32, value: u64) -> u64 {
    generation << below | value
}

/// Whether the word `n`, stamped above `below` bits, counts for the generation of `w`.
fn stamped_for(n: u64, w: u64, below: u32) -> bool {
    n >> below == generation(w) & (u64::MAX >> below)
}

/// The count word of `Breaker::failures`: the low 32 bits of the generation it counts for,
/// above the count. A ticket 2^32 transitions old would be needed to mistake one for another.
fn count_word(generation: u64, count: u32) -> u64 {
    stamped(generation, 32, u64::from(count))
}

/// The count of a count word.
fn count_of(c: u64) -> u32 {
    c as u32
}

/// Whether the count word `c` counts for the generation of `w`.
fn counts_for(c: u64, w: u64) -> bool {
    stamped_for(c, w, 32)
}

fn tag(word: u64) -> u64 {
    word & TAG_MASK
}
fn generation(word: u64) -> u64 {
    word >> TAG_BITS
}

/// How far past its own span a deadline must lie ahead of a clock reading to have been set on
/// another clock (a paused test runtime's, hours ahead): far more than the microseconds by
/// which a caller's reading, taken before another caller set the deadline, can be behind.
const OTHER_CLOCK: u64 = 1_000_000_000;

/// Whether Tokio's clock, read here, runs. A paused one reads the same before and after a
/// microsecond of real time; a running one (then the OS clock) has moved by then, however
/// coarse its ticks. Costs that microsecond: for an opening, and for a deadline found too far
/// ahead.
fn tokio_clock_runs() -> bool {
    let first = Instant::now();
    let spin = std::time::Instant::now();
    while spin.elapsed() < Duration::from_micros(1) {
        std::hint::spin_loop();
    }
    Instant::now() != first
}

/// A deadline further ahead of this reading than its span allows, read in a runtime whose
/// clock runs: it was set on a paused clock ahead of real time (a paused test runtime advanced
/// by hours, and now a real-clock one in the same process), and is over on the clock it was
/// set by. Read outside any runtime (a synchronous test's assertion after its paused
/// runtime's `block_on`), or on a paused clock, it stands.
#[cold]
fn set_elsewhere() -> bool {
    tokio::runtime::Handle::try_current().is_ok() && tokio_clock_runs()
}

/// Monotonic nanoseconds on Tokio's clock (so a paused test clock drives the breaker), from a
/// base an hour before first use: a paused test runtime may stand a little behind real time.
pub(crate) fn now_nanos(now: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let now = std::time::Instant::now();
        Instant::from_std(
            now.checked_sub(Duration::from_secs(3600))
                .or_else(|| now.checked_sub(Duration::from_secs(60)))
                .unwrap_or(now),
        )
    });
    now.saturating_duration_since(base)
        .as_nanos()
        .min(u64::MAX as u128) as u64
}

/// What a finished attempt means for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    Failure,
    Neutral,
}

impl Verdict {
    pub(crate) fn of(class: Option<ErrorClass>) -> Self {
        match class {
            None => Verdict::Success,
            Some(ErrorClass::Transient) => Verdict::Failure,
            Some(ErrorClass::Throttled { .. } | ErrorClass::Permanent) => Verdict::Neutral,
        }
    }
}

pub(crate) struct Breaker {
    provider: &'static str,
    /// `generation << 3 | state`.
    word: AtomicU64,
    /// Consecutive failures while closed (count mode), as a [`count_word`]: stamped with the
    /// generation of the word, which every move (`apply`) restamps (keeping the count, or
    /// clearing it for a close) before it stores the word. A probe restart
    /// (`restart_probes`) stores a new half-open word without a restamp: the stamp then lags
    /// the word by one, which no closed ticket can match, and the next move restamps it from
    /// its own word whatever it held. A verdict counts only in the generation it
    /// was admitted in: the stamp is checked in the count's own read-modify-write, so a
    /// failure admitted before a `reset()` that counts after it is ignored, as every result
    /// from before a move is, instead of landing in the new generation's count. In
    /// failure-rate mode it holds `WINDOW_MODE` for good, so the success fast path (`clean`)
    /// always falls through to the window.
    failures: AtomicU64,
    /// When an open breaker lets probes through, in `now_nanos` units.
    open_until: AtomicU64,
    /// The coarse clock's reading (`coarse_now`) when the breaker opened, if it opened under a
    /// running clock (see `open_left`); 0 otherwise.
    opened_coarse: AtomicU64,
    /// The coarse clock's reading at which such a breaker lets probes through:
    /// `opened_coarse` plus the timeout, so a rejection decides with a comparison and
    /// converts only the time left.
    until_coarse: AtomicU64,
    /// `generation (low 24 bits) << 40 | admissions (mod 256) << 32 | probes in flight << 16 |
    /// probe successes` (see [`recount`]).
    half: AtomicU64,
    /// When the probes in flight stop holding their slots (the last admission plus the
    /// breaker timeout, at least [`PROBE_WAIT_MIN`]), in `now_nanos` units.
    probe_deadline: AtomicU64,
    /// The half-open word of the latest round a probe failed in, stored before that probe
    /// waits for the transitions lock: a restart that gets the lock first re-opens the
    /// breaker instead of starting a new round over the failure. Only grows (words grow with
    /// the generation), so a late failure from an older round cannot hide a newer one; 0, a
    /// closed word, matches no round.
    lost: AtomicU64,
    /// The generation the breaker last went half-open in (from open): the start of the
    /// current half-open spell, which restarts of its rounds do not move. A probe admitted in
    /// this spell whose round a restart abandoned still answers for it (see
    /// [`late_answer`](Self::late_answer)).
    spell: AtomicU64,
    window: Option<Window>,
    failure_threshold: u32,
    success_threshold: u32,
    timeout: Duration,
    half_open_max_calls: u32,
    transitions: Mutex<()>,
    /// Whether its state is the provider's in the metrics: not for a test's own provider
    /// (`testing::isolate`), which would overwrite the process's gauge of the same name.
    published: bool,
}

/// Where the words every call reads (the state word, the failure count) lie in a `Breaker`,
/// for the provider's layout test (`registry`).
#[cfg(test)]
pub(crate) const HOT_FIELDS: [usize; 2] = [
    std::mem::offset_of!(Breaker, word),
    std::mem::offset_of!(Breaker, failures),
];

impl Breaker {
    pub(crate) fn new(provider: &'static str, c: &Config) -> Self {
        // With the whole library off (`RESILIENCE_ENABLED=false`) calls never reach the
        // breaker: it says so, as a switched-off one does.
        let initial = if c.breaker_enabled && c.enabled {
            CLOSED
        } else {
            DISABLED
        };
        Breaker {
            provider,
            word: AtomicU64::new(initial),
            failures: AtomicU64::new(count_word(
                generation(initial),
                if c.failure_rate.is_some() {
                    WINDOW_MODE
                } else {
                    0
                },
            )),
            open_until: AtomicU64::new(0),
            opened_coarse: AtomicU64::new(0),
            until_coarse: AtomicU64::new(0),
            half: AtomicU64::new(0),
            probe_deadline: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            spell: AtomicU64::new(0),
            window: c
                .failure_rate
                .map(|rate| Window::new(c.window_size, c.minimum_calls, rate)),
            failure_threshold: c.failure_threshold,
            success_threshold: c.success_threshold,
            timeout: c.breaker_timeout,
            published: true,
            half_open_max_calls: c.half_open_max_calls,
            transitions: Mutex::new(()),
        }
    }

    /// Admits or rejects one attempt.
    #[cfg(test)]
    pub(crate) fn acquire(&self) -> Result<Permit<'_>, ResilienceError> {
        self.admit()
            .map(|ticket| Permit { b: self, ticket })
            .map_err(|retry_in| self.rejection(retry_in))
    }

    /// Admits or rejects one attempt; the ticket is the breaker word it was admitted under
    /// (or [`UNTRACKED`]), to hand back to [`record`](Self::record) or
    /// [`release`](Self::release). A plain `u64`, so the call that holds it has no drop glue
    /// for it. A rejection is `Err(retry_in)` (see [`crate::ResilienceError::CircuitOpen`]): 16
    /// bytes (a whole `ResilienceError` used to be built and copied at every level). Not the
    /// refusing state beside it (stop 44's `Refusal`, 24 bytes): built from a constant and read
    /// back at other offsets, it cost each forced-open rejection a failed store forwarding,
    /// twice the time (7.4 ns in run BJ against BI's 3.5 and BK's 3.4; `benches/RUNS.md`) for
    /// one instruction less.
    #[inline(always)]
    pub(crate) fn admit(&self) -> Result<u64, Option<Duration>> {
        match self.admit_closed() {
            Ok(ticket) => Ok(ticket),
            Err(w) => {
                crate::cold_path();
                self.admit_not_closed(w)
            }
        }
    }

    /// [`admit`](Self::admit)'s closed case: `Ok(ticket)`, or `Err(word)` for
    /// [`admit_not_closed`](Self::admit_not_closed). Apart, so that a caller can keep the
    /// closed case's ticket out of the answer of the others, which `admit_moving` returns
    /// through memory: merged, the closed case stored its ticket there on every call, for
    /// nothing (two stores, counted with callgrind).
    #[inline(always)]
    pub(crate) fn admit_closed(&self) -> Result<u64, u64> {
        // Acquire pairs with the Release store of a transition, so a caller that sees a new
        // state also sees the `open_until`/`half` values written before it.
        let w = self.word.load(Ordering::Acquire);
        if tag(w) == CLOSED { Ok(w) } else { Err(w) }
    }

    /// [`admit`](Self::admit) for a breaker whose word `w`, just loaded, is not closed.
    #[inline(always)]
    pub(crate) fn admit_not_closed(&self, w: u64) -> Result<u64, Option<Duration>> {
        // Inline too: a forced-open rejection needs no clock and no lock, and the call out of
        // line (saving callee-saved registers for the paths that need them) was a tenth of
        // its instructions (counted with callgrind). The closed path is unchanged.
        if tag(w) == FORCED_OPEN {
            return Err(None);
        }
        // An open breaker timed by the coarse clock rejects inline as well: out of line, the
        // call saved five registers and returned its answer through memory, 21 instructions of
        // a rejection (callgrind, per function). Its timeout having passed (read again out of
        // line, once per opening), Tokio's clock, and every other state go out of line.
        if tag(w) == OPEN
            && let Some(Some(left)) = self.open_left_coarse()
        {
            return Err(Some(left));
        }
        self.admit_moving(w)
    }

    /// Everything else: an open breaker timed on Tokio's clock (or whose counter went
    /// backwards) or whose timeout has passed, a half-open or disabled one, and any state that
    /// changes while we look.
    #[cold]
    #[inline(never)]
    fn admit_moving(&self, mut w: u64) -> Result<u64, Option<Duration>> {
        loop {
            match tag(w) {
                CLOSED => return Ok(w),
                DISABLED => return Ok(UNTRACKED),
                FORCED_OPEN => return Err(None),
                OPEN => {
                    if let Some(left) = self.open_left() {
                        return Err(Some(left));
                    }
                    self.transition(w, CircuitState::HalfOpen);
                }
                _ => {
                    // Half-open: take a probe slot if one is free in this generation.
                    // One clock read, on this cold path only: an admitted probe's deadline,
                    // or whether the probes holding every slot are past theirs.
                    let now = now_nanos(Instant::now());
                    let slot = self.take_probe_slot(w, now);
                    // A call made inside an attempt on this provider (a `#[resilient]` method
                    // calling another of the same provider) is part of that attempt, which
                    // may hold the only slot: refused, it would fail the probe with a
                    // rejection that counts for nothing, and every round the same way, for
                    // ever. Let through, untracked: its outcome reaches the breaker through
                    // the attempt. (Open, the breaker rejects both: the call fails fast.)
                    if matches!(slot, Slot::Full | Slot::Decided)
                        && crate::call::inside_attempt_on(self)
                    {
                        return Ok(UNTRACKED);
                    }
                    match slot {
                        Slot::Taken => return Ok(w),
                        // Every slot taken, or the round's deciding answer in and its move
                        // on the way: rejected. A probe that never answers (a black-holed
                        // connection, no attempt timeout) must not hold its slot for ever,
                        // nor a decided move wait on a stalled thread: past the last
                        // admission's deadline, the restart makes the decided move, or
                        // starts a new round.
                        Slot::Full | Slot::Decided => {
                            if self.probes_waiting(now) {
                                return Err(None);
                            }
                            self.restart_probes(w, now);
                        }
                        // The breaker moved on while we looked: look again. If the word has
                        // not changed yet, its writer (who stores `half` first) holds the
                        // transitions lock: wait for it there instead of spinning.
                        Slot::Gone => {
                            if self.word.load(Ordering::Acquire) == w {
                                drop(self.transitions.lock());
                            }
                        }
                    }
                }
            }
            w = self.word.load(Ordering::Acquire);
        }
    }

    /// How long an open breaker still rejects calls; `None` once its timeout has passed. The
    /// one clock read on the rejection path, for the decision and for `retry_in`: the kernel's
    /// coarse monotonic clock when the breaker opened under a running clock, else Tokio's
    /// clock, so that a paused test clock drives the breaker. (A clock paused only after the
    /// breaker opened does not move a coarse-timed one; tests pause theirs at the start.)
    ///
    /// Why the coarse clock: it is the cheapest real clock there is (a vDSO read of a value
    /// the kernel updates every tick, no counter read): on our benchmark machine the bare call
    /// plus one read takes 6.0 ns, against 9.5 ns with a TSC read and 23.8 ns with the OS
    /// clock's (paired, the bench's `clock_coarse`, `clock_tsc` and `clock_os` rows, runs
    /// H–K; read through the vDSO's own function since stop 41, see [`coarse_now`]). Its tick
    /// (1–4 ms, 10 ms on a kernel built with HZ=100) can move the end of an opening by that
    /// much either way, against a timeout of seconds. Linux only (see
    /// [`COARSE_CLOCK`]). A clock of our own, kept current by a thread or a timer, would be
    /// cheaper still, but a stalled one would leave breakers stuck open: the failure this
    /// crate exists to prevent.
    #[inline]
    fn open_left(&self) -> Option<Duration> {
        self.open_left_coarse()
            .unwrap_or_else(|| self.open_left_tokio())
    }

    /// [`open_left`](Self::open_left) by the coarse clock; `None` when this opening is not
    /// timed by it (or the clock went backwards), for Tokio's clock to answer.
    #[inline(always)]
    fn open_left_coarse(&self) -> Option<Option<Duration>> {
        // Acquire, like every read of the open fields: pairs with the transition's Release.
        let since = self.opened_coarse.load(Ordering::Acquire);
        if since != 0 {
            let now = coarse_now();
            // A clock behind its reading at opening (it cannot be, being monotonic, but a
            // wrong one must not keep the breaker open) falls through to Tokio's clock.
            if now >= since {
                // Loaded after `opened_coarse`, which `apply` stores after it: a reader that
                // sees this opening's start also sees its end. A start from an earlier opening
                // with this one's end only rejects a little longer (or lets the caller try a
                // transition, which re-checks the word under the lock).
                let until = self.until_coarse.load(Ordering::Acquire);
                // At least a millisecond: the clock moves in ticks, and a caller that waits
                // `retry_in` must not spin through the last one on a rounded-down 0.
                return Some(
                    (now < until).then(|| coarse_span((until - now).max(MIN_RETRY_IN_TICKS))),
                );
            }
        }
        None
    }

    fn open_left_tokio(&self) -> Option<Duration> {
        let now = now_nanos(Instant::now());
        let until = self.open_until.load(Ordering::Acquire);
        let left = until.saturating_sub(now);
        if u128::from(left) > self.timeout.as_nanos() + u128::from(OTHER_CLOCK) && set_elsewhere() {
            return None;
        }
        (left > 0).then(|| Duration::from_nanos(left))
    }

    /// Whether the probes' deadline is still ahead of `now`. As for an opening
    /// ([`open_left_tokio`](Self::open_left_tokio)), one further ahead than a probe's wait was
    /// set on another clock, and is over.
    fn probes_waiting(&self, now: u64) -> bool {
        let deadline = self.probe_deadline.load(Ordering::Acquire);
        now < deadline
            && (deadline - now <= self.probe_wait().saturating_add(OTHER_CLOCK) || !set_elsewhere())
    }

    /// `true` when a success admitted under a closed-state `ticket` has nothing to record:
    /// no consecutive failures to reset (and not failure-rate mode, whose sentinel count is
    /// never 0). One relaxed load and no write, so threads calling a healthy provider never
    /// contend on the breaker's cache line.
    #[inline(always)]
    pub(crate) fn clean(&self, ticket: u64) -> bool {
        tag(ticket) == CLOSED && count_of(self.failures.load(Ordering::Relaxed)) == 0
    }

    /// Reports an attempt's verdict for `ticket` (from [`admit`](Self::admit)). A success with
    /// nothing to reset writes nothing. Out of line: a call checks [`clean`](Self::clean)
    /// itself first (`Call::clean`), so a clean success never comes here.
    #[inline(never)]
    pub(crate) fn record(&self, ticket: u64, verdict: Verdict) {
        match tag(ticket) {
            CLOSED => self.on_closed(ticket, verdict),
            HALF_OPEN => self.on_probe(ticket, Some(verdict)),
            _ => {}
        }
    }

    /// Whether [`record`](Self::record) counts a verdict for `ticket`: one admitted closed
    /// or as a probe (not untracked, not none).
    pub(crate) fn tracks(&self, ticket: u64) -> bool {
        matches!(tag(ticket), CLOSED | HALF_OPEN)
    }

    /// Gives back `ticket` unrecorded (a cancelled attempt): frees a probe slot.
    #[inline]
    pub(crate) fn release(&self, ticket: u64) {
        // Runs in every call's drop, so one bit test instead of masking and comparing the tag
        // (three instructions fewer, counted with callgrind): of the tags a ticket can carry
        // (closed, half-open, untracked, none), only half-open has this bit.
        const { assert!(HALF_OPEN & (CLOSED | UNTRACKED | NO_TICKET) == 0) };
        if ticket & HALF_OPEN != 0 {
            crate::cold_path();
            self.on_probe(ticket, None);
        }
    }

    /// The error for a rejection that [`admit`](Self::admit) answered with `Err(retry_in)`:
    /// built by the caller only where it is handed on, so the breaker's answer stays 16 bytes.
    #[inline]
    pub(crate) fn rejection(&self, retry_in: Option<Duration>) -> ResilienceError {
        ResilienceError::CircuitOpen {
            provider: self.provider,
            retry_in,
        }
    }

    /// The state the next call would see (an open breaker whose timeout has passed reports,
    /// and becomes, half-open).
    pub(crate) fn state(&self) -> CircuitState {
        let w = self.word.load(Ordering::Acquire);
        if tag(w) == OPEN && self.open_left().is_none() {
            self.transition(w, CircuitState::HalfOpen);
            return CircuitState::from_tag(tag(self.word.load(Ordering::Acquire)));
        }
        CircuitState::from_tag(tag(w))
    }

    /// The state as stored, moving nothing (an open breaker past its timeout still reads open):
    /// for `Provider`'s `Debug`, the state gauge's first sample, and a log line about a
    /// rejection just made, none of which may move it.
    pub(crate) fn stored_state(&self) -> CircuitState {
        CircuitState::from_tag(tag(self.word.load(Ordering::Relaxed)))
    }

    /// Would a call starting `after` from now be rejected? Used before sleeping for a retry,
    /// so that a call whose failure just opened the breaker returns its own error instead of
    /// sleeping only to be rejected.
    pub(crate) fn rejects_after(&self, after: Duration) -> bool {
        let w = self.word.load(Ordering::Acquire);
        match tag(w) {
            FORCED_OPEN => true,
            OPEN => self.open_left().is_some_and(|left| after < left),
            _ => false,
        }
    }

    /// Consecutive failures counted while closed (or failures in the window, in rate mode).
    pub(crate) fn failures(&self) -> u32 {
        match &self.window {
            Some(w) => w.failures(),
            None => count_of(self.failures.load(Ordering::Relaxed)),
        }
    }

    /// When an open breaker lets its next probe through, from now; `None` unless open.
    pub(crate) fn retry_in(&self) -> Option<Duration> {
        let w = self.word.load(Ordering::Acquire);
        (tag(w) == OPEN).then(|| self.open_left().unwrap_or(Duration::ZERO))
    }

    pub(crate) fn force(&self, to: CircuitState) {
        let mut held = self.lock();
        let w = self.word.load(Ordering::Acquire);
        self.apply(&mut held, w, to);
    }

    /// `false` for the breaker of a test's own provider: logged, not published in the
    /// metrics.
    pub(crate) fn published(mut self, published: bool) -> Self {
        self.published = published;
        self
    }

    /// The recorder was switched on with this breaker already made: its state gauge and its
    /// automatic transitions at 0. Under the transitions lock, as a move publishes its state,
    /// so that a move made meanwhile by another thread cannot be overwritten by the state this
    /// thread read before it (the gauge would show it until the next move).
    pub(crate) fn publish_known(&self) {
        if !self.published {
            return;
        }
        // First, unlocked: it may move an open breaker past its timeout to half-open, which
        // takes the lock itself.
        let _ = self.state();
        let _held = self.lock();
        crate::telemetry::provider_known(self.provider, self.stored_state());
    }

    /// Takes the transitions lock.
    fn lock(&self) -> Held<'_> {
        Held {
            guard: Some(self.transitions.lock().unwrap_or_else(|e| e.into_inner())),
            provider: self.provider,
            timeout: self.timeout,
            moved: None,
        }
    }

    /// Moves from exactly `from` (state and generation) to `to`; a no-op when another thread
    /// got there first.
    fn transition(&self, from: u64, to: CircuitState) -> bool {
        let mut held = self.lock();
        if self.word.load(Ordering::Acquire) != from {
            return false;
        }
        self.apply(&mut held, from, to);
        true
    }

    /// Makes the move; `held` is the transitions lock, which logs it once released.
    fn apply(&self, held: &mut Held<'_>, from: u64, to: CircuitState) {
        let next_gen = generation(from).wrapping_add(1);
        match to {
            CircuitState::Open => {
                // Only a running clock may the coarse clock stand in for.
                let running = tokio_clock_runs();
                let now = Instant::now();
                let (since, until_coarse) = if running && COARSE_CLOCK && coarse_clock_works() {
                    // Never 0, which means "not timed by it".
                    let since = coarse_now().max(1);
                    (since, since.saturating_add(coarse_ticks(self.timeout)))
                } else {
                    (0, 0)
                };
                let until = now_nanos(now).saturating_add(self.timeout.as_nanos() as u64);
                // Order matters: `open_left_coarse` loads `opened_coarse` first, then
                // `until_coarse`.
                self.open_until.store(until, Ordering::Release);
                self.until_coarse.store(until_coarse, Ordering::Release);
                self.opened_coarse.store(since, Ordering::Release);
            }
            CircuitState::HalfOpen => {
                // Stored before the word (Release), so a caller that sees this spell's word
                // sees its start.
                self.spell.store(next_gen, Ordering::Release);
                self.start_probe_round(next_gen);
            }
            CircuitState::Closed => {}
            CircuitState::ForcedOpen | CircuitState::Disabled => {}
        }
        if let Some(w) = &self.window {
            // The window's counterpart of the restamp below: emptied by a close, kept
            // otherwise (on show until the breaker closes), and restamped either way before
            // the word is stored.
            w.restamp(next_gen, to == CircuitState::Closed);
        } else {
            // Restamped for the new generation before its word is stored, in one
            // read-modify-write: a failure counted before it stays in the count kept (the
            // streak that opens the breaker stays on show until it closes) or is cleared with
            // it (a close), and one that checked the old word but counts after it finds
            // another generation and is ignored. Cleared plainly, such a failure landed in the
            // new closed generation's count, where it could reach the threshold with its
            // opening naming the old word: a closed breaker at the threshold, which no
            // success resets.
            let _ = self
                .failures
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                    let kept = if to == CircuitState::Closed {
                        0
                    } else {
                        count_of(c)
                    };
                    Some(count_word(next_gen, kept))
                });
        }
        if to != CircuitState::HalfOpen {
            // The round, if one ran, is over: a caller that still holds its word finds
            // another generation here and looks again, instead of taking a slot a probe's
            // answer freed while the state was being changed (after the Open branch's spin,
            // so callers do not loop through it).
            self.half.store(fresh_half(next_gen), Ordering::Release);
        }
        self.word
            .store(next_gen << TAG_BITS | to.tag(), Ordering::Release);
        // `reset()` of a closed breaker, or `force_open()` twice, still clears the counts and
        // starts a new generation, but is no state change to count or log.
        let from_state = CircuitState::from_tag(tag(from));
        if from_state != to {
            if self.published {
                crate::telemetry::transition_counted(self.provider, from_state, to);
            }
            // The failures that made the move: the count that opened a closed breaker, but one
            // failed probe for a half-open one, whose count still holds the opening's streak
            // (`consecutive_failures()` keeps it until the breaker closes): logged as is, a
            // re-opening read `failures=5` after a single probe.
            let failures = if from_state == CircuitState::HalfOpen && to == CircuitState::Open {
                1
            } else {
                self.failures()
            };
            held.moved = Some((from_state, to, failures, next_gen));
        }
    }

    /// A fresh half-open round in generation `generation`: no probes in flight, no successes,
    /// and a deadline for its probes. Caller holds `transitions`.
    fn start_probe_round(&self, generation: u64) {
        self.probe_deadline.store(
            now_nanos(Instant::now()).saturating_add(self.probe_wait()),
            Ordering::Release,
        );
        self.half.store(fresh_half(generation), Ordering::Release);
    }

    /// Takes a probe slot in the half-open round whose word is `w`.
    fn take_probe_slot(&self, w: u64, now: u64) -> Slot {
        let (g, max) = (half_gen(generation(w)), self.half_open_max_calls);
        let mut h = self.half.load(Ordering::Acquire);
        loop {
            let (hg, inflight, ok) = unpack_half(h);
            if hg != g {
                return Slot::Gone;
            }
            // A round already decided (the success that reached the threshold counted, or a
            // failure marked it lost) while its transition waits for the lock: no caller is
            // let in as one of its probes, with a slot free or not (the deciding probe keeps
            // its own).
            if u32::from(ok) >= self.success_threshold || self.lost.load(Ordering::Acquire) == w {
                return Slot::Decided;
            }
            if inflight >= max {
                return Slot::Full;
            }
            // Each admitted probe gets the full wait (one let in late in a round, after another
            // answered, is not cut short). Stored before the slot is taken, and the take
            // releases it: a caller that then finds every slot taken (an acquire load of
            // `half`) also finds this deadline, and cannot abandon a probe let in a moment ago
            // for a hung one.
            // `fetch_max`: a caller that read the clock long ago and loses the take must not
            // pull back the deadline of one that just won it.
            self.probe_deadline
                .fetch_max(now.saturating_add(self.probe_wait()), Ordering::Release);
            match self.half.compare_exchange_weak(
                h,
                recount(h, inflight + 1, ok, true),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Slot::Taken,
                Err(current) => h = current,
            }
        }
    }

    /// The move of the half-open round `from` if it is decided (a failure marked it lost, or
    /// its `ok` successes reached the threshold), made by a caller holding `transitions`;
    /// `false` if it is not.
    fn make_decided_move(&self, held: &mut Held<'_>, from: u64, ok: u16) -> bool {
        let to = if self.lost.load(Ordering::Acquire) == from {
            CircuitState::Open
        } else if u32::from(ok) >= self.success_threshold {
            CircuitState::Closed
        } else {
            return false;
        };
        self.apply(held, from, to);
        true
    }

    /// How long a probe holds its slot without answering, in nanoseconds.
    fn probe_wait(&self) -> u64 {
        self.timeout
            .max(PROBE_WAIT_MIN)
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64
    }

    /// Starts a new half-open round over one whose probes did not answer in time: a new
    /// generation, so their slots' release is ignored, and their late answers count in the
    /// new round (`late_answer`), which keeps the successes counted so far. The state
    /// stays half-open, so no transition is logged or counted; a warning says why.
    #[cold]
    fn restart_probes(&self, from: u64, now: u64) {
        let mut held = self.lock();
        if self.word.load(Ordering::Acquire) != from {
            return; // another caller restarted the round, or the breaker moved on
        }
        // Checked again under the lock: a probe that answered since (freeing its slot,
        // perhaps about to close the breaker) or one let in since (with a fresh deadline)
        // keeps this round going, and the caller looks again.
        let h = self.half.load(Ordering::Acquire);
        let (hg, inflight, ok) = unpack_half(h);
        if hg != half_gen(generation(from)) {
            return;
        }
        // A round already decided, whose move has not come (its thread waits for this lock,
        // or stalls before it): made here, whatever the slots, so no caller goes round
        // again on it (with a slot free, the check below would leave it, and the caller
        // spin until the move came). The answer's own transition then finds the word
        // changed and does nothing.
        if self.make_decided_move(&mut held, from, ok) {
            return;
        }
        if inflight < self.half_open_max_calls || self.probes_waiting(now) {
            return;
        }
        #[cfg(test)]
        tests::AFTER_RESTART_CHECK.with(|hook| hook.take().map(|f| f()));
        // Probes answer and are let in without this lock, so the new round replaces exactly
        // the `half` just checked, or nothing: a slot freed and taken again since keeps its
        // round (a plain store here used to abandon that probe and lose its answer). The
        // admission counter has 8 bits: only 256 admissions, each freed again with no success
        // counted, between the check above and this swap (this thread descheduled between two
        // lines while probes are let in and cancelled) would pass for no change, and then one
        // probe's answer is ignored and a round restarts early; the breaker still moves on.
        let next_gen = generation(from).wrapping_add(1);
        // The successes counted so far carry over: the abandoned probes' answers still count
        // in this spell (`late_answer`), and so do the round's own. From zero, a provider
        // whose every answer takes longer than the probes' wait got one success into each
        // round before it was restarted, and never closed the breaker.
        let fresh = fresh_half(next_gen) | u64::from(ok);
        if self
            .half
            .compare_exchange(h, fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        #[cfg(test)]
        tests::AFTER_RESTART_SWAP.with(|hook| hook.take().map(|f| f()));
        // A failure that came since the check above, before the new round is published, and
        // waits for this lock to re-open the breaker, is not lost to the new round: the
        // restart makes its move for it (the failure's own transition then finds the word
        // changed and does nothing). It keeps its slot, so the swap above cannot see it; its
        // mark can. (A success counted since would have changed `h`, failing the swap.)
        if self.lost.load(Ordering::Acquire) == from {
            self.apply(&mut held, from, CircuitState::Open);
            return;
        }
        self.probe_deadline
            .store(now.saturating_add(self.probe_wait()), Ordering::Release);
        self.word
            .store(next_gen << TAG_BITS | HALF_OPEN, Ordering::Release);
        drop(held);
        let (provider, wait) = (self.provider, self.timeout.max(PROBE_WAIT_MIN));
        tracing::warn!(
            target: "resilience", provider, state = "half_open",
            waited_ms = crate::telemetry::millis(wait),
            "[CIRCUIT] Probes for {provider} unanswered after {:.3}s: their slots are freed; \
             their answers still count",
            wait.as_secs_f64(),
            provider = provider.escape_debug(),
        );
    }

    #[inline]
    fn on_closed(&self, w: u64, verdict: Verdict) {
        match (verdict, &self.window) {
            (Verdict::Neutral, _) => {}
            (Verdict::Success, None) => {
                // A success admitted before the breaker last moved (opened, say, while it was
                // in flight) resets nothing: the streak that opened it stays on show until it
                // closes again.
                if self.word.load(Ordering::Acquire) != w {
                    return;
                }
                // `Call::clean` found a count to reset; it may be 0 again by now (another
                // success reset it), and then we write nothing, keeping the cache line shared
                // between threads. A count at the threshold is a failure's that is opening
                // the breaker (after this check of the word): it keeps its streak on show (a
                // plain store wiped it, and `/health` showed an open breaker with 0
                // failures). A failure that comes between the load and the write is seen by
                // the compare-exchange, which then looks again: below the threshold the
                // success still resets it (given up, it left the count with the failures
                // before it), at it the success leaves it.
                // Only in its own generation: a move since the check of the word (a reset, then
                // failures of the new generation) leaves the count alone.
                let threshold = self.failure_threshold;
                let _ = self
                    .failures
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                        #[cfg(test)]
                        tests::BEFORE_STREAK_RESET.with(|hook| hook.take().map(|f| f()));
                        let n = count_of(c);
                        (counts_for(c, w) && n != 0 && n < threshold)
                            .then(|| count_word(generation(w), 0))
                    });
            }
            (Verdict::Failure, None) => {
                #[cfg(test)]
                tests::BEFORE_FAILURE_COUNT.with(|hook| hook.take().map(|f| f()));
                // Counted only in the generation it was admitted in: a move since the
                // admission (a `reset()`, a close) restamped the count before it stored its
                // word, and this failure is one from before it, ignored. (No check of the word
                // first: the stamp is that check, made in the count's own read-modify-write.) So a count at the threshold is always that of a
                // failure of the current closed generation, on its way to open it (or of a
                // move that took the count with it). Saturating: a threshold near `u32::MAX` is
                // accepted, and 2^32 failures must not panic a debug build.
                let Ok(c) = self
                    .failures
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                        counts_for(c, w)
                            .then(|| count_word(generation(w), count_of(c).saturating_add(1)))
                    })
                else {
                    return;
                };
                if count_of(c).saturating_add(1) >= self.failure_threshold {
                    self.transition(w, CircuitState::Open);
                }
            }
            (v, Some(window)) => {
                if window.record(w, v == Verdict::Failure) {
                    self.transition(w, CircuitState::Open);
                }
            }
        }
    }

    fn on_probe(&self, w: u64, verdict: Option<Verdict>) {
        // A failed probe re-opens the breaker holding its slot: freed first, it could let a
        // caller in as a probe of a round already lost, while the state was being changed.
        // `transition` compares the whole word, so a stale failure does nothing.
        if verdict == Some(Verdict::Failure) {
            self.lost.fetch_max(w, Ordering::Release);
            if !self.transition(w, CircuitState::Open) {
                self.late_answer(w, Verdict::Failure);
            }
            return;
        }
        // Any change of the word ends the round (every transition and restart moves the
        // generation): a stale probe leaves the current round alone, but for an answer from
        // a round that a restart abandoned in this half-open spell (`late_answer`). The whole
        // generation is compared here, where `half` keeps only its low 24 bits.
        if self.word.load(Ordering::Acquire) != w {
            if let Some(verdict) = verdict {
                self.late_answer(w, verdict);
            }
            return;
        }
        if !self.count_probe(w, verdict, true) && verdict == Some(Verdict::Success) {
            // A restart replaced the round after the word was loaded: counted in the new one
            // (whose word `late_answer` waits for, if the restart has yet to store it).
            self.late_answer(w, Verdict::Success);
        }
    }

    /// Counts a probe's answer (a success, or none: a neutral answer or a release) in the
    /// half-open round whose word is `w`, as its `half` has it (the low 24 bits of the
    /// generation); `false` if `half` has moved on to another round. `frees`: the answer
    /// gives its slot back (an answer of the round's own probe; a late answer's slot went
    /// with its round). The success that reaches the threshold keeps its slot, for the same
    /// reason as a failure (the round is over, and the close resets `half`), and makes the
    /// move under the lock, as a restart decides: a failure of this round that answered
    /// before this move marked the round lost (before it waits for the lock), and any probe
    /// failure re-opens the breaker. A plain transition to `Closed` here closed a breaker
    /// that a probe had failed first, whenever this success got the lock before that
    /// failure did.
    fn count_probe(&self, w: u64, verdict: Option<Verdict>, frees: bool) -> bool {
        let g = half_gen(generation(w));
        let success = verdict == Some(Verdict::Success);
        let mut closed = false;
        let Ok(before) = self
            .half
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                let (hg, inflight, ok) = unpack_half(h);
                if hg != g {
                    return None;
                }
                let ok = if success { ok.saturating_add(1) } else { ok };
                closed = success && u32::from(ok) >= self.success_threshold;
                let inflight = if frees && !closed {
                    inflight.saturating_sub(1)
                } else {
                    inflight
                };
                Some(recount(h, inflight, ok, false))
            })
        else {
            return false;
        };
        if closed {
            let mut held = self.lock();
            if self.word.load(Ordering::Acquire) == w {
                let ok = unpack_half(before).2.saturating_add(1);
                self.make_decided_move(&mut held, w, ok);
            }
        }
        true
    }
}

impl Breaker {
    /// The answer of a probe whose round a restart abandoned (`restart_probes`: it held its
    /// slot past the probes' wait), while the breaker is still half-open in the spell it was
    /// admitted in. The provider did answer, if slowly: a success counts towards closing the
    /// current round, and a failure re-opens the breaker, as the current round's own probes'
    /// answers do (it has no slot left to free). Ignored, a provider whose every answer takes
    /// longer than the probes' wait (an upload slower than the breaker timeout) kept the
    /// breaker half-open for as long as calls came: each round was abandoned before its
    /// probe answered, every success thrown away. An answer from an earlier spell (the
    /// breaker opened again since) or one a transition ended is still ignored.
    #[cold]
    fn late_answer(&self, w: u64, verdict: Verdict) {
        if tag(w) != HALF_OPEN || verdict == Verdict::Neutral {
            return;
        }
        // Again whenever the round moves on while we look (another restart): each pass sees a
        // newer word, and ends once the spell is over or the answer counted.
        loop {
            let cur = self.word.load(Ordering::Acquire);
            if cur == w {
                // Still the probe's own word: `on_probe` found its round's `half` replaced
                // by a move whose word has yet to be stored (a restart's swap, or a
                // transition), and whose writer holds the transitions lock. Taken as "no
                // later round" (the check below), a success that met a restart there was
                // lost; wait for the move and look again.
                #[cfg(test)]
                tests::BEFORE_LATE_WAIT.with(|hook| hook.take().map(|f| f()));
                drop(self.transitions.lock());
                continue;
            }
            if tag(cur) != HALF_OPEN
                || generation(w) < self.spell.load(Ordering::Acquire)
                || generation(w) >= generation(cur)
            {
                return;
            }
            if verdict == Verdict::Failure {
                self.lost.fetch_max(cur, Ordering::Release);
                if self.transition(cur, CircuitState::Open) {
                    return;
                }
                continue;
            }
            if self.count_probe(cur, Some(Verdict::Success), false) {
                return;
            }
            // The round's `half` moved on and its word has yet to: its writer holds the
            // transitions lock (as for `Slot::Gone`).
            if self.word.load(Ordering::Acquire) == cur {
                #[cfg(test)]
                tests::BEFORE_LATE_WAIT.with(|hook| hook.take().map(|f| f()));
                drop(self.transitions.lock());
            }
        }
    }
}

/// What [`Breaker::take_probe_slot`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A slot is the caller's.
    Taken,
    /// Every slot is taken.
    Full,
    /// The round's deciding answer is in, and its move is on the way.
    Decided,
    /// The round's generation is gone: the breaker moved on.
    Gone,
}

/// The transitions lock, held. The state change made under it is counted in the metrics
/// there (so the state gauge ends on the last state, whatever the threads' order) and logged
/// once the lock is released: a log layer that calls the same provider (a log shipper with a
/// resilient client) may need the lock for a move of its own, and this thread holds it. Two
/// moves made within microseconds by two threads may then log out of order: each line's
/// `generation` (the breaker's, which every move advances) gives their order.
struct Held<'a> {
    guard: Option<MutexGuard<'a, ()>>,
    provider: &'static str,
    /// How long an opening keeps the breaker open (`CIRCUIT_BREAKER_TIMEOUT`), for its line.
    timeout: Duration,
    /// The move, the failures that made it, and the generation it started (which orders a
    /// provider's lines when two threads log them out of order).
    moved: Option<(CircuitState, CircuitState, u32, u64)>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Some((from, to, failures, generation)) = self.moved.take() {
            crate::telemetry::transition_logged(
                self.provider,
                from,
                to,
                failures,
                generation,
                self.timeout,
            );
        }
    }
}

/// The generation as `half` keeps it: its low 24 bits. A ticket 2^24 transitions old would be
/// needed to mistake one round for another.
fn half_gen(generation: u64) -> u32 {
    (generation & 0xFF_FFFF) as u32
}

/// A fresh round's `half` in `generation`: no admissions, probes or successes.
fn fresh_half(generation: u64) -> u64 {
    u64::from(half_gen(generation)) << 40
}

/// `half` with new counts, the generation kept, and the admission counter moved on by one
/// when a probe is let in. The counter makes every admission change the word, so a
/// compare-and-swap against a value read earlier fails if a slot was freed and taken again
/// meanwhile (the same counts, another probe).
fn recount(h: u64, inflight: u32, successes: u16, admitted: bool) -> u64 {
    let admissions = ((h >> 32) & 0xFF) as u8;
    let admissions = if admitted {
        admissions.wrapping_add(1)
    } else {
        admissions
    };
    (h & !0xFF_FFFF_FFFF)
        | (u64::from(admissions) << 32)
        | (u64::from(inflight.min(0xFFFF)) << 16)
        | u64::from(successes)
}

/// `(generation, probes in flight, successes)`.
fn unpack_half(h: u64) -> (u32, u32, u16) {
    (
        (h >> 40) as u32,
        ((h >> 16) & 0xFFFF) as u32,
        (h & 0xFFFF) as u16,
    )
}

/// Permission for one attempt. Report its verdict with [`Permit::record`]; dropping it
/// unrecorded (a cancelled attempt) releases a probe slot and counts as nothing.
#[cfg(test)]
pub(crate) struct Permit<'a> {
    b: &'a Breaker,
    ticket: u64,
}

#[cfg(test)]
impl Permit<'_> {
    pub(crate) fn record(self, verdict: Verdict) {
        let this = std::mem::ManuallyDrop::new(self);
        this.b.record(this.ticket, verdict);
    }
}

#[cfg(test)]
impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.b.release(self.ticket);
    }
}

/// Failure-rate mode: the outcome of the last `size` calls as bits, lock-free. Each record
/// costs a read-modify-write on a shared counter (two for a failure, and a count of the
/// bits), which is why the mode is off by default. The failure count is
/// the bits' population, counted when a failure asks (at most 64 words), not a counter kept
/// beside them: a counter and the bits cannot be updated together, and a `reset` between the
/// two updates of one record used to leave the counter one off for good.
struct Window {
    bits: Box<[AtomicU64]>,
    size: u32,
    /// The place word: the low 51 bits of the breaker generation it takes records for, above
    /// the next place (see [`Window::place`]). Stamped like the failure count: a record
    /// checks its generation and takes its place in one read-modify-write.
    next: AtomicU64,
    minimum_calls: u32,
    rate: f64,
}

/// The bits of a window's place word below its stamp (see [`Window::place`]): places run
/// below twice the largest window. The count word's 32 would do, but its stamp then kept only
/// 32 bits of the generation: a record whose ticket was 2^32 moves old (an attempt stalled
/// while `reset()` ran in a loop for minutes) took its place in the window of the closed
/// generation sharing them, where at a rate of 1 and a minimum of 1 its failure made a closed
/// breaker at its rate, whose opening named the old word and did nothing. The word check this
/// stamp replaced compared the whole generation; 51 bits of it take years of moves to come
/// round.
const PLACE_BITS: u32 = 13;

/// The largest window, as the configuration allows (`CIRCUIT_BREAKER_WINDOW_SIZE`): its
/// places, below twice its size, fit below the stamp.
const MAX_WINDOW: u32 = 1 << (PLACE_BITS - 1);

impl Window {
    fn new(size: u32, minimum_calls: u32, rate: f64) -> Self {
        let size = size.clamp(1, MAX_WINDOW);
        let words = size.div_ceil(64) as usize;
        Window {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            size,
            next: AtomicU64::new(stamped(0, PLACE_BITS, 0)),
            minimum_calls,
            rate,
        }
    }

    /// The place of a place word: records taken so far while below `size`; once the window
    /// has filled, it runs from `size` to `2 * size` and round again, so it never reaches the
    /// stamp above it (a plain count would, after 2^13 records) and still tells a full
    /// window from one filling.
    fn place(n: u64) -> u64 {
        n & ((1 << PLACE_BITS) - 1)
    }

    /// The place after `p`.
    fn after(&self, p: u64) -> u64 {
        let size = u64::from(self.size);
        if p + 1 >= 2 * size { size } else { p + 1 }
    }

    /// Records one outcome admitted under the closed word `w`; `true` when the failure rate
    /// has reached the threshold. A record admitted before the breaker last moved counts for
    /// nothing: its check of the generation and the taking of its place are one
    /// read-modify-write, so a move (a `reset()`, say) between the two can no longer put it
    /// into the new window, where it made a share the breaker then did not act on (its
    /// opening named the old word).
    fn record(&self, w: u64, failed: bool) -> bool {
        #[cfg(test)]
        tests::BEFORE_WINDOW_PLACE.with(|hook| hook.take().map(|f| f()));
        // Relaxed on success, like the `fetch_add` it replaces: the judging read below orders
        // the records.
        let Ok(n) = self
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                stamped_for(n, w, PLACE_BITS)
                    .then(|| stamped(generation(w), PLACE_BITS, self.after(Self::place(n))))
            })
        else {
            return false;
        };
        let i = Self::place(n);
        let slot = (i % u64::from(self.size)) as usize;
        let mask = 1u64 << (slot % 64);
        let word = &self.bits[slot / 64];
        // Release on the bit writes; below, `next` is read by a read-modify-write (AcqRel),
        // then the bits. The judging reads of two records are ordered on `next`, and the later
        // one acquires the earlier record's bit with its place: with a plain load, two
        // failures (in one word or two) could each judge without the other, one masking the
        // other's place off as not reached, and the breaker stayed closed (loom models by
        // helper-116 and helper-120; x86's locked instructions hide it).
        if !failed {
            // Only a slot that held a failure needs a write.
            if word.load(Ordering::Relaxed) & mask != 0 {
                word.fetch_and(!mask, Ordering::Release);
            }
            // A success lowers the share or leaves it, with one exception: the one that brings
            // the window to `minimum_calls`, where the share is first judged (5 failures then
            // 5 successes, rate 0.5, minimum 10, must open there, not at the next failure).
            if i + 1 != u64::from(self.minimum_calls) {
                return false;
            }
        } else {
            word.fetch_or(mask, Ordering::Release);
        }
        // The calls the failures are a share of: all records made so far, not only up to
        // this one. Before the window fills, a later record's failure may already be among
        // the bits, and judged against this record's count alone it could open a breaker
        // whose failures are below the rate (a success and two failures recorded at once,
        // 2 of 4 judged as 2 of 3, say). A failure that took its place but has not written
        // its bit yet only makes the share look lower: it judges itself once written. Not so
        // a success not yet written, once the window has filled: its slot still holds the
        // outcome of the record a window before it, and a failure there is counted as one
        // of the last `size` (one too many per success caught between its place and its
        // write; the README says so). (A move since this record's place restamped the word:
        // its place is then 0 or kept, and the opening below names the old word and does
        // nothing.)
        // Not the hot path: a failure, or the success that fills the minimum.
        let calls = Self::place(self.next.fetch_add(0, Ordering::AcqRel))
            .max(i + 1)
            .min(u64::from(self.size));
        calls >= u64::from(self.minimum_calls) && self.reached(self.failures_in(calls), calls)
    }

    /// Whether `failures` of `calls` reach the rate. As a quotient, not `rate * calls`: the
    /// product rounds (`0.55 * 100.0` is `55.00000000000001`, so 55 of 100 would not open a
    /// breaker at 0.55), while the correctly rounded quotient of two exact integers is the
    /// same double as the rate whenever the two are equal.
    fn reached(&self, failures: u32, calls: u64) -> bool {
        f64::from(failures) / calls as f64 >= self.rate
    }

    /// Failures among the last `size` calls.
    fn failures(&self) -> u32 {
        self.failures_in(Self::place(self.next.load(Ordering::Relaxed)).min(u64::from(self.size)))
    }

    /// Failures in the first `calls` slots: all of them once the window has filled. Before, a
    /// slot this window has not reached can hold only the bit of a record that raced a
    /// `reset` (it took its place before the reset and wrote its bit after), which is none of
    /// this window's calls: counted, it made a failure of a success (helper-115's review: a
    /// breaker with a minimum of 1, just reset, opened on one success).
    fn failures_in(&self, calls: u64) -> u32 {
        let full = calls >= u64::from(self.size);
        self.bits
            .iter()
            .enumerate()
            .map(|(k, w)| {
                let bits = w.load(Ordering::Acquire);
                let reached = calls.saturating_sub(64 * k as u64);
                let mask = if full || reached >= 64 {
                    u64::MAX
                } else {
                    (1u64 << reached) - 1
                };
                (bits & mask).count_ones()
            })
            .sum()
    }

    /// Stamps the window for the breaker's generation `generation`, emptied when `empty`
    /// (a close). Caller holds `transitions`, and stores the new word after.
    fn restamp(&self, generation: u64, empty: bool) {
        if empty {
            for w in self.bits.iter() {
                w.store(0, Ordering::Relaxed);
            }
        }
        // A read-modify-write, against a record's: one that took its place before it keeps
        // it (and is in the window kept, or was emptied with it), one after it finds another
        // generation.
        let _ = self
            .next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                let place = if empty { 0 } else { Self::place(n) };
                Some(stamped(generation, PLACE_BITS, place))
            });
    }
}

/// Whether open breakers are timed on the coarse clock: on Linux (and Android), where it is
/// `CLOCK_MONOTONIC_COARSE`, read through the vDSO. Other systems' coarse clocks we have not
/// measured, or are worse for this (Windows' 15.6 ms tick; no monotonic one on some Unixes),
/// so a breaker there keeps to Tokio's clock, the OS's monotonic one.
const COARSE_CLOCK: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The least `retry_in` a rejection by a coarse-timed breaker reports: a millisecond, in the
/// clock's ticks (compared before converting: an integer `max`, not a `Duration`'s).
const MIN_RETRY_IN_TICKS: u64 = (1 << 32) / 1000 + 1;

/// The kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`) in ticks of 2^-32 s. Read
/// only once [`coarse_clock_works`] has said so (rustix's read asserts the kernel's success).
///
/// Read through rustix, which calls the vDSO's `clock_gettime` itself (in a static build, see
/// the other `coarse_now`): in `hot_path_probe open`, a rejection took 8.4 ns where it took
/// 9.8 through coarsetime (glibc's `clock_gettime`, then its conversion); the read alone
/// 2.5 ns, against 4.3 through glibc and 5.0 through coarsetime (one program, side by side,
/// third host). Not rustix's `clock_gettime_dynamic`, which returns a `Result` instead of
/// asserting: it copies the reading through memory with one 16-byte load of what the vDSO
/// stored as two 8-byte halves, a store-forwarding stall that made the rejection 16.8 ns
/// (perf put 80% of that function's time on the copy).
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(target_feature = "crt-static")
))]
#[inline(always)]
pub(crate) fn coarse_now() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    // A monotonic clock's reading is never negative.
    coarse_reading(t.tv_sec as u64, t.tv_nsec as u64)
}

/// [`coarse_now`] in a static build (`crt-static`: a musl target's default, or glibc's on
/// request), through the C library's `clock_gettime` (coarsetime's call). rustix finds the
/// vDSO through glibc's `getauxval`, looked up at run time (its `use-libc-auxv`, without
/// which it read the address from `/proc/self/auxv`, which under valgrind is not the
/// program's: a segfault), and a static build has none to look up: rustix then makes a system
/// call for every read, 104 ns each in a static build here where glibc's `clock_gettime`, which
/// reads the vDSO there too, took 3.5 ns (helper-228). Chosen when the crate is built, as a
/// choice made at run time cost the dynamic build's rejection about 1 ns (a load and a
/// branch, by `hot_path_probe open` side by side).
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    target_feature = "crt-static"
))]
#[inline(always)]
pub(crate) fn coarse_now() -> u64 {
    coarsetime::Instant::now_without_cache_update().as_ticks()
}

/// Never read off Linux: [`COARSE_CLOCK`] is false there, so no breaker is timed by it.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn coarse_now() -> u64 {
    0
}

/// Whether the kernel reads the coarse clock, asked once, at the first opening under a running
/// clock: a kernel built without POSIX timers refuses the clock to a system call, which
/// rustix makes where it finds no vDSO, and its read in [`coarse_now`] would then panic. Where
/// the kernel refuses it, every breaker keeps to Tokio's clock. Rejections read the clock only
/// in an opening timed by it, so only after this said yes.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn coarse_clock_works() -> bool {
    use rustix::time::{ClockId, DynamicClockId, clock_gettime_dynamic};
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        clock_gettime_dynamic(DynamicClockId::Known(ClockId::MonotonicCoarse)).is_ok()
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn coarse_clock_works() -> bool {
    false
}

/// A reading of `secs` s and `nanos` ns in the coarse clock's ticks: what [`coarse_ticks`] makes
/// of the same span, without its 128-bit division (the fraction, below 10^9 ns, fits the low
/// 32 bits once scaled: a multiplication and a shift, the divisor being a constant).
#[cfg_attr(
    any(
        not(any(target_os = "linux", target_os = "android")),
        target_feature = "crt-static"
    ),
    allow(dead_code, reason = "read only where rustix reads the coarse clock")
)]
#[inline(always)]
fn coarse_reading(secs: u64, nanos: u64) -> u64 {
    (secs << 32) | ((nanos << 32) / 1_000_000_000)
}

/// `d` in the coarse clock's ticks (saturating).
fn coarse_ticks(d: Duration) -> u64 {
    u64::try_from((d.as_nanos() << 32) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// A span of the coarse clock's ticks as a `Duration`: whole seconds in the high 32 bits, the
/// fraction in the low ones.
#[inline(always)]
fn coarse_span(ticks: u64) -> Duration {
    let nanos = ((ticks & 0xffff_ffff) * 1_000_000_000) >> 32;
    Duration::new(ticks >> 32, nanos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    thread_local! {
        /// Runs inside `restart_probes`, after its check under the lock, once.
        pub(super) static AFTER_RESTART_CHECK: std::cell::Cell<Option<Box<dyn FnOnce()>>> =
            const { std::cell::Cell::new(None) };
        /// Runs inside `on_closed`'s success, after it loaded the count to reset and before
        /// its write, once.
        pub(super) static BEFORE_STREAK_RESET: std::cell::Cell<Option<Box<dyn FnOnce()>>> =
            const { std::cell::Cell::new(None) };
        /// Runs inside `restart_probes`, after its swap of `half` and before it stores the
        /// new round's word (holding the transitions lock), once.
        pub(super) static AFTER_RESTART_SWAP: std::cell::Cell<Option<Box<dyn FnOnce()>>> =
            const { std::cell::Cell::new(None) };
        /// Runs inside `late_answer`, before it waits for the transitions lock on a round
        /// whose `half` moved on before its word, once.
        pub(super) static BEFORE_LATE_WAIT: std::cell::Cell<Option<Box<dyn FnOnce()>>> =
            const { std::cell::Cell::new(None) };
        /// Runs inside `Window::record`, before it takes its place, once.
        pub(super) static BEFORE_WINDOW_PLACE: std::cell::Cell<Option<Box<dyn FnOnce()>>> =
            const { std::cell::Cell::new(None) };
        /// Runs inside `on_closed`'s failure, before it counts, once.
        pub(super) static BEFORE_FAILURE_COUNT: std::cell::Cell<Option<Box<dyn FnOnce()>>> =
            const { std::cell::Cell::new(None) };
    }

    fn breaker(c: Config) -> Breaker {
        Breaker::new("test", &c)
    }

    /// A `cfg()` breaker in failure-rate mode.
    fn rate_breaker(rate: f64, window_size: u32, minimum_calls: u32) -> Breaker {
        breaker(Config {
            failure_rate: Some(rate),
            window_size,
            minimum_calls,
            ..cfg()
        })
    }

    fn cfg() -> Config {
        Config {
            failure_threshold: 3,
            success_threshold: 2,
            breaker_timeout: Duration::from_secs(10),
            half_open_max_calls: 1,
            ..Config::default()
        }
    }

    fn fail(b: &Breaker) {
        b.acquire().expect("admitted").record(Verdict::Failure);
    }

    /// Opens a `cfg()` breaker (three failures) and lets its timeout pass on the paused clock.
    async fn open_until_probing(b: &Breaker) {
        for _ in 0..3 {
            fail(b);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
    }

    /// A runtime on Tokio's paused clock, or on the real one.
    fn runtime(paused: bool) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(paused)
            .build()
            .unwrap()
    }

    /// A test process may run a paused runtime advanced by hours, then a real-clock one:
    /// what the first set on its clock must not hold the breaker for those hours of real time.
    #[test]
    fn an_opening_or_a_probe_set_on_a_clock_ahead_is_over() {
        let hours = Duration::from_secs(3 * 3600);
        let opened = breaker(cfg());
        runtime(true).block_on(async {
            tokio::time::advance(hours).await;
            for _ in 0..3 {
                fail(&opened);
            }
            assert_eq!(opened.retry_in(), Some(Duration::from_secs(10)));
        });
        // Outside any runtime (a synchronous test's assertion after its paused runtime's
        // `block_on`) the opening stands, and reading it moves nothing.
        assert_eq!(opened.state(), CircuitState::Open);
        runtime(false).block_on(async {
            assert_eq!(
                opened.state(),
                CircuitState::HalfOpen,
                "opened 3 h ahead on the paused clock (before: retry_in {:?})",
                opened.retry_in()
            );
        });
        // A probe let in on the paused clock that never answers: its slot is not held until
        // real time catches up.
        let probing = breaker(cfg());
        runtime(true).block_on(async {
            tokio::time::advance(hours).await;
            open_until_probing(&probing).await;
            std::mem::forget(probing.acquire().expect("the probe"));
            assert!(probing.acquire().is_err(), "its one slot is taken");
        });
        runtime(false).block_on(async {
            assert!(
                probing.acquire().is_ok(),
                "the unanswered probe's deadline was set hours ahead"
            );
        });
    }

    #[tokio::test(start_paused = true)]
    async fn closed_opens_after_consecutive_failures_and_success_resets() {
        let b = breaker(cfg());
        fail(&b);
        fail(&b);
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(b.failures(), 0, "a success resets the count");
        fail(&b);
        fail(&b);
        b.acquire().unwrap().record(Verdict::Neutral);
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "neutral neither counts nor resets"
        );
        assert_eq!(b.failures(), 2);
        fail(&b);
        assert_eq!(b.state(), CircuitState::Open);
        match b.acquire() {
            Err(ResilienceError::CircuitOpen {
                provider: "test",
                retry_in: Some(d),
            }) => {
                assert_eq!(d, Duration::from_secs(10))
            }
            other => panic!("expected a rejection, got {:?}", other.map(|_| ())),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_to_half_open_to_closed() {
        let b = breaker(cfg());
        for _ in 0..3 {
            fail(&b);
        }
        assert_eq!(
            b.opened_coarse.load(Ordering::Relaxed),
            0,
            "a breaker opened under a paused clock follows that clock, not the coarse one"
        );
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.acquire().is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen, "the timeout has passed");
        let probe = b.acquire().expect("first probe admitted");
        assert!(b.acquire().is_err(), "half_open_max_calls = 1");
        probe.record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::HalfOpen, "one success of two");
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.failures(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_answers_frees_its_slot_after_the_breaker_timeout() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        assert_eq!(
            b.state(),
            CircuitState::HalfOpen,
            "the round starts at 10 s"
        );
        // Let in 5 s into the round: its slot is held until 10 s after its admission, not
        // after the round's start.
        tokio::time::advance(Duration::from_secs(5)).await;
        let hung = b.acquire().expect("the probe");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(
            b.acquire().is_err(),
            "10 s into the round, the probe still holds its slot"
        );
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(b.acquire().is_err(), "the probe's slot is still held");
        tokio::time::advance(Duration::from_millis(1)).await;
        let second = b.acquire().expect("a new round of probes");
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.acquire().is_err(), "the new round has one slot too");
        // The hung probe's late answer, in the same half-open spell, counts in the new round
        // (it used to be ignored, so a provider slower than the breaker timeout never closed
        // it): here a success, which with the new round's own closes the breaker.
        hung.record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.acquire().is_err(), "the late success took no slot");
        second.record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Closed);

        // A breaker timeout of 0 still lets a probe hold its slot for a second.
        let z = breaker(Config {
            breaker_timeout: Duration::ZERO,
            ..cfg()
        });
        for _ in 0..3 {
            fail(&z);
        }
        let _probe = z.acquire().expect("probe at once");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(z.acquire().is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(z.acquire().is_ok());
    }

    /// A late answer counts only in the half-open spell its probe was let in: a late failure
    /// re-opens the breaker; once it has opened again (a new spell), a probe of the old one
    /// answers for nothing.
    #[tokio::test(start_paused = true)]
    async fn a_late_answer_counts_only_in_its_own_half_open_spell() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        let hung = b.acquire().expect("the probe");
        tokio::time::advance(Duration::from_secs(10)).await;
        let second = b.acquire().expect("a new round of probes");
        hung.record(Verdict::Failure);
        assert_eq!(b.state(), CircuitState::Open, "a late failure re-opens");
        drop(second);

        // A new spell, whose round is abandoned too; the earlier spell's probe answers late.
        tokio::time::advance(Duration::from_secs(10)).await;
        let old = b.acquire().expect("the next spell's probe");
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = b.acquire().expect("a new round");
        probe.record(Verdict::Failure);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen, "a third spell");
        old.record(Verdict::Success);
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(
            b.state(),
            CircuitState::HalfOpen,
            "one success of two: the earlier spell's answer counted for nothing"
        );
    }

    /// A caller that found every slot held past its deadline restarts the round only if that
    /// is still so under the lock: here the hung probe was cancelled and another let in first.
    #[tokio::test(start_paused = true)]
    async fn a_restart_decided_on_a_stale_look_does_not_happen() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        let hung = b.acquire().expect("the probe");
        tokio::time::advance(Duration::from_secs(11)).await;
        // What a racing caller saw: every slot held, the deadline past.
        let (w, now) = (b.word.load(Ordering::Acquire), now_nanos(Instant::now()));
        drop(hung);
        let fresh = b.acquire().expect("the freed slot");
        b.restart_probes(w, now);
        assert_eq!(b.word.load(Ordering::Acquire), w, "no new round");
        assert!(b.acquire().is_err(), "one slot, held by the fresh probe");
        fresh.record(Verdict::Success);
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "the fresh probe's success counted"
        );
    }

    /// The same, one step later: the slot is freed and taken again after the check under the
    /// lock (probes do not take it). The new round must not replace that probe's.
    #[tokio::test(start_paused = true)]
    async fn a_slot_retaken_after_the_restart_check_keeps_its_round() {
        // 'static, for the hook.
        let b: &'static Breaker = Box::leak(Box::new(breaker(cfg())));
        open_until_probing(b).await;
        let hung = b.acquire().expect("the probe");
        tokio::time::advance(Duration::from_secs(11)).await;
        let (w, now) = (b.word.load(Ordering::Acquire), now_nanos(Instant::now()));
        let fresh = std::rc::Rc::new(std::cell::Cell::new(None));
        let slot = fresh.clone();
        AFTER_RESTART_CHECK.with(|hook| {
            hook.set(Some(Box::new(move || {
                drop(hung);
                slot.set(Some(b.admit().expect("the freed slot")));
            })))
        });
        b.restart_probes(w, now);
        let ticket = fresh.take().expect("the hook ran");
        assert_eq!(b.word.load(Ordering::Acquire), w, "no new round");
        assert!(b.admit().is_err(), "one slot, held by the fresh probe");
        b.record(ticket, Verdict::Success);
        b.record(b.admit().unwrap(), Verdict::Success);
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "the fresh probe's success counted"
        );
    }

    /// A success admitted closed that answers while a failure opens the breaker must not
    /// wipe the streak that opened it (`/health` and the opening line show it until the
    /// breaker closes), whether the failure comes before the success loads the count or
    /// between that load and its write.
    #[test]
    fn a_racing_success_leaves_the_streak_that_opened_the_breaker() {
        // Two failures, then a success whose reset meets a third failure between its load of
        // the count and its write.
        let race = |b: &'static Breaker| {
            fail(b);
            fail(b);
            let (success, failure) = (b.admit().unwrap(), b.admit().unwrap());
            BEFORE_STREAK_RESET
                .with(|hook| hook.set(Some(Box::new(move || b.record(failure, Verdict::Failure)))));
            b.record(success, Verdict::Success);
        };
        let b: &'static Breaker = Box::leak(Box::new(breaker(cfg())));
        // The failure came after the success's check of the word, and has not yet opened
        // the breaker: the count is at the threshold, the word still closed.
        fail(b);
        fail(b);
        let success = b.admit().unwrap();
        b.failures.store(
            count_word(generation(b.word.load(Ordering::Relaxed)), 3),
            Ordering::Relaxed,
        );
        b.record(success, Verdict::Success);
        assert_eq!(b.failures(), 3, "a count at the threshold is not reset");
        // The failure comes between the success's load of the count and its write.
        b.force(CircuitState::Closed);
        race(b);
        assert_eq!(b.stored_state(), CircuitState::Open);
        assert_eq!(b.failures(), 3, "the streak that opened it");
        // Without a race, a success still resets the count.
        b.force(CircuitState::Closed);
        fail(b);
        b.record(b.admit().unwrap(), Verdict::Success);
        assert_eq!(b.failures(), 0);
        // A failure below the threshold between the load and the write does not cost the
        // success its reset: the count is that failure alone (or 0), not the streak before.
        let b: &'static Breaker = Box::leak(Box::new(breaker(Config {
            failure_threshold: 5,
            ..cfg()
        })));
        race(b);
        assert_eq!(b.failures(), 0, "the success came after the failure");
    }

    /// A failure admitted closed that counts just after a `reset()` is a result from before the move, and counts for nothing, as any
    /// other is (`stale_permits_are_ignored`). Counted in the new generation, with the
    /// failures made since it reached the threshold while its transition named the old word
    /// and did nothing: the breaker stayed closed at the threshold, where no success resets
    /// the count, until one failure hours later opened it. (Opened there instead, the
    /// breaker opened on a failure from before the reset: at a threshold of 1, a breaker
    /// just reset opened at once.)
    #[test]
    fn a_late_failure_counted_after_a_reset_counts_for_nothing() {
        let b: &'static Breaker = Box::leak(Box::new(breaker(cfg())));
        let late = b.admit().unwrap();
        BEFORE_FAILURE_COUNT.with(|hook| {
            hook.set(Some(Box::new(move || {
                b.force(CircuitState::Closed);
                fail(b);
                fail(b);
            })))
        });
        b.record(late, Verdict::Failure);
        assert_eq!(
            (b.stored_state(), b.failures()),
            (CircuitState::Closed, 2),
            "the two failures of the new generation, not the late one"
        );
        // A success resets the new generation's count, and three of its failures open it.
        b.record(b.admit().unwrap(), Verdict::Success);
        assert_eq!(b.failures(), 0);
        for _ in 0..3 {
            fail(b);
        }
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Open, 3));
        // At a threshold of 1, the late failure alone does not open a breaker just reset.
        let one: &'static Breaker = Box::leak(Box::new(breaker(Config {
            failure_threshold: 1,
            ..cfg()
        })));
        let late = one.admit().unwrap();
        BEFORE_FAILURE_COUNT
            .with(|hook| hook.set(Some(Box::new(move || one.force(CircuitState::Closed)))));
        one.record(late, Verdict::Failure);
        assert_eq!(
            (one.stored_state(), one.failures()),
            (CircuitState::Closed, 0)
        );
    }

    /// The same across an opening and a close: a failure admitted before the breaker opened,
    /// counting after its probes closed it, counts for nothing in the new closed generation;
    /// and one counting while it is open or forced open leaves the streak kept as it was.
    #[test]
    fn a_late_failure_counted_after_a_close_or_an_opening_counts_for_nothing() {
        let c = Config {
            success_threshold: 1,
            ..cfg()
        };
        let b: &'static Breaker = Box::leak(Box::new(breaker(c.clone())));
        let late = b.admit().unwrap();
        BEFORE_FAILURE_COUNT.with(|hook| {
            hook.set(Some(Box::new(move || {
                for _ in 0..3 {
                    fail(b);
                }
                b.force(CircuitState::HalfOpen);
                b.acquire().expect("a probe").record(Verdict::Success);
                assert_eq!(b.stored_state(), CircuitState::Closed);
                fail(b);
                fail(b);
            })))
        });
        b.record(late, Verdict::Failure);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Closed, 2));
        for to in [CircuitState::Open, CircuitState::ForcedOpen] {
            let b: &'static Breaker = Box::leak(Box::new(breaker(c.clone())));
            let late = b.admit().unwrap();
            BEFORE_FAILURE_COUNT.with(|hook| {
                hook.set(Some(Box::new(move || {
                    fail(b);
                    fail(b);
                    if to == CircuitState::Open {
                        fail(b);
                    } else {
                        b.force(to);
                    }
                })))
            });
            b.record(late, Verdict::Failure);
            let kept = if to == CircuitState::Open { 3 } else { 2 };
            assert_eq!((b.stored_state(), b.failures()), (to, kept), "{to}");
        }
    }

    /// A success admitted closed that counts just after a `reset()` (between its check of the
    /// word and its write) is a result from before the move too: it does not clear the new
    /// generation's streak (README: "nor does its success clear one"). Written plainly, the
    /// stale success wiped the failure made since the reset.
    #[test]
    fn a_late_success_counted_after_a_reset_clears_no_new_streak() {
        let b: &'static Breaker = Box::leak(Box::new(breaker(cfg())));
        fail(b);
        let late = b.admit().unwrap();
        BEFORE_STREAK_RESET.with(|hook| {
            hook.set(Some(Box::new(move || {
                b.force(CircuitState::Closed);
                fail(b);
            })))
        });
        b.record(late, Verdict::Success);
        assert_eq!(
            (b.stored_state(), b.failures()),
            (CircuitState::Closed, 1),
            "the new generation's failure stands"
        );
        // Its own successes still reset it.
        b.record(b.admit().unwrap(), Verdict::Success);
        assert_eq!(b.failures(), 0);
    }

    /// Every way into the closed state leaves a count stamped for the new word: the closed
    /// breaker counts its failures, a success resets them, and the threshold opens it. A
    /// move that stored a closed word without restamping the count would leave every later
    /// failure ignored, and a breaker that never opens.
    #[tokio::test(start_paused = true)]
    async fn every_way_into_closed_leaves_a_breaker_that_counts_and_opens() {
        fn counts_and_opens(b: &Breaker, how: &str) {
            assert_eq!(
                (b.stored_state(), b.failures()),
                (CircuitState::Closed, 0),
                "{how}"
            );
            fail(b);
            fail(b);
            assert_eq!(b.failures(), 2, "{how}: its failures count");
            b.record(b.admit().unwrap(), Verdict::Success);
            assert_eq!(b.failures(), 0, "{how}: a success resets them");
            for _ in 0..3 {
                fail(b);
            }
            assert_eq!(
                (b.stored_state(), b.failures()),
                (CircuitState::Open, 3),
                "{how}"
            );
        }
        let b = breaker(cfg());
        counts_and_opens(&b, "as made");
        b.force(CircuitState::Closed);
        counts_and_opens(&b, "reset from open");
        b.force(CircuitState::Closed);
        b.force(CircuitState::Closed);
        counts_and_opens(&b, "reset twice");
        for by_hand in [
            CircuitState::ForcedOpen,
            CircuitState::Disabled,
            CircuitState::HalfOpen,
        ] {
            b.force(by_hand);
            b.force(CircuitState::Closed);
            counts_and_opens(&b, by_hand.as_str());
        }
        // Closed by its probes, after one failed probe re-opened it.
        tokio::time::advance(Duration::from_secs(10)).await;
        b.acquire().expect("a probe").record(Verdict::Failure);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.acquire().expect("a probe").record(Verdict::Success);
        b.acquire().expect("a probe").record(Verdict::Success);
        counts_and_opens(&b, "closed by probes");
        // Closed by a round a restart began (`restart_probes` stores a half-open word itself),
        // with the abandoned probe's late success counting in it.
        tokio::time::advance(Duration::from_secs(10)).await;
        let hung = b.admit().expect("the probe");
        tokio::time::advance(Duration::from_secs(11)).await;
        let next = b.admit().expect("a restarted round's probe");
        assert_ne!(generation(next), generation(hung), "a new round");
        b.record(hung, Verdict::Success);
        b.record(next, Verdict::Success);
        counts_and_opens(&b, "closed by a restarted round");
        // And a disabled breaker made so switched on by `reset()`'s move.
        let off = breaker(Config {
            breaker_enabled: false,
            ..cfg()
        });
        off.force(CircuitState::Closed);
        counts_and_opens(&off, "made disabled");
    }

    /// Failures and successes racing resets on real threads: whenever the threads stop, a
    /// closed breaker never shows a count at the threshold (no failure is left to open it).
    #[test]
    fn no_closed_breaker_is_left_at_the_threshold_real_threads() {
        let b: &'static Breaker = Box::leak(Box::new(breaker(Config {
            failure_threshold: 2,
            ..cfg()
        })));
        for _ in 0..200 {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..50 {
                            if let Ok(t) = b.admit() {
                                b.record(t, Verdict::Failure);
                            }
                        }
                    });
                }
                s.spawn(|| {
                    for _ in 0..50 {
                        b.force(CircuitState::Closed);
                    }
                });
            });
            if b.stored_state() == CircuitState::Closed {
                assert!(
                    b.failures() < 2,
                    "closed at the threshold: {}",
                    b.failures()
                );
            }
            b.force(CircuitState::Closed);
        }
    }

    /// Two callers race for the one slot of a round whose deadline is long past: the one let
    /// in must not be abandoned by the other in the same instant (a new round would let both
    /// through). Real threads; the stale deadline is set directly, as an idle provider leaves it.
    #[test]
    fn a_probe_just_let_in_is_not_abandoned_by_a_racing_caller() {
        let b = breaker(cfg());
        let barrier = std::sync::Barrier::new(2);
        for round in 0..20_000 {
            b.force(CircuitState::HalfOpen);
            b.probe_deadline.store(0, Ordering::Release);
            let admitted = std::thread::scope(|s| {
                let racer = || {
                    barrier.wait();
                    b.admit().ok()
                };
                let other = s.spawn(racer);
                let mine = racer();
                [mine, other.join().unwrap()]
            });
            let n = admitted.iter().flatten().count();
            assert_eq!(n, 1, "round {round}: {n} probes let in, for one slot");
            for t in admitted.into_iter().flatten() {
                b.release(t);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_failure_reopens_with_fresh_timeout() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        fail(&b); // the probe
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(
            b.retry_in(),
            Some(Duration::from_secs(10)),
            "timeout counts from the probe failure"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_limits_concurrent_probes_and_neutral_frees_slot() {
        let b = breaker(Config {
            half_open_max_calls: 2,
            ..cfg()
        });
        open_until_probing(&b).await;
        let p1 = b.acquire().unwrap();
        let p2 = b.acquire().unwrap();
        assert!(matches!(
            b.acquire(),
            Err(ResilienceError::CircuitOpen { retry_in: None, .. })
        ));
        // What the rejection's debug line reads to name it.
        assert_eq!(b.stored_state(), CircuitState::HalfOpen);
        p1.record(Verdict::Neutral);
        let p3 = b.acquire().expect("a neutral probe frees its slot");
        p2.record(Verdict::Success);
        p3.record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_probe_releases_its_slot() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        let probe = b.acquire().unwrap();
        assert!(b.acquire().is_err());
        drop(probe); // the caller's future was dropped mid-flight
        assert_eq!(b.state(), CircuitState::HalfOpen);
        b.acquire().expect("slot released").record(Verdict::Success);
        b.acquire().expect("slot released").record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_permits_are_ignored() {
        let b = breaker(cfg());
        let slow = b.acquire().unwrap(); // issued while closed
        open_until_probing(&b).await;
        b.acquire().unwrap().record(Verdict::Success);
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Closed);
        slow.record(Verdict::Failure);
        assert_eq!(
            b.failures(),
            0,
            "a result from an older generation does not count"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn manual_states() {
        let b = breaker(cfg());
        b.force(CircuitState::ForcedOpen);
        assert_eq!(b.state(), CircuitState::ForcedOpen);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(matches!(
            b.acquire(),
            Err(ResilienceError::CircuitOpen { retry_in: None, .. })
        ));
        assert_eq!(b.stored_state(), CircuitState::ForcedOpen);
        b.force(CircuitState::Closed);
        assert!(b.acquire().is_ok());
        b.force(CircuitState::Disabled);
        for _ in 0..10 {
            fail(&b);
        }
        assert_eq!(b.state(), CircuitState::Disabled);
        let off = breaker(Config {
            breaker_enabled: false,
            ..cfg()
        });
        assert_eq!(off.state(), CircuitState::Disabled);
    }

    #[tokio::test(start_paused = true)]
    async fn failure_rate_mode() {
        let b = rate_breaker(0.5, 10, 4);
        // Alternating: 50% failures, but consecutive failures never reach 3 (count mode
        // would stay closed); the window opens once it holds 4 calls.
        fail(&b);
        b.acquire().unwrap().record(Verdict::Success);
        fail(&b);
        assert_eq!(b.state(), CircuitState::Closed, "3 calls < minimum 4");
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(
            b.state(),
            CircuitState::Open,
            "2 of 4 failed: the success that fills the minimum is judged"
        );
        // 40% over a full window stays closed.
        let c = rate_breaker(0.5, 10, 10);
        for i in 0..100 {
            let v = if i % 5 < 2 {
                Verdict::Failure
            } else {
                Verdict::Success
            };
            c.acquire().unwrap().record(v);
        }
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.failures(), 4);
    }

    /// A record that took its place before a `reset()` and writes its failure after it leaves a
    /// bit in a slot the new window has not reached (threads racing resets found it in about
    /// one round of a hundred): it is none of the new window's calls, so one success after the
    /// reset does not open the breaker, and the failures shown are the window's.
    #[test]
    fn a_failure_written_after_a_reset_is_not_the_new_windows() {
        let b = rate_breaker(1.0, 100, 1);
        let w = b.window.as_ref().expect("rate mode");
        b.force(CircuitState::Closed);
        // The straggler's write, at its old place 70: the second word, past anything reached.
        w.bits[1].fetch_or(1 << 6, Ordering::Release);
        w.bits[0].fetch_or(1 << 5, Ordering::Release);
        assert_eq!(b.failures(), 0);
        b.acquire().expect("closed").record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Closed);
        // The record that reaches the slot makes it the new window's: a success clears it.
        for _ in 0..5 {
            b.acquire().expect("closed").record(Verdict::Success);
        }
        assert_eq!(w.bits[0].load(Ordering::Relaxed), 0);
        assert_eq!(b.failures(), 0);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    /// A record admitted before a `reset()` that takes its place after it counts for nothing
    /// in the new window. It used to check the word first and take its place after: a failure
    /// landing there at a rate of 1 and a minimum of 1 made the new window's share 1 of 1, and
    /// its opening named the old word and did nothing, leaving a closed breaker with a window
    /// at its rate, shown as one failure, which only a later failure would open.
    #[test]
    fn a_late_record_placed_after_a_reset_counts_for_nothing() {
        for failed in [true, false] {
            let b: &'static Breaker = Box::leak(Box::new(rate_breaker(1.0, 10, 1)));
            let late = b.admit().unwrap();
            BEFORE_WINDOW_PLACE
                .with(|hook| hook.set(Some(Box::new(move || b.force(CircuitState::Closed)))));
            b.record(
                late,
                if failed {
                    Verdict::Failure
                } else {
                    Verdict::Success
                },
            );
            assert_eq!(
                (b.stored_state(), b.failures()),
                (CircuitState::Closed, 0),
                "late {}",
                if failed { "failure" } else { "success" }
            );
            // The new window's first record is its first call: a failure opens it at 1 of 1.
            fail(b);
            assert_eq!((b.stored_state(), b.failures()), (CircuitState::Open, 1));
        }
    }

    /// A record admitted closed that takes its place once the breaker has opened leaves the
    /// window kept for the opening as it was; and after the breaker's probes close it, the
    /// window is the new closed generation's alone.
    #[tokio::test(start_paused = true)]
    async fn a_late_record_placed_after_an_opening_or_a_close_counts_for_nothing() {
        let b: &'static Breaker = Box::leak(Box::new(rate_breaker(0.5, 4, 4)));
        let late = b.admit().unwrap();
        for v in [Verdict::Failure, Verdict::Failure, Verdict::Success] {
            b.record(b.admit().unwrap(), v);
        }
        BEFORE_WINDOW_PLACE.with(|hook| hook.set(Some(Box::new(move || fail(b)))));
        b.record(late, Verdict::Success);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Open, 3));
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..2 {
            b.record(b.admit().unwrap(), Verdict::Success);
        }
        assert_eq!(b.stored_state(), CircuitState::Closed);
        let w = b.window.as_ref().expect("rate mode");
        assert_eq!(Window::place(w.next.load(Ordering::Relaxed)), 0);
        b.record(late, Verdict::Failure);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Closed, 0));
        assert_eq!(Window::place(w.next.load(Ordering::Relaxed)), 0);
    }

    /// Past a full window the place runs round between `size` and `2 * size`, never into the
    /// stamp: the window still reads full, and its slots are the last `size` records'.
    #[test]
    fn the_window_s_place_goes_round_without_reaching_its_stamp() {
        let b = rate_breaker(0.5, 3, 3);
        let w = b.window.as_ref().expect("rate mode");
        for k in 0..10 {
            b.record(b.admit().unwrap(), Verdict::Success);
            let place = Window::place(w.next.load(Ordering::Relaxed));
            assert!(
                place <= 5 && place >= (k + 1).min(3),
                "record {k}: place {place}"
            );
            assert!(stamped_for(
                w.next.load(Ordering::Relaxed),
                b.word.load(Ordering::Relaxed),
                PLACE_BITS
            ));
        }
        fail(&b);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Closed, 1));
        fail(&b);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Open, 2));
    }

    /// A closed ticket 2^32 moves old (an attempt stalled meanwhile) takes no place in the
    /// window of the closed generation that shares its low 32 bits. With 32 bits of stamp, as
    /// the count word has, it did: at a rate of 1 and a minimum of 1 its failure left a closed
    /// breaker with a window at its rate, shown as one failure, whose opening named the old
    /// word and did nothing (the word check this stamp replaced compared the whole word).
    #[test]
    fn a_closed_ticket_2_pow_32_moves_old_takes_no_place() {
        let b = rate_breaker(1.0, 10, 1);
        let old = b.admit().expect("closed");
        {
            let mut held = b.lock();
            let from = (generation(old) + (1 << 32) - 1) << TAG_BITS | CLOSED;
            b.apply(&mut held, from, CircuitState::Closed);
        }
        b.record(old, Verdict::Failure);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Closed, 0));
        fail(&b);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Open, 1));
    }

    /// The largest window the configuration allows goes round below its stamp too: its places
    /// run up to twice its size, the most the place bits hold.
    #[test]
    fn the_largest_window_s_place_goes_round_below_its_stamp() {
        let b = rate_breaker(0.5, 4096, 4096);
        let w = b.window.as_ref().expect("rate mode");
        assert_eq!(w.size, MAX_WINDOW);
        for _ in 0..3 * 4096 {
            b.record(b.admit().expect("closed"), Verdict::Success);
            let n = w.next.load(Ordering::Relaxed);
            assert!(stamped_for(n, b.word.load(Ordering::Relaxed), PLACE_BITS));
            assert!(Window::place(n) < 2 * 4096);
        }
        for _ in 0..2047 {
            fail(&b);
        }
        assert_eq!(
            (b.stored_state(), b.failures()),
            (CircuitState::Closed, 2047)
        );
        fail(&b);
        assert_eq!((b.stored_state(), b.failures()), (CircuitState::Open, 2048));
    }

    /// Records and resets racing on real threads, over windows that go round: the place stays
    /// below twice the size and the failures shown within the window; once they stop, `size`
    /// successes reach every slot, wherever the place had got to.
    #[test]
    fn the_window_s_place_stays_in_bounds_under_racing_records_and_resets_real_threads() {
        for size in [1u32, 2, 3, 64, 65] {
            let b = rate_breaker(0.5, size, size.min(3));
            let w = b.window.as_ref().expect("rate mode");
            let running = AtomicU32::new(2);
            std::thread::scope(|s| {
                for t in 0..2 {
                    let (b, running) = (&b, &running);
                    s.spawn(move || {
                        // xorshift: a third of the records fail, one in 500 resets.
                        let mut x = 0x9E37_79B9u32 + t;
                        for _ in 0..20_000 {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            if let Ok(ticket) = b.admit() {
                                let v = if x.is_multiple_of(3) {
                                    Verdict::Failure
                                } else {
                                    Verdict::Success
                                };
                                b.record(ticket, v);
                            }
                            if x.is_multiple_of(500) {
                                b.force(CircuitState::Closed);
                            }
                        }
                        running.fetch_sub(1, Ordering::Release);
                    });
                }
                while running.load(Ordering::Acquire) > 0 {
                    let place = Window::place(w.next.load(Ordering::Relaxed));
                    assert!(place < 2 * u64::from(size), "size {size}: place {place}");
                    assert!(b.failures() <= size, "size {size}");
                    std::thread::yield_now();
                }
            });
            if b.stored_state() != CircuitState::Closed {
                b.force(CircuitState::Closed);
            }
            for _ in 0..size {
                b.record(b.admit().expect("closed"), Verdict::Success);
            }
            assert_eq!(
                (b.stored_state(), b.failures()),
                (CircuitState::Closed, 0),
                "size {size}"
            );
        }
    }

    #[test]
    fn failure_rate_opens_on_the_success_that_fills_the_minimum() {
        let b = rate_breaker(0.5, 10, 10);
        for _ in 0..5 {
            fail(&b);
        }
        for _ in 0..4 {
            b.acquire().unwrap().record(Verdict::Success);
        }
        assert_eq!(b.state(), CircuitState::Closed, "9 attempts < minimum 10");
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Open, "5 of 10 failed");
    }

    #[test]
    fn failure_rate_reached_exactly_opens_whatever_the_rounding() {
        // Rates and windows where `rate * calls` rounds above the exact count (0.55 * 100.0 is
        // 55.00000000000001): that many failures must still open the breaker, one fewer not.
        for (rate, size) in [
            (0.55, 100),
            (0.14, 50),
            (0.28, 25),
            (0.07, 100),
            (0.56, 100),
        ] {
            let exact = (rate * f64::from(size)).round() as u32;
            for (failures, opens) in [(exact - 1, false), (exact, true)] {
                let b = rate_breaker(rate, size, size);
                for _ in failures..size {
                    b.acquire().unwrap().record(Verdict::Success);
                }
                for _ in 0..failures {
                    fail(&b);
                }
                let want = if opens {
                    CircuitState::Open
                } else {
                    CircuitState::Closed
                };
                assert_eq!(b.state(), want, "{failures} of {size} at rate {rate}");
            }
        }
    }

    #[test]
    fn coarse_ticks_and_spans_are_inverse_and_saturate() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_secs(60),
            Duration::from_secs(365 * 86_400),
        ] {
            let back = coarse_span(coarse_ticks(d));
            // A tick is under a quarter of a nanosecond; rounding down twice loses at most 1 ns.
            assert!(d - back <= Duration::from_nanos(1), "{d:?}: {back:?}");
        }
        assert_eq!(coarse_ticks(Duration::MAX), u64::MAX);
        assert_eq!(coarse_span(u64::MAX).as_secs(), u64::from(u32::MAX));
        assert!(coarse_span(MIN_RETRY_IN_TICKS) >= Duration::from_millis(1));
        // A reading converts as a span does, to the tick, the last nanosecond of a second too.
        for (secs, nanos) in [(0, 0), (1, 1), (86_400, 500_000_000), (7, 999_999_999)] {
            let d = Duration::new(secs, nanos as u32);
            assert_eq!(coarse_reading(secs, nanos), coarse_ticks(d), "{d:?}");
        }
        if !(COARSE_CLOCK && coarse_clock_works()) {
            return;
        }
        // Both ways of reading it (rustix here, coarsetime in a static build) read the same
        // clock in the same ticks: `coarse_now`'s reading lies between two of coarsetime's,
        // to a tick of rounding.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        for _ in 0..1_000 {
            let before = coarsetime::Instant::now_without_cache_update().as_ticks();
            let ours = coarse_now();
            let after = coarsetime::Instant::now_without_cache_update().as_ticks();
            assert!(
                before <= ours + 1 && ours <= after + 1,
                "{before} {ours} {after}"
            );
        }
        // The clock moves with real time, by its tick at worst (10 ms under HZ=100) either way.
        let (a, start) = (coarse_now(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let moved = coarse_span(coarse_now() - a);
        let real = start.elapsed();
        assert!(moved >= Duration::from_millis(10), "{moved:?}");
        assert!(
            moved <= real + Duration::from_millis(10),
            "{moved:?} in {real:?}"
        );
    }

    /// Real time on purpose: the coarse clock is what is under test, and a paused Tokio clock
    /// does not move it (that is why a breaker opened under one keeps to Tokio's clock).
    #[test]
    fn opened_under_a_running_clock_the_breaker_is_timed_on_the_coarse_clock() {
        // Off Linux (or where the kernel refuses the coarse clock) Tokio's clock times it.
        if !(COARSE_CLOCK && coarse_clock_works()) {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = breaker(cfg());
            for _ in 0..3 {
                fail(&b);
            }
            assert_ne!(
                b.opened_coarse.load(Ordering::Relaxed),
                0,
                "timed on the coarse clock"
            );
            match b.acquire() {
                Err(ResilienceError::CircuitOpen {
                    retry_in: Some(d), ..
                }) => assert!(
                    d <= Duration::from_secs(10) && d > Duration::from_secs(9),
                    "retry_in {d:?}"
                ),
                other => panic!("expected a rejection, got {:?}", other.map(|_| ())),
            }
            assert_eq!(b.state(), CircuitState::Open);
            assert!(b.rejects_after(Duration::from_secs(9)));
            assert!(!b.rejects_after(Duration::from_secs(10)));
            assert!(b.retry_in().is_some_and(|d| d > Duration::from_secs(9)));

            let short = || {
                let b = breaker(Config {
                    breaker_timeout: Duration::from_millis(30),
                    ..cfg()
                });
                for _ in 0..3 {
                    fail(&b);
                }
                assert_ne!(b.opened_coarse.load(Ordering::Relaxed), 0);
                b
            };
            let made = std::time::Instant::now();
            let (short, behind) = (short(), short());
            // As if the clock had gone back since the opening: the breaker must fall back to
            // Tokio's clock, not wait for the clock to catch up. What is left of the 30 ms, or
            // nothing where this thread stalled past them (a loaded machine).
            behind.opened_coarse.store(u64::MAX - 1, Ordering::Relaxed);
            let left = behind.retry_in();
            assert!(
                left.is_some_and(|d| d <= Duration::from_millis(30))
                    && (left > Some(Duration::ZERO) || made.elapsed() >= Duration::from_millis(30)),
                "retry_in {left:?} after {:?}",
                made.elapsed()
            );
            std::thread::sleep(Duration::from_millis(40));
            assert_eq!(
                behind.state(),
                CircuitState::HalfOpen,
                "timed on Tokio's clock"
            );
            assert_eq!(short.retry_in(), Some(Duration::ZERO));
            assert!(!short.rejects_after(Duration::ZERO));
            assert_eq!(
                short.state(),
                CircuitState::HalfOpen,
                "the timeout has passed"
            );
            short.acquire().expect("a probe").record(Verdict::Success);
            short.acquire().expect("a probe").record(Verdict::Success);
            assert_eq!(short.state(), CircuitState::Closed);
        });
    }

    #[test]
    fn concurrent_probes_never_exceed_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let b: &'static Breaker = Box::leak(Box::new(breaker(Config {
                half_open_max_calls: 3,
                success_threshold: 1000,
                ..cfg()
            })));
            open_until_probing(b).await;
            // Half-open now, read on the paused clock: the threads below read Tokio's clock
            // outside the runtime (real time), which would still find the breaker open.
            assert_eq!(b.state(), CircuitState::HalfOpen);
            // Counted apart from the breaker's own (clamped) count, so a fourth probe shows.
            let live = AtomicU32::new(0);
            let admitted = AtomicU32::new(0);
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        for _ in 0..10_000 {
                            if let Ok(p) = b.acquire() {
                                admitted.fetch_add(1, Ordering::Relaxed);
                                let before = live.fetch_add(1, Ordering::SeqCst);
                                assert!(before < 3, "a fourth probe let in");
                                std::hint::spin_loop();
                                live.fetch_sub(1, Ordering::SeqCst);
                                drop(p);
                            }
                        }
                    });
                }
            });
            assert!(admitted.load(Ordering::Relaxed) > 0, "no probe was let in");
            assert_eq!(
                unpack_half(b.half.load(Ordering::Acquire)).1,
                0,
                "every slot released"
            );
        });
    }

    /// A caller that looked at the half-open word before a probe's failure was published is
    /// not let in as a probe of the round just lost (it was: the failure freed its slot
    /// before re-opening, and `half` kept that round's generation while open).
    #[tokio::test(start_paused = true)]
    async fn no_probe_is_let_in_after_its_round_failed() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let stale = b.word.load(Ordering::Acquire); // a racing caller's look
        b.acquire().expect("the probe").record(Verdict::Failure);
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.admit_moving(stale).is_err(), "let in while open");
    }

    /// A success admitted while closed that answers after the breaker opened leaves the streak
    /// that opened it alone.
    #[tokio::test(start_paused = true)]
    async fn a_success_from_before_an_opening_resets_nothing() {
        let b = breaker(cfg());
        let slow = b.admit().expect("admitted while closed");
        for _ in 0..3 {
            fail(&b);
        }
        assert_eq!(b.state(), CircuitState::Open);
        b.record(slow, Verdict::Success);
        assert_eq!((b.state(), b.failures()), (CircuitState::Open, 3));
    }

    /// Nor while a round's deciding answer waits for its transition, with a second slot free:
    /// the closing success already counted, or the failure already marked the round lost.
    #[tokio::test(start_paused = true)]
    async fn no_probe_is_let_in_while_its_round_is_being_decided() {
        let c = Config {
            half_open_max_calls: 2,
            success_threshold: 1,
            ..cfg()
        };
        for lose in [false, true] {
            let b = breaker(c.clone());
            open_until_probing(&b).await;
            let probe = b.admit().expect("the first probe");
            assert_eq!(tag(probe), HALF_OPEN);
            if lose {
                b.lost.fetch_max(probe, Ordering::Release);
            } else {
                let h = b.half.load(Ordering::Acquire);
                b.half.store(recount(h, 1, 1, false), Ordering::Release);
            }
            assert!(
                b.admit().is_err(),
                "a probe of a decided round (lost: {lose})"
            );
            // Past the probes' deadline, with the second slot free: the restart makes the
            // decided move at once (it left the round, and the caller spun on restarts until
            // the move came: on another thread here, which is given its move after a while,
            // as a spinner would wait for ever).
            b.probe_deadline.store(0, Ordering::Release);
            // The thread reads the test's paused clock: on a clock of its own (real time,
            // 21 s behind the paused one) the breaker, not timed on the coarse clock where
            // there is none (off Linux), read half-open where it had opened again.
            let rt = tokio::runtime::Handle::current();
            std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::channel();
                let b = &b;
                scope.spawn(move || {
                    let _in = rt.enter();
                    let _ = tx.send(b.admit().map(tag).map_err(drop));
                });
                let got = rx.recv_timeout(Duration::from_secs(5));
                if got.is_err() {
                    b.transition(probe, CircuitState::Closed);
                }
                let moved = if lose { Err(()) } else { Ok(CLOSED) };
                assert_eq!(got, Ok(moved), "lost: {lose}");
            });
            let state = if lose {
                CircuitState::Open
            } else {
                CircuitState::Closed
            };
            assert_eq!(b.state(), state, "lost: {lose}");
        }
    }

    /// The same after a round closed the breaker: the late caller is admitted under the
    /// closed word, so its failure counts.
    #[tokio::test(start_paused = true)]
    async fn a_caller_late_for_a_closed_round_counts_as_closed() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        b.acquire().unwrap().record(Verdict::Success);
        let stale = b.word.load(Ordering::Acquire);
        b.acquire().unwrap().record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::Closed);
        let late = b.admit_moving(stale).expect("admitted");
        assert_eq!(tag(late), CLOSED);
        fail(&b);
        fail(&b);
        b.record(late, Verdict::Failure);
        assert_eq!(b.state(), CircuitState::Open, "its failure is the third");
    }

    /// A probe ticket exactly 2^24 generations old matches the current round's `half` (which
    /// keeps 24 bits of the generation); its answer must still not touch that round.
    #[tokio::test(start_paused = true)]
    async fn a_probe_2_pow_24_generations_old_leaves_the_round_alone() {
        let b = breaker(cfg()); // one probe at a time, two successes to close
        open_until_probing(&b).await;
        let old = b.acquire().expect("old probe");
        {
            let _g = b.transitions.lock().unwrap();
            let g = generation(old.ticket) + (1 << 24);
            // A later half-open spell (the breaker opened and went half-open again since):
            // the old probe's answer is no late answer of this spell's (`late_answer`).
            b.spell.store(g, Ordering::Release);
            b.start_probe_round(g);
            b.word.store(g << TAG_BITS | HALF_OPEN, Ordering::Release);
        }
        let probe = b.acquire().expect("the new round's probe");
        old.record(Verdict::Success);
        assert!(b.acquire().is_err(), "the stale answer freed no slot");
        probe.record(Verdict::Success);
        assert_eq!(b.state(), CircuitState::HalfOpen, "one success of two");
    }

    /// Two threads, each making `calls` calls, answering a probe with `probe` and any other
    /// call with a failure (which, with a threshold of 1, opens the breaker again at once):
    /// how many probes each half-open round let in, of how many rounds.
    fn probes_per_round(b: &Breaker, calls: u32, probe: Verdict) -> (usize, usize) {
        let per_round = Mutex::new(std::collections::HashMap::<u64, u32>::new());
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..calls {
                        if let Ok(t) = b.admit() {
                            let verdict = if tag(t) == HALF_OPEN {
                                *per_round.lock().unwrap().entry(generation(t)).or_default() += 1;
                                probe
                            } else {
                                Verdict::Failure
                            };
                            b.record(t, verdict);
                        }
                    }
                });
            }
        });
        let per_round = per_round.into_inner().unwrap();
        let over = per_round.values().filter(|&&n| n > 1).count();
        (over, per_round.len())
    }

    /// Real threads, every probe failing at once: each half-open round lets in at most its
    /// one probe (before, about one round in five let in a second in such a run).
    #[test]
    fn each_round_lets_in_at_most_its_probes_real_threads() {
        let b = breaker(Config {
            breaker_timeout: Duration::ZERO,
            failure_threshold: 1,
            ..cfg()
        });
        let (over, rounds) = probes_per_round(&b, 50_000, Verdict::Failure);
        assert!(rounds > 0, "no half-open round");
        assert_eq!(over, 0, "{over} of {rounds} rounds");
    }

    /// A success that won the round (the threshold reached, the close not yet made) is not
    /// lost to a restart that gets the lock first: the restart closes the breaker.
    #[tokio::test(start_paused = true)]
    async fn a_restart_closes_a_round_already_won() {
        let b = breaker(cfg()); // one probe at a time, two successes to close
        open_until_probing(&b).await;
        b.acquire().expect("probe 1").record(Verdict::Success);
        let last = b.acquire().expect("probe 2");
        // Where `on_probe` leaves the round before its transition: two successes, the slot
        // kept.
        let h = b.half.load(Ordering::Acquire);
        b.half.store(recount(h, 1, 2, false), Ordering::Release);
        tokio::time::advance(Duration::from_secs(11)).await; // past the probe's deadline
        let next = b.admit().expect("let in");
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(tag(next), CLOSED);
        last.record(Verdict::Success); // the success's own transition: no-op
        assert_eq!(b.state(), CircuitState::Closed);
    }

    /// Likewise a failure that came before the restart: the restart re-opens the breaker
    /// instead of letting in another probe.
    #[tokio::test(start_paused = true)]
    async fn a_restart_reopens_a_round_already_lost() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        let probe = b.acquire().expect("the probe");
        // Where a failing probe leaves the round while it waits for the lock (checked by
        // the next test).
        b.lost.fetch_max(probe.ticket, Ordering::Release);
        tokio::time::advance(Duration::from_secs(11)).await; // past the probe's deadline
        assert!(b.admit().is_err(), "another probe let in");
        assert_eq!(b.state(), CircuitState::Open);
        probe.record(Verdict::Failure); // its own transition: no-op
        assert_eq!(b.state(), CircuitState::Open);
    }

    /// A failure that comes after the restart's check under the lock (it keeps its slot, so
    /// `half` is unchanged and the swap succeeds) still re-opens the breaker.
    #[tokio::test(start_paused = true)]
    async fn a_failure_after_the_restart_check_still_reopens() {
        let b: &'static Breaker = Box::leak(Box::new(breaker(cfg()))); // 'static, for the hook
        open_until_probing(b).await;
        let probe = b.acquire().expect("the probe");
        let ticket = probe.ticket;
        std::mem::forget(probe); // it answers below, through the mark alone
        tokio::time::advance(Duration::from_secs(11)).await;
        AFTER_RESTART_CHECK.with(|hook| {
            hook.set(Some(Box::new(move || {
                b.lost.fetch_max(ticket, Ordering::Release);
            })))
        });
        assert!(b.admit().is_err(), "a new round's probe let in");
        assert_eq!(b.state(), CircuitState::Open);
    }

    /// A failing probe marks its round lost before it waits for the lock, and a late
    /// failure from an older round does not hide that mark.
    #[tokio::test(start_paused = true)]
    async fn a_failing_probe_marks_its_round_lost_before_waiting() {
        let b = breaker(cfg());
        open_until_probing(&b).await;
        let hung = b.acquire().expect("a probe of the first round");
        tokio::time::advance(Duration::from_secs(11)).await; // it holds its slot too long
        let probe = b.acquire().expect("a new round's probe");
        assert!(probe.ticket > hung.ticket);
        let ticket = probe.ticket;
        let lock = b.transitions.lock().unwrap();
        // The threads read the test's paused clock (see
        // `no_probe_is_let_in_while_its_round_is_being_decided`).
        let rt = tokio::runtime::Handle::current();
        std::thread::scope(|s| {
            let failing = s.spawn(|| {
                let _in = rt.enter();
                probe.record(Verdict::Failure)
            });
            // Bounded: a failure that never marks its round would hang here otherwise.
            let give_up = std::time::Instant::now() + Duration::from_secs(30);
            while b.lost.load(Ordering::Acquire) != ticket {
                assert!(std::time::Instant::now() < give_up, "round not marked lost");
                std::hint::spin_loop();
            }
            // The hung probe fails late, after the newer failure marked its round.
            let late = s.spawn(|| {
                let _in = rt.enter();
                hung.record(Verdict::Failure)
            });
            drop(lock);
            failing.join().unwrap();
            late.join().unwrap();
        });
        assert_eq!(
            b.lost.load(Ordering::Acquire),
            ticket,
            "the late failure hid it"
        );
        assert_eq!(b.state(), CircuitState::Open);
    }

    /// Real threads, every probe succeeding and closing the breaker at once (and every
    /// closed call failing, opening it again): each round lets in one probe (a success that
    /// freed its slot before closing let a second one in).
    #[test]
    fn a_closing_success_lets_no_second_probe_in_real_threads() {
        let b = breaker(Config {
            breaker_timeout: Duration::ZERO,
            failure_threshold: 1,
            success_threshold: 1,
            ..cfg()
        });
        let (over, rounds) = probes_per_round(&b, 200_000, Verdict::Success);
        assert!(rounds > 0, "no half-open round");
        assert_eq!(over, 0, "{over} of {rounds} rounds");
    }

    /// Two probes of one round (from helper-99's review): whichever answers first, a probe
    /// failure that comes before the round's move re-opens the breaker, even when the other
    /// probe's success reaches the threshold and gets the transitions lock first. A success
    /// that closed with a plain transition closed a breaker a probe had already failed.
    #[tokio::test(start_paused = true)]
    async fn a_probe_failure_before_the_move_reopens_whichever_answered_first() {
        let c = Config {
            half_open_max_calls: 2,
            success_threshold: 1,
            ..cfg()
        };
        for failure_first in [true, false] {
            let b = breaker(c.clone());
            open_until_probing(&b).await;
            let failing = b.acquire().expect("probe 1");
            let succeeding = b.acquire().expect("probe 2");
            if failure_first {
                // The failure's mark, made before it waits for the lock.
                b.lost.fetch_max(failing.ticket, Ordering::Release);
            } else {
                // The success counted, its move not made yet.
                let h = b.half.load(Ordering::Acquire);
                b.half.store(recount(h, 2, 1, false), Ordering::Release);
            }
            assert!(b.acquire().is_err(), "a probe of a decided round");
            // The other answer takes the lock first, then this one.
            if failure_first {
                succeeding.record(Verdict::Success);
                failing.record(Verdict::Failure);
            } else {
                failing.record(Verdict::Failure);
                succeeding.record(Verdict::Success);
            }
            assert_eq!(
                b.state(),
                CircuitState::Open,
                "failure first: {failure_first}"
            );
        }
    }

    /// The same race on real threads: the failure has marked its round lost, and waits for
    /// the lock (held here) when the success answers; the lock is let go while both want it.
    #[test]
    fn a_success_racing_a_failed_probe_never_closes() {
        let rt = runtime(true);
        let c = Config {
            half_open_max_calls: 2,
            success_threshold: 1,
            ..cfg()
        };
        let mut closed = 0;
        for round in 0..300u64 {
            let b = breaker(c.clone());
            rt.block_on(open_until_probing(&b));
            let (fails, succeeds) = rt.block_on(async { (b.admit().unwrap(), b.admit().unwrap()) });
            let lock = b.transitions.lock().unwrap();
            std::thread::scope(|s| {
                let b = &b;
                s.spawn(move || b.record(fails, Verdict::Failure));
                while b.lost.load(Ordering::Acquire) != fails {
                    std::hint::spin_loop();
                }
                s.spawn(move || b.record(succeeds, Verdict::Success));
                // A varying head start for the success, which may still spin for the lock
                // (std's mutex spins before it parks) while the failure sleeps on it.
                let until = std::time::Instant::now() + Duration::from_micros(round % 40);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                drop(lock);
            });
            closed += usize::from(rt.block_on(async { b.state() }) == CircuitState::Closed);
        }
        assert_eq!(
            closed, 0,
            "{closed} of 300 rounds closed after a probe failed"
        );
    }

    /// A probe's success that races the restart abandoning its round (review of 3f7a6a5): it
    /// loaded its round's word before the restart's swap of `half`, and counts after the swap
    /// but before the new round's word is stored. `on_probe`'s count fails (the round's
    /// `half` is gone) and hands the success to `late_answer`, which found the word still the
    /// probe's own and dropped it as "no late answer": the success the change exists to count
    /// was lost, and the breaker needed a third.
    #[tokio::test(start_paused = true)]
    async fn a_success_between_a_restarts_swap_and_its_word_counts() {
        // 'static, for the hook and the answering thread.
        let b: &'static Breaker = Box::leak(Box::new(breaker(cfg()))); // 1 slot, 2 to close
        open_until_probing(b).await;
        let hung = b.admit().expect("the probe");
        tokio::time::advance(Duration::from_secs(11)).await; // past its deadline
        #[derive(Debug, PartialEq)]
        enum Seen {
            Done,
            Waiting,
        }
        let answerer = std::rc::Rc::new(std::cell::Cell::new(None));
        let handle = answerer.clone();
        AFTER_RESTART_SWAP.with(|hook| {
            hook.set(Some(Box::new(move || {
                // The restart holds the lock, `half` is the new round's, the word still the
                // old one's: the probe answers now, on another thread.
                let (tx, rx) = std::sync::mpsc::channel();
                let waiting = tx.clone();
                handle.set(Some(std::thread::spawn(move || {
                    BEFORE_LATE_WAIT.with(|hook| {
                        hook.set(Some(Box::new(move || {
                            let _ = waiting.send(Seen::Waiting);
                        })))
                    });
                    b.record(hung, Verdict::Success);
                    let _ = tx.send(Seen::Done);
                })));
                // Either it is done (without the lock: it counted nowhere), or it waits for
                // the lock this restart holds, to count in the new round.
                let seen = rx.recv_timeout(Duration::from_secs(30));
                assert!(
                    seen.is_ok(),
                    "the answer neither ended nor waited: {seen:?}"
                );
            })))
        });
        let next = b.admit().expect("a new round's probe");
        let answerer: std::thread::JoinHandle<()> = answerer.take().expect("the hook ran");
        answerer.join().unwrap();
        assert_eq!(
            unpack_half(b.half.load(Ordering::Acquire)).2,
            1,
            "the racing success counted in the new round"
        );
        b.record(next, Verdict::Success);
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "two probes succeeded, one of them while its round was restarted"
        );
    }

    /// The same race on real threads, every probe succeeding: a probe's answer meets a
    /// caller that restarts its round (the deadline set past). No success may be lost or
    /// counted twice: after `n` probes, `n` successes (the threshold is out of reach).
    #[test]
    fn every_probe_success_racing_a_restart_counts_once_real_threads() {
        let b = breaker(Config {
            success_threshold: 65_535,
            ..cfg()
        });
        b.force(CircuitState::HalfOpen);
        let barrier = std::sync::Barrier::new(2);
        let rounds = 20_000u16;
        for round in 0..rounds {
            let probe = b.admit().expect("a free slot");
            b.probe_deadline.store(0, Ordering::Release);
            let other = std::thread::scope(|s| {
                let answering = s.spawn(|| {
                    barrier.wait();
                    b.record(probe, Verdict::Success);
                });
                barrier.wait();
                // Every slot held past its deadline: a restart (or the slot the answer freed).
                let other = b.admit().ok();
                answering.join().unwrap();
                other
            });
            if let Some(t) = other {
                b.release(t);
            }
            let (_, inflight, ok) = unpack_half(b.half.load(Ordering::Acquire));
            assert_eq!(
                (ok, inflight),
                (round + 1, 0),
                "round {round}: successes counted, probes in flight"
            );
            assert_eq!(b.stored_state(), CircuitState::HalfOpen);
        }
    }
}
