#!/usr/bin/env bash
# Tests the wheel in dist/ the way users get it:
#   1. the wheel carries what users need (stub, py.typed, console script);
#   2. `auditwheel show` says it is manylinux_2_17 (manylinux2014) x86_64, i.e.
#      it installs on glibc >= 2.17 (RHEL 7/8, Ubuntu 18.04+, Debian 10+);
#   3. it is installed into a fresh virtualenv outside the source tree for
#      every CPython >= 3.9 that pyenv has (3.9-3.13 expected; a missing one is
#      skipped with a message), the extension is checked to link no system
#      libsqlite3, and the whole suite runs against the installed package,
#      tests/test_docs.py included, so the README's snippets run on 3.9 too.
# PYTHONS="/path/to/python3.9 ..." replaces the pyenv search.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
EXPECTED_TAG=manylinux_2_17_x86_64

shopt -s nullglob
wheels=(dist/memtree-*-cp39-abi3-*.whl)
sdists=(dist/memtree-*.tar.gz)
[[ ${#wheels[@]} -eq 1 ]] || { echo "expected one cp39-abi3 wheel in dist/, found: ${wheels[*]:-none}" >&2; exit 1; }
[[ ${#sdists[@]} -eq 1 ]] || { echo "expected one sdist in dist/" >&2; exit 1; }
wheel=$SRC/${wheels[0]}
echo "wheel: ${wheels[0]}"

listing=$(unzip -l "$wheel")
for member in memtree/py.typed memtree/_native.pyi memtree/__init__.py memtree/doctor.py memtree/aio.py \
    'memtree/_native.abi3.so' '.dist-info/licenses/LICENSE'; do
    grep -qF -- "$member" <<<"$listing" || { echo "wheel lacks $member" >&2; exit 1; }
done
unzip -p "$wheel" '*.dist-info/entry_points.txt' | grep -qx 'memtree=memtree.cli:main' \
    || { echo "wheel lacks the memtree console script" >&2; exit 1; }

# auditwheel reads the symbol versions the extension needs; its verdict is the
# tag pip will hold the wheel to, whatever the file name claims.
audit=$(auditwheel show "$wheel")
echo "$audit"
tr -s ' \n' ' ' <<<"$audit" | grep -qF "is consistent with the following platform tag: \"$EXPECTED_TAG\"" \
    || { echo "auditwheel does not find the wheel consistent with $EXPECTED_TAG" >&2; exit 1; }

# The interpreters: every CPython >= 3.9 under pyenv, newest patch per minor.
declare -A by_minor=()
if [[ -n ${PYTHONS:-} ]]; then
    for py in $PYTHONS; do by_minor[$("$py" -c 'import sys; print(sys.version_info[1])')]=$py; done
elif command -v pyenv >/dev/null; then
    for dir in "$(pyenv root)"/versions/3.*; do
        [[ $(basename "$dir") =~ ^3\.([0-9]+)\.[0-9]+$ ]] || continue  # CPython releases only
        minor=${BASH_REMATCH[1]}
        ((minor >= 9)) && [[ -x $dir/bin/python3 ]] && by_minor[$minor]=$dir/bin/python3
    done
fi
minors=$(printf '%s\n' "${!by_minor[@]}" | sort -n)
for minor in 9 10 11 12 13; do
    [[ -n ${by_minor[$minor]:-} ]] || echo "skipping CPython 3.$minor: not installed (pyenv install 3.$minor)"
done
[[ -n $minors ]] || { echo "no CPython >= 3.9 found under pyenv (set PYTHONS=...)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/memtree-wheel-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The tests run from a copy, in a folder where no source checkout can shadow
# the installed package; tests/test_installed.py asserts where it came from.
# README.md and docs/ come along for tests/test_docs.py; pyproject.toml for
# the pytest settings and the `test` dependency group.
cp -r "$SRC/tests" "$SRC/docs" "$SRC/README.md" "$SRC/pyproject.toml" "$work/"

tested=()
for minor in $minors; do
    py=${by_minor[$minor]}
    venv=$work/venv-3.$minor
    echo "=== CPython $("$py" -c 'import platform; print(platform.python_version())') ($py)"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade "pip>=25.1"
    (cd "$work" && "$venv/bin/python" -m pip install --quiet "$wheel" --group test)

    so=$(echo "$venv"/lib/python*/site-packages/memtree/_native.abi3.so)
    needed=$(objdump -p "$so" | awk '/NEEDED/ {print $2}')
    echo "extension links: $(echo $needed)"
    if grep -qi sqlite <<<"$needed"; then echo "the extension links a system SQLite" >&2; exit 1; fi
    if nm -D "$so" | grep -q ' U sqlite3_'; then
        echo "the extension imports sqlite3_* symbols: SQLite is not compiled in" >&2; exit 1
    fi

    (cd "$work" && MEMTREE_EXPECT_INSTALLED=1 MEMTREE_SOURCE_TREE="$SRC" \
        "$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$work" tests)
    tested+=("3.$minor")
    rm -rf "$venv"
done
echo "wheel tested on CPython ${tested[*]} (auditwheel: $EXPECTED_TAG)"
