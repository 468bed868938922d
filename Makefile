# One command to set up and run the console, one to set up and run the tests.
# The virtualenv creates itself on first use and refreshes when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/mlx-console $(ARGS)

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# ruff, the type checker (strict on core/, [tool.mypy]) and the layer contracts ([tool.importlinter]).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV)
