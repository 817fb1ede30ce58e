"""memtree: a crash-safe SQLite store for an application's memory tree.

The store runs on SQLite's TRUNCATE rollback journal with ``synchronous=FULL``
and migrates databases a prior release left in WAL mode on first open. Every
database operation runs in the Rust core with the GIL released; every SQLite
failure arrives as a :class:`memtree.errors.MemtreeError` subclass.
"""

# `import memtree` loads only the native module: the store, chunks and jobs
# live there. Everything else (the errors and their result-code enum, the
# small value types, the worker with logging, threading and dataclasses) is
# imported by the first access to one of its names (PEP 562 `__getattr__`),
# which keeps the import near what `import sqlite3` costs. Type checkers read
# the imports under TYPE_CHECKING (mypy treats the bare name as
# `typing.TYPE_CHECKING`; importing `typing` would cost more than the rest).

import sys as _sys

from memtree._native import (
    Chunk,
    CompactReport,
    CopyReport,
    Embeddings,
    ErasureReport,
    FileSweep,
    Hit,
    Job,
    JobBatch,
    JobPayload,
    Jobs,
    Scheduler,
    Scores,
    Store,
    Summary,
    Tree,
    TreeBuffer,
    Trees,
    __version__,
    restore,
    schema_version,
    sqlite_version,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from memtree import errors
    from memtree import worker as worker
    from memtree._codes import ResultCode
    from memtree._logging import LOGGERS as _LOGGERS  # noqa: F401 (lazy, private)
    from memtree._types import (
        Entity,
        EntityHit,
        Hotness,
        JobKind,
        JobStatus,
        RawRef,
        Score,
        SourceInfo,
        SourceKind,
        TreeKind,
        TreeStatus,
    )
    from memtree.async_worker import AsyncWorker
    from memtree.errors import (
        BusyError,
        CircuitOpenError,
        ConstraintError,
        CorruptDatabaseError,
        DiskFullError,
        ForkedStoreError,
        JobCancelledError,
        JournalModeWarning,
        LeaseLostError,
        MemtreeError,
        NotMemtreeDatabaseError,
        PathRefusedError,
        PermanentError,
        SchemaVersionError,
        StaleBufferError,
        StoreClosedError,
        TransientIOError,
    )
    from memtree.worker import Defer, LoopBackoff, RetryPolicy, Worker

__all__ = [
    "AsyncWorker",
    "BusyError",
    "Chunk",
    "CircuitOpenError",
    "CompactReport",
    "ConstraintError",
    "CopyReport",
    "CorruptDatabaseError",
    "Defer",
    "DiskFullError",
    "Embeddings",
    "Entity",
    "EntityHit",
    "ErasureReport",
    "FileSweep",
    "ForkedStoreError",
    "Hit",
    "Hotness",
    "Job",
    "JobBatch",
    "JobCancelledError",
    "JobKind",
    "JobPayload",
    "JobStatus",
    "Jobs",
    "JournalModeWarning",
    "LeaseLostError",
    "LoopBackoff",
    "MemtreeError",
    "NotMemtreeDatabaseError",
    "PathRefusedError",
    "PermanentError",
    "RawRef",
    "ResultCode",
    "RetryPolicy",
    "Scheduler",
    "SchemaVersionError",
    "Score",
    "Scores",
    "SourceInfo",
    "SourceKind",
    "StaleBufferError",
    "Store",
    "StoreClosedError",
    "Summary",
    "TransientIOError",
    "Tree",
    "TreeBuffer",
    "TreeKind",
    "TreeStatus",
    "Trees",
    "Worker",
    "__version__",
    "errors",
    "restore",
    "schema_version",
    "sqlite_version",
]

_ERRORS = "memtree.errors"
_TYPES = "memtree._types"
_WORKER = "memtree.worker"

#: Each lazily loaded name -> (module, attribute; None for the module itself).
_LAZY: dict[str, tuple[str, "str | None"]] = {
    "errors": (_ERRORS, None),
    "worker": (_WORKER, None),
    "ResultCode": ("memtree._codes", "ResultCode"),
    "_LOGGERS": ("memtree._logging", "LOGGERS"),
    **{
        name: (_TYPES, name)
        for name in (
            "Entity",
            "EntityHit",
            "Hotness",
            "JobKind",
            "JobStatus",
            "RawRef",
            "Score",
            "SourceInfo",
            "SourceKind",
            "TreeKind",
            "TreeStatus",
        )
    },
    **{name: (_WORKER, name) for name in ("Defer", "LoopBackoff", "RetryPolicy", "Worker")},
    "AsyncWorker": ("memtree.async_worker", "AsyncWorker"),
    **{
        name: (_ERRORS, name)
        for name in (
            "BusyError",
            "CircuitOpenError",
            "ConstraintError",
            "CorruptDatabaseError",
            "DiskFullError",
            "ForkedStoreError",
            "JournalModeWarning",
            "JobCancelledError",
            "LeaseLostError",
            "MemtreeError",
            "NotMemtreeDatabaseError",
            "PathRefusedError",
            "PermanentError",
            "SchemaVersionError",
            "StaleBufferError",
            "StoreClosedError",
            "TransientIOError",
        )
    },
}


if not TYPE_CHECKING:
    # Hidden from type checkers, which would otherwise accept any attribute
    # of the package (typed as this function's result) instead of the names
    # imported above.
    def __getattr__(name: str) -> object:
        return _load(name)


def _load(name: str) -> object:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        # An AttributeError (not an import) is also what lets
        # `from memtree import doctor` go on to import the submodule.
        raise AttributeError(f"module 'memtree' has no attribute {name!r}") from None
    __import__(module_name)
    module = _sys.modules[module_name]
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if "logging" in _sys.modules:
    # Free when the application has loaded logging already (and configured
    # it, perhaps with a "%(db_path)s" format): the filters go on now.
    __import__("memtree._logging")
