# polylab: `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.polylab-installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==0.13.9
	@$(UV) pip install -q --python $(PY) -e '.[dev]'
	@$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(VENV)/bin/nbstripout --install || true; fi
	@touch $(STAMP)

# the replay hot path compiled with mypyc (polylab/native.py): rebuilt when missing or stale,
# skipped with a note when there is no C compiler (the same sources then run as Python)
native: $(STAMP) ## compile the hot path with mypyc now (make setup does it when stale)
	@$(PY) -m polylab.native_build build

setup: $(STAMP) ## create .venv/ with polylab and its pinned tools, compile the hot path (idempotent)
	@$(PY) -m polylab.native_build ensure

demo: setup ## the main job on embedded defaults: local exchange + paper-trade SumTo100, Clipper, Sniper (~35 s)
	@$(VENV)/bin/polylab demo

CHROMIUM ?= /usr/bin/chromium
browser: ## Debian's chromium for the dashboard's browser tests (installed when missing, as root)
	@test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  >/dev/null; else echo "no $(CHROMIUM): sudo apt-get install -y chromium" \
	  "(the browser tests skip without it)"; fi; }

test: setup browser check ## lint, type-check and run the whole test suite
	@$(PY) -m pytest -q

check: setup ## ruff (lint + format diff) and mypy --strict on polylab/
	@$(VENV)/bin/ruff check polylab tests bench notebooks pipelines
	@$(VENV)/bin/ruff format --check polylab tests bench
	@$(VENV)/bin/mypy

$(VENV)/.polylab-bench: $(STAMP)
	@$(UV) pip install -q --python $(PY) -e '.[dev,bench]'
	@touch $@

bench: setup $(VENV)/.polylab-bench ## benchmarks: replay, VWAP, signing, feed; a PASS/FAIL verdict per target, fails if one is missed
	@rc=0; for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || rc=1; done; exit $$rc

clean: ## remove the virtualenv, caches and the compiled hot path
	-@test -x $(PY) && $(PY) -m polylab.native_build clean >/dev/null
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs

$(VENV)/.polylab-lab: $(STAMP)
	@$(UV) pip install -q --python $(PY) -e '.[dev,lab]'
	@touch $@

LAB_ARGS ?=
lab: setup $(VENV)/.polylab-lab ## JupyterLab (the pinned `lab` extra) with the project kernel; as root it adds --allow-root
	@if [ "$$(id -u)" = 0 ]; then root=--allow-root; echo "note: running as root, so" \
	  "JupyterLab gets --allow-root (kernels run as root too; a normal user is safer)"; fi; \
	exec $(VENV)/bin/jupyter lab --MappingKernelManager.default_kernel_name=python3 \
	  --ServerApp.root_dir=. $$root $(LAB_ARGS)

.PHONY: help setup native browser demo test check bench clean lab
