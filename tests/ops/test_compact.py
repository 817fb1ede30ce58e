"""`Store.compact` and `memtree compact`: free pages given back in place (the
same inode), the file whole after an I/O error at any write or sync and
after a kill at any moment. The full-disk refusal is tested in Rust
(`ops::compact`), where the free-space probe can be given a small disk."""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import ram_folder

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)


def grown_then_emptied(path: Path, n: int = 3000, keep: int = 300) -> None:
    """A store that held `n` chunks and now holds `keep`: many free pages.
    The first `keep` chunks are a day younger, so one retention call drops
    the rest (a few transactions of 500; one `delete_chunk` commit per
    chunk took a minute of fsyncs for the same free pages)."""
    with memtree.Store(path) as store:
        store.upsert_chunks(
            [
                memtree.Chunk(
                    id=f"c-{i}",
                    source_kind="chat",
                    source_id=f"s{i % 50}",
                    owner="o",
                    timestamp=BASE + timedelta(days=1) if i < keep else BASE,
                    content="x" * 400 + str(i),
                    seq_in_source=i,
                )
                for i in range(n)
            ]
        )
        assert store.delete_chunks(older_than=BASE + timedelta(days=1)) == n - keep
        assert store.count_chunks() == keep


def state(db: Path) -> tuple[object, ...]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return tuple(conn.execute("SELECT id, content FROM mem_tree_chunks ORDER BY id"))
    finally:
        conn.close()


def test_compact_gives_free_pages_back_in_place(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    grown_then_emptied(db, n=1500, keep=150)
    before = state(db)
    inode = db.stat().st_ino
    with memtree.Store(db) as store:
        other = memtree.Store(db)  # the same process's shared connection
        report = store.compact()
        assert other.count_chunks() == 150
    assert report.free_pages_before > 50 and report.free_pages_after == 0
    assert report.bytes_after < report.bytes_before
    assert db.stat().st_size == report.bytes_after
    assert db.stat().st_ino == inode
    assert state(db) == before
    print(f"compact: {report.bytes_before} -> {report.bytes_after} bytes")


@pytest.fixture(scope="module")
def fault_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store the fault loops compact, built once: each run takes a copy."""
    base = tmp_path_factory.mktemp("compact-faults") / "base.db"
    grown_then_emptied(base, n=600, keep=60)
    return base


@pytest.fixture
def work() -> Iterator[Path]:
    """Where the fault loops run (RAM-backed where possible, see ``ram_folder``):
    hundreds of compactions at ``synchronous=FULL``; the injected faults sit
    above the file system, so what the loops prove does not depend on it."""
    with ram_folder("memtree-compact-faults-") as folder:
        yield folder


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", ["xWrite", "xSync"])
def test_a_fault_at_every_io_of_compact_leaves_the_rows_whole(
    fault_base: Path, work: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    base = work / "base.db"
    shutil.copy2(fault_base, base)
    before = state(base)
    fired_points = 0
    shrunk = 0
    for n in range(1, 5000):
        db = work / f"run-{n}.db"
        shutil.copy2(base, db)
        with memtree.Store(db) as store:
            testing.inject_fault(db, method, n, ResultCode.IOERR, persistent=persistent)
            try:
                store.compact()
            except memtree.MemtreeError as e:
                assert e.code is not None
            fired = testing.clear_fault(db)
        assert state(db) == before, f"{method} fault at call {n}"
        shrunk += db.stat().st_size < base.stat().st_size
        db.unlink()
        Path(f"{db}-journal").unlink(missing_ok=True)
        if fired == 0:
            break
        fired_points += 1
    else:
        pytest.fail("still firing at call 4999")
    assert fired_points >= 1 and shrunk >= 1


COMPACTOR = textwrap.dedent(
    """
    import sys, memtree
    store = memtree.Store(sys.argv[1])
    print("go", flush=True)
    store.compact()
    print("done", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_kill_at_any_moment_of_compact_leaves_the_file_whole(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    grown_then_emptied(base)
    before = state(base)
    rng = random.Random(6)
    sizes = set()
    for trial in range(15):
        db = tmp_path / f"live-{trial}.db"
        shutil.copy2(base, db)
        child = subprocess.Popen(
            [sys.executable, "-c", COMPACTOR, str(db)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0, 0.06))
        child.kill()
        child.wait()
        child.stdout.close()
        assert state(db) == before, f"trial {trial}"
        sizes.add(db.stat().st_size < base.stat().st_size)
    print(f"kill during compact: compacted in {sorted(sizes)}")


def test_cli_compact(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    grown_then_emptied(db, n=500, keep=10)
    done = subprocess.run(
        [sys.executable, "-m", "memtree", "compact", str(db), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"free_pages_after": 0' in done.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "memtree", "compact", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 3 and not (tmp_path / "none.db").exists()


def test_compact_keeps_the_text_index_in_step(tmp_path: Path) -> None:
    """VACUUM may renumber the implicit rowids the FTS5 indexes are keyed on:
    after compact() the indexes pass FTS5's integrity-check against their
    tables, and a text search finds exactly the rows still there."""
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks(
            [
                memtree.Chunk(
                    id=f"c{i}",
                    source_kind="chat",
                    source_id=f"s{i % 7}",
                    owner="o",
                    # The even ones older: one retention call deletes them
                    # (a commit per delete_chunk made this test fsync-bound).
                    timestamp=BASE if i % 2 == 0 else BASE + timedelta(days=1),
                    content=f"word{i} common " + "filler " * 50,
                    seq_in_source=i,
                )
                for i in range(300)
            ]
        )
        assert store.delete_chunks(older_than=BASE + timedelta(days=1)) == 150
        store.compact()
        hits = store.search_text("common", k=1000)
        assert sorted(h.id for h in hits) == sorted(f"c{i}" for i in range(1, 300, 2))
        assert [h.id for h in store.search_text("word7")] == ["c7"]
        assert store.search_text("word8") == []
    conn = sqlite3.connect(db)
    try:
        for fts in ("memtree_chunks_fts", "memtree_summaries_fts"):
            conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES('integrity-check', 1)")
    finally:
        conn.close()
