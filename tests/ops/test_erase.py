"""`Store.erase_owner` and `memtree erase-owner`: an owner's rows go in one
transaction that logs the content files they name, then the files go —
only files inside the content root, reached without a link, regular,
hashing as recorded and named by no remaining row. Proofs: an abort (as
`kill -9` stops a process) at every step of the path, and I/O faults at
every write and sync, leave after the next open either everything as it
was or every row gone with every listed file removed; no other file is
ever touched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import add_dependents, fault_loop, ram_folder

# FIFOs, symbolic links and openat: the removal path exists on Unix only.
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix file removal path")

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)
ALICE_FILES = 12

# (relative path, sha256 of its bytes, inode) of every file under a folder.
Files = frozenset[tuple[str, str, int]]
State = tuple[frozenset[str], frozenset[str], frozenset[str], Files, int]


def body_sha(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def write_content(root: Path, rel: str, body: str) -> str:
    """A content file as OpenHuman writes it; returns its body's sha256."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\nsource_kind: document\ntags: []\n---\n{body}", encoding="utf-8")
    return body_sha(body)


def chunk(i: int, owner: str, path: str | None, sha: str | None) -> memtree.Chunk:
    return memtree.Chunk(
        id=f"{owner}-{i:03d}",
        source_kind="document",
        source_id=f"doc-{owner}",
        owner=owner,
        timestamp=BASE,
        content=f"preview {owner} {i}",
        seq_in_source=i,
        content_path=path,
        content_sha256=sha,
    )


def build(folder: Path) -> Path:
    """A store in ``folder`` (content root ``folder/content``): alice has
    ALICE_FILES files of her own (two chunks share one of them), one file
    shared with bob, one rewritten since, one behind a link, one that is a
    FIFO; bob has his own files; a file outside the root. Returns the db."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder / "content"
    db = folder / "chunks.db"
    chunks = []
    for i in range(ALICE_FILES):
        rel = f"document/alice/{i % 3}/a{i}.md"
        sha = write_content(root, rel, f"alice body {i}")
        chunks.append(chunk(i, "alice", rel, sha))
    chunks.append(chunk(90, "alice", "document/alice/0/a0.md", body_sha("alice body 0")))
    shared = write_content(root, "document/shared/s.md", "shared body")
    chunks.append(chunk(91, "alice", "document/shared/s.md", shared))
    changed = write_content(root, "document/alice/changed.md", "first body")
    (root / "document/alice/changed.md").write_text("---\n---\nrewritten", encoding="utf-8")
    chunks.append(chunk(92, "alice", "document/alice/changed.md", changed))
    elsewhere = folder / "elsewhere"
    linked = write_content(elsewhere, "l.md", "linked body")
    os.symlink(elsewhere, root / "document" / "linked")
    chunks.append(chunk(93, "alice", "document/linked/l.md", linked))
    outside = write_content(folder, "outside.md", "outside body")
    chunks.append(chunk(94, "alice", "../outside.md", outside))
    os.mkfifo(root / "document" / "fifo.md")
    chunks.append(chunk(95, "alice", "document/fifo.md", body_sha("x")))
    chunks.append(chunk(96, "alice", None, None))
    for i in range(4):
        rel = f"document/bob/b{i}.md"
        chunks.append(chunk(i, "bob", rel, write_content(root, rel, f"bob body {i}")))
    chunks.append(chunk(9, "bob", "document/shared/s.md", shared))
    write_content(root, "document/alice/unnamed.md", "named by no row")
    with memtree.Store(db) as store:
        store.upsert_chunks(chunks)
    add_dependents(db, [c.id for c in chunks])
    return db


ALICE_ONLY = {f"document/alice/{i % 3}/a{i}.md" for i in range(ALICE_FILES)}
KEPT = [
    ("../outside.md", "unsafe_path"),
    ("document/alice/changed.md", "changed"),
    ("document/fifo.md", "not_regular"),
    ("document/linked/l.md", "symlink"),
    ("document/shared/s.md", "still_named"),
]


def copy_content(src: Path, dst: Path, link_to: Path) -> None:
    """A copy of the content root ``src`` at ``dst``: copytree cannot copy
    the FIFO (made anew) and copies the link as it is (pointed at
    ``link_to``)."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("fifo.md"))
    os.mkfifo(dst / "document" / "fifo.md")
    link = dst / "document" / "linked"
    link.unlink()
    os.symlink(link_to, link)


def files(folder: Path) -> Files:
    """Every regular file under ``folder`` (links not followed)."""
    found = set()
    for top, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(top) / name
            st = path.lstat()
            if path.is_symlink() or not path.is_file() or name.startswith("chunks.db"):
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found.add((path.relative_to(folder).as_posix(), digest, st.st_ino))
    return frozenset(found)


def rows(db: Path) -> tuple[frozenset[str], frozenset[str], frozenset[str], int]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return (
            frozenset(r[0] for r in conn.execute("SELECT id FROM mem_tree_chunks")),
            frozenset(r[0] for r in conn.execute("SELECT chunk_id FROM mem_tree_score")),
            frozenset(r[0] for r in conn.execute("SELECT node_id FROM mem_tree_entity_index")),
            conn.execute("SELECT count(*) FROM memtree_erasure_log").fetchone()[0],
        )
    finally:
        conn.close()


def check_as_left(db: Path) -> int:
    """The state an abort or a fault left, before any open sweeps: alice's
    rows all there, nothing logged and every file of hers there; or her
    rows all gone and each of her files still on disk listed in the log.
    Returns how many log rows there are."""
    conn = sqlite3.connect(db)
    try:
        alice = conn.execute("SELECT count(*) FROM mem_tree_chunks WHERE owner = 'alice'")
        alice_rows = alice.fetchone()[0]
        listed = [r[0] for r in conn.execute("SELECT content_path FROM memtree_erasure_log")]
    finally:
        conn.close()
    root = db.parent / "content"
    present = {rel for rel in ALICE_ONLY if (root / rel).exists()}
    if alice_rows:
        assert (alice_rows, listed, present) == (19, [], ALICE_ONLY)
    else:
        assert present <= set(listed), sorted(present - set(listed))
    return len(listed)


def state(db: Path) -> State:
    """Rows, log rows and files once an open has swept (as a user sees it)."""
    memtree.Store(db).close()
    chunks, scores, entities, logged = rows(db)
    return chunks, scores, entities, files(db.parent), logged


def expected_after(before: State) -> State:
    chunks, scores, entities, on_disk, _ = before
    keep = frozenset(c for c in chunks if not c.startswith("alice-"))
    prefix = "content/"
    left = frozenset(f for f in on_disk if f[0][len(prefix) :] not in ALICE_ONLY)
    assert len(on_disk) - len(left) == ALICE_FILES
    return keep, scores & keep, entities & keep, left, 0


def test_erasure_removes_exactly_the_owners_files(tmp_path: Path) -> None:
    db = build(tmp_path / "w")
    before = state(db)
    with memtree.Store(db) as store:
        report = store.erase_owner("alice")
        assert (report.chunks, report.scores, report.entity_rows) == (19, 19, 38)
        assert (report.files_removed, report.files_missing, report.files_pending) == (
            ALICE_FILES,
            0,
            0,
        )
        assert sorted(report.files_kept) == KEPT
        assert report.summaries_derived == 0
        again = store.erase_owner("alice")
        assert (again.chunks, again.files_removed, again.files_kept) == (0, 0, [])
    assert state(db) == expected_after(before)
    assert (tmp_path / "w/content/document/fifo.md").exists()


def test_bad_arguments_change_nothing(tmp_path: Path) -> None:
    db = build(tmp_path / "w")
    before = state(db)
    with memtree.Store(db) as store:
        with pytest.raises(ValueError, match="owner"):
            store.erase_owner("")
        with pytest.raises(TypeError, match="owner"):
            store.erase_owner(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="content_root"):
            store.erase_owner("alice", content_root=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="content_root"):
            store.erase_owner("alice", content_root="a\0b")
    assert state(db) == before


TREE = "INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms) VALUES ('t', 'source', 's', 1)"


def test_summaries_that_cover_the_owner_are_counted_and_kept(tmp_path: Path) -> None:
    db = build(tmp_path / "w")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(TREE)
        for sid, children in [("s1", ["alice-000", "bob-000"]), ("s2", ["bob-001"])]:
            conn.execute(
                "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, child_ids_json, "
                "content, token_count, time_range_start_ms, time_range_end_ms, sealed_at_ms) "
                "VALUES (?, 't', 'source', 1, ?, 'x', 1, 1, 1, 1)",
                (sid, json.dumps(children)),
            )
    conn.close()
    with memtree.Store(db) as store:
        assert store.erase_owner("alice").summaries_derived == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM mem_tree_summaries").fetchone() == (2,)
    conn.close()


def test_a_summary_naming_a_file_keeps_it(tmp_path: Path) -> None:
    db = build(tmp_path / "w")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(TREE)
        conn.execute(
            "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, content, token_count, "
            "time_range_start_ms, time_range_end_ms, sealed_at_ms, content_path, content_sha256) "
            "VALUES ('s1', 't', 'source', 1, 'x', 1, 1, 1, 1, 'document/alice/1/a1.md', ?)",
            (body_sha("alice body 1"),),
        )
    conn.close()
    with memtree.Store(db) as store:
        report = store.erase_owner("alice")
    assert ("document/alice/1/a1.md", "still_named") in report.files_kept
    assert report.files_removed == ALICE_FILES - 1
    assert (tmp_path / "w/content/document/alice/1/a1.md").is_file()


def test_an_explicit_root_and_the_async_face(tmp_path: Path) -> None:
    import asyncio

    from memtree.aio import AsyncStore

    db = build(tmp_path / "w")
    moved = tmp_path / "moved-content"
    shutil.move(str(tmp_path / "w" / "content"), str(moved))

    async def erase() -> memtree.ErasureReport:
        async with AsyncStore.connect(db) as store:
            return await store.erase_owner("alice", content_root=moved)

    report = asyncio.run(erase())
    assert report.files_removed == ALICE_FILES
    assert not any((moved / rel).exists() for rel in ALICE_ONLY)
    assert (moved / "document/bob/b0.md").is_file()


def test_an_open_with_an_empty_log_writes_nothing(tmp_path: Path) -> None:
    db = build(tmp_path / "w")
    memtree.Store(db).close()
    testing.reset_io_stats(db)
    memtree.Store(db).close()
    stats = testing.io_stats(db)
    assert (stats["writes"], stats["syncs_total"], stats["commits"]) == (0, 0, 0)


@pytest.fixture
def work() -> Iterator[Path]:
    """Where the abort and fault loops run: RAM-backed where possible (see
    ``ram_folder``). Aborts and injected faults sit above the file system;
    on a disk the runs' fsyncs took the time."""
    with ram_folder("memtree-erase-") as folder:
        yield folder


ERASER = textwrap.dedent(
    """
    import sys, memtree
    from memtree import testing
    root = sys.argv[3] if len(sys.argv) > 3 else None
    testing.abort_erasure_at(int(sys.argv[2]))
    with memtree.Store(sys.argv[1]) as store:
        store.erase_owner("alice", content_root=root)
    print("done", flush=True)
    """
)


def test_an_abort_at_every_step_leaves_no_listed_file_and_touches_no_other(
    work: Path,
) -> None:
    tmp_path = work
    template = tmp_path / "template"
    build(template)
    before = state(template / "chunks.db")
    after = expected_after(before)
    finished_by_open = 0
    for n in range(1, 200):
        work = tmp_path / f"run-{n}"
        shutil.copytree(template, work, symlinks=True, ignore=shutil.ignore_patterns("content"))
        copy_content(template / "content", work / "content", work / "elsewhere")
        db = work / "chunks.db"
        run_before = state(db)
        child = subprocess.run(
            [sys.executable, "-c", ERASER, str(db), str(n)], capture_output=True, text=True
        )
        if child.returncode == 0:
            assert child.stdout.strip() == "done"
            assert state(db) == expected_after(run_before)
            break
        assert child.returncode < 0, child.stderr
        finished_by_open += check_as_left(db) > 0
        seen = state(db)
        assert seen[4] == 0, f"step {n}: the open left log rows"
        assert seen in (run_before, expected_after(run_before)), f"step {n}"
        if n == 1:
            assert seen == run_before, "an abort inside the transaction erases nothing"
        else:
            assert seen == expected_after(run_before), f"step {n}"
        shutil.rmtree(work)
    else:
        pytest.fail("the erasure never finished")
    # The end of the transaction, its commit, two steps per file, and one
    # batch's end and commit: every one was a crash point.
    assert n - 1 == 2 + 2 * ALICE_FILES + 2
    assert finished_by_open >= 2 * ALICE_FILES
    assert after != before


def test_an_open_leaves_another_roots_files_to_an_explicit_sweep(tmp_path: Path) -> None:
    db = build(tmp_path / "w")
    moved = tmp_path / "moved-content"
    shutil.move(str(tmp_path / "w" / "content"), str(moved))
    # Aborted right after the commit: every file is still logged.
    child = subprocess.run(
        [sys.executable, "-c", ERASER, str(db), "2", str(moved)], capture_output=True
    )
    assert child.returncode < 0
    with memtree.Store(db) as store:
        assert all((moved / rel).is_file() for rel in ALICE_ONLY), "not the open's root"
        assert rows(db)[3] == ALICE_FILES + len(KEPT) - 1
        sweep = store.sweep_erased_files(content_root=moved)
        assert (sweep.removed, sweep.pending) == (ALICE_FILES, 0)
        assert sorted(sweep.kept) == [k for k in KEPT if k[1] != "unsafe_path"]
    assert not any((moved / rel).exists() for rel in ALICE_ONLY)


@pytest.mark.parametrize("method", ["xWrite", "xSync"])
@pytest.mark.parametrize("persistent", [False, True])
def test_a_fault_at_every_io_erases_all_or_nothing(
    work: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    tmp_path = work
    template = tmp_path / "template"
    build(template)
    base = tmp_path / "base.db"
    shutil.copy2(template / "chunks.db", base)

    def fresh_content(store: memtree.Store) -> None:
        # Each run's copy of the database shares tmp_path/content: lay it anew.
        root = Path(store.path).parent / "content"
        shutil.rmtree(root, ignore_errors=True)
        copy_content(template / "content", root, template / "elsewhere")

    def seen(db: Path) -> tuple[frozenset[str], frozenset[tuple[str, str]], int]:
        check_as_left(db)
        chunks, _, _, on_disk, logged = state(db)
        content = frozenset((p, d) for p, d, _ in on_disk if p.startswith("content/"))
        return chunks, content, logged

    fresh = tmp_path / "probe.db"
    shutil.copy2(base, fresh)
    with memtree.Store(fresh) as store:
        fresh_content(store)
    before = seen(fresh)
    with memtree.Store(fresh) as store:
        store.erase_owner("alice")
    after = seen(fresh)
    assert before != after and after[2] == 0
    fresh.unlink()

    fired, rolled_back = fault_loop(
        tmp_path,
        base,
        method,
        persistent,
        lambda store: store.erase_owner("alice"),
        state=seen,
        outcomes={before, after},
        before=before,
        codes=(ResultCode.IOERR,),
        primary_code=True,
        prepare=fresh_content,
    )
    print(f"{method} persistent={persistent}: {fired} faults, {rolled_back} rolled back")
    # Faults in the transaction roll back; faults after its commit (in the
    # file batches) leave the log, which the next open finished.
    assert rolled_back >= 1 and fired - rolled_back >= 1


def test_cli_erase_owner(tmp_path: Path) -> None:
    db = build(tmp_path / "w")
    run = [sys.executable, "-m", "memtree", "erase-owner"]
    out = subprocess.run([*run, str(db), "alice", "--json"], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr  # done, with files kept
    report: dict[str, object] = json.loads(out.stdout)
    assert report["chunks"] == 19 and report["files_removed"] == ALICE_FILES
    kept = report["files_kept"]
    assert isinstance(kept, list)
    assert sorted((k["path"], k["reason"]) for k in kept) == KEPT
    out = subprocess.run([*run, str(db), "bob"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "files_removed: 5" in out.stdout
    missing = subprocess.run([*run, str(tmp_path / "none.db"), "x"], capture_output=True)
    assert missing.returncode == 3
    empty = subprocess.run([*run, str(db), ""], capture_output=True, text=True)
    assert empty.returncode == 2 and "owner" in empty.stderr
