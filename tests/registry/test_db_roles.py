"""The application's database role cannot rewrite the ledger (registry/db_roles.py).

PostgreSQL only: SQLite has no roles. Each test makes its own login role, grants it what
`migrate` grants `DATABASE_APP_ROLE`, and drops it again.
"""

import pytest
from django.core.management import call_command
from django.db import connection
from psycopg2 import errors as pg

from registry import db_roles
from tests.conftest import requires_postgres
from tests.registry.roles import connect_as as _connect_as
from tests.registry.roles import running_as

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "statement, refused",
    [
        ("TRUNCATE ledger_ledgerentry", pg.InsufficientPrivilege),
        ("ALTER TABLE ledger_ledgerentry DISABLE TRIGGER ALL", pg.InsufficientPrivilege),
        ("UPDATE ledger_ledgerentry SET leaf_hash = leaf_hash", pg.InsufficientPrivilege),
        ("DELETE FROM ledger_ledgerentry", pg.InsufficientPrivilege),
        ("DROP TABLE ledger_ledgerentry", pg.InsufficientPrivilege),
        (
            "CREATE TRIGGER t BEFORE INSERT ON ledger_ledgerentry EXECUTE FUNCTION now()",
            pg.InsufficientPrivilege,
        ),
    ],
)
def test_the_application_role_cannot_change_or_empty_the_log(app_role, statement, refused):
    # given: the role the web and worker processes run as
    conn = _connect_as(app_role)
    # when / then
    with conn.cursor() as cursor, pytest.raises(refused):
        cursor.execute(statement)
    conn.close()


def test_the_application_role_reads_and_writes_the_domain_tables(app_role):
    # given
    conn = _connect_as(app_role)
    # when: what the services do on an ordinary table
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO django_session VALUES ('k', 'd', now())")
        cursor.execute("UPDATE django_session SET session_data = 'e' WHERE session_key = 'k'")
        cursor.execute("DELETE FROM django_session WHERE session_key = 'k'")
        cursor.execute("SELECT count(*) FROM ledger_ledgerentry")
        # then
        assert cursor.fetchone()[0] >= 0
        with pytest.raises(pg.InsufficientPrivilege):
            cursor.execute("TRUNCATE django_session")
    conn.close()


def test_only_the_owner_is_reported_as_able_to_rewrite_the_log(app_role):
    # given: the tests connect as the owner (a superuser here), the app role does not own
    # when
    owner = db_roles.ledger_rewriters()
    with running_as(app_role):
        application = db_roles.ledger_rewriters()
        summary = db_roles.ledger_protection_summary()
    # then
    assert [str(r) for r in owner] == ["superuser"]
    assert application == []
    assert summary == "protected"
    assert db_roles.ledger_protection_summary().startswith("REWRITABLE")


def test_a_privilege_granted_by_hand_is_reported_and_taken_back_by_the_next_grant(app_role):
    # given: someone grants the application TRUNCATE on the log
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT TRUNCATE ON ledger_ledgerentry TO "{app_role}"')
    # when / then: reported ...
    with running_as(app_role):
        assert [str(r) for r in db_roles.ledger_rewriters()] == ["TRUNCATE on ledger_ledgerentry"]
    # ... and revoked by the grant that every migrate runs
    db_roles.app_role_grant(app_role)
    with running_as(app_role):
        assert db_roles.ledger_rewriters() == []


def test_migrate_grants_the_configured_role(app_role, settings):
    # given: the role has lost everything
    with connection.cursor() as cursor:
        cursor.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{app_role}"')
    settings.DATABASE_APP_ROLE = app_role
    # when: migrate runs as the owner (nothing to migrate; the grant follows all the same)
    call_command("migrate", verbosity=0)
    # then
    conn = _connect_as(app_role)
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_ledgerentry")
        assert cursor.fetchone()[0] >= 0
        with pytest.raises(pg.InsufficientPrivilege):
            cursor.execute("DELETE FROM ledger_ledgerentry")
    conn.close()


def test_verify_ledger_warns_when_the_role_could_rewrite_the_log(capsys):
    # given: the tests run as a superuser
    # when
    call_command("verify_ledger", "--no-progress")
    # then
    err = capsys.readouterr().err
    assert "WARNING: REWRITABLE" in err
    assert "superuser" in err
