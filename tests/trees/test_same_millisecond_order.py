"""Trees and summaries made within one millisecond keep the order they were
made in: `trees.list` is creation order and `list_summaries` seal order even
when `created_at_ms` / `sealed_at_ms` tie (a fast disk makes two in one
millisecond), because the tie is broken by the rowid, not by the random id.
"""

from __future__ import annotations

import memtree
from memtree import Summary, TreeKind

T0 = 1_700_000_000_000


def test_trees_created_in_one_millisecond_list_in_creation_order(store: memtree.Store) -> None:
    made = [store.trees.create(TreeKind.SOURCE, f"scope-{i}", created_at=T0) for i in range(20)]
    assert [t.id for t in store.trees.list("source")] == [t.id for t in made]


def test_summaries_sealed_in_one_millisecond_list_in_seal_order(store: memtree.Store) -> None:
    store.trees.create(TreeKind.SOURCE, "slack:#eng", id="tree-1", created_at=T0)
    ids = [f"sum-{25 - i:02d}" for i in range(20)]  # descending: an id order would reverse them
    for summary_id in ids:
        store.trees.insert_summary(Summary(summary_id, "tree-1", 1, "c", T0, T0, sealed_at=T0))
    assert [s.id for s in store.trees.list_summaries("tree-1", 1)] == ids
