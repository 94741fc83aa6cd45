# lanesight developer commands. `make demo` and `make test` set up everything they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BUF := node_modules/.bin/buf
PROTOS := $(wildcard protos/lanesight/v1/*.proto)

.PHONY: all setup stubs lint test test-fast demo bench clean buf-breaking k8s-check lock api-packages

all: test

# constraints.txt holds the exact versions that were tested (make lock), so an install
# months from now resolves the same ones; pyproject.toml keeps the ranges.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q grpcio-tools -c constraints.txt
	$(MAKE) stubs
	$(PIP) install -q -e '.[dev]' -c constraints.txt
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed services/v1/__init__.py

# Generate the Python stubs (with .pyi) for lanesight.v1 from protos/ into services/v1
# (the import package lanesight is the folder services/; see pyproject.toml). protoc's
# .pyi types an enum field as its enum class only; protobuf takes plain ints too (what
# our IntEnums and enum fields hold), so sed lets the stubs say so for mypy.
stubs services/v1/__init__.py: $(PROTOS)
	rm -rf services/v1 build/stubs
	mkdir -p build/stubs
	$(PY) -m grpc_tools.protoc -I protos --python_out=build/stubs --pyi_out=build/stubs --grpc_python_out=build/stubs $(PROTOS)
	mv build/stubs/lanesight/v1 services/v1
	sed -i -E 's/_Union\[([A-Za-z0-9_.]+), str\]/_Union[\1, str, int]/g' services/v1/*.pyi
	rm -rf build/stubs
	printf '"""Generated stubs for lanesight.v1; do not edit (make stubs)."""\n' > services/v1/__init__.py

# mypy cannot follow the editable install's import hook: build/mypy/lanesight links to
# services/ so it checks the package under its import name (pyproject.toml [tool.mypy]).
lint: setup
	cd protos && ../$(BUF) lint
	$(VENV)/bin/ruff check services tests benchmarks training
	mkdir -p build/mypy && ln -sfn ../../services build/mypy/lanesight
	$(VENV)/bin/mypy

test: setup lint
	$(VENV)/bin/pytest -q

test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow"

demo: setup
	$(PY) -m lanesight.demo

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

buf-breaking: setup
	cd protos && ../$(BUF) breaking --against '../.git#branch=main,subdir=protos'

k8s-check: setup
	$(VENV)/bin/pytest -q tests/k8s

# After adding or upgrading a dependency (pyproject.toml) and installing it: regenerate
# constraints.txt from the environment the tests ran in, and commit it.
lock:
	test -x $(PY) || { echo "no $(VENV): run make setup first" >&2; exit 1; }
	{ printf '%s\n' '# The exact versions lanesight was tested with: `make lock` writes this file from' \
	    '# the virtualenv (pip freeze) and `make setup` installs with -c constraints.txt.' \
	    '# Ranges live in pyproject.toml; OpenTelemetry moves as one set there.'; \
	  $(PIP) freeze --exclude-editable; } > constraints.txt

# The API-only client packages for integrators (docs/integrating.md): the lanesight-api
# wheel and the @lanesight/api npm package, into dist/.
api-packages: setup
	$(PY) packages/lanesight-api/build_wheel.py --out dist
	node packages/lanesight-api-js/build.js dist

clean:
	rm -rf $(VENV) node_modules services/v1 .pytest_cache
