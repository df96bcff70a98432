# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv and installs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The API client generator has an environment of its own (it needs pydantic 2; the dev extra pins pydantic 1).
CLIENTGEN := $(VENV)/clientgen
CLIENTGEN_STAMP := $(CLIENTGEN)/.installed-stamp

LOCK_FLAGS := --quiet --generate-hashes --no-strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
	--no-emit-trusted-host

.PHONY: run test lint install migrate bench clean browser-deps lock

# Installs exactly the versions of requirements/dev.lock, each checked against its hash; then the project
# itself without resolving anything (--no-deps). The Dockerfile does the same from requirements/prod.lock.
$(STAMP): pyproject.toml requirements/dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# openapi-python-client, for tests/api/contract/test_generated_client.py: exactly requirements/clientgen.lock.
$(CLIENTGEN_STAMP): requirements/clientgen.lock | $(STAMP)
	test -x $(CLIENTGEN)/bin/python || $(PYTHON) -m venv $(CLIENTGEN)
	$(CLIENTGEN)/bin/python -m pip install --quiet --require-hashes -r requirements/clientgen.lock
	touch $(CLIENTGEN_STAMP)

## make lock: pin every dependency of pyproject.toml, with hashes, into requirements/{prod,dev}.lock.
## Run it after changing a dependency (tests/test_build_files.py fails while a lock is out of step).
## requirements/clientgen.lock pins the client generator of requirements/clientgen.in the same way.
lock: $(STAMP)
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile $(LOCK_FLAGS) --output-file requirements/prod.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile $(LOCK_FLAGS) --extra dev --output-file requirements/dev.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile $(LOCK_FLAGS) --output-file requirements/clientgen.lock requirements/clientgen.in

# A per-machine secret key under var/ (git-ignored) so that manage.py works here without exporting one.
var/secret_key:
	mkdir -p var
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key
	chmod 600 var/secret_key

# The signature HMAC key (21 CFR 11.70), kept out of the database like the secret key: "id:secret", one a line.
# Rotation: append a new line (keep the old ones, so their signatures stay verifiable); the last line signs.
var/signature_keys:
	mkdir -p var
	$(PYTHON) -c 'import datetime, secrets; print(f"local-{datetime.date.today():%Y%m%d}:{secrets.token_urlsafe(48)}")' > var/signature_keys
	chmod 600 var/signature_keys

install: $(STAMP) $(CLIENTGEN_STAMP) var/secret_key var/signature_keys

migrate: install
	$(PY) manage.py migrate --noinput

## make run: migrate, load the protocol, make an admin login, start web + worker + beat (Ctrl-C stops all)
run: install
	bash bin/run

## make test: the whole suite (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set)
# Tests run with DEBUG off (as in production) and a throwaway key unless the environment sets one.
test: install
	SECRET_KEY="$${SECRET_KEY:-test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz}" \
	SECURE_SSL_REDIRECT="$${SECURE_SSL_REDIRECT:-false}" \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## make browser-deps: Debian's Chromium for the dashboard's browser tests (Playwright drives /usr/bin/chromium;
## never `playwright install`, which downloads a browser build). Needs root (or sudo) when Chromium is missing.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then echo "Chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; else \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium fonts-dejavu-core; fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=. $(VENV)/bin/lint-imports

bench: install
	$(PY) bench/enroll_latency.py

clean:
	rm -rf var
