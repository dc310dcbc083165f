"""The PostgreSQL backend's health-check skip: a connection killed under it costs one 503.

Requests go through Django's WSGI handler (the test client switches off the
request-boundary connection handling this is about), on committed data.
"""

import json
import logging

import psycopg2
import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test.client import RequestFactory

from accounts.services import api_token_create
from registry.postgresql import base
from tests.conftest import requires_postgres
from tests.factories import UserFactory

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def _terminate(pid: int) -> None:
    """pg_terminate_backend from another connection, as an operator or a restart would."""
    db = connection.settings_dict
    other = psycopg2.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
    )
    other.autocommit = True
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone() == (True,)
    finally:
        other.close()


@pytest.fixture
def read():
    """GET a path through the WSGI handler: (status, body as JSON)."""
    handler = get_wsgi_application()

    def get(path: str, token: str | None = None) -> tuple[int, dict]:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        environ = RequestFactory(SERVER_NAME="localhost", **headers).get(path).environ
        statuses: list[str] = []
        response = handler(environ, lambda status, *_: statuses.append(status))
        body = b"".join(response)
        response.close()  # as a WSGI server does: Django's end-of-request handling
        return int(statuses[0].split()[0]), json.loads(body)

    return get


@pytest.mark.parametrize("with_token", [False, True])
def test_a_connection_killed_within_the_skip_window_costs_one_503(
    read, monkeypatch, caplog, with_token
):
    # given a connection that just answered a request (the skip window made long, so the
    # next request surely skips the check), and a token if the read carries one
    monkeypatch.setattr(base, "HEALTH_CHECK_SKIP_SECONDS", 3600)
    token = api_token_create(user=UserFactory(), name="t")[1] if with_token else None
    path = "/api/v1/bundles/999999/"
    assert read(path, token)[0] == 404  # the database answered: no such bundle
    killed = connection.connection.get_backend_pid()
    # when its backend is terminated and requests follow
    _terminate(killed)
    with caplog.at_level(logging.CRITICAL):
        first = read(path, token)
    second = read(path, token)
    # then the first answers the documented 503, and the next one runs on a new connection
    assert first[0] == 503 and first[1]["code"] == "database_unavailable"
    assert second[0] == 404
    assert connection.connection.get_backend_pid() != killed


def test_without_the_skip_the_health_check_replaces_a_dead_connection(read, monkeypatch):
    # given a connection that answered a request, and no skip window
    monkeypatch.setattr(base, "HEALTH_CHECK_SKIP_SECONDS", 0)
    path = "/api/v1/bundles/999999/"
    assert read(path)[0] == 404
    killed = connection.connection.get_backend_pid()
    # when its backend is terminated
    _terminate(killed)
    # then the next request's health check notices and reconnects: no 503 at all
    assert read(path)[0] == 404
    assert connection.connection.get_backend_pid() != killed


def test_the_check_is_skipped_only_right_after_a_request_that_used_the_connection(
    read, monkeypatch
):
    # given the skip window, and every SQL statement recorded
    monkeypatch.setattr(base, "HEALTH_CHECK_SKIP_SECONDS", 3600)
    statements: list[str] = []
    original = base.DatabaseWrapper.is_usable

    def is_usable(self):
        statements.append("SELECT 1")
        return original(self)

    monkeypatch.setattr(base.DatabaseWrapper, "is_usable", is_usable)
    path = "/api/v1/bundles/999999/"
    read(path)
    statements.clear()
    # when the connection's last use is forgotten (as if it had been idle), then a request
    connection.last_healthy_at = None
    read(path)
    checked_after_idle = len(statements)
    # and when another request follows at once
    read(path)
    # then the idle connection was checked, the fresh one was not
    assert checked_after_idle == 1
    assert len(statements) == 1
