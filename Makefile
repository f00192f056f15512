# Everyday commands. `make demo` and `make test` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# clkhash pins mypy_extensions<0.5 and mypy needs >=1.0, so the benchmark-only packages get
# their own environment.
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed
# Older OpenBLAS builds misbehave on some CPUs, so the machine may force a core type. Benchmarks
# run both as the machine is set and with the choice left to OpenBLAS, and report which kernel ran.
NATIVE_BLAS := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE

.PHONY: install demo test lint typecheck bench bench-match bench-encode bench-accuracy bench-service clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BENCH_BIN)/python -m pip install --quiet --no-deps clkhash==0.18.3
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

bench: bench-match bench-encode bench-accuracy bench-service

bench-match: $(BENCH_STAMP)
	$(BENCH_BIN)/linkage bench match --n 10000 --out benchmarks/results/match_10k_env.json
	$(NATIVE_BLAS) $(BENCH_BIN)/linkage bench match --n 10000 --out benchmarks/results/match_10k_native.json
	$(NATIVE_BLAS) $(BENCH_BIN)/linkage bench match --n 50000 --repeats 3 --out benchmarks/results/match_50k_native.json

bench-encode: $(BENCH_STAMP)
	$(BENCH_BIN)/linkage bench encode --out benchmarks/results/encode.json

bench-accuracy: $(BENCH_STAMP)
	$(NATIVE_BLAS) $(BENCH_BIN)/linkage bench accuracy --out benchmarks/results/accuracy.json

bench-service: $(BENCH_STAMP)
	$(BENCH_BIN)/linkage bench service --out benchmarks/results/service.json

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info .pytest_cache .hypothesis
