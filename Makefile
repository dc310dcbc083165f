# The two commands of README.md (run, test), and federation-demo. All create .venv and
# install the pinned requirements, the web app's front-end files (npm, pinned by
# package-lock.json, copied into web/static/web/vendor/) and its compiled translations.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
export DJANGO_ENV ?= development
# Links printed by seed_demo and used by the pages follow the port actually served.
export REGISTRY_BASE_URL ?= http://127.0.0.1:$(PORT)

VENDOR := web/static/web/vendor
MO_FILES := $(patsubst %.po,%.mo,$(wildcard */locale/*/LC_MESSAGES/django.po))
# Only root may install Debian packages here; elsewhere the targets say what is missing.
APT_GET := $(if $(filter 0,$(shell id -u)),apt-get,@echo "missing; as root run: apt-get")

.PHONY: run simulate test federation-demo lint schema clean demo-logins browser pdf gettext nodejs messages

$(VENV)/.installed: requirements.txt requirements-dev.txt $(VENDOR)/.installed $(MO_FILES) | pdf
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	mkdir -p .dev && touch .dev/development
	touch $@

## Front-end files, served by the app itself (never a CDN): exact versions and hashes in
## package-lock.json; the copies under web/static/web/vendor/ are generated (git-ignored).
$(VENDOR)/.installed: package.json package-lock.json | nodejs
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart.umd.min.js
	cp node_modules/axe-core/axe.min.js $(VENDOR)/axe.min.js
	for f in node_modules/htmx.org/LICENSE* node_modules/chart.js/LICENSE* node_modules/axe-core/LICENSE*; do \
	  cp $$f $(VENDOR)/$$(basename $$(dirname $$f)).$$(basename $$f); done
	touch $@

## Translations: .po files are the source (in git); .mo files are compiled by GNU gettext.
%.mo: %.po | gettext
	msgfmt --check --output-file=$@ $<

messages: $(MO_FILES)

nodejs:
	@command -v npm >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq nodejs npm; }

gettext:
	@command -v msgfmt >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq gettext; }

## Debian's Chromium and ChromeDriver for the browser tests (tests/web); skipped when present.
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || \
	  { $(APT_GET) update -qq && $(APT_GET) install -y -qq chromium chromium-driver; }

## Pango and a font with Cyrillic for WeasyPrint's PDF statements (registry/pdf.py);
## skipped when present.
PDF_LIBS := libpango-1.0.so.0 libpangoft2-1.0.so.0
PDF_FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
LDCONFIG := $(shell command -v ldconfig || echo /sbin/ldconfig)
pdf:
	@( for lib in $(PDF_LIBS); do $(LDCONFIG) -p | grep -q "$$lib" || exit 1; done; test -f $(PDF_FONT) ) || \
	  { $(APT_GET) update -qq && $(APT_GET) install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; }

## Serve the registry with demo data on SQLite, no external services (http://127.0.0.1:$(PORT)).
run: $(VENV)/.installed
	$(PY) manage.py generate_signing_key --if-missing
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@$(PY) manage.py demo_logins
	DEBUG=1 $(PY) manage.py runregistry 127.0.0.1:$(PORT)

## A simulated energy community trades yesterday's slots over the HTTP API (after `make run`
## has seeded the demo; ARGS="--first-slot 11:00 --slots 8" for part of the day).
simulate: $(VENV)/.installed
	$(PY) manage.py simulate_community $(ARGS)

## Show the demo logins again (`ARGS=--reset` gives the demo users new passwords).
demo-logins: $(VENV)/.installed
	$(PY) manage.py demo_logins $(ARGS)

## Two federated registries with demo data, peered, on SQLite, no external services:
## A on http://127.0.0.1:$(PORT), B on the next port; Ctrl-C stops both. Data, keys and
## logs in .dev/federation-demo. DEMO_ARGS=--demo-transfer also exports a certificate A -> B.
federation-demo: $(VENV)/.installed
	$(PY) scripts/federation_demo.py --port-a $(PORT) --port-b $$(($(PORT) + 1)) $(DEMO_ARGS)

## Run the whole test suite (SQLite, or DATABASE_URL / CELERY_BROKER_URL when set).
test: $(VENV)/.installed browser pdf
	$(PY) -m pytest $(PYTEST_ARGS)

## ruff, and the import contracts of .importlinter (docs/architecture.md).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

schema: $(VENV)/.installed
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-shm db.sqlite3-wal .pytest_cache node_modules $(VENDOR) $(MO_FILES)
