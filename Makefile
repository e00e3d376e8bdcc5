# Two commands for a newcomer with Python 3.10+, git and make:
#   make example   run the example project under `manage.py litestream serve`
#   make test      set up and run the whole test suite
# Both create .venv when it is missing and (re)install only when pyproject.toml or a
# requirements file changed.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip --disable-pip-version-check -q
PORT ?= 8000
export PORT

.PHONY: help example test lint bench bench-vfs bench-durability bench-operations docs wheel clean

help:
	@echo "make example   run examples/demo under 'manage.py litestream serve' (http://127.0.0.1:$(PORT)/)"
	@echo "make test      install the test dependencies and servers, run the whole suite"
	@echo "make lint      ruff (lint + format check) and mypy --strict on src/"
	@echo "make bench     run benchmarks/bench_serve.py (serve vs the plain recipe vs bare gunicorn)"
	@echo "make bench-vfs run benchmarks/bench_vfs.py (read replicas vs the local SQLite file)"
	@echo "make bench-durability  run benchmarks/bench_durability.py (acknowledged writes vs a restore)"
	@echo "make bench-operations  run benchmarks/bench_operations.py (verify, health endpoint, outage detection)"
	@echo "make docs      build the documentation into docs/_build/html"
	@echo "make wheel     build dist/django_litestream-<version>-py3-none-any.whl from this checkout"
	@echo "make clean     remove .venv, docs/_build and the example's database and replica"

$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
	  { echo "make: $(PYTHON) is older than Python 3.10; run 'make PYTHON=python3.11 ...'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Stamp files record what is installed; they are remade when their inputs change.
$(VENV)/.example-installed: $(VPY) pyproject.toml examples/requirements.txt
	@echo "Installing django-litestream[serve] and the example's requirements into $(VENV) ..."
	$(PIP) install -e '.[serve]' -r examples/requirements.txt
	@touch $@

$(VENV)/.test-installed: $(VPY) pyproject.toml
	@echo "Installing django-litestream with its test extra into $(VENV) ..."
	$(PIP) install -e '.[test]'
	@touch $@

# The example replicates to examples/demo/replica/ (no cloud account). serve restores the
# database from there when it is missing, runs migrate, waits until Litestream has
# replicated, then runs gunicorn. Stop it with Ctrl-C: the final sync still runs.
# The command is the recommended Procfile line, run with .venv first on PATH.
example: $(VENV)/.example-installed
	@echo "Serving http://127.0.0.1:$(PORT)/ ; replica: examples/demo/replica/ ; Ctrl-C stops."
	cd examples/demo && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  python manage.py litestream serve --pre "python manage.py migrate --noinput"

# The storage servers (sshd, Azurite) need apt/npm and root; without them the SFTP and
# Azure tests skip, and everything else still runs.
test: $(VENV)/.test-installed
	@if [ "$$(id -u)" = 0 ] || { [ -x /usr/sbin/sshd ] && command -v azurite-blob >/dev/null; }; then \
	  .ci/install-servers || echo "make: .ci/install-servers failed; SFTP/Azure tests will skip" >&2; \
	else \
	  echo "make: not root; skipping .ci/install-servers (SFTP/Azure tests may skip)" >&2; \
	fi
	$(VPY) -m pytest $(PYTEST_ARGS)

$(VENV)/.lint-installed: $(VPY) pyproject.toml
	@echo "Installing the linters (ruff, mypy, django-stubs) into $(VENV) ..."
	$(PIP) install -e '.[lint]'
	@touch $@

lint: $(VENV)/.lint-installed
	$(VENV)/bin/ruff check src tests benchmarks examples noxfile.py
	$(VENV)/bin/ruff format --check src tests benchmarks examples noxfile.py
	$(VENV)/bin/mypy

# Figures and ratios side by side in one run; wrk is used when installed (apt-get install wrk).
bench: $(VENV)/.test-installed
	$(VPY) -m benchmarks.bench_serve $(BENCH_ARGS)

# Read replicas through the Litestream VFS vs the local file, side by side (about a minute).
bench-vfs: $(VENV)/.test-installed
	$(VPY) -m benchmarks.bench_vfs $(BENCH_ARGS)

# Acknowledged writes against a restore, write->replica lag, warm-start uploads (~25 min).
bench-durability: $(VENV)/.test-installed
	$(VPY) -m benchmarks.bench_durability $(BENCH_ARGS)

bench-operations: $(VENV)/.test-installed
	$(VPY) -m benchmarks.bench_operations $(BENCH_ARGS)

docs: $(VENV)/.test-installed
	$(VENV)/bin/sphinx-build -W -q -b html docs docs/_build/html
	@echo "Open docs/_build/html/index.html"

# The wheel that docs/installation.rst installs. Building needs only setuptools, which pip
# puts into an isolated build environment (WHEEL_FLAGS=--no-build-isolation uses .venv's).
# build/ is removed first: setuptools would copy modules deleted since the last build.
wheel: $(VPY)
	rm -rf build
	$(PIP) wheel --no-deps $(WHEEL_FLAGS) -w dist .
	@ls dist/*.whl

clean:
	rm -rf $(VENV) docs/_build build dist examples/demo/db.sqlite3* \
	  examples/demo/.db.sqlite3-litestream examples/demo/replica
