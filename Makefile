# The two commands of README.md (run, test), and federation-demo. All create .venv and
# install the pinned requirements.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
export DJANGO_ENV ?= development

.PHONY: run test federation-demo lint schema clean

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

## Two federated registries with demo data, peered, on SQLite, no external services:
## A on http://127.0.0.1:$(PORT), B on the next port; Ctrl-C stops both. Data, keys and
## logs in .dev/federation-demo. DEMO_ARGS=--demo-transfer also exports a certificate A -> B.
federation-demo: $(VENV)/.installed
	$(PY) scripts/federation_demo.py --port-a $(PORT) --port-b $$(($(PORT) + 1)) $(DEMO_ARGS)

## Run the whole test suite (SQLite, or DATABASE_URL / CELERY_BROKER_URL when set).
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

## ruff, and the import contracts of .importlinter (docs/architecture.md).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

schema: $(VENV)/.installed
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-shm db.sqlite3-wal .pytest_cache
