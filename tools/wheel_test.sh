#!/usr/bin/env bash
# Installs the wheel in dist/ into a fresh virtualenv outside the source tree
# and runs the test suite against the installed package. Checks first that
# the wheel carries what users need (stub, py.typed, console script) and that
# the extension links no system libsqlite3 (the SQLite is compiled in).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
PYTHON=${PYTHON:-python3}

shopt -s nullglob
wheels=(dist/memtree-*-cp39-abi3-*.whl)
sdists=(dist/memtree-*.tar.gz)
[[ ${#wheels[@]} -eq 1 ]] || { echo "expected one cp39-abi3 wheel in dist/, found: ${wheels[*]:-none}" >&2; exit 1; }
[[ ${#sdists[@]} -eq 1 ]] || { echo "expected one sdist in dist/" >&2; exit 1; }
wheel=$SRC/${wheels[0]}

listing=$(unzip -l "$wheel")
for member in memtree/py.typed memtree/_native.pyi memtree/__init__.py memtree/doctor.py memtree/aio.py \
    'memtree/_native.abi3.so' '.dist-info/licenses/LICENSE'; do
    grep -qF -- "$member" <<<"$listing" || { echo "wheel lacks $member" >&2; exit 1; }
done
unzip -p "$wheel" '*.dist-info/entry_points.txt' | grep -qx 'memtree=memtree.cli:main' \
    || { echo "wheel lacks the memtree console script" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/memtree-wheel-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel" "pytest>=7"

so=$(echo "$work"/venv/lib/python*/site-packages/memtree/_native.abi3.so)
needed=$(objdump -p "$so" | awk '/NEEDED/ {print $2}')
echo "extension links: $(echo $needed)"
if grep -qi sqlite <<<"$needed"; then echo "the extension links a system SQLite" >&2; exit 1; fi
if nm -D "$so" | grep -q ' U sqlite3_'; then
    echo "the extension imports sqlite3_* symbols: SQLite is not compiled in" >&2; exit 1
fi

# The tests run from a copy, in a folder where no source checkout can shadow
# the installed package; tests/test_installed.py asserts where it came from.
cp -r "$SRC/tests" "$work/tests"
cp "$SRC/pyproject.toml" "$work/pyproject.toml"
cd "$work"
MEMTREE_EXPECT_INSTALLED=1 MEMTREE_SOURCE_TREE="$SRC" \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$work" tests
