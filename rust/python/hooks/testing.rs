//! `memtree._native.testing`: the hooks behind `memtree.testing` (the VFS's
//! I/O accounting, fault injection and crash simulation, the open counters,
//! the circuit breaker's and busy handler's knobs, the error-mapping
//! samples), kept out of the product namespace `memtree._native`.

use std::path::PathBuf;

use pyo3::exceptions::{PyBaseException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::db::connection::canonical_db_path;
use crate::python::convert;
use crate::vfs::{self, Fault, FileRole, VfsMethod};

fn key(path: PathBuf) -> PyResult<PathBuf> {
    Ok(canonical_db_path(&path)?)
}

fn method(name: &str) -> PyResult<VfsMethod> {
    name.parse()
        .map_err(|_| PyValueError::new_err(format!("method: unknown VFS method {name:?}")))
}

fn role(name: &str) -> PyResult<FileRole> {
    Ok(match name {
        "main_db" => FileRole::MainDb,
        "journal" => FileRole::MainJournal,
        "wal" => FileRole::Wal,
        "super_journal" => FileRole::SuperJournal,
        "temp" => FileRole::Temp,
        _ => {
            return Err(PyValueError::new_err(format!(
                "role: unknown file role {name:?} (main_db, journal, wal, super_journal, temp)"
            )))
        }
    })
}

/// A database's I/O counters; a dict in Python (`memtree.testing.IoStats`).
#[derive(IntoPyObject)]
pub struct IoStats {
    opens: u64,
    reads: u64,
    bytes_read: u64,
    writes: u64,
    bytes_written: u64,
    truncates: u64,
    syncs_db: u64,
    syncs_journal: u64,
    syncs_wal: u64,
    syncs_dir: u64,
    syncs_other: u64,
    deletes: u64,
    shm_maps: u64,
    sync_calls: u64,
    syncs_total: u64,
    commits: u64,
    committed_calls: u64,
    largest_group: u64,
    commit_syncs: u64,
    failed_groups: u64,
    rolled_back_calls: u64,
}

/// The VFS's I/O counters for a database, with what its group commits
/// did (see ``memtree.testing``).
#[pyfunction]
pub fn io_stats(#[pyo3(from_py_with = convert::arg::path)] path: PathBuf) -> PyResult<IoStats> {
    let key = key(path)?;
    let s = vfs::io_stats(&key);
    let g = crate::db::connection::group_stats(&key)?;
    Ok(IoStats {
        opens: s.opens,
        reads: s.reads,
        bytes_read: s.bytes_read,
        writes: s.writes,
        bytes_written: s.bytes_written,
        truncates: s.truncates,
        syncs_db: s.syncs_db,
        syncs_journal: s.syncs_journal,
        syncs_wal: s.syncs_wal,
        syncs_dir: s.syncs_dir,
        syncs_other: s.syncs_other,
        deletes: s.deletes,
        shm_maps: s.shm_maps,
        sync_calls: s.sync_calls(),
        syncs_total: s.syncs_total(),
        commits: g.commits,
        committed_calls: g.committed_calls,
        largest_group: g.largest_group,
        commit_syncs: g.commit_syncs,
        failed_groups: g.failed_groups,
        rolled_back_calls: g.rolled_back_calls,
    })
}

/// Per-path open counters; a dict in Python (`memtree.testing.OpenCounters`).
#[derive(IntoPyObject)]
pub struct OpenCounters {
    connections_opened: u64,
    schema_inits: u64,
    wal_migrations: u64,
    recoveries: u64,
    quarantines: u64,
    stranded_merged: u64,
}

/// Per-path counters in this process: ``connections_opened``,
/// ``schema_inits``, ``wal_migrations``, ``recoveries``, ``quarantines``,
/// ``stranded_merged``.
#[pyfunction]
pub fn open_counters(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
) -> PyResult<OpenCounters> {
    let c = crate::db::connection::open_counters(&path)?;
    Ok(OpenCounters {
        connections_opened: c.connections_opened,
        schema_inits: c.schema_inits,
        wal_migrations: c.wal_migrations,
        recoveries: c.recoveries,
        quarantines: c.quarantines,
        stranded_merged: c.stranded_merged,
    })
}

/// Zeroes a database's I/O and group-commit counters.
#[pyfunction]
pub fn reset_io_stats(#[pyo3(from_py_with = convert::arg::path)] path: PathBuf) -> PyResult<()> {
    let key = key(path)?;
    vfs::reset_io_stats(&key);
    crate::db::connection::reset_group_stats(&key)?;
    Ok(())
}

/// Arms a fault: the ``nth`` call of ``method_name`` fails with ``code``.
#[pyfunction]
#[pyo3(signature = (path, method_name, nth, code, persistent=false, file_role=None))]
pub fn inject_fault(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
    method_name: &str,
    nth: u64,
    code: i32,
    persistent: bool,
    file_role: Option<&str>,
) -> PyResult<()> {
    if nth == 0 {
        return Err(PyValueError::new_err("nth: must be >= 1"));
    }
    let fault = Fault {
        method: method(method_name)?,
        nth,
        code,
        persistent,
        role: file_role.map(role).transpose()?,
    };
    vfs::inject_fault(&key(path)?, fault);
    Ok(())
}

/// One link of a fault chain as Python passes it:
/// `(method, nth, code, persistent, file_role)`.
type FaultTuple = (String, u64, i32, bool, Option<String>);

/// Arms a chain of ``(method, nth, code, persistent, file_role)`` faults:
/// each next one counts from the call after its predecessor fired.
#[pyfunction]
pub fn inject_faults(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
    faults: Vec<FaultTuple>,
) -> PyResult<()> {
    if faults.is_empty() {
        return Err(PyValueError::new_err(
            "faults: must name at least one fault",
        ));
    }
    let last = faults.len() - 1;
    let mut chain = Vec::with_capacity(faults.len());
    for (i, (method_name, nth, code, persistent, file_role)) in faults.into_iter().enumerate() {
        if nth == 0 {
            return Err(PyValueError::new_err(format!(
                "faults[{i}].nth: must be >= 1"
            )));
        }
        if persistent && i != last {
            return Err(PyValueError::new_err(format!(
                "faults[{i}].persistent: only the last fault of a chain may be persistent"
            )));
        }
        chain.push(Fault {
            method: method(&method_name)?,
            nth,
            code,
            persistent,
            role: file_role.as_deref().map(role).transpose()?,
        });
    }
    vfs::inject_faults(&key(path)?, chain);
    Ok(())
}

/// Disarms the fault; returns how many calls it failed.
#[pyfunction]
pub fn clear_fault(#[pyo3(from_py_with = convert::arg::path)] path: PathBuf) -> PyResult<u64> {
    Ok(vfs::clear_fault(&key(path)?))
}

/// How many calls the current (or last cleared) fault failed.
#[pyfunction]
pub fn faults_fired(#[pyo3(from_py_with = convert::arg::path)] path: PathBuf) -> PyResult<u64> {
    Ok(vfs::faults_fired(&key(path)?))
}

/// Calls of a VFS method since the fault was armed or counters reset.
#[pyfunction]
pub fn method_calls(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
    method_name: &str,
) -> PyResult<u64> {
    Ok(vfs::method_calls(&key(path)?, method(method_name)?))
}

/// How long a tripped circuit breaker stays open (all paths).
/// ``TypeError`` for a non-number; ``ValueError`` unless 0 <= ``seconds`` <=
/// 86400.
#[pyfunction]
pub fn set_circuit_cooldown(seconds: &Bound<'_, PyAny>) -> PyResult<()> {
    let cooldown = convert::seconds(seconds, "seconds", crate::db::breaker::MAX_COOLDOWN)?;
    Ok(crate::db::breaker::set_cooldown(cooldown)?)
}

/// The time budget of ``memtree recover --adopt``'s checks of a file (its
/// schema and ``quick_check``) in this process; returns the previous one
/// (default 10 s). ``TypeError`` for a non-number; ``ValueError`` unless
/// 0 <= ``seconds`` <= 3600.
#[pyfunction]
pub fn set_adopt_check_budget(seconds: &Bound<'_, PyAny>) -> PyResult<f64> {
    use crate::recovery::salvage;
    let budget = convert::seconds(seconds, "seconds", salvage::MAX_FOREIGN_CHECK_BUDGET)?;
    Ok(salvage::set_foreign_check_budget(budget)?.as_secs_f64())
}

/// How long every busy wait of this process lasts before it fails with
/// ``SQLITE_BUSY`` (``memtree.BusyError``); returns the previous budget
/// (default 5 s). ``TypeError`` for a non-number; ``ValueError`` unless
/// 0 <= ``seconds`` <= 60.
#[pyfunction]
pub fn set_busy_timeout(seconds: &Bound<'_, PyAny>) -> PyResult<f64> {
    use crate::db::busy;
    let budget = convert::seconds(seconds, "seconds", busy::MAX_BUSY_TIMEOUT)?;
    Ok(busy::set_timeout(budget)?.as_secs_f64())
}

/// Arms a fault in the copy aside (quarantine, restore) of the database at ``path``
/// (plain file I/O, which the VFS faults never reach): its ``nth``
/// operation from now (create, each 64 KiB write, fsync, folder sync)
/// fails with the OS error ``errno``, and every one after it with
/// ``persistent``. Replaces a fault armed for that database.
#[pyfunction]
#[pyo3(signature = (path, nth, persistent = false, errno = 5))]
pub fn inject_copy_fault(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
    nth: u64,
    persistent: bool,
    errno: i32,
) -> PyResult<()> {
    if nth == 0 {
        return Err(PyValueError::new_err("nth: must be at least 1"));
    }
    crate::recovery::copy_faults::arm(&key(path)?, nth, persistent, errno);
    Ok(())
}

/// Disarms the copy-aside fault of the database at ``path``; returns
/// ``(operations seen, operations failed)`` since it was armed.
#[pyfunction]
pub fn clear_copy_fault(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
) -> PyResult<(u64, u64)> {
    Ok(crate::recovery::copy_faults::disarm(&key(path)?))
}

/// The most write calls one group commit may carry (all databases);
/// returns the previous limit. ``TypeError`` for a non-int; ``ValueError``
/// unless 1 <= ``calls`` <= 64.
#[pyfunction]
pub fn set_group_commit_limit(calls: &Bound<'_, PyAny>) -> PyResult<usize> {
    let max = crate::db::group_commit::MAX_GROUP;
    if calls.is_instance_of::<pyo3::types::PyBool>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "calls: expected int, got bool",
        ));
    }
    let calls = convert::int64(calls, "calls")?;
    match usize::try_from(calls) {
        Ok(n) if (1..=max).contains(&n) => Ok(crate::db::group_commit::set_group_limit(n)),
        _ => Err(PyValueError::new_err(format!(
            "calls: must be 1 to {max}, got {calls}"
        ))),
    }
}

/// ``(consecutive_failures, is_open)`` of a path's circuit breaker.
#[pyfunction]
pub fn circuit_status(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
) -> PyResult<(u32, bool)> {
    Ok(crate::db::breaker::status(&key(path)?))
}

/// Arms a power-loss simulation for a database (see ``memtree.testing``).
#[pyfunction]
#[pyo3(signature = (path, seed, at_sync=0, at_write=None, exit_code=None, sector_size=4096))]
pub fn arm_crash(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
    seed: u64,
    at_sync: u64,
    at_write: Option<u64>,
    exit_code: Option<i32>,
    sector_size: u64,
) -> PyResult<()> {
    let plan = vfs::CrashPlan {
        at_sync,
        at_write,
        seed,
        sector_size,
        on_crash: exit_code.map_or(vfs::CrashAction::Freeze, vfs::CrashAction::Exit),
    };
    vfs::arm_crash(&key(path)?, plan);
    Ok(())
}

/// ``("disarmed" | "armed" | "crashed", syncs seen since arming)``.
#[pyfunction]
pub fn crash_state(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
) -> PyResult<(&'static str, u64)> {
    let state = vfs::crash_state(&key(path)?);
    let name = match state {
        vfs::CrashState::Disarmed => "disarmed",
        vfs::CrashState::Armed { .. } => "armed",
        vfs::CrashState::Crashed { .. } => "crashed",
    };
    Ok((name, state.syncs_seen()))
}

/// What a power-loss simulation did; a dict in Python
/// (`memtree.testing.CrashReport`).
#[derive(IntoPyObject)]
pub struct CrashReport {
    /// 1 if power was lost, else 0 (an int, as `memtree.testing` documents).
    crashed: u64,
    syncs_seen: u64,
    writes_seen: u64,
    writes_flushed: u64,
    truncates_flushed: u64,
    writes_kept: u64,
    writes_dropped: u64,
    writes_garbled: u64,
    truncates_kept: u64,
    truncates_dropped: u64,
    deletes: u64,
    io_errors: u64,
}

/// Disarms the simulation; its report, or None if never armed.
#[pyfunction]
pub fn disarm_crash(
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
) -> PyResult<Option<CrashReport>> {
    Ok(vfs::disarm_crash(&key(path)?).map(|r| CrashReport {
        crashed: u64::from(r.crashed),
        syncs_seen: r.syncs_seen,
        writes_seen: r.writes_seen,
        writes_flushed: r.writes_flushed,
        truncates_flushed: r.truncates_flushed,
        writes_kept: r.writes_kept,
        writes_dropped: r.writes_dropped,
        writes_garbled: r.writes_garbled,
        truncates_kept: r.truncates_kept,
        truncates_dropped: r.truncates_dropped,
        deletes: r.deletes,
        io_errors: r.io_errors,
    }))
}

/// ``(label, exception class)`` for every class the core's classifier can
/// return (``"transient_io"``, ``"busy"``, …).
#[pyfunction]
fn error_classes(py: Python<'_>) -> Vec<(&'static str, Bound<'_, PyType>)> {
    crate::python::errors::classes(py)
}

/// ``(variant name, exception)`` for a sample of every core error variant,
/// converted as a failing call raises it.
#[pyfunction]
fn error_variants(py: Python<'_>) -> Vec<(&'static str, Py<PyBaseException>)> {
    crate::python::errors::variants(py)
}

/// How many times this process read stored embeddings into memory for
/// search (each table snapshot counts once).
#[pyfunction]
fn vector_cache_reads() -> u64 {
    crate::search::cache::snapshot_reads()
}

/// Aborts this process (as ``kill -9`` would stop it) at step ``step`` of
/// the next owner erasure, counted from 1: the end of its transaction, its
/// commit, before and after each file's unlink, each batch's end and
/// commit. 0 disarms.
#[pyfunction]
fn abort_erasure_at(step: u64) {
    crate::ops::erase::abort_at_step(step);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(abort_erasure_at, m)?)?;
    m.add_function(wrap_pyfunction!(io_stats, m)?)?;
    m.add_function(wrap_pyfunction!(reset_io_stats, m)?)?;
    m.add_function(wrap_pyfunction!(inject_fault, m)?)?;
    m.add_function(wrap_pyfunction!(inject_faults, m)?)?;
    m.add_function(wrap_pyfunction!(clear_fault, m)?)?;
    m.add_function(wrap_pyfunction!(faults_fired, m)?)?;
    m.add_function(wrap_pyfunction!(method_calls, m)?)?;
    m.add_function(wrap_pyfunction!(open_counters, m)?)?;
    m.add_function(wrap_pyfunction!(set_circuit_cooldown, m)?)?;
    m.add_function(wrap_pyfunction!(circuit_status, m)?)?;
    m.add_function(wrap_pyfunction!(set_group_commit_limit, m)?)?;
    m.add_function(wrap_pyfunction!(set_adopt_check_budget, m)?)?;
    m.add_function(wrap_pyfunction!(set_busy_timeout, m)?)?;
    m.add_function(wrap_pyfunction!(inject_copy_fault, m)?)?;
    m.add_function(wrap_pyfunction!(clear_copy_fault, m)?)?;
    m.add_function(wrap_pyfunction!(arm_crash, m)?)?;
    m.add_function(wrap_pyfunction!(crash_state, m)?)?;
    m.add_function(wrap_pyfunction!(disarm_crash, m)?)?;
    m.add_function(wrap_pyfunction!(error_classes, m)?)?;
    m.add_function(wrap_pyfunction!(error_variants, m)?)?;
    m.add_function(wrap_pyfunction!(vector_cache_reads, m)?)?;
    Ok(())
}
