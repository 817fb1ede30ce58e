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
    "clear_fault",
    "fault",
    "faults_fired",
    "inject_fault",
    "io_stats",
    "method_calls",
    "open_counters",
    "reset_io_stats",
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


def open_counters(path: PathLike) -> tuple[int, int, int]:
    """``(connections_opened, schema_inits, wal_migrations)`` in this process."""
    return _native.open_counters(path)


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
