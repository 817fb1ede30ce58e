# memtree: `make help` lists the targets. Every target creates and fills its
# own virtualenv, so a fresh clone needs only Python 3.9+ and a Rust toolchain.
# Tool versions live in pyproject.toml's [dependency-groups], nowhere else:
# `pip install --group` (pip >= 25.1, installed first) reads them from there.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
ACTIVATE := VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(BIN):$$PATH
DEPS_STAMP := $(VENV)/.deps-installed
NATIVE_SOURCES := $(shell find rust -name '*.rs') Cargo.toml Cargo.lock pyproject.toml .cargo/config.toml
NATIVE_STAMP := $(VENV)/.native-built

.PHONY: help
help:  ## Show this help
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(DEPS_STAMP): Makefile pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --group dev
	touch $@

$(NATIVE_STAMP): $(DEPS_STAMP) $(NATIVE_SOURCES)
	$(ACTIVATE) maturin develop --quiet
	touch $@

.PHONY: build
build: $(NATIVE_STAMP)  ## Build the extension into .venv (debug core, optimised SQLite)

.PHONY: run
run: build  ## Build and run the demo, then the quick WAL-vs-TRUNCATE matrix
	$(BIN)/python -m memtree demo
	$(BIN)/python -m memtree bench --quick

.PHONY: test
test: build  ## Build, then run cargo test and pytest
	cargo test --quiet
	$(BIN)/python -m pytest -q

.PHONY: codes
codes: build  ## Regenerate python/memtree/_codes.py from the native result-code table
	$(BIN)/python tools/gen_codes.py python/memtree/_codes.py

.PHONY: soak
soak: build  ## The durability tests (faults, crashes, kills, fuzz) at length (MEMTREE_SOAK_SCALE=20)
	MEMTREE_SOAK_SCALE=$${MEMTREE_SOAK_SCALE:-20} $(BIN)/python -m pytest -q -s tests/durability

BENCH_STAMP := $(VENV)/.bench-deps-installed

$(BENCH_STAMP): $(DEPS_STAMP)
	$(BIN)/python -m pip install --quiet --group bench
	touch $@

.PHONY: bench
bench: $(BENCH_STAMP)  ## Release build, then the pytest-benchmark suites and target ratios
	$(ACTIVATE) maturin develop --release --quiet
	rm -f $(NATIVE_STAMP)  # the next `make build` puts the debug build back
	$(BIN)/python -m pytest benches -q -p no:cacheprovider --benchmark-columns=min,median,max,rounds
	$(BIN)/python benches/bench_trees.py

.PHONY: docs
docs: $(DEPS_STAMP)  ## Build the documentation site into site/ (mkdocs build --strict: any warning fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

.PHONY: lint
lint: $(DEPS_STAMP)  ## cargo fmt/clippy, ruff, mypy --strict, stubtest, actionlint, rustdoc, then `make docs`
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	$(BIN)/mypy --strict python tests/package/test_typing.py
	$(ACTIVATE) python -m mypy.stubtest memtree._native memtree._native.testing memtree._native.bench
	$(BIN)/actionlint .github/workflows/*.yml
	RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --document-private-items --features python
	$(MAKE) --no-print-directory docs

WHEEL_STAMP := $(VENV)/.wheel-deps-installed
# The Linux wheels `make wheel` builds: one abi3 wheel per CPU, cross-linked by
# zig (PyPI's `ziglang`, in the `wheel` group) against glibc 2.17.
WHEEL_ARCHS := x86_64 aarch64

$(WHEEL_STAMP): $(DEPS_STAMP)
	$(BIN)/python -m pip install --quiet --group wheel
	rustup target add $(WHEEL_ARCHS:%=%-unknown-linux-gnu)
	touch $@

.PHONY: wheel
wheel: $(WHEEL_STAMP)  ## Build the abi3 manylinux2014 wheels (x86_64, aarch64; zig, glibc 2.17) and the sdist into dist/, each wheel checked by auditwheel
	rm -rf dist
	for arch in $(WHEEL_ARCHS); do \
		$(ACTIVATE) maturin build --release --quiet --zig --compatibility manylinux2014 \
			--target $$arch-unknown-linux-gnu --out dist || exit 1; \
	done
	$(ACTIVATE) maturin sdist --out dist
	for arch in $(WHEEL_ARCHS); do $(ACTIVATE) tools/check_wheel.sh $$arch || exit 1; done

.PHONY: wheel-test
wheel-test: wheel  ## Test the x86_64 wheel installed in fresh venvs of every pyenv CPython >= 3.9
	$(ACTIVATE) tools/wheel_test.sh

# Where `make wheel-test-arm64` keeps the Debian arm64 CPython it unpacks
# (a sysroot run by qemu-user-static) and its test venv.
ARM64_DIR := build/arm64

.PHONY: wheel-test-arm64
wheel-test-arm64: wheel  ## Test the aarch64 wheel installed in an emulated aarch64 CPython (qemu-user-static, Debian arm64 packages)
	$(ACTIVATE) tools/wheel_test_arm64.sh $(ARM64_DIR)

# CI runs the two wheel tests side by side, one per core (`make -j2
# --output-sync=target wheel-test wheel-test-arm64`): each test run is one
# pytest process, mostly on one core once its files are in RAM (tools/
# test_installed.sh), and the two took about as long (docs/install.md).

.PHONY: sdist-test
sdist-test: $(WHEEL_STAMP)  ## Build the sdist, pip-install it into fresh venvs of the oldest and newest pyenv CPython, run the installed-package tests
	rm -rf build/sdist && mkdir -p build/sdist
	$(ACTIVATE) maturin sdist --out build/sdist
	$(ACTIVATE) tools/sdist_test.sh build/sdist/memtree-*.tar.gz

.PHONY: clean
clean:  ## Remove build products and the virtualenv
	cargo clean
	rm -rf $(VENV) dist build site .pytest_cache .mypy_cache .ruff_cache
