"""A non-regular file planted at the ``-journal`` or ``-wal`` name while a
store is open is a permanent ``PathRefusedError``, not SQLite's transient
CANTOPEN.

memtree's VFS refuses, in ``xOpen``, a FIFO (whose read-only open would
block for ever), a socket, a device, a directory or a symbolic link at a
name SQLite opens. SQLite reports that refusal as its own CANTOPEN, which
alone is a ``TransientIOError``: a ``Worker`` would back off and retry a
path that cannot work until someone removes the file. Each test proves:
every call (a read, a write, a job claim, a check, a backup, a compaction,
a restore) raises ``PathRefusedError`` with the planted file's path and what
it is in the message; nothing on disk changes (names, kinds and a digest
of every regular file); once the file is removed the same handle reads and
writes again, with every committed row.
And the refusal never makes SQLite skip a real hot journal's rollback.

Everything runs in a subprocess with a timeout: a regression that lets
SQLite open a FIFO blocks, and must fail instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(os.name == "nt", reason="FIFOs, sockets and devices are POSIX")

#: A hang guard only: each scenario takes well under a second.
HANG = 120

#: The helpers every scenario script starts with: the folder's listing and
#: one call's outcome.
PRELUDE = """
import hashlib, json, os, socket, stat, sys
from datetime import datetime, timezone
import memtree

def listing(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode):
            with open(path, "rb") as f:
                out[name] = ["file", hashlib.sha256(f.read()).hexdigest()]
        elif stat.S_ISLNK(mode):
            out[name] = ["link", os.readlink(path)]
        else:
            out[name] = [stat.filemode(mode)[0], ""]
    return out

def outcome(call):
    try:
        return {"ok": repr(call())}
    except memtree.MemtreeError as e:
        return {"type": type(e).__name__, "name": e.name, "code": e.extended_code,
                "transient": e.transient, "path": e.path, "message": str(e)}

def chunk(i):
    return memtree.Chunk("c%05d" % i, "content %d" % i, "chat", "s", "alice",
                         datetime(2026, 1, 1, tzinfo=timezone.utc))
"""

#: Opens a store, writes rows and jobs, plants ``kind`` at ``suffix``, runs
#: every call, removes the file and runs them again.
PLANT_AND_CALL = """
folder, kind, suffix = sys.argv[1], sys.argv[2], sys.argv[3]
db = os.path.join(folder, "chunks.db")
store = memtree.Store(db)
store.upsert_chunks([chunk(i) for i in range(20)])
for i in range(3):
    store.jobs.enqueue("work", {"i": i})
good_backup = os.path.join(folder, "good-backup.db")
store.backup(good_backup)
planted = db + suffix
if os.path.lexists(planted):
    os.unlink(planted)
keep = None
if kind == "fifo":
    os.mkfifo(planted)
elif kind == "socket":
    os.chdir(folder)  # a short relative name: AF_UNIX paths are limited
    keep = socket.socket(socket.AF_UNIX)
    keep.bind(os.path.basename(planted))
elif kind == "device":
    os.mknod(planted, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's
elif kind == "directory":
    os.mkdir(planted)
elif kind == "symlink":
    os.symlink(os.devnull, planted)
before = listing(folder)
calls = {
    "read": lambda: store.count_chunks(),
    "write": lambda: store.upsert_chunks([chunk(100)]),
    "claim": lambda: store.jobs.claim_next(),
    "enqueue": lambda: store.jobs.enqueue("work", {"i": 99}),
    "check": lambda: store.check(),
    # The operations that run on connections of their own.
    "backup": lambda: store.backup(os.path.join(folder, "backup.db")),
    "compact": lambda: store.compact(),
    "restore": lambda: memtree.restore(good_backup, db),
}
refused = {name: outcome(call) for name, call in calls.items()}
after = listing(folder)
if keep is not None:
    keep.close()
if os.path.isdir(planted) and not os.path.islink(planted):
    os.rmdir(planted)
else:
    os.unlink(planted)
again = {
    "count": store.count_chunks(),
    "write": store.upsert_chunks([chunk(100)]),
    "claimed": store.jobs.claim_next() is not None,
    "count_after_write": store.count_chunks(),
}
store.close()
print(json.dumps({"planted": planted, "refused": refused, "before": before,
                  "after": after, "again": again}))
"""


def run_script(body: str, *args: str | Path) -> Any:
    """Runs ``PRELUDE + body`` in a fresh interpreter; its JSON output."""
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(body)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"blocked for {HANG} s (SQLite opened the planted file?)")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


#: What each kind is called in the refusal's message.
KIND_WORDS = {
    "fifo": "a FIFO (named pipe)",
    "socket": "a socket",
    "device": "a device",
    "directory": "a directory",
    "symlink": "a symbolic link",
}
KIND_CODES = {
    "fifo": "SQLITE_CANTOPEN",
    "socket": "SQLITE_CANTOPEN",
    "device": "SQLITE_CANTOPEN",
    "directory": "SQLITE_CANTOPEN_ISDIR",
    "symlink": "SQLITE_CANTOPEN_SYMLINK",
}


def same_file_name(reported: str, planted: str) -> bool:
    """True when ``reported`` names ``planted``: the same name in the same
    folder (folders compared resolved; the name itself never followed)."""
    a, b = Path(reported), Path(planted)
    return a.name == b.name and a.parent.resolve() == b.parent.resolve()


def can_make_devices() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.parametrize("suffix", ["-journal", "-wal"])
@pytest.mark.parametrize("kind", sorted(KIND_WORDS))
def test_a_file_planted_after_the_open_is_a_permanent_refusal(
    tmp_path: Path, kind: str, suffix: str
) -> None:
    if kind == "device" and not can_make_devices():
        pytest.skip("making a device node needs root")
    out = run_script(PLANT_AND_CALL, tmp_path, kind, suffix)
    planted = out["planted"]
    for call, got in out["refused"].items():
        assert got.get("type") == "PathRefusedError", (call, got)
        assert got["name"] == KIND_CODES[kind], (call, got)
        assert got["transient"] is False, (call, got)
        # The planted file's name (its folder as the store spells it: the
        # canonical path, which may differ where the temp folder is a link).
        assert same_file_name(got["path"], planted), (call, got)
        assert got["path"] in got["message"] and KIND_WORDS[kind] in got["message"], (call, got)
    # Nothing was created, written, renamed or removed by the refused calls.
    assert out["after"] == out["before"]
    # The same handle works again once the file is gone: every committed
    # row is there, and the write and the claim that were refused now run.
    again = out["again"]
    assert again["count"] == 20
    assert again["write"] == 1 and again["count_after_write"] == 21
    assert again["claimed"] is True


def test_a_worker_does_not_retry_a_planted_fifo_as_transient(tmp_path: Path) -> None:
    # What the Worker sees: the claim raises the permanent error, which its
    # loop hands to on_error with the ordinary pause (not the 30 s
    # transient-I/O back-off it would retry for ever).
    out = run_script(
        """
        from memtree.worker import LoopBackoff, Worker
        db = os.path.join(sys.argv[1], "chunks.db")
        store = memtree.Store(db)
        store.jobs.enqueue("work", {})
        os.unlink(db + "-journal")  # the empty journal TRUNCATE mode keeps
        os.mkfifo(db + "-journal")
        worker = Worker(store, {"work": lambda job: None},
                        backoff=LoopBackoff(transient_io=30.0, other=0.25))
        got = outcome(worker.run_once)
        try:
            worker.run_once()
        except memtree.MemtreeError as e:
            got["pause"] = worker.backoff_for(e)
        os.unlink(db + "-journal")
        got["ran"] = worker.run_once() is not None
        print(json.dumps(got))
        """,
        tmp_path,
    )
    assert out["type"] == "PathRefusedError" and out["transient"] is False, out
    assert out["pause"] == 0.25
    assert out["ran"] is True


#: Leaves a real hot journal: a transaction whose pages spill into the
#: database file before it commits, killed before the commit.
CRASH_MID_TRANSACTION = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=TRUNCATE")
conn.execute("PRAGMA cache_size=5")
conn.execute("BEGIN")
conn.execute("CREATE TABLE spill(x)")
conn.execute(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) "
    "INSERT INTO spill SELECT randomblob(2000) FROM n"
)
conn.execute("UPDATE spill SET x = randomblob(2000)")
os._exit(9)
"""


def test_a_refused_journal_never_skips_a_hot_journal_rollback(tmp_path: Path) -> None:
    # A store is open; another process dies mid-transaction after spilling
    # pages into the database file, leaving a hot journal. The journal is
    # moved aside and a FIFO planted at its name: every read is refused
    # (SQLite assumes the journal it cannot open is hot, and its
    # read-write open for the rollback is refused too), so nothing reads
    # the half-written file, and neither file is touched. Put back, the
    # journal is rolled back by the next read: every committed row is
    # there and the file checks clean.
    out = run_script(
        """
        import subprocess
        folder, crash = sys.argv[1], sys.argv[2]
        db = os.path.join(folder, "chunks.db")
        journal = db + "-journal"
        store = memtree.Store(db)
        store.upsert_chunks([chunk(i) for i in range(200)])
        pristine = listing(folder)["chunks.db"]
        size = os.path.getsize(db)
        died = subprocess.run([sys.executable, "-c", crash, db]).returncode
        hot = os.path.getsize(journal)
        spilled = listing(folder)["chunks.db"] != pristine
        os.rename(journal, db + ".moved-journal")
        os.mkfifo(journal)
        before = listing(folder)
        refused = [outcome(store.count_chunks), outcome(lambda: store.get_chunk("c00001"))]
        after = listing(folder)
        os.unlink(journal)
        os.rename(db + ".moved-journal", journal)
        count = store.count_chunks()
        contents = sorted(store.get_chunk("c%05d" % i).content for i in range(200))
        check = store.check(full=True)
        store.close()
        import sqlite3
        with sqlite3.connect(db) as plain:
            tables = [r[0] for r in plain.execute("SELECT name FROM sqlite_master")]
        # Byte equality is too strict: pages the dead transaction took from
        # the freelist are not journaled, and keep what it wrote there.
        print(json.dumps({"died": died, "hot": hot, "spilled": spilled, "refused": refused,
                          "unchanged": before == after, "count": count,
                          "contents": contents == sorted("content %d" % i for i in range(200)),
                          "rolled_back": "spill" not in tables and os.path.getsize(db) == size,
                          "journal_left": os.path.getsize(journal), "check": check}))
        """,
        tmp_path,
        textwrap.dedent(CRASH_MID_TRANSACTION),
    )
    # The setup really left a hot journal and a half-written database.
    assert out["died"] == 9 and out["hot"] > 0 and out["spilled"], out
    for got in out["refused"]:
        assert got.get("type") == "PathRefusedError", got
        assert "a FIFO (named pipe)" in got["message"], got
    assert out["unchanged"], "a refused read touched the database or the journal"
    assert out["count"] == 200 and out["contents"]
    assert out["rolled_back"], "the hot journal was not rolled back"
    assert out["journal_left"] == 0
    assert out["check"] == ["ok"], out["check"]
