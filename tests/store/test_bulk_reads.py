"""The bulk chunk reads (`get_chunks`, `list_chunks`, `iter_chunks`) keep
each chunk as its row's bytes and decode it when a field is first read: the
chunks they return behave exactly as `get_chunk`'s, and a row memtree cannot
read fails the call itself with `get_chunk`'s error."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import memtree
import pytest
from support import BAD_CHUNK_VALUES, CHUNK_FIELDS, corrupt_chunk_column, full_chunk

T0 = 1_700_000_000_000

FIELDS = CHUNK_FIELDS

BulkRead = Callable[[memtree.Store], list[memtree.Chunk]]

READS: dict[str, BulkRead] = {
    "get_chunks": lambda s: s.get_chunks(["ç-😀", "bare", "ç-😀"]),
    "list_chunks": lambda s: s.list_chunks(),
    "iter_chunks": lambda s: list(s.iter_chunks(page_size=1)),
}


def store_two(store: memtree.Store) -> memtree.Chunk:
    """A chunk with every field set and one with the optional ones empty."""
    full = full_chunk(T0)
    bare = memtree.Chunk("bare", "", "chat", "src", "owner", T0 - 1)
    store.upsert_chunks([full, bare])
    return full


@pytest.mark.parametrize("read", list(READS))
def test_a_bulk_read_chunk_is_the_chunk_get_chunk_reads_field_for_field(
    store: memtree.Store, read: str
) -> None:
    full = store_two(store)
    got = READS[read](store)
    assert {c.id for c in got} == {"ç-😀", "bare"}
    for chunk_id in ("ç-😀", "bare"):
        want = store.get_chunk(chunk_id)
        assert want is not None
        # The id first (read without decoding), then every field.
        first = next(c for c in got if c.id == chunk_id)
        for field in FIELDS:
            assert getattr(first, field) == getattr(want, field), field
        # Equality, hash, repr and pickling, on a chunk no field was read of.
        fresh = next(c for c in READS[read](store) if c.id == chunk_id)
        assert fresh == want and want == fresh and hash(fresh) == hash(want)
        assert repr(fresh) == repr(want)
        assert pickle.loads(pickle.dumps(fresh)) == want
        assert fresh.replace(token_count=99).token_count == 99
    # A chunk read in bulk goes back in as it is.
    again = next(c for c in READS[read](store) if c.id == "ç-😀")
    assert store.upsert_chunks([again.replace(content="changed")]) == 1
    changed = store.get_chunk("ç-😀")
    assert changed is not None and changed.content == "changed"
    assert changed.embedding == full.embedding  # kept by a re-ingest
    assert store.upsert_chunks(READS[read](store)) == len(READS[read](store))


def test_a_chunk_no_field_was_read_of_is_a_list_cursor(store: memtree.Store) -> None:
    """`after=` takes the position of a chunk still kept as its bytes."""
    store.upsert_chunks(
        [
            memtree.Chunk(f"c{i}", "t", "chat", "s", "o", T0 - i % 3, seq_in_source=i)
            for i in range(9)
        ]
    )
    every = [c.id for c in store.list_chunks()]
    for at in range(9):
        cursor = store.list_chunks()[at]
        assert [c.id for c in store.list_chunks(after=cursor)] == every[at + 1 :]
        assert [c.id for c in store.list_chunks(after=store.get_chunks([cursor.id])[0])] == every[
            at + 1 :
        ]


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize(
    ("column", "value"),
    BAD_CHUNK_VALUES,
)
def test_a_row_memtree_cannot_read_fails_a_bulk_read_as_it_fails_get_chunk(
    store: memtree.Store, db_path: Path, read: str, column: str, value: str
) -> None:
    """One bad row among good ones fails the whole call, with the error
    ``get_chunk`` raises for it, not later on a field read."""
    store_two(store)
    corrupt_chunk_column(db_path, column, value, "WHERE id = 'bare'")
    assert store.get_chunk("ç-😀") is not None  # the good row still reads
    with pytest.raises(memtree.MemtreeError) as direct:
        store.get_chunk("bare")
    with pytest.raises(type(direct.value)) as bulk:
        READS[read](store)
    assert (bulk.value.code, bulk.value.name) == (direct.value.code, direct.value.name)
    # The same message but for the call's name.
    assert str(bulk.value).split(":", 1)[1] == str(direct.value).split(":", 1)[1]
