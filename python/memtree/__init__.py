"""memtree: a crash-safe SQLite store for an application's memory tree.

The store runs on SQLite's TRUNCATE rollback journal with ``synchronous=FULL``
and migrates databases a prior release left in WAL mode on first open. Every
database operation runs in the Rust core with the GIL released; every SQLite
failure arrives as a :class:`memtree.errors.MemtreeError` subclass.
"""

from __future__ import annotations

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
from memtree._types import SourceKind
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
    "Jobs",
    "JournalModeWarning",
    "LeaseLostError",
    "LoopBackoff",
    "MemtreeError",
    "NotMemtreeDatabaseError",
    "PermanentError",
    "ResultCode",
    "SchemaVersionError",
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
