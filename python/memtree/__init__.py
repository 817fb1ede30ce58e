"""memtree: a crash-safe SQLite store for an application's memory tree.

The store runs on SQLite's TRUNCATE rollback journal with ``synchronous=FULL``
and migrates databases a prior release left in WAL mode on first open. Every
database operation runs in the Rust core with the GIL released; every SQLite
failure arrives as a :class:`memtree.errors.MemtreeError` subclass.
"""

from __future__ import annotations

import logging

from memtree import errors
from memtree._codes import ResultCode
from memtree._native import (
    Chunk,
    Job,
    JobBatch,
    Jobs,
    Store,
    __version__,
    schema_version,
    sqlite_version,
)
from memtree._types import JobStatus, RawRef, SourceInfo, SourceKind
from memtree.errors import (
    BusyError,
    CircuitOpenError,
    ConstraintError,
    CorruptDatabaseError,
    DiskFullError,
    ForkedStoreError,
    JournalModeWarning,
    LeaseLostError,
    MemtreeError,
    NotMemtreeDatabaseError,
    PermanentError,
    SchemaVersionError,
    StoreClosedError,
    TransientIOError,
)
from memtree.worker import Defer, LoopBackoff, Worker

#: Every logger memtree emits records on: the Rust core's (see ``events.rs``)
#: and the worker's.
_LOGGERS = ("memtree.journal", "memtree.recovery", "memtree.breaker", "memtree.worker")


def _default_db_path(record: logging.LogRecord) -> bool:
    # A format such as "%(db_path)s" must work for every memtree record; the
    # worker's records name no single database, so they carry None.
    if not hasattr(record, "db_path"):
        record.db_path = None
    return True


for _name in _LOGGERS:
    _logger = logging.getLogger(_name)
    if _default_db_path not in _logger.filters:
        _logger.addFilter(_default_db_path)

__all__ = [
    "BusyError",
    "Chunk",
    "CircuitOpenError",
    "ConstraintError",
    "CorruptDatabaseError",
    "Defer",
    "DiskFullError",
    "ForkedStoreError",
    "Job",
    "JobBatch",
    "JobStatus",
    "Jobs",
    "JournalModeWarning",
    "LeaseLostError",
    "LoopBackoff",
    "MemtreeError",
    "NotMemtreeDatabaseError",
    "PermanentError",
    "RawRef",
    "ResultCode",
    "SchemaVersionError",
    "SourceInfo",
    "SourceKind",
    "Store",
    "StoreClosedError",
    "TransientIOError",
    "Worker",
    "__version__",
    "errors",
    "schema_version",
    "sqlite_version",
]
