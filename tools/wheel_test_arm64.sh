#!/usr/bin/env bash
# Usage: tools/wheel_test_arm64.sh DIR   (the Makefile passes build/arm64)
# Tests the aarch64 wheel in dist/ on an aarch64 CPython, on this x86_64
# machine, under user-mode emulation:
#   1. qemu-user-static is the one thing installed on the machine (apt-get,
#      when it is missing and this runs as root; otherwise it says how);
#   2. Debian's arm64 `python3` (python3-minimal, libpython3-stdlib and
#      python3-venv for ensurepip; libstdc++6, which numpy's wheel links)
#      and every package they depend on,
#      recursively, are downloaded with a private apt configuration: the
#      machine's sources, but package lists, cache and an empty dpkg status
#      under DIR/apt, architecture arm64. Nothing names a Debian version, and
#      dpkg's own architecture list is not touched;
#   3. each .deb is unpacked with `dpkg-deb -x` into DIR/sysroot (no
#      maintainer scripts run), and DIR/sysroot/usr/bin/python3-qemu runs
#      that CPython with `qemu-aarch64-static -L DIR/sysroot`, passing its
#      own path as argv[0] so that sys.executable is the wrapper: the tests
#      that start `sys.executable` (crash, kill, fork, CLI, docs) start the
#      emulated interpreter again, without binfmt_misc;
#   4. tools/test_installed.sh makes a fresh venv of that interpreter, pip
#      (emulated) installs the wheel and the `test-core` group (pytest, numpy,
#      hypothesis; no matplotlib, see pyproject.toml), and runs the tests.
#
# Which tests: a named subset (below, with the measurements that chose it);
# ARM64_TESTS="tests" (or any pytest arguments) runs something else.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
mkdir -p "$1"
dir=$(cd "$1" && pwd)
sysroot=$dir/sysroot

if ! command -v qemu-aarch64-static >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -q qemu-user-static
    else
        echo "qemu-aarch64-static not found: apt-get install qemu-user-static (as root)" >&2
        exit 1
    fi
fi

shopt -s nullglob
wheels=(dist/memtree-*-cp39-abi3-*_aarch64.whl)
[[ ${#wheels[@]} -eq 1 ]] || { echo "expected one aarch64 wheel in dist/ (make wheel), found: ${wheels[*]:-none}" >&2; exit 1; }
wheel=$PWD/${wheels[0]}

# --- the sysroot: built once, reused until DIR is removed (make clean) ------
# or the packages it is built from change (the stamp holds their names).
roots="python3-minimal libpython3-stdlib python3-venv libstdc++6"
if [[ ! -f $sysroot/.complete || $(cat "$sysroot/.complete") != "$roots" ]]; then
    rm -rf "$dir/apt" "$sysroot"
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/apt/debs" "$sysroot"
    : >"$dir/apt/status"
    apt_options=(
        -o "Dir::State=$dir/apt" -o "Dir::State::Lists=$dir/apt/lists"
        -o "Dir::State::status=$dir/apt/status" -o "Dir::Cache=$dir/apt/cache"
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64
        -o Debug::NoLocking=1
    )
    # As root apt hands downloads to its `_apt` user, which cannot write here.
    [[ $(id -u) -eq 0 ]] && apt_options+=(-o APT::Sandbox::User=root)
    apt-get -q "${apt_options[@]}" update
    # The dependency closure; `<name>` lines are virtual packages, provided
    # by a real one the closure also holds.
    packages=$(apt-cache "${apt_options[@]}" depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances \
        $roots | grep -v -e '^ ' -e '^<' | sort -u)
    (cd "$dir/apt/debs" && apt-get -q "${apt_options[@]}" download $packages)
    for deb in "$dir"/apt/debs/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
    echo "sysroot: $(ls "$dir"/apt/debs/*.deb | wc -l) Debian arm64 packages unpacked into $sysroot"
    cat >"$sysroot/usr/bin/python3-qemu" <<EOF
#!/bin/sh
# Debian's arm64 CPython under qemu-user; argv[0] (sys.executable) is this file.
exec qemu-aarch64-static -L "$sysroot" -0 "\$0" "$sysroot/usr/bin/python3" "\$@"
EOF
    chmod +x "$sysroot/usr/bin/python3-qemu"
    echo "$roots" >"$sysroot/.complete"
fi
python=$sysroot/usr/bin/python3-qemu
"$python" -c 'import platform, sys; assert platform.machine() == "aarch64", platform.machine(); print("emulated CPython", platform.python_version(), platform.machine(), sys.executable)'

# --- which tests --------------------------------------------------------------
# The whole suite does not fit: every test that starts a Python process
# (the CLI, crash, kill, contention and docs tests) pays the emulated
# interpreter's start-up, 5-10 s each on the loaded 2-core machine. Measured
# there (2026-12-06, load 5-9 from other builds): the first 14 % of the
# suite in 11 min (test_cli.py alone 245 s for 24 tests,
# test_cli_not_memtree.py 96 s), i.e. over an hour for all of it. What runs
# instead is what depends on the CPU and its memory ordering (the threads of
# group commit, the claim paths of the queue) and on the VFS shim compiled
# for aarch64: durability (crash, power loss, recovery, journal, open),
# fault injection (every I/O call of each path), group commit, jobs, docs,
# and the installed-package checks, 293 tests: 11 min 42 s of pytest at
# load 5-6 (group commit 166 s, crash 226 s, open fault loops 128 s),
# 13 min 2 s for the whole `make wheel-test-arm64` with the sysroot made
# from nothing and the wheels already built. The rest of
# the suite is pure Python over the same native calls and runs on x86_64
# (make test, make wheel-test) and natively on the release workflow's
# ubuntu-24.04-arm runner.
subset=(
    tests/package/test_installed.py  # the wheel as installed: typing files, script, version
    tests/package/test_docs.py       # README and docs blocks run as written
    tests/durability/test_group_commit.py  # group commit: threads sharing one COMMIT
    tests/jobs/test_jobs.py tests/jobs/test_settle_and_claim.py tests/jobs/test_job_priorities.py
    tests/jobs/test_batch_claim_source.py  # the job queue
    tests/durability/test_fault_tolerance.py tests/durability/test_open_fault_loops.py
    tests/durability/test_derived_faults.py  # VFS fault injection
    tests/durability/test_crash.py tests/durability/test_open_crash.py
    tests/durability/test_recovery_protocol.py tests/durability/test_journal.py  # durability
    tests/store/test_store_open.py tests/package/test_native_layout.py tests/store/test_chunks.py  # the store
    tests/search/test_search_vector.py  # the portable scan kernel (x86_64 runs the AVX2 one)
)
if [[ -n ${ARM64_TESTS:-} ]]; then
    read -r -a selection <<<"$ARM64_TESTS"
else
    selection=()
    for entry in "${subset[@]}"; do selection+=("$entry"); done
fi

start=$(date +%s)
MEMTREE_TEST_GROUP=test-core tools/test_installed.sh "$python" "$wheel" "${selection[@]}"
echo "aarch64 wheel tested under qemu-aarch64-static in $(( $(date +%s) - start )) s: ${selection[*]}"
