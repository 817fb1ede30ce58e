# memtree: `make help` lists the targets. Every target creates and fills its
# own virtualenv, so a fresh clone needs only Python 3.9+ and a Rust toolchain.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
ACTIVATE := VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(BIN):$$PATH
DEPS_STAMP := $(VENV)/.deps-installed
NATIVE_SOURCES := $(shell find rust -name '*.rs') Cargo.toml Cargo.lock pyproject.toml
NATIVE_STAMP := $(VENV)/.native-built

.PHONY: help
help:  ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(DEPS_STAMP): Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "maturin>=1.5,<2" "pytest>=7" "ruff==0.17.6" "mypy==2.4.1"
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
soak: build  ## The long fault, crash and kill runs (MEMTREE_SOAK_SCALE=20)
	MEMTREE_SOAK_SCALE=$${MEMTREE_SOAK_SCALE:-20} $(BIN)/python -m pytest -q -s \
		tests/test_fault_tolerance.py tests/test_crash.py \
		tests/test_open_fault_loops.py tests/test_open_crash.py tests/test_full_disk.py

BENCH_STAMP := $(VENV)/.bench-deps-installed

$(BENCH_STAMP): $(DEPS_STAMP)
	$(BIN)/python -m pip install --quiet "pytest-benchmark>=4" matplotlib
	touch $@

.PHONY: bench
bench: $(BENCH_STAMP)  ## Release build, then the pytest-benchmark suites and target ratios
	$(ACTIVATE) maturin develop --release --quiet
	rm -f $(NATIVE_STAMP)  # the next `make build` puts the debug build back
	$(BIN)/python -m pytest benches -q -p no:cacheprovider --benchmark-columns=min,median,max,rounds

.PHONY: lint
lint: $(DEPS_STAMP)  ## cargo fmt/clippy, ruff, mypy --strict, stubtest
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	$(BIN)/mypy --strict python tests/test_typing.py
	$(ACTIVATE) python -m mypy.stubtest memtree._native

.PHONY: wheel
wheel: $(DEPS_STAMP)  ## Build the abi3 wheel (release profile) and the sdist into dist/
	rm -rf dist
	$(ACTIVATE) maturin build --release --quiet --out dist
	$(ACTIVATE) maturin sdist --out dist

.PHONY: wheel-test
wheel-test: wheel  ## Install the wheel in a fresh venv outside the tree and run the tests on it
	PYTHON=$(PYTHON) tools/wheel_test.sh

.PHONY: clean
clean:  ## Remove build products and the virtualenv
	cargo clean
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
