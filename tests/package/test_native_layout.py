"""The native module's layout: the product namespace holds the product, the
test and benchmark hooks live in their own submodules, and the hooks' dicts
carry exactly the keys their TypedDicts promise."""

from __future__ import annotations

import importlib
import typing
from pathlib import Path

import memtree
import pytest
from memtree import _native, testing

HOOKS = {
    "testing": {
        "abort_erasure_at",
        "arm_crash",
        "circuit_status",
        "clear_copy_fault",
        "clear_fault",
        "crash_state",
        "disarm_crash",
        "error_classes",
        "error_variants",
        "faults_fired",
        "inject_copy_fault",
        "inject_fault",
        "inject_faults",
        "io_stats",
        "method_calls",
        "open_counters",
        "reset_io_stats",
        "set_adopt_check_budget",
        "set_busy_timeout",
        "set_circuit_cooldown",
        "set_group_commit_limit",
        "vector_cache_reads",
    },
    "bench": {
        "chunk_columns",
        "chunks",
        "commits",
        "insert_select",
        "rows",
        "upsert_sql",
        "walk_phases",
    },
}


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_submodules_are_importable_modules(name: str) -> None:
    module = importlib.import_module(f"memtree._native.{name}")
    assert module is getattr(_native, name)
    assert module.__name__ == f"memtree._native.{name}"
    assert set(module.__all__) == HOOKS[name]
    for fn in HOOKS[name]:
        assert getattr(module, fn).__module__ == module.__name__


def test_product_namespace_holds_no_hooks() -> None:
    hooks = HOOKS["testing"] | {f"bench_{n}" for n in HOOKS["bench"]} | HOOKS["bench"]
    assert hooks.isdisjoint(_native.__all__)
    assert not [n for n in hooks if hasattr(_native, n)]


def _assert_typed_dict(value: object, cls: type) -> None:
    assert isinstance(value, dict)
    assert list(value) == list(typing.get_type_hints(cls))
    assert all(type(v) is int for v in value.values())


def test_stats_and_reports_are_the_promised_dicts(store: memtree.Store) -> None:
    _assert_typed_dict(testing.io_stats(store.path), testing.IoStats)
    _assert_typed_dict(testing.open_counters(store.path), testing.OpenCounters)
    assert testing.open_counters(store.path)["connections_opened"] >= 1


def test_crash_report_is_the_promised_dict(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    memtree.Store(path).close()
    assert testing.disarm_crash(path) is None
    testing.arm_crash(path, seed=1, at_sync=10**6)
    report = testing.disarm_crash(path)
    _assert_typed_dict(report, testing.CrashReport)
    assert report is not None and report["crashed"] == 0
