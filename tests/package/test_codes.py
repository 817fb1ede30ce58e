"""The Python result-code enum against the native table it is generated from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from memtree import ResultCode, _native

# Under `make wheel-test` the tests run from a copy; the checkout is named here.
SOURCE_TREE = Path(os.environ.get("MEMTREE_SOURCE_TREE", Path(__file__).resolve().parents[2]))
GENERATOR = SOURCE_TREE / "tools" / "gen_codes.py"
COMMITTED = SOURCE_TREE / "python" / "memtree" / "_codes.py"


def test_result_code_is_the_native_table() -> None:
    native = _native.result_codes()
    # Every member with its value, in the table's order, and nothing extra.
    members = [(m.value, m.sqlite_name) for m in ResultCode]
    assert members == native
    # No member is an alias of another (an IntEnum would hide a duplicate value).
    assert len(ResultCode.__members__) == len(native)
    for value, name in native:
        assert ResultCode(value).sqlite_name == name
        assert ResultCode[name.removeprefix("SQLITE_")] == value


def test_committed_codes_module_is_the_generators_output(tmp_path: Path) -> None:
    out = tmp_path / "_codes.py"
    subprocess.run([sys.executable, str(GENERATOR), str(out)], check=True, capture_output=True)
    assert out.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8"), (
        "python/memtree/_codes.py is stale: run `make codes`"
    )
