"""Helpers shared by the tests: a chunk builder (``_make_chunk``, behind the
``make_chunk`` fixture), and for the fault-tolerance tests snapshots of a
database's content and child processes that run memtree until they crash
or finish."""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import closing, contextmanager, suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import memtree
from memtree import testing

# CI runs a short version; `make soak` raises this.
SOAK_SCALE = int(os.environ.get("MEMTREE_SOAK_SCALE", "1"))

BASE_TIME = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)

# memtree's busy budget (rust/db/busy.rs), and the one the tests that wait a
# lock out set instead (the `short_busy_timeout` fixture): long enough for
# the handler's many retries, short enough not to cost the suite 5 s a test.
DEFAULT_BUSY_TIMEOUT = 5.0
SHORT_BUSY_TIMEOUT = 0.3

ChunkFactory = Callable[..., memtree.Chunk]
T = TypeVar("T")


def _make_chunk(i: int = 0, **overrides: Any) -> memtree.Chunk:
    fields: dict[str, Any] = {
        "id": f"chunk-{i:05d}",
        "content": f"content of chunk {i} " + "lorem ipsum " * 4,
        "source_kind": memtree.SourceKind.CHAT,
        "source_id": f"source-{i % 3}",
        "owner": "alice" if i % 2 == 0 else "bob",
        "timestamp": BASE_TIME + timedelta(minutes=i),
        "token_count": 12,
        "seq_in_source": i,
        # Fixed, so two chunks built from the same arguments compare equal.
        "created_at": BASE_TIME,
    }
    fields.update(overrides)
    positional = [
        fields.pop(k) for k in ("id", "content", "source_kind", "source_id", "owner", "timestamp")
    ]
    return memtree.Chunk(*positional, **fields)


# Every public field of a Chunk, for field-by-field comparisons.
CHUNK_FIELDS = [
    "id", "content", "source_kind", "source_id", "source_ref", "owner", "timestamp",
    "time_range", "tags", "token_count", "seq_in_source", "created_at",
    "lifecycle_status", "embedding", "content_path", "content_sha256", "timestamp_ms",
]  # fmt: skip


def full_chunk(t0: int) -> memtree.Chunk:
    """A chunk with every field set, non-ASCII text, a NUL byte and tags
    that need JSON escapes (the packed-row tests' hard case)."""
    return memtree.Chunk(
        "ç-😀",
        "zero\x00byte, é and 😀",
        "email",
        "src",
        "owner",
        t0,
        source_ref="ref",
        time_range=(t0 - 5, t0 + 5),
        tags=['a"b', "ç"],
        token_count=7,
        seq_in_source=3,
        created_at=t0 + 1,
        lifecycle_status="indexed",
        embedding=[0.5, -1.25, 3.0],
        content_path="bodies/x.md",
        content_sha256="ab" * 32,
    )


# Chunk rows memtree cannot read, as another writer may leave them:
# (column, SQL value); `corrupt_chunk_column` writes one.
BAD_CHUNK_VALUES = [
    ("tags_json", "{}"),
    ("tags_json", "[1]"),
    ("source_kind", "fax"),
    ("timestamp_ms", "'soon'"),
    ("embedding", "x'0000803f00'"),
    ("content", "x'ff'"),
]


def corrupt_chunk_column(db: Path, column: str, value: str, where: str = "") -> None:
    """Writes a `BAD_CHUNK_VALUES` value into `column` of the chunks
    `where` selects (all when empty), through stdlib sqlite3. The
    connection is closed here: a caller's `pytest.raises` traceback keeps
    its frame alive, and CPython 3.13 warns of a connection collected
    unclosed."""
    with closing(reference_connection(db)) as conn, conn:
        if value.startswith("x'") and column == "content":
            conn.execute(f"UPDATE mem_tree_chunks SET {column} = CAST({value} AS TEXT) {where}")
        elif value.startswith(("x'", "'")):
            conn.execute(f"UPDATE mem_tree_chunks SET {column} = {value} {where}")
        else:
            conn.execute(f"UPDATE mem_tree_chunks SET {column} = ? {where}", (value,))


def add_dependents(db: Path, chunk_ids: list[str]) -> None:
    """A score row and two entity-index rows per chunk, as the reference writes them."""
    conn = sqlite3.connect(db)
    with conn:
        for cid in chunk_ids:
            conn.execute(
                "INSERT INTO mem_tree_score (chunk_id, total, token_count_signal, "
                "unique_words_signal, metadata_weight, source_weight, interaction_weight, "
                "entity_density, computed_at_ms) VALUES (?, 1, 1, 1, 1, 1, 1, 1, 0)",
                (cid,),
            )
            for entity in ("person:alice", "topic:rust"):
                conn.execute(
                    "INSERT INTO mem_tree_entity_index (entity_id, node_id, node_kind, "
                    "entity_kind, surface, score, timestamp_ms) "
                    "VALUES (?, ?, 'chunk', 'x', 's', 1, 0)",
                    (entity, cid),
                )
    conn.close()


def read_back(db: Path) -> tuple[str, set[str]]:
    """A digest of every chunk row and the set of chunk ids, after asserting
    ``integrity_check`` is ok. Read-write: after a kill or a crash a hot
    journal may need rolling back first, as any reader would. Callers have
    closed every memtree handle on ``db``."""
    conn = sqlite3.connect(db)
    try:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        rows = conn.execute(
            "SELECT id, content, lifecycle_status, timestamp_ms FROM mem_tree_chunks ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    assert integrity == ["ok"], f"integrity_check: {integrity}"
    return hashlib.sha256(repr(rows).encode()).hexdigest(), {r[0] for r in rows}


def content_digest(db: Path) -> str:
    """The digest half of :func:`read_back` (integrity asserted)."""
    return read_back(db)[0]


def after_digest(db: Path, batch: list[memtree.Chunk]) -> str:
    """Digest of the healthy `db` with `batch` applied, on a scratch copy."""
    scratch = db.parent / "scratch-after" / db.name
    scratch.parent.mkdir(exist_ok=True)
    shutil.copy2(db, scratch)
    with memtree.Store(scratch) as store:
        store.upsert_chunks(batch)
    digest = content_digest(scratch)
    shutil.rmtree(scratch.parent)
    return digest


def chunk_ids(db: Path) -> set[str]:
    """The chunk ids half of :func:`read_back` (integrity asserted)."""
    return read_back(db)[1]


def side_files(db: Path) -> set[str]:
    """The suffixes (``-journal``, ``-wal``, ``-shm``) of db's side files present."""
    return {p.name[len(db.name) :] for p in db.parent.glob(db.name + "-*")}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strand_a_wal_as_the_last_release_did(db: Path) -> Path:
    """The release before this one moved a ``-wal`` it could not checkpoint
    aside as ``<db>-wal.unrecovered-<ms>`` after restoring the database it
    belonged to: recreate that state."""
    wal = Path(str(db) + "-wal")
    stranded = db.with_name(f"{db.name}-wal.unrecovered-{int(time.time() * 1000)}")
    wal.rename(stranded)
    Path(str(db) + "-shm").unlink(missing_ok=True)
    return stranded


def corrupt_last_index_page(db: Path) -> None:
    """Overwrites the last page that belongs to an index of mem_tree_chunks."""
    conn = sqlite3.connect(db)
    pages = [
        r[0]
        for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name LIKE 'idx_mem_tree_chunks%' ORDER BY pageno"
        )
    ]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    assert pages, "the fixture has chunk indexes"
    data = bytearray(db.read_bytes())
    target = pages[-1] - 1
    data[target * page_size : (target + 1) * page_size] = b"\xa5" * page_size
    data[24:28] = (int.from_bytes(data[24:28], "big") + 1).to_bytes(4, "big")
    db.write_bytes(bytes(data))


CHILD_PRELUDE = """
import sys
from datetime import datetime, timedelta, timezone
import memtree
from memtree import testing

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)

def chunk(i, content=None):
    return memtree.Chunk(
        f"chunk-{i:05d}", content or f"content {i} " * 20, "chat", f"src-{i % 4}",
        "alice", BASE + timedelta(seconds=i), token_count=5, seq_in_source=i)
"""


HOLD_TRANSACTION = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute(sys.argv[2])
conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
print("holding", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
"""


def read_transaction_in_another_process(db: Path) -> ContextManager[Callable[[], None]]:
    """Another *process* holds a read transaction on ``db`` (so SQLite cannot
    leave WAL) until the yielded ``release()`` is called or the block ends.
    It must be a process: two SQLite libraries in one process do not see
    each other's POSIX locks."""
    return transaction_in_another_process(db, "BEGIN")


def write_lock_in_another_process(db: Path) -> ContextManager[Callable[[], None]]:
    """Another process holds the EXCLUSIVE lock on ``db`` (rollback journal:
    no connection can even read) until ``release()`` or the block's end."""
    return transaction_in_another_process(db, "BEGIN EXCLUSIVE")


def wait_for_a_write_lock_in_native_code(db: Path, call: Callable[[], T]) -> T:
    """Runs ``call`` in a thread while another process holds the write lock
    on ``db``, and returns its result once the lock is released. Proves the
    call waits in native code with the GIL released, without timing it:
    this thread watches the busy handler's xLock retries and then releases
    the lock. Were the GIL held while the call waits, this thread could do
    neither, and the call would end in BusyError after the busy timeout
    before the watch saw it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except memtree.MemtreeError as e:  # BusyError, were the GIL held
            outcome["error"] = e

    with write_lock_in_another_process(db) as release:
        retries_before = testing.method_calls(db, "xLock")
        caller = threading.Thread(target=run)
        caller.start()
        while testing.method_calls(db, "xLock") < retries_before + 3:
            assert caller.is_alive(), outcome
            time.sleep(0.001)
        assert caller.is_alive(), "the call waits for the lock"
        release()
    caller.join(timeout=60)
    assert set(outcome) == {"value"}, outcome
    value: T = outcome["value"]
    return value


@contextmanager
def transaction_in_another_process(db: Path, begin: str) -> Iterator[Callable[[], None]]:
    """A child process runs ``begin`` and a read on ``db``, then holds that
    transaction until the yielded ``release()`` is called or the block ends."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_TRANSACTION, str(db), begin],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        stdin = holder.stdin

        def release() -> None:
            if holder.poll() is None:
                stdin.write("\n")
                stdin.flush()
                assert holder.wait(timeout=30) == 0

        yield release
        release()


def run_child(body: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + body, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Runs child bodies as forks of one process that imported memtree once. A
# child's own start (interpreter + imports, ~0.15 s, far more under qemu) was
# most of each crash point's time, and it is not what a crash loop tests:
# the child is still a process of its own, which the crash simulation ends
# with `_exit`. The server never opens a store, so no child inherits a
# connection. The server itself kills a child that runs past its request's
# timeout: only the process that reaps a child can signal it without the
# risk that its pid already names another process. `KILL_SIGNAL` is set
# before the prelude runs, so a test of the runner can make that kill a
# no-op (and the server hang on the child, see test_child_runner.py).
FORK_SERVER = r"""
import json, os, select, signal, sys, time, traceback
KILL_SIGNAL = signal.SIGKILL
exec(compile(sys.argv[1], "<prelude>", "exec"))
template = dict(globals())


def reap(pid, timeout):
    # (wait status, whether the child ran past `timeout` and was killed).
    # Woken by a pidfd where Linux has one, else by polling.
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    deadline = time.monotonic() + timeout
    nap = 0.001
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, False
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if pidfd is None:
                time.sleep(min(nap, left))
                nap = min(nap * 2, 0.05)
            else:
                select.select([pidfd], [], [], left)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    # Not reaped yet, so the pid is still this child's.
    os.kill(pid, KILL_SIGNAL)
    return os.waitpid(pid, 0)[1], True


for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.stdin.close()
            sys.argv = ["-c", *request["args"]]
            exec(compile(request["body"], "<child>", "exec"), dict(template))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    status, overran = reap(pid, request["timeout"])
    answer = {"pid": pid, "code": os.waitstatus_to_exitcode(status), "overran": overran}
    print(json.dumps(answer), flush=True)
"""

ChildRunner = Callable[..., "subprocess.CompletedProcess[str]"]


class ChildTimeout(AssertionError):
    """A child of :func:`child_runner` ran past its timeout and was killed (or
    the fork server did not answer, and it was killed with its children): a
    hung child fails its test instead of hanging the suite."""

    def __init__(self, message: str, pid: int | None, stdout: str, stderr: str) -> None:
        super().__init__(message)
        #: The child's pid (None if the server never said it).
        self.pid = pid
        #: What the child had written when it was killed.
        self.stdout = stdout
        self.stderr = stderr


def _child_name(runs: int, body: str) -> str:
    """``child 3 ('first line of its body')``: which child a failure is about."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return f"child {runs} ({first[:60]!r}{'...' if len(lines) > 1 or len(first) > 60 else ''})"


def _tail(text: str, chars: int = 2000) -> str:
    return text if len(text) <= chars else "..." + text[-chars:]


@contextmanager
def child_runner(
    folder: Path, prelude: str = CHILD_PRELUDE, *, server_grace: float = 30
) -> Iterator[ChildRunner]:
    """Yields ``run(body, *args, timeout=60)``, which does what
    :func:`run_child` does (``prelude + body`` in a child process with
    ``args`` in ``sys.argv[1:]``; its exit code, stdout and stderr) in a fork
    of one server process (see ``FORK_SERVER``), where there is ``fork``;
    elsewhere it is :func:`run_child`. ``folder`` holds the outputs.

    A child still running after ``timeout`` seconds is killed and ``run``
    raises :class:`ChildTimeout`; should the server not answer within
    ``server_grace`` seconds more, it is killed with every child it forked
    (its process group) and ``run`` raises the same. Either way no process
    is left behind and the test fails instead of hanging."""
    if not hasattr(os, "fork"):
        yield lambda body, *args, timeout=60: run_child(body, *args, timeout=timeout)
        return
    with subprocess.Popen(
        [sys.executable, "-c", FORK_SERVER, prelude],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # Its own process group: one signal ends it and every child it forked.
        start_new_session=True,
    ) as server:
        assert server.stdin is not None and server.stdout is not None
        stdin, stdout = server.stdin, server.stdout
        runs = 0
        killed = False  # by kill_server: its exit status says nothing then

        def kill_server() -> None:
            nonlocal killed
            killed = True
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:  # already gone, children too
                pass
            server.wait()

        def run(body: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
            nonlocal runs
            runs += 1
            out, err = folder / f"child-{runs}.out", folder / f"child-{runs}.err"
            request = {
                "body": body,
                "args": list(args),
                "stdout": str(out),
                "stderr": str(err),
                "timeout": timeout,
            }
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
            ready, _, _ = select.select([stdout], [], [], timeout + server_grace)
            if not ready:
                kill_server()
            line = stdout.readline() if ready else ""
            outputs = [p.read_text() if p.exists() else "" for p in (out, err)]
            for p in (out, err):
                p.unlink(missing_ok=True)
            name = _child_name(runs, body)
            if not ready:
                raise ChildTimeout(
                    f"{name} still ran after {timeout} s and the fork server did not answer "
                    f"within {server_grace} s more: killed it and its children; the child's "
                    f"stderr: {_tail(outputs[1])}",
                    None,
                    *outputs,
                )
            assert line, f"the fork server died (rc {server.poll()}) running {name}"
            answer = json.loads(line)
            if answer["overran"]:
                raise ChildTimeout(
                    f"{name}, pid {answer['pid']}, still ran after {timeout} s: killed; "
                    f"its stderr: {_tail(outputs[1])}",
                    answer["pid"],
                    *outputs,
                )
            return subprocess.CompletedProcess(["fork", *args], answer["code"], *outputs)

        try:
            yield run
        except BaseException:
            # The test failed; the server waits for its next request (every
            # run has its answer, or killed it): end of input ends it.
            with suppress(OSError):
                stdin.close()
            try:
                server.wait(timeout=server_grace)
            except subprocess.TimeoutExpired:
                kill_server()
            raise
        stdin.close()
        try:
            rc = server.wait(timeout=server_grace)
        except subprocess.TimeoutExpired:
            kill_server()
            raise AssertionError(
                f"the fork server still ran {server_grace} s after its last request: killed"
            ) from None
        assert killed or rc == 0, f"the fork server exited with {rc}"


# --- the open-time recovery contract (issue 9) --------------------------------
#
# Shared by the fault-loop, crash and full-disk proofs of the open-time paths
# (WAL migration, side-file recovery). Every check reads *copies* made with the
# stdlib, so checking never checkpoints, rolls back or deletes anything of the
# files under test.

# A row of the reference layout, by table: enough columns to tell rows apart.
REFERENCE_KEYS: dict[str, str] = {
    "mem_tree_chunks": "id, content",
    "mem_tree_score": "chunk_id",
    "mem_tree_entity_index": "entity_id, node_id",
    "mem_tree_jobs": "id",
    "mem_tree_ingested_sources": "source_kind, source_id",
}

Rows = frozenset[tuple[object, ...]]


def reference_rows(db: Path) -> Rows:
    """Every row of the reference tables in ``db`` (read through whatever
    ``-wal``/``-journal`` sits beside it), as ``(table, *key)`` tuples, after
    asserting ``integrity_check`` is ok. Opens ``db`` read-write with the
    stdlib: pass a copy (see :func:`rows_via_copy`)."""
    conn = sqlite3.connect(db)
    try:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        assert integrity == ["ok"], f"integrity_check: {integrity}"
        rows: set[tuple[object, ...]] = set()
        for table, cols in REFERENCE_KEYS.items():
            for row in conn.execute(f"SELECT {cols} FROM {table}"):
                rows.add((table, *row))
    finally:
        conn.close()
    return frozenset(rows)


def copy_database(db: Path, dest: Path, suffixes: tuple[str, ...] = ("-wal", "-journal")) -> Path:
    """Copies ``db`` and those of its side files that exist into the new
    folder ``dest`` (same names); returns the copy of ``db``."""
    dest.mkdir(parents=True)
    for suffix in ("", *suffixes):
        src = db.with_name(db.name + suffix)
        if src.exists():
            shutil.copyfile(src, dest / src.name)
    return dest / db.name


def rows_via_copy(db: Path, scratch: Path) -> Rows:
    """:func:`reference_rows` of a copy of ``db`` + ``-wal`` + ``-journal``
    in ``scratch`` (a new folder): what the live database holds, read as any
    SQLite reader would, without touching the originals."""
    return reference_rows(copy_database(db, scratch))


def unrecovered_bundles(db: Path) -> list[Path]:
    """The side bundles ``<db>.unrecovered-<ms>`` (each with its ``-wal``)."""
    return sorted(
        p
        for p in db.parent.glob(db.name + ".unrecovered-*")
        if not p.name.endswith(("-wal", "-shm", "-journal"))
    )


def stray_unrecovered_files(db: Path) -> list[Path]:
    """Files with ``unrecovered`` in their name that belong to no bundle of
    the contract's shape (e.g. a bare ``<db>-wal.unrecovered-<ms>``, which
    no open can read, since its database is gone)."""
    bundles = {b.name for b in unrecovered_bundles(db)}
    stray = []
    for p in db.parent.iterdir():
        if "unrecovered" not in p.name:
            continue
        base = p.name
        for suffix in ("-wal", "-shm", "-journal"):
            base = base.removesuffix(suffix)
        if base not in bundles:
            stray.append(p)
    return sorted(stray)


def bundle_rows(bundle: Path, scratch: Path) -> Rows:
    """The rows of a side bundle, read from a copy of the pair."""
    return reference_rows(copy_database(bundle, scratch, ("-wal",)))


def describe_rows(rows: Rows, limit: int = 4) -> str:
    shown = sorted(rows, key=repr)[:limit]
    return f"{len(rows)} rows, e.g. {shown}"


def open_outcome(db: Path) -> tuple[str, list[str]]:
    """Opens and closes ``memtree.Store(db)``: ``("opened" | error name,
    problems)``. The contract: it opens, or raises a ``MemtreeError``
    carrying ``.code`` and ``.name``; anything else is a problem. Warnings
    are recorded, not raised (a store may warn and still open)."""
    problems: list[str] = []
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            with memtree.Store(db):
                pass
        except memtree.MemtreeError as e:
            code, name = getattr(e, "code", None), getattr(e, "name", None)
            if not (isinstance(code, int) and isinstance(name, str) and name):
                problems.append(f"MemtreeError without code/name: {e!r}")
            return f"{type(e).__name__}({name})", problems
        except Exception as e:  # the contract says never; report, don't crash the loop
            problems.append(f"bare {type(e).__name__}, not a MemtreeError: {e}")
            return type(e).__name__, problems
    return "opened", problems


def legacy_stranded_wals(db: Path) -> list[Path]:
    """``-wal`` files an earlier release moved aside: ``<db>-wal.unrecovered-<ms>``
    (not the ``.base`` copy an open keeps beside one)."""
    return sorted(
        p for p in db.parent.glob(db.name + "-wal.unrecovered-*") if not p.name.endswith(".base")
    )


def legacy_rows(db: Path, wal: Path, scratch: Path) -> Rows:
    """The rows of a legacy stranded ``-wal`` read against (a copy of) the
    database it was moved away from: the base an open kept beside it
    (``<wal>.base``) before writing, else the live database."""
    scratch.mkdir(parents=True)
    base = wal.with_name(wal.name + ".base")
    shutil.copyfile(base if base.exists() else db, scratch / db.name)
    shutil.copyfile(wal, scratch / (db.name + "-wal"))
    return reference_rows(scratch / db.name)


def check_after_fault(
    db: Path, committed: Rows, scratch: Path, *, persistent: bool, stranded_before: bool = False
) -> list[str]:
    """The contract after a fault point, every handle closed: every committed
    row is in the live database read with its ``-wal`` (integrity ok); only
    after a persistent fault may rows be missing there, and then they are in
    a ``<db>.unrecovered-<ms>`` bundle. With ``stranded_before`` (rows that
    started in a ``-wal`` an earlier release moved aside) they may also still
    be there, readable against the live database."""
    try:
        live = rows_via_copy(db, scratch / "live")
    except (AssertionError, sqlite3.Error) as e:
        return [f"live database unreadable: {e}"]
    missing = committed - live
    if not missing:
        return []
    if not (persistent or stranded_before):
        return [f"after a one-shot fault the live database lacks {describe_rows(missing)}"]
    for i, bundle in enumerate(unrecovered_bundles(db)):
        try:
            missing -= bundle_rows(bundle, scratch / f"bundle-{i}")
        except (AssertionError, sqlite3.Error) as e:
            return [f"side bundle {bundle.name} unreadable: {e}"]
    if stranded_before:
        for i, wal in enumerate(legacy_stranded_wals(db)):
            try:
                missing -= legacy_rows(db, wal, scratch / f"legacy-{i}")
            except (AssertionError, sqlite3.Error) as e:
                return [f"stranded {wal.name} unreadable against the live database: {e}"]
    if missing:
        names = sorted(p.name for p in db.parent.iterdir())
        return [f"rows neither live nor in a side file: {describe_rows(missing)}; files {names}"]
    return []


def check_after_clean_reopen(db: Path, committed: Rows, scratch: Path) -> list[str]:
    """The contract after a fault-free ``memtree.Store(db)`` (already run and
    closed): every row live, integrity ok, no ``-wal``, and no side bundle
    whose rows are not all in the live database."""
    problems: list[str] = []
    wal = db.with_name(db.name + "-wal")
    if wal.exists():
        problems.append(f"a -wal ({wal.stat().st_size} bytes) is left after a clean open")
    try:
        live = rows_via_copy(db, scratch / "reopened")
    except (AssertionError, sqlite3.Error) as e:
        return [*problems, f"live database unreadable after a clean open: {e}"]
    if committed - live:
        problems.append(
            f"after a clean open the live database lacks {describe_rows(committed - live)}"
        )
    for i, bundle in enumerate(unrecovered_bundles(db)):
        try:
            unmerged = bundle_rows(bundle, scratch / f"left-{i}") - live
        except (AssertionError, sqlite3.Error) as e:
            problems.append(f"side bundle {bundle.name} left and unreadable: {e}")
            continue
        if unmerged:
            problems.append(f"side bundle {bundle.name} left unmerged: {describe_rows(unmerged)}")
    for stray in stray_unrecovered_files(db):
        if stray.stat().st_size > 0:
            problems.append(f"stranded side file {stray.name} ({stray.stat().st_size} bytes)")
    return problems


def wal_only_template(
    db: Path, scratch: Path, *, chunks: int = 6, wal_frames_only: int = 3
) -> Rows:
    """Builds the reference layout at ``db`` with its last ``wal_frames_only``
    chunks only as frames in ``<db>-wal``; returns every committed row,
    after proving that some of them really exist only in the ``-wal``."""
    from reference_db import create_reference_db  # tests/fixtures, on sys.path via conftest

    ids = create_reference_db(db, chunks=chunks, wal_frames_only=wal_frames_only)
    assert db.with_name(db.name + "-wal").stat().st_size > 0, "rows only in the -wal"
    committed = rows_via_copy(db, scratch / "with-wal")
    assert {r[1] for r in committed if r[0] == "mem_tree_chunks"} == set(ids)
    without_wal = reference_rows(copy_database(db, scratch / "without-wal", ()))
    assert without_wal < committed, "some committed rows must exist only in the -wal"
    return committed


@contextmanager
def ram_folder(prefix: str) -> Iterator[Path]:
    """A fresh folder on a RAM-backed file system where there is one
    (``/dev/shm`` on Linux), else in the system temp folder; removed at the
    end. The open-time loops run thousands of opens at ``synchronous=FULL``:
    on a real disk their fsyncs, not the tests, take the time (measured 49 s
    against 6 s). Injected faults and the crash simulation sit above the
    file system, so what the loops prove does not depend on it."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def loop_over_fault_points(run_point: Callable[[int], bool], what: str, *, limit: int) -> int:
    """SQLite's I/O-error loop: ``run_point(n)`` runs the path once with
    call N of a VFS method failing (once or from then on, as it arms it),
    checks the invariant, and returns whether the fault fired; for N = 1, 2,
    … until a run meets no fault. Returns how many faults fired; fails when
    one still fires at call ``limit - 1`` (the path never ran out of calls)."""
    for n in range(1, limit):
        if not run_point(n):
            return n - 1
    raise AssertionError(f"{what}: the fault still fired at call {limit - 1}")


def fault_loop(
    tmp_path: Path,
    base: Path,
    method: testing.VfsMethod,
    persistent: bool,
    operation: Callable[[memtree.Store], object],
    *,
    state: Callable[[Path], object],
    outcomes: set[object],
    before: object,
    codes: tuple[int, ...] = (memtree.ResultCode.IOERR,),
    primary_code: bool = False,
    prepare: Callable[[memtree.Store], object] | None = None,
    in_store: Callable[[memtree.Store], object] | None = None,
    verify: Callable[[Path, object, object, int], None] | None = None,
    limit: int = 500,
) -> tuple[int, int]:
    """Runs ``operation`` on a fresh copy of ``base`` with an I/O fault at
    call N of ``method`` (once or persistent), for N = 1, 2, … until a run
    meets no fault (:func:`loop_over_fault_points`); after each run the
    file's ``state`` must be one of ``outcomes`` (before or after the
    operation). A raised error must carry one of ``codes`` (its primary code
    when ``primary_code``). ``prepare`` runs on the store before the fault
    is armed and ``in_store`` after it is cleared, the store still open;
    ``verify(db, seen, in_store's result, n)`` once the store is closed.
    Returns how many faults fired and how many of those left the ``before``
    state: a caller asserts on both, so a loop that never injected cannot
    pass."""
    rolled_back = 0

    def run_point(n: int) -> bool:
        nonlocal rolled_back
        db = tmp_path / f"run-{n}.db"
        shutil.copy2(base, db)
        with memtree.Store(db) as store:
            if prepare is not None:
                prepare(store)
            testing.inject_fault(db, method, n, memtree.ResultCode.IOERR, persistent=persistent)
            try:
                operation(store)
            except memtree.MemtreeError as e:
                code = e.code & 0xFF if primary_code else e.code
                assert code in codes, e
            fired = testing.clear_fault(db)
            found = in_store(store) if in_store is not None else None
        seen = state(db)
        assert seen in outcomes, f"{method} fault at call {n}"
        if verify is not None:
            verify(db, seen, found, n)
        rolled_back += fired > 0 and seen == before
        db.unlink()
        Path(str(db) + "-journal").unlink(missing_ok=True)
        return fired > 0

    fired_points = loop_over_fault_points(run_point, method, limit=limit)
    return fired_points, rolled_back


LEGACY_WAL = "chunks.db-wal.unrecovered-1700000000000"


def stranded_wal_layout(folder: Path, name: str = LEGACY_WAL) -> set[str]:
    """What an earlier release left after a failed checkpoint: a memtree
    database (``folder/chunks.db``, restored to the base the ``-wal`` was
    written against) and its ``-wal`` moved aside as ``name``, holding rows
    in no live file. Returns every committed chunk id."""
    db = folder / "chunks.db"
    with memtree.Store(db) as s:
        s.upsert_chunks(
            [memtree.Chunk(f"c{i}", "words " * 30, "chat", "s", "o", i) for i in range(3)]
        )
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TEMP TABLE t AS SELECT * FROM mem_tree_chunks")
    conn.execute("UPDATE t SET id = 'wal-' || id")
    conn.execute("INSERT INTO mem_tree_chunks SELECT * FROM t")
    base = folder / "base"
    base.mkdir()
    shutil.copyfile(db, base / "chunks.db")
    shutil.copyfile(folder / "chunks.db-wal", base / name)
    conn.close()
    for f in folder.glob("chunks.db*"):
        f.unlink()
    for f in base.iterdir():
        f.rename(folder / f.name)
    base.rmdir()
    return {f"c{i}" for i in range(3)} | {f"wal-c{i}" for i in range(3)}


class ReferenceConnection(sqlite3.Connection):
    """stdlib sqlite3 for OpenHuman's statements, which number their
    parameters (``?1``, ``?2``, ...) as rusqlite binds them. CPython 3.12
    takes those for named parameters and warns when they get a sequence
    (3.13 dropped the warning): a sequence goes in as the mapping keyed
    ``"1"``, ``"2"``, ... that every version binds alike."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if isinstance(parameters, (tuple, list)) and "?1" in sql:
            parameters = {str(i): value for i, value in enumerate(parameters, start=1)}
        return super().execute(sql, parameters)


def reference_connection(db: Path, **kwargs: Any) -> ReferenceConnection:
    """``sqlite3.connect(db)`` for OpenHuman's numbered-parameter SQL."""
    conn: ReferenceConnection = sqlite3.connect(db, factory=ReferenceConnection, **kwargs)
    return conn
