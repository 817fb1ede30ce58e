//! Per-database I/O accounting: the public [`IoStats`] snapshot and the atomic
//! counters behind it.
//!
//! Every counter is a relaxed [`AtomicU64`]; a snapshot is therefore not an
//! atomic cut across counters, which is fine for tests that read it while no
//! connection is busy.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the I/O that went through the `memtree` VFS for one database
/// (its main file, rollback journal, WAL and super-journals).
///
/// Counts are of calls *forwarded to the real VFS*: a call failed by an
/// injected fault is not counted here (see [`super::method_calls`] for that).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// `xOpen` calls that reached the real VFS (main db, journal, WAL, super-journal).
    pub opens: u64,
    /// `xRead` calls.
    pub reads: u64,
    /// Bytes requested by `xRead` calls (a short read still counts the full request).
    pub bytes_read: u64,
    /// `xWrite` calls.
    pub writes: u64,
    /// Bytes passed to `xWrite` calls.
    pub bytes_written: u64,
    /// `xTruncate` calls.
    pub truncates: u64,
    /// `xSync` calls on the main database file.
    pub syncs_db: u64,
    /// `xSync` calls on the rollback journal.
    pub syncs_journal: u64,
    /// `xSync` calls on the WAL file.
    pub syncs_wal: u64,
    /// Directory fsyncs done *inside* another call by the unix VFS: the first
    /// successful `xSync` of a journal/WAL/super-journal opened with
    /// `SQLITE_OPEN_CREATE`, and every successful `xDelete` with `syncDir != 0`.
    /// Always 0 on non-unix platforms.
    pub syncs_dir: u64,
    /// `xSync` calls on any other file of this database (super-journal, named temp files).
    pub syncs_other: u64,
    /// `xDelete` calls.
    pub deletes: u64,
    /// `xShmMap` calls.
    pub shm_maps: u64,
}

impl IoStats {
    /// All syncs, including the directory syncs the VFS does inside other calls.
    pub fn syncs_total(&self) -> u64 {
        self.syncs_db + self.syncs_journal + self.syncs_wal + self.syncs_dir + self.syncs_other
    }

    /// Number of `xSync` calls only (no directory syncs).
    pub fn sync_calls(&self) -> u64 {
        self.syncs_db + self.syncs_journal + self.syncs_wal + self.syncs_other
    }
}

/// Which sync counter an `xSync` call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncKind {
    Db,
    Journal,
    Wal,
    Other,
}

/// The live, lock-free counters of one database.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) opens: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) truncates: AtomicU64,
    pub(crate) syncs_db: AtomicU64,
    pub(crate) syncs_journal: AtomicU64,
    pub(crate) syncs_wal: AtomicU64,
    pub(crate) syncs_dir: AtomicU64,
    pub(crate) syncs_other: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) shm_maps: AtomicU64,
}

/// Adds one to a counter.
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
#[inline]
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// The counter an `xSync` of the given kind goes to.
    pub(crate) fn sync_counter(&self, kind: SyncKind) -> &AtomicU64 {
        match kind {
            SyncKind::Db => &self.syncs_db,
            SyncKind::Journal => &self.syncs_journal,
            SyncKind::Wal => &self.syncs_wal,
            SyncKind::Other => &self.syncs_other,
        }
    }

    fn all(&self) -> [&AtomicU64; 13] {
        [
            &self.opens,
            &self.reads,
            &self.bytes_read,
            &self.writes,
            &self.bytes_written,
            &self.truncates,
            &self.syncs_db,
            &self.syncs_journal,
            &self.syncs_wal,
            &self.syncs_dir,
            &self.syncs_other,
            &self.deletes,
            &self.shm_maps,
        ]
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> IoStats {
        let [opens, reads, bytes_read, writes, bytes_written, truncates, syncs_db, syncs_journal, syncs_wal, syncs_dir, syncs_other, deletes, shm_maps] =
            self.all().map(|c| c.load(Ordering::Relaxed));
        IoStats {
            opens,
            reads,
            bytes_read,
            writes,
            bytes_written,
            truncates,
            syncs_db,
            syncs_journal,
            syncs_wal,
            syncs_dir,
            syncs_other,
            deletes,
            shm_maps,
        }
    }

    /// Sets every counter back to zero.
    pub(crate) fn reset(&self) {
        for c in self.all() {
            c.store(0, Ordering::Relaxed);
        }
    }
}
