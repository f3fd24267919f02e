# Set-up and the everyday commands. `make demo` and `make test` each install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-postgres test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Vitrine needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the builds this project's machines carry (CPU is enough).
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[torch,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vitrine demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# The database-touching tests again on PostgreSQL: one throwaway server (Debian's binaries), a fresh
# database per data folder (tests/postgres.py). CI runs it after `make test`.
POSTGRES_TESTS ?= tests/workflow tests/catalog_ingest tests/migrations tests/api tests/test_upload_limits.py
test-postgres: $(STAMP)
	VITRINE_TEST_DATABASE=postgresql $(BIN)/python -m pytest $(POSTGRES_TESTS)

# Benchmarks, uvicorn load runs, model exports and the wheel build: CI runs these after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/vitrine bench embed --model ViT-B-32 --random-weights --json

clean:
	rm -rf $(VENV) var
