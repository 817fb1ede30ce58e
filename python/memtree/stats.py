"""``memtree stats PATH``: what a memtree database holds, read-only.

Chunk counts by source kind and by lifecycle status, job counts by status,
and the file's size, page size and page counts. A table the file lacks (an
older schema) is reported as absent, not as an error.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from memtree._inspect import JsonValue, open_snapshot, resolve_db_path

__all__ = ["collect", "run"]


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


def collect(path: Path) -> dict[str, JsonValue]:
    """The statistics of ``path`` (a database file or a workspace folder)."""
    db = resolve_db_path(path)
    if not db.is_file():
        raise FileNotFoundError(f"no database at {db}")
    with open_snapshot(db) as (conn, how):
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        freelist = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        by_kind = _grouped(conn, "mem_tree_chunks", "source_kind")
        by_status = _grouped(conn, "mem_tree_chunks", "lifecycle_status")
        jobs = _grouped(conn, "mem_tree_jobs", "status")
    chunks: dict[str, JsonValue] = {
        "total": None if by_kind is None else sum(by_kind.values()),
        "by_source_kind": dict(by_kind) if by_kind is not None else None,
        "by_lifecycle_status": dict(by_status) if by_status is not None else None,
    }
    return {
        "path": str(db),
        "file_size": db.stat().st_size,
        "page_size": page_size,
        "page_count": page_count,
        "freelist_pages": freelist,
        "inspected_via": how,
        "chunks": chunks,
        "jobs_by_status": dict(jobs) if jobs is not None else None,
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
    lines = [
        f"database:   {s['path']}",
        f"file size:  {s['file_size']} bytes "
        f"({s['page_count']} pages of {s['page_size']} bytes, {s['freelist_pages']} free)",
        f"chunks:     {chunks['total'] if chunks['total'] is not None else '(table absent)'}",
        "",
    ]
    lines += [*_table("source kind", chunks["by_source_kind"]), ""]
    lines += [*_table("lifecycle status", chunks["by_lifecycle_status"]), ""]
    lines += _table("job status", s["jobs_by_status"])
    return "\n".join(lines)


def run(path: Path, *, as_json: bool) -> int:
    """The ``memtree stats`` command; returns the exit status."""
    try:
        s = collect(path)
    except (FileNotFoundError, sqlite3.DatabaseError) as e:
        print(f"memtree stats: {e}")
        return 2
    print(json.dumps(s, indent=2) if as_json else _human(s))
    return 0
