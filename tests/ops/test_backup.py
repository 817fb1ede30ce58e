"""`Store.backup` and `memtree.restore`: consistent online copies that never
replace a file, and restores written into the live file in place (same
inode), with the replaced contents kept. Fault loops over both paths and a
kill loop over restore."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)


def chunk(cid: str, content: str = "text") -> memtree.Chunk:
    return memtree.Chunk(
        id=cid,
        source_kind="chat",
        source_id=cid.rsplit("-", 1)[0],
        owner="o",
        timestamp=BASE,
        content=content,
        seq_in_source=int(cid.rsplit("-", 1)[1]),
    )


def state(db: Path) -> tuple[object, ...]:
    """Every chunk and job row, after asserting integrity (read-write, so a
    hot journal is rolled back first, as any reader would)."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return (
            tuple(conn.execute("SELECT id, content FROM mem_tree_chunks ORDER BY id")),
            tuple(conn.execute("SELECT id, kind, status FROM mem_tree_jobs ORDER BY id")),
        )
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_store(path: Path, n: int, tag: str) -> memtree.Store:
    store = memtree.Store(path)
    store.upsert_chunks([chunk(f"{tag}-{i}", f"{tag} {i}") for i in range(n)])
    store.jobs.enqueue(tag, {"n": n})
    return store


# -- backup -----------------------------------------------------------------


def test_backup_is_verified_and_opens(tmp_path: Path) -> None:
    store = make_store(tmp_path / "chunks.db", 50, "a")
    report = store.backup(tmp_path / "copy.db")
    assert report.path == tmp_path / "copy.db" and report.replaced is None
    assert report.rows["mem_tree_chunks"] == 50 and report.rows["mem_tree_jobs"] == 1
    assert report.bytes == (tmp_path / "copy.db").stat().st_size
    assert report.schema_version == memtree.schema_version()
    assert state(tmp_path / "copy.db") == state(tmp_path / "chunks.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "chunks.db",
        "chunks.db-journal",
        "copy.db",
    ]


@pytest.mark.parametrize("planted", ["", "-journal", "-wal", ".partial"])
def test_backup_never_replaces_or_sits_beside_a_file(tmp_path: Path, planted: str) -> None:
    store = make_store(tmp_path / "chunks.db", 5, "a")
    dest = tmp_path / "copy.db"
    there = Path(f"{dest}{planted}")
    there.write_bytes(b"keep me")
    with pytest.raises(memtree.PathRefusedError):
        store.backup(dest)
    assert there.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["chunks.db", "chunks.db-journal", there.name]
    )


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_file_planted_at_the_stores_journal_fails_the_backup_by_name(
    tmp_path: Path, kind: str
) -> None:
    """A folder or link planted at the open store's ``-journal`` name: the
    backup's own connection meets it at its first read and the core reports
    it as the refusal it is (permanent, naming the file; not SQLite's
    transient CANTOPEN), the store byte for byte as it was and nothing at
    the destination. Once it is removed the backup works."""
    live = tmp_path / "chunks.db"
    store = make_store(live, 20, "a")
    journal = Path(f"{live}-journal")
    journal.unlink(missing_ok=True)  # TRUNCATE keeps an empty one
    if kind == "directory":
        journal.mkdir()
    else:
        journal.symlink_to(os.devnull)
    before = digest(live)
    dest = tmp_path / "copy.db"
    with pytest.raises(memtree.PathRefusedError) as caught:
        store.backup(dest)
    expected = ResultCode.CANTOPEN_ISDIR if kind == "directory" else ResultCode.CANTOPEN_SYMLINK
    assert caught.value.extended_code == expected
    assert caught.value.transient is False
    assert caught.value.path is not None and Path(caught.value.path).name == journal.name
    assert digest(live) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunks.db", journal.name]
    if kind == "directory":
        journal.rmdir()
    else:
        journal.unlink()
    assert store.backup(dest).rows["mem_tree_chunks"] == 20
    store.close()


def test_backup_into_a_missing_folder_is_refused(tmp_path: Path) -> None:
    store = make_store(tmp_path / "chunks.db", 5, "a")
    with pytest.raises(memtree.PathRefusedError, match="folder"):
        store.backup(tmp_path / "nope" / "copy.db")
    assert not (tmp_path / "nope").exists()


def _checked_contents(path: Path) -> tuple[list[str], int]:
    """A backup's chunk ids and job count, after a full check that it is whole."""
    with memtree.Store(path) as copy:
        assert copy.check(full=True) == ["ok"]
    conn = sqlite3.connect(path)
    ids = [r[0] for r in conn.execute("SELECT id FROM mem_tree_chunks")]
    jobs = conn.execute("SELECT count(*) FROM mem_tree_jobs").fetchone()[0]
    conn.close()
    return ids, jobs


def test_backups_during_a_4_thread_ingest_hold_a_prefix_of_whole_batches(
    tmp_path: Path,
) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    stop = threading.Event()
    per_batch = 8
    committed = [0] * 4

    def ingest(t: int) -> None:
        b = 0
        while not stop.is_set() and b < 400:
            with store.jobs.batch() as batch:
                batch.upsert_chunks([chunk(f"t{t}b{b}-{i}") for i in range(per_batch)])
                batch.enqueue("k", {"t": t, "b": b})
            b += 1
            committed[t] = b

    threads = [threading.Thread(target=ingest, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    backups = []
    try:
        # Not before a batch is in: on a loaded machine the threads may not
        # have committed one in the 6 x 50 ms below, and every copy was empty.
        deadline = time.monotonic() + 60  # a hang guard, not a measure
        while not any(committed) and all(th.is_alive() for th in threads):
            assert time.monotonic() < deadline, "no batch committed"
            time.sleep(0.005)
        for k in range(6):
            time.sleep(0.05)
            backups.append(store.backup(tmp_path / f"backup-{k}.db").path)
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert any(0 < n for n in committed)
    non_empty = 0
    for path in backups:
        ids, jobs = _checked_contents(path)
        per: dict[tuple[int, int], int] = {}
        for cid in ids:
            t, b = cid.split("-")[0][1:].split("b")
            per[int(t), int(b)] = per.get((int(t), int(b)), 0) + 1
        assert set(per.values()) <= {per_batch}, "a batch's chunks all there or none"
        assert jobs == len(per), "each batch's job with its chunks"
        for thread in range(4):
            held = sorted(b for (tt, b) in per if tt == thread)
            assert held == list(range(len(held))), "a prefix of each thread's history"
        non_empty += bool(ids)
    assert non_empty >= 1


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from pathlib import Path

    import memtree

    BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)
    store = memtree.Store(Path(sys.argv[1]))
    stop = Path(sys.argv[2])
    b = 0
    while not stop.exists() and b < 2000:
        with store.jobs.batch() as batch:
            batch.upsert_chunks([
                memtree.Chunk(id=f"p{b}-{i}", source_kind="chat", source_id=f"p{b}",
                              owner="o", timestamp=BASE, content="x" * 3000,
                              seq_in_source=i)
                for i in range(8)
            ])
            batch.enqueue("k", {"b": b})
        b += 1
        if b == 1:
            print("writing", flush=True)
    store.close()
    print(b, flush=True)
    """
)


def test_backups_while_another_process_writes_hold_a_prefix_of_its_batches(
    tmp_path: Path,
) -> None:
    """The byte copy relies on the read transaction's SHARED lock keeping
    other processes' writers off the file (POSIX locks, not the in-process
    lock table the thread test exercises): every copy holds whole batches,
    a prefix of the writer's history, and the writer never fails (it waits
    for the copy within its busy timeout)."""
    live = tmp_path / "chunks.db"
    # Opened before the writer starts: the test is about the backup, not
    # about opening a store while another process commits.
    store = memtree.Store(live)
    stop = tmp_path / "stop"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(live), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    backups = []
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        for k in range(5):
            time.sleep(0.05)
            backups.append(store.backup(tmp_path / f"backup-{k}.db").path)
    finally:
        stop.touch()
        out, err = child.communicate(timeout=120)
        store.close()
    assert child.returncode == 0, err
    written = int(out.strip())
    sizes = []
    for path in backups:
        ids, jobs = _checked_contents(path)
        per: dict[int, int] = {}
        for cid in ids:
            b = int(cid.split("-")[0][1:])
            per[b] = per.get(b, 0) + 1
        assert set(per.values()) <= {8}, "a batch's chunks all there or none"
        assert sorted(per) == list(range(len(per))), "a prefix of the writer's history"
        assert jobs == len(per), "each batch's job with its chunks"
        sizes.append(len(per))
    assert sizes == sorted(sizes) and 0 < sizes[-1] <= written, (sizes, written)


def _partial(dest: Path) -> Path:
    return Path(f"{dest}.partial")


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize(
    ("side", "method"),
    [("source", "xRead"), ("copy", "xWrite"), ("copy", "xSync"), ("copy", "xRead")],
)
def test_a_fault_at_every_io_of_a_backup_leaves_no_copy_or_a_whole_one(
    tmp_path: Path, side: str, method: testing.VfsMethod, persistent: bool
) -> None:
    live = tmp_path / "chunks.db"
    store = make_store(live, 300, "a")
    before = state(live)
    live_bytes = digest(live)
    fired_points = 0
    for n in range(1, 3000):
        dest = tmp_path / f"copy-{n}.db"
        target = live if side == "source" else _partial(dest)
        testing.inject_fault(target, method, n, ResultCode.IOERR, persistent=persistent)
        try:
            store.backup(dest)
            failed = False
        except memtree.MemtreeError as e:
            assert e.code is not None
            failed = True
        fired = testing.clear_fault(target)
        assert not _partial(dest).exists(), "the partial copy is removed"
        assert not Path(f"{_partial(dest)}-journal").exists()
        if failed:
            assert not dest.exists(), f"{method} at {n}: a failed backup leaves no file"
        else:
            assert state(dest) == before
            dest.unlink()
        assert digest(live) == live_bytes, "the live file is only read"
        if fired == 0:
            assert not failed
            break
        fired_points += 1
    else:
        pytest.fail("still firing at call 2999")
    assert fired_points >= 1, "the loop must have injected faults"


# -- restore ----------------------------------------------------------------


def test_restore_writes_in_place_and_keeps_the_replaced_bytes(tmp_path: Path) -> None:
    live = tmp_path / "chunks.db"
    store = make_store(live, 20, "old")
    backup = tmp_path / "b.db"
    with make_store(tmp_path / "other.db", 30, "new") as other:
        other.backup(backup)
    wanted = state(backup)
    old_bytes = live.read_bytes()
    inode = live.stat().st_ino
    report = memtree.restore(backup, live)
    assert live.stat().st_ino == inode, "the same file, never a rename"
    assert report.replaced is not None and report.replaced.read_bytes() == old_bytes
    assert report.rows["mem_tree_chunks"] == 30
    assert state(live) == wanted
    # The handle open across the restore reads the restored contents.
    assert store.count_chunks() == 30
    assert live.read_bytes()[18:20] == b"\x01\x01", "rollback journal in the header"
    with memtree.Store(live) as again:
        assert again.connection_settings()["journal_mode"] == "truncate"


def test_restore_into_a_missing_store_creates_it(tmp_path: Path) -> None:
    with make_store(tmp_path / "a.db", 5, "a") as a:
        a.backup(tmp_path / "b.db")
    report = memtree.restore(tmp_path / "b.db", tmp_path / "new.db")
    assert report.replaced is None
    assert state(tmp_path / "new.db") == state(tmp_path / "b.db")


def test_restoring_a_store_onto_itself_is_refused(tmp_path: Path) -> None:
    live = tmp_path / "chunks.db"
    make_store(live, 5, "a").close()
    before = digest(live)
    with pytest.raises(memtree.PathRefusedError, match="same file"):
        memtree.restore(live, live)
    assert digest(live) == before


@pytest.mark.parametrize("kind", ["text", "foreign", "missing", "link"])
def test_a_bad_backup_changes_nothing(tmp_path: Path, kind: str) -> None:
    live = tmp_path / "chunks.db"
    make_store(live, 5, "a").close()
    before = digest(live)
    bad = tmp_path / "bad.db"
    if kind == "text":
        bad.write_text("not a database\n" * 100)
    elif kind == "foreign":
        conn = sqlite3.connect(bad)
        conn.execute("CREATE TABLE notes (x)")
        conn.commit()
        conn.close()
    elif kind == "link":
        bad.symlink_to(live)
    expected = memtree.NotMemtreeDatabaseError if kind == "foreign" else memtree.PathRefusedError
    with pytest.raises(expected):
        memtree.restore(bad, live)
    assert digest(live) == before
    assert not list(tmp_path.glob("chunks.db.pre-restore-*"))


HOLD_OPEN = textwrap.dedent(
    """
    import sys, time, memtree
    store = memtree.Store(sys.argv[1])
    store.count_chunks()
    print("open", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc holds the open files")
def test_restore_refuses_while_another_process_holds_the_store(tmp_path: Path) -> None:
    live = tmp_path / "chunks.db"
    make_store(live, 5, "a").close()
    with make_store(tmp_path / "b-src.db", 7, "b") as b:
        b.backup(tmp_path / "b.db")
    before = digest(live)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(live)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "open"
        with pytest.raises(memtree.BusyError, match=f"process {child.pid}"):
            memtree.restore(tmp_path / "b.db", live)
        assert digest(live) == before
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    memtree.restore(tmp_path / "b.db", live)
    assert state(live) == state(tmp_path / "b.db")


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", ["xWrite", "xSync", "xRead"])
def test_a_fault_at_every_io_of_a_restore_leaves_old_or_new(
    tmp_path: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    base = tmp_path / "base.db"
    make_store(base, 200, "old").close()
    with make_store(tmp_path / "src.db", 150, "new") as src:
        src.backup(tmp_path / "b.db")
    old, new = state(base), state(tmp_path / "b.db")
    fired_points = 0
    saw_old = saw_new = False
    for n in range(1, 3000):
        live = tmp_path / f"run-{n}.db"
        shutil.copy2(base, live)
        testing.inject_fault(live, method, n, ResultCode.IOERR, persistent=persistent)
        try:
            memtree.restore(tmp_path / "b.db", live)
        except memtree.MemtreeError as e:
            assert e.code is not None
        fired = testing.clear_fault(live)
        seen = state(live)
        assert seen in (old, new), f"{method} fault at call {n}"
        saw_old |= seen == old
        saw_new |= seen == new
        for aside in tmp_path.glob(f"{live.name}.pre-restore-*"):
            # A copy kept aside is the old contents, byte for byte.
            assert state(aside) == old
            aside.unlink()
        live.unlink()
        Path(f"{live}-journal").unlink(missing_ok=True)
        if fired == 0:
            break
        fired_points += 1
    else:
        pytest.fail("still firing at call 2999")
    assert fired_points >= 1 and saw_old and saw_new


RESTORER = textwrap.dedent(
    """
    import sys, memtree
    print("go", flush=True)
    memtree.restore(sys.argv[1], sys.argv[2])
    print("done", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_kill_at_any_moment_of_a_restore_leaves_old_or_new_whole(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    make_store(base, 2000, "old").close()
    with make_store(tmp_path / "src.db", 1500, "new") as src:
        src.backup(tmp_path / "b.db")
    old, new = state(base), state(tmp_path / "b.db")
    rng = random.Random(23)
    outcomes = {"old": 0, "new": 0}
    for trial in range(20):
        live = tmp_path / f"live-{trial}.db"
        shutil.copy2(base, live)
        child = subprocess.Popen(
            [sys.executable, "-c", RESTORER, str(tmp_path / "b.db"), str(live)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0, 0.08))
        child.kill()
        child.wait()
        child.stdout.close()
        seen = state(live)
        assert seen in (old, new), f"trial {trial}"
        outcomes["old" if seen == old else "new"] += 1
    print(f"kill during restore: {outcomes}")
    assert outcomes["old"] + outcomes["new"] == 20


# -- CLI --------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memtree", *args], capture_output=True, text=True, check=False
    )


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    live = tmp_path / "chunks.db"
    make_store(live, 12, "a").close()
    done = _cli("backup", str(live), str(tmp_path / "b.db"))
    assert done.returncode == 0, done.stderr
    assert "bytes:" in done.stdout
    again = _cli("backup", str(live), str(tmp_path / "b.db"))
    assert again.returncode == 5 and "never replaces" in again.stderr
    assert _cli("backup", str(tmp_path / "none.db"), str(tmp_path / "c.db")).returncode == 3
    assert not (tmp_path / "none.db").exists()
    with memtree.Store(live) as store:
        store.upsert_chunks([chunk("extra-0")])
    restored = _cli("restore", str(tmp_path / "b.db"), str(live), "--json")
    assert restored.returncode == 0, restored.stderr
    assert '"replaced_contents_kept_at"' in restored.stdout
    assert state(live) == state(tmp_path / "b.db")
    assert _cli("restore", str(tmp_path / "none.db"), str(live)).returncode == 3
    os.remove(tmp_path / "b.db")
