#!/usr/bin/env bash
# Usage: tools/sdist_test.sh SDIST
# Tests the sdist the way every platform without a wheel installs memtree:
# `pip install memtree-X.tar.gz` into a fresh virtualenv, which builds the
# extension from the sdist alone (maturin from PyPI, the crates from
# crates.io, a Rust toolchain >= 1.89 on PATH), then the installed-package
# tests (tests/package: the installed files, version, typing, docs blocks,
# native layout and docstrings; tools/test_installed.sh) against it, on the
# oldest and the newest CPython that pyenv has (3.9 and 3.13 here;
# PYTHONS=... overrides). The whole suite runs against the same code on
# those interpreters in `make wheel-test`; what the sdist can get wrong is
# its contents and its build, which these tests and the build itself prove.
# Both builds share one cargo target folder under build/ so the second
# compiles only memtree itself (the abi3 extension is the same for both);
# each still compiles from the unpacked sdist, not from this checkout.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 SDIST" >&2; exit 2; }
cd "$(dirname "$0")/.."
sdist=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -f $sdist && $sdist == *.tar.gz ]] || { echo "not an sdist: $1" >&2; exit 1; }

# What the sdist must carry to build: the core, the glue, the Python package,
# the lock file (pinned crates) and the build flags of .cargo/config.toml.
listing=$(tar -tzf "$sdist")
for member in Cargo.toml Cargo.lock .cargo/config.toml pyproject.toml rust/lib.rs rust/python/mod.rs \
    python/memtree/__init__.py python/memtree/py.typed python/memtree/_native.pyi LICENSE README.md PKG-INFO; do
    grep -qE "^[^/]+/$member\$" <<<"$listing" || { echo "the sdist lacks $member" >&2; exit 1; }
done
echo "sdist: $(basename "$sdist") ($(wc -l <<<"$listing") files)"

mapfile -t pythons < <(tools/pythons.sh)
[[ ${#pythons[@]} -gt 0 ]] || exit 1
oldest=${pythons[0]#* }
newest=${pythons[-1]#* }
export CARGO_TARGET_DIR=$PWD/build/sdist-target
tested=()
for py in "$oldest" "$newest"; do
    version=$("$py" -c 'import platform; print(platform.python_version())')
    echo "=== the sdist on CPython $version ($py)"
    tools/test_installed.sh "$py" "$sdist" tests/package
    tested+=("$version")
done
echo "sdist installed and tested on CPython ${tested[*]}"
