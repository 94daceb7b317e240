# Two commands do all set-up: `make run` (the main job) and `make test` (the tests).
PYTHON ?= python3
PORT ?= 4200
VENV := .venv
BIN := $(VENV)/bin
UV := uv==0.13.8

.PHONY: run test demo lint bench clean

# uv installs the pinned set (constraints.txt) in ~20 s where pip took 45-70 s; it is itself pinned.
$(BIN)/campaign: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(UV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[dev]'
	touch $@

## run: set up, create the database, start a local Prefect server and serve every flow on its schedule
##      (UI on http://127.0.0.1:$(PORT), reports on $(PORT)+1; `make run PORT=4300` for another port)
run: $(BIN)/campaign
	$(BIN)/campaign init
	$(BIN)/campaign serve --port $(PORT)

## test: the whole test suite on SQLite and PostgreSQL
test: $(BIN)/campaign
	$(BIN)/ruff check .
	$(BIN)/pytest

## demo: walk the June flows through 2022-06-21 … 2022-07-01 into var/mailbox (offline, one server)
demo: $(BIN)/campaign
	$(BIN)/campaign demo

## bench: every benchmark at full size (SQLite and PostgreSQL), results in benchmarks/results.md and .json
bench: $(BIN)/campaign
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) var
