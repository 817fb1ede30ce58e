"""`Worker` and `AsyncWorker` check their shared arguments with one helper:
the same input is refused by both, with the same exception type and the same
message (naming the argument), before anything touches the queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import memtree
import pytest
from memtree.async_worker import AsyncWorker


def _sync_handler(job: memtree.Job) -> None:
    return None


async def _async_handler(job: memtree.Job) -> None:
    return None


def _worker(store: memtree.Store, **kwargs: Any) -> object:
    handlers = kwargs.pop("handlers", {"k": _sync_handler})
    return memtree.Worker(store, handlers, **kwargs)


def _async_worker(store: memtree.Store, **kwargs: Any) -> object:
    handlers = kwargs.pop("handlers", {"k": _async_handler})
    return AsyncWorker(store, handlers, **kwargs)


BUILDERS = [pytest.param(_worker, id="Worker"), pytest.param(_async_worker, id="AsyncWorker")]

BAD_ARGUMENTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"handlers": {}}, ValueError, "handlers"),
    ({"concurrency": 0}, ValueError, "concurrency"),
    ({"poll_interval": 0}, ValueError, "poll_interval"),
    ({"poll_interval": float("nan")}, ValueError, "poll_interval"),
    ({"lease": 300}, TypeError, "lease: expected a timedelta"),
    ({"lease": timedelta(microseconds=10)}, ValueError, "lease: must be at least"),
    ({"lease": timedelta.max}, ValueError, "lease: would end after"),
    ({"priorities": ["k"]}, TypeError, "priorities: expected a mapping"),
    ({"priorities": {"k": "high"}}, TypeError, r"priorities\['k'\]: expected an int"),
    ({"priorities": {"k": True}}, TypeError, r"priorities\['k'\]: expected an int"),
    ({"priorities": {1: 1}}, TypeError, "priorities: a kind must be a str"),
    ({"priorities": {"": 1}}, ValueError, "priorities: a kind must not be empty"),
    ({"priorities": {"k": 2**63}}, ValueError, "past 64 bits"),
    ({"retry": {"k": (1, 2)}}, TypeError, r"retry\['k'\]: expected a memtree.RetryPolicy"),
]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    BAD_ARGUMENTS,
    ids=[f"{next(iter(a))}-{i}" for i, (a, _, _) in enumerate(BAD_ARGUMENTS)],
)
def test_bad_worker_arguments_are_refused_at_construction(
    store: memtree.Store,
    build: Callable[..., object],
    arguments: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    store.jobs.enqueue("k", {})
    with pytest.raises(error, match=message) as raised:
        build(store, **arguments)
    assert type(raised.value) is error
    # Refused before any claim: the job is still ready and untouched.
    assert store.jobs.counts()["ready"] == 1
    assert store.jobs.counts()["running"] == 0


@pytest.mark.parametrize(
    "arguments",
    [a for a, _, _ in BAD_ARGUMENTS],
    ids=[f"{next(iter(a))}-{i}" for i, (a, _, _) in enumerate(BAD_ARGUMENTS)],
)
def test_both_workers_refuse_with_the_same_message(
    store: memtree.Store, arguments: dict[str, Any]
) -> None:
    refusals = []
    for build in (_worker, _async_worker):
        with pytest.raises(Exception) as raised:
            build(store, **dict(arguments))
        refusals.append((type(raised.value), str(raised.value)))
    assert refusals[0] == refusals[1]


@pytest.mark.parametrize("build", BUILDERS)
def test_good_arguments_are_accepted(store: memtree.Store, build: Callable[..., object]) -> None:
    build(
        store,
        concurrency=2,
        poll_interval=0.5,
        lease=timedelta(seconds=30),
        priorities={"k": -(2**63)},
        retry={"k": memtree.RetryPolicy(max_attempts=2)},
    )
