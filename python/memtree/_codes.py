"""SQLite result codes, primary and extended, as a Python enum.

Generated from memtree's Rust table (``rust/codes.rs``); do not edit by hand. A
Rust unit test checks that the two list the same codes. Values are SQLite's own
(``sqlite3.h``); an extended code keeps its primary code in its low 8 bits.
"""

from __future__ import annotations

import enum

__all__ = ["ResultCode"]


class ResultCode(enum.IntEnum):
    """Every SQLite result code; the member name is the C name without ``SQLITE_``.

    >>> ResultCode(4618).sqlite_name
    'SQLITE_IOERR_SHMOPEN'
    >>> ResultCode.IOERR_SHMOPEN.primary is ResultCode.IOERR
    True
    """

    OK = 0
    ERROR = 1
    INTERNAL = 2
    PERM = 3
    ABORT = 4
    BUSY = 5
    LOCKED = 6
    NOMEM = 7
    READONLY = 8
    INTERRUPT = 9
    IOERR = 10
    CORRUPT = 11
    NOTFOUND = 12
    FULL = 13
    CANTOPEN = 14
    PROTOCOL = 15
    EMPTY = 16
    SCHEMA = 17
    TOOBIG = 18
    CONSTRAINT = 19
    MISMATCH = 20
    MISUSE = 21
    NOLFS = 22
    AUTH = 23
    FORMAT = 24
    RANGE = 25
    NOTADB = 26
    NOTICE = 27
    WARNING = 28
    ROW = 100
    DONE = 101
    OK_LOAD_PERMANENTLY = 256
    ERROR_MISSING_COLLSEQ = 257
    BUSY_RECOVERY = 261
    LOCKED_SHAREDCACHE = 262
    READONLY_RECOVERY = 264
    IOERR_READ = 266
    CORRUPT_VTAB = 267
    CANTOPEN_NOTEMPDIR = 270
    CONSTRAINT_CHECK = 275
    AUTH_USER = 279
    NOTICE_RECOVER_WAL = 283
    WARNING_AUTOINDEX = 284
    OK_SYMLINK = 512
    ERROR_RETRY = 513
    ABORT_ROLLBACK = 516
    BUSY_SNAPSHOT = 517
    LOCKED_VTAB = 518
    READONLY_CANTLOCK = 520
    IOERR_SHORT_READ = 522
    CORRUPT_SEQUENCE = 523
    CANTOPEN_ISDIR = 526
    CONSTRAINT_COMMITHOOK = 531
    NOTICE_RECOVER_ROLLBACK = 539
    ERROR_SNAPSHOT = 769
    BUSY_TIMEOUT = 773
    READONLY_ROLLBACK = 776
    IOERR_WRITE = 778
    CORRUPT_INDEX = 779
    CANTOPEN_FULLPATH = 782
    CONSTRAINT_FOREIGNKEY = 787
    NOTICE_RBU = 795
    READONLY_DBMOVED = 1032
    IOERR_FSYNC = 1034
    CANTOPEN_CONVPATH = 1038
    CONSTRAINT_FUNCTION = 1043
    READONLY_CANTINIT = 1288
    IOERR_DIR_FSYNC = 1290
    CANTOPEN_DIRTYWAL = 1294
    CONSTRAINT_NOTNULL = 1299
    READONLY_DIRECTORY = 1544
    IOERR_TRUNCATE = 1546
    CANTOPEN_SYMLINK = 1550
    CONSTRAINT_PRIMARYKEY = 1555
    IOERR_FSTAT = 1802
    CONSTRAINT_TRIGGER = 1811
    IOERR_UNLOCK = 2058
    CONSTRAINT_UNIQUE = 2067
    IOERR_RDLOCK = 2314
    CONSTRAINT_VTAB = 2323
    IOERR_DELETE = 2570
    CONSTRAINT_ROWID = 2579
    IOERR_BLOCKED = 2826
    CONSTRAINT_PINNED = 2835
    IOERR_NOMEM = 3082
    CONSTRAINT_DATATYPE = 3091
    IOERR_ACCESS = 3338
    IOERR_CHECKRESERVEDLOCK = 3594
    IOERR_LOCK = 3850
    IOERR_CLOSE = 4106
    IOERR_DIR_CLOSE = 4362
    IOERR_SHMOPEN = 4618
    IOERR_SHMSIZE = 4874
    IOERR_SHMLOCK = 5130
    IOERR_SHMMAP = 5386
    IOERR_SEEK = 5642
    IOERR_DELETE_NOENT = 5898
    IOERR_MMAP = 6154
    IOERR_GETTEMPPATH = 6410
    IOERR_CONVPATH = 6666
    IOERR_VNODE = 6922
    IOERR_AUTH = 7178
    IOERR_BEGIN_ATOMIC = 7434
    IOERR_COMMIT_ATOMIC = 7690
    IOERR_ROLLBACK_ATOMIC = 7946
    IOERR_DATA = 8202
    IOERR_CORRUPTFS = 8458
    IOERR_IN_PAGE = 8714

    @property
    def sqlite_name(self) -> str:
        """The C name of the code, e.g. ``"SQLITE_IOERR_SHMOPEN"``."""
        return "SQLITE_" + self.name

    @property
    def primary(self) -> ResultCode:
        """The primary code (the low 8 bits); a primary code is its own primary."""
        return ResultCode(self.value & 0xFF)
