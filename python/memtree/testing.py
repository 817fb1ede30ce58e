"""Test support: the VFS's exact I/O accounting and SQLite-level fault injection.

Every memtree connection runs through memtree's VFS shim, so tests can count
the syncs a commit costs and make the Nth call of a VFS method fail with a
chosen result code, exactly where SQLite would see a real fault.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, Union

from memtree import _native

__all__ = [
    "VfsMethod",
    "arm_crash",
    "circuit_status",
    "clear_fault",
    "crash_state",
    "disarm_crash",
    "fault",
    "faults_fired",
    "inject_fault",
    "io_stats",
    "method_calls",
    "open_counters",
    "reset_io_stats",
    "set_circuit_cooldown",
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


def io_stats(path: PathLike) -> dict[str, int]:
    """Counters of the database at ``path``: opens, reads, writes,
    bytes_written, truncates, syncs by file (syncs_db, syncs_journal,
    syncs_wal, syncs_dir), sync_calls and syncs_total."""
    return _native.io_stats(path)


def reset_io_stats(path: PathLike) -> None:
    """Sets the counters of ``path`` to zero."""
    _native.reset_io_stats(path)


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
    _native.inject_fault(path, method, nth, int(code), persistent, file_role)


def clear_fault(path: PathLike) -> int:
    """Disarms the fault of ``path``; returns how many calls it failed."""
    return _native.clear_fault(path)


def faults_fired(path: PathLike) -> int:
    """How many calls the current (or last cleared) fault failed."""
    return _native.faults_fired(path)


def method_calls(path: PathLike, method: VfsMethod) -> int:
    """Calls of ``method`` on ``path``'s files since the fault was armed."""
    return _native.method_calls(path, method)


def open_counters(path: PathLike) -> dict[str, int]:
    """Per-path counters in this process: ``connections_opened``,
    ``schema_inits``, ``wal_migrations``, ``recoveries``, ``quarantines``."""
    return _native.open_counters(path)


def set_circuit_cooldown(seconds: float) -> None:
    """How long a tripped circuit breaker stays open (default 30 s; at most a
    day). ``TypeError`` for a non-number, ``ValueError`` for a negative,
    non-finite or too long cool-down (nothing changes then)."""
    _native.set_circuit_cooldown(seconds)


def circuit_status(path: PathLike) -> tuple[int, bool]:
    """``(consecutive_failures, is_open)`` of the circuit breaker of ``path``."""
    return _native.circuit_status(path)


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
    _native.arm_crash(path, seed, at_sync, at_write, exit_code)


def crash_state(path: PathLike) -> tuple[str, int]:
    """``("disarmed" | "armed" | "crashed", syncs seen since arming)``."""
    return _native.crash_state(path)


def disarm_crash(path: PathLike) -> dict[str, int] | None:
    """Ends the simulation and returns its report (None if never armed)."""
    return _native.disarm_crash(path)
