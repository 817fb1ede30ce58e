"""``memtree demo``: ingests a short chat and a document into a workspace,
lists them, and shows the journal mode and the side files."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from memtree._native import Chunk, Store, sqlite_version
from memtree._types import SourceKind

__all__ = ["demo"]

SIDE_SUFFIXES = ("-journal", "-wal", "-shm")


def _demo_chunks(now: datetime) -> list[Chunk]:
    conversation = [
        "Alice: shall we move the store off WAL?",
        "Bob: yes, one connection per file never used concurrent readers.",
        "Alice: and the -shm file keeps failing to open under the sandbox.",
    ]
    chunks = [
        Chunk(
            f"chat-standup-{i}",
            text,
            SourceKind.CHAT,
            "standup-2026-11-25",
            "alice",
            now - timedelta(minutes=10 - i),
            tags=("standup", "storage"),
            token_count=(len(text) + 3) // 4,
            seq_in_source=i,
        )
        for i, text in enumerate(conversation)
    ]
    chunks.append(
        Chunk(
            "doc-design-0",
            "TRUNCATE journal + synchronous=FULL: every commit is durable, no side files.",
            "document",
            "DESIGN.md",
            "alice",
            now - timedelta(days=1),
            token_count=19,
            embedding=[0.25, -0.5, 0.125],
        )
    )
    return chunks


def _side_files(db: Path) -> str:
    parts = []
    for suffix in SIDE_SUFFIXES:
        side = Path(str(db) + suffix)
        state = f"{side.stat().st_size} bytes" if side.exists() else "absent"
        parts.append(f"{suffix}: {state}")
    return ", ".join(parts)


def demo(workspace: Path | None) -> int:
    """Ingest a few chunks into a workspace, list them, show the journal."""
    with tempfile.TemporaryDirectory(prefix="memtree-demo-") as tmp:
        root = workspace or Path(tmp)
        now = datetime.now(timezone.utc)
        with Store.open(root) as store:
            print(f"memtree demo (SQLite {sqlite_version()})")
            print(f"database:     {store.path}")
            print(f"journal mode: {store.journal_mode}")
            if store.claim_source(SourceKind.CHAT, "standup-2026-11-25"):
                written = store.upsert_chunks(_demo_chunks(now))
                print(f"ingested:     {written} chunks in one transaction")
            print(f"stored:       {store.count_chunks()} chunks")
            print("newest chat chunks:")
            for chunk in store.list_chunks(source_kind=SourceKind.CHAT, limit=5):
                print(f"  {chunk.timestamp:%H:%M:%S}  {chunk.id:<16} {chunk.content}")
            print(f"lifecycle:    {store.count_by_lifecycle_status()}")
            print(f"integrity:    {', '.join(store.check())}")
            print(f"side files:   {_side_files(store.path)}")
            print("              (TRUNCATE keeps an empty -journal; no -wal or -shm)")
    return 0
