"""Every public entry point, fed generated arguments (hypothesis).

The invariant for every call: it either succeeds, and everything it stored
reads back (datetimes, pickles, replace), or it raises the typed error the
stub documents (``TypeError`` / ``ValueError``, or ``LeaseLostError`` for a
settle whose lease is gone) and the database file is byte-for-byte what it
was. A panic (``pyo3_runtime.PanicException``), an ``OverflowError`` or any
other exception fails the test.

``make test`` runs a bounded number of examples per entry point;
``make soak`` (``MEMTREE_SOAK_SCALE``, default 20 there) runs that many
times more.
"""

from __future__ import annotations

import array
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memtree import testing

_SCALE = max(1, int(os.environ.get("MEMTREE_SOAK_SCALE", "1")))
settings.register_profile(
    "memtree",
    max_examples=15 * _SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=_SCALE == 1,
)
FUZZ = settings.get_profile("memtree")

BASE = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _tz(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


_EDGE_TIMES = [
    datetime.max.replace(tzinfo=_tz(-1439)),
    datetime.min.replace(tzinfo=_tz(1439)),
    datetime.max.replace(tzinfo=timezone.utc),
    datetime.min.replace(tzinfo=timezone.utc),
    datetime(2026, 1, 1),  # naive
]
times = st.one_of(
    st.builds(lambda d, m: d.replace(tzinfo=_tz(m)), st.datetimes(), st.integers(-1439, 1439)),
    st.datetimes(),
    st.sampled_from(_EDGE_TIMES),
)
durations = st.one_of(
    st.timedeltas(),
    st.sampled_from(
        [timedelta.max, timedelta.min, timedelta(0), timedelta(microseconds=999), timedelta(days=1)]
    ),
)
ints = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**20, 10**400]),
)
floats = st.one_of(st.floats(), st.sampled_from([1e30, -1e30, 1e300, 0.001]))
texts = st.one_of(
    st.text(max_size=12), st.sampled_from(["", "a\0b", "work", "chat", "lone \ud800 surrogate"])
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,
    texts,
    st.binary(max_size=4),
    times,
    durations,
    st.lists(texts, max_size=3),
    st.just(object()),
)
payloads = st.one_of(
    st.recursive(
        st.one_of(st.none(), st.booleans(), ints, floats, texts),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    st.integers(100, 300).map(_nested),
    st.just(object()),
    st.just({"key": object()}),
)


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes anything at all."""
    return st.one_of(plausible, plausible, junk)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reads_back(store: memtree.Store) -> None:
    """Every stored time and payload converts back to Python."""
    for job in store.jobs.list(limit=10_000):
        _ = (job.available_at, job.locked_until, job.created_at, job.started_at, job.payload)
        _ = job.completed_at
    for chunk in store.list_chunks(limit=10_000):
        _check_chunk(chunk)


def _check_chunk(chunk: memtree.Chunk) -> None:
    _ = (chunk.timestamp, chunk.time_range, chunk.created_at)
    assert pickle.loads(pickle.dumps(chunk)) == chunk
    assert chunk.replace() == chunk


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], memtree.Store]]:
    """One store per entry point, shared by its examples (opening a fresh
    file per example would dominate the run time)."""
    opened: dict[str, memtree.Store] = {}

    def get(entry: str) -> memtree.Store:
        if entry not in opened:
            opened[entry] = memtree.Store(tmp_path_factory.mktemp("fuzz") / "chunks.db")
        return opened[entry]

    yield get
    for store in opened.values():
        store.close()


def _chunk_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(maybe(st.text(min_size=1, max_size=8))),
        "content": draw(maybe(st.text(max_size=20))),
        "source_kind": draw(maybe(st.sampled_from(["chat", "email", "document"]))),
        "source_id": draw(maybe(st.text(min_size=1, max_size=8))),
        "owner": draw(maybe(st.text(max_size=8))),
        "timestamp": draw(maybe(times)),
        "token_count": draw(maybe(st.integers(0, 1000))),
        "seq_in_source": draw(maybe(st.integers(0, 1000))),
        "created_at": draw(st.one_of(st.none(), maybe(times))),
        "tags": draw(st.one_of(st.none(), maybe(st.lists(st.text(max_size=4), max_size=3)))),
        "embedding": draw(st.one_of(st.none(), maybe(st.lists(floats, max_size=3)))),
        "lifecycle_status": draw(st.one_of(st.none(), maybe(st.text(max_size=6)))),
        "time_range": draw(st.one_of(st.none(), maybe(st.tuples(times, times)))),
    }


def _build_chunk(kwargs: dict[str, Any]) -> memtree.Chunk:
    positional = [
        kwargs.pop(k) for k in ("id", "content", "source_kind", "source_id", "owner", "timestamp")
    ]
    return memtree.Chunk(*positional, **kwargs)


def _good_chunk(i: int) -> memtree.Chunk:
    return memtree.Chunk(f"c{i}", "text", "chat", "s", "o", BASE)


chunk_ids = st.one_of(st.just("c0"), texts)

# Each entry: (store, a freshly claimed job, draw) -> the call to make.
Call = Callable[[memtree.Store, memtree.Job, st.DrawFn], Callable[[], object]]

ENTRIES: dict[str, Call] = {
    "Store.upsert_chunks": lambda s, j, d: (
        lambda: s.upsert_chunks(d(maybe(st.lists(st.integers(0, 3).map(_good_chunk), max_size=2))))
    ),
    "Store.get_chunk": lambda s, j, d: lambda: s.get_chunk(d(maybe(texts))),
    "Store.get_chunks": lambda s, j, d: lambda: s.get_chunks(d(maybe(st.lists(texts)))),
    "Store.list_chunks": lambda s, j, d: (
        lambda: s.list_chunks(
            source_kind=d(st.one_of(st.none(), maybe(st.just("chat")))),
            owner=d(st.one_of(st.none(), maybe(texts))),
            since=d(st.one_of(st.none(), maybe(times))),
            until=d(st.one_of(st.none(), maybe(times))),
            limit=d(maybe(ints)),
        )
    ),
    "Store.set_lifecycle_status": lambda s, j, d: (
        lambda: s.set_lifecycle_status(d(maybe(st.lists(texts, max_size=2))), d(maybe(texts)))
    ),
    "Store.claim_source": lambda s, j, d: (
        lambda: s.claim_source(d(maybe(st.just("email"))), d(maybe(texts)))
    ),
    "Store.delete_source": lambda s, j, d: (
        lambda: s.delete_source(d(maybe(st.just("chat"))), d(maybe(texts)))
    ),
    "Store.delete_owner": lambda s, j, d: lambda: s.delete_owner(d(maybe(texts))),
    "Store.replace_source_chunks": lambda s, j, d: (
        lambda: s.replace_source_chunks(
            d(maybe(st.just("chat"))),
            d(maybe(st.just("s"))),
            d(maybe(st.lists(st.integers(0, 3).map(_good_chunk), max_size=2))),
        )
    ),
    "Store.set_chunk_embedding": lambda s, j, d: _with_chunk(
        s,
        lambda: s.set_chunk_embedding(
            d(maybe(chunk_ids)),
            d(
                st.one_of(
                    st.none(),
                    maybe(st.lists(floats, max_size=3)),
                    st.lists(floats, max_size=3).map(lambda v: array.array("d", v)),
                    st.lists(floats, max_size=3).map(lambda v: array.array("f", v)),
                )
            ),
        ),
    ),
    "Store.set_chunk_raw_refs": lambda s, j, d: _with_chunk(
        s,
        lambda: s.set_chunk_raw_refs(
            d(maybe(chunk_ids)),
            d(
                st.one_of(
                    st.none(),
                    maybe(
                        st.lists(
                            st.builds(
                                memtree.RawRef,
                                maybe(texts),
                                maybe(ints),
                                st.one_of(st.none(), maybe(ints)),
                            ),
                            max_size=2,
                        )
                    ),
                )
            ),
        ),
    ),
    "Store.get_chunk_raw_refs": lambda s, j, d: lambda: s.get_chunk_raw_refs(d(maybe(chunk_ids))),
    "Store.get_chunk_embedding": lambda s, j, d: lambda: s.get_chunk_embedding(d(maybe(chunk_ids))),
    "Store.set_chunk_embeddings": lambda s, j, d: _with_chunk(
        s,
        lambda: s.set_chunk_embeddings(
            d(maybe(st.lists(chunk_ids, max_size=3))),
            d(
                st.one_of(
                    maybe(st.lists(st.one_of(st.none(), maybe(st.lists(floats, max_size=3))))),
                    st.lists(floats, max_size=3).map(lambda v: memoryview(array.array("f", v))),
                    st.binary(max_size=8),
                )
            ),
        ),
    ),
    "Store.get_chunk_embeddings": lambda s, j, d: (
        lambda: s.get_chunk_embeddings(d(maybe(st.lists(chunk_ids, max_size=3))))
    ),
    "Store.search_vector": lambda s, j, d: _with_chunk(
        s,
        lambda: s.search_vector(
            d(maybe(st.lists(floats, max_size=3))),
            d(maybe(ints)),
            owner=d(st.one_of(st.none(), maybe(texts))),
            since=d(st.one_of(st.none(), maybe(times))),
            metric=d(maybe(st.sampled_from(["cosine", "dot", "l2", "L2"]))),
            include_summaries=d(maybe(st.booleans())),
        ),
    ),
    "Store.get_chunk_content_pointers": lambda s, j, d: (
        lambda: s.get_chunk_content_pointers(d(maybe(chunk_ids)))
    ),
    "Store.get_summary_content_pointers": lambda s, j, d: (
        lambda: s.get_summary_content_pointers(d(maybe(texts)))
    ),
    "Store.delete_chunk": lambda s, j, d: _with_chunk(
        s, lambda: s.delete_chunk(d(maybe(chunk_ids)))
    ),
    "Store.list_sources": lambda s, j, d: s.list_sources,
    "Jobs.enqueue": lambda s, j, d: (
        lambda: s.jobs.enqueue(
            d(maybe(texts)),
            d(payloads),
            dedupe_key=d(st.one_of(st.none(), maybe(texts))),
            available_at=d(st.one_of(st.none(), maybe(times))),
            max_attempts=d(maybe(st.integers(1, 10))),
        )
    ),
    "JobBatch.enqueue+commit": lambda s, j, d: _batch_call(s, d),
    "Jobs.claim_next": lambda s, j, d: (
        lambda: s.jobs.claim_next(
            lease=d(st.one_of(st.none(), maybe(durations))),
            kinds=d(st.one_of(st.none(), maybe(st.lists(texts, max_size=2)))),
        )
    ),
    "Jobs.claim_many": lambda s, j, d: (
        lambda: s.jobs.claim_many(d(maybe(ints)), lease=d(st.one_of(st.none(), maybe(durations))))
    ),
    "Jobs.heartbeat": lambda s, j, d: (
        lambda: s.jobs.heartbeat(d(maybe(st.just(j))), d(st.one_of(st.none(), maybe(durations))))
    ),
    "Jobs.defer": lambda s, j, d: (
        lambda: s.jobs.defer(
            d(maybe(st.just(j))), d(maybe(st.one_of(times, durations))), d(maybe(texts))
        )
    ),
    "Jobs.mark_done": lambda s, j, d: lambda: s.jobs.mark_done(d(maybe(st.just(j)))),
    "Jobs.mark_failed": lambda s, j, d: (
        lambda: s.jobs.mark_failed(d(maybe(st.just(j))), d(maybe(texts)))
    ),
    "Jobs.release": lambda s, j, d: lambda: s.jobs.release(d(maybe(st.lists(st.just(j))))),
    "Jobs.retry": lambda s, j, d: lambda: s.jobs.retry(d(maybe(texts))),
    "Jobs.list": lambda s, j, d: (
        lambda: s.jobs.list(
            status=d(st.one_of(st.none(), maybe(st.sampled_from(["ready", "done"])))),
            limit=d(maybe(ints)),
        )
    ),
}


def _with_chunk(store: memtree.Store, call: Callable[[], object]) -> Callable[[], object]:
    """`call`, with chunk c0 present (written before the digest is taken)."""
    if store.get_chunk("c0") is None:
        store.upsert_chunks([_good_chunk(0)])
    return call


def _batch_call(store: memtree.Store, draw: st.DrawFn) -> Callable[[], object]:
    def call() -> object:
        with store.jobs.batch() as b:
            b.upsert_chunks([_good_chunk(9)])
            b.enqueue(
                draw(maybe(texts)),
                draw(payloads),
                available_at=draw(st.one_of(st.none(), maybe(times))),
                max_attempts=draw(maybe(st.integers(1, 10))),
            )
        return b.job_ids

    return call


def _claimed(store: memtree.Store) -> memtree.Job:
    job = store.jobs.claim_next(kinds=["work"])
    if job is None:
        # Restocked in one transaction: every commit costs syncs.
        with store.jobs.batch() as b:
            for n in range(100):
                b.enqueue("work", {"n": n})
        job = store.jobs.claim_next(kinds=["work"])
    assert job is not None
    return job


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@FUZZ
@given(data=st.data())
def test_store_and_jobs_entry_points(
    stores: Callable[[str], memtree.Store], entry: str, data: st.DataObject
) -> None:
    store = stores(entry)
    job = _claimed(store)
    call = ENTRIES[entry](store, job, data.draw)
    before = _digest(store.path)
    try:
        call()
    except (TypeError, ValueError, memtree.LeaseLostError) as e:
        assert not isinstance(e, OverflowError)
        assert _digest(store.path) == before, f"{entry} refused ({e!r}) but wrote"
        return
    _reads_back(store)


@FUZZ
@given(data=st.data())
def test_chunk_constructor(data: st.DataObject) -> None:
    kwargs = _chunk_kwargs(data.draw)
    try:
        chunk = _build_chunk(kwargs)
    except (TypeError, ValueError) as e:
        assert not isinstance(e, OverflowError)
        return
    _check_chunk(chunk)


@FUZZ
@given(path=st.one_of(junk, st.sampled_from(["x\0.db", b"x.db", "sub/none/x.db"])))
def test_store_open_paths(path: object) -> None:
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # a relative path lands in the throw-away folder
        try:
            with memtree.Store(path) as store:  # type: ignore[arg-type]
                store.count_chunks()
        except (TypeError, ValueError, OSError, memtree.MemtreeError):
            pass
        finally:
            os.chdir(cwd)


@FUZZ
@given(seconds=st.one_of(junk, floats))
def test_set_circuit_cooldown(seconds: object) -> None:
    try:
        testing.set_circuit_cooldown(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        assert not isinstance(e, OverflowError)
    finally:
        testing.set_circuit_cooldown(30.0)
