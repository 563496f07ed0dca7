# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
# Each virtualenv is synced by uv from a uv.lock (`make lock` writes them), so every machine
# and CI install the same versions; `--locked` stops a build whose lock is stale.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# PyAirbyte gets a virtualenv of its own (tests_airbyte/pyproject.toml and uv.lock): its
# rich/structlog pins conflict with meltano's.
AIRBYTE_VENV ?= .venv-airbyte
AIRBYTE_BIN := $(AIRBYTE_VENV)/bin
# airbyte-cdk runs the Connector Builder manifest from a virtualenv of its own
# (manifest/pyproject.toml and uv.lock), for the same reason.
CDK_VENV ?= .venv-cdk
CDK_BIN := $(CDK_VENV)/bin
# PyAirbyte needs Python 3.10 to 3.12: $(PYTHON) if it is one, else the first found on PATH.
AIRBYTE_PYTHON = $(firstword $(foreach python,$(PYTHON) python3.12 python3.11 python3.10,\
  $(shell $(python) -c 'import sys; print((3, 10) <= sys.version_info[:2] <= (3, 12))' \
  2>/dev/null | grep -q True && echo $(python))))

# uv itself, at a pinned version from PyPI, in a virtualenv of its own: only Python and PyPI
# are needed on a fresh machine. It uses the Pythons on PATH and never downloads one.
UV_VERSION := 0.13.9
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
UV_STAMP := $(UV_VENV)/.uv-$(UV_VERSION)
export UV_PYTHON_DOWNLOADS := never
# Each virtualenv: `uv sync --locked` of its uv project into the path UV_PROJECT_ENVIRONMENT
# names, made absolute (uv reads a relative one from the project's directory), on the Python
# named next.
SYNC = $(UV) sync --locked --quiet --python
# What the Meltano plugin and the Airbyte image install through: the runtime part of uv.lock,
# exported for pip (`make lock` writes it; `make lint` fails if it differs from uv.lock).
EXPORT := $(UV) export --locked --quiet --no-default-groups --no-emit-project --no-hashes
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest version allowed.
LOCK_ARGS ?=

.PHONY: demo query test lint test-airbyte test-manifest test-snowflake metadata manifest lock \
  bench clean image-test

$(UV_STAMP):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)
	touch $@

$(BIN)/.installed: pyproject.toml uv.lock $(UV_STAMP)
	UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) $(SYNC) $(PYTHON) --group test --group lint
	touch $@

$(AIRBYTE_BIN)/.installed: tests_airbyte/pyproject.toml tests_airbyte/uv.lock $(UV_STAMP)
	@test -n "$(AIRBYTE_PYTHON)" || { echo "PyAirbyte needs Python 3.10-3.12 and none was found: \
	install python3.12 or run make PYTHON=/path/to/python3.12" >&2; exit 1; }
	UV_PROJECT_ENVIRONMENT=$(abspath $(AIRBYTE_VENV)) $(SYNC) $(AIRBYTE_PYTHON) \
	  --project tests_airbyte
	touch $@

$(CDK_BIN)/.installed: manifest/pyproject.toml manifest/uv.lock $(UV_STAMP)
	UV_PROJECT_ENVIRONMENT=$(abspath $(CDK_VENV)) $(SYNC) $(PYTHON) --project manifest
	touch $@

demo: $(BIN)/.installed  ## Full sync of the bundled fake API into an embedded database
	$(BIN)/python scripts/demo.py

# After `make demo`: make query SQL="select count(*) from amplemarket.calls" (default: rows per table)
DUCKDB_PYTHON := .meltano/loaders/target-duckdb/venv/bin/python
DUCKDB_FILE ?= output/warehouse.duckdb
# The SQL reaches DuckDB as written: taken unexpanded ($(value)), so make leaves its $ alone.
override SQL := $(value SQL)
export SQL
query:  ## Query the demo's DuckDB file with the DuckDB the loader installed
	@test -x $(DUCKDB_PYTHON) || { echo "make query: no DuckDB loader yet; run make demo first"; exit 1; }
	@$(DUCKDB_PYTHON) scripts/duckdb_query.py $(DUCKDB_FILE)

# Test files spread over processes (pytest-xdist; a file's tests stay together, sharing its
# fixtures): most tests wait on subprocesses and sockets, so more than the cores helps.
# PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= 4

test: lint  ## Lint, type-check and run the whole test suite (PyAirbyte's too)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-manifest
	$(MAKE) --no-print-directory test-airbyte

lint: $(BIN)/.installed  ## ruff check, ruff format --check and mypy --strict (as pre-commit runs them)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tap_amplemarket
	$(EXPORT) | diff -u constraints.txt - || { echo "constraints.txt: run make lock" >&2; exit 1; }

# source-amplemarket runs from the project's virtualenv; PyAirbyte, from its own.
test-airbyte: $(BIN)/.installed $(AIRBYTE_BIN)/.installed  ## PyAirbyte end to end
	SOURCE_AMPLEMARKET=$(abspath $(BIN)/source-amplemarket) \
	  $(AIRBYTE_BIN)/python -m pytest tests_airbyte $(PYTEST_ARGS)

# The tests run from the project's virtualenv (the fake API, the protocol models); airbyte-cdk's
# source-declarative-manifest, from its own.
test-manifest: $(BIN)/.installed $(CDK_BIN)/.installed  ## manifest.yaml run by airbyte-cdk
	SOURCE_DECLARATIVE_MANIFEST=$(abspath $(CDK_BIN)/source-declarative-manifest) \
	  $(BIN)/pytest tests_manifest $(PYTEST_ARGS)

test-snowflake: $(BIN)/.installed  ## meltano run into a real Snowflake (needs SNOWFLAKE_*; see README)
	$(BIN)/pytest tests/snowflake $(PYTEST_ARGS)

# Needs root where no Docker engine answers yet: it starts one (and stops it after).
image-test: $(BIN)/.installed  ## Build the Airbyte image and run spec, check, discover, read in it
	$(BIN)/python -m scripts.image_test

metadata: $(BIN)/.installed  ## Regenerate meltano.yml's tap settings, README tables, docs/streams.md
	$(BIN)/python scripts/sync_plugin_metadata.py
	$(BIN)/python scripts/generate_manifest.py

manifest: $(BIN)/.installed  ## Regenerate manifest/manifest.yaml (the Connector Builder's) from the tap
	$(BIN)/python scripts/generate_manifest.py

lock: $(UV_STAMP)  ## Re-resolve the three uv.lock files after a dependency changed (needs PyPI)
	$(UV) lock $(LOCK_ARGS)
	$(UV) lock $(LOCK_ARGS) --project tests_airbyte
	$(UV) lock $(LOCK_ARGS) --project manifest
	$(EXPORT) > constraints.txt

bench: $(BIN)/.installed  ## Throughput, memory, wall time against the rate-limit floor (see README)
	$(BIN)/python bench/full_sync.py
	$(BIN)/python bench/cpu_per_record.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/airbyte_vs_singer.py

clean:
	rm -rf $(VENV) $(AIRBYTE_VENV) $(CDK_VENV) $(UV_VENV) .meltano output
