#!/usr/bin/env bash
# Usage: tools/test_installed.sh PYTHON WHEEL [PYTEST-ARGS...]
# Installs WHEEL (or an sdist, which pip builds) into a fresh virtualenv of
# PYTHON, outside the source tree, with the pinned `test` dependency group
# (MEMTREE_TEST_GROUP names another), and runs the whole suite against the
# installed package from a copy of tests/ (README.md and docs/ come along for
# tests/package/test_docs.py); PYTEST-ARGS, if given, replace `tests` (a subset).
# Used by `make wheel-test` for every local CPython, `make sdist-test`,
# `make wheel-test-arm64` (PYTHON is then an emulated aarch64 CPython) and
# .github/workflows/release.yml on each OS runner.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 PYTHON WHEEL [PYTEST-ARGS...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
SRC=$PWD
py=$1
wheel=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
shift 2
# Never an empty array: macOS's bash 3.2 calls one unbound under `set -u`.
if [[ $# -gt 0 ]]; then selection=("$@"); else selection=(tests); fi

# Where the venv, the copy of tests/ and every test's temporary files live:
# a RAM-backed folder when the machine has one with room (/dev/shm, a tmpfs
# of half the RAM on Linux), else $TMPDIR. The suite's time on a disk is
# mostly fsync: tests/ops' retention and compact files took 325 s on the
# disk and 106 s on /dev/shm (2026-12-07, same load). These runs prove the
# package on each interpreter and CPU; the fault injection and the crash
# simulation sit above the file system (tests/support.py `ram_folder`), and
# `make test` runs the rest on the disk. MEMTREE_TEST_TMPDIR=DIR chooses
# the folder; MEMTREE_TEST_TMPDIR= (empty) keeps $TMPDIR.
ram_folder() {
    local shm=/dev/shm free_kib
    [[ -d $shm && -w $shm ]] || return 0
    [[ $(stat -f -c %T "$shm" 2>/dev/null) == tmpfs ]] || return 0
    free_kib=$(df -Pk "$shm" | awk 'NR == 2 {print $4}')
    (( free_kib >= 4 * 1024 * 1024 )) && echo "$shm"
    return 0
}
tmp=${MEMTREE_TEST_TMPDIR-$(ram_folder)}
tmp=${tmp:-${TMPDIR:-/tmp}}
export TMPDIR=$tmp
echo "test files in $TMPDIR ($(stat -f -c %T "$TMPDIR" 2>/dev/null || echo '?'))"
work=$(mktemp -d "$TMPDIR/memtree-installed.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The tests run from a copy, in a folder where no source checkout can shadow
# the installed package; tests/package/test_installed.py asserts where it came from.
# Each run has its own --basetemp inside $work, so two runs side by side
# (`make -j2 wheel-test wheel-test-arm64`) never share pytest's numbered folders, and
# the trap removes every test's files with the rest.
cp -r "$SRC/tests" "$SRC/docs" "$SRC/README.md" "$SRC/pyproject.toml" "$work/"

"$py" -m venv "$work/venv"
bin=$work/venv/bin
[[ -d $work/venv/Scripts ]] && bin=$work/venv/Scripts  # Windows
"$bin/python" -m pip install --quiet --upgrade "pip>=25.1"
# --group reads ./pyproject.toml: the copy's, which is the checkout's.
(cd "$work" && "$bin/python" -m pip install --quiet "$wheel" --group "${MEMTREE_TEST_GROUP:-test}")

if [[ $(uname -s) == Linux ]] && command -v objdump >/dev/null; then
    so=$(echo "$work"/venv/lib/python*/site-packages/memtree/_native.abi3.so)
    needed=$(objdump -p "$so" | awk '/NEEDED/ {print $2}')
    echo "extension links: $(echo $needed)"
    if grep -qi sqlite <<<"$needed"; then echo "the extension links a system SQLite" >&2; exit 1; fi
    if nm -D "$so" | grep -q ' U sqlite3_'; then
        echo "the extension imports sqlite3_* symbols: SQLite is not compiled in" >&2; exit 1
    fi
fi

cd "$work"
MEMTREE_EXPECT_INSTALLED=1 MEMTREE_SOURCE_TREE="$SRC" \
    "$bin/python" -m pytest -q -p no:cacheprovider --rootdir "$work" --basetemp "$work/pytest" \
    "${selection[@]}"
