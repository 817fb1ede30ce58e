//! The wall clock memtree stamps rows and side files with, in one place so
//! every module reads time the same way (and none imports a store for it).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch, now; 0 when the system clock is set before
/// 1970, so a stamp is never negative.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
