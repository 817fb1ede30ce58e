"""Full-text search: ``search_text`` ranks exactly as SQLite's ``bm25()`` over
an independent FTS5 table of the same rows, filters are exact, plain words are
never a syntax error (hypothesis), and the FTS5 syntax reports SQLite's
message."""

from __future__ import annotations

import asyncio
import math
import random
import re
import sqlite3
import unicodedata
from pathlib import Path
from typing import Any

import memtree
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memtree.aio import AsyncStore

BASE_MS = 1_790_000_000_000
KINDS = ["chat", "email", "document"]
OWNERS = ["o0", "o1", "o2"]
VOCAB = [
    "apple", "banana", "cherry", "date", "elder", "fig", "grape", "crème", "brûlée",
    "Ärger", "niño", "façade", "日本語", "AND", "OR", "NOT", "NEAR", "x42", "7",
]  # fmt: skip


def corpus(n: int, seed: int) -> list[memtree.Chunk]:
    """Chunks of 3-12 vocabulary words, some repeated (term frequency), some
    identical (bm25 ties), spread over every filter."""
    rng = random.Random(seed)
    texts: list[str] = []
    for i in range(n):
        if i % 17 == 5 and texts:
            texts.append(texts[0])  # a tie with chunk 0
        else:
            texts.append(" ".join(rng.choice(VOCAB) for _ in range(rng.randint(3, 12))))
    return [
        memtree.Chunk(
            f"c{(i * 7919) % 1000:03d}-{i}",
            texts[i],
            KINDS[i % 3],
            f"s{i % 5}",
            OWNERS[(i // 3) % 3],
            BASE_MS + (i // 2) * 60_000,
        )
        for i in range(n)
    ]


CHUNKS = corpus(400, seed=1)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[memtree.Store, sqlite3.Connection]:
    """The store and, beside it, a stdlib FTS5 table of the same rows (its own
    index, not memtree's) with the filter columns."""
    db = tmp_path_factory.mktemp("text") / "s.db"
    store = memtree.Store(db)
    store.upsert_chunks(CHUNKS)
    peer = sqlite3.connect(":memory:")
    peer.execute(
        "CREATE VIRTUAL TABLE peer USING fts5(content, id UNINDEXED, source_kind UNINDEXED,"
        " source_id UNINDEXED, owner UNINDEXED, ts UNINDEXED,"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    peer.executemany(
        "INSERT INTO peer (content, id, source_kind, source_id, owner, ts) VALUES (?,?,?,?,?,?)",
        [(c.content, c.id, c.source_kind, c.source_id, c.owner, c.timestamp_ms) for c in CHUNKS],
    )
    yield store, peer
    store.close()
    peer.close()


def fts_words(query: str) -> str:
    """Plain words as FTS5 strings (the reference for ``syntax="words"``)."""
    words = []
    for w in folded_words(query):
        if w not in words:
            words.append(w)
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def folded_words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", fold(text))


def peer_ranking(
    peer: sqlite3.Connection, match: str, k: int, flt: dict[str, Any]
) -> list[tuple[str, float]]:
    clauses, args = [], []
    for column, value in (
        ("source_kind", flt.get("source_kind")),
        ("source_id", flt.get("source_id")),
        ("owner", flt.get("owner")),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if flt.get("since") is not None:
        clauses.append("ts >= ?")
        args.append(flt["since"])
    if flt.get("until") is not None:
        clauses.append("ts < ?")
        args.append(flt["until"])
    where = "".join(f" AND {c}" for c in clauses)
    return [
        (r[0], -r[1])
        for r in peer.execute(
            f"SELECT id, bm25(peer) FROM peer WHERE peer MATCH ?{where}"
            " ORDER BY bm25(peer), id LIMIT ?",
            (match, *args, k),
        )
    ]


def to_ms(value: Any) -> int | None:
    return None if value is None else int(value)


FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "source_kind": st.sampled_from(KINDS),
        "source_id": st.sampled_from([f"s{i}" for i in range(5)]),
        "owner": st.sampled_from(OWNERS),
        "since": st.integers(BASE_MS, BASE_MS + 200 * 60_000),
        "until": st.integers(BASE_MS, BASE_MS + 200 * 60_000),
    },
)


def store_kwargs(flt: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime, timezone

    out = dict(flt)
    for key in ("since", "until"):
        if key in out:
            out[key] = datetime.fromtimestamp(out[key] / 1000, tz=timezone.utc)
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(st.sampled_from(VOCAB), min_size=1, max_size=3),
    k=st.sampled_from([1, 3, 10, 1000]),
    flt=FILTERS,
)
def test_ranking_equals_sqlite_bm25_over_the_same_filtered_rows(
    searched: tuple[memtree.Store, sqlite3.Connection],
    words: list[str],
    k: int,
    flt: dict[str, Any],
) -> None:
    store, peer = searched
    query = " ".join(words)
    hits = store.search_text(query, k, **store_kwargs(flt))
    want = peer_ranking(peer, fts_words(query), k, flt)
    assert [h.id for h in hits] == [w[0] for w in want]
    for rank, (hit, (_, score)) in enumerate(zip(hits, want), start=1):
        assert math.isclose(hit.score, score, rel_tol=1e-5, abs_tol=1e-9)
        assert hit.text_rank == rank and hit.vector_rank is None and hit.kind == "chunk"
        assert hit.snippet is not None and hit.snippet != ""


def test_the_fixture_has_ties_and_k_rows_whenever_k_match(
    searched: tuple[memtree.Store, sqlite3.Connection],
) -> None:
    store, _ = searched
    tied = store.search_text(CHUNKS[0].content, 1000)
    scores = [h.score for h in tied]
    assert len(scores) != len(set(scores)), "some hits tie"
    ties = [h.id for h in tied if h.score == tied[0].score]
    assert ties == sorted(ties) and len(ties) > 1
    # A filter matching few rows still fills k when k rows match.
    matching = [
        c.id
        for c in CHUNKS
        if c.owner == "o2" and c.source_kind == "email" and "apple" in c.content
    ]
    assert len(matching) >= 5
    hits = store.search_text("apple", 5, owner="o2", source_kind="email")
    assert len(hits) == 5 and {h.id for h in hits} <= set(matching)
    assert len(store.search_text("apple", 10_000, owner="o2", source_kind="email")) == len(matching)


ALPHABET = "abcXYZ019 \t\n\"'()*^:+-.,;!?&|{}[]<>/\\_~`@#$%=éèüñçàÅÉ日本語テキスト🎉😀\u00a0\u2003"


def query_text() -> st.SearchStrategy[str]:
    piece = st.one_of(
        st.sampled_from([*VOCAB, "AND", "OR", "NOT", "NEAR", "*", "^"]),
        st.text(ALPHABET, max_size=6),
    )
    return st.lists(piece, max_size=6).map(lambda parts: " ".join(parts))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.one_of(query_text(), st.text(ALPHABET, max_size=30)))
def test_plain_words_never_raise_and_every_hit_holds_every_word(
    searched: tuple[memtree.Store, sqlite3.Connection], query: str
) -> None:
    store, _ = searched
    words = set(folded_words(query))
    if not words:
        with pytest.raises(ValueError, match="query"):
            store.search_text(query)
        return
    hits = store.search_text(query, 50)
    content = {c.id: set(folded_words(c.content)) for c in CHUNKS}
    for hit in hits:
        assert words <= content[hit.id], (query, hit.id)
    expected = sum(words <= c for c in content.values())
    assert len(hits) == min(50, expected)


def test_fts5_syntax_and_its_errors(searched: tuple[memtree.Store, sqlite3.Connection]) -> None:
    store, peer = searched
    for query in [
        "apple OR banana",
        "apple NOT cherry",
        '"crème brûlée"',
        "gra*",
        "NEAR(fig date, 2)",
    ]:
        hits = store.search_text(query, 1000, syntax="fts5")
        assert [h.id for h in hits] == [w[0] for w in peer_ranking(peer, query, 1000, {})], query
    bad_queries = {
        "apple AND (": "syntax error",
        '"unterminated': "unterminated string",
        "nosuchcolumn: apple": "no such column",
        "AND": "syntax error",
        "": "no word",
    }
    for bad, message in bad_queries.items():
        with pytest.raises(ValueError, match="query") as err:
            store.search_text(bad, syntax="fts5")
        assert message in str(err.value), err.value


def test_arguments_are_checked(searched: tuple[memtree.Store, sqlite3.Connection]) -> None:
    store, _ = searched
    with pytest.raises(TypeError, match="query"):
        store.search_text(b"apple")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="k"):
        store.search_text("apple", True)
    with pytest.raises(ValueError, match="syntax"):
        store.search_text("apple", syntax="regex")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query"):
        store.search_text(" ... !!! ")
    assert len(store.search_text("apple", 0)) == 1  # k clamps like limit


def test_summaries_compete_and_tombstones_leave(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([memtree.Chunk("c1", "walrus on the ice", "chat", "s", "o", BASE_MS)])
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms) VALUES ('t', 'k', 's', 0)"
        )
        conn.executemany(
            "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, content, token_count,"
            " time_range_start_ms, time_range_end_ms, sealed_at_ms, deleted)"
            " VALUES (?, 't', 'k', 1, ?, 1, 0, ?, 0, ?)",
            [("s1", "walrus walrus summary", BASE_MS, 0), ("s2", "walrus gone", BASE_MS, 1)],
        )
    conn.close()
    with memtree.Store(db) as store:
        assert [h.id for h in store.search_text("walrus")] == ["c1"]
        hits = store.search_text("walrus", include_summaries=True)
        assert {(h.id, h.kind) for h in hits} == {("c1", "chunk"), ("s1", "summary")}
        assert [h.text_rank for h in hits] == [1, 2]
        assert store.search_text("walrus", include_summaries=True, owner="o")[0].id == "c1"
        assert len(store.search_text("walrus", include_summaries=True, owner="o")) == 1


def test_async_store_searches_text(tmp_path: Path) -> None:
    async def run() -> list[memtree.Hit]:
        async with AsyncStore.connect(tmp_path / "a.db") as store:
            await store.upsert_chunks(
                [memtree.Chunk("c1", "otter river", "chat", "s", "o", BASE_MS)]
            )
            return await store.search_text("OTTER")

    hits = asyncio.run(run())
    assert [h.id for h in hits] == ["c1"] and hits[0].snippet == "otter river"


def stdlib_tokens(text: str) -> set[str]:
    """The tokens of ``text`` by stdlib sqlite3's FTS5 with the same
    tokenizer (an oracle independent of memtree's build)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE t USING fts5(c, tokenize='unicode61 remove_diacritics 2')"
        )
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        conn.execute("INSERT INTO t (c) VALUES (?)", (text,))
        return {r[0] for r in conn.execute("SELECT term FROM v")}
    finally:
        conn.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(max_size=40))
def test_any_unicode_text_is_plain_words(
    searched: tuple[memtree.Store, sqlite3.Connection], query: str
) -> None:
    """Any surrogate-free text: hits that hold every word, or (only when
    the text has no word at all) a ValueError naming ``query``."""
    store, _ = searched
    words = stdlib_tokens(query)
    try:
        hits = store.search_text(query, 50)
    except ValueError as e:
        assert str(e).startswith("query"), e
        assert not words, (query, words)
        return
    assert words, query
    for hit in hits:
        content = next(c.content for c in CHUNKS if c.id == hit.id)
        assert words <= stdlib_tokens(content), (query, hit.id)
