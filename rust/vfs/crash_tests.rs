//! Power-loss tests of the crash simulator: crash a transaction at every sync,
//! reopen, and demand integrity plus exactly the before- or after-state.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;

use super::{open, TempDir};
use crate::sys::files::side_file;
use crate::vfs::{arm_crash, crash_state, disarm_crash, sync_count_since_arm};
use crate::vfs::{CrashAction, CrashPlan, CrashState};

const SEEDS: [u64; 3] = [1, 0x5eed, 0xdead_beef];

fn payload(i: i64) -> String {
    format!("row-{i}-").repeat(30)
}

/// FNV-1a over every row, in id order, plus the row count.
fn checksum(c: &Connection) -> rusqlite::Result<(i64, u64)> {
    let mut st = c.prepare("SELECT id, v FROM t ORDER BY id")?;
    let mut rows = st.query([])?;
    let (mut n, mut h) = (0i64, 0xcbf2_9ce4_8422_2325u64);
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let v: String = r.get(1)?;
        for b in id
            .to_le_bytes()
            .iter()
            .chain(v.as_bytes())
            .chain([0xffu8].iter())
        {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        n += 1;
    }
    Ok((n, h))
}

/// A TRUNCATE + FULL database with `rows` rows, written without a crash plan.
fn make_base(path: &Path, rows: i64) {
    let c = super::setup(path, "truncate", "full");
    c.execute_batch("BEGIN").unwrap();
    for i in 0..rows {
        c.execute("INSERT INTO t(v) VALUES (?1)", [payload(i)])
            .unwrap();
    }
    c.execute_batch("COMMIT").unwrap();
}

/// The interrupted transaction: 100 inserts and some updates.
fn txn(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch("BEGIN")?;
    for i in 1000..1100 {
        c.execute("INSERT INTO t(v) VALUES (?1)", [payload(i)])?;
    }
    c.execute("UPDATE t SET v = v || '-updated' WHERE id % 7 = 0", [])?;
    c.execute_batch("COMMIT")
}

/// Opens `path` through the shim with the workload's settings.
fn open_with(path: &Path, journal: &str, sync: &str, cache: Option<i64>) -> Connection {
    let c = open(path);
    let _: String = c
        .query_row(&format!("PRAGMA journal_mode={journal}"), [], |r| r.get(0))
        .unwrap();
    c.execute_batch(&format!("PRAGMA synchronous={sync};"))
        .unwrap();
    if let Some(n) = cache {
        c.execute_batch(&format!("PRAGMA cache_size={n};")).unwrap();
    }
    c
}

fn copy_db(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    for sfx in ["-journal", "-wal"] {
        let _ = std::fs::remove_file(side_file(to, sfx));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Before,
    After,
    /// Integrity check failed or the database could not be read.
    Corrupt(String),
    /// Readable and intact, but neither the before- nor the after-state.
    Neither(i64),
}

/// Reopens `path` (fresh connection, no plan) and classifies what it holds.
fn verify(path: &Path, before: (i64, u64), after: (i64, u64)) -> Outcome {
    let c = open(path);
    let ic: rusqlite::Result<String> = c.query_row("PRAGMA integrity_check", [], |r| r.get(0));
    match ic {
        Ok(s) if s == "ok" => {}
        Ok(s) => return Outcome::Corrupt(s),
        Err(e) => return Outcome::Corrupt(e.to_string()),
    }
    match checksum(&c) {
        Ok(s) if s == before => Outcome::Before,
        Ok(s) if s == after => Outcome::After,
        Ok((n, _)) => Outcome::Neither(n),
        Err(e) => Outcome::Corrupt(e.to_string()),
    }
}

/// The before- and after-state checksums of the workload on a copy of `base`.
fn reference_states(
    dir: &TempDir,
    base: &Path,
    journal: &str,
    cache: Option<i64>,
) -> ((i64, u64), (i64, u64)) {
    let p = dir.db("reference.db");
    copy_db(base, &p);
    let c = open_with(&p, journal, "full", cache);
    let before = checksum(&c).unwrap();
    txn(&c).unwrap();
    let after = checksum(&c).unwrap();
    assert_ne!(before, after);
    (before, after)
}

#[derive(Debug, Default)]
struct Tally {
    crash_points: u64,
    runs: u64,
    before: u64,
    after: u64,
    bad: Vec<(u64, u64, Outcome)>,
    garbled: u64,
    dropped: u64,
}

/// Runs the workload on a fresh copy of `base` for every crash point
/// `1..` until one run completes, per seed; classifies every outcome.
fn crash_sweep(
    dir: &TempDir,
    base: &Path,
    journal: &str,
    sync: &str,
    cache: Option<i64>,
    plan: impl Fn(u64, u64) -> CrashPlan,
) -> Tally {
    let (before, after) = reference_states(dir, base, journal, cache);
    let mut t = Tally::default();
    for seed in SEEDS {
        for n in 1.. {
            let p = dir.db(&format!("run-{journal}-{sync}-{cache:?}-{seed}-{n}.db"));
            copy_db(base, &p);
            arm_crash(&p, plan(n, seed));
            let c = open_with(&p, journal, sync, cache);
            let res = txn(&c);
            drop(c);
            let crashed = matches!(crash_state(&p), CrashState::Crashed { .. });
            let report = disarm_crash(&p).expect("was armed");
            assert_eq!(report.crashed, crashed);
            assert_eq!(report.io_errors, 0, "{report:?}");
            assert!(matches!(crash_state(&p), CrashState::Disarmed));
            let outcome = verify(&p, before, after);
            t.runs += 1;
            t.garbled += report.writes_garbled;
            t.dropped += report.writes_dropped;
            if !crashed {
                res.expect("no crash, so the workload succeeds");
                assert_eq!(outcome, Outcome::After, "completed run, seed {seed}");
                break;
            }
            assert!(res.is_err(), "a crash fails the transaction");
            t.crash_points = t.crash_points.max(n);
            match outcome {
                Outcome::Before => t.before += 1,
                Outcome::After => t.after += 1,
                o => t.bad.push((seed, n, o)),
            }
        }
    }
    t
}

#[test]
fn crash_never_reached_matches_unarmed_run() {
    let dir = TempDir::new();
    let base = dir.db("base.db");
    make_base(&base, 200);
    let (plain, armed) = (dir.db("plain.db"), dir.db("armed.db"));
    copy_db(&base, &plain);
    copy_db(&base, &armed);
    let workload = |c: &Connection| {
        for _ in 0..3 {
            txn(c).unwrap();
        }
        c.execute("DELETE FROM t WHERE id % 5 = 0", []).unwrap();
    };
    let c = open_with(&plain, "truncate", "full", Some(10));
    workload(&c);
    let want = checksum(&c).unwrap();
    drop(c);

    arm_crash(&armed, CrashPlan::at_sync(u64::MAX, 9));
    let c = open_with(&armed, "truncate", "full", Some(10));
    workload(&c);
    // The connection sees its own pending writes.
    assert_eq!(checksum(&c).unwrap(), want);
    let syncs = sync_count_since_arm(&armed);
    assert!(syncs >= 12, "4 syncs per commit at least: {syncs}");
    assert!(matches!(crash_state(&armed), CrashState::Armed { .. }));
    drop(c);
    let r = disarm_crash(&armed).unwrap();
    assert!(!r.crashed);
    assert!(r.writes_flushed > 0 && r.truncates_flushed > 0, "{r:?}");
    assert_eq!(
        (r.writes_kept, r.writes_dropped, r.writes_garbled),
        (0, 0, 0)
    );
    assert_eq!(disarm_crash(&armed), None);
    assert_eq!(sync_count_since_arm(&armed), 0);

    let c = open(&armed);
    super::integrity_ok(&c);
    assert_eq!(checksum(&c).unwrap(), want);
    assert_eq!(
        std::fs::read(&armed).unwrap(),
        std::fs::read(&plain).unwrap()
    );
}

#[test]
fn pending_writes_are_visible_and_unsynced_ones_lost() {
    let dir = TempDir::new();
    let p = dir.db("vis.db");
    make_base(&p, 10);
    let size0 = std::fs::metadata(&p).unwrap().len();
    // synchronous=OFF: nothing is ever synced, so nothing reaches the disk.
    arm_crash(&p, CrashPlan::at_sync(1, 3));
    let c = open_with(&p, "truncate", "off", None);
    for i in 0..300 {
        super::insert(&c, &payload(i)).unwrap();
    }
    assert_eq!(super::count(&c), 310);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), size0, "db untouched");
    match crash_state(&p) {
        CrashState::Armed {
            syncs_seen,
            writes_seen,
            pending,
        } => {
            assert_eq!(syncs_seen, 0);
            assert!(writes_seen > 300 && pending > 0);
        }
        s => panic!("{s:?}"),
    }
    drop(c);
    // Disarming without a crash writes everything out.
    assert!(!disarm_crash(&p).unwrap().crashed);
    let c = open(&p);
    super::integrity_ok(&c);
    assert_eq!(super::count(&c), 310);
}

#[test]
fn crash_at_every_sync_truncate_full() {
    let dir = TempDir::new();
    let base = dir.db("base.db");
    make_base(&base, 200);
    let mut total = (0, 0);
    for cache in [None, Some(10)] {
        let t = crash_sweep(&dir, &base, "truncate", "full", cache, CrashPlan::at_sync);
        eprintln!("TRUNCATE+FULL cache={cache:?}: {t:?}");
        assert!(t.bad.is_empty(), "{:?}", t.bad);
        assert!(t.crash_points >= 4, "{t:?}");
        assert!(t.before > 0 && t.after > 0, "both outcomes occur: {t:?}");
        assert!(t.garbled > 0 && t.dropped > 0, "{t:?}");
        total = (total.0 + t.crash_points, total.1 + t.runs);
    }
    eprintln!(
        "crash points (both cache sizes): {}, runs: {}",
        total.0, total.1
    );
}

#[test]
fn crash_at_every_sync_delete_full() {
    // DELETE mode: the commit point is the journal's xDelete, applied at once.
    let dir = TempDir::new();
    let base = dir.db("base.db");
    make_base(&base, 200);
    let t = crash_sweep(&dir, &base, "delete", "full", None, CrashPlan::at_sync);
    eprintln!("DELETE+FULL: {t:?}");
    assert!(t.bad.is_empty(), "{:?}", t.bad);
    assert!(t.crash_points >= 3, "{t:?}");
}

#[test]
fn frozen_database_keeps_its_hot_journal() {
    let dir = TempDir::new();
    let p = dir.db("frozen.db");
    make_base(&p, 200);
    let journal = side_file(&p, "-journal");
    // Sync 3 of a TRUNCATE+FULL commit is the database sync: the journal is
    // durable (synced twice), the database writes are in flight.
    arm_crash(&p, CrashPlan::at_sync(3, 11));
    let c = open_with(&p, "truncate", "full", None);
    let err = txn(&c).unwrap_err();
    assert_eq!(super::ext_code(&err), rusqlite::ffi::SQLITE_IOERR_FSYNC);
    assert_eq!(sync_count_since_arm(&p), 3);
    // Everything after the power loss fails; nothing reaches the disk.
    let frozen_len = std::fs::metadata(&journal).unwrap().len();
    assert!(frozen_len > 0, "hot journal on disk");
    let again = super::insert(&c, "after the crash");
    assert!(again.is_err());
    drop(c);
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), frozen_len);
    let r = disarm_crash(&p).unwrap();
    assert!(r.crashed && r.syncs_seen == 3, "{r:?}");
    assert!(r.writes_flushed > 0, "journal writes flushed at syncs 1-2");
    // The fresh connection rolls the hot journal back.
    let c = open(&p);
    super::integrity_ok(&c);
    assert_eq!(super::count(&c), 200);
}

#[test]
fn synchronous_off_control_detects_damage() {
    let dir = TempDir::new();
    let base = dir.db("base.db");
    make_base(&base, 200);
    // No syncs at all: power is lost at the nth write instead.
    let t = crash_sweep(&dir, &base, "truncate", "off", None, CrashPlan::at_write);
    eprintln!(
        "TRUNCATE+OFF control: runs {}, before {}, after {}, bad {}",
        t.runs,
        t.before,
        t.after,
        t.bad.len()
    );
    for b in t.bad.iter().take(5) {
        eprintln!("  bad outcome (seed, write, outcome): {b:?}");
    }
    assert!(!t.bad.is_empty(), "the checks must be able to fail: {t:?}");
}

#[test]
fn crash_during_wal_to_truncate_migration() {
    let dir = TempDir::new();
    let src = dir.db("src.db");
    // A WAL database whose rows live only in the -wal: the writer never
    // checkpoints, and its files are copied while it is still open.
    let w = open(&src);
    let mode: String = w
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    w.execute_batch(
        "PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=FULL;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
    )
    .unwrap();
    for chunk in 0..4 {
        w.execute_batch("BEGIN").unwrap();
        for i in 0..50 {
            super::insert(&w, &payload(chunk * 50 + i)).unwrap();
        }
        w.execute_batch("COMMIT").unwrap();
    }
    let want = checksum(&w).unwrap();
    assert_eq!(want.0, 200);
    let wal_of = |p: &Path| side_file(p, "-wal");
    assert!(std::fs::metadata(wal_of(&src)).unwrap().len() > 0);

    let (mut crash_points, mut runs) = (0, 0);
    for seed in SEEDS {
        for n in 1.. {
            let p = dir.db(&format!("mig-{seed}-{n}.db"));
            std::fs::copy(&src, &p).unwrap();
            std::fs::copy(wal_of(&src), wal_of(&p)).unwrap();
            arm_crash(&p, CrashPlan::at_sync(n, seed));
            let c = open(&p);
            let steps = (|| -> rusqlite::Result<String> {
                c.execute_batch("PRAGMA synchronous=FULL")?;
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                c.query_row("PRAGMA journal_mode=TRUNCATE", [], |r| r.get(0))
            })();
            drop(c);
            let r = disarm_crash(&p).unwrap();
            runs += 1;
            let c = open(&p);
            super::integrity_ok(&c);
            assert_eq!(checksum(&c).unwrap(), want, "seed {seed}, sync {n}");
            if !r.crashed {
                assert_eq!(steps.unwrap(), "truncate");
                let mode: String = c
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(mode, "delete", "the header left WAL mode");
                assert!(!wal_of(&p).exists());
                break;
            }
            crash_points = crash_points.max(n);
        }
    }
    eprintln!("WAL->TRUNCATE migration: crash points {crash_points}, runs {runs}");
    assert!(crash_points >= 3);
    drop(w);
}

const CHILD_ENV: &str = "MEMTREE_CRASH_CHILD";

#[test]
fn crash_exit_in_child_process() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        // Child mode: arm with Exit(77) and run the workload.
        let (n, path) = spec.split_once(':').expect("n:path");
        let p = PathBuf::from(path);
        let plan = CrashPlan {
            on_crash: CrashAction::Exit(77),
            ..CrashPlan::at_sync(n.parse().unwrap(), 42)
        };
        arm_crash(&p, plan);
        let c = open_with(&p, "truncate", "full", None);
        txn(&c).unwrap();
        drop(c);
        assert!(!disarm_crash(&p).unwrap().crashed);
        return;
    }
    let dir = TempDir::new();
    let base = dir.db("base.db");
    make_base(&base, 200);
    let (before, after) = reference_states(&dir, &base, "truncate", None);
    let module = module_path!().split_once("::").map_or("", |m| m.1);
    let name = format!("{module}::crash_exit_in_child_process");
    let mut crashes = 0;
    for n in 1..50 {
        let p = dir.db(&format!("child-{n}.db"));
        copy_db(&base, &p);
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{n}:{}", p.display()))
            .output()
            .unwrap();
        let code = out.status.code();
        let outcome = verify(&p, before, after);
        match code {
            Some(77) => {
                crashes += 1;
                assert!(
                    matches!(outcome, Outcome::Before | Outcome::After),
                    "sync {n}: {outcome:?}"
                );
            }
            Some(0) => {
                assert_eq!(outcome, Outcome::After);
                break;
            }
            _ => panic!(
                "child for sync {n}: {:?}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    eprintln!("Exit(77) child runs that crashed: {crashes}");
    assert!(crashes >= 4);
}
