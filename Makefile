# lanesight developer commands. `make demo` and `make test` set up everything they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BUF := node_modules/.bin/buf
PROTOS := $(wildcard protos/lanesight/v1/*.proto)

.PHONY: all setup stubs lint test test-fast demo bench clean buf-breaking k8s-check

all: test

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q grpcio-tools
	$(MAKE) stubs
	$(PIP) install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed lanesight/v1/__init__.py

# Generate the Python stubs (with .pyi) for lanesight.v1 from protos/ into ./lanesight.
stubs lanesight/v1/__init__.py: $(PROTOS)
	rm -rf lanesight
	mkdir -p lanesight/v1
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	printf '"""Generated gRPC stubs for the lanesight API; do not edit (make stubs)."""\n' > lanesight/__init__.py
	printf '"""Generated stubs for lanesight.v1; do not edit (make stubs)."""\n' > lanesight/v1/__init__.py

lint: setup
	cd protos && ../$(BUF) lint
	$(VENV)/bin/ruff check services tests benchmarks

test: setup lint
	$(VENV)/bin/pytest -q

test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow"

demo: setup
	$(PY) -m services.demo

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

buf-breaking: setup
	cd protos && ../$(BUF) breaking --against '../.git#branch=main,subdir=protos'

k8s-check: setup
	$(VENV)/bin/pytest -q tests/k8s

clean:
	rm -rf $(VENV) node_modules lanesight .pytest_cache
