"""OpenHuman's typed job kinds and payloads (``memtree.JobKind``,
``memtree.JobPayload``).

Ported from OpenHuman: the tests of ``jobs/types.rs`` (kind round trip,
status terminality, dedupe keys per target and per node kind, LLM-bound
kinds, the tagged JSON of ``NodeRef`` and ``AppendTarget``) and the storage
half of three tests of ``jobs/handlers/mod.rs`` (what a seal or an append
leaves in the queue and the buffers).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import memtree
import pytest
from memtree import JobKind, JobPayload, JobStatus, _native


def test_job_kind_roundtrip() -> None:
    for k in JobKind:
        assert JobKind.parse(k.as_str()) is k
    with pytest.raises(ValueError, match="unknown job kind"):
        JobKind.parse("bogus")
    # The Python enum is the core's list, in its order.
    assert [(k.value, k.is_llm_bound) for k in JobKind] == _native.job_kinds()


def test_job_status_terminality() -> None:
    assert not JobStatus.READY.is_terminal
    assert not JobStatus.RUNNING.is_terminal
    assert JobStatus.DONE.is_terminal
    assert JobStatus.FAILED.is_terminal
    assert JobStatus.CANCELLED.is_terminal


def test_dedupe_keys_distinguish_targets() -> None:
    p_src = JobPayload.append_buffer("leaf", "c1", "source", "slack:#eng")
    p_topic = JobPayload.append_buffer("leaf", "c1", "topic", "topic:abc")
    assert p_src.dedupe_key != p_topic.dedupe_key
    assert p_src.dedupe_key == "append:source:slack:#eng:leaf:c1"
    assert p_topic.dedupe_key == "append:topic:topic:abc:leaf:c1"


def test_dedupe_keys_distinguish_node_kinds() -> None:
    p_leaf = JobPayload.append_buffer("leaf", "x", "topic", "t")
    p_summary = JobPayload.append_buffer("summary", "x", "topic", "t")
    assert p_leaf.dedupe_key != p_summary.dedupe_key
    r_leaf = JobPayload.topic_route("leaf", "x")
    r_summary = JobPayload.topic_route("summary", "x")
    assert r_leaf.dedupe_key != r_summary.dedupe_key
    assert (r_leaf.dedupe_key, r_summary.dedupe_key) == (
        "topic_route:leaf:x",
        "topic_route:summary:x",
    )


def test_llm_bound_kinds() -> None:
    assert JobKind.EXTRACT_CHUNK.is_llm_bound
    assert JobKind.SEAL.is_llm_bound
    assert JobKind.DIGEST_DAILY.is_llm_bound
    assert JobKind.TOPIC_ROUTE.is_llm_bound
    assert not JobKind.APPEND_BUFFER.is_llm_bound
    assert not JobKind.FLUSH_STALE.is_llm_bound


def test_node_ref_serializes_with_kind_tag() -> None:
    p = JobPayload.topic_route("leaf", "x")
    assert '"kind":"leaf"' in p.payload_json
    assert p.payload == {"node": {"kind": "leaf", "chunk_id": "x"}}


def test_append_target_serializes_with_kind_tag() -> None:
    p = JobPayload.append_buffer("leaf", "c", "source", "x")
    assert '"kind":"source"' in p.payload_json
    assert '"source_id":"x"' in p.payload_json
    assert p.payload["target"] == {"kind": "source", "source_id": "x"}


def test_every_payload_is_serdes_json_with_openhumans_key() -> None:
    day = date(2026, 12, 6)
    cases = [
        (JobPayload.extract_chunk("c1"), "extract_chunk", '{"chunk_id":"c1"}', "extract:c1"),
        (
            JobPayload.seal("t", 2),
            "seal",
            '{"tree_id":"t","level":2,"force_now_ms":null}',
            "seal:t:2",
        ),
        (
            JobPayload.seal("t", 0, force_now=datetime(2026, 1, 1, tzinfo=timezone.utc)),
            "seal",
            '{"tree_id":"t","level":0,"force_now_ms":1767225600000}',
            "seal:t:0",
        ),
        (
            JobPayload.digest_daily(day),
            "digest_daily",
            '{"date_iso":"2026-12-06"}',
            "digest_daily:2026-12-06",
        ),
        (
            JobPayload.flush_stale("2026-12-06", max_age_secs=60),
            "flush_stale",
            '{"max_age_secs":60}',
            "flush_stale:2026-12-06",
        ),
        (
            JobPayload.flush_stale(day),
            "flush_stale",
            '{"max_age_secs":null}',
            "flush_stale:2026-12-06",
        ),
    ]
    for payload, kind, text, key in cases:
        assert (payload.kind, payload.payload_json, payload.dedupe_key) == (kind, text, key)
        assert payload.kind is JobKind(kind)
        assert payload.payload == json.loads(text)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: JobPayload.extract_chunk(""), "chunk_id"),
        (lambda: JobPayload.append_buffer("branch", "x", "source", "s"), "node_kind"),
        (lambda: JobPayload.append_buffer("leaf", "x", "forest", "s"), "target_kind"),
        (lambda: JobPayload.seal("t", -1), "level"),
        (lambda: JobPayload.seal("t", 33), "level"),
        (lambda: JobPayload.digest_daily("06/12/2026"), "date_iso"),
        (lambda: JobPayload.flush_stale("2026-12-06", -5), "max_age_secs"),
    ],
)
def test_bad_payload_fields_are_refused(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_a_kind_member_works_wherever_a_kind_string_does(store: memtree.Store) -> None:
    p = JobPayload.seal("t", 1)
    job_id = store.jobs.enqueue(p.kind, p.payload, dedupe_key=p.dedupe_key)
    assert job_id is not None
    # The same key again is a dedupe collision, as in OpenHuman.
    assert store.jobs.enqueue(JobKind.SEAL, p.payload, dedupe_key=p.dedupe_key) is None
    job = store.jobs.get(job_id)
    assert job is not None and job.kind == "seal" and job.kind == JobKind.SEAL
    assert job.payload == p.payload  # memtree encodes a dict with json.dumps spacing
    assert [j.id for j in store.jobs.list(kind=JobKind.SEAL)] == [job_id]
    assert store.jobs.claim_next(kinds=[JobKind.TOPIC_ROUTE]) is None
    claimed = store.jobs.claim_next(kinds=[JobKind.SEAL])
    assert claimed is not None and claimed.id == job_id


# ── the storage half of OpenHuman's jobs/handlers tests ─────────────────


def seal_ready_tree(store: memtree.Store, kind: str, scope: str) -> memtree.Tree:
    tree = store.trees.get_or_create(kind, scope)  # type: ignore[arg-type]
    chunk = memtree.Chunk(
        f"{scope}-seed", "content", "chat", "slack:#eng", "alice", 1_700_000_000_000,
        token_count=60_000,
    )  # fmt: skip
    store.upsert_chunks([chunk])
    buf = store.trees.append_to_buffer(tree.id, 0, [chunk.id], [chunk.token_count], 0)
    assert buf.should_seal
    return tree


def test_source_tree_seal_enqueues_summary_topic_route(store: memtree.Store) -> None:
    tree = seal_ready_tree(store, "source", "slack:#eng")
    assert store.jobs.list(kind="topic_route") == []
    buf = store.trees.get_buffer(tree.id, 0)
    summary = store.trees.seal(tree.id, 0, buf.version, content="s")
    routes = store.jobs.list(kind="topic_route")
    assert len(routes) == 1, "source-tree seal must enqueue summary-side topic_route"
    assert store.jobs.counts()["ready"] == 1
    assert routes[0].payload == {"node": {"kind": "summary", "summary_id": summary.id}}
    assert routes[0].payload_json == JobPayload.topic_route("summary", summary.id).payload_json


def test_topic_tree_seal_does_not_enqueue_topic_route(store: memtree.Store) -> None:
    tree = seal_ready_tree(store, "topic", "topic:phoenix-migration")
    buf = store.trees.get_buffer(tree.id, 0)
    store.trees.seal(tree.id, 0, buf.version, content="s")
    assert store.jobs.list(kind="topic_route") == [], "topic trees are sinks"
    assert store.trees.count_summaries(tree.id) == 1


def test_append_of_a_summary_pushes_it_into_a_topic_tree(store: memtree.Store) -> None:
    topic = store.trees.get_or_create("topic", "email:alice@example.com")
    assert store.trees.get_buffer(topic.id, 0).is_empty
    source = seal_ready_tree(store, "source", "slack:#eng")
    buf = store.trees.get_buffer(source.id, 0)
    summary = store.trees.seal(
        source.id, 0, buf.version, content="s", token_count=900, enqueue_follow_ups=False
    )
    pre = sum(store.jobs.counts().values())
    p = JobPayload.append_buffer("summary", summary.id, "topic", topic.id)
    assert p.dedupe_key == f"append:topic:{topic.id}:summary:{summary.id}"
    l0 = store.trees.append_to_buffer(
        topic.id, 0, [summary.id], [summary.token_count], summary.time_range_start
    )
    assert l0.item_ids == (summary.id,)
    assert l0.token_sum > 0
    assert sum(store.jobs.counts().values()) == pre, "no new jobs: the gate is not met"
