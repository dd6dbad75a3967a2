# The newcomer's two commands are `make demo` and `make test`; both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
HOME_DIR ?= ./justice-home
PERSONS ?= 5000

.PHONY: setup demo test test-fast lint bench clean lock

$(STAMP): requirements.lock pyproject.toml package-lock.json
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	@command -v npm >/dev/null || { echo "need npm (Node 20) on PATH for the web app's GOV.UK Frontend assets"; exit 1; }
	npm ci --no-audit --no-fund --silent
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## create .venv from the lock file

demo: setup  ## simulate a small world and run every pipeline step on DuckDB
	$(BIN)/justice demo --persons $(PERSONS) --home $(HOME_DIR)

test: setup lint  ## the linter, then the whole suite, slow and PostgreSQL tests included
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: setup  ## skip tests marked slow (those on a whole simulated home are marked slow by tests/conftest.py)
	$(BIN)/python -m pytest -n 2 -m "not slow"

lint: setup  ## ruff over the code, the tests and the benchmarks
	$(BIN)/ruff check src tests benchmarks

bench: setup  ## print the benchmark figures (1,000,000 people; takes minutes)
	$(BIN)/python benchmarks/simulate.py --persons 1000000

lock: setup  ## re-resolve the lock file after changing pyproject.toml
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache
