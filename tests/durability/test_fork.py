"""fork() while a thread is inside a transaction (issue 9, item 7).

A child process must get working stores of its own and never hang: a fresh
connection cache, never the parent's connection or locks. A handle the child
inherited raises ``ForkedStoreError`` instead of waiting on a mutex that a
parent thread held at the fork.

The parent's thread is held inside its transaction by another process's
SQLite lock (a second process, since POSIX locks of one process never block
each other): either waiting for RESERVED at ``BEGIN IMMEDIATE`` (holding the
connection mutex) or, with RESERVED and PENDING already taken, waiting for
EXCLUSIVE at commit (holding the file locks too).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import memtree
import pytest
from memtree.testing import method_calls
from support import ChunkFactory, _make_chunk

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
    # Python 3.12+ warns that forking a threaded process may deadlock the
    # child; proving memtree does not is the point of these tests.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILD_TIMEOUT = 30.0
MISUSE = 21

# What the other process holds: RESERVED makes the memtree writer wait at
# BEGIN IMMEDIATE; SHARED lets it take RESERVED and PENDING and wait at commit.
HOLD_SQL = {
    "begin": "BEGIN IMMEDIATE",
    "commit": "BEGIN; SELECT count(*) FROM mem_tree_chunks",
}

HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
for sql in sys.argv[2].split(";"):
    conn.execute(sql).fetchall()
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@contextmanager
def _lock_held_elsewhere(db: Path, sql: str) -> Iterator[Callable[[], None]]:
    """Another process holds a SQLite lock on ``db``; yields its release."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), sql],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    stdin = holder.stdin
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            stdin.write("\n")
            stdin.close()
            holder.wait(timeout=CHILD_TIMEOUT)

    try:
        assert holder.stdout.readline().strip() == "held"
        yield release
    finally:
        release()
        holder.stdout.close()


def _start_child(child: Callable[[], int]) -> int:
    """Runs ``child`` in a forked process, which exits with its result."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 99
        try:
            code = child()
        except BaseException:
            traceback.print_exc()
            code = 98
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def _wait(pid: int) -> int:
    """The child's exit code. A child that does not finish within
    CHILD_TIMEOUT is killed and fails the test."""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung for {CHILD_TIMEOUT:.0f}s")
        time.sleep(0.02)


def _fork(child: Callable[[], int]) -> int:
    return _wait(_start_child(child))


def _child_checks(workspace: Path, inherited: memtree.Store, new_row: int) -> int:
    """The child's part: exit 0 when every check holds, else the check's
    number. The child adds chunk ``new_row``."""
    try:
        inherited.count_chunks()
        return 1
    except memtree.ForkedStoreError as err:
        if (err.extended_code, err.path) != (MISUSE, str(inherited.path)):
            return 2
    # Inherited handles refuse writes and the journal-mode read too, and
    # dropping one must not touch the parent's connection.
    for call in (
        lambda: inherited.upsert_chunks([_make_chunk(900)]),
        lambda: inherited.journal_mode,
    ):
        try:
            call()
            return 3
        except memtree.ForkedStoreError:
            pass
    with memtree.Store.open(workspace) as store:
        if store.journal_mode != "truncate":
            return 4
        # The parent's writer may commit between these calls: the count
        # can only grow, by at least the child's row.
        before = store.count_chunks()
        if store.upsert_chunks([_make_chunk(new_row)]) != 1:
            return 5
        if store.count_chunks() < before + 1:
            return 5
        if store.get_chunk(f"chunk-{new_row:05d}") is None:
            return 6
        if store.check(full=True) != ["ok"]:
            return 7
    inherited.close()
    return 0


def _upsert_into(store: memtree.Store, chunks: list[memtree.Chunk], out: list[object]) -> None:
    out.append(store.upsert_chunks(chunks))


@pytest.mark.parametrize("waits_at", sorted(HOLD_SQL))
def test_child_of_a_fork_during_a_transaction_gets_a_working_store(
    tmp_path: Path, make_chunk: ChunkFactory, waits_at: str
) -> None:
    store = memtree.Store.open(tmp_path)
    store.upsert_chunks([make_chunk(0)])
    db = store.path
    batch = [make_chunk(i) for i in range(1, 101)]
    for fork_no in range(5):
        with _lock_held_elsewhere(db, HOLD_SQL[waits_at]) as release:
            locks_before = method_calls(db, "xLock")
            outcome: list[object] = []
            writer = threading.Thread(
                target=_upsert_into, args=(store, batch, outcome), daemon=True
            )
            writer.start()
            # The writer retries its lock under the busy handler: it is
            # inside its transaction, holding the connection mutex.
            deadline = time.monotonic() + 10
            while method_calls(db, "xLock") < locks_before + 4:
                assert time.monotonic() < deadline, "the writer never reached the lock"
                time.sleep(0.005)
            assert writer.is_alive()
            pid = _start_child(functools.partial(_child_checks, tmp_path, store, 1000 + fork_no))
            # Let go only now: the child's open then waits for the parent's
            # commit like any other process would.
            release()
            code = _wait(pid)
        writer.join(timeout=CHILD_TIMEOUT)
        assert code == 0, f"fork {fork_no + 1}: child check {code} failed"
        assert outcome == [len(batch)], "the parent's write was lost"
    # The parent's store is untouched and holds the children's rows too.
    assert store.count_chunks() == 1 + len(batch) + 5
    assert store.check(full=True) == ["ok"]
    store.close()


def test_child_of_an_idle_store_reopens_and_parent_keeps_working(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    store = memtree.Store.open(tmp_path)
    store.upsert_chunks([make_chunk(0)])
    assert _fork(lambda: _child_checks(tmp_path, store, 1)) == 0
    # A grandchild: the generation moves on again.
    assert _fork(lambda: _fork(lambda: _child_checks(tmp_path, store, 2))) == 0
    store.upsert_chunks([make_chunk(3)])
    assert store.count_chunks() == 4
    store.close()


def test_forks_during_a_write_loop_never_hang(tmp_path: Path) -> None:
    """Two threads write and read without pause while the main thread forks:
    at any instant one of them may hold an allocator, page-cache or file-lock
    mutex inside SQLite. Each child must open, write and read back."""
    store = memtree.Store.open(tmp_path)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn(first: int) -> None:
        try:
            i = 0
            while not stop.is_set():
                start = first + i % 5000
                store.upsert_chunks([_make_chunk(start + j) for j in range(300)])
                store.list_chunks(limit=500)
                i += 300
        except BaseException as err:  # surfaced by the assertion below
            errors.append(err)

    def child(fork_no: int) -> int:
        with memtree.Store.open(tmp_path) as own:
            own.upsert_chunks([_make_chunk(50_000 + fork_no)])
            return 0 if own.get_chunk(f"chunk-{50_000 + fork_no:05d}") else 1

    writers = [threading.Thread(target=churn, args=(n * 10_000,)) for n in range(2)]
    for w in writers:
        w.start()
    try:
        time.sleep(0.2)
        codes = [_fork(functools.partial(child, fork_no)) for fork_no in range(20)]
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert errors == []
    assert codes == [0] * 20
    assert store.check(full=True) == ["ok"]
    store.close()
