"""Test hooks of the native core (``memtree._native.testing``), kept out of
the product namespace. ``memtree.testing`` is the typed face tests use."""

import os

from memtree.errors import MemtreeError
from memtree.testing import CrashReport, IoStats, OpenCounters

__all__ = [
    "abort_erasure_at",
    "arm_crash",
    "circuit_status",
    "clear_copy_fault",
    "clear_fault",
    "crash_state",
    "disarm_crash",
    "error_classes",
    "error_variants",
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

_PathLike = str | os.PathLike[str]

def error_classes() -> list[tuple[str, type[MemtreeError]]]:
    """``(label, exception class)`` for every class the core's classifier can
    return (``"transient_io"``, ``"busy"``, …)."""

def error_variants() -> list[tuple[str, BaseException]]:
    """``(variant name, exception)`` for a sample of every core error variant,
    converted as a failing call raises it."""

def open_counters(path: _PathLike) -> OpenCounters:
    """Per-path counters in this process: ``connections_opened``,
    ``schema_inits``, ``wal_migrations``, ``recoveries``, ``quarantines``,
    ``stranded_merged``."""

def set_circuit_cooldown(seconds: float) -> None:
    """How long a tripped circuit breaker stays open (all paths).
    ``TypeError`` for a non-number; ``ValueError`` unless 0 <= ``seconds`` <=
    86400."""

def inject_copy_fault(path: _PathLike, nth: int, persistent: bool = False, errno: int = 5) -> None:
    """Arms a fault in the copy aside (quarantine, restore) of the database at ``path``
    (plain file I/O, which the VFS faults never reach): its ``nth``
    operation from now (create, each 64 KiB write, fsync, folder sync)
    fails with the OS error ``errno``, and every one after it with
    ``persistent``. Replaces a fault armed for that database."""

def clear_copy_fault(path: _PathLike) -> tuple[int, int]:
    """Disarms the copy-aside fault of the database at ``path``; returns
    ``(operations seen, operations failed)`` since it was armed."""

def set_adopt_check_budget(seconds: float) -> float:
    """The time budget of ``memtree recover --adopt``'s checks of a file (its
    schema and ``quick_check``) in this process; returns the previous one
    (default 10 s). ``TypeError`` for a non-number; ``ValueError`` unless
    0 <= ``seconds`` <= 3600."""

def set_busy_timeout(seconds: float) -> float:
    """How long every busy wait of this process lasts before it fails with
    ``SQLITE_BUSY`` (``memtree.BusyError``); returns the previous budget
    (default 5 s). ``TypeError`` for a non-number; ``ValueError`` unless
    0 <= ``seconds`` <= 60."""

def set_group_commit_limit(calls: int) -> int:
    """The most write calls one group commit may carry (all databases);
    returns the previous limit. ``TypeError`` for a non-int; ``ValueError``
    unless 1 <= ``calls`` <= 64."""

def circuit_status(path: _PathLike) -> tuple[int, bool]:
    """``(consecutive_failures, is_open)`` of a path's circuit breaker."""

def io_stats(path: _PathLike) -> IoStats:
    """The VFS's I/O counters for a database, with what its group commits
    did (see ``memtree.testing``)."""

def reset_io_stats(path: _PathLike) -> None:
    """Zeroes a database's I/O and group-commit counters."""

def inject_fault(
    path: _PathLike,
    method_name: str,
    nth: int,
    code: int,
    persistent: bool = False,
    file_role: str | None = None,
) -> None:
    """Arms a fault: the ``nth`` call of ``method_name`` fails with ``code``."""

def inject_faults(
    path: _PathLike,
    faults: list[tuple[str, int, int, bool, str | None]],
) -> None:
    """Arms a chain of ``(method, nth, code, persistent, file_role)`` faults:
    each next one counts from the call after its predecessor fired."""

def clear_fault(path: _PathLike) -> int:
    """Disarms the fault; returns how many calls it failed."""

def faults_fired(path: _PathLike) -> int:
    """How many calls the current (or last cleared) fault failed."""

def method_calls(path: _PathLike, method_name: str) -> int:
    """Calls of a VFS method since the fault was armed or counters reset."""

def vector_cache_reads() -> int:
    """How many times this process read stored embeddings into memory for
    search (each table snapshot counts once)."""

def abort_erasure_at(step: int) -> None:
    """Aborts this process (as ``kill -9`` would stop it) at step ``step`` of
    the next owner erasure, counted from 1: the end of its transaction, its
    commit, before and after each file's unlink, each batch's end and
    commit. 0 disarms."""

def arm_crash(
    path: _PathLike,
    seed: int,
    at_sync: int = 0,
    at_write: int | None = None,
    exit_code: int | None = None,
    sector_size: int = 4096,
) -> None:
    """Arms a power-loss simulation for a database (see ``memtree.testing``)."""

def crash_state(path: _PathLike) -> tuple[str, int]:
    """``("disarmed" | "armed" | "crashed", syncs seen since arming)``."""

def disarm_crash(path: _PathLike) -> CrashReport | None:
    """Disarms the simulation; its report, or None if never armed."""
