"""A wrongly typed argument is a ``TypeError`` whose message names the
argument, on every supported CPython. PyO3 names a failed argument only in
an exception note (``add_note``), which CPython < 3.11 lacks, so memtree
converts each argument of its public API itself (``from_py_with``, in
rust/python/convert/args.rs); the first test checks that no plain-typed
parameter is left in the glue, the second that the messages carry the
names on the interpreter running the suite (CI runs it on 3.9 to 3.13)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree import _native

SOURCE = Path(os.environ.get("MEMTREE_SOURCE_TREE", Path(__file__).resolve().parents[2]))
GLUE = SOURCE / "rust" / "python"
# Conversions PyO3 does that cannot fail for a caller: the interpreter, the
# object itself, a borrowed Python object the code converts with named errors.
UNCHECKED_TYPE = re.compile(
    r"^(Python<'\w+>|&?Bound<'\w+, \w+>|Option<&Bound<'\w+, \w+>>|Py<Self>)$"
)
# Not the public API: private helpers the package calls with values it
# built itself (the test and bench hooks, in hooks/, are not scanned).
PRIVATE = {
    "error_from_code",
    "classify_code",
    "code_name",
    "wait_job_signal",
    "register",
}


def plain_parameters(source: str) -> list[tuple[str, str, str]]:
    """``(function, parameter, type)`` of every parameter of a
    ``#[pymethods]`` or ``#[pyfunction]`` function that PyO3 converts by
    its type alone."""
    found = []
    blocks = re.finditer(r"#\[pymethods\][\s\S]*?\n\}\n|#\[pyfunction\][\s\S]*?\)\s*->", source)
    for block in blocks:
        for fn in re.finditer(r"\bfn (\w+)(?:<[^>]*>)?\(([\s\S]*?)\)\s*(?:->|\{)", block.group(0)):
            name, params = fn.groups()
            if name in PRIVATE or (name.startswith("__") and name != "__new__"):
                continue
            depth, current, parts = 0, "", []
            for ch in params:
                depth += (ch in "<([" and 1) or (ch in ">)]" and -1) or 0
                if ch == "," and depth == 0:
                    parts.append(current)
                    current = ""
                else:
                    current += ch
            parts.append(current)
            for part in (" ".join(p.split()) for p in parts):
                if ":" not in part or "from_py_with" in part:
                    continue
                pname, ptype = (s.strip() for s in part.split(":", 1))
                pname = pname.split()[-1]
                if pname in ("self", "slf", "_cls") or UNCHECKED_TYPE.match(ptype):
                    continue
                found.append((name, pname, ptype))
    return found


def test_the_glue_converts_every_public_argument_itself() -> None:
    if not GLUE.is_dir():
        pytest.skip("the Rust sources are not beside the tests (an installed-package run)")
    files = [p for p in sorted(GLUE.rglob("*.rs")) if "hooks" not in p.parts]
    assert len(files) > 10, files
    plain = {
        f"{path.relative_to(GLUE)}: {fn}({param}: {ptype})"
        for path in files
        for fn, param, ptype in plain_parameters(path.read_text(encoding="utf-8"))
    }
    assert plain == set(), sorted(plain)


def test_the_scan_finds_a_plain_parameter() -> None:
    # The scan itself can fail: a plain-typed argument is reported.
    source = "#[pymethods]\nimpl X {\n    fn f(&self, py: Python<'_>, flag: bool) -> u8 {\n}\n"
    assert plain_parameters(source) == [("f", "flag", "bool")]


NOW = datetime.now(timezone.utc)
Call = Callable[[memtree.Store], Any]
CASES: list[tuple[str, Call]] = [
    ("include_summaries", lambda s: s.search_text("words", include_summaries="yes")),
    ("include_summaries", lambda s: s.search_vector([1.0, 0.0], include_summaries=1)),
    ("include_summaries", lambda s: s.search(text="words", include_summaries=None)),
    ("full", lambda s: s.check(full="yes")),
    ("source_id", lambda s: s.delete_chunks(timedelta(days=1), source_id=3)),
    ("owner", lambda s: s.delete_chunks(timedelta(days=1), owner=b"alice")),
    ("score", lambda s: memtree.Summary("s", "t", 1, "c", NOW, NOW, score="high")),
    ("deleted", lambda s: memtree.Summary("s", "t", 1, "c", NOW, NOW, deleted="no")),
    ("score", lambda s: s.trees.seal("t", 0, "v", content="c", score="high")),
    ("enqueue_follow_ups", lambda s: s.trees.seal("t", 0, "v", content="c", enqueue_follow_ups=0)),
    ("node_kind", lambda s: s.scores.index_entities("n", [], timestamp=NOW, node_kind=1)),
    ("days_back", lambda s: s.scheduler.backfill_missing_digests("7")),
    ("chunk_id", lambda s: memtree.JobPayload.extract_chunk(7)),
    ("node_kind", lambda s: memtree.JobPayload.append_buffer(1, "n", "source", "t")),
    ("target_id", lambda s: memtree.JobPayload.append_buffer("leaf", "n", "source", 2)),
    ("tree_id", lambda s: memtree.JobPayload.seal(3, 0)),
    ("level", lambda s: memtree.JobPayload.seal("t", "0")),
    ("node_id", lambda s: memtree.JobPayload.topic_route("leaf", None)),
    ("max_age_secs", lambda s: memtree.JobPayload.flush_stale(date(2026, 1, 1), "60")),
    ("must_exist", lambda s: _native.check_path("x.db", must_exist="yes")),
]


@pytest.mark.parametrize(
    ("name", "call"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
)
def test_a_wrong_type_is_a_type_error_naming_the_argument(
    store: memtree.Store, name: str, call: Call
) -> None:
    with pytest.raises(TypeError) as caught:
        call(store)
    # In the message itself, not only in a note CPython < 3.11 never shows.
    assert re.search(rf"\b{name}\b", str(caught.value)), str(caught.value)
