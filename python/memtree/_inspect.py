"""Read-only inspection of a memtree database file and its side files.

Used by ``memtree doctor``, ``memtree stats`` and ``memtree migrate``. Nothing
here writes to the inspected files:

* the header and the side files are read as plain bytes;
* a database that needs SQLite to replay something first — one with a
  ``-wal`` (even a reader can create ``-shm`` or checkpoint on close) or a hot
  ``-journal`` (a reader would roll it back) — is copied into a temporary
  folder and the copy is opened;
* any other file is opened with ``?mode=ro``, which takes only shared locks.

This module uses Python's ``sqlite3``, never memtree's connection; callers
must not run it on a file memtree holds open in the same process (two SQLite
libraries in one process do not see each other's POSIX locks).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Union

__all__ = [
    "Header",
    "SideFiles",
    "not_memtree_reason",
    "open_snapshot",
    "read_header",
    "read_side_files",
    "resolve_db_path",
    "table_counts",
]

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
# Every rollback-journal header begins with these eight bytes (pager.c).
JOURNAL_MAGIC: Final = bytes([0xD9, 0xD5, 0x05, 0xF9, 0x20, 0xA1, 0x63, 0xD7])
WAL_HEADER_SIZE: Final = 32

JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]


def resolve_db_path(path: Path) -> Path:
    """A database file as given; for a folder, ``<folder>/memory_tree/chunks.db``
    (a workspace), or ``<folder>/chunks.db`` when the folder is the
    ``memory_tree`` folder itself or holds a ``chunks.db`` and no
    ``memory_tree`` database."""
    if not path.is_dir():
        return path
    in_workspace = path / "memory_tree" / "chunks.db"
    direct = path / "chunks.db"
    if in_workspace.exists():
        return in_workspace
    if path.name == "memory_tree" or direct.exists():
        return direct
    return in_workspace


def side_path(db: Path, suffix: str) -> Path:
    return db.with_name(db.name + suffix)


@dataclass(frozen=True)
class Header:
    """What the 100-byte database header says."""

    valid: bool
    write_version: int = 0
    read_version: int = 0
    page_size: int = 0
    page_count: int = 0
    user_version: int = 0

    @property
    def wal_mode(self) -> bool:
        """Bytes 18/19 == 2: the file was last in WAL mode."""
        return self.valid and (self.write_version == 2 or self.read_version == 2)

    @property
    def journal_mode(self) -> str:
        if not self.valid:
            return "unknown"
        return "wal" if self.wal_mode else "rollback"

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "valid": self.valid,
            "journal_mode": self.journal_mode,
            "write_version": self.write_version,
            "read_version": self.read_version,
            "page_size": self.page_size,
            "page_count": self.page_count,
            "user_version": self.user_version,
        }


def read_header(db: Path) -> Header:
    with db.open("rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        return Header(valid=False)
    (page_size,) = struct.unpack(">H", head[16:18])
    return Header(
        valid=True,
        write_version=head[18],
        read_version=head[19],
        page_size=65536 if page_size == 1 else page_size,
        page_count=struct.unpack(">I", head[28:32])[0],
        user_version=struct.unpack(">i", head[60:64])[0],
    )


@dataclass(frozen=True)
class SideFiles:
    """The ``-wal``, ``-shm`` and ``-journal`` beside a database."""

    wal_size: int | None
    shm_size: int | None
    journal_size: int | None
    journal_hot: bool

    @property
    def wal_has_frames(self) -> bool:
        """A ``-wal`` longer than its 32-byte header holds frames (committed or not)."""
        return self.wal_size is not None and self.wal_size > WAL_HEADER_SIZE

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "wal": None
            if self.wal_size is None
            else {"size": self.wal_size, "holds_frames": self.wal_has_frames},
            "shm": None if self.shm_size is None else {"size": self.shm_size},
            "journal": None
            if self.journal_size is None
            else {"size": self.journal_size, "hot": self.journal_hot},
        }


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def read_side_files(db: Path) -> SideFiles:
    journal = side_path(db, "-journal")
    journal_size = _size(journal)
    hot = False
    if journal_size:
        # TRUNCATE leaves an empty journal and PERSIST a zeroed header; only a
        # journal with a valid header can be rolled back (a "hot" journal).
        with journal.open("rb") as f:
            hot = f.read(len(JOURNAL_MAGIC)) == JOURNAL_MAGIC
    return SideFiles(
        wal_size=_size(side_path(db, "-wal")),
        shm_size=_size(side_path(db, "-shm")),
        journal_size=journal_size,
        journal_hot=hot,
    )


def needs_copy(header: Header, side: SideFiles) -> bool:
    """Whether opening the file with SQLite could change it or its side files."""
    return header.wal_mode or side.wal_size is not None or side.journal_hot


@contextlib.contextmanager
def open_snapshot(db: Path) -> Iterator[tuple[sqlite3.Connection, str]]:
    """A ``sqlite3`` connection that cannot change ``db``: read-only on the
    file itself, or read-write on a temporary copy when SQLite would have to
    replay a ``-wal`` or roll back a hot journal. Yields ``(connection, how)``."""
    header = read_header(db)
    side = read_side_files(db)
    with contextlib.ExitStack() as stack:
        if needs_copy(header, side):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="memtree-inspect-")))
            copy = tmp / db.name
            shutil.copyfile(db, copy)
            for suffix in ("-wal", "-journal"):
                if side_path(db, suffix).exists():
                    shutil.copyfile(side_path(db, suffix), side_path(copy, suffix))
            conn = sqlite3.connect(copy)
            how = "temporary copy"
        else:
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            how = "read-only connection"
        stack.callback(conn.close)
        yield conn, how


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table, user tables only: the full-text index (``memtree_*_fts``
    and its shadow tables) is derived from the rows, and the vector versions
    (``memtree_vector_versions``) are the search cache's bookkeeping, kept by
    triggers; both are left out."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'memtree\\_%\\_fts%' ESCAPE '\\' "
            "AND name != 'memtree_vector_versions' "
            "ORDER BY name"
        )
    ]
    counts: dict[str, int] = {}
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        counts[name] = int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
    return counts


def not_memtree_reason(conn: sqlite3.Connection) -> str | None:
    """Why the database on ``conn`` is not memtree's, or ``None`` when it is (or
    may become so). The same rule as ``memtree.Store()`` (``refuse_unless_ours``
    in rust/recovery/mod.rs): a file holding tables of its own but no
    ``mem_tree_chunks`` belongs to another application. A file with no tables at
    all (new, or 0 bytes) may be initialised."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    # ESCAPE as in the Rust statement: only the names SQLite reserves
    # (``sqlite_`` with a literal underscore) are left out.
    tables, has_chunks = conn.execute(
        "SELECT count(*), coalesce(sum(name = 'mem_tree_chunks'), 0) > 0 FROM sqlite_master "
        "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    ).fetchone()
    if int(tables) > 0 and not has_chunks:
        return f"{int(tables)} table(s) but no mem_tree_chunks (user_version {version})"
    return None
