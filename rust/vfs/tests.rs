//! Tests of the shim against SQLite's real behaviour (bundled SQLite, default
//! VFS of the platform). Every test uses its own throw-away database, so the
//! per-database counters of tests running in parallel never mix.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::*;

/// A throw-away directory (`tempfile`, removed on drop) with its canonical
/// path: the shim keys a database by the absolute path SQLite opened, and the
/// temp dir may sit behind a symlink (`/var` -> `/private/var` on macOS).
struct TempDir {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix("memtree-vfs-")
            .tempdir()
            .unwrap();
        let path = dir.path().canonicalize().unwrap();
        TempDir { _dir: dir, path }
    }

    /// Absolute canonical path of a (possibly not yet existing) file in here.
    fn db(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

fn open(path: &Path) -> Connection {
    register().expect("register memtree vfs");
    Connection::open_with_flags_and_vfs(path, OpenFlags::default(), VFS_NAME)
        .expect("open via memtree")
}

/// Opens with the given journal mode and synchronous level and creates `t`.
fn setup(path: &Path, journal: &str, sync: &str) -> Connection {
    let c = open(path);
    let mode: String = c
        .query_row(&format!("PRAGMA journal_mode={journal}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), journal.to_lowercase());
    c.execute_batch(&format!(
        "PRAGMA synchronous={sync}; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT);"
    ))
    .unwrap();
    c
}

fn insert(c: &Connection, v: &str) -> rusqlite::Result<usize> {
    c.execute("INSERT INTO t(v) VALUES (?1)", [v])
}

fn count(c: &Connection) -> i64 {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn integrity_ok(c: &Connection) {
    let s: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(s, "ok");
}

fn ext_code(e: &rusqlite::Error) -> i32 {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
        other => panic!("not a sqlite failure: {other:?}"),
    }
}

/// I/O of one commit, measured from a reset.
fn one_commit(c: &Connection, path: &Path, v: &str) -> IoStats {
    reset_io_stats(path);
    insert(c, v).unwrap();
    io_stats(path)
}

fn fault(method: VfsMethod, nth: u64, code: i32, persistent: bool) -> Fault {
    Fault {
        method,
        nth,
        code,
        persistent,
        role: None,
    }
}

#[test]
fn register_is_idempotent_and_not_default() {
    register().unwrap();
    register().unwrap();
    let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(register)).collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    // SAFETY: plain lookups of registered VFSs; the structs live forever.
    let (dflt, ours) = unsafe {
        (
            rusqlite::ffi::sqlite3_vfs_find(std::ptr::null()),
            rusqlite::ffi::sqlite3_vfs_find(c"memtree".as_ptr()),
        )
    };
    assert!(!ours.is_null());
    assert_ne!(dflt, ours, "memtree must not be the default VFS");
}

#[test]
fn method_names_round_trip() {
    for m in VfsMethod::ALL {
        assert_eq!(m.as_str().parse::<VfsMethod>(), Ok(m));
        assert_eq!(m.to_string(), m.as_str());
    }
    assert_eq!("xShmMap".parse::<VfsMethod>(), Ok(VfsMethod::ShmMap));
    assert!("xBogus".parse::<VfsMethod>().is_err());
}

#[test]
fn file_names_map_to_their_main_db() {
    use super::state::{classify_name, key_for_open};
    let (k, r) = classify_name(c"/d/x.db-journal");
    assert_eq!(
        (k.as_path(), r),
        (Path::new("/d/x.db"), FileRole::MainJournal)
    );
    let (k, r) = classify_name(c"/d/x.db-wal");
    assert_eq!((k.as_path(), r), (Path::new("/d/x.db"), FileRole::Wal));
    let (k, r) = classify_name(c"/d/x.db-mj0A1B2C9F3");
    assert_eq!(
        (k.as_path(), r),
        (Path::new("/d/x.db"), FileRole::SuperJournal)
    );
    let (k, r) = classify_name(c"/d/x.db");
    assert_eq!((k.as_path(), r), (Path::new("/d/x.db"), FileRole::MainDb));
    assert_eq!(key_for_open(None, FileRole::Temp), None);
    assert_eq!(
        key_for_open(Some(c"/d/x.db-wal"), FileRole::Wal).as_deref(),
        Some(Path::new("/d/x.db"))
    );
    assert_eq!(
        super::shim::role_from_flags(
            rusqlite::ffi::SQLITE_OPEN_WAL | rusqlite::ffi::SQLITE_OPEN_CREATE
        ),
        FileRole::Wal
    );
}

/// (a) TRUNCATE journal + synchronous=FULL. Measured per commit (every commit
/// alike, because the pager closes the journal at the end of each transaction
/// and reopens it with SQLITE_OPEN_CREATE): journal xSync x3 (before the db
/// writes, after the header's record count, after truncating to 0), db xSync x1,
/// and the unix VFS's directory fsync inside the first journal xSync: 4 xSync
/// calls, 5 syncs (strace agrees: fdatasync(jrnl), fdatasync(dir),
/// fdatasync(jrnl), fdatasync(db), ftruncate(jrnl), fdatasync(jrnl) on Linux,
/// where `.cargo/config.toml` builds SQLite with HAVE_FDATASYNC; fsync()
/// without it).
#[test]
fn truncate_full_commit_syncs() {
    let dir = TempDir::new();
    let p = dir.db("a.db");
    let c = setup(&p, "TRUNCATE", "FULL");
    for v in ["a", "b", "c"] {
        let s = one_commit(&c, &p, v);
        assert_eq!(s.syncs_journal, 3, "{s:?}");
        assert_eq!(s.syncs_db, 1, "{s:?}");
        assert_eq!(s.syncs_wal, 0, "{s:?}");
        assert_eq!(s.syncs_dir, if cfg!(unix) { 1 } else { 0 }, "{s:?}");
        assert_eq!(s.sync_calls(), 4);
        assert_eq!(s.syncs_total(), 4 + s.syncs_dir);
        assert_eq!(s.truncates, 1);
        assert_eq!(s.opens, 1, "journal reopened per transaction");
        assert_eq!(s.deletes, 0);
        assert!(s.bytes_written > 0 && s.writes > 0);
    }
    // The journal stays on disk, truncated to zero bytes.
    assert_eq!(std::fs::metadata(dir.db("a.db-journal")).unwrap().len(), 0);
    assert_eq!(count(&c), 3);
}

/// DELETE journal + FULL: journal xSync x2, db xSync x1, the directory fsync of
/// the newly created journal, and an xDelete of the journal without dirSync
/// (SQLite only asks for dirSync on delete with synchronous=EXTRA).
#[test]
fn delete_full_commit_syncs() {
    let dir = TempDir::new();
    let p = dir.db("d.db");
    let c = setup(&p, "DELETE", "FULL");
    for v in ["a", "b"] {
        let s = one_commit(&c, &p, v);
        assert_eq!(
            (s.syncs_journal, s.syncs_db, s.sync_calls()),
            (2, 1, 3),
            "{s:?}"
        );
        assert_eq!(s.syncs_dir, if cfg!(unix) { 1 } else { 0 }, "{s:?}");
        assert_eq!(s.deletes, 1);
        assert_eq!(s.truncates, 0);
    }
    assert!(!dir.db("d.db-journal").exists());
}

/// synchronous=EXTRA adds the dirSync flag to the journal delete, which the
/// shim counts as a directory sync.
#[test]
fn delete_extra_counts_delete_dirsync() {
    let dir = TempDir::new();
    let p = dir.db("x.db");
    let c = setup(&p, "DELETE", "EXTRA");
    let s = one_commit(&c, &p, "a");
    assert_eq!(s.deletes, 1);
    assert_eq!(s.syncs_dir, if cfg!(unix) { 2 } else { 0 }, "{s:?}");
}

/// (b) WAL: the first commit into a new WAL also syncs the WAL header (FULL: 2
/// WAL syncs; NORMAL: 1) plus the directory fsync of the new -wal file; in
/// steady state FULL syncs the WAL once per commit and NORMAL never. The
/// checkpoint at the last close syncs the WAL and the db once each.
#[test]
fn wal_commit_syncs() {
    let dir = TempDir::new();
    for (sync, first_wal, steady_wal) in [("FULL", 2, 1), ("NORMAL", 1, 0)] {
        let p = dir.db(&format!("w-{sync}.db"));
        let c = setup(&p, "WAL", sync);
        // setup's CREATE TABLE was the first commit into the WAL; redo the
        // measurement on a fresh WAL by checkpointing and truncating it.
        drop(c);
        let c = open(&p);
        c.execute_batch(&format!("PRAGMA synchronous={sync}"))
            .unwrap();
        let first = one_commit(&c, &p, "first");
        assert_eq!(first.syncs_wal, first_wal, "{sync} first {first:?}");
        assert_eq!(first.syncs_db + first.syncs_journal, 0, "{first:?}");
        assert_eq!(first.syncs_dir, if cfg!(unix) { 1 } else { 0 }, "{first:?}");
        for v in ["a", "b", "c"] {
            let s = one_commit(&c, &p, v);
            assert_eq!(s.syncs_wal, steady_wal, "{sync} steady {s:?}");
            assert_eq!(s.syncs_total(), steady_wal, "{sync} steady {s:?}");
            assert!(s.bytes_written > 0);
        }
        reset_io_stats(&p);
        drop(c);
        let s = io_stats(&p);
        assert_eq!((s.syncs_wal, s.syncs_db), (1, 1), "close checkpoint {s:?}");
        assert!(!dir.db(&format!("w-{sync}.db-wal")).exists());
    }
}

/// (c) WAL through the shim with a second connection: snapshot isolation works
/// (so the shared-memory index is shared through the shim) and so does a
/// TRUNCATE checkpoint.
#[test]
fn wal_second_reader_and_checkpoint() {
    let dir = TempDir::new();
    let p = dir.db("c.db");
    let w = setup(&p, "WAL", "NORMAL");
    for v in ["a", "b", "c"] {
        insert(&w, v).unwrap();
    }
    let r = open(&p);
    assert_eq!(count(&r), 3);
    r.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&r), 3);
    insert(&w, "d").unwrap();
    assert_eq!(count(&r), 3, "reader keeps its snapshot");
    r.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&r), 4);
    let (busy, log, ckpt): (i64, i64, i64) = w
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |x| {
            Ok((x.get(0)?, x.get(1)?, x.get(2)?))
        })
        .unwrap();
    assert_eq!((busy, log, ckpt), (0, 0, 0));
    assert_eq!(std::fs::metadata(dir.db("c.db-wal")).unwrap().len(), 0);
    assert_eq!(count(&r), 4);
    let s = io_stats(&p);
    assert!(s.shm_maps >= 2, "{s:?}");
    assert!(s.opens >= 3, "db twice + wal: {s:?}");
    integrity_ok(&r);
}

/// (d) The first xWrite of a transaction (the journal header) fails with
/// SQLITE_IOERR_WRITE: the INSERT fails with that extended code, the database
/// stays intact and the row is absent.
#[test]
fn write_fault_fails_insert_and_keeps_db_intact() {
    let dir = TempDir::new();
    let p = dir.db("d.db");
    let c = setup(&p, "TRUNCATE", "FULL");
    insert(&c, "keep").unwrap();
    inject_fault(
        &p,
        fault(
            VfsMethod::Write,
            1,
            rusqlite::ffi::SQLITE_IOERR_WRITE,
            false,
        ),
    );
    let e = insert(&c, "lost").unwrap_err();
    assert_eq!(ext_code(&e), 778);
    assert_eq!(e.sqlite_error_code(), Some(ErrorCode::SystemIoFailure));
    assert_eq!(faults_fired(&p), 1);
    assert!(method_calls(&p, VfsMethod::Write) >= 1);
    assert_eq!(clear_fault(&p), 1);
    integrity_ok(&c);
    let n: i64 = c
        .query_row("SELECT count(*) FROM t WHERE v='lost'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(count(&c), 1);
    drop(c);
    let c = open(&p);
    integrity_ok(&c);
    assert_eq!(count(&c), 1);
}

/// A write fault on the db file itself (after the journal is synced) is rolled
/// back from the journal: still intact.
#[test]
fn write_fault_on_db_file_rolls_back() {
    let dir = TempDir::new();
    let p = dir.db("dd.db");
    let c = setup(&p, "TRUNCATE", "FULL");
    insert(&c, "keep").unwrap();
    inject_fault(
        &p,
        Fault {
            method: VfsMethod::Write,
            nth: 1,
            code: 778,
            persistent: false,
            role: Some(FileRole::MainDb),
        },
    );
    let e = insert(&c, "lost").unwrap_err();
    assert_eq!(ext_code(&e), 778);
    assert_eq!(clear_fault(&p), 1);
    integrity_ok(&c);
    assert_eq!(count(&c), 1);
}

/// (e) xShmMap failing with SQLITE_IOERR_SHMMAP while reading a WAL database:
/// SQLite does not retry or rewrite the code, so 5386 reaches rusqlite, both
/// for a second connection next to a live one and for a fresh open. A single
/// (non-persistent) failure only fails that statement: the retry succeeds.
#[test]
fn shm_map_fault_reaches_caller() {
    let dir = TempDir::new();
    let p = dir.db("e.db");
    let a = setup(&p, "WAL", "FULL");
    insert(&a, "x").unwrap();
    inject_fault(
        &p,
        fault(
            VfsMethod::ShmMap,
            1,
            rusqlite::ffi::SQLITE_IOERR_SHMMAP,
            false,
        ),
    );
    let b = open(&p);
    let e = b
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(ext_code(&e), 5386);
    assert_eq!(faults_fired(&p), 1);
    assert_eq!(count(&b), 1, "retry after a one-shot fault succeeds");
    clear_fault(&p);
    drop(b);
    drop(a);
    // Fresh open of a WAL database (the -wal was removed at the last close).
    inject_fault(&p, fault(VfsMethod::ShmMap, 1, 5386, true));
    let c = open(&p);
    let e = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(ext_code(&e), 5386);
    let e = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(ext_code(&e), 5386);
    assert_eq!(clear_fault(&p), 2);
    assert_eq!(count(&c), 1);
}

/// (f) xOpen of the rollback journal fails with SQLITE_CANTOPEN: the write
/// fails with exactly 14 (SQLite passes the open's code through).
#[test]
fn journal_open_fault_fails_write() {
    let dir = TempDir::new();
    let p = dir.db("f.db");
    let c = setup(&p, "TRUNCATE", "FULL");
    inject_fault(
        &p,
        Fault {
            method: VfsMethod::Open,
            nth: 1,
            code: rusqlite::ffi::SQLITE_CANTOPEN,
            persistent: false,
            role: Some(FileRole::MainJournal),
        },
    );
    let e = insert(&c, "x").unwrap_err();
    assert_eq!(ext_code(&e) & 0xff, 14);
    assert_eq!(ext_code(&e), 14);
    assert_eq!(faults_fired(&p), 1);
    clear_fault(&p);
    insert(&c, "y").unwrap();
    integrity_ok(&c);
    assert_eq!(count(&c), 1);
}

/// Opening the main database fails when its xOpen is failed (and a missing
/// directory without CREATE fails in the real VFS): no crash, no leak.
#[test]
fn main_db_open_failures() {
    let dir = TempDir::new();
    let p = dir.db("o.db");
    register().unwrap();
    inject_fault(
        &p,
        fault(VfsMethod::Open, 1, rusqlite::ffi::SQLITE_CANTOPEN, false),
    );
    let e = Connection::open_with_flags_and_vfs(&p, OpenFlags::default(), VFS_NAME).unwrap_err();
    assert_eq!(ext_code(&e), 14);
    assert_eq!(clear_fault(&p), 1);
    let missing = dir.db("no/such/dir.db");
    let e =
        Connection::open_with_flags_and_vfs(&missing, OpenFlags::default(), VFS_NAME).unwrap_err();
    assert_eq!(ext_code(&e) & 0xff, 14);
    let c = setup(&p, "TRUNCATE", "FULL");
    insert(&c, "ok").unwrap();
}

/// (g) A one-shot fault fails one attempt and the retry succeeds; a persistent
/// one keeps failing until cleared. The "fail call N, N = 1.. until no fault
/// fires" loop also terminates.
#[test]
fn once_vs_persistent() {
    let dir = TempDir::new();
    let p = dir.db("g.db");
    let c = setup(&p, "TRUNCATE", "FULL");

    inject_fault(
        &p,
        fault(VfsMethod::Sync, 1, rusqlite::ffi::SQLITE_IOERR_FSYNC, false),
    );
    assert_eq!(
        ext_code(&insert(&c, "a").unwrap_err()),
        rusqlite::ffi::SQLITE_IOERR_FSYNC
    );
    insert(&c, "a").unwrap();
    assert_eq!(clear_fault(&p), 1);

    inject_fault(
        &p,
        fault(VfsMethod::Sync, 1, rusqlite::ffi::SQLITE_IOERR_FSYNC, true),
    );
    for _ in 0..3 {
        assert_eq!(
            ext_code(&insert(&c, "b").unwrap_err()),
            rusqlite::ffi::SQLITE_IOERR_FSYNC
        );
    }
    // SQLite also syncs while rolling back the failed transaction, and those
    // syncs fail too (measured: 2 failed xSync per failed INSERT).
    let fired = faults_fired(&p);
    assert!(fired >= 3, "{fired}");
    assert_eq!(clear_fault(&p), fired);
    insert(&c, "b").unwrap();
    integrity_ok(&c);
    assert_eq!(count(&c), 2);

    // Fail the nth xWrite of one INSERT for n = 1.. until an attempt sees no fault.
    reset_io_stats(&p);
    insert(&c, "probe").unwrap();
    let writes = method_calls(&p, VfsMethod::Write);
    assert!(writes >= 2);
    let mut expected = count(&c);
    for n in 1.. {
        inject_fault(&p, fault(VfsMethod::Write, n, 778, false));
        let r = insert(&c, "n");
        let fired = clear_fault(&p);
        integrity_ok(&c);
        if fired == 0 {
            r.unwrap();
            expected += 1;
            assert_eq!(count(&c), expected);
            assert!(n > writes);
            break;
        }
        assert_eq!(ext_code(&r.unwrap_err()), 778);
        assert_eq!(count(&c), expected, "failed insert left no row (n={n})");
    }
}

/// Lock, close and read faults.
#[test]
fn lock_close_and_read_faults() {
    let dir = TempDir::new();
    let p = dir.db("l.db");
    let c = setup(&p, "TRUNCATE", "FULL");
    insert(&c, "x").unwrap();

    inject_fault(
        &p,
        fault(VfsMethod::Lock, 1, rusqlite::ffi::SQLITE_IOERR_LOCK, false),
    );
    let e = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(ext_code(&e), rusqlite::ffi::SQLITE_IOERR_LOCK);
    assert_eq!(clear_fault(&p), 1);
    assert_eq!(count(&c), 1);

    // Reads: drop the page cache by reopening, then fail the first read.
    drop(c);
    let c = open(&p);
    inject_fault(
        &p,
        Fault {
            method: VfsMethod::Read,
            nth: 1,
            code: 266,
            persistent: false,
            role: Some(FileRole::MainDb),
        },
    );
    let e = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(ext_code(&e), 266);
    assert_eq!(clear_fault(&p), 1);
    assert_eq!(count(&c), 1);

    // A failed xClose still closes the real file: the db reopens and writes.
    inject_fault(
        &p,
        fault(VfsMethod::Close, 1, rusqlite::ffi::SQLITE_IOERR_CLOSE, true),
    );
    drop(c);
    assert!(clear_fault(&p) >= 1);
    let c = setup(&p, "TRUNCATE", "FULL");
    insert(&c, "y").unwrap();
    integrity_ok(&c);
    assert_eq!(count(&c), 2);
}

/// Temp files (unnamed) go through the shim without a key; vfs-level
/// forwarding (time) works.
#[test]
fn temp_files_and_vfs_level_calls() {
    let dir = TempDir::new();
    let p = dir.db("t.db");
    let c = setup(&p, "TRUNCATE", "FULL");
    c.execute_batch(
        "PRAGMA temp_store=FILE; PRAGMA cache_size=2;
         CREATE TEMP TABLE tt(x); 
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<2000)
         INSERT INTO tt SELECT randomblob(200) FROM n;",
    )
    .unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT x FROM tt ORDER BY x)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2000);
    let now: i64 = c
        .query_row("SELECT CAST(strftime('%Y','now') AS INTEGER)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(now >= 2024);
    let s = io_stats(&p);
    assert_eq!(s.syncs_other, 0, "temp files have no key: {s:?}");
}

/// (h) Two databases used concurrently from two threads keep separate counters.
#[test]
fn threads_keep_separate_counters() {
    let dir = TempDir::new();
    let paths = [dir.db("h1.db"), dir.db("h2.db")];
    let handles: Vec<_> = paths
        .iter()
        .cloned()
        .zip([5usize, 9])
        .map(|(p, n)| {
            std::thread::spawn(move || {
                let c = setup(&p, "TRUNCATE", "FULL");
                reset_io_stats(&p);
                for i in 0..n {
                    insert(&c, &i.to_string()).unwrap();
                }
                (p, n)
            })
        })
        .collect();
    for h in handles {
        let (p, n) = h.join().unwrap();
        let s = io_stats(&p);
        let n = n as u64;
        assert_eq!(s.syncs_journal, 3 * n, "{s:?}");
        assert_eq!(s.syncs_db, n, "{s:?}");
        assert_eq!(s.truncates, n, "{s:?}");
        assert_eq!(method_calls(&p, VfsMethod::Sync), 4 * n);
    }
    assert_eq!(io_stats(&dir.db("never-opened.db")), IoStats::default());
}

#[path = "crash_tests.rs"]
mod crash_tests;
