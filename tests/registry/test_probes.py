"""Liveness and readiness probes."""

import logging
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from registry import probes
from registry.db_roles import Rewriter


def test_healthz_needs_nothing_but_the_process():
    response = APIClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database(settings):
    settings.CELERY_BROKER_URL = ""
    response = APIClient().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok"},
        "broker": "in-process (eager)",
        # SQLite has no roles; on PostgreSQL the tests run as a superuser, which could
        # (tests/registry/test_db_roles.py runs as a role that cannot)
        "ledger_protection": "rewritable"
        if connection.vendor == "postgresql"
        else "not applicable",
    }


@pytest.mark.django_db
def test_readyz_says_loudly_when_the_application_could_rewrite_the_log(
    settings, monkeypatch, caplog
):
    # given: the role the application runs as could truncate the log
    settings.CELERY_BROKER_URL = ""
    monkeypatch.setattr(
        probes, "connection", SimpleNamespace(vendor="postgresql", cursor=connection.cursor)
    )
    monkeypatch.setattr(
        probes, "ledger_rewriters", lambda: [Rewriter(table="ledger_ledgerentry", how="TRUNCATE")]
    )
    monkeypatch.setattr(
        probes, "ledger_protection_summary", lambda: "REWRITABLE: TRUNCATE on ledger_ledgerentry"
    )
    # when
    with caplog.at_level(logging.WARNING, logger="registry.probes"):
        response = APIClient().get("/readyz")
    # then: still ready, but the answer and the log say so
    assert response.status_code == 200
    assert response.json()["ledger_protection"] == "rewritable"
    assert "REWRITABLE: TRUNCATE on ledger_ledgerentry" in caplog.text
    assert "TRUNCATE" not in response.content.decode()


class _BrokenConnection:
    def cursor(self):
        raise OperationalError("could not connect to server: Connection refused")


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_down(settings, monkeypatch, caplog):
    settings.CELERY_BROKER_URL = ""
    monkeypatch.setattr(probes, "connection", _BrokenConnection())

    with caplog.at_level(logging.ERROR, logger="registry.probes"):
        response = APIClient().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    # the public answer names the check, not the host, port or driver message ...
    assert body["checks"] == {"database": "unavailable", "broker": "ok"}
    assert "Connection refused" not in response.content.decode()
    # ... which the operators find in the log
    assert "OperationalError: could not connect to server: Connection refused" in caplog.text


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_down(settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    class Refusing:
        def __enter__(self):
            raise ConnectionRefusedError("broker down")

        def __exit__(self, *exc):
            return False

    from registry.celery import app

    monkeypatch.setattr(app, "connection_for_write", lambda: Refusing())

    response = APIClient().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "unavailable"}
