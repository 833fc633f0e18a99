# Developer and CI entry points. `make test` is what .ci/run calls.

PYTHON ?= python3.11
VENV   := .venv
# The stamp lives inside the venv so deleting .venv also forgets that it was installed.
STAMP  := $(VENV)/.pgsweep-install.stamp
# Two workers by default (docs/testing.md); PYTEST_ARGS= runs the suite on one.
PYTEST_ARGS ?= -n 2 --dist loadfile
# e.g. make bench BENCH_ARGS="--quick --scenario S1,S2"
BENCH_ARGS ?=
# e.g. make demo DEMO_ARGS=--yes (use a DATABASE_URL that is not a throwaway database)
DEMO_ARGS ?=

.PHONY: venv system-deps test lint demo manifest engine soak bench extension extension-install

venv: $(STAMP)

# Set-up chatter goes to stderr, so that stdout carries only what a target produces
# (e.g. `make bench BENCH_ARGS=--json > report.json`).
$(VENV)/bin/python:
	@echo "creating $(VENV)" >&2
	@$(PYTHON) -m venv $(VENV) >&2

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "installing pgsweep and its dev dependencies into $(VENV)" >&2
	@$(VENV)/bin/python -m pip install --quiet -e '.[dev]' >&2
	@touch $@

system-deps:
	@scripts/install-system-deps >&2

test: system-deps venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The stress test for longer (default 30 minutes): SOAK_SECONDS=7200 make soak
SOAK_SECONDS ?= 1800
soak: system-deps venv
	PGSWEEP_STRESS_SECONDS=$(SOAK_SECONDS) $(VENV)/bin/pytest -s tests/test_stress.py

lint: venv
	$(VENV)/bin/ruff check src tests migrations bench hatch_build.py
	$(VENV)/bin/mypy

demo: system-deps venv
	$(VENV)/bin/python -m pgsweep_testing.demo $(DEMO_ARGS)

# Regenerate the manifests verify compares against (src/pgsweep/engine_manifest.json: the newest
# engine alone; src/pgsweep/matcha_manifest.json: the reference app at head) from a throwaway
# cluster; tests/test_manifest.py fails until they are current.
manifest: venv
	$(VENV)/bin/python -m pgsweep.manifest --write

# Regenerate the newest engine release's install.sql from engine/src (refused once the release
# is sealed in engine/releases/SHA256SUMS); tests/test_engine_release.py fails until it is current.
engine: venv
	$(VENV)/bin/python -m pgsweep.engine

# The benchmark (README, "Performance"): about 25 minutes on 2 cores. Not part of `make test`,
# which runs only its smoke mode (tests/test_bench_smoke.py).
bench: system-deps venv
	@$(VENV)/bin/python -m bench $(BENCH_ARGS)

# The engine as a PostgreSQL extension (docs/extension.md): the control file and the scripts,
# generated from engine/releases into EXTENSION_DIR. `make extension-install` copies them into
# $(pg_config --sharedir)/extension, which needs root; PG_CONFIG names another server's pg_config.
EXTENSION_DIR ?= build/extension
PG_CONFIG ?= pg_config
extension: venv
	$(VENV)/bin/python -m pgsweep.extension build $(EXTENSION_DIR)

extension-install: venv
	$(VENV)/bin/python -m pgsweep.extension install --pg-config $(PG_CONFIG)
