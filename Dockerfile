# One image for every GridProof process: web (Granian, WSGI), Celery worker and Celery beat.
# docker-compose.yml runs it; docs/operations.md lists the same commands without Docker.
# The web app's front-end files (npm, pinned by package-lock.json) and compiled
# translations are built in a first stage, so the image carries no Node.js or gettext.
FROM python:3.11-slim AS assets
RUN apt-get update && apt-get install -y --no-install-recommends make nodejs npm gettext \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile package.json package-lock.json ./
COPY web/locale web/locale
RUN make web/static/web/vendor/.installed messages

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Pango and a font with Cyrillic for the PDF statements (WeasyPrint).
RUN apt-get update && apt-get install -y --no-install-recommends \
    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin gridproof

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
COPY --from=assets /src/web/static/web/vendor web/static/web/vendor
COPY --from=assets /src/web/locale web/locale
# Static files are collected into the image (WhiteNoise serves them). Development mode
# only so that the build needs no secrets; it touches no database and no key.
RUN DJANGO_ENV=development python manage.py collectstatic --noinput
# LEDGER_TILES_DIR in docker-compose.yml: a volume mounted here starts with this owner.
RUN mkdir -p /srv/gridproof/tlog && chown gridproof /srv/gridproof/tlog

USER gridproof
EXPOSE 8000
# 0.0.0.0 inside the container's own network namespace; publish the port on a loopback or
# private address only (docker-compose.yml: 127.0.0.1:8000).
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", "--workers", "3", "--blocking-threads", "4", "--no-ws", "--respawn-failed-workers", "--workers-kill-timeout", "8", "--access-log", "registry.wsgi:application"]
