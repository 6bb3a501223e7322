# The two commands: `make run` serves the dashboard, `make test` runs the tests.
# Everything they need is installed into .venv from this repository's own files.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run serve test lint install install-test clean-venv \
	bench bench-fanout bench-send bench-incident bench-dispatch bench-list bench-insights bench-api \
	bench-webhooks

# Links and passkeys work at SENDAUTH_BASE_URL (default http://localhost:5000): on another
# port it follows, unless it is set.
ifneq ($(PORT),5000)
run: export SENDAUTH_BASE_URL ?= http://localhost:$(PORT)
endif
# One start of the app, not three: `flask run` itself migrates when the database is behind
# (a cheap look at its alembic_version otherwise) and makes sure there is an admin
# (PREPARE_ON_RUN, cli.prepare), as `db upgrade` and `ensure-admin` would.
run: $(VENV)/.installed
	SENDAUTH_PREPARE_ON_RUN=true $(FLASK) run --host $(HOST) --port $(PORT)

# Production: gunicorn with gevent workers (gunicorn.conf.py). Set SENDAUTH_SECRET_KEY and, to
# scale out, SENDAUTH_SQLALCHEMY_DATABASE_URI=postgresql+psycopg://... and SENDAUTH_REDIS_URL.
serve: $(VENV)/.installed-production
	$(FLASK) db upgrade
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.installed-test
	$(BIN)/pytest $(PYTEST_ARGS)

# pyflakes, pycodestyle, import order and bugbear (pyproject.toml, [tool.ruff]); CI runs it first.
lint: $(VENV)/.installed-lint
	$(BIN)/ruff check .

# Benchmarks (README.md, "Benchmarks"): each prints a table and writes JSON to bench/results/.
# They need PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379); pass options with BENCH_ARGS.
bench: bench-fanout bench-send bench-incident bench-dispatch bench-list bench-insights

bench-fanout: $(VENV)/.installed-bench
	$(BIN)/python -m bench.fanout $(BENCH_ARGS)

bench-send: $(VENV)/.installed-bench
	$(BIN)/python -m bench.send $(BENCH_ARGS)

bench-incident: $(VENV)/.installed-bench
	$(BIN)/python -m bench.incident $(BENCH_ARGS)

bench-dispatch: $(VENV)/.installed-bench
	$(BIN)/python -m bench.dispatch $(BENCH_ARGS)

bench-list: $(VENV)/.installed-bench
	$(BIN)/python -m bench.listing $(BENCH_ARGS)

bench-insights: $(VENV)/.installed-bench
	$(BIN)/python -m bench.insights $(BENCH_ARGS)

bench-api: $(VENV)/.installed-bench
	$(BIN)/python -m bench.api $(BENCH_ARGS)

bench-webhooks: $(VENV)/.installed-bench
	$(BIN)/python -m bench.webhooks $(BENCH_ARGS)

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml setup.cfg constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-production: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[production]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[test]'
	touch $@

$(VENV)/.installed-lint: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[lint]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PIP_INSTALL) -e '.[test,bench]'
	touch $@

clean-venv:
	rm -rf $(VENV)
