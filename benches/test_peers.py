"""memtree side by side with the libraries users would pick instead.

Every contender runs in the same session, interleaved round by round (a
shared disk's drift hits all alike), on its own fresh file, with the rollback
journal in TRUNCATE mode and ``synchronous=FULL`` — memtree's own settings —
read back from each peer's connection before anything is timed. The figures
go into ``.benchmarks/targets.json`` through ``conftest.record`` with a
``table`` detail that ``benches/readme_table.py`` turns into the
side-by-side rows of docs/performance.md. Nothing here fails on a slow figure; only correctness
(equal rows, equal objects, settings in force) is asserted.

How each peer is put on TRUNCATE + FULL, and what it then guarantees:

- apsw 3.54 (its own SQLite 3.54): ``PRAGMA journal_mode=TRUNCATE`` and
  ``PRAGMA synchronous=FULL`` on the connection; ingest is ``executemany`` of
  memtree's upsert statement inside ``BEGIN IMMEDIATE … COMMIT``. Durable.
- stdlib ``sqlite3`` (the system's SQLite): the same pragmas via
  ``conftest.stdlib_connect``, explicit transactions. Durable.
- sqlite-utils 4.2 (on stdlib ``sqlite3``): a ``Database`` wrapping that
  same configured connection; ``insert_all`` inside ``db.atomic()`` so the
  10k rows are one transaction (alone it commits every 58-row batch: 999
  variables / 17 columns). Plain INSERT, no upsert. Durable.
- persist-queue 1.1 ``SQLiteAckQueue``: a subclass whose connection factory
  sets TRUNCATE + FULL where the library's sets WAL (and leaves SQLite's
  default ``synchronous``); put, get, ack: three commits a job, acked.
  Durable.
- litequeue 0.9: its constructor sets WAL + NORMAL; the bench switches the
  connection to TRUNCATE + FULL right after (no other connection is open);
  put, pop, done: three commits a job, acked. Durable.
- huey 3.5 ``SqliteStorage``: its own options ``journal_mode="truncate"``
  and ``fsync=True`` (``synchronous=2``, FULL); ``enqueue`` then
  ``dequeue``: two commits a job, and a dequeued job is deleted at once —
  there is no ack, so a worker that dies mid-job loses it. Durable commits,
  weaker delivery.
- memtree: ``Store`` defaults (TRUNCATE + FULL, always), in two forms:
  enqueue, ``claim_next``, ``mark_done``: three commits a job; and the
  Worker's steady state, enqueue then ``mark_done_and_claim_next`` (settle
  the held job and claim the next in one transaction): two commits a job.
  Both keep a lease and an ack.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import apsw
import memtree
import sqlite_utils
from _persist_queue import TruncateFullAckQueue
from conftest import (
    CHUNK_COLUMNS,
    INGEST_ROWS,
    READ_ROWS,
    SELECT_SQL,
    UPSERT_SQL,
    chunk_from_row,
    memtree_schema,
    record,
    stdlib_connect,
)
from huey.storage import SqliteStorage
from litequeue import LiteQueue
from memtree import _native, testing

#: Interleaved rounds per workload; the best round counts (CPU-bound work on
#: a shared machine only ever loses time to other tenants).
ROUNDS = 5
#: Jobs per queue round, each enqueued, claimed and settled on its own.
QUEUE_JOBS = 300

COLUMNS_SQL = ", ".join(CHUNK_COLUMNS)
LIST_SQL = (
    f"SELECT {COLUMNS_SQL} FROM mem_tree_chunks WHERE source_kind = ? "
    "ORDER BY timestamp_ms DESC, seq_in_source ASC LIMIT ?"
)


def apsw_connect(path: Path) -> apsw.Connection:
    """apsw with memtree's pragmas (TRUNCATE + FULL, foreign keys, 5 s busy)."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(5000)
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = TRUNCATE").fetchall()[0][0]
    assert mode == "truncate", mode
    conn.execute("PRAGMA synchronous = FULL")
    assert conn.execute("PRAGMA synchronous").fetchall()[0][0] == 2
    return conn


def assert_truncate_full(conn: sqlite3.Connection) -> None:
    """The settings a peer's stdlib connection really runs with."""
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "truncate"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def side_by_side(
    table: str,
    workload: str,
    unit: str,
    figures: dict[str, float],
    *,
    per_s: bool = False,
    ratio_to: str | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    **details: Any,
) -> None:
    """Records one Performance-table row: every contender's figure in ``unit`` (a time,
    lower is better, or a rate with ``per_s``). The recorded value is
    memtree's figure over the fastest peer's (or ``ratio_to``'s): a time
    ratio (<= 1 means memtree is at least as fast) or a rate ratio (>= 1);
    bounds, if any, are issue 14's targets."""
    peers = {k: v for k, v in figures.items() if not k.startswith("memtree")}
    best = ratio_to or (max if per_s else min)(peers, key=peers.__getitem__)
    kind = "jobs/s" if per_s else "time"
    record(
        f"{table}: {workload}: memtree / {best} ({kind})",
        figures["memtree"] / peers[best],
        at_least=at_least,
        at_most=at_most,
        table=table,
        workload=workload,
        unit=unit,
        per_s=per_s,
        figures=figures,
        compared_with=best,
        **details,
    )


@contextmanager
def timed_into(out: list[float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    out.append(time.perf_counter() - started)


# --- ingest -------------------------------------------------------------------


def _raw_values(start: int, count: int) -> list[tuple[Any, ...]]:
    """The application's own values for the generated chunks, as it would hold
    them before choosing a library: aware datetimes and a tag list."""

    def dt(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

    at = {name: i for i, name in enumerate(CHUNK_COLUMNS)}
    return [
        (
            r[at["id"]],
            r[at["content"]],
            r[at["source_kind"]],
            r[at["source_id"]],
            r[at["owner"]],
            dt(r[at["timestamp_ms"]]),
            r[at["source_ref"]],
            (dt(r[at["time_range_start_ms"]]), dt(r[at["time_range_end_ms"]])),
            json.loads(r[at["tags_json"]]),
            r[at["token_count"]],
            r[at["seq_in_source"]],
            dt(r[at["created_at_ms"]]),
        )
        for r in _native.bench.rows(start, count)
    ]


def _chunks_from_values(values: list[tuple[Any, ...]]) -> list[memtree.Chunk]:
    return [
        memtree.Chunk(
            i,
            content,
            kind,
            source_id,
            owner,
            ts,
            source_ref=ref,
            time_range=span,
            tags=tags,
            token_count=tokens,
            seq_in_source=seq,
            created_at=created,
        )
        for i, content, kind, source_id, owner, ts, ref, span, tags, tokens, seq, created in values
    ]


def _rows_from_values(values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What an apsw user writes to bind the same values to the same statement."""

    def ms(d: datetime) -> int:
        return int(d.timestamp() * 1000)

    return [
        (
            i,
            content,
            kind,
            source_id,
            ref,
            owner,
            ms(ts),
            ms(span[0]),
            ms(span[1]),
            json.dumps(tags, separators=(",", ":")),
            tokens,
            seq,
            ms(created),
            "admitted",
            None,
            None,
            None,
        )
        for i, content, kind, source_id, owner, ts, ref, span, tags, tokens, seq, created in values
    ]


def _table_rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {COLUMNS_SQL} FROM mem_tree_chunks ORDER BY id").fetchall()
    finally:
        conn.close()


def test_ingest_10k_side_by_side(tmp_path: Path) -> None:
    chunks = _native.bench.chunks(0, INGEST_ROWS)
    rows = _native.bench.rows(0, INGEST_ROWS)
    dicts = [dict(zip(CHUNK_COLUMNS, r)) for r in rows]
    values = _raw_values(0, INGEST_ROWS)
    files = iter(range(10**6))

    def fresh(tag: str) -> Path:
        return memtree_schema(tmp_path / f"{tag}-{next(files)}.db")

    times: dict[str, list[float]] = {
        k: []
        for k in ("memtree", "apsw", "stdlib", "sqlite-utils", "memtree e2e", "apsw e2e", "sql")
    }
    last: dict[str, Path] = {}
    for _ in range(ROUNDS):
        path = last["memtree"] = fresh("memtree")
        with memtree.Store(path) as store:
            with timed_into(times["memtree"]):
                store.upsert_chunks(chunks)

        path = last["apsw"] = fresh("apsw")
        conn = apsw_connect(path)
        with timed_into(times["apsw"]):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(UPSERT_SQL, rows)
            conn.execute("COMMIT")
        conn.close()

        path = last["stdlib"] = fresh("stdlib")
        sconn = stdlib_connect(path)
        with timed_into(times["stdlib"]):
            sconn.execute("BEGIN IMMEDIATE")
            sconn.executemany(UPSERT_SQL, rows)
            sconn.execute("COMMIT")
        sconn.close()

        path = last["sqlite-utils"] = fresh("sqlite-utils")
        sconn = stdlib_connect(path)
        db = sqlite_utils.Database(sconn)
        with timed_into(times["sqlite-utils"]):
            with db.atomic():
                db["mem_tree_chunks"].insert_all(dicts)
        assert_truncate_full(sconn)
        sconn.close()

        # End to end: from the application's values (datetimes, a tag list)
        # to committed rows: building memtree's Chunks against building the
        # tuples apsw binds.
        path = last["memtree e2e"] = fresh("memtree-e2e")
        with memtree.Store(path) as store:
            with timed_into(times["memtree e2e"]):
                store.upsert_chunks(_chunks_from_values(values))

        path = last["apsw e2e"] = fresh("apsw-e2e")
        conn = apsw_connect(path)
        with timed_into(times["apsw e2e"]):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(UPSERT_SQL, _rows_from_values(values))
            conn.execute("COMMIT")
        conn.close()

        times["sql"].append(
            _native.bench.insert_select(tmp_path / f"sql-{next(files)}.db", 0, INGEST_ROWS) / 1e9
        )

    # Every contender wrote the same rows.
    expected = _table_rows(last["memtree"])
    assert len(expected) == INGEST_ROWS
    for name, path in last.items():
        assert _table_rows(path) == expected, name

    best = {k: min(v) * 1e3 for k, v in times.items()}
    medians = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    side_by_side(
        "store",
        "ingest 10k chunks, one transaction",
        "ms",
        {k: best[k] for k in ("memtree", "apsw", "stdlib", "sqlite-utils")},
        medians_ms=medians,
        pure_sql_ms=best["sql"],
    )
    side_by_side(
        "store",
        "ingest 10k end to end (values to Chunk or tuple, committed)",
        "ms",
        {"memtree": best["memtree e2e"], "apsw": best["apsw e2e"]},
        # Issue 14 item 4: end-to-end ingest within 1.1x of apsw's.
        at_most=1.1,
        medians_ms=medians,
    )


# --- reads --------------------------------------------------------------------


def _best_per_call(fn: Callable[[], object], calls: int, passes: int) -> float:
    """Best of ``passes`` passes of ``fn``, in seconds per call (``fn`` does
    ``calls`` calls a pass)."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best / calls


IDS = [f"bench-{i * 7919 % READ_ROWS:08d}" for i in range(2000)]
BATCH = [f"bench-{i * 997 % READ_ROWS:08d}" for i in range(100)]
IN_SQL = f"SELECT {COLUMNS_SQL} FROM mem_tree_chunks WHERE id IN ({', '.join('?' * len(BATCH))})"


def _reads_memtree(path: Path) -> tuple[dict[str, float], dict[str, Any]]:
    with memtree.Store(path) as store:
        times = {
            "get memtree": _best_per_call(lambda: [store.get_chunk(i) for i in IDS], len(IDS), 3),
            "many memtree": _best_per_call(lambda: store.get_chunks(BATCH), 1, 30),
            "list memtree": _best_per_call(
                lambda: store.list_chunks(source_kind="email", limit=100), 1, 30
            ),
        }
        reference = {
            "get": store.get_chunk(IDS[0]),
            "many": store.get_chunks(BATCH),
            "list": store.list_chunks(source_kind="email", limit=100),
        }
    return times, reference


def _reads_apsw(path: Path, reference: dict[str, Any]) -> dict[str, float]:
    conn = apsw_connect(path)
    try:

        def one(i: str) -> memtree.Chunk:
            return chunk_from_row(conn.execute(SELECT_SQL, (i,)).fetchall()[0])

        def in_list() -> list[memtree.Chunk]:
            # IN returns rows in index order: put them back in request order.
            by_id = {r[0]: r for r in conn.execute(IN_SQL, BATCH)}
            return [chunk_from_row(by_id[i]) for i in BATCH if i in by_id]

        def in_raw() -> list[tuple[Any, ...]]:
            return conn.execute(IN_SQL, BATCH).fetchall()

        def by_kind() -> list[memtree.Chunk]:
            return [chunk_from_row(r) for r in conn.execute(LIST_SQL, ("email", 100))]

        assert one(IDS[0]) == reference["get"]
        assert in_list() == reference["many"]
        assert by_kind() == reference["list"]
        return {
            "get apsw": _best_per_call(lambda: [one(i) for i in IDS], len(IDS), 3),
            "many apsw IN": _best_per_call(in_list, 1, 30),
            "many apsw IN raw": _best_per_call(in_raw, 1, 30),
            "many apsw": _best_per_call(lambda: [one(i) for i in BATCH], 1, 30),
            "list apsw": _best_per_call(by_kind, 1, 30),
        }
    finally:
        conn.close()


def _reads_stdlib(path: Path, reference: dict[str, Any]) -> dict[str, float]:
    conn = stdlib_connect(path)
    try:

        def one(i: str) -> memtree.Chunk:
            return chunk_from_row(conn.execute(SELECT_SQL, (i,)).fetchone())

        def by_kind() -> list[memtree.Chunk]:
            return [chunk_from_row(r) for r in conn.execute(LIST_SQL, ("email", 100))]

        assert one(IDS[0]) == reference["get"]
        assert [one(i) for i in BATCH] == reference["many"]
        assert by_kind() == reference["list"]
        return {
            "get stdlib": _best_per_call(lambda: [one(i) for i in IDS], len(IDS), 3),
            "many stdlib": _best_per_call(lambda: [one(i) for i in BATCH], 1, 30),
            "list stdlib": _best_per_call(by_kind, 1, 30),
        }
    finally:
        conn.close()


def test_reads_side_by_side(read_db: Path) -> None:
    results: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        # One library at a time on the file: two SQLite copies in one process
        # must not hold it open together (POSIX locks are per process).
        times, reference = _reads_memtree(read_db)
        times |= _reads_apsw(read_db, reference)
        times |= _reads_stdlib(read_db, reference)
        for name, seconds in times.items():
            results.setdefault(name, []).append(seconds)

    us = {k: min(v) * 1e6 for k, v in results.items()}
    side_by_side(
        "store",
        "get_chunk (100k rows), building a Chunk",
        "µs",
        {"memtree": us["get memtree"], "apsw": us["get apsw"], "stdlib": us["get stdlib"]},
    )
    side_by_side(
        "store",
        "get_chunks(100 ids), building Chunks",
        "µs",
        {
            "memtree": us["many memtree"],
            "apsw": us["many apsw"],
            "apsw IN (…)": us["many apsw IN"],
            "stdlib": us["many stdlib"],
        },
        ratio_to="apsw IN (…)",
        # Issue 14 item 1: within 1.1x of apsw's IN statement building the
        # same objects.
        at_most=1.1,
        apsw_in_raw_tuples_us=us["many apsw IN raw"],
    )
    side_by_side(
        "store",
        "list_chunks(source_kind, limit=100), building Chunks",
        "µs",
        {"memtree": us["list memtree"], "apsw": us["list apsw"], "stdlib": us["list stdlib"]},
    )


# --- the queue, one job at a time -----------------------------------------------


#: A queue contender: ``run()`` does the timed jobs; ``finish()`` (untimed)
#: checks that every job was settled, closes, and returns memtree's syncs
#: per job (None for peers, whose SQLite the VFS does not see).
Contender = tuple[Callable[[], None], Callable[[], Optional[float]]]


def _memtree_store(path: Path) -> memtree.Store:
    store = memtree.Store(path / "memtree.db")
    settings = store.connection_settings()
    assert settings["journal_mode"] == "truncate" and settings["synchronous"] == "2"
    testing.reset_io_stats(store.path)
    return store


def _memtree_finish(store: memtree.Store, n: int) -> float:
    syncs = testing.io_stats(store.path)["syncs_total"] / n
    assert store.jobs.counts()["done"] == n
    store.close()
    return syncs


def _queue_memtree(path: Path, n: int) -> Contender:
    """Three commits a job: enqueue, ``claim_next``, ``mark_done``."""
    store = _memtree_store(path)

    def run() -> None:
        for i in range(n):
            store.jobs.enqueue("bench", {"i": i})
            job = store.jobs.claim_next()
            assert job is not None
            store.jobs.mark_done(job)

    return run, lambda: _memtree_finish(store, n)


def _queue_memtree_settle_and_claim(path: Path, n: int) -> Contender:
    """Two commits a job, as the Worker runs in steady state: enqueue, then
    ``mark_done_and_claim_next`` settles the held job and claims the one
    just enqueued in one transaction. The first claim and the last settle
    are one commit each outside the loop's pattern: n jobs cost 2n + 1
    commits, all timed."""
    store = _memtree_store(path)

    def run() -> None:
        jobs = store.jobs
        jobs.enqueue("bench", {"i": 0})
        held = jobs.claim_next()
        for i in range(1, n):
            jobs.enqueue("bench", {"i": i})
            assert held is not None
            held = jobs.mark_done_and_claim_next(held)
        assert held is not None
        jobs.mark_done(held)

    return run, lambda: _memtree_finish(store, n)


def _queue_persist(path: Path, n: int) -> Contender:
    q = TruncateFullAckQueue(str(path / "pq"), auto_commit=True)
    assert_truncate_full(q._conn)

    def run() -> None:
        for i in range(n):
            q.put({"i": i})
            item = q.get(block=False, raw=True)
            q.ack(id=item["pqid"])

    def finish() -> None:
        assert q.acked_count() == n and q.qsize() == 0
        q.close()

    return run, finish


def _queue_litequeue(path: Path, n: int) -> Contender:
    q = LiteQueue(str(path / "litequeue.db"))
    # Its constructor set WAL + NORMAL; nothing else has the file open.
    assert q.conn.execute("PRAGMA journal_mode = TRUNCATE").fetchone()[0] == "truncate"
    q.conn.execute("PRAGMA synchronous = FULL")
    assert_truncate_full(q.conn)

    def run() -> None:
        for i in range(n):
            q.put(json.dumps({"i": i}))
            message = q.pop()
            assert message is not None
            q.done(message.message_id)

    def finish() -> None:
        assert q.qsize() == 0
        (done,) = q.conn.execute(
            f"SELECT count(*) FROM {q.table} WHERE done_time IS NOT NULL"
        ).fetchone()
        assert done == n
        q.close()

    return run, finish


def _queue_huey(path: Path, n: int) -> Contender:
    storage = SqliteStorage("bench", str(path / "huey.db"), journal_mode="truncate", fsync=True)
    assert_truncate_full(storage.conn)

    def run() -> None:
        for i in range(n):
            storage.enqueue(json.dumps({"i": i}).encode())
            assert storage.dequeue() is not None

    def finish() -> None:
        # No ack: a dequeued job is gone, so "settled" is an empty queue.
        assert storage.queue_size() == 0
        storage.close()

    return run, finish


QUEUES: dict[str, Callable[[Path, int], Contender]] = {
    "memtree": _queue_memtree_settle_and_claim,
    "memtree 3 commits": _queue_memtree,
    "persist-queue": _queue_persist,
    "litequeue": _queue_litequeue,
    "huey": _queue_huey,
}


def test_queue_one_job_at_a_time(tmp_path: Path) -> None:
    rates: dict[str, list[float]] = {name: [] for name in QUEUES}
    memtree_syncs: dict[str, list[float]] = {name: [] for name in QUEUES}
    for r in range(ROUNDS):
        for name, make in QUEUES.items():
            folder = tmp_path / f"{name}-{r}"
            folder.mkdir()
            run, finish = make(folder, QUEUE_JOBS)  # setup (schema, settings) untimed
            started = time.perf_counter()
            run()
            rates[name].append(QUEUE_JOBS / (time.perf_counter() - started))
            syncs = finish()
            if syncs is not None:
                memtree_syncs[name].append(syncs)
    best = {k: max(v) for k, v in rates.items()}
    medians = {k: statistics.median(v) for k, v in rates.items()}
    peers = {k: v for k, v in best.items() if not k.startswith("memtree")}
    commits = {"persist-queue": 3, "litequeue": 3, "huey": 2}
    # Two rows, each memtree form against the same peer figures: the
    # Worker's two-commit steady state, and the three-commit form.
    for form, label, n_commits in (
        ("memtree", "enqueue, then settle-and-claim in one commit", 2),
        ("memtree 3 commits", "enqueue, claim, settle", 3),
    ):
        side_by_side(
            "queue",
            f"one job at a time: {label} ({QUEUE_JOBS} jobs)",
            "jobs/s",
            {"memtree": best[form], **peers},
            per_s=True,
            # Issue 14 item 2: at least 1.2x the fastest peer at equal
            # durability (the two-commit form is the Worker's).
            at_least=1.2 if n_commits == 2 else None,
            medians_per_s={"memtree": medians[form]} | {k: medians[k] for k in peers},
            memtree_syncs_per_job=statistics.median(memtree_syncs[form]),
            commits_per_job={"memtree": n_commits, **commits},
        )
