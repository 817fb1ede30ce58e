"""``memtree doctor PATH``: a read-only health report of a memtree database.

Reports the journal mode the header records, the side files (whether the
``-wal`` holds frames, whether the ``-journal`` is hot), ``user_version``,
``quick_check`` (``--full``: ``integrity_check``), rows per table, and plain
advice. Exit status: 0 healthy, 1 needs migration (WAL mode or a ``-wal``
present), 2 damaged or unreadable, 3 nothing there (no file or folder, or an
empty one), 4 not a memtree database (tables of its own, no ``mem_tree_chunks``),
5 a path memtree refuses (a FIFO, device, socket, directory or link at the
database or a side-file name): the table of :mod:`memtree._exit`.
The inspected files are never changed (see :mod:`memtree._inspect`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from memtree import _exit
from memtree._exit import EXIT_DAMAGED, EXIT_NEEDS_ATTENTION, EXIT_OK
from memtree._inspect import (
    JsonValue,
    not_memtree_reason,
    open_snapshot,
    read_header,
    read_side_files,
    resolve_db_path,
    table_counts,
)
from memtree._native import schema_version, stranded_files

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_DAMAGED",
    "EXIT_HEALTHY",
    "EXIT_NEEDS_MIGRATION",
    "EXIT_NOTHING_THERE",
    "EXIT_NOT_MEMTREE",
    "EXIT_REFUSED_PATH",
    "Diagnosis",
    "diagnose",
    "run",
]

EXIT_HEALTHY = EXIT_OK
EXIT_NEEDS_MIGRATION = EXIT_NEEDS_ATTENTION
#: No database to inspect: no file or folder, or an empty (0-byte) file.
#: Either way memtree creates a fresh database there and nothing is lost.
EXIT_NOTHING_THERE = _exit.EXIT_NOTHING_THERE
#: Another application's SQLite database: tables of its own and no
#: ``mem_tree_chunks`` (``memtree.Store()`` raises ``NotMemtreeDatabaseError``).
EXIT_NOT_MEMTREE = _exit.EXIT_NOT_MEMTREE
#: A FIFO, device, socket, directory or symbolic link at the database or a
#: side-file name (``memtree.Store()`` raises ``PathRefusedError``).
EXIT_REFUSED_PATH = _exit.EXIT_REFUSED_PATH

#: The one table of every path command (:mod:`memtree._exit`).
EXIT_CODES_HELP = _exit.EXIT_CODES_HELP


@dataclass
class Diagnosis:
    """What ``doctor`` found; ``as_json()`` is the ``--json`` output."""

    path: Path
    status: str = "healthy"
    exists: bool = True
    size: int = 0
    header: dict[str, JsonValue] = field(default_factory=dict)
    side_files: dict[str, JsonValue] = field(default_factory=dict)
    stranded: list[dict[str, JsonValue]] = field(default_factory=list)
    user_version: int | None = None
    check_kind: str = "quick_check"
    check: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    inspected_via: str = ""
    error: str | None = None
    advice: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {
            "healthy": EXIT_HEALTHY,
            "needs_migration": EXIT_NEEDS_MIGRATION,
            "missing": EXIT_NOTHING_THERE,
            "empty": EXIT_NOTHING_THERE,
            "not_memtree": EXIT_NOT_MEMTREE,
            "refused_path": EXIT_REFUSED_PATH,
        }.get(self.status, EXIT_DAMAGED)

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "path": str(self.path),
            "status": self.status,
            "exit_code": self.exit_code,
            "exists": self.exists,
            "size": self.size,
            "header": self.header,
            "side_files": self.side_files,
            "stranded": list(self.stranded),
            "user_version": self.user_version,
            "supported_schema_version": schema_version(),
            "check": {"kind": self.check_kind, "result": list(self.check)},
            "tables": dict(self.tables),
            "inspected_via": self.inspected_via,
            "error": self.error,
            "advice": list(self.advice),
        }


def diagnose(path: Path, *, full: bool = False) -> Diagnosis:
    """Inspects ``path`` (a database file or a workspace folder) without changing it."""
    db = resolve_db_path(path)
    d = Diagnosis(path=db, check_kind="integrity_check" if full else "quick_check")
    refusal = _exit.refused_path(db)
    if refusal is not None and refusal[0] == EXIT_REFUSED_PATH:
        # Looked at, never opened: a FIFO here would block any read.
        d.exists = os.path.lexists(db)
        d.status = "refused_path"
        d.error = refusal[1]
        d.advice.append(
            "memtree refuses this path (PathRefusedError): only a regular file, or nothing, "
            "may stand at the database name and at its -journal and -wal; a symbolic "
            "link is not followed, so give the path of the file it points to"
        )
        return d
    if refusal is not None or not db.is_file():
        d.exists = False
        d.status = "missing"
        d.advice.append(f"no database at {db}; memtree creates one on first open")
        return d
    d.size = db.stat().st_size
    header = read_header(db)
    side = read_side_files(db)
    d.header = header.as_json()
    d.side_files = side.as_json()
    _note_stranded(d, db)
    if d.size == 0 and not side.journal_hot and side.wal_size is None:
        # SQLite takes a 0-byte file for a new, empty database: Store() builds
        # the schema in it, it does not quarantine it.
        d.status = "empty"
        d.advice.append(
            f"{db} is an empty (0-byte) file: SQLite treats it as a new database, and "
            "memtree.Store() creates the schema in it on first open (nothing is moved "
            "aside, nothing is lost)"
        )
        return d
    if not header.valid:
        d.status = "damaged"
        d.error = "the file does not start with the SQLite header (SQLITE_NOTADB)"
        d.advice.append(
            "this is not a SQLite database: memtree.Store(path) refuses it unchanged "
            "(PathRefusedError, SQLITE_NOTADB); only a workspace's memory_tree/chunks.db "
            "(Store.open) is moved aside as chunks.db.corrupt-<ms> and started afresh: "
            "restore a backup first if you have one"
        )
        return d
    not_ours: str | None = None
    try:
        with open_snapshot(db) as (conn, how):
            d.inspected_via = how
            d.user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            d.check = [str(row[0]) for row in conn.execute(f"PRAGMA {d.check_kind}")]
            d.tables = table_counts(conn)
            not_ours = not_memtree_reason(conn)
    except sqlite3.DatabaseError as e:
        d.status = "damaged"
        d.error = f"{type(e).__name__}: {e}"
    if d.status != "damaged" and d.check != ["ok"]:
        d.status = "damaged"
    if d.status == "damaged":
        d.advice.append(
            "the database is damaged: copy it and its side files somewhere safe before "
            "anything opens it; memtree would quarantine it (copy it aside, keep the copy) and "
            "rebuild it in place with every row still readable"
        )
        return d
    if not_ours is not None:
        d.status = "not_memtree"
        d.error = f"not a memtree database: {not_ours}"
        d.advice.append(
            f"{db} belongs to another application: memtree.Store() refuses it "
            "(NotMemtreeDatabaseError) and `memtree migrate` leaves it alone; "
            "point memtree at its own file"
        )
        return d
    if header.wal_mode or side.wal_size is not None:
        d.status = "needs_migration"
        if side.wal_has_frames:
            d.advice.append(
                "the -wal holds frames (possibly committed rows not yet in the main file): "
                "never delete it; `memtree migrate --backup` checkpoints it into the database"
            )
        d.advice.append(
            "the database is in WAL mode: run `memtree migrate PATH --backup` (or open it "
            "with memtree.Store) with the application closed to move it to the TRUNCATE journal"
        )
    if side.shm_size is not None and side.wal_size is None:
        d.advice.append(
            "a stale -shm without -wal: harmless; memtree removes it under its exclusive lock"
        )
    if side.journal_hot:
        d.advice.append(
            "the -journal is hot (a commit was interrupted): the next open rolls it back; "
            "never delete it"
        )
    supported = schema_version()
    if d.user_version is not None and d.user_version > supported:
        d.advice.append(
            f"user_version {d.user_version} is newer than this memtree supports ({supported}): "
            "upgrade memtree before opening it"
        )
    elif d.user_version is not None and d.user_version < supported:
        d.advice.append(
            f"schema version {d.user_version}: memtree upgrades it to {supported} on open"
        )
    if not d.advice:
        d.advice.append("healthy: TRUNCATE-era file, no side files needing attention")
    return d


def _note_stranded(d: Diagnosis, db: Path) -> None:
    """Side files that may hold committed rows not in the live file: listed,
    never opened here (a planted one may be a FIFO, a link or huge)."""
    for file, rows, note in stranded_files(db):
        d.stranded.append({"file": file, "chunk_rows": rows, "note": note})
    if d.stranded:
        d.advice.append(
            f"{len(d.stranded)} stranded side file(s) may hold committed rows not in the "
            "database; no open merges them: `memtree recover PATH --adopt FILE --dry-run` "
            "checks one and shows its rows, without --dry-run merges them. Never delete them"
        )


def _human(d: Diagnosis) -> str:
    lines = [f"database:      {d.path}"]
    if d.status == "refused_path":
        lines.append(f"error:         {d.error}")
        lines.append("status:        refused path (not opened)")
    elif d.status in ("missing", "empty"):
        lines.append(f"size:          {d.size} bytes" if d.exists else "size:          -")
        lines.append(f"status:        {d.status} (nothing there)")
    else:
        lines.append(f"size:          {d.size} bytes")
        lines.append(f"journal mode:  {d.header.get('journal_mode')} (from the file header)")
        for name, info in d.side_files.items():
            lines.append(f"-{name + ':':<13} {_side_text(info)}")
        for item in d.stranded:
            rows = "?" if item["chunk_rows"] is None else item["chunk_rows"]
            lines.append(f"stranded:      {item['file']} ({rows} chunk rows)")
        lines.append(f"user_version:  {d.user_version}")
        if d.check:
            lines.append(f"{d.check_kind + ':':<14} {'; '.join(d.check[:5])}")
        if d.error:
            lines.append(f"error:         {d.error}")
        if d.tables:
            lines.append("rows per table:")
            width = max(len(t) for t in d.tables)
            lines.extend(f"  {t:<{width}}  {n:>10}" for t, n in d.tables.items())
        if d.inspected_via:
            lines.append(f"inspected via: {d.inspected_via} (the files were not changed)")
        lines.append(f"status:        {d.status.replace('_', ' ')}")
    lines.append("advice:")
    lines.extend(f"  - {a}" for a in d.advice)
    return "\n".join(lines)


def _side_text(info: JsonValue) -> str:
    if not isinstance(info, dict):
        return "absent"
    parts = [f"{info['size']} bytes"]
    if info.get("holds_frames"):
        parts.append("holds frames")
    if info.get("hot"):
        parts.append("HOT")
    return ", ".join(parts)


def run(path: Path, *, full: bool, as_json: bool) -> int:
    """The ``memtree doctor`` command; returns the exit status."""
    d = diagnose(path, full=full)
    print(json.dumps(d.as_json(), indent=2) if as_json else _human(d))
    return d.exit_code
