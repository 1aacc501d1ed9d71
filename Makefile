# certrotor: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install demo test test-fast lint format synth bench mutation clean

# The Lambda asset's bytecode is compiled by the runtime's Python (3.13),
# found on PATH or in pyenv (infra/certrotor_cdk/bytecode.py); name another
# with RUNTIME_PYTHON=/path/to/python3.13. Without one the asset ships source
# only (a warning); REQUIRE_BYTECODE=1 makes that an error.
ifdef RUNTIME_PYTHON
export CERTROTOR_RUNTIME_PYTHON := $(RUNTIME_PYTHON)
endif
ifdef REQUIRE_BYTECODE
export CERTROTOR_REQUIRE_BYTECODE := $(REQUIRE_BYTECODE)
endif

LOCAL_STAMP := $(VENV)/.installed-local
# The CDK CLI as users run it, pinned, installed from npm next to the venv.
CDK_CLI_VERSION := 2.1148.1
CDK_CLI_DIR := .cdk-cli
CDK_CLI := $(CDK_CLI_DIR)/node_modules/.bin/cdk

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit("certrotor needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip

# What make demo needs: the runtime packages and the emulator.
$(LOCAL_STAMP): $(VENV)/bin/python requirements.txt infra/certrotor_cdk/lambda-requirements.txt requirements-local.txt pyproject.toml
	@echo "installing the runtime and the AWS emulator into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# Everything: tests, linters, the CDK app.
$(STAMP): $(LOCAL_STAMP) requirements-dev.txt
	@echo "installing test, lint and CDK packages into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(CDK_CLI): Makefile
	@echo "installing the CDK CLI (aws-cdk@$(CDK_CLI_VERSION)) into $(CDK_CLI_DIR) ..."
	@npm install --silent --no-audit --no-fund --prefix $(CDK_CLI_DIR) aws-cdk@$(CDK_CLI_VERSION)
	@touch $@

install: $(STAMP) $(CDK_CLI)

demo: $(LOCAL_STAMP)
	@$(VENV)/bin/certrotor demo

test: $(STAMP) $(CDK_CLI) lint
	$(PY) -m pytest -q -n 2

# Everything but the slow real-bundle build.
test-fast: $(STAMP) $(CDK_CLI)
	$(PY) -m pytest -q -m "not bundle"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

synth: $(STAMP)
	$(PY) app.py

bench: $(STAMP)
	$(PY) bench/rotation.py
	$(PY) bench/cold_start.py
	$(PY) bench/container_start.py
	$(PY) bench/issuance.py
	$(PY) bench/ledger_contention.py
	$(PY) bench/reload.py

# Mutation testing of the core (outside CI: tens of minutes). Ends with the
# line "mutation: K killed, S survived of N (P%)"; see docs/TESTING.md.
MUTATION_STAMP := $(VENV)/.installed-mutation
$(MUTATION_STAMP): $(STAMP) requirements-mutation.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-mutation.txt
	@touch $@

mutation: $(MUTATION_STAMP)
	nice -n 19 $(PY) tools/deliberate_bugs.py
	nice -n 19 $(PY) tools/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(CDK_CLI_DIR) build/mutation cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
