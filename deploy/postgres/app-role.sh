#!/bin/sh
# Creates the role the GridProof processes log in as (POSTGRES_APP_USER, default
# gridproof). The postgres image runs this once, when it initialises an empty data
# directory, as POSTGRES_USER, which owns the database and runs the migrations. The
# application role owns nothing: `migrate`, run with DATABASE_APP_ROLE, grants it what
# the processes need and nothing that could truncate, alter or disable the triggers of
# the ledger's tables (docs/operations.md, "Database roles").
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=role="${POSTGRES_APP_USER:-gridproof}" --set=password="$POSTGRES_APP_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
