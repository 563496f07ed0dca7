# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed  ## Full sync of the bundled fake API into an embedded database
	$(BIN)/python scripts/demo.py

test: $(BIN)/.installed  ## Lint, type-check and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tap_amplemarket
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed  ## Throughput and memory of a full sync (see README)
	$(BIN)/python bench/full_sync.py

clean:
	rm -rf $(VENV) .meltano output
