"""The public API used as a typed user would; checked by ``mypy --strict``
(``make lint``) and run by pytest."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import memtree
from memtree import errors, testing
from memtree.aio import AsyncStore


def use_the_api(workspace: Path) -> list[str]:
    now = datetime.now(timezone.utc)
    chunk = memtree.Chunk(
        "typed-1",
        "hello",
        memtree.SourceKind.EMAIL,
        "thread-9",
        "alice",
        now,
        tags=["inbox"],
        embedding=[0.1, 0.2],
    )
    with memtree.Store.open(workspace) as store:
        written: int = store.upsert_chunks([chunk])
        found: memtree.Chunk | None = store.get_chunk("typed-1")
        listed: list[memtree.Chunk] = store.list_chunks(source_kind="email", since=now, limit=5)
        counts: dict[str, int] = store.count_by_lifecycle_status()
        upserted, removed = store.replace_source_chunks("email", "thread-9", [chunk])
        stats: dict[str, int] = testing.io_stats(store.path)
        mode: str = store.journal_mode
        path: Path = store.path
    try:
        raise errors.from_code(memtree.ResultCode.IOERR_SHMOPEN)
    except memtree.TransientIOError as e:
        name: str = e.name
        transient: bool = e.transient
    assert found is not None and found.embedding is not None
    return [
        str(written),
        found.source_kind.value,
        str(len(listed)),
        str(counts),
        str(upserted + removed),
        str(stats["sync_calls"]),
        mode,
        path.name,
        name,
        str(transient),
    ]


def test_typed_usage(tmp_path: Path) -> None:
    out = use_the_api(tmp_path)
    assert out[0] == "1" and out[1] == "email" and out[-2] == "SQLITE_IOERR_SHMOPEN"


async def use_the_async_api(workspace: Path) -> int:
    async with AsyncStore.open(workspace) as store:
        written: int = await store.upsert_chunks([])
        listed: list[memtree.Chunk] = await store.list_chunks(limit=1)
        mode: str = store.journal_mode
    reopened: AsyncStore = await AsyncStore.connect(store.path)
    await reopened.close()
    return written + len(listed) + (mode == "truncate")


def test_typed_async_usage(tmp_path: Path) -> None:
    assert asyncio.run(use_the_async_api(tmp_path)) == 1
