# Every target creates or reuses the local virtual environment and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_N ?= 200000
# Test files run on this many workers, each with its own broker and PostgreSQL. Most tests wait on the broker,
# PostgreSQL or a subprocess, so a third worker on two cores shortens the suite (13.5 -> 11 minutes).
TEST_WORKERS ?= 3

.PHONY: install demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/issuance demo --applications 10000

test: $(STAMP)
	$(BIN)/python tests/browser_setup.py
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m benchmarks --applications $(BENCH_N)

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	-$(BIN)/issuance dev down
	rm -rf $(VENV) .issuance
