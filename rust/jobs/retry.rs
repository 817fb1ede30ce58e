//! Retry back-off per kind: how long a failed job waits before its next
//! attempt, and after how many attempts a failure is final.
//!
//! The default ([`RetryPolicy::default`]) is the reference's: 60 s after the
//! first failed attempt, doubling, capped at 1 h, final when the job's own
//! `max_attempts` (stored in its row) is spent. A caller (the Python
//! `Worker`, per kind) may pass another base and cap, and a `max_attempts`
//! that ends a job sooner than its row says (the smaller of the two wins,
//! so a policy never gives a job more attempts than it was enqueued with).
//! The policy lives in the caller, like priorities: the table is unchanged.

use crate::error::{Error, Result};
use crate::jobs::{RETRY_BASE_MS, RETRY_CAP_MS};

/// A retry back-off; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt, ms (at least 0).
    pub base_ms: i64,
    /// The longest delay, ms (at least `base_ms`).
    pub cap_ms: i64,
    /// Attempts after which a failure is final, if fewer than the job's own.
    pub max_attempts: Option<i64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_ms: RETRY_BASE_MS,
            cap_ms: RETRY_CAP_MS,
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    /// Refuses a negative base, a cap below the base, or fewer than one
    /// attempt.
    pub fn validate(&self) -> Result<()> {
        if self.base_ms < 0 {
            return Err(Error::invalid("retry.base", "must not be negative"));
        }
        if self.cap_ms < self.base_ms {
            return Err(Error::invalid("retry.cap", "must be at least retry.base"));
        }
        if self.max_attempts.is_some_and(|m| m < 1) {
            return Err(Error::invalid("retry.max_attempts", "must be at least 1"));
        }
        Ok(())
    }

    /// The delay after failed attempt number `attempts` (1-based): base,
    /// doubling, capped.
    pub fn delay_ms(&self, attempts: i64) -> i64 {
        let doublings = attempts.saturating_sub(1).clamp(0, 62) as u32;
        self.base_ms
            .saturating_mul(1_i64.checked_shl(doublings).unwrap_or(i64::MAX))
            .min(self.cap_ms)
    }

    /// Whether a failure after `attempts` of a job allowed `max_attempts`
    /// is final.
    pub fn is_final(&self, attempts: i64, max_attempts: i64) -> bool {
        attempts
            >= self
                .max_attempts
                .map_or(max_attempts, |m| m.min(max_attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_reference_back_off() {
        let p = RetryPolicy::default();
        for attempts in 0..80 {
            assert_eq!(p.delay_ms(attempts), crate::jobs::retry_delay_ms(attempts));
        }
        assert!(!p.is_final(4, 5) && p.is_final(5, 5));
    }

    #[test]
    fn a_policy_doubles_from_its_base_to_its_cap_and_ends_sooner_only() {
        let p = RetryPolicy {
            base_ms: 10,
            cap_ms: 35,
            max_attempts: Some(3),
        };
        assert_eq!(
            (1..=5).map(|a| p.delay_ms(a)).collect::<Vec<_>>(),
            [10, 20, 35, 35, 35]
        );
        assert!(p.is_final(3, 5) && !p.is_final(2, 5));
        assert!(p.is_final(2, 2), "never more attempts than the job's own");
        for bad in [
            RetryPolicy { base_ms: -1, ..p },
            RetryPolicy { cap_ms: 5, ..p },
            RetryPolicy {
                max_attempts: Some(0),
                ..p
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
