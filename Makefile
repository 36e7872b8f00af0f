# Two commands set up and use a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD := 1

.PHONY: setup run test lint bench clean

setup: $(STAMP)

# One install of the whole pinned stack; constraints.txt holds the exact versions that resolved.
$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24" wheel setuptools
	$(PY) -m pip install -c constraints.txt -e '.[dev]'
	$(PY) tools/fetch_compliance_checker.py
	touch $(STAMP)

# With a display: the desktop app (once it exists). Without one: the bundled sample, end to end.
run: $(STAMP)
	$(VENV)/bin/scanbridge demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/sfm.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
