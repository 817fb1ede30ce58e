"""`Store.get_chunks`: one statement (one read lock) for any number of ids,
with the semantics of one lookup per id: the order asked, missing ids
skipped, an id asked twice returned twice."""

from __future__ import annotations

from pathlib import Path

import memtree
from memtree import testing
from support import ChunkFactory


def test_order_duplicates_and_missing(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(5)])
    ask = ["chunk-00004", "nope", "chunk-00001", "chunk-00004", "chunk-00000", "nope"]
    got = store.get_chunks(ask)
    assert [c.id for c in got] == ["chunk-00004", "chunk-00001", "chunk-00004", "chunk-00000"]
    assert got[0] == got[2] == make_chunk(4)
    assert got[0] is not got[2]


def test_empty_and_all_missing(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    assert store.get_chunks([]) == []
    assert store.get_chunks(iter(())) == []
    store.upsert_chunks([make_chunk(0)])
    assert store.get_chunks(["a", "b"]) == []


def test_ids_that_need_escaping(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    # The ids travel to SQLite as one JSON array: quotes, backslashes, control
    # characters, a NUL, non-BMP text and a numeric-looking id come back as
    # themselves (and "1" does not match a stored "1.0" or vice versa).
    ids = ['q"uote', "back\\slash", "tab\tnew\nline", "nul\x00", "emoji \U0001f600", "1", "1.0"]
    store.upsert_chunks([make_chunk(i, id=id_) for i, id_ in enumerate(ids)])
    asked = [*reversed(ids), "01", "nul"]
    assert [c.id for c in store.get_chunks(asked)] == list(reversed(ids))


def test_more_ids_than_sqlite_variables(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(300)])
    # 40,000 ids, past SQLite's limit of 32,766 bound variables, reversed and
    # each stored id asked several times.
    ask = [f"chunk-{i % 10_000:05d}" for i in reversed(range(40_000))]
    got = [c.id for c in store.get_chunks(ask)]
    want = [id_ for id_ in ask if int(id_[6:]) < 300]
    assert len(want) == 1200
    assert got == want


def test_one_read_lock_per_call(db_path: Path, make_chunk: ChunkFactory) -> None:
    with memtree.Store(db_path) as store:
        store.upsert_chunks([make_chunk(i) for i in range(100)])
        ids = [f"chunk-{i:05d}" for i in range(100)]
        store.get_chunks(ids)
        testing.reset_io_stats(db_path)
        assert len(store.get_chunks(ids)) == 100
        # One SHARED lock for the statement (a point query per id took and
        # dropped it 100 times).
        assert testing.method_calls(db_path, "xLock") == 1
