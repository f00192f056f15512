# Everyday commands. `make demo` and `make test` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# Older OpenBLAS builds misbehave on some CPUs, so the machine may force a core type. Benchmarks
# run both as the machine is set and with the choice left to OpenBLAS, and report which kernel ran.
NATIVE_BLAS := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE

.PHONY: install demo test lint typecheck bench bench-match bench-encode bench-accuracy clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	touch $(BENCH_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/linkage demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy clients linkage_service linkage_cli

bench: bench-match bench-encode bench-accuracy

bench-match: $(BENCH_STAMP)
	$(BIN)/linkage bench match --n 10000 --out benchmarks/results/match_10k_env.json
	$(NATIVE_BLAS) $(BIN)/linkage bench match --n 10000 --out benchmarks/results/match_10k_native.json
	$(NATIVE_BLAS) $(BIN)/linkage bench match --n 50000 --repeats 3 --out benchmarks/results/match_50k_native.json

bench-encode: $(BENCH_STAMP)
	$(BIN)/linkage bench encode --out benchmarks/results/encode.json

bench-accuracy: $(BENCH_STAMP)
	$(NATIVE_BLAS) $(BIN)/linkage bench accuracy --out benchmarks/results/accuracy.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
