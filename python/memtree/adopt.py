"""``memtree recover PATH --adopt FILE [--dry-run]``: merge one side file.

No open merges a file memtree cannot prove it wrote: a ``-wal`` an earlier
release moved aside (``chunks.db-wal.unrecovered-<ms>``) or a side bundle is
only reported (by ``doctor`` and by a warning on every open). This command
merges the one named, after checking it: a regular file with one link (a
hard link, FIFO, folder or link is refused at once, as is a file over 4 GiB),
never opened where it lies (a private copy is), of memtree's schema, passing
``quick_check`` within a time budget. Only the rows the database lacks are
copied (a row present in both keeps the live version), in one transaction;
the file is removed once they are in. ``--dry-run`` shows what it would
bring in and writes nothing. Exit codes (the table of :mod:`memtree._exit`):
0 merged (or would merge), 2 the database cannot be opened, 5 the file was
refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import memtree
from memtree import _native
from memtree._exit import EXIT_DAMAGED, EXIT_OK, EXIT_REFUSED_PATH

__all__ = ["run"]


def run(db: Path, file: Path, *, dry_run: bool = False, as_json: bool = False) -> int:
    try:
        # Opening is what may fail for the database; the adoption's own
        # refusals (a bad file) come after.
        memtree.Store(db).close()
    except memtree.MemtreeError as e:
        print(
            json.dumps({"database": str(db), "error": str(e), "code": e.name})
            if as_json
            else f"memtree recover: {e}"
        )
        return EXIT_DAMAGED
    try:
        rows, chunks, removed = _native.adopt_file(db, file, dry_run)
    except (memtree.MemtreeError, ValueError) as e:
        code = getattr(e, "name", None)
        print(
            json.dumps({"file": str(file), "error": str(e), "code": code})
            if as_json
            else f"memtree recover --adopt: refused: {e}"
        )
        return EXIT_REFUSED_PATH
    report = {
        "database": str(db),
        "file": str(file),
        "dry_run": dry_run,
        "rows": dict(rows),
        "chunk_rows": chunks,
        "file_removed": removed,
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        verb = "would bring in" if dry_run else "brought in"
        print(f"{file}: {verb} {chunks} chunk rows")
        for table, n in rows:
            if n:
                print(f"  {table}: {n}")
        if removed:
            print("the file is merged and removed")
    return EXIT_OK
