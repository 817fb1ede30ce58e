"""Job payloads are encoded to JSON once, in Rust: the text is what
``json.dumps(payload, allow_nan=False, ensure_ascii=False)`` writes, so
payloads read back exactly as before, and every refusal keeps its type."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator
from typing import Any

import memtree
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ram_folder


def _dumps(payload: object) -> str:
    return json.dumps(payload, allow_nan=False, ensure_ascii=False)


def _stored(store: memtree.Store, payload: object) -> memtree.Job:
    job_id = store.jobs.enqueue("k", payload)
    job = store.jobs.get(job_id or "")
    assert job is not None
    return job


class Colour(enum.Enum):
    RED = "red"


class Kind(str, enum.Enum):
    CHAT = "chat"


class Level(enum.IntEnum):
    HIGH = 3


class LoudInt(int):
    def __repr__(self) -> str:
        return "loud"

    __str__ = __repr__


class LoudFloat(float):
    def __repr__(self) -> str:
        return "loud"


class Items(dict[str, Any]):
    def items(self) -> Any:  # what json reads for a dict subclass
        return [("from_items", 1)]


class Listy(list[Any]):
    def __iter__(self) -> Any:  # json reads the storage, not __iter__
        return iter(["from_iter"])


SAME_AS_JSON: list[object] = [
    None,
    True,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64,
    -(2**64) - 1,
    10**300,
    0.1,
    -0.0,
    1.0,
    1e16,
    1e-7,
    5e-324,
    1.7976931348623157e308,
    "",
    'quote " backslash \\ slash /',
    "controls \x00 \x01 \x08 \x09 \x0a \x0c \x0d \x1f \x7f",
    "héllo wörld ☃ 𝄞 \u2028",
    [],
    {},
    [1, [2, [3, []]], {"a": {}}],
    (1, 2, (3,)),
    {"b": 1, "a": 2},  # insertion order, not sorted
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key", 10**30: "big"},
    {-0.0: 1, 1e16: 2},
    Kind.CHAT,
    {"level": Level.HIGH},
    LoudInt(7),
    LoudFloat(2.5),
    [LoudInt(2**70)],
    Items(ignored=0),
    Listy([1, 2]),
]


@pytest.mark.parametrize("payload", SAME_AS_JSON, ids=lambda p: type(p).__name__)
def test_text_is_what_json_dumps_writes(store: memtree.Store, payload: object) -> None:
    job = _stored(store, payload)
    assert job.payload_json == _dumps(payload)
    assert job.payload == json.loads(_dumps(payload))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none()),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@pytest.fixture
def ram_store() -> Iterator[memtree.Store]:
    """A store in a RAM folder (``ram_folder``): the property test commits
    300 enqueues, whose fsyncs on a disk took the time; the JSON text is
    what it checks."""
    with ram_folder("memtree-payload-json-") as folder, memtree.Store(folder / "chunks.db") as s:
        yield s


@settings(
    max_examples=300,
    deadline=None,
    # One store for every example: each enqueue is its own row.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(payload=json_values)
def test_any_json_value_is_written_as_json_dumps_writes(
    ram_store: memtree.Store, payload: object
) -> None:
    assert _stored(ram_store, payload).payload_json == _dumps(payload)


class Cell:
    pass


def _deep(depth: int, leaf: object = 0) -> object:
    value: object = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def _cycle_in_dict() -> object:
    d: dict[str, object] = {}
    d["self"] = [d]
    return d


REFUSED: list[tuple[object, type[Exception], str]] = [
    ({1, 2}, TypeError, "set"),
    (b"bytes", TypeError, "bytes"),
    ({"x": Cell()}, TypeError, "Cell"),
    (Colour.RED, TypeError, "Colour"),
    ({(1, 2): 1}, TypeError, "keys must be"),
    ({Cell(): 1}, TypeError, "keys must be"),
    ([math.nan], ValueError, "NaN"),
    ({"x": -math.inf}, ValueError, "inf"),
    ({math.nan: 1}, ValueError, "NaN"),
    (10**400, ValueError, "float"),
    ([-(10**309)], ValueError, "float"),
    (_deep(128), ValueError, "127"),
    (_deep(127, [_deep(0)]), ValueError, "127"),
    (_cycle_in_dict(), ValueError, "circular"),
    ({"x": "lone \ud800"}, ValueError, "UTF-8"),
    ({"lone \udfff": 1}, ValueError, "UTF-8"),
]


@pytest.mark.parametrize(("payload", "error", "why"), REFUSED, ids=lambda p: repr(p)[:20])
def test_refusals_keep_their_type_and_name_the_argument(
    store: memtree.Store, payload: object, error: type[Exception], why: str
) -> None:
    before = store.path.read_bytes()
    for enqueue in (store.jobs.enqueue, store.jobs.batch().enqueue):
        with pytest.raises(error, match="payload") as info:
            enqueue("k", payload)
        assert why in str(info.value)
        # The same verdict json gives, where json gives one itself.
        if error is TypeError:
            with pytest.raises(TypeError):
                _dumps(payload)
    assert store.path.read_bytes() == before


def test_the_deepest_payload_and_a_shared_subtree_are_stored(store: memtree.Store) -> None:
    deepest = _deep(127)
    shared = [1]
    for payload in (deepest, [shared, shared, {"a": shared}]):
        job = _stored(store, payload)
        assert job.payload_json == _dumps(payload)
        assert job.payload == json.loads(_dumps(payload))
