# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit docs bench bench-env clean

$(STAMP): pyproject.toml requirements.txt
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/funnelrec demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# API reference + guide pages (mkdocs.yml); warnings are errors; needs no network.
docs: $(STAMP)
	PYTHONPATH=src $(BIN)/mkdocs build --strict --quiet

# Re-run every recorded benchmark command of <= 5 min and check its rows reproduce.
bench: $(STAMP)
	$(BIN)/python benchmarks/reproduce.py --max-wall 300

# The library versions the rows were recorded with (rows reproduce on a like environment).
bench-env: $(STAMP)
	$(BIN)/pip install -q -r requirements.txt -c benchmarks/environment.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build/site
