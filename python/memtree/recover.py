"""``memtree recover PATH``: list stranded side files.

Rows are stranded when an earlier release moved a ``-wal`` it could not
checkpoint aside (``chunks.db-wal.unrecovered-<ms>``). memtree cannot prove
such a file belongs to the database, so no open merges it: every open warns,
and this command lists them; ``--adopt FILE`` (see :mod:`memtree.adopt`)
checks one and merges it. It never creates a database and never changes a
file it refuses. Exit codes (the table of
:mod:`memtree._exit`): 0 nothing left stranded, 1 something could not be
merged yet, 2 the database cannot be opened or is not an SQLite file (left
byte for byte as it was), 3 nothing there (no file or folder, or an empty
file), 4 another application's database, 5 a path memtree refuses (a FIFO,
device, socket, directory or symbolic link at the database or a side-file
name).
"""

from __future__ import annotations

import json
from pathlib import Path

import memtree
from memtree import _native
from memtree._codes import ResultCode
from memtree._exit import (
    EXIT_DAMAGED,
    EXIT_NEEDS_ATTENTION,
    EXIT_NOT_MEMTREE,
    EXIT_NOTHING_THERE,
    EXIT_OK,
    EXIT_REFUSED_PATH,
    refused_path,
)
from memtree._inspect import resolve_db_path

__all__ = ["run"]


def _refusal(db: Path) -> tuple[int, str] | None:
    """Why ``recover`` must not open ``db``, as ``(exit status, message)``:
    it brings rows home into an existing database and never creates one."""
    refusal = refused_path(db)
    if refusal is None and db.stat().st_size == 0:
        return EXIT_NOTHING_THERE, f"{db} is an empty (0-byte) file: no database to recover into"
    return refusal


def _fail(db: Path, code: int, message: str, name: str, as_json: bool) -> int:
    failure = {"database": str(db), "error": message, "code": name, "exit_code": code}
    print(json.dumps(failure) if as_json else f"memtree recover: {message}")
    return code


def run(path: Path, *, as_json: bool = False) -> int:
    # PATH may be the database file, <ws>/memory_tree or <ws> (the rule every
    # command uses).
    db = resolve_db_path(path)
    refusal = _refusal(db)
    if refusal is not None:
        code, message = refusal
        name = "SQLITE_CANTOPEN" if code == EXIT_NOTHING_THERE else "refused_path"
        return _fail(db, code, message, name, as_json)
    before = _native.stranded_files(db)
    try:
        with memtree.Store(db) as store:
            chunks = store.count_chunks()
    except memtree.NotMemtreeDatabaseError as e:
        return _fail(db, EXIT_NOT_MEMTREE, str(e), e.name, as_json)
    except memtree.PathRefusedError as e:
        # Not an SQLite file (NOTADB): left byte for byte as it was.
        code = EXIT_DAMAGED if e.extended_code == ResultCode.NOTADB else EXIT_REFUSED_PATH
        return _fail(db, code, str(e), e.name, as_json)
    except memtree.MemtreeError as e:
        return _fail(db, EXIT_DAMAGED, str(e), e.name, as_json)
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
    return EXIT_NEEDS_ATTENTION if left else EXIT_OK
