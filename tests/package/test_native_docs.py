"""``help()`` works on the native module: every public class, method, property
and function of ``memtree._native`` (and of its ``testing`` and ``bench``
hooks) carries at run time the docstring its stub gives it, and every
callable has a signature.

The stubs are read with ``ast``, so each name they declare is checked,
whatever is added later. A constructor (``__new__``) is left out: PyO3 puts a
class's documentation on the class, and its signature (checked) on the
class's ``__text_signature__``; ``type.__new__``'s doc is what ``__new__``
shows."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import memtree
import pytest

PACKAGE = Path(memtree.__file__).resolve().parent
STUBS = {
    "memtree._native": PACKAGE / "_native.pyi",
    "memtree._native.testing": PACKAGE / "_native" / "testing.pyi",
    "memtree._native.bench": PACKAGE / "_native" / "bench.pyi",
}


def public_names(stub: Path) -> list[tuple[tuple[str, ...], ast.FunctionDef | ast.ClassDef]]:
    """Every public class, function and method (properties included) the
    stub declares, with its node; dunders other than the protocol methods
    the stub documents are left to Python."""
    found: list[tuple[tuple[str, ...], ast.FunctionDef | ast.ClassDef]] = []
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            found.append(((node.name,), node))
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, ast.FunctionDef) and not sub.name.startswith("_"):
                        found.append(((node.name, sub.name), sub))
    return found


NAMES = [
    (module, qualname, node)
    for module, stub in STUBS.items()
    for qualname, node in public_names(stub)
]


def as_params(
    names: list[tuple[str, tuple[str, ...], ast.FunctionDef | ast.ClassDef]],
) -> list[Any]:
    return [
        pytest.param(module, qualname, node, id=f"{module}.{'.'.join(qualname)}")
        for module, qualname, node in names
    ]


CASES = as_params(NAMES)


def runtime_object(module: ModuleType, qualname: tuple[str, ...]) -> Any:
    """The object behind ``qualname``; a property itself, not its value."""
    obj: Any = getattr(module, qualname[0])
    for part in qualname[1:]:
        obj = inspect.getattr_static(obj, part)
    if isinstance(obj, (staticmethod, classmethod)):
        # The wrapper's own __doc__ is its type's on older Pythons.
        obj = obj.__func__
    return obj


def test_the_stubs_declare_names() -> None:
    assert len(CASES) > 100, len(CASES)


@pytest.mark.parametrize(("module_name", "qualname", "node"), CASES)
def test_runtime_docstring_is_the_stubs(
    module_name: str, qualname: tuple[str, ...], node: ast.FunctionDef | ast.ClassDef
) -> None:
    stub_doc = ast.get_docstring(node)
    assert stub_doc, f"the stub documents {'.'.join(qualname)}"
    obj = runtime_object(importlib.import_module(module_name), qualname)
    runtime_doc = obj.__doc__
    assert runtime_doc, f"{'.'.join(qualname)} has no docstring at run time"
    assert inspect.cleandoc(runtime_doc) == stub_doc


def stub_parameters(node: ast.FunctionDef) -> list[str]:
    args = node.args
    names = [a.arg for a in [*args.posonlyargs, *args.args]]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    if args.vararg:
        names.append("*" + args.vararg.arg)
    names += [a.arg for a in args.kwonlyargs]
    if args.kwarg:
        names.append("**" + args.kwarg.arg)
    return names


def runtime_parameters(obj: Any) -> list[str]:
    names = []
    for p in inspect.signature(obj).parameters.values():
        if p.name in ("self", "cls"):
            continue
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        names.append(prefix + p.name)
    return names


def is_property(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


def has_signature(node: ast.FunctionDef | ast.ClassDef) -> bool:
    """A property has no signature, nor a class whose stub declares no
    constructor: those names are checked for their docstring only."""
    if isinstance(node, ast.ClassDef):
        return any(isinstance(s, ast.FunctionDef) and s.name == "__new__" for s in node.body)
    return not is_property(node)


SIGNATURE_CASES = as_params([name for name in NAMES if has_signature(name[2])])


def test_signature_cases_are_most_of_the_names() -> None:
    assert len(SIGNATURE_CASES) > 100, len(SIGNATURE_CASES)


@pytest.mark.parametrize(("module_name", "qualname", "node"), SIGNATURE_CASES)
def test_runtime_signature_has_the_stubs_parameters(
    module_name: str, qualname: tuple[str, ...], node: ast.FunctionDef | ast.ClassDef
) -> None:
    module = importlib.import_module(module_name)
    if isinstance(node, ast.ClassDef):
        if sys.version_info < (3, 10):
            # Before CPython 3.10 a heap type's docstring loses its text
            # signature; PyO3 puts it back only outside the limited API, and
            # memtree is an abi3 build: on 3.9 help(memtree.Chunk) shows none.
            pytest.skip("CPython 3.9 gives abi3 classes no __text_signature__")
        new = next(
            (s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__new__"),
            None,
        )
        assert new is not None
        assert runtime_parameters(runtime_object(module, qualname)) == stub_parameters(new)
        return
    # Through the attribute: a classmethod or staticmethod bound as Python binds it.
    obj: Any = module
    for part in qualname:
        obj = getattr(obj, part)
    runtime, stub = runtime_parameters(obj), stub_parameters(node)
    if runtime and runtime[-1].startswith("**") and not node.args.kwarg:
        # A runtime ``**changes`` (``Chunk.replace``) takes the keywords the
        # stub spells out one by one: those must follow what precedes it.
        keywords = [a.arg for a in node.args.kwonlyargs]
        assert runtime[:-1] == stub[: len(stub) - len(keywords)], (runtime, stub)
        assert keywords, stub
        return
    assert runtime == stub
