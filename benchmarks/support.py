"""Shared set-up for the benchmarks: run as `python benchmarks/<topic>.py`.

Importing this puts the repository on sys.path and selects the development settings,
so each benchmark can then import Django and the project.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_ENV", "development")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")


def ensure_database(why: str = "this benchmark measures PostgreSQL") -> dict:
    """Create the PostgreSQL database named by DATABASE_URL if missing; return its config."""
    import dj_database_url
    import psycopg2

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(f"Set DATABASE_URL=postgres://... ({why}).")
    cfg = dj_database_url.parse(url)
    conn = psycopg2.connect(
        dbname="postgres",
        user=cfg["USER"] or None,
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()
    return cfg


def recreate_database(cfg: dict) -> None:
    """Drop and create the PostgreSQL database of a Django database config (benchmarks that
    count the rows they made start from nothing)."""
    import psycopg2

    conn = psycopg2.connect(
        dbname="postgres",
        user=cfg["USER"] or None,
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}"')
        cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()


SMOKE_HELP = "tiny sizes, a few seconds: checks that the benchmark still runs (CI), not speed"


def apply_smoke(args, **tiny) -> None:
    """With --smoke, replace the sizes in `args` by the tiny ones given."""
    if getattr(args, "smoke", False):
        for name, value in tiny.items():
            setattr(args, name, value)
        print(f"smoke run ({', '.join(f'{k}={v}' for k, v in tiny.items())}): figures mean nothing")


def dsn(cfg: dict) -> str:
    """A psycopg2 connection string for the raw baselines, from a Django database config."""
    parts = {
        "dbname": cfg["NAME"],
        "user": cfg["USER"],
        "password": cfg["PASSWORD"],
        "host": cfg["HOST"],
        "port": cfg["PORT"],
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def setup_django() -> None:
    """django.setup(); without CELERY_BROKER_URL the ledger's on-commit kick is switched off.

    Without a broker the kick integrates inline; in production it only sets a Redis flag
    (and now and then enqueues the integrator task). Give a CELERY_BROKER_URL to pay that
    round trip per commit, as production does.
    """
    import django

    django.setup()
    if not os.environ.get("CELERY_BROKER_URL"):
        import ledger.services

        ledger.services.kick = lambda: None
