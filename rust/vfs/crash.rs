//! Power-loss simulation, in the manner of SQLite's own crash tests.
//!
//! While a database is armed ([`super::arm_crash`]), every `xWrite` and
//! `xTruncate` of its main-db, `-journal` and `-wal` files is kept in memory,
//! in ONE ordered list across those files, instead of reaching the disk.
//! `xRead` and `xFileSize` of those files see the real file with the pending
//! operations overlaid in order, so SQLite behaves exactly as if the writes had
//! happened. The disk only changes when:
//!
//! - **a file is synced** (before the crash point): that file's pending writes
//!   and truncates are written to it, in order, then the real `xSync` runs.
//!   Pending operations of *other* files stay pending. This is the strictest
//!   rule a real disk allows: `fsync(fd)` promises only that fd's earlier
//!   writes are durable; what happened to other files is unknown until they are
//!   synced themselves. (SQLite's `test6.c`, as we read it, likewise flushes at
//!   a normal sync only the synced file's writes, up to its last pending one,
//!   and leaves the others in the list.) Keeping other files' writes pending
//!   can only add outcomes at the crash, never remove ones a real disk has.
//! - **power is lost**: at the `at_sync`-th `xSync` (of those three roles,
//!   counted since arming; the sync itself does not happen) or, alternatively,
//!   at the `at_write`-th `xWrite` (that write is lost). Each pending write, in
//!   order and independently (seeded splitmix64), is written fully (1/2),
//!   dropped (1/4), or torn (1/4): every `sector_size`-aligned span it touches
//!   is, independently, written, dropped or replaced by random bytes. Pending
//!   truncates are applied or dropped (1/2 each). Independent choices cover
//!   every reordering a disk cache may do. Garbage is confined to the bytes the
//!   write itself covers: the unix VFS advertises
//!   `SQLITE_IOCAP_POWERSAFE_OVERWRITE`, i.e. a torn write never damages bytes
//!   outside its own range, and SQLite relies on that; garbling the neighbours
//!   too would simulate a disk SQLite does not claim to survive.
//! - **the plan is disarmed while no crash happened**: pending operations are
//!   written out in order (the machine simply kept running).
//!
//! After the crash, [`CrashAction::Exit`] ends the process at once (`_exit`, no
//! destructors, no `atexit` handlers) and [`CrashAction::Freeze`] puts the
//! database in the crashed state: every later `xWrite`, `xTruncate`, `xSync`
//! on those files and every `xDelete` of them fails with `SQLITE_IOERR_*`, so
//! nothing SQLite does after the power loss (a rollback that would truncate or
//! delete the hot journal, a checkpoint) reaches the disk. Reads and file sizes
//! pass through and show the post-crash disk. The test then closes the
//! connection, calls [`super::disarm_crash`] and reopens.
//!
//! `xDelete` while armed is applied at once and drops that file's pending
//! operations (they would otherwise be replayed into a later file of the same
//! name). An unlink is durable only after a directory sync, so a real disk
//! could also lose it; SQLite deletes the journal (DELETE mode) only after the
//! database file was synced, so "the unlink was lost" leaves a hot journal next
//! to a fully written database — the same state as a crash at that database
//! sync with every pending write kept, which the random choices already cover.
//! File creation is likewise immediate (a real disk could lose a new, never
//! directory-synced journal; an absent journal reads like an empty one, which
//! dropping all its writes covers).
//!
//! Limitations: only the main-db, main-journal and WAL files are simulated (not
//! super-journals of multi-database transactions, temp files or `-shm`, which
//! SQLite rebuilds); while a crash plan is active the shim refuses memory maps
//! (`xFetch` returns no mapping) and ignores `SQLITE_FCNTL_SIZE_HINT`, which
//! would otherwise bypass the overlay.
//!
//! The simulator reaches a real file only through the [`Disk`] trait (the VFS's
//! `RealFile` implements it), so this module imports nothing that forwards
//! calls and can sit below the file layer.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::ffi;

use super::faults::FileRole;

/// What happens once power is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashAction {
    /// The database's files refuse every later write, truncate, sync and
    /// delete (`SQLITE_IOERR_*`) until [`super::disarm_crash`].
    Freeze,
    /// The process exits at once with this code (`_exit` on unix: no
    /// destructors, no `atexit` handlers, no stdio flush).
    Exit(i32),
}

/// When and how a simulated power loss happens. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPlan {
    /// 1-based: power is lost at the `at_sync`-th `xSync` of the database's
    /// main-db, journal or WAL file after arming; that sync does not happen.
    /// 0: never at a sync.
    pub at_sync: u64,
    /// Alternative trigger, 1-based: power is lost at the `at_write`-th
    /// `xWrite` to those files after arming (that write is lost). Whichever
    /// trigger comes first wins.
    pub at_write: Option<u64>,
    /// Seed of the PRNG deciding the fate of each pending operation.
    pub seed: u64,
    /// Granularity of torn writes, in bytes (0 acts as 4096).
    pub sector_size: u64,
    /// What happens after the power loss.
    pub on_crash: CrashAction,
}

impl Default for CrashPlan {
    /// Never crashes (`at_sync` 0, no `at_write`), seed 0, 4096-byte sectors,
    /// [`CrashAction::Freeze`].
    fn default() -> Self {
        CrashPlan {
            at_sync: 0,
            at_write: None,
            seed: 0,
            sector_size: 4096,
            on_crash: CrashAction::Freeze,
        }
    }
}

impl CrashPlan {
    /// Power loss at the `n`-th sync, with `seed`, 4096-byte sectors, freezing.
    pub fn at_sync(n: u64, seed: u64) -> Self {
        CrashPlan {
            at_sync: n,
            seed,
            ..CrashPlan::default()
        }
    }

    /// Power loss at the `n`-th write, with `seed`, 4096-byte sectors, freezing.
    pub fn at_write(n: u64, seed: u64) -> Self {
        CrashPlan {
            at_write: Some(n),
            seed,
            ..CrashPlan::default()
        }
    }
}

/// The crash-simulation state of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashState {
    /// No plan armed.
    Disarmed,
    /// Armed, power not lost yet.
    Armed {
        /// Syncs of the simulated files since arming.
        syncs_seen: u64,
        /// Writes to the simulated files since arming.
        writes_seen: u64,
        /// Writes and truncates held in memory right now.
        pending: usize,
    },
    /// Power was lost ([`CrashAction::Freeze`]); see [`CrashReport`] for more.
    Crashed {
        /// Syncs of the simulated files since arming (the crash sync included).
        syncs_seen: u64,
        /// Pending writes that reached the disk whole.
        writes_kept: u64,
        /// Pending writes that were lost.
        writes_dropped: u64,
        /// Pending writes that were torn sector by sector.
        writes_garbled: u64,
    },
}

impl CrashState {
    /// Syncs of the simulated files since arming (0 when disarmed).
    pub fn syncs_seen(&self) -> u64 {
        match self {
            CrashState::Disarmed => 0,
            CrashState::Armed { syncs_seen, .. } | CrashState::Crashed { syncs_seen, .. } => {
                *syncs_seen
            }
        }
    }
}

/// What a crash plan did, from [`super::disarm_crash`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Whether power was lost.
    pub crashed: bool,
    /// Syncs of the simulated files since arming (the crash sync included).
    pub syncs_seen: u64,
    /// Writes to the simulated files since arming (the crash write included).
    pub writes_seen: u64,
    /// Writes made durable by a sync (or by disarming without a crash).
    pub writes_flushed: u64,
    /// Truncates made durable by a sync (or by disarming without a crash).
    pub truncates_flushed: u64,
    /// Writes pending at the crash that reached the disk whole.
    pub writes_kept: u64,
    /// Writes pending at the crash that were lost.
    pub writes_dropped: u64,
    /// Writes pending at the crash that were torn (sectors kept, lost or garbage).
    pub writes_garbled: u64,
    /// Truncates pending at the crash that were applied.
    pub truncates_kept: u64,
    /// Truncates pending at the crash that were lost.
    pub truncates_dropped: u64,
    /// Deletes applied while armed (their files' pending operations dropped).
    pub deletes: u64,
    /// Pending operations that could not be written to the real file at the
    /// crash or at disarm (e.g. the file vanished); 0 in a sound run.
    pub io_errors: u64,
}

/// The simulated files of a database, by index.
const SUFFIXES: [&str; 3] = ["", "-journal", "-wal"];

/// Index of a file role among the simulated files, if it is simulated.
pub(crate) fn file_index(role: FileRole) -> Option<usize> {
    match role {
        FileRole::MainDb => Some(0),
        FileRole::MainJournal => Some(1),
        FileRole::Wal => Some(2),
        _ => None,
    }
}

#[derive(Debug)]
enum OpKind {
    Write { off: u64, data: Vec<u8> },
    Truncate(u64),
}

#[derive(Debug)]
struct Op {
    file: usize,
    kind: OpKind,
}

#[derive(Debug)]
struct Armed {
    db: PathBuf,
    plan: CrashPlan,
    ops: Vec<Op>,
    report: CrashReport,
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Disarmed,
    Armed(Box<Armed>),
    Crashed(CrashReport),
}

/// The crash-simulation slot of one database (lives in its `DbState`).
#[derive(Debug, Default)]
pub(crate) struct CrashSlot {
    /// True while armed or crashed: the one load the hot path pays otherwise.
    active: AtomicBool,
    phase: Mutex<Phase>,
}

/// splitmix64: tiny, seedable, good enough to pick fates and garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// The real file behind a simulated one: what the simulator reads, writes,
/// truncates, syncs and sizes when it lets an operation reach the disk. Each
/// method returns SQLite's result code for the call (`SQLITE_IOERR_SHORT_READ`
/// included). Implemented by the VFS's `RealFile`; kept as a trait so this
/// module stays below the layer that forwards calls.
pub(crate) trait Disk {
    /// `xRead` of `buf.len()` bytes at `off`.
    fn read(&self, buf: &mut [u8], off: u64) -> c_int;
    /// `xWrite` of `data` at `off`.
    fn write(&self, data: &[u8], off: u64) -> c_int;
    /// `xTruncate` to `size` bytes.
    fn truncate(&self, size: u64) -> c_int;
    /// `xSync` with `flags`.
    fn sync(&self, flags: c_int) -> c_int;
    /// `xFileSize`.
    fn size(&self) -> Result<u64, c_int>;
}

/// Ends the process now: no destructors, no `atexit` handlers.
fn exit_now(code: i32) -> ! {
    #[cfg(unix)]
    {
        extern "C" {
            fn _exit(code: c_int) -> !;
        }
        // SAFETY: POSIX `_exit` takes any int status and never returns; it
        // touches no Rust state.
        unsafe { _exit(code) }
    }
    #[cfg(not(unix))]
    {
        std::process::exit(code)
    }
}

/// The path of simulated file `idx` of database `db`.
fn file_path(db: &Path, idx: usize) -> PathBuf {
    crate::sys::files::side_file(db, SUFFIXES[idx])
}

/// Writes operations to files by path (at the crash and at disarm, when the
/// SQLite file handles may be closed). Opens each file once.
struct PathWriter<'a> {
    db: &'a Path,
    files: [Option<File>; 3],
}

impl<'a> PathWriter<'a> {
    fn new(db: &'a Path) -> Self {
        PathWriter {
            db,
            files: [None, None, None],
        }
    }

    fn file(&mut self, idx: usize) -> std::io::Result<&mut File> {
        if self.files[idx].is_none() {
            let f = OpenOptions::new()
                .write(true)
                .open(file_path(self.db, idx))?;
            self.files[idx] = Some(f);
        }
        Ok(self.files[idx].as_mut().expect("just opened"))
    }

    fn write(&mut self, idx: usize, off: u64, data: &[u8]) -> std::io::Result<()> {
        let f = self.file(idx)?;
        f.seek(SeekFrom::Start(off))?;
        f.write_all(data)
    }

    fn truncate(&mut self, idx: usize, size: u64) -> std::io::Result<()> {
        self.file(idx)?.set_len(size)
    }

    fn apply(&mut self, op: &Op) -> std::io::Result<()> {
        match &op.kind {
            OpKind::Write { off, data } => self.write(op.file, *off, data),
            OpKind::Truncate(n) => self.truncate(op.file, *n),
        }
    }
}

impl Armed {
    /// Writes all pending operations out in order (no crash).
    fn flush_all(&mut self) {
        let mut w = PathWriter::new(&self.db);
        for op in std::mem::take(&mut self.ops) {
            match w.apply(&op) {
                Err(_) => self.report.io_errors += 1,
                Ok(()) => match op.kind {
                    OpKind::Write { .. } => self.report.writes_flushed += 1,
                    OpKind::Truncate(_) => self.report.truncates_flushed += 1,
                },
            }
        }
    }

    /// Loses power: decides the fate of every pending operation and applies it.
    fn power_loss(mut self) -> CrashReport {
        let mut rng = Rng(self.plan.seed);
        let ss = match self.plan.sector_size {
            0 => 4096,
            n => n,
        };
        let mut w = PathWriter::new(&self.db);
        let mut r = self.report;
        r.crashed = true;
        for op in std::mem::take(&mut self.ops) {
            let res = match &op.kind {
                OpKind::Truncate(n) => {
                    if rng.next() & 1 == 0 {
                        r.truncates_kept += 1;
                        w.truncate(op.file, *n)
                    } else {
                        r.truncates_dropped += 1;
                        Ok(())
                    }
                }
                OpKind::Write { off, data } => match rng.next() % 4 {
                    0 | 1 => {
                        r.writes_kept += 1;
                        w.write(op.file, *off, data)
                    }
                    2 => {
                        r.writes_dropped += 1;
                        Ok(())
                    }
                    _ => {
                        r.writes_garbled += 1;
                        torn_write(&mut w, &mut rng, op.file, *off, data, ss)
                    }
                },
            };
            if res.is_err() {
                r.io_errors += 1;
            }
        }
        r
    }
}

/// Writes `data` at `off` sector by sector, each sector's span written, lost
/// or replaced by garbage at random.
fn torn_write(
    w: &mut PathWriter<'_>,
    rng: &mut Rng,
    file: usize,
    off: u64,
    data: &[u8],
    ss: u64,
) -> std::io::Result<()> {
    let end = off + data.len() as u64;
    let mut pos = off;
    while pos < end {
        let next = ((pos / ss) + 1) * ss;
        let stop = next.min(end);
        let span = &data[(pos - off) as usize..(stop - off) as usize];
        match rng.next() % 3 {
            0 => w.write(file, pos, span)?,
            1 => {}
            _ => {
                let mut junk = vec![0u8; span.len()];
                rng.fill(&mut junk);
                w.write(file, pos, &junk)?;
            }
        }
        pos = stop;
    }
    Ok(())
}

impl CrashSlot {
    fn lock(&self) -> MutexGuard<'_, Phase> {
        // The phase is only replaced whole, never left half-updated.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while a plan is armed or the database is crashed.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Arms `plan` for database `db`; pending operations of a previous plan are
    /// written out first, a previous crash is forgotten.
    pub(crate) fn arm(&self, db: &Path, plan: CrashPlan) {
        let mut g = self.lock();
        if let Phase::Armed(a) = &mut *g {
            a.flush_all();
        }
        *g = Phase::Armed(Box::new(Armed {
            db: db.to_path_buf(),
            plan,
            ops: Vec::new(),
            report: CrashReport::default(),
        }));
        self.active.store(true, Ordering::Release);
    }

    /// Disarms; flushes pending operations if power was not lost. `None` if
    /// nothing was armed.
    pub(crate) fn disarm(&self) -> Option<CrashReport> {
        let mut g = self.lock();
        let out = match std::mem::take(&mut *g) {
            Phase::Disarmed => None,
            Phase::Armed(mut a) => {
                a.flush_all();
                Some(a.report)
            }
            Phase::Crashed(r) => Some(r),
        };
        self.active.store(false, Ordering::Release);
        out
    }

    /// The current state.
    pub(crate) fn state(&self) -> CrashState {
        match &*self.lock() {
            Phase::Disarmed => CrashState::Disarmed,
            Phase::Armed(a) => CrashState::Armed {
                syncs_seen: a.report.syncs_seen,
                writes_seen: a.report.writes_seen,
                pending: a.ops.len(),
            },
            Phase::Crashed(r) => CrashState::Crashed {
                syncs_seen: r.syncs_seen,
                writes_kept: r.writes_kept,
                writes_dropped: r.writes_dropped,
                writes_garbled: r.writes_garbled,
            },
        }
    }

    /// Loses power now (the guard must hold an armed phase).
    fn crash(&self, g: &mut MutexGuard<'_, Phase>) {
        if let Phase::Armed(a) = std::mem::take(&mut **g) {
            let action = a.plan.on_crash;
            let report = a.power_loss();
            **g = Phase::Crashed(report);
            if let CrashAction::Exit(code) = action {
                exit_now(code);
            }
        }
    }

    /// `xRead` of simulated file `file`: the real bytes with pending
    /// operations overlaid.
    pub(crate) fn read(&self, file: usize, real: &impl Disk, buf: &mut [u8], off: u64) -> c_int {
        let g = self.lock();
        let Phase::Armed(a) = &*g else {
            return real.read(buf, off);
        };
        if !a.ops.iter().any(|o| o.file == file) {
            return real.read(buf, off);
        }
        let mut size = match real.size() {
            Ok(s) => s,
            Err(rc) => return rc,
        };
        let rc = real.read(buf, off);
        if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
            return rc;
        }
        // Invariant: bytes of `buf` past the logical size are zero.
        let end = off + buf.len() as u64;
        for op in a.ops.iter().filter(|o| o.file == file) {
            match &op.kind {
                OpKind::Write { off: wo, data } => {
                    let wend = wo + data.len() as u64;
                    let lo = off.max(*wo);
                    let hi = end.min(wend);
                    if lo < hi {
                        buf[(lo - off) as usize..(hi - off) as usize]
                            .copy_from_slice(&data[(lo - wo) as usize..(hi - wo) as usize]);
                    }
                    size = size.max(wend);
                }
                OpKind::Truncate(n) => {
                    size = *n;
                    if *n < end {
                        buf[(n.saturating_sub(off)) as usize..].fill(0);
                    }
                }
            }
        }
        if end > size {
            ffi::SQLITE_IOERR_SHORT_READ
        } else {
            ffi::SQLITE_OK
        }
    }

    /// `xFileSize` of simulated file `file`, pending operations included.
    pub(crate) fn file_size(&self, file: usize, real: &impl Disk) -> Result<u64, c_int> {
        let g = self.lock();
        let mut size = real.size()?;
        if let Phase::Armed(a) = &*g {
            for op in a.ops.iter().filter(|o| o.file == file) {
                size = match &op.kind {
                    OpKind::Write { off, data } => size.max(off + data.len() as u64),
                    OpKind::Truncate(n) => *n,
                };
            }
        }
        Ok(size)
    }

    /// `xWrite` of simulated file `file`: kept pending (or the crash trigger).
    pub(crate) fn write(&self, file: usize, real: &impl Disk, data: &[u8], off: u64) -> c_int {
        let mut g = self.lock();
        match &mut *g {
            Phase::Disarmed => return real.write(data, off),
            Phase::Crashed(_) => return ffi::SQLITE_IOERR_WRITE,
            Phase::Armed(a) => {
                a.report.writes_seen += 1;
                if a.plan.at_write != Some(a.report.writes_seen) {
                    a.ops.push(Op {
                        file,
                        kind: OpKind::Write {
                            off,
                            data: data.to_vec(),
                        },
                    });
                    return ffi::SQLITE_OK;
                }
            }
        }
        self.crash(&mut g);
        ffi::SQLITE_IOERR_WRITE
    }

    /// `xTruncate` of simulated file `file`: kept pending.
    pub(crate) fn truncate(&self, file: usize, real: &impl Disk, size: u64) -> c_int {
        let mut g = self.lock();
        match &mut *g {
            Phase::Disarmed => real.truncate(size),
            Phase::Crashed(_) => ffi::SQLITE_IOERR_TRUNCATE,
            Phase::Armed(a) => {
                a.ops.push(Op {
                    file,
                    kind: OpKind::Truncate(size),
                });
                ffi::SQLITE_OK
            }
        }
    }

    /// `xSync` of simulated file `file`: flushes that file's pending
    /// operations and syncs, or loses power if this is the crash sync.
    pub(crate) fn sync(&self, file: usize, real: &impl Disk, flags: c_int) -> c_int {
        let mut g = self.lock();
        let a = match &mut *g {
            Phase::Disarmed => return real.sync(flags),
            Phase::Crashed(_) => return ffi::SQLITE_IOERR_FSYNC,
            Phase::Armed(a) => a,
        };
        a.report.syncs_seen += 1;
        if a.plan.at_sync == a.report.syncs_seen {
            self.crash(&mut g);
            return ffi::SQLITE_IOERR_FSYNC;
        }
        let Phase::Armed(a) = &mut *g else {
            unreachable!("armed above")
        };
        let (mine, rest): (Vec<Op>, Vec<Op>) = std::mem::take(&mut a.ops)
            .into_iter()
            .partition(|o| o.file == file);
        a.ops = rest;
        for op in mine {
            let rc = match &op.kind {
                OpKind::Write { off, data } => {
                    a.report.writes_flushed += 1;
                    real.write(data, *off)
                }
                OpKind::Truncate(n) => {
                    a.report.truncates_flushed += 1;
                    real.truncate(*n)
                }
            };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        real.sync(flags)
    }

    /// `xDelete` of simulated file `file`: `Some(code)` to refuse it (after
    /// the crash), else drops the file's pending operations and lets it run.
    pub(crate) fn delete(&self, file: usize) -> Option<c_int> {
        let mut g = self.lock();
        match &mut *g {
            Phase::Disarmed => None,
            Phase::Crashed(_) => Some(ffi::SQLITE_IOERR_DELETE),
            Phase::Armed(a) => {
                a.ops.retain(|o| o.file != file);
                a.report.deletes += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_spread() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<u64> = (0..64).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..64).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        let buckets = xs.iter().fold([0u32; 4], |mut acc, x| {
            acc[(x % 4) as usize] += 1;
            acc
        });
        assert!(buckets.iter().all(|&n| n > 4), "{buckets:?}");
    }

    #[test]
    fn file_paths_and_roles() {
        let db = Path::new("/x/chunks.db");
        assert_eq!(file_path(db, 0), PathBuf::from("/x/chunks.db"));
        assert_eq!(file_path(db, 1), PathBuf::from("/x/chunks.db-journal"));
        assert_eq!(file_path(db, 2), PathBuf::from("/x/chunks.db-wal"));
        assert_eq!(file_index(FileRole::MainDb), Some(0));
        assert_eq!(file_index(FileRole::Temp), None);
        assert_eq!(file_index(FileRole::SuperJournal), None);
    }
}
