#!/usr/bin/env bash
# Tests the x86_64 wheel in dist/ the way users get it:
#   1. tools/check_wheel.sh: the wheel carries what users need (stub,
#      py.typed, console script) and `auditwheel show` says it is
#      manylinux_2_17 (manylinux2014) x86_64 with no glibc symbol newer than
#      2.17, i.e. it installs on glibc >= 2.17 (RHEL 7/8, Ubuntu 18.04+,
#      Debian 10+);
#   2. tools/test_installed.sh installs it into a fresh virtualenv outside the
#      source tree for every CPython >= 3.9 that pyenv has (3.9-3.13 expected;
#      a missing one is skipped with a message), checks that the extension
#      links no system libsqlite3, and runs the whole suite against the
#      installed package on the oldest and the newest of them,
#      tests/package/test_docs.py included, so the snippets of README.md and
#      docs/ run on 3.9 too. The versions between run the installed-package,
#      store and jobs tests (MIDDLE_TESTS): the suite is ~1,500 tests, 3-4 min
#      an interpreter on the 2-core machine, and the code paths that differ
#      between CPython versions (conversion, typing, the docs) are in those
#      folders; the durability loops exercise the core, not the interpreter.
# The aarch64 wheel is tested by tools/wheel_test_arm64.sh (`make
# wheel-test-arm64`), the sdist by tools/sdist_test.sh (`make sdist-test`).
# PYTHONS="/path/to/python3.9 ..." replaces the pyenv search.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
ARCH=x86_64

tools/check_wheel.sh "$ARCH"
wheel=$(echo "$SRC"/dist/memtree-*-cp39-abi3-*_"$ARCH".whl)

# The interpreters: every CPython >= 3.9 under pyenv (or $PYTHONS).
declare -A by_minor=()
while read -r minor py; do by_minor[$minor]=$py; done < <(tools/pythons.sh)
minors=$(printf '%s\n' "${!by_minor[@]}" | sort -n)
[[ -n $minors ]] || exit 1
echo "testing the wheel on CPython 3.$(echo $minors | sed 's/ /, 3./g')"

oldest=$(head -n1 <<<"$minors")
newest=$(tail -n1 <<<"$minors")
MIDDLE_TESTS=(tests/package tests/store tests/jobs tests/search tests/trees)
tested=()
for minor in $minors; do
    py=${by_minor[$minor]}
    echo "=== CPython $("$py" -c 'import platform; print(platform.python_version())') ($py)"
    if [[ $minor == "$oldest" || $minor == "$newest" ]]; then
        tools/test_installed.sh "$py" "$wheel"
        tested+=("3.$minor")
    else
        tools/test_installed.sh "$py" "$wheel" "${MIDDLE_TESTS[@]}"
        tested+=("3.$minor (package, store, jobs, search, trees)")
    fi
done
echo "$ARCH wheel tested on CPython ${tested[*]} (auditwheel: manylinux_2_17_$ARCH)"
