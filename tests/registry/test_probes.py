"""Liveness and readiness probes."""

import logging

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from registry import probes


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
    }


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
