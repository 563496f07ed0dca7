# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
# Both virtualenvs, and the tap's own plugin venv under Meltano, install through constraint
# files (`make lock`), so every machine and CI resolve the same versions.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# PyAirbyte gets a virtualenv of its own: its rich/structlog pins conflict with meltano's.
AIRBYTE_VENV ?= .venv-airbyte
AIRBYTE_BIN := $(AIRBYTE_VENV)/bin
# airbyte-cdk runs the Connector Builder manifest from a virtualenv of its own, for the same
# reason.
CDK_VENV ?= .venv-cdk
CDK_BIN := $(CDK_VENV)/bin
# PyAirbyte needs Python 3.10 to 3.12: $(PYTHON) if it is one, else the first found on PATH.
AIRBYTE_PYTHON = $(firstword $(foreach python,$(PYTHON) python3.12 python3.11 python3.10,\
  $(shell $(python) -c 'import sys; print((3, 10) <= sys.version_info[:2] <= (3, 12))' \
  2>/dev/null | grep -q True && echo $(python))))

# uv resolves the constraint files for every Python at once, from a virtualenv of its own
# (not the project's, which is built from the files it rewrites).
UV_VERSION := 0.13.9
LOCK_VENV := .venv-lock
LOCK_TOOLS := uv==$(UV_VERSION) packaging "tomli; python_version < '3.11'"

.PHONY: demo query test lint test-airbyte test-manifest test-snowflake metadata manifest lock \
  bench clean image-test

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

$(AIRBYTE_BIN)/.installed: tests_airbyte/requirements.txt tests_airbyte/constraints.txt
	@test -n "$(AIRBYTE_PYTHON)" || { echo "PyAirbyte needs Python 3.10-3.12 and none was found: \
	install python3.12 or run make PYTHON=/path/to/python3.12" >&2; exit 1; }
	$(AIRBYTE_PYTHON) -m venv $(AIRBYTE_VENV)
	$(AIRBYTE_BIN)/python -m pip install --quiet --upgrade pip
	$(AIRBYTE_BIN)/python -m pip install --quiet -c tests_airbyte/constraints.txt \
	  -r tests_airbyte/requirements.txt
	touch $@

$(CDK_BIN)/.installed: manifest/requirements.txt manifest/constraints.txt
	$(PYTHON) -m venv $(CDK_VENV)
	$(CDK_BIN)/python -m pip install --quiet --upgrade pip
	$(CDK_BIN)/python -m pip install --quiet -c manifest/constraints.txt -r manifest/requirements.txt
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

test: lint  ## Lint, type-check and run the whole test suite (PyAirbyte's too)
	$(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-manifest
	$(MAKE) --no-print-directory test-airbyte

lint: $(BIN)/.installed  ## ruff check, ruff format --check and mypy --strict (as pre-commit runs them)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tap_amplemarket

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

lock:  ## Re-pin both virtualenvs after a dependency changed (needs PyPI)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(LOCK_TOOLS)
	$(LOCK_VENV)/bin/python scripts/lock.py --uv $(LOCK_VENV)/bin/uv

bench: $(BIN)/.installed  ## Throughput, memory, wall time against the rate-limit floor (see README)
	$(BIN)/python bench/full_sync.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/airbyte_vs_singer.py

clean:
	rm -rf $(VENV) $(AIRBYTE_VENV) $(CDK_VENV) $(LOCK_VENV) .meltano output
