# fraudkit — verbs for a fresh clone. `make demo` and `make test` do all the set-up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-install only when pyproject.toml changes: the stamp's name carries its hash.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 5000
# HistGradientBoosting's OpenMP threads spin-wait by default, which makes fits 5-10x slower
# on a busy 2-core machine; passive waiting costs nothing when the machine is idle.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test lint format bench ui lab clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(VENV)/bin/fraudkit pipeline --quick
	@echo "Report: file://$(CURDIR)/reports/index.html"

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(PY) $$script || exit 1; \
	done

ui: $(STAMP)
	$(VENV)/bin/fraudkit ui --host $(HOST) --port $(PORT)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip $(HOST) --notebook-dir notebooks

clean:
	rm -rf reports/*.html reports/*.ipynb reports/runs
