#!/usr/bin/env bash
# Usage: tools/pythons.sh
# Prints "MINOR PATH" for every CPython >= 3.9 to test on, oldest first, one
# per minor version (the newest patch): those under pyenv (the `pyenv`
# command, or $PYENV_ROOT / ~/.pyenv when it is not on PATH), or those named
# by PYTHONS="/path/to/python3.9 ...". Says on stderr which of 3.9-3.13 are
# missing. Used by tools/wheel_test.sh (every one) and tools/sdist_test.sh
# (the oldest and the newest).
set -euo pipefail
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
for minor in 9 10 11 12 13; do
    [[ -n ${by_minor[$minor]:-} ]] || echo "skipping CPython 3.$minor: not installed (pyenv install 3.$minor)" >&2
done
[[ ${#by_minor[@]} -gt 0 ]] || { echo "no CPython >= 3.9 found under pyenv (set PYTHONS=...)" >&2; exit 1; }
for minor in $(printf '%s\n' "${!by_minor[@]}" | sort -n); do
    echo "$minor ${by_minor[$minor]}"
done
