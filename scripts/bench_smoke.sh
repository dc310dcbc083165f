#!/usr/bin/env bash
# Every benchmark in benchmarks/ in --smoke mode (tiny sizes) on PostgreSQL, each in its own
# throw-away database, so a schema or API change that breaks one fails CI.
#
#   scripts/bench_smoke.sh [postgres://user@host:port]   # default postgres://postgres@127.0.0.1:5432
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER=${1:-postgres://postgres@127.0.0.1:5432}
PY=${PY:-.venv/bin/python}
export DJANGO_ENV=development
unset CELERY_BROKER_URL
status=0
for bench in benchmarks/*.py; do
  name=$(basename "$bench" .py)
  grep -q 'add_argument("--smoke"' "$bench" || continue
  db="gridproof_bench_smoke_${name}"
  psql "$SERVER/postgres" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  started=$(date +%s)
  if DATABASE_URL="$SERVER/$db" $PY "$bench" --smoke >"${TMPDIR:-/tmp}/$db.log" 2>&1; then
    echo "ok    $name ($(( $(date +%s) - started )) s)"
  else
    echo "FAIL  $name: last lines of its output:"
    tail -30 "${TMPDIR:-/tmp}/$db.log"
    status=1
  fi
  psql "$SERVER/postgres" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  # federation_bench makes <db>_fed_* databases of its own and drops them itself.
done
exit $status
