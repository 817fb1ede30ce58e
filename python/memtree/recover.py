"""``memtree recover PATH``: list stranded side files.

Rows are stranded when an earlier release moved a ``-wal`` it could not
checkpoint aside (``chunks.db-wal.unrecovered-<ms>``). memtree cannot prove
such a file belongs to the database, so no open merges it: every open warns,
and this command lists them; ``--adopt FILE`` (see :mod:`memtree.adopt`)
checks one and merges it. Exit codes: 0 when nothing is stranded, 1 when
something is, 2 when the database cannot be opened.
"""

from __future__ import annotations

import json
from pathlib import Path

import memtree
from memtree import _native
from memtree._inspect import resolve_db_path

__all__ = ["run"]


def _database(path: Path) -> Path:
    """``PATH`` may be the database file, ``<ws>/memory_tree`` or ``<ws>``
    (the rule every command uses); a folder holding no database is passed on
    as it is, so the open fails instead of creating one."""
    db = resolve_db_path(path)
    return path if path.is_dir() and not db.exists() else db


def run(path: Path, *, as_json: bool = False) -> int:
    db = _database(path)
    before = _native.stranded_files(db)
    try:
        with memtree.Store(db) as store:
            chunks = store.count_chunks()
    except memtree.MemtreeError as e:
        failure = {"database": str(db), "error": str(e), "code": e.name}
        print(json.dumps(failure) if as_json else f"memtree recover: {e}")
        return 2
    left = _native.stranded_files(db)
    report: dict[str, str | int | list[dict[str, str | int | None]]] = {
        "database": str(db),
        "stranded_before": [{"file": f, "chunk_rows": n, "note": why} for f, n, why in before],
        "stranded_left": [{"file": f, "chunk_rows": n, "note": why} for f, n, why in left],
        "chunk_rows": chunks,
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(f"database:      {db}")
        print(f"stranded:      {len(before)} file(s) before, {len(left)} left")
        for f, n, why in left:
            rows = "?" if n is None else str(n)
            print(f"  {f}: {rows} chunk rows; {why}")
        if left:
            print("merge one with: memtree recover PATH --adopt FILE [--dry-run]")
        print(f"chunk rows:    {chunks}")
    return 1 if left else 0
