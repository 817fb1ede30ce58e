"""``memtree migrate PATH [--backup]``: move a WAL-era database to memtree's
TRUNCATE journal, with a verified backup first and a verification after.

Steps, each of which stops the command if it fails:

1. ``integrity_check`` and rows per table of the database as it stands (its
   ``-wal`` included), read without changing it (:mod:`memtree._inspect`);
   a damaged file is refused, and so is another application's database
   (tables of its own, no ``mem_tree_chunks``: exit 4, nothing opened). A
   file already on a rollback journal with no ``-wal`` (or an empty one) has
   nothing to migrate: the command says so and stops there, with no backup.
2. With ``--backup``: SQLite's online backup API copies that state, page by
   page with a progress bar, into ``<db>.backup-<UTC time>`` (a single file on
   the DELETE journal); the backup is then integrity-checked and its row
   counts compared with step 1.
3. ``memtree.Store`` opens the file, which checkpoints every WAL frame into
   it, switches to TRUNCATE and removes ``-wal`` and ``-shm``; its journal
   mode is read back, and it is closed.
4. The file is inspected again: rollback journal in the header, no ``-wal``
   or ``-shm``, integrity ok, and every table holding as many rows as before.

Python's ``sqlite3`` (steps 1, 2 and 4) and memtree's SQLite (step 3) never
have the file open at the same time: two SQLite libraries in one process do
not see each other's POSIX locks.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from memtree._inspect import JsonValue, open_snapshot, read_header, table_counts
from memtree._native import Store
from memtree.doctor import EXIT_NOT_MEMTREE, EXIT_NOTHING_THERE, EXIT_REFUSED_PATH, diagnose
from memtree.errors import JournalModeWarning, MemtreeError

__all__ = ["ProgressBar", "backup_database", "run"]


class ProgressBar:
    """A one-line text progress bar on a stream (stderr by default)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.updates = 0

    def __call__(self, done: int, total: int) -> None:
        self.updates += 1
        frac = done / total if total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {frac:6.1%} ({done}/{total} pages)")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def backup_database(src: Path, dest: Path, progress: ProgressBar | None = None) -> int:
    """Copies ``src`` (with its ``-wal``) to ``dest`` with SQLite's online
    backup API, leaving ``src`` untouched; returns the pages copied. The
    backup is converted to the DELETE journal so it is one self-contained file."""
    pages_per_step = max(16, read_header(src).page_count // 100)
    copied = 0

    def on_step(_status: int, remaining: int, total: int) -> None:
        nonlocal copied
        copied = total - remaining
        if progress is not None:
            progress(copied, total)

    with open_snapshot(src) as (conn, _how), contextlib.closing(sqlite3.connect(dest)) as out:
        conn.backup(out, pages=pages_per_step, progress=on_step)
        out.execute("PRAGMA journal_mode = DELETE").fetchone()
    return copied


def _now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def run(
    path: Path,
    *,
    backup: bool,
    backup_to: Path | None = None,
    progress: bool | None = None,
    as_json: bool = False,
) -> int:
    """The ``memtree migrate`` command; returns the exit status (0 migrated
    and verified, or nothing to do; 1 SQLite kept WAL because another process
    holds the file; 2 refused or verification failed; 3 nothing there (no
    file or folder, or an empty one; nothing created); 4 not a memtree
    database, left as it was; 5 a path memtree refuses: the table of
    :mod:`memtree._exit`)."""
    report: dict[str, JsonValue] = {}
    say = (lambda _msg: None) if as_json else print

    def finish(code: int, outcome: str) -> int:
        report["outcome"] = outcome
        report["exit_code"] = code
        if as_json:
            print(json.dumps(report, indent=2))
        else:
            print(outcome)
        return code

    before = diagnose(path, full=True)
    db = before.path
    report["path"] = str(db)
    report["before"] = {
        "journal_mode": before.header.get("journal_mode"),
        "side_files": before.side_files,
        "tables": dict(before.tables),
    }
    if before.status == "refused_path":
        report["action"] = "none"
        return finish(EXIT_REFUSED_PATH, f"refused: {before.error}")
    if before.status in ("missing", "empty"):
        # Nothing to migrate, and nothing is created: exit as doctor does.
        report["action"] = "none"
        what = "an empty (0-byte) file" if before.exists else "nothing there"
        return finish(EXIT_NOTHING_THERE, f"no database at {db}: {what}; nothing was created")
    if before.status == "damaged":
        return finish(
            2,
            f"refused: the database is damaged ({before.error or '; '.join(before.check[:3])}); "
            "run `memtree doctor` and copy the files somewhere safe first",
        )
    if before.status == "not_memtree":
        # The same rule as Store(): migrating would add memtree's tables to
        # another application's file and change its journal mode.
        report["action"] = "none"
        return finish(
            EXIT_NOT_MEMTREE,
            f"refused: {before.error}; nothing was changed at {db}",
        )
    if before.header.get("journal_mode") == "rollback" and before.side_files.get("wal") is None:
        # Already on a rollback journal with no -wal: opening it would migrate
        # nothing, so no backup is written and the file is not opened.
        report["action"] = "none"
        return finish(
            0,
            f"nothing to do: {db} is already on the rollback journal, no -wal; no backup written",
        )
    report["action"] = "migrate"
    say(f"database:  {db}")
    say(
        f"before:    journal {before.header.get('journal_mode')}, integrity ok, "
        f"{sum(before.tables.values())} rows in {len(before.tables)} tables"
    )

    if backup or backup_to is not None:
        dest = backup_to or db.with_name(f"{db.name}.backup-{_now_stamp()}")
        if dest.exists():
            return finish(2, f"refused: the backup target {dest} exists")
        show = progress if progress is not None else (sys.stderr.isatty() and not as_json)
        bar = ProgressBar("backup") if show else None
        try:
            pages = backup_database(db, dest, bar)
        except sqlite3.Error as e:
            return finish(2, f"backup failed: {e}")
        with open_snapshot(dest) as (conn, _how):
            check = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
            counts = table_counts(conn)
        report["backup"] = {"path": str(dest), "pages": pages, "check": list(check)}
        if check != ["ok"] or counts != before.tables:
            return finish(2, f"backup verification failed ({dest}); the database was not changed")
        say(f"backup:    {dest} ({pages} pages, integrity ok, row counts equal)")

    with warnings.catch_warnings():
        # A refused switch is reported below through the mode SQLite reports.
        warnings.simplefilter("ignore", JournalModeWarning)
        try:
            # Only the journal mode is read here: integrity is checked once,
            # read-only, by the inspection below (Store.check could quarantine
            # the file in the middle of a verification).
            with Store(db) as store:
                mode = store.journal_mode
        except MemtreeError as e:
            return finish(2, f"memtree could not open the database: {e}")
    report["journal_mode"] = mode
    if mode != "truncate":
        return finish(
            1,
            f"SQLite kept journal_mode={mode}: another process holds the file; "
            "close the application and run the command again (nothing was lost)",
        )

    after = diagnose(db, full=True)
    report["after"] = {
        "journal_mode": after.header.get("journal_mode"),
        "side_files": after.side_files,
        "tables": dict(after.tables),
        "check": list(after.check),
    }
    problems = []
    if after.check != ["ok"]:
        problems.append("integrity check failed")
    if after.header.get("journal_mode") != "rollback":
        problems.append("the header still records WAL mode")
    side = after.side_files
    if side.get("wal") is not None or side.get("shm") is not None:
        problems.append("-wal or -shm still present")
    changed = {
        t: (n, after.tables.get(t)) for t, n in before.tables.items() if after.tables.get(t) != n
    }
    if changed:
        problems.append(f"row counts differ: {changed}")
    if problems:
        return finish(2, "verification failed: " + "; ".join(problems))
    say(
        f"after:     journal truncate, no -wal/-shm, integrity ok, row counts equal "
        f"({sum(after.tables.values())} rows)"
    )
    return finish(0, "migrated and verified")
