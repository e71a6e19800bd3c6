# Everything runs from the project's own virtualenv (created on first use).
VENV ?= venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ISTIO_REFERENCE ?= $(abspath ../shared/reference/istio-1.30.3)
export ISTIO_REFERENCE
# The Gateway API's CRDs, at the version Istio is built against.
GATEWAY_API_REFERENCE ?= $(abspath ../shared/reference/gateway-api-v1.5.1/standard-install.yaml)
export GATEWAY_API_REFERENCE
# Offline, the program reads the Gateway API's CRDs from that copy of the release
# instead of downloading it (components/gateway_api_crds.py).
ISTIO_MESH_GATEWAY_API_CRDS ?= $(GATEWAY_API_REFERENCE)
export ISTIO_MESH_GATEWAY_API_CRDS
OUT ?= out
# Test processes (pytest-xdist), each taking whole test files (their module fixtures,
# API servers included, are started once); 0 runs everything in this process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile
# The e2e tier's tools (e2e/build-tools.sh): built once per machine, outside the repo.
E2E_CACHE ?= $(HOME)/.cache/istio-mesh-e2e
export E2E_CACHE

.PHONY: install policy-venv demo render test lint typecheck unit reference-data e2e-tools e2e mutation clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

## policy-venv: the policy pack's own virtualenv, policies/venv (the Pulumi CLI runs a
## local pack from it but does not create it)
policy-venv: policies/venv/.installed

policies/venv/.installed: policies/requirements.txt
	$(PYTHON) -m venv policies/venv
	policies/venv/bin/pip install --quiet -r policies/requirements.txt
	touch $@

## demo: render the dev and prod stacks offline and run the policy gate on them
demo: install
	rm -rf $(OUT)/dev $(OUT)/prod   # renders of older versions carry no render marker
	$(PY) -m mesh render --stack dev --out $(OUT)/dev
	$(PY) -m mesh render --stack prod --out $(OUT)/prod --reference dev=$(OUT)/dev/stack.json
	$(PY) -m mesh check --stack dev
	$(PY) -m mesh check --stack prod --reference dev=$(OUT)/dev/stack.json

## test: lint, format check, type check, then the test suite
test: reference-data lint typecheck unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

unit: install reference-data
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) --ignore=tests/e2e

## reference-data: stop at once when Istio's reference data is missing (README, Tests)
reference-data:
	@test -f "$(ISTIO_REFERENCE)/crd-all.gen.yaml" || { \
	  echo "Istio reference data not found in $(ISTIO_REFERENCE): set ISTIO_REFERENCE to a folder with crd-all.gen.yaml and charts/*.values.yaml of your Istio version (README, Tests)" >&2; \
	  exit 2; }

## e2e-tools: build Pulumi, the kubernetes provider, Helm, istioctl, kube-apiserver and
## etcd from the Go module proxy into $(E2E_CACHE) (once per machine)
e2e-tools:
	bash e2e/build-tools.sh

## e2e: the real systems judge every stack (needs e2e-tools)
e2e: install reference-data
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) tests/e2e

## mutation: mutation testing of the pack's rules and the components' builders (not in
## CI: ~18 min on 2 cores); MUTATE=components/naming.py limits it to some modules
mutation: install reference-data
	$(PY) -m tests.mutation --json $(OUT)/mutation.json $(MUTATE)

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
