# The two commands of README.md. Both create .venv and install the pinned requirements.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
export DJANGO_ENV ?= development

.PHONY: run test lint schema clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## Serve the registry with demo data on SQLite, no external services (http://127.0.0.1:$(PORT)).
run: $(VENV)/.installed
	$(PY) manage.py generate_signing_key --if-missing
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	DEBUG=1 $(PY) manage.py runregistry 127.0.0.1:$(PORT)

## Run the whole test suite (SQLite, or DATABASE_URL / CELERY_BROKER_URL when set).
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

schema: $(VENV)/.installed
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-shm db.sqlite3-wal .pytest_cache
