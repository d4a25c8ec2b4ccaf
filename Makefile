# The two commands: `make demo` and `make test`. Both create .venv and install
# what they need with pip; nothing else has to be set up by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sparklift-installed
EXTRAS ?= dev,bench
PYTEST := $(PY) -m pytest

.PHONY: help venv demo test test-all test-local test-cluster test-connect lint bench clean

help:
	@echo "make demo   fit the hidden Markov model demo on an embedded local Spark"
	@echo "make test   the whole suite on local Spark, the smoke subset on local-cluster and Spark Connect"
	@echo "make lint   ruff, and mypy on the numeric kernels"
	@echo "make bench  the benchmarks behind docs/benchmarks.md"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "sparklift needs Python 3.10 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sparklift demo --output demo-output

# One SparkSession per mode; slow cases run with `make test-all`, and the
# smoke subset (which includes some of them) runs in every mode.
test: $(STAMP) test-local test-cluster test-connect

test-local: $(STAMP)
	SPARKLIFT_TEST_MODE=local $(PYTEST) -m "not slow or smoke"

test-cluster: $(STAMP)
	SPARKLIFT_TEST_MODE=local-cluster $(PYTEST) -m smoke

test-connect: $(STAMP)
	SPARKLIFT_TEST_MODE=connect $(PYTEST) -m smoke

test-all: $(STAMP)
	SPARKLIFT_TEST_MODE=local $(PYTEST)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy src/sparklift/hmm/kernels.py src/sparklift/hmm/emissions.py

# Each script's output (without Spark's start-up chatter) is kept in
# benchmarks/results/<name>.log, the files docs/benchmarks.md quotes.
BENCH_NOISE := log4j|setLogLevel|Setting (Spark|default) log level|netlib-| WARN |WARNING: Using incubator
bench: $(STAMP)
	@set -o pipefail; for script in benchmarks/bench_*.py; do \
	  name=$$(basename $$script .py); name=$${name#bench_}; log=benchmarks/results/$$name.log; \
	  echo "== $$script -> $$log"; \
	  { echo "\$$ $(PY) $$script"; $(PY) $$script 2>&1 | grep -Ev '$(BENCH_NOISE)'; } | tee $$log || exit 1; \
	done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .mypy_cache demo-output bench-output spark-warehouse
