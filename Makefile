# fraudkit — verbs for a fresh clone. `make demo` and `make test` do all the set-up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-install only when pyproject.toml changes: the stamp's name carries its hash.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DOCS_STAMP := $(VENV)/.docs-installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=
# pytest-xdist workers: one per core. Tests that must not share the machine with another
# test group themselves (xdist_group) and run on one worker, one after the other.
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadgroup
HOST ?= 127.0.0.1
PORT ?= 5000
# Jupyter refuses to start as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# HistGradientBoosting's OpenMP threads spin-wait by default, which makes fits 5-10x slower
# on a busy 2-core machine; passive waiting costs nothing when the machine is idle.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help install system-packages demo unit test lint docs format bench ui lab clean

help:  ## list the verbs
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv, install fraudkit with its dev tools and its Jupyter kernel

$(PY):
	$(PYTHON) -m venv $(VENV)

# The kernel `fraudkit` lives inside .venv, so a user-level `python3` kernelspec without
# fraudkit cannot take over the notebooks the runner executes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name fraudkit --display-name "Python (fraudkit)"
	rm -f $(VENV)/.installed-*
	touch $@

system-packages:  ## apt-install PostgreSQL and Chromium when missing (the server and browser tests)
	@$(PYTHON) tests/support/system_packages.py

demo: $(STAMP)  ## run the quick pipeline and write reports/index.html
	$(VENV)/bin/fraudkit pipeline --quick
	@echo "Report: file://$(CURDIR)/reports/index.html"

unit: $(STAMP)  ## the fast tests: no server, notebook or browser
	$(PY) -m pytest $(XDIST) -m "not server and not notebook and not browser" $(PYTEST_ARGS)

# --durations: every run lists its twenty slowest tests, to see where the time goes.
test: system-packages $(STAMP)  ## every test (installs the system packages first)
	$(PY) -m pytest $(XDIST) --durations=20 $(PYTEST_ARGS)

# Every check runs, even after one fails, so one `make lint` shows all there is to fix.
# pyright reads its settings ([tool.pyright], basic mode on fraudkit/) from pyproject.toml;
# lint-imports keeps no cache in the checkout; --keep-id keeps the notebooks' named cell ids
# (nbstripout would renumber them) so only outputs and execution counts count as dirt.
LINT_CHECKS := "ruff check ." "ruff format --check ." "lint-imports --no-cache" "pyright" \
	"nbstripout --keep-id --verify notebooks/*.ipynb"

lint: $(STAMP)  ## ruff, import contracts, pyright on fraudkit/, notebooks without outputs
	@status=0; for check in $(LINT_CHECKS); do \
		echo "== $$check"; $(VENV)/bin/$$check || status=1; \
	done; exit $$status

# The docs extra (Sphinx and its extensions) comes on top of the dev install, on first use.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	rm -f $(VENV)/.docs-installed-*
	touch $@

# Warnings are errors: a broken reference, a docstring numpydoc cannot read or a page left
# out of the table of contents fails the build. --keep-going reports all of them at once.
# The five notebooks of a quick pipeline run are executed during the build and rendered
# (cached in docs/_build until a notebook or the package changes); DOCS_QUICK_RUN=0 leaves
# them out, for a quick look at a page being written.
DOCS_QUICK_RUN ?= 1

docs: $(DOCS_STAMP)  ## the Sphinx site in docs/_build/html, with the notebooks of a quick run rendered
	FRAUDKIT_DOCS_QUICK_RUN=$(DOCS_QUICK_RUN) \
		$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo "Docs: file://$(CURDIR)/docs/_build/html/index.html"

format: $(STAMP)  ## fix what ruff can fix and format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)  ## run the benchmarks (ratios against plain MLflow)
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(PY) $$script || exit 1; \
	done

ui: $(STAMP)  ## the MLflow UI on the kit's tracking store
	$(VENV)/bin/fraudkit ui --host $(HOST) --port $(PORT)

lab: $(STAMP)  ## JupyterLab on notebooks/ with the fraudkit kernel
	$(VENV)/bin/jupyter lab --ip $(HOST) --notebook-dir notebooks $(ALLOW_ROOT)

clean:  ## remove generated reports
	rm -rf reports/*.html reports/*.ipynb reports/runs
