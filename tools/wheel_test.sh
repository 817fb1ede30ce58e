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
#      installed package, tests/package/test_docs.py included, so the snippets
#      of README.md and docs/ run on 3.9 too.
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

tested=()
for minor in $minors; do
    py=${by_minor[$minor]}
    echo "=== CPython $("$py" -c 'import platform; print(platform.python_version())') ($py)"
    tools/test_installed.sh "$py" "$wheel"
    tested+=("3.$minor")
done
echo "$ARCH wheel tested on CPython ${tested[*]} (auditwheel: manylinux_2_17_$ARCH)"
