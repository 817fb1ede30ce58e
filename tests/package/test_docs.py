"""The documentation runs as written: every fenced ``python`` block in
README.md and docs/**/*.md is run in a fresh interpreter, warnings as errors.
The site's nav (mkdocs.yml) lists every page of docs/ and nothing else.

The interpreter is the one running the tests, so ``make test`` runs the
blocks on the development Python and ``make wheel-test`` on every CPython
>= 3.9 installed under pyenv, 3.9 included, against the installed wheel.

A block that is deliberately a fragment says so on the line before its
fence, with a reason::

    <!-- docs-test: fragment: needs the application's own objects -->
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import memtree
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
FRAGMENT = re.compile(r"<!--\s*docs-test:\s*fragment:\s*(?P<reason>\S.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    file: Path
    line: int
    code: str
    fragment_reason: str | None

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT).as_posix()}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = [ln for ln in text[: m.start()].splitlines() if ln.strip()]
        marker = FRAGMENT.search(before[-1]) if before else None
        blocks.append(
            Block(
                path,
                line,
                textwrap.dedent(m.group("body")),
                marker.group("reason") if marker else None,
            )
        )
    return blocks


BLOCKS = [block for doc in DOCS for block in python_blocks(doc)]


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_docs_are_found_and_have_runnable_blocks() -> None:
    assert (ROOT / "README.md").is_file(), f"README.md not beside {Path(__file__).parent}"
    runnable = [b for b in BLOCKS if b.fragment_reason is None]
    assert len(runnable) >= 4, [b.id for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    if block.fragment_reason is not None:
        pytest.skip(f"marked as a fragment: {block.fragment_reason}")
    proc = run_python(block.code, tmp_path)
    assert proc.returncode == 0, f"{block.id} failed:\n{block.code}\n{proc.stderr}"
    assert "Logging error" not in proc.stderr, proc.stderr


def logging_block() -> Block:
    found = [b for b in BLOCKS if "%(db_path)s" in b.code]
    assert len(found) == 1, [b.id for b in found]
    return found[0]


def test_the_logging_format_works_for_every_memtree_record(tmp_path: Path) -> None:
    probe = textwrap.dedent(
        """
        import sqlite3
        # A WAL-era file: memtree's core logs its migration (memtree.journal).
        conn = sqlite3.connect("wal.db")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.commit()
        conn.close()
        memtree.Store("wal.db").close()
        # Python-side records, the worker's among them, name no database.
        for name in memtree._LOGGERS:
            logging.getLogger(name).warning("probe %s", name)
        """
    )
    proc = run_python(logging_block().code + probe, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Logging error" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(
        ln.startswith("memtree.journal INFO migrated") and ln.endswith("wal.db]") for ln in lines
    ), lines
    assert "memtree.worker WARNING probe memtree.worker [None]" in lines, lines


def test_the_logger_table_lists_every_memtree_logger() -> None:
    page = (ROOT / "docs" / "logging.md").read_text(encoding="utf-8")
    section = page.split("# Logging", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(memtree\.[a-z_]+)` \|", section, re.MULTILINE))
    assert listed == set(memtree._LOGGERS)


def test_the_readme_names_the_bundled_sqlite() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"SQLite {memtree.sqlite_version()}**" in readme


NAV_ENTRY = re.compile(r"^\s*- (?:[^:\n]+: )?(?P<page>[\w./-]+\.md)\s*$", re.MULTILINE)


def nav_pages(mkdocs_yml: str) -> list[str]:
    """The pages of mkdocs.yml's ``nav``, in order (the nav is the file's last key)."""
    nav = mkdocs_yml.split("\nnav:\n", 1)[1]
    return [m.group("page") for m in NAV_ENTRY.finditer(nav)]


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = ROOT / "mkdocs.yml"
    if not config.is_file():
        # tools/test_installed.sh copies tests/, docs/ and README.md only;
        # `make test` and `make docs` (mkdocs --strict) check the checkout.
        pytest.skip("mkdocs.yml is not beside the tests (an installed-wheel run)")
    pages = nav_pages(config.read_text(encoding="utf-8"))
    assert len(pages) == len(set(pages)), pages
    on_disk = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").glob("**/*.md")}
    assert set(pages) - on_disk == set(), "nav entries without a page"
    assert on_disk - set(pages) == set(), "pages missing from the nav"


def test_nav_entries_are_read() -> None:
    config = (
        "site_name: x\nnav:\n  - Home: index.md\n  - Guide:\n      - The store: store.md\n"
        "      - api/reference.md\n  - OpenHuman's memory_tree: openhuman.md\n"
    )
    assert nav_pages(config) == ["index.md", "store.md", "api/reference.md", "openhuman.md"]


def test_blocks_and_fragment_markers_are_read(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# t\n\n```python\nprint(1)\n```\n\n"
        "<!-- docs-test: fragment: uses the app's store -->\n\n```python\nstore.close()\n```\n\n"
        "- item\n\n  ```python\n  if True:\n      print(2)\n  ```\n\n```sh\nls\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(doc)
    assert [(b.line, b.fragment_reason) for b in blocks] == [
        (3, None),
        (9, "uses the app's store"),
        (15, None),
    ]
    assert blocks[2].code == "if True:\n    print(2)\n"
    assert run_python(blocks[2].code, tmp_path).stdout == "2\n"
