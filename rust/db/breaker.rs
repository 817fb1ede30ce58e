//! The per-path circuit breaker: after repeated failed opens, stop touching
//! the disk for a while instead of hammering a file antivirus or a sandbox is
//! holding.
//!
//! Parameters (from the design brief, kept outside this repository): trips after 3 consecutive failed inits, stays open
//! 30 s, re-arms if the first attempt after the cool-down fails, resets on
//! success. The cool-down can be changed (tests use milliseconds).
//!
//! The states are per fork generation: a forked child starts with every
//! circuit closed rather than wait on a lock a parent thread held.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys::fork::ForkLocal;

/// Consecutive failed inits that open the circuit.
pub const TRIP_AFTER_FAILURES: u32 = 3;
/// Default time the circuit stays open.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// The longest cool-down [`set_cooldown`] takes: a day. A longer one is a
/// mistake (the circuit would never half-open in practice), and an unbounded
/// one would overflow `Instant` arithmetic when the circuit trips.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(86_400);

static COOLDOWN_MS: AtomicU64 = AtomicU64::new(DEFAULT_COOLDOWN.as_millis() as u64);

#[derive(Debug, Default, Clone, Copy)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    last_code: Option<i32>,
}

static BREAKERS: ForkLocal<Mutex<HashMap<PathBuf, State>>> = ForkLocal::new(Mutex::default);

fn breakers() -> MutexGuard<'static, HashMap<PathBuf, State>> {
    BREAKERS.get().lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets how long a tripped circuit stays open (for every path); more than
/// [`MAX_COOLDOWN`] is refused and changes nothing.
pub fn set_cooldown(cooldown: Duration) -> Result<()> {
    if cooldown > MAX_COOLDOWN {
        return Err(Error::invalid(
            "seconds",
            format!("must be at most {} seconds", MAX_COOLDOWN.as_secs()),
        ));
    }
    // At most 86,400,000 ms: the cast cannot truncate.
    COOLDOWN_MS.store(cooldown.as_millis() as u64, Ordering::Relaxed);
    Ok(())
}

/// The current cool-down.
pub fn cooldown() -> Duration {
    Duration::from_millis(COOLDOWN_MS.load(Ordering::Relaxed))
}

/// Fails fast with [`Error::CircuitOpen`] while the circuit of `path` is
/// open. Once the cool-down has passed the caller is let through (the
/// "half-open" attempt); its outcome decides what happens next.
pub fn admit(path: &Path) -> Result<()> {
    let map = breakers();
    let Some(state) = map.get(path) else {
        return Ok(());
    };
    match state.open_until {
        Some(until) if Instant::now() < until => Err(Error::CircuitOpen {
            path: path.to_owned(),
            retry_in: until - Instant::now(),
            last_code: state.last_code,
        }),
        _ => Ok(()),
    }
}

/// Records a successful init: the circuit closes and the count resets.
pub fn record_success(path: &Path) {
    breakers().remove(path);
}

/// Records a failed init; opens (or re-arms) the circuit when the failures
/// reach [`TRIP_AFTER_FAILURES`] and then returns the failure count, so the
/// caller can report the trip once the breaker lock is released.
pub fn record_failure(path: &Path, code: Option<i32>) -> Option<u32> {
    let mut map = breakers();
    let state = map.entry(path.to_owned()).or_default();
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    state.last_code = code.or(state.last_code);
    // A failure after the cool-down (half-open) lands here with the count
    // already past the threshold, so it re-arms at once.
    if state.consecutive_failures >= TRIP_AFTER_FAILURES {
        state.open_until = Some(Instant::now() + cooldown());
        return Some(state.consecutive_failures);
    }
    None
}

/// Forgets the breaker state of `path` (the `Store.invalidate` of the API).
pub fn reset(path: &Path) {
    breakers().remove(path);
}

/// `(consecutive_failures, is_open)` for diagnostics and tests.
pub fn status(path: &Path) -> (u32, bool) {
    breakers().get(path).map_or((0, false), |s| {
        (
            s.consecutive_failures,
            s.open_until.is_some_and(|u| Instant::now() < u),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_three_and_rearms_on_failed_half_open() {
        let path = Path::new("/breaker-test/a.db");
        set_cooldown(Duration::from_millis(30)).expect("in range");
        for _ in 0..2 {
            assert!(admit(path).is_ok());
            record_failure(path, Some(14));
        }
        assert!(admit(path).is_ok(), "two failures do not trip it");
        record_failure(path, Some(4618));
        match admit(path) {
            Err(Error::CircuitOpen { last_code, .. }) => assert_eq!(last_code, Some(4618)),
            other => panic!("expected open circuit, got {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(admit(path).is_ok(), "half-open after the cool-down");
        record_failure(path, Some(14));
        assert!(admit(path).is_err(), "a failed half-open attempt re-arms");
        std::thread::sleep(Duration::from_millis(40));
        assert!(admit(path).is_ok());
        record_success(path);
        assert_eq!(status(path), (0, false));
        set_cooldown(DEFAULT_COOLDOWN).expect("in range");
    }

    #[test]
    fn a_cooldown_past_the_maximum_is_refused() {
        let err = set_cooldown(MAX_COOLDOWN + Duration::from_millis(1)).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        assert!(cooldown() <= MAX_COOLDOWN);
    }
}
