"""memtree's exceptions: every SQLite failure arrives as one of these.

Each carries the SQLite result code that caused it (``extended_code``, its
primary ``code`` and its ``name``, e.g. ``"SQLITE_IOERR_SHMOPEN"``) and whether
it is worth retrying (``transient``). The classes are defined here and raised
by the native layer, which chooses the class in one Rust match (the core's
classifier for SQLite failures), so :func:`from_code` and the errors the
store raises always agree.
"""

from __future__ import annotations

from typing import ClassVar, Final

from memtree import _native
from memtree._codes import ResultCode

__all__ = [
    "BusyError",
    "CircuitOpenError",
    "ConstraintError",
    "CorruptDatabaseError",
    "DiskFullError",
    "ForkedStoreError",
    "JobCancelledError",
    "JournalModeWarning",
    "LeaseLostError",
    "MemtreeError",
    "NotMemtreeDatabaseError",
    "PathRefusedError",
    "PermanentError",
    "SchemaVersionError",
    "StaleBufferError",
    "StoreClosedError",
    "TransientIOError",
    "from_code",
]


class JournalModeWarning(UserWarning):
    """SQLite kept a journal mode other than TRUNCATE (another connection
    held the file). The store works, but not on the mode memtree promises."""


class MemtreeError(Exception):
    """Base class of memtree's errors.

    Attributes:
        extended_code: SQLite's extended result code (e.g. 4618).
        code: its primary result code (``extended_code & 0xFF``, e.g. 10).
        name: SQLite's name for ``extended_code`` (``"SQLITE_IOERR_SHMOPEN"``).
        transient: True when retrying later may succeed.
        path: the database file involved, when known.
    """

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        extended_code: int = ResultCode.ERROR,
        *,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message: Final = message
        self.extended_code: Final = int(extended_code)
        self.code: Final = self.extended_code & 0xFF
        self.name: Final = _code_name(self.extended_code)
        self.path: Final = path

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.extended_code, self.path))


def _code_name(extended_code: int) -> str:
    """SQLite's name for a code, from the generated table (no native call)."""
    try:
        return ResultCode(extended_code).sqlite_name
    except ValueError:
        return f"SQLITE_UNKNOWN({extended_code})"


def _rebuild(
    cls: type[MemtreeError], message: str, extended_code: int, path: str | None
) -> MemtreeError:
    return cls(message, extended_code, path=path)


class TransientIOError(MemtreeError):
    """A cold-start or file-system failure (CANTOPEN, IOERR_SHMOPEN, …) that
    may succeed on retry."""

    transient = True


class CircuitOpenError(TransientIOError):
    """Recent opens of this database failed; memtree refuses to touch the disk
    until the cool-down has passed."""


class BusyError(MemtreeError):
    """Another connection holds a lock (BUSY, LOCKED) past the busy timeout."""

    transient = True


class DiskFullError(MemtreeError):
    """The database or the disk is full (SQLITE_FULL)."""


class CorruptDatabaseError(MemtreeError):
    """The database file is malformed or is not a database (CORRUPT, NOTADB).

    When memtree found the corruption itself (at open or in ``Store.check``),
    it copied the file aside to ``quarantined_path`` and rebuilt it in place
    (same file, one transaction) with every row still readable. Nothing was
    deleted.
    """

    quarantined_path: str | None = None


class ConstraintError(MemtreeError):
    """A constraint (UNIQUE, NOT NULL, FOREIGN KEY, …) was violated."""


class PermanentError(MemtreeError):
    """Any other SQLite failure: surfaced, never retried silently."""


class StoreClosedError(MemtreeError):
    """The store was used after ``close()`` (reported as SQLITE_MISUSE)."""


class ForkedStoreError(StoreClosedError):
    """The store was opened by the parent process before a ``fork()`` and is
    used in the child (reported as SQLITE_MISUSE). SQLite forbids carrying a
    connection across a fork, so such a handle refuses every call without
    touching the parent's connection; ``Store.open`` in the child gives a
    working store of its own."""


class SchemaVersionError(MemtreeError):
    """The file was written by a newer memtree; it was not changed."""


class NotMemtreeDatabaseError(PermanentError):
    """The file holds tables, but none of memtree's (no ``mem_tree_chunks``):
    it belongs to something else. It was not changed."""


class PathRefusedError(PermanentError):
    """memtree refused to open this path, before SQLite saw it; nothing was
    created, renamed or written. ``extended_code`` says why:

    * ``SQLITE_NOTADB`` (26): a non-empty file that is not an SQLite
      database (``Store("notes.txt")``); it is left byte for byte as it was.
    * ``SQLITE_CANTOPEN`` (14): the folder does not exist (a typo, not a
      cold-start failure: permanent, so a worker does not retry it forever),
      ``memtree recover`` found no file, or a FIFO, device or socket stands
      at the database or a side-file name (``-journal``, ``-wal``; not
      ``-shm``, which memtree never opens) — also one planted there while
      the store is open: every call raises this error, naming that file,
      until it is removed.
    * ``SQLITE_CANTOPEN_ISDIR`` (526): a directory at one of those names.
    * ``SQLITE_CANTOPEN_SYMLINK`` (1550): a symbolic link at one of those
      names; pass the path of the file it points to.

    Permanent whatever the code: ``errors.from_code(14)`` is a
    ``TransientIOError`` (SQLite's own CANTOPEN may clear up), this one is
    not. See docs/paths.md.
    """


class LeaseLostError(MemtreeError):
    """A job settle or heartbeat came from a worker that no longer holds the
    job's lease (it expired and was recovered or re-claimed, or the job was
    already settled). Nothing was changed; the current holder owns the job."""


class JobCancelledError(LeaseLostError):
    """The job was cancelled (:meth:`memtree.Jobs.cancel`) while it ran: the
    heartbeat or settle that raises this changed nothing, and the job stays
    ``cancelled``. Stop working on it. A ``LeaseLostError``, so code that
    handles a lost lease handles this too."""


class StaleBufferError(MemtreeError):
    """A seal presented a buffer version that is no longer the buffer's: an
    append or another seal reached the buffer after it was read. Nothing was
    written; read the buffer again and summarise what it holds now."""


def from_code(extended_code: int, message: str = "") -> MemtreeError:
    """The exception memtree raises for ``extended_code``, as an instance.

    The native layer picks the class with the same classifier (and the same
    match) it uses for the errors it raises.

    >>> type(from_code(4618)).__name__
    'TransientIOError'
    """
    return _native.error_from_code(int(extended_code), message)
