"""The ingest gate inside the write (issue 10 item 9): ``JobBatch.claim_source``
commits the gate, the chunks and the follow-up jobs in one transaction; a
lost claim writes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree import ResultCode, Store, testing
from memtree.aio import AsyncStore
from support import ChunkFactory


def test_a_won_claim_commits_gate_chunks_and_jobs_together(
    store: Store, make_chunk: ChunkFactory
) -> None:
    with store.jobs.batch() as b:
        b.claim_source("chat", "standup-42")
        b.upsert_chunks([make_chunk(1), make_chunk(2)])
        b.enqueue("embed", {"ids": [1, 2]})
    assert b.claimed is True
    assert b.job_ids[0] is not None
    assert store.is_source_ingested("chat", "standup-42")
    assert store.count_chunks() == 2
    assert store.jobs.counts()["ready"] == 1


def test_a_lost_claim_writes_nothing(store: Store, make_chunk: ChunkFactory) -> None:
    assert store.claim_source("chat", "standup-42")
    with store.jobs.batch() as b:
        b.claim_source(memtree.SourceKind.CHAT, "standup-42")
        b.upsert_chunks([make_chunk(1)])
        b.enqueue("embed", {})
    assert b.claimed is False
    assert b.job_ids == [None]
    assert store.count_chunks() == 0
    assert store.jobs.counts()["ready"] == 0


def test_one_lost_claim_rolls_back_the_others(store: Store, make_chunk: ChunkFactory) -> None:
    store.claim_source("email", "taken")
    b = store.jobs.batch()
    b.claim_source("chat", "fresh")
    b.claim_source("chat", "fresh")  # the same source twice is one claim
    b.claim_source("email", "taken")
    b.upsert_chunks([make_chunk(1)])
    assert b.commit() == []
    assert b.claimed is False
    assert not store.is_source_ingested("chat", "fresh"), "rolled back with the rest"
    assert store.count_chunks() == 0


def test_claimed_is_none_without_a_claim_and_unreadable_before_commit(
    store: Store, make_chunk: ChunkFactory
) -> None:
    b = store.jobs.batch()
    b.upsert_chunks([make_chunk(1)])
    with pytest.raises(RuntimeError, match="not committed"):
        _ = b.claimed
    b.commit()
    assert b.claimed is None
    assert store.count_chunks() == 1
    with pytest.raises(RuntimeError):
        b.claim_source("chat", "late")


@pytest.mark.parametrize(
    ("kind", "source_id", "error"),
    [
        ("fax", "s", ValueError),
        (3, "s", TypeError),
        ("chat", "", ValueError),
        ("chat", 7, TypeError),
    ],
)
def test_bad_input_is_refused_before_anything_is_buffered(
    store: Store, make_chunk: ChunkFactory, kind: Any, source_id: Any, error: type[Exception]
) -> None:
    with store.jobs.batch() as b:
        with pytest.raises(error):
            b.claim_source(kind, source_id)
        b.upsert_chunks([make_chunk(1)])
    assert b.claimed is None, "the refused claim was not buffered"
    assert store.count_chunks() == 1


def test_an_exception_in_the_block_claims_nothing(store: Store, make_chunk: ChunkFactory) -> None:
    with pytest.raises(KeyError), store.jobs.batch() as b:
        b.claim_source("chat", "s")
        b.upsert_chunks([make_chunk(1)])
        raise KeyError("boom")
    assert not store.is_source_ingested("chat", "s")
    assert store.count_chunks() == 0


def test_a_failed_commit_leaves_the_source_unclaimed(
    db_path: Path, make_chunk: ChunkFactory
) -> None:
    """The crash window the gate used to have: the claim is in the same
    transaction as the chunks, so a commit that fails takes the claim with it."""
    with memtree.Store(db_path) as store:
        store.upsert_chunks([make_chunk(0)])
        b = store.jobs.batch()
        b.claim_source("chat", "s")
        b.upsert_chunks([make_chunk(1)])
        b.enqueue("embed", {})
        testing.inject_fault(db_path, "xSync", 1, ResultCode.IOERR, persistent=True)
        with pytest.raises(memtree.MemtreeError):
            b.commit()
        assert testing.clear_fault(db_path) >= 1, "the fault fired"
    with memtree.Store(db_path) as store:
        assert not store.is_source_ingested("chat", "s")
        assert store.count_chunks() == 1
        assert store.jobs.counts()["ready"] == 0
        # The source can be ingested for real now.
        with store.jobs.batch() as again:
            again.claim_source("chat", "s")
            again.upsert_chunks([make_chunk(1)])
        assert again.claimed is True


def test_async_batch_claims_too(db_path: Path, make_chunk: ChunkFactory) -> None:
    async def main() -> tuple[bool | None, bool | None]:
        async with AsyncStore.connect(db_path) as store:
            async with store.jobs.batch() as first:
                first.claim_source("chat", "s")
                first.upsert_chunks([make_chunk(1)])
            async with store.jobs.batch() as second:
                second.claim_source("chat", "s")
                second.upsert_chunks([make_chunk(2)])
            return first.claimed, second.claimed

    assert asyncio.run(main()) == (True, False)
    with memtree.Store(db_path) as store:
        assert store.count_chunks() == 1
