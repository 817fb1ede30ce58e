#!/usr/bin/env bash
# Tests the wheel in dist/ the way users get it:
#   1. the wheel carries what users need (stub, py.typed, console script);
#   2. `auditwheel show` says it is manylinux_2_17 (manylinux2014) x86_64, i.e.
#      it installs on glibc >= 2.17 (RHEL 7/8, Ubuntu 18.04+, Debian 10+);
#   3. tools/test_installed.sh installs it into a fresh virtualenv outside the
#      source tree for every CPython >= 3.9 that pyenv has (3.9-3.13 expected;
#      a missing one is skipped with a message), checks that the extension
#      links no system libsqlite3, and runs the whole suite against the
#      installed package, tests/package/test_docs.py included, so the snippets of
#      README.md and docs/ run on 3.9 too.
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
for member in memtree/py.typed memtree/_native.pyi memtree/_native/testing.pyi memtree/_native/bench.pyi memtree/__init__.py memtree/doctor.py memtree/aio.py \
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

# The interpreters: every CPython >= 3.9 under pyenv (the `pyenv` command, or
# $PYENV_ROOT / ~/.pyenv when it is not on PATH), newest patch per minor.
declare -A by_minor=()
if [[ -n ${PYTHONS:-} ]]; then
    for py in $PYTHONS; do by_minor[$("$py" -c 'import sys; print(sys.version_info[1])')]=$py; done
else
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for dir in $(ls -d "$root"/versions/3.* 2>/dev/null | sort -V); do
        if [[ $(basename "$dir") =~ ^3\.([0-9]+)\.[0-9]+$ ]] && [[ -x $dir/bin/python3 ]]; then
            minor=${BASH_REMATCH[1]}  # CPython releases only: no -dev, pypy, miniconda
            if ((minor >= 9)); then by_minor[$minor]=$dir/bin/python3; fi
        fi
    done
fi
minors=$(printf '%s\n' "${!by_minor[@]}" | sort -n)
for minor in 9 10 11 12 13; do
    [[ -n ${by_minor[$minor]:-} ]] || echo "skipping CPython 3.$minor: not installed (pyenv install 3.$minor)"
done
[[ -n $minors ]] || { echo "no CPython >= 3.9 found under pyenv (set PYTHONS=...)" >&2; exit 1; }
echo "testing the wheel on CPython 3.$(echo $minors | sed 's/ /, 3./g')"

tested=()
for minor in $minors; do
    py=${by_minor[$minor]}
    echo "=== CPython $("$py" -c 'import platform; print(platform.python_version())') ($py)"
    tools/test_installed.sh "$py" "$wheel"
    tested+=("3.$minor")
done
echo "wheel tested on CPython ${tested[*]} (auditwheel: $EXPECTED_TAG)"
