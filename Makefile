# StreamHouse developer entry points. `make test` works on a fresh machine: it creates the
# virtual environment, builds (or reuses) the cached Kafka and Kubernetes binaries, and runs
# lint, type checks and every test tier.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: venv services browser lint typecheck pytest test demo crds docs clean

$(STAMP): pyproject.toml
	rm -f $(VENV)/.installed-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

# Kafka and the schema registry (Maven Central) and the control plane (Go module proxy) build
# side by side, cached under $${STREAMHOUSE_CACHE:-~/.cache/streamhouse}.
services:
	scripts/build-kafka.sh >/dev/null & kafka=$$!; \
	scripts/build-registry.sh >/dev/null & registry=$$!; \
	scripts/build-promtool.sh >/dev/null & promtool=$$!; \
	scripts/build-k8s.sh >/dev/null; \
	wait $$kafka; \
	wait $$registry; \
	wait $$promtool

# Debian's chromium, for the web console's browser test (tests/e2e/test_console.py).
browser:
	scripts/install-browser.sh >/dev/null

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

pytest: venv services browser
	$(BIN)/pytest

test: lint typecheck pytest

crds: venv
	$(BIN)/streamhouse crd > crds/streamquery.yaml
	cp crds/streamquery.yaml helm/streamhouse/crds/streamquery.yaml
	$(BIN)/streamhouse crd --catalog > crds/streamsource.yaml
	cp crds/streamsource.yaml helm/streamhouse/crds/streamsource.yaml
	$(BIN)/python -m scripts.docs

# docs/crd-reference.md and docs/functions.md are generated from the code.
docs: venv
	$(BIN)/python -m scripts.docs

demo: venv services
	$(BIN)/python -m scripts.demo

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
