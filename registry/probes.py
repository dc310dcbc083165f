"""The /healthz and /readyz endpoints (liveness and readiness probes); the container's probe
command that calls /healthz is registry/healthcheck.py.

/readyz is public, so it says only which dependency is down ("unavailable"); the error
itself (host, port, driver message) goes to the log, for operators.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _broker_ok() -> str | None:
    if not settings.CELERY_BROKER_URL:
        return None
    from registry.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def readyz(request: HttpRequest) -> JsonResponse:
    """The database and (when configured) the Celery broker are reachable."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(v is None for v in checks.values())
    for name, problem in checks.items():
        if problem is not None:
            logger.error("readiness check %s failed: %s", name, problem)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {k: ("ok" if v is None else "unavailable") for k, v in checks.items()},
        "broker": "celery" if settings.CELERY_BROKER_URL else "in-process (eager)",
    }
    return JsonResponse(body, status=200 if ready else 503)
