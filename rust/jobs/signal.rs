//! The process-wide enqueue signal that wakes idle workers at once.

use std::sync::{Condvar, LazyLock, Mutex};
use std::time::Duration;

/// Bumps the enqueue signal when `n` rows may have become claimable;
/// returns `n`.
pub(crate) fn notify_if_any(n: usize) -> usize {
    if n > 0 {
        notify_enqueued();
    }
    n
}

/// The process-wide enqueue signal: a generation counter bumped whenever a
/// job may have become claimable in this process, so idle workers wake at
/// once instead of at their next poll.
pub(crate) static SIGNAL: LazyLock<(Mutex<u64>, Condvar)> = LazyLock::new(Default::default);

/// The current generation of the enqueue signal.
pub fn signal_generation() -> u64 {
    *SIGNAL.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bumps the enqueue signal and wakes every waiter.
pub fn notify_enqueued() {
    let (lock, cvar) = &*SIGNAL;
    *lock.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    cvar.notify_all();
}

/// Waits until the generation differs from `seen` or `timeout` passes;
/// returns the generation then. Returns at once if it already differs.
pub fn wait_for_signal(seen: u64, timeout: Duration) -> u64 {
    let (lock, cvar) = &*SIGNAL;
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    let (guard, _) = cvar
        .wait_timeout_while(guard, timeout, |g| *g == seen)
        .unwrap_or_else(|p| p.into_inner());
    *guard
}
