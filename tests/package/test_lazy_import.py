"""`import memtree` loads only the native module; every other public name
loads its module on first use (PEP 562) and is the same object as before."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import memtree
import pytest

#: What `import memtree` must leave unloaded (memtree's own lazy modules and
#: the standard library they pull in).
LAZY_MODULES = [
    "memtree.errors",
    "memtree._codes",
    "memtree._types",
    "memtree._logging",
    "memtree.worker",
    "memtree.aio",
    "memtree.testing",
    "memtree.cli",
    "memtree.bench",
    "asyncio",
    "dataclasses",
    "enum",
    "json",
    "logging",
    "threading",
    "typing",
]


def run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_memtree_loads_no_lazy_module() -> None:
    loaded = run(
        """
        import sys
        before = set(sys.modules)
        import memtree
        print("\\n".join(sorted(set(sys.modules) - before)))
        """
    ).split()
    assert "memtree._native" in loaded
    assert sorted(set(LAZY_MODULES) & set(loaded)) == []


def test_first_use_loads_the_module() -> None:
    loaded = json.loads(
        run(
            """
            import sys, json
            import memtree
            memtree.BusyError
            print(json.dumps(sorted(sys.modules)))
            """
        )
    )
    assert "memtree.errors" in loaded and "memtree.worker" not in loaded


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    got = json.loads(
        run(
            """
            import json
            import memtree
            names = {n: type(getattr(memtree, n)).__name__ for n in memtree.__all__}
            exec("from memtree import *", {})
            print(json.dumps(names))
            """
        )
    )
    assert sorted(got) == sorted(memtree.__all__)


@pytest.mark.parametrize("name", memtree.__all__)
def test_every_name_in_all_is_the_object_of_its_module(name: str) -> None:
    from memtree import _codes, _native, _types, async_worker, errors, worker

    value = getattr(memtree, name)
    homes = [m for m in (_native, _codes, _types, async_worker, errors, worker) if name in vars(m)]
    if name == "errors":
        assert value is errors
    else:
        assert homes, name
        assert all(vars(home)[name] is value for home in homes), name
    exec(f"from memtree import {name} as imported", namespace := {})
    assert namespace["imported"] is value
    assert name in dir(memtree)


def test_dir_lists_all_and_unknown_names_raise_attribute_error() -> None:
    assert set(memtree.__all__) <= set(dir(memtree))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        memtree.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    # Submodules that are no lazy name still import as before.
    from memtree import doctor, stats

    assert doctor.__name__ == "memtree.doctor" and stats.__name__ == "memtree.stats"
    assert memtree.worker.Worker is memtree.Worker


@pytest.mark.parametrize(
    ("setup", "open_store"),
    [
        # logging configured after `import memtree`, the worker imported directly:
        ("import memtree\nimport logging\nfrom memtree.worker import Worker", True),
        # only the native glue has run (a Store), nothing imported the worker:
        ("import memtree\nimport logging", True),
        # logging imported first (the README's order), no memtree call at all:
        ("import logging\nimport memtree", False),
    ],
)
def test_every_memtree_logger_has_the_db_path_default(
    setup: str, open_store: bool, tmp_path: Path
) -> None:
    store = f"memtree.Store({str(tmp_path / 'chunks.db')!r}).close()" if open_store else ""
    code = (
        setup
        + textwrap.dedent(
            """
            import sys
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(name)s %(message)s [%(db_path)s]"))
            logging.getLogger("memtree").addHandler(handler)
            """
        )
        + store
        + textwrap.dedent(
            """
            for name in ("memtree.journal", "memtree.recovery", "memtree.breaker",
                         "memtree.worker"):
                logging.getLogger(name).warning("probe")
            """
        )
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Logging error" not in proc.stderr, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{name} probe [None]"
        for name in ("memtree.journal", "memtree.recovery", "memtree.breaker", "memtree.worker")
    ]
