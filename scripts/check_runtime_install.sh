#!/usr/bin/env bash
# The production image installs requirements.txt and nothing else. This installs exactly
# that into a fresh venv, starts a Celery worker against Redis, runs seed_demo (which sends
# tasks through the broker) and asks the worker to answer, so a runtime dependency that only
# the dev requirements happened to bring in (kombu's Redis transport needs `packaging`)
# fails here instead of in production.
#
#   scripts/check_runtime_install.sh [REDIS_URL]     # default redis://127.0.0.1:6379/14
set -euo pipefail
cd "$(dirname "$0")/.."
BROKER=${1:-redis://127.0.0.1:6379/14}
WORK=$(mktemp -d)
WORKER_PID=""
cleanup() {
  if [ -n "$WORKER_PID" ]; then kill "$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet -r requirements.txt

export DJANGO_ENV=development CELERY_BROKER_URL="$BROKER" SQLITE_PATH="$WORK/db.sqlite3"
export REGISTRY_SIGNING_KEY_FILE="$WORK/signing.key"
unset DATABASE_URL
PY="$WORK/venv/bin/python"
$PY manage.py migrate --noinput -v0
"$WORK/venv/bin/celery" -A registry worker --pool=solo --loglevel=WARNING \
  >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
$PY manage.py seed_demo >/dev/null
for _ in $(seq 1 30); do
  if "$WORK/venv/bin/celery" -A registry inspect ping --timeout 2 >/dev/null 2>&1; then
    echo "runtime install: requirements.txt alone runs seed_demo and a Celery worker on Redis"
    exit 0
  fi
  kill -0 "$WORKER_PID" 2>/dev/null || break
  sleep 1
done
echo "the worker installed from requirements.txt alone did not answer:" >&2
cat "$WORK/worker.log" >&2
exit 1
