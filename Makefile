# Targets a newcomer needs. Everything installs into ./.venv from nothing.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install lint format typecheck check-defs pytest simulate capture bench bench-pipeline clean help

run: install            ## the bundled exchange + the Dagster UI with captures flowing
	./scripts/run.sh

test: install lint typecheck check-defs pytest   ## everything CI runs

install: $(STAMP)

# Reinstalled when the compiled core's sources change: the editable install compiles them.
$(STAMP): pyproject.toml setup.py $(wildcard orderbook_pipeline/*/*.pyx orderbook_pipeline/*/*.pxd)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: install           ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install         ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install      ## mypy (strict) on the whole package
	$(VENV)/bin/mypy

check-defs: install     ## the Dagster definitions load as `dg dev` loads them
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/dg check defs

pytest: install         ## the test suite (loopback only)
	$(PY) -m pytest -q

simulate: install       ## only the bundled exchange, on ws/http://127.0.0.1:9443
	$(VENV)/bin/orderbook-pipeline simulate --port 9443 --symbols BTCUSDT,ETHUSDT

capture: install        ## one 60 s burst against the bundled exchange started by `make simulate`
	$(VENV)/bin/orderbook-pipeline capture --venue binance-spot --symbols BTCUSDT,ETHUSDT \
	    --duration 60 --depths 10,20,50 --data-root ./data \
	    --ws-url ws://127.0.0.1:9443 --rest-url http://127.0.0.1:9443

bench: install          ## the capture hot-path benchmark (~15 min; benchmarks/README.md)
	$(PY) -m benchmarks.run

bench-pipeline: install ## the whole stack for 20 min: freshness, orchestration cost, stop (~23 min)
	$(PY) -m benchmarks.pipeline --symbols 100 --minutes 20 --lanes l2,diffs \
	    --json /tmp/bench-pipeline.json

clean:                  ## remove the virtual environment and caches (never ./data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

help:                   ## list these targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed -E 's/:.*## /\t/'
