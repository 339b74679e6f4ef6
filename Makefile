# Development shortcuts; `make` alone lists them.
.DEFAULT_GOAL := help
PY ?= python

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: dev
dev: ## build the extension in release mode into the active virtualenv
	maturin develop --release

.PHONY: fmt
fmt: ## format Rust and Python
	cargo fmt --all
	ruff format python tests benches examples
	ruff check --fix python tests benches examples

.PHONY: lint
lint: ## the checks CI makes besides the tests
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	ruff check python tests benches examples
	ruff format --check python tests benches examples

.PHONY: stubtest
stubtest: ## check python/mlpfast/_core.pyi against the built module (needs mypy)
	$(PY) -m mypy.stubtest mlpfast._core

.PHONY: test
test: dev ## every test: cargo (core) and pytest (package)
	cargo test
	$(PY) -m pytest

.PHONY: bench
bench: ## the benchmark table, written to benches/RESULTS.md
	$(PY) benches/run.py
