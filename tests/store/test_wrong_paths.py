"""Wrong paths are refused unchanged (issue 18, points 4, 5 and 7).

``memtree.Store(path)`` and ``memtree recover`` refuse a file that is not an
SQLite database, a symbolic link, a missing folder or file (recover), and any
FIFO, device, socket or directory at the database or a side-file name — with
a typed error at once, and the folder exactly as it was (names, kinds and a
digest of every regular file). Anything that could block runs in a
subprocess with a timeout, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree import ResultCode
from support import ChunkFactory

pytestmark = pytest.mark.skipif(os.name == "nt", reason="FIFOs, sockets and links are POSIX")

EXE = Path(sys.executable).parent / "memtree"
#: Far above any of these calls (milliseconds), far below "for ever".
HANG = 60
PATH_COMMANDS = ("doctor", "stats", "migrate", "recover")
EXIT_NOTHING_THERE, EXIT_NOT_MEMTREE, EXIT_REFUSED_PATH = 3, 4, 5


def listing(folder: Path) -> dict[str, tuple[str, str]]:
    """Every name under ``folder`` with its kind and content: a SHA-256 for a
    regular file, the target for a link (never followed)."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            out[str(path.relative_to(folder))] = ("link", os.readlink(path))
        elif stat.S_ISREG(mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(folder))] = ("file", digest)
        else:
            out[str(path.relative_to(folder))] = (stat.filemode(mode)[0], "")
    return out


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(EXE), *map(str, args)], capture_output=True, text=True, timeout=HANG, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"memtree {' '.join(map(str, args))} blocked for {HANG} s")


def in_subprocess(code: str, *args: str | Path) -> str:
    """Runs ``code`` in a fresh interpreter; its stdout, or a failure if it
    blocks (a FIFO opened for reading waits for a writer for ever)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"blocked for {HANG} s: {code}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


OPEN_AND_REPORT = """
import sys, memtree
try:
    memtree.Store(sys.argv[1]).close()
    print("opened")
except memtree.MemtreeError as e:
    print(type(e).__name__, e.name, e.transient)
"""


def memtree_db(path: Path, chunks: list[memtree.Chunk]) -> Path:
    with memtree.Store(path) as store:
        store.upsert_chunks(chunks)
    return path


# --- not an SQLite database ---------------------------------------------------


@pytest.mark.parametrize("content", [b"my notes\n" * 50, b"SQLite", b"SQLite format 2\x00" * 8])
def test_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path: Path, content: bytes) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(content)
    before = listing(tmp_path)
    with pytest.raises(memtree.PathRefusedError) as info:
        memtree.Store(notes)
    assert info.value.extended_code == ResultCode.NOTADB
    assert info.value.name == "SQLITE_NOTADB" and not info.value.transient
    assert info.value.path == str(notes)
    assert listing(tmp_path) == before, "renamed, written or created something"
    proc = cli("recover", notes)
    assert proc.returncode == 2, proc.stdout
    assert listing(tmp_path) == before


def test_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    # The documented choice: SQLite takes a 0-byte file for a new database,
    # it holds nothing to lose, and `touch chunks.db` makes one.
    empty = tmp_path / "chunks.db"
    empty.write_bytes(b"")
    with memtree.Store(empty) as store:
        assert store.count_chunks() == 0
    assert empty.read_bytes().startswith(b"SQLite format 3\x00")


def test_the_workspace_database_is_still_quarantined(tmp_path: Path) -> None:
    # memory_tree/chunks.db is memtree's by its name: a damaged header there
    # is corruption (moved aside and kept), not somebody else's file.
    with memtree.Store.open(tmp_path) as store:
        db = store.path
    garbage = b"this header was overwritten" * 200
    db.write_bytes(garbage)
    with pytest.raises(memtree.CorruptDatabaseError):
        memtree.Store.open(tmp_path)
    kept = [p for p in db.parent.iterdir() if p.is_file() and p.read_bytes() == garbage]
    assert kept, "the damaged bytes were kept beside the fresh database"
    with memtree.Store.open(tmp_path) as store:
        assert store.count_chunks() == 0


# --- symbolic links -------------------------------------------------------------


def test_a_linked_database_is_refused_and_its_target_untouched(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    target = memtree_db(elsewhere / "real.db", [make_chunk(i) for i in range(3)])
    text = elsewhere / "notes.txt"
    text.write_text("not a database\n")
    link = home / "chunks.db"
    before = listing(tmp_path)
    for pointed in (target, text):
        link.unlink(missing_ok=True)
        link.symlink_to(pointed)
        before = listing(tmp_path)
        with pytest.raises(memtree.PathRefusedError) as info:
            memtree.Store(link)
        assert info.value.extended_code == ResultCode.CANTOPEN_SYMLINK
        assert cli("recover", link).returncode == EXIT_REFUSED_PATH
        assert listing(tmp_path) == before, "renamed or replaced through the link"
    # The workspace's canonical name is held to the same rule.
    (home / "memory_tree").mkdir()
    (home / "memory_tree" / "chunks.db").symlink_to(target)
    before = listing(tmp_path)
    with pytest.raises(memtree.PathRefusedError):
        memtree.Store.open(home)
    assert listing(tmp_path) == before


def test_a_dangling_link_is_never_created_through(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    link = home / "chunks.db"
    link.symlink_to(elsewhere / "created-through-the-link.db")
    before = listing(tmp_path)
    with pytest.raises(memtree.PathRefusedError) as info:
        memtree.Store(link)
    assert info.value.extended_code == ResultCode.CANTOPEN_SYMLINK
    for command in PATH_COMMANDS:
        assert cli(command, link).returncode == EXIT_REFUSED_PATH, command
    assert listing(tmp_path) == before
    assert list(elsewhere.iterdir()) == []


def test_a_linked_journal_is_refused(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    db = memtree_db(tmp_path / "chunks.db", [make_chunk()])
    journal = Path(f"{db}-journal")
    journal.unlink(missing_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    journal.symlink_to(outside / "journal")
    before = listing(tmp_path)
    with pytest.raises(memtree.PathRefusedError) as info:
        memtree.Store(db)
    assert info.value.extended_code == ResultCode.CANTOPEN_SYMLINK
    assert listing(tmp_path) == before


# --- missing paths ------------------------------------------------------------------


def test_recover_never_creates_a_database(tmp_path: Path) -> None:
    before = listing(tmp_path)
    for missing in (tmp_path / "typo.db", tmp_path / "no-such-folder" / "chunks.db"):
        proc = cli("recover", missing)
        assert proc.returncode == EXIT_NOTHING_THERE, (proc.stdout, proc.stderr)
        assert "no database" in proc.stdout
    assert listing(tmp_path) == before


def test_a_missing_folder_is_a_permanent_error_not_a_transient_one() -> None:
    # A Worker backs off and retries a TransientIOError: a typo must not be one.
    out = in_subprocess(OPEN_AND_REPORT, "/nonexistent/dir/x.db")
    assert out == "PathRefusedError SQLITE_CANTOPEN False"


# --- non-regular files: never a blocking open ----------------------------------------


def plant_fifo(db: Path, suffix: str) -> Path:
    name = Path(f"{db}{suffix}")
    name.unlink(missing_ok=True)
    os.mkfifo(name)
    return name


@pytest.mark.parametrize("suffix", ["", "-journal", "-wal"])
def test_a_fifo_is_refused_at_once_by_every_entry_point(
    tmp_path: Path, suffix: str, make_chunk: ChunkFactory
) -> None:
    db = tmp_path / "chunks.db"
    if suffix:
        memtree_db(db, [make_chunk()])
    fifo = plant_fifo(db, suffix)
    before = listing(tmp_path)
    out = in_subprocess(OPEN_AND_REPORT, db)
    assert out == "PathRefusedError SQLITE_CANTOPEN False"
    for command in PATH_COMMANDS:
        proc = cli(command, db)
        assert proc.returncode == EXIT_REFUSED_PATH, (command, proc.stdout, proc.stderr)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert listing(tmp_path) == before, "a command created or changed a file"


def test_a_fifo_planted_after_the_open_fails_the_read_instead_of_blocking(
    tmp_path: Path,
) -> None:
    # SQLite opens a journal O_RDONLY when it finds one at the next read: the
    # VFS refuses the open of a non-regular file there (rust/sys/path_guard.rs),
    # and the refusal is the permanent PathRefusedError (more cases in
    # tests/durability/test_planted_after_open.py).
    out = in_subprocess(
        """
        import os, sys, memtree
        db = sys.argv[1]
        store = memtree.Store(db)
        store.upsert_chunks([memtree.Chunk("c", "text", "chat", "s", "alice", 0)])
        os.unlink(db + "-journal")
        os.mkfifo(db + "-journal")
        try:
            print("read", store.count_chunks())
        except memtree.MemtreeError as e:
            print(type(e).__name__, e.name)
        """,
        tmp_path / "chunks.db",
    )
    assert out == "PathRefusedError SQLITE_CANTOPEN", out
    assert stat.S_ISFIFO(Path(f"{tmp_path / 'chunks.db'}-journal").lstat().st_mode)


def test_a_device_socket_or_directory_is_refused(tmp_path: Path) -> None:
    out = in_subprocess(OPEN_AND_REPORT, os.devnull)
    assert out == "PathRefusedError SQLITE_CANTOPEN False"
    for command in PATH_COMMANDS:
        assert cli(command, os.devnull).returncode == EXIT_REFUSED_PATH, command
    assert not os.path.lexists(f"{os.devnull}-journal"), "a journal was left beside the device"

    sock_path = tmp_path / "s.db"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        assert in_subprocess(OPEN_AND_REPORT, sock_path) == "PathRefusedError SQLITE_CANTOPEN False"
        assert cli("recover", sock_path).returncode == EXIT_REFUSED_PATH

    folder = tmp_path / "folder.db"
    folder.mkdir()
    out = in_subprocess(OPEN_AND_REPORT, folder)
    assert out == "PathRefusedError SQLITE_CANTOPEN_ISDIR False"
    journal_dir = Path(f"{tmp_path / 'other.db'}-journal")
    journal_dir.mkdir()
    out = in_subprocess(OPEN_AND_REPORT, tmp_path / "other.db")
    assert out == "PathRefusedError SQLITE_CANTOPEN_ISDIR False"
    assert not (tmp_path / "other.db").exists()


# --- one exit-status table ------------------------------------------------------------


def test_every_path_command_exits_alike(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    import sqlite3

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    conn.close()
    linked = tmp_path / "linked.db"
    linked.symlink_to(memtree_db(tmp_path / "real.db", [make_chunk()]))
    cases: dict[str, tuple[Path, int]] = {
        "missing file": (tmp_path / "nowhere.db", EXIT_NOTHING_THERE),
        "missing folder": (tmp_path / "nowhere" / "x.db", EXIT_NOTHING_THERE),
        "another application's database": (foreign, EXIT_NOT_MEMTREE),
        "a symbolic link": (linked, EXIT_REFUSED_PATH),
    }
    before = listing(tmp_path)
    for what, (path, code) in cases.items():
        for command in PATH_COMMANDS:
            proc = cli(command, path)
            assert proc.returncode == code, (what, command, proc.stdout, proc.stderr)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("command", [None, *PATH_COMMANDS])
def test_help_lists_every_exit_status(command: str | None) -> None:
    proc = cli(*([command] if command else []), "--help")
    assert proc.returncode == 0
    for code in ("0  ok", "1  needs attention", "2  damaged", "3  nothing there"):
        assert code in proc.stdout, (command, proc.stdout)
    assert "4  not a memtree database" in proc.stdout
    assert "5  refused path" in proc.stdout


# --- point 7: a chunk larger than SQLite stores ---------------------------------------


def test_a_chunk_past_sqlite_max_length_is_refused_by_chunk(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    store.upsert_chunks([make_chunk(0)])
    before = listing(store.path.parent)
    content = "x" * 1_000_000_001
    kwargs: dict[str, Any] = {"content": content}
    with pytest.raises(ValueError, match="content") as info:
        make_chunk(1, **kwargs)
    del content, kwargs
    assert "SQLITE_MAX_LENGTH" in str(info.value)
    assert store.count_chunks() == 1
    assert listing(store.path.parent) == before
