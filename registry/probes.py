"""The /healthz and /readyz endpoints (liveness and readiness probes); the container's probe
command that calls /healthz is registry/healthcheck.py.

/readyz is public, so it says only which dependency is down ("unavailable"); the error
itself (host, port, driver message) goes to the log, for operators.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from registry.db_roles import ledger_protection_summary, ledger_rewriters

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


def _ledger_protection() -> str:
    """'protected', 'not applicable', or 'rewritable' (the role could rewrite the log)."""
    if connection.vendor != "postgresql":
        return "not applicable"
    try:
        rewriters = ledger_rewriters()
    except Exception as exc:  # the database check reports the outage itself
        logger.error("readiness: ledger protection not checked: %s: %s", type(exc).__name__, exc)
        return "unknown"
    if rewriters:
        logger.warning("readiness: %s", ledger_protection_summary())
        return "rewritable"
    return "protected"


def readyz(request: HttpRequest) -> JsonResponse:
    """The database and (when configured) the Celery broker are reachable.

    It also says whether the database role the application runs as could rewrite the
    ledger (`ledger_protection`); "rewritable" does not make the registry unready, it is a
    warning to the operator, with the details in the log.
    """
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(v is None for v in checks.values())
    for name, problem in checks.items():
        if problem is not None:
            logger.error("readiness check %s failed: %s", name, problem)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {k: ("ok" if v is None else "unavailable") for k, v in checks.items()},
        "broker": "celery" if settings.CELERY_BROKER_URL else "in-process (eager)",
        "ledger_protection": _ledger_protection() if checks["database"] is None else "unknown",
    }
    return JsonResponse(body, status=200 if ready else 503)
