"""registry.deferred_writes: a queued write runs before the next statement, in order,
inside the savepoint it was queued in, and never after an exception."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from registry.deferred_writes import deferred_writes, execute_or_defer

pytestmark = pytest.mark.django_db


@pytest.fixture
def table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE gp_deferred (id integer PRIMARY KEY, v text)")
        cursor.execute("INSERT INTO gp_deferred VALUES (1, 'a'), (2, 'b')")
    yield "gp_deferred"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE gp_deferred")


def _value(pk: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT v FROM gp_deferred WHERE id = %s", [pk])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _update(pk: int, value: str) -> None:
    execute_or_defer("UPDATE gp_deferred SET v = %s WHERE id = %s", [value, pk])


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite executes at once (no round trips)"
)


@postgres_only
def test_a_queued_write_travels_with_the_next_statement_which_sees_it(table):
    with transaction.atomic(), deferred_writes(), CaptureQueriesContext(connection) as queries:
        _update(1, "x")
        _update(2, "it's 100% 'quoted'")
        assert len(queries) == 0  # nothing sent yet
        assert _value(1) == "x"
        assert _value(2) == "it's 100% 'quoted'"
    # The two UPDATEs went with the first SELECT: two statements sent, not four.
    assert len(queries) == 2
    assert queries[0]["sql"].count("UPDATE gp_deferred") == 2


@postgres_only
def test_what_is_left_is_sent_when_the_block_ends(table):
    with transaction.atomic():
        with deferred_writes():
            _update(1, "end")
        assert _value(1) == "end"


@postgres_only
def test_executemany_sends_the_queue_first(table):
    with transaction.atomic(), deferred_writes():
        _update(1, "first")
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE gp_deferred SET v = v || %s WHERE id = %s", [("+", 1), ("+", 2)]
            )
        assert (_value(1), _value(2)) == ("first+", "b+")


@postgres_only
def test_an_exception_in_the_block_drops_the_queue_and_the_transaction(table):
    with pytest.raises(RuntimeError), transaction.atomic(), deferred_writes():
        _update(1, "never")
        raise RuntimeError
    assert _value(1) == "a"


@postgres_only
def test_a_write_queued_before_a_savepoint_survives_its_rollback(table):
    with transaction.atomic(), deferred_writes():
        _update(1, "kept")
        try:
            with transaction.atomic():  # SAVEPOINT carries the queued UPDATE before it
                _update(2, "undone")
                raise ValueError
        except ValueError:
            pass
        assert (_value(1), _value(2)) == ("kept", "b")


@postgres_only
def test_a_failing_queued_write_raises_from_the_statement_it_travelled_with(table):
    with pytest.raises(IntegrityError), transaction.atomic(), deferred_writes():
        execute_or_defer("INSERT INTO gp_deferred VALUES (%s, %s)", [1, "duplicate"])
        _value(2)
    assert _value(1) == "a"


def test_outside_a_block_or_on_sqlite_a_write_runs_at_once(table):
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        _update(1, "now")
        assert len(queries) == 1
    assert _value(1) == "now"
    if connection.vendor != "postgresql":
        with transaction.atomic(), deferred_writes(), CaptureQueriesContext(connection) as q:
            _update(2, "now too")
            assert len(q) == 1
