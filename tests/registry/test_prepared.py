"""Prepared statements (registry/prepared.py): prepared once per server session, kept
through rollbacks, prepared again on a new connection, off by configuration."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.selectors import api_token_live_by_prefix
from accounts.services import api_token_create
from certificates.storage import bundle_with_face
from registry.prepared import _positional, execute_prepared
from tests.conftest import requires_postgres
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _statements(call) -> tuple[list[str], object]:
    """The statements `call` sends through Django (its result too); a PREPARE is the
    session's bookkeeping and goes past them."""
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return [query["sql"].split(" ", 1)[0] for query in captured.captured_queries], result


def _prepared_on_server() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def _select_one(value: int) -> int:
    with connection.cursor() as cursor:
        execute_prepared(cursor, "gp_test_plus_one", "SELECT %s::int + 1", [value])
        return cursor.fetchone()[0]


def test_placeholders_become_positional_and_a_literal_percent_is_refused():
    assert _positional("SELECT a FROM t WHERE a = %s AND b < %s") == (
        "SELECT a FROM t WHERE a = $1 AND b < $2"
    )
    with pytest.raises(ValueError, match="no %"):
        _positional("SELECT a FROM t WHERE a LIKE 'x%' AND b = %s")


@requires_postgres
def test_a_statement_is_prepared_once_per_connection_then_executed():
    connection.close()  # a new server session: nothing prepared on it

    connection.ensure_connection()
    assert "gp_test_plus_one" not in _prepared_on_server()

    first, value = _statements(lambda: _select_one(41))
    assert "gp_test_plus_one" in _prepared_on_server()
    second, again = _statements(lambda: _select_one(1))

    assert (first, value) == (["EXECUTE"], 42)
    assert (second, again) == (["EXECUTE"], 2)
    assert "gp_test_plus_one" in connection.prepared_statements


@requires_postgres
def test_a_rollback_keeps_the_statement_prepared_as_recorded():
    connection.close()
    with pytest.raises(RuntimeError), transaction.atomic():
        assert _select_one(1) == 2
        raise RuntimeError("roll back the transaction that prepared it")

    assert "gp_test_plus_one" in _prepared_on_server()
    statements, value = _statements(lambda: _select_one(5))

    assert (statements, value) == (["EXECUTE"], 6)


@requires_postgres
def test_a_new_connection_prepares_again():
    _select_one(1)
    connection.close()
    connection.ensure_connection()

    assert connection.prepared_statements == set() == _prepared_on_server()
    statements, value = _statements(lambda: _select_one(2))
    assert (statements, value) == (["EXECUTE"], 3)
    assert _prepared_on_server() == {"gp_test_plus_one"}


@requires_postgres
def test_one_name_serves_one_text():
    _select_one(1)
    connection.prepared_statements.discard("gp_test_plus_one")  # as on a new session
    with connection.cursor() as cursor, pytest.raises(ValueError, match="another text"):
        execute_prepared(cursor, "gp_test_plus_one", "SELECT %s::int + 2", [1])


@requires_postgres
def test_switched_off_the_plain_statement_is_sent(settings):
    settings.DATABASE_PREPARED_STATEMENTS = False

    statements, value = _statements(lambda: _select_one(7))

    assert (statements, value) == (["SELECT"], 8)


def test_the_hot_reads_answer_the_same_prepared_or_not(settings):
    """The token lookup and the bundle read, run cold, warm and plain."""
    user = UserFactory()
    token, _plaintext = api_token_create(user=user, name="t")
    connection.close()
    found = [api_token_live_by_prefix(token.prefix) for _ in range(2)]
    settings.DATABASE_PREPARED_STATEMENTS = False
    found.append(api_token_live_by_prefix(token.prefix))

    assert [(t.pk, t.user.pk, t.user.username) for t in found] == [
        (token.pk, user.pk, user.username)
    ] * 3
    assert api_token_live_by_prefix("nosuchprefix") is None
    assert bundle_with_face(10**12) is None
