"""``memtree stats PATH``: what a memtree database holds, read-only.

Chunk counts by source kind and by lifecycle status, job counts by status
and the age of each status's oldest job, and sizes (free pages included).
A table the file lacks (an older schema) is reported as absent, not as an
error.

Sizes: ``file_size`` is the main file on disk, ``wal_size`` and
``journal_size`` its side files (None when absent), ``size_on_disk`` their
sum. ``page_count`` and ``database_size`` (= ``page_count * page_size``) are
the database as SQLite sees it, ``-wal`` frames included: what the main file
holds once the ``-wal`` is checkpointed. Without a ``-wal`` the two agree.

Exit status (the table of :mod:`memtree._exit`): 0 reported, 2 unreadable
(not an SQLite file), 3 nothing there (no file or folder, or 0 bytes), 4
another application's database, 5 a path memtree refuses (a FIFO, device,
socket, directory or link at the database or a side-file name).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

from memtree._exit import EXIT_DAMAGED, EXIT_NOT_MEMTREE, EXIT_NOTHING_THERE, refused_path
from memtree._inspect import (
    JsonValue,
    not_memtree_reason,
    open_snapshot,
    read_side_files,
    resolve_db_path,
)

__all__ = ["Refused", "collect", "run"]


def _grouped(conn: sqlite3.Connection, table: str, column: str) -> dict[str, int] | None:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if not exists:
        return None
    rows = conn.execute(
        f"SELECT {column}, count(*) FROM {table} GROUP BY {column} ORDER BY {column}"
    ).fetchall()
    return {str(value): int(n) for value, n in rows}


def _oldest_job_ages(conn: sqlite3.Connection) -> dict[str, float] | None:
    """Per job status, the age in seconds of its oldest job: since it was
    created for ``ready`` and ``running`` (how long the queue has waited),
    since it finished for the rest (what ``jobs.purge`` would see)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mem_tree_jobs'"
    ).fetchone()
    if not exists:
        return None
    now_ms = time.time() * 1000
    rows = conn.execute(
        "SELECT status, min(CASE WHEN status IN ('ready', 'running') THEN created_at_ms "
        "ELSE coalesce(completed_at_ms, created_at_ms) END) "
        "FROM mem_tree_jobs GROUP BY status ORDER BY status"
    ).fetchall()
    return {
        str(status): round(max(0.0, now_ms - oldest) / 1000, 3)
        for status, oldest in rows
        if oldest is not None
    }


class Refused(Exception):
    """A path ``stats`` does not read, with its exit status (:mod:`memtree._exit`)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def collect(path: Path) -> dict[str, JsonValue]:
    """The statistics of ``path`` (a database file or a workspace folder).

    Raises :class:`Refused` (with the command's ``exit_code``) when there is
    nothing there, the database is another application's, or the path is one
    ``memtree.Store()`` refuses; ``sqlite3.DatabaseError`` when unreadable."""
    return _collect(resolve_db_path(path))


def _collect(db: Path) -> dict[str, JsonValue]:
    refusal = refused_path(db)
    if refusal is not None:
        raise Refused(*refusal)
    if db.stat().st_size == 0:
        raise Refused(EXIT_NOTHING_THERE, f"{db} is an empty (0-byte) file: no database yet")
    with open_snapshot(db) as (conn, how):
        not_ours = not_memtree_reason(conn)
        if not_ours is not None:
            raise Refused(EXIT_NOT_MEMTREE, f"not a memtree database: {not_ours} [{db}]")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        freelist = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        by_kind = _grouped(conn, "mem_tree_chunks", "source_kind")
        by_status = _grouped(conn, "mem_tree_chunks", "lifecycle_status")
        jobs = _grouped(conn, "mem_tree_jobs", "status")
        job_ages = _oldest_job_ages(conn)
    chunks: dict[str, JsonValue] = {
        "total": None if by_kind is None else sum(by_kind.values()),
        "by_source_kind": dict(by_kind) if by_kind is not None else None,
        "by_lifecycle_status": dict(by_status) if by_status is not None else None,
    }
    side = read_side_files(db)
    file_size = db.stat().st_size
    return {
        "path": str(db),
        "file_size": file_size,
        "wal_size": side.wal_size,
        "journal_size": side.journal_size,
        "size_on_disk": file_size + (side.wal_size or 0) + (side.journal_size or 0),
        "page_size": page_size,
        "page_count": page_count,
        "database_size": page_size * page_count,
        "freelist_pages": freelist,
        "inspected_via": how,
        "chunks": chunks,
        "jobs_by_status": dict(jobs) if jobs is not None else None,
        "jobs_oldest_age_seconds": dict(job_ages) if job_ages is not None else None,
    }


def _table(title: str, counts: JsonValue) -> list[str]:
    if not isinstance(counts, dict):
        return [f"{title}: (table absent)"]
    if not counts:
        return [f"{title}: none"]
    width = max(len(title), *(len(k) for k in counts))
    lines = [f"{title:<{width}}  {'count':>10}", f"{'-' * width}  {'-' * 10}"]
    lines.extend(f"{k:<{width}}  {v:>10}" for k, v in counts.items())
    return lines


def _human(s: dict[str, JsonValue]) -> str:
    chunks = s["chunks"]
    assert isinstance(chunks, dict)
    on_disk = f"{s['file_size']} bytes"
    if s["wal_size"] is not None:
        on_disk += f" + {s['wal_size']} bytes -wal = {s['size_on_disk']} bytes"
    wal_note = " with the -wal's frames" if s["wal_size"] is not None else ""
    lines = [
        f"database:   {s['path']}",
        f"on disk:    {on_disk}",
        f"contents:   {s['page_count']} pages of {s['page_size']} bytes = "
        f"{s['database_size']} bytes{wal_note} ({s['freelist_pages']} pages free)",
        f"chunks:     {chunks['total'] if chunks['total'] is not None else '(table absent)'}",
        "",
    ]
    lines += [*_table("source kind", chunks["by_source_kind"]), ""]
    lines += [*_table("lifecycle status", chunks["by_lifecycle_status"]), ""]
    lines += _table("job status", s["jobs_by_status"])
    ages = s.get("jobs_oldest_age_seconds")
    if isinstance(ages, dict) and ages:
        lines += [
            "",
            "oldest job by status (seconds; ready/running since created, others since done)",
        ]
        lines += [f"  {status}: {age}" for status, age in ages.items()]
    return "\n".join(lines)


def run(path: Path, *, as_json: bool) -> int:
    """The ``memtree stats`` command; returns the exit status."""
    try:
        s = collect(path)
    except (Refused, sqlite3.DatabaseError) as e:
        code = e.exit_code if isinstance(e, Refused) else EXIT_DAMAGED
        if as_json:
            error: dict[str, JsonValue] = {
                "error": f"{type(e).__name__}: {e}",
                "error_kind": "runtime",
                "exit_code": code,
            }
            print(json.dumps(error, indent=2))
        else:
            print(f"memtree stats: {e}", file=sys.stderr)
        return code
    print(json.dumps(s, indent=2) if as_json else _human(s))
    return 0
