# One command to set up and run the console, one to set up and run the tests.
# The virtualenv creates itself on first use and refreshes when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench bench-quick clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/mlx-console $(ARGS)

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Benchmarks (never part of CI): every script in bench/, one Markdown table in bench/RESULTS.md.
# Peers measured side by side: toolong and aiperf in their own venvs (they pin conflicting packages);
# lnav comes from the OS (apt-get install lnav / brew install lnav). A peer that cannot be had is named as such.
BENCH_PEERS := .venv-bench-peers

$(BENCH_PEERS)/.installed:
	-$(PYTHON) -m venv $(BENCH_PEERS)/toolong && $(BENCH_PEERS)/toolong/bin/pip install -q toolong
	-$(PYTHON) -m venv $(BENCH_PEERS)/aiperf && $(BENCH_PEERS)/aiperf/bin/pip install -q aiperf
	mkdir -p $(BENCH_PEERS) && touch $@

bench: $(VENV)/.installed $(BENCH_PEERS)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run_all.py --readme $(ARGS)

bench-quick:
	$(MAKE) bench ARGS=--quick

# ruff, the type checker (strict on core/, [tool.mypy]) and the layer contracts ([tool.importlinter]).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(BENCH_PEERS)
