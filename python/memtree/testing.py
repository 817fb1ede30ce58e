"""Test support: the VFS's exact I/O accounting and SQLite-level fault injection.

Every memtree connection runs through memtree's VFS shim, so tests can count
the syncs a commit costs and make the Nth call of a VFS method fail with a
chosen result code, exactly where SQLite would see a real fault.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypedDict, Union

from memtree._native import testing as _hooks

__all__ = [
    "CrashReport",
    "Fault",
    "IoStats",
    "OpenCounters",
    "VfsMethod",
    "abort_erasure_at",
    "arm_crash",
    "busy_timeout",
    "circuit_status",
    "clear_copy_fault",
    "clear_fault",
    "crash_state",
    "disarm_crash",
    "fault",
    "fault_chain",
    "faults_fired",
    "inject_copy_fault",
    "inject_fault",
    "inject_faults",
    "io_stats",
    "method_calls",
    "open_counters",
    "reset_io_stats",
    "set_adopt_check_budget",
    "set_busy_timeout",
    "set_circuit_cooldown",
    "set_group_commit_limit",
    "vector_cache_reads",
]

PathLike = Union[str, "os.PathLike[str]"]
VfsMethod = Literal[
    "xOpen",
    "xDelete",
    "xAccess",
    "xClose",
    "xRead",
    "xWrite",
    "xTruncate",
    "xSync",
    "xFileSize",
    "xLock",
    "xUnlock",
    "xCheckReservedLock",
    "xShmMap",
    "xShmLock",
    "xShmUnmap",
]
FileRole = Literal["main_db", "journal", "wal", "super_journal", "temp"]


class IoStats(TypedDict):
    """What :func:`io_stats` returns: the VFS's counters of one database."""

    opens: int
    reads: int
    bytes_read: int
    writes: int
    bytes_written: int
    truncates: int
    syncs_db: int
    syncs_journal: int
    syncs_wal: int
    #: Directory syncs, counted from a new journal's first sync (see the VFS).
    syncs_dir: int
    syncs_other: int
    deletes: int
    shm_maps: int
    #: ``xSync`` calls: every sync but the directory's.
    sync_calls: int
    #: Every sync, the directory's included.
    syncs_total: int
    #: Group commits (while the store is open in this process; see the
    #: README's "Concurrent writers"): commits that made write calls durable,
    #: the calls they carried, the most one commit carried, and the syncs
    #: those commits cost (from ``BEGIN`` to the end of ``COMMIT``).
    commits: int
    committed_calls: int
    largest_group: int
    #: Syncs per write call are ``commit_syncs / committed_calls``: 5 for
    #: calls that commit one by one, less when concurrent calls share commits.
    commit_syncs: int
    #: Group transactions whose commit (or a call's I/O error) failed: every
    #: call they carried raised.
    failed_groups: int
    #: Calls that failed or refused inside a group and rolled back alone.
    rolled_back_calls: int


class OpenCounters(TypedDict):
    """What :func:`open_counters` returns: per-path counters in this process."""

    connections_opened: int
    schema_inits: int
    wal_migrations: int
    recoveries: int
    quarantines: int
    stranded_merged: int


class CrashReport(TypedDict):
    """What :func:`disarm_crash` returns after a power-loss simulation."""

    #: 1 if power was lost, else 0.
    crashed: int
    syncs_seen: int
    writes_seen: int
    writes_flushed: int
    truncates_flushed: int
    writes_kept: int
    writes_dropped: int
    writes_garbled: int
    truncates_kept: int
    truncates_dropped: int
    deletes: int
    #: Pending operations that could not reach the real file; 0 in a sound run.
    io_errors: int


def io_stats(path: PathLike) -> IoStats:
    """Counters of the database at ``path``: opens, reads, writes,
    bytes_written, truncates, syncs by file (syncs_db, syncs_journal,
    syncs_wal, syncs_dir), sync_calls and syncs_total; and what its group
    commits did: commits, committed_calls, largest_group, commit_syncs,
    failed_groups, rolled_back_calls."""
    return _hooks.io_stats(path)


def reset_io_stats(path: PathLike) -> None:
    """Sets the counters of ``path`` (group commits' included) to zero."""
    _hooks.reset_io_stats(path)


def inject_fault(
    path: PathLike,
    method: VfsMethod,
    nth: int,
    code: int,
    *,
    persistent: bool = False,
    file_role: FileRole | None = None,
) -> None:
    """Makes the ``nth`` call of ``method`` on ``path``'s files (optionally only
    files of ``file_role``) return ``code``; with ``persistent`` every later
    call fails too, until :func:`clear_fault`."""
    _hooks.inject_fault(path, method, nth, int(code), persistent, file_role)


@dataclass(frozen=True)
class Fault:
    """One link of a fault chain (see :func:`inject_faults`): the ``nth`` call
    of ``method`` (optionally only on files of ``file_role``) returns
    ``code``; with ``persistent``, every later call too."""

    method: VfsMethod
    nth: int
    code: int
    persistent: bool = False
    file_role: FileRole | None = None


def inject_faults(path: PathLike, *faults: Fault) -> None:
    """Arms faults in sequence on ``path``: the first now, each next one when
    its predecessor fires, counting its ``nth`` from the call after that. For
    example an open that fails once, then call 3 of the recovery it triggers::

        inject_faults(db, Fault("xOpen", 1, ResultCode.CANTOPEN),
                      Fault("xWrite", 3, ResultCode.FULL))

    Only the last fault may be persistent. :func:`faults_fired` sums the
    whole chain; :func:`clear_fault` disarms all of it."""
    _hooks.inject_faults(
        path, [(f.method, f.nth, int(f.code), f.persistent, f.file_role) for f in faults]
    )


@contextmanager
def fault_chain(path: PathLike, *faults: Fault) -> Iterator[None]:
    """Context manager form of :func:`inject_faults`; always disarms on exit."""
    inject_faults(path, *faults)
    try:
        yield
    finally:
        clear_fault(path)


def clear_fault(path: PathLike) -> int:
    """Disarms the fault of ``path``; returns how many calls it failed."""
    return _hooks.clear_fault(path)


def faults_fired(path: PathLike) -> int:
    """How many calls the current (or last cleared) fault failed."""
    return _hooks.faults_fired(path)


def method_calls(path: PathLike, method: VfsMethod) -> int:
    """Calls of ``method`` on ``path``'s files since the fault was armed."""
    return _hooks.method_calls(path, method)


def open_counters(path: PathLike) -> OpenCounters:
    """Per-path counters in this process: ``connections_opened``,
    ``schema_inits``, ``wal_migrations``, ``recoveries``, ``quarantines``,
    ``stranded_merged``."""
    return _hooks.open_counters(path)


def set_circuit_cooldown(seconds: float) -> None:
    """How long a tripped circuit breaker stays open (default 30 s; at most a
    day). ``TypeError`` for a non-number, ``ValueError`` for a negative,
    non-finite or too long cool-down (nothing changes then)."""
    _hooks.set_circuit_cooldown(seconds)


def inject_copy_fault(
    path: PathLike, nth: int, *, persistent: bool = False, errno: int = 5
) -> None:
    """Fails the ``nth`` operation of the next copy aside a quarantine of the
    database at ``path`` makes (from now: creating the copy, each 64 KiB
    write, its fsync, the folder's sync), with the OS error ``errno`` (EIO
    by default; 28 is ENOSPC), and with ``persistent`` every one after it.
    The copy is plain file I/O, which :func:`inject_fault` (the VFS) never
    reaches. ``ValueError`` for ``nth`` below 1."""
    _hooks.inject_copy_fault(path, nth, persistent, errno)


def clear_copy_fault(path: PathLike) -> tuple[int, int]:
    """Disarms the copy-aside fault of ``path``; returns ``(operations seen,
    operations failed)`` since it was armed: a loop stops at the first N
    whose fault did not fire."""
    return _hooks.clear_copy_fault(path)


def set_adopt_check_budget(seconds: float) -> float:
    """The time budget of ``memtree recover --adopt``'s checks of a file (its
    schema and ``quick_check``, default 10 s) for this process; returns the
    previous one. Past it the check is interrupted and the file refused
    (``SQLITE_INTERRUPT``), so a test can prove the bound with a small budget.
    ``TypeError`` for a non-number, ``ValueError`` for a negative, non-finite
    or longer than an hour budget (nothing changes then)."""
    return _hooks.set_adopt_check_budget(seconds)


def set_busy_timeout(seconds: float) -> float:
    """How long every busy wait of this process (each statement that meets a
    lock another connection holds) lasts before it fails with
    :class:`memtree.BusyError`; returns the previous budget (default 5 s).
    A lower budget also caps recovery's fixed waits (the 1 s wait for a
    file's owner, the quarantine's 5 s rebuild wait). A test proves a wait
    and its typed failure with a small budget rather than by waiting out
    the real one; :func:`busy_timeout` restores it.
    ``TypeError`` for a non-number, ``ValueError`` for a negative, non-finite
    or longer than a minute budget (nothing changes then)."""
    return _hooks.set_busy_timeout(seconds)


@contextmanager
def busy_timeout(seconds: float) -> Iterator[float]:
    """Context manager form of :func:`set_busy_timeout`: the budget is
    ``seconds`` inside the block and the previous one again after it. Yields
    the previous budget (5.0 unless something else set one)."""
    previous = set_busy_timeout(seconds)
    try:
        yield previous
    finally:
        set_busy_timeout(previous)


def set_group_commit_limit(calls: int) -> int:
    """The most write calls one group commit may carry, for every database in
    this process (default 64); returns the previous limit. ``1`` makes every
    call commit alone, as before group commit, so a benchmark can measure
    both in one run. ``TypeError`` for a non-int, ``ValueError`` unless
    1 <= ``calls`` <= 64."""
    return _hooks.set_group_commit_limit(calls)


def vector_cache_reads() -> int:
    """How many times this process read stored embeddings into memory for
    search: unchanged by a search that reused the in-memory copy, one more
    (per table) after any commit to the file, from any process."""
    return _hooks.vector_cache_reads()


def abort_erasure_at(step: int) -> None:
    """Aborts this process (as ``kill -9`` would stop it) at step ``step`` of
    the next :meth:`memtree.Store.erase_owner` (or open-time sweep), counted
    from 1 across the erasure's path: the end of its transaction, its
    commit, before and after each file's unlink, each batch's end and
    commit. 0 disarms. For crash tests run in a child process."""
    _hooks.abort_erasure_at(step)


def circuit_status(path: PathLike) -> tuple[int, bool]:
    """``(consecutive_failures, is_open)`` of the circuit breaker of ``path``."""
    return _hooks.circuit_status(path)


@contextmanager
def fault(
    path: PathLike,
    method: VfsMethod,
    nth: int,
    code: int,
    *,
    persistent: bool = False,
    file_role: FileRole | None = None,
) -> Iterator[None]:
    """Context manager form of :func:`inject_fault`; always disarms on exit."""
    inject_fault(path, method, nth, code, persistent=persistent, file_role=file_role)
    try:
        yield
    finally:
        clear_fault(path)


def arm_crash(
    path: PathLike,
    *,
    seed: int,
    at_sync: int = 0,
    at_write: int | None = None,
    exit_code: int | None = None,
) -> None:
    """Simulates power loss on ``path``'s database, journal and WAL files.

    From now on their writes stay pending (reads see them) until their file is
    synced. At the ``at_sync``-th sync (or ``at_write``-th write) power is
    lost: each pending write is kept, dropped or torn sector by sector, at
    random from ``seed``. Then the process exits with ``exit_code`` at once,
    or, if it is None, the files freeze (every later write fails) so an
    in-process test can close the store and reopen what the disk holds.
    """
    _hooks.arm_crash(path, seed, at_sync, at_write, exit_code)


def crash_state(path: PathLike) -> tuple[str, int]:
    """``("disarmed" | "armed" | "crashed", syncs seen since arming)``."""
    return _hooks.crash_state(path)


def disarm_crash(path: PathLike) -> CrashReport | None:
    """Ends the simulation and returns its report (None if never armed)."""
    return _hooks.disarm_crash(path)
