//! A fault seam for the copy aside a quarantine or a restore takes
//! ([`crate::recovery::main_file::copy_aside`]): the copy is plain file I/O
//! (create the file, write it in chunks, fsync it, sync the folder), not
//! SQLite's, so the VFS's fault injection never reaches it. Tests arm a
//! fault here to fail the nth of those operations, once or from then on,
//! with an operating-system error (`memtree.testing.inject_copy_fault`),
//! and loop it over every operation of a quarantine.
//!
//! A plan is per database (keyed by its path as the copy gets it:
//! canonical), so a test's fault cannot reach another database's copy;
//! while nothing is armed anywhere each operation costs one relaxed atomic
//! load.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The operations of a copy aside, in the order one copy runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOp {
    /// Creating the copy's file (exclusively, at a fresh name).
    Create,
    /// Writing one chunk of the damaged file into the copy.
    Write,
    /// `fsync` of the copy.
    Sync,
    /// `fsync` of the folder that holds it.
    SyncDir,
}

#[derive(Debug)]
struct Plan {
    nth: u64,
    persistent: bool,
    errno: i32,
    calls: u64,
    fired: u64,
}

/// True while any database has a plan: the fast path's one load.
static ARMED: AtomicBool = AtomicBool::new(false);
static PLANS: Mutex<Option<HashMap<PathBuf, Plan>>> = Mutex::new(None);

fn with_plans<T>(f: impl FnOnce(&mut HashMap<PathBuf, Plan>) -> T) -> T {
    let mut guard = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    let plans = guard.get_or_insert_with(HashMap::new);
    let out = f(plans);
    ARMED.store(!plans.is_empty(), Ordering::Release);
    out
}

/// Arms a fault for the copy aside of `db` (quarantine, restore): the
/// `nth` (1-based) copy operation from now fails with the operating-system
/// error `errno` (for example `EIO` 5, `ENOSPC` 28), and with `persistent`
/// every one after it too. Replaces any fault armed for `db`.
pub fn arm(db: &Path, nth: u64, persistent: bool, errno: i32) {
    let plan = Plan {
        nth,
        persistent,
        errno,
        calls: 0,
        fired: 0,
    };
    with_plans(|plans| plans.insert(db.to_owned(), plan));
}

/// Disarms the fault of `db`; returns `(operations seen, operations
/// failed)` since it was armed (`(0, 0)` if none was).
pub fn disarm(db: &Path) -> (u64, u64) {
    with_plans(|plans| plans.remove(db).map_or((0, 0), |p| (p.calls, p.fired)))
}

/// Counts one copy operation `op` of `db`'s copy aside and fails it when
/// the plan armed for `db` says so.
pub(crate) fn check(db: &Path, op: CopyOp) -> io::Result<()> {
    if !ARMED.load(Ordering::Acquire) {
        return Ok(());
    }
    let failure = with_plans(|plans| {
        let p = plans.get_mut(db)?;
        p.calls += 1;
        let fails = p.calls == p.nth || (p.persistent && p.calls > p.nth);
        fails.then(|| {
            p.fired += 1;
            p.errno
        })
    });
    match failure {
        None => Ok(()),
        Some(errno) => Err(io::Error::new(
            io::Error::from_raw_os_error(errno).kind(),
            InjectedFault { op, errno },
        )),
    }
}

/// The error an injected fault carries: the errno it stands for, so it is
/// classified like the real one ([`crate::error::io_error_code`] reads the
/// kind), and the operation it failed.
#[derive(Debug)]
struct InjectedFault {
    op: CopyOp,
    errno: i32,
}

impl std::fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (injected fault at {:?} of the copy aside)",
            io::Error::from_raw_os_error(self.errno),
            self.op
        )
    }
}

impl std::error::Error for InjectedFault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_operation_fails_once_or_from_then_on() {
        let db = Path::new("/copy-faults-test/chunks.db");
        let other = Path::new("/copy-faults-test/other.db");
        arm(db, 2, false, 28);
        assert!(check(db, CopyOp::Create).is_ok());
        assert!(check(other, CopyOp::Create).is_ok(), "another database");
        let failed = check(db, CopyOp::Write).expect_err("the second call fails");
        assert_eq!(failed.kind(), io::ErrorKind::StorageFull);
        assert!(failed.to_string().contains("Write"), "{failed}");
        assert!(check(db, CopyOp::Sync).is_ok());
        assert_eq!(disarm(db), (3, 1));
        assert!(check(db, CopyOp::Write).is_ok(), "disarmed");
        arm(db, 1, true, 5);
        assert!(check(db, CopyOp::Create).is_err());
        assert!(check(db, CopyOp::Write).is_err());
        assert_eq!(disarm(db), (2, 2));
        assert_eq!(disarm(other), (0, 0));
    }
}
