#!/usr/bin/env bash
# Usage: tools/check_wheel.sh ARCH   (x86_64 or aarch64)
# Checks the Linux wheel for ARCH in dist/ before anything installs it:
#   1. it carries what users need (stub, py.typed, console script, licence);
#   2. `auditwheel show` finds it consistent with manylinux_2_17_ARCH
#      (manylinux2014): the tag pip holds it to, whatever the file name says
#      (a library outside the manylinux allowlist, a system libsqlite3 say,
#      would make it plain linux_ARCH);
#   3. the newest glibc symbol version it references is at most 2.17, read
#      from the same report, so it installs on glibc >= 2.17 (RHEL/CentOS 7+,
#      Debian 9+, Ubuntu 18.04+).
# Run by `make wheel` for every wheel it builds and by tools/wheel_test.sh.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 ARCH" >&2; exit 2; }
cd "$(dirname "$0")/.."
arch=$1
expected_tag=manylinux_2_17_$arch
newest_glibc_allowed=2.17

shopt -s nullglob
wheels=(dist/memtree-*-cp39-abi3-*_"$arch".whl)
[[ ${#wheels[@]} -eq 1 ]] || { echo "expected one cp39-abi3 $arch wheel in dist/, found: ${wheels[*]:-none}" >&2; exit 1; }
wheel=${wheels[0]}
echo "=== $wheel"

listing=$(unzip -l "$wheel")
for member in memtree/py.typed memtree/_native.pyi memtree/_native/testing.pyi memtree/_native/bench.pyi memtree/__init__.py memtree/doctor.py memtree/aio.py \
    'memtree/_native.abi3.so' '.dist-info/licenses/LICENSE'; do
    grep -qF -- "$member" <<<"$listing" || { echo "$wheel lacks $member" >&2; exit 1; }
done
unzip -p "$wheel" '*.dist-info/entry_points.txt' | grep -qx 'memtree=memtree.cli:main' \
    || { echo "$wheel lacks the memtree console script" >&2; exit 1; }

audit=$(auditwheel show "$wheel")
echo "$audit"
flat=$(tr -s ' \n' ' ' <<<"$audit")
grep -qF "is consistent with the following platform tag: \"$expected_tag\"" <<<"$flat" \
    || { echo "auditwheel does not find $wheel consistent with $expected_tag" >&2; exit 1; }
# "libc.so.6 with versions {'GLIBC_2.17', ...}": every GLIBC_x.y it names.
versions=$(grep -oE "GLIBC_[0-9]+(\.[0-9]+)+" <<<"$flat" | sed 's/^GLIBC_//' | sort -uV)
[[ -n $versions ]] || { echo "auditwheel names no glibc symbol version for $wheel" >&2; exit 1; }
newest=$(tail -n1 <<<"$versions")
if [[ $(printf '%s\n' "$newest" "$newest_glibc_allowed" | sort -V | tail -n1) != "$newest_glibc_allowed" ]]; then
    echo "$wheel references GLIBC_$newest, newer than $newest_glibc_allowed" >&2
    exit 1
fi
echo "$arch: $expected_tag, newest glibc symbol GLIBC_$newest (<= $newest_glibc_allowed)"
