"""The suite's own layout: a test module imports shared helpers from
``support`` (or ``fixtures/``), never from another test module. Such an
import works only when pytest happened to collect the other module's folder
first: CI's subset runs (the middle CPythons, the emulated aarch64 run)
collect a few folders, and failed on exactly that."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
IMPORTS_A_TEST_MODULE = re.compile(r"^\s*(from|import)\s+test_\w+", re.MULTILINE)


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}: {match.group(0).strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        for match in IMPORTS_A_TEST_MODULE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert sorted(TESTS.rglob("test_*.py")), "the scan sees the suite"
    assert offenders == [], offenders
