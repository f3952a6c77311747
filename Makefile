# Every target bootstraps what it needs: a fresh clone on a clean machine runs `make test` as is.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit fuzz bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@bash scripts/install-system-packages.sh
	@touch $(STAMP)

run: install
	$(BIN)/tmc up --data-dir .tmc

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

# Two workers, each taking whole modules (a module's shared `tmc up` or hub stays in one worker): the e2e tests spend
# most of their time waiting for processes, so two cores finish the suite in about two thirds of the serial time.
test: install lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

# The tests that start no server and need no kubectl, the layering check among them: seconds, not minutes.
unit: install
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

# The fuzz test of `make test` for 10 minutes with random seeds, reporting every distinct failure rather than the first.
FUZZ_SECONDS ?= 600
fuzz: install
	TMC_FUZZ_SECONDS=$(FUZZ_SECONDS) TMC_FUZZ_RANDOM=1 TMC_FUZZ_KEEP_GOING=1 \
		$(BIN)/pytest -q -p no:cacheprovider -o timeout=0 tests/e2e/test_fuzz.py

# The committed API reference (docs/reference/): Markdown, HTML and OpenAPI JSON, from the API types. `make test`
# fails while it is stale.
docs: install
	$(BIN)/tmc docs api --output docs/reference --format markdown --format html

bench: install
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .tmc
