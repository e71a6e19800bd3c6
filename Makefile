# Everything runs from the project's own virtualenv (created on first use).
VENV ?= venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ISTIO_REFERENCE ?= $(abspath ../shared/reference/istio-1.30.3)
export ISTIO_REFERENCE
OUT ?= out

.PHONY: install demo render test lint typecheck unit clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## demo: render the dev and prod stacks offline and run the policy gate on them
demo: install
	$(PY) -m mesh render --stack dev --out $(OUT)/dev
	$(PY) -m mesh render --stack prod --out $(OUT)/prod --reference dev=$(OUT)/dev/stack.json
	$(PY) -m mesh check --stack dev
	$(PY) -m mesh check --stack prod --reference dev=$(OUT)/dev/stack.json

## test: lint, format check, type check, then the test suite
test: lint typecheck unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
