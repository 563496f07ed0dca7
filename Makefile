# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo query test test-snowflake metadata lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed  ## Full sync of the bundled fake API into an embedded database
	$(BIN)/python scripts/demo.py

# After `make demo`: make query SQL="select count(*) from amplemarket.calls" (default: rows per table)
DUCKDB_PYTHON := .meltano/loaders/target-duckdb/venv/bin/python
query:  ## Query the demo's DuckDB file with the DuckDB the loader installed
	@test -x $(DUCKDB_PYTHON) || { echo "make query: no DuckDB loader yet; run make demo first"; exit 1; }
	@$(DUCKDB_PYTHON) scripts/duckdb_query.py output/warehouse.duckdb $(if $(SQL),"$(SQL)")

test: $(BIN)/.installed  ## Lint, type-check and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tap_amplemarket
	$(BIN)/pytest $(PYTEST_ARGS)

test-snowflake: $(BIN)/.installed  ## meltano run into a real Snowflake (needs SNOWFLAKE_*; see README)
	$(BIN)/pytest tests/snowflake $(PYTEST_ARGS)

metadata: $(BIN)/.installed  ## Regenerate meltano.yml's tap settings, README tables, docs/streams.md
	$(BIN)/python scripts/sync_plugin_metadata.py

bench: $(BIN)/.installed  ## Throughput and memory of a full sync (see README)
	$(BIN)/python bench/full_sync.py

clean:
	rm -rf $(VENV) .meltano output
