"""The package as installed: what the wheel must carry, and, under
``make wheel-test``, proof that the tests run against site-packages rather
than the source folder."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import sysconfig
from pathlib import Path

import memtree
import pytest

PACKAGE_DIR = Path(memtree.__file__).resolve().parent


def test_typing_files_and_console_script_are_installed() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()
    assert (PACKAGE_DIR / "_native.pyi").is_file()
    for submodule in ("testing", "bench"):
        assert (PACKAGE_DIR / "_native" / f"{submodule}.pyi").is_file()
    script = Path(sys.executable).parent / ("memtree.exe" if os.name == "nt" else "memtree")
    assert script.is_file()


def test_version_and_bundled_sqlite() -> None:
    assert memtree.__version__.count(".") == 2
    major, minor, _patch = (int(p) for p in memtree.sqlite_version().split("."))
    assert (major, minor) >= (3, 45)


def source_tree() -> Path:
    """The checkout the tests came from: the copy's origin under
    tools/test_installed.sh, else the folder above tests/."""
    return Path(os.environ.get("MEMTREE_SOURCE_TREE", Path(__file__).resolve().parents[2]))


def test_one_version_from_cargo_toml() -> None:
    """Cargo.toml's `[package] version` is the one place the version is
    written: the native module's `__version__` is compiled from it, the
    distribution's metadata (pyproject's dynamic version) is filled from it
    by maturin, and the changelog's newest entry names it."""
    assert importlib.metadata.version("memtree") == memtree.__version__
    root = source_tree()
    cargo = (root / "Cargo.toml").read_text(encoding="utf-8")
    package = cargo.split("[package]", 1)[1].split("\n[", 1)[0]
    written = re.search(r'^version = "([^"]+)"$', package, re.MULTILINE)
    assert written is not None, package
    assert memtree.__version__ == written.group(1)
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)
    assert newest is not None and newest.group(1) == written.group(1)


@pytest.mark.skipif(
    os.environ.get("MEMTREE_EXPECT_INSTALLED") != "1", reason="only under make wheel-test"
)
def test_memtree_resolves_to_site_packages() -> None:
    site_dirs = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert any(d in PACKAGE_DIR.parents for d in site_dirs), PACKAGE_DIR
    source = Path(os.environ["MEMTREE_SOURCE_TREE"]).resolve()
    assert source not in PACKAGE_DIR.parents, f"imported from the source tree: {PACKAGE_DIR}"
    assert Path.cwd().resolve() != source
    native = Path(memtree._native.__file__).resolve()
    assert native.parent == PACKAGE_DIR and native.name.endswith(".abi3.so")
