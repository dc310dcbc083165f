"""Two PostgreSQL roles: the owner that migrates, and the application that cannot rewrite history.

The append-only triggers (`registry.append_only`) refuse UPDATE and DELETE on the ledger's
tables, but a table's owner can still `TRUNCATE` it, or `ALTER TABLE … DISABLE TRIGGER` and
then update it. So the application must not own the tables: migrations run as an owner
role, and the web, worker and beat processes as a role that was granted only what they use.

`DATABASE_APP_ROLE` names that role. When it is set, every `migrate` (run as the owner)
grants it, after the last migration:

- `SELECT, INSERT, UPDATE, DELETE` on every table and the use of every sequence — never
  `TRUNCATE`, `REFERENCES` or `TRIGGER`, and never ownership, so it cannot alter a table or
  disable its triggers;
- on the append-only tables only `SELECT, INSERT`: the triggers refuse the rest anyway, and
  without the privilege the refusal does not depend on the triggers being there.

`ledger_rewriters()` says, for the role a connection runs as, what would let it rewrite the
log (superuser, owner of an append-only table, `TRUNCATE`, `UPDATE` or `DELETE` on one);
`/readyz` and `verify_ledger` report it, so a deployment that runs the application as the
owner is told so loudly.
"""

import logging
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import connections

from registry.append_only import APPEND_ONLY_TABLES

logger = logging.getLogger(__name__)

REWRITE_PRIVILEGES = ("TRUNCATE", "UPDATE", "DELETE", "TRIGGER")


def append_only_tables() -> list[str]:
    """Every installed app's append-only tables."""
    return sorted(table for group in APPEND_ONLY_TABLES for table in group.tables)


def _quote(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def app_role_grant(role: str, *, using: str = "default") -> list[str]:
    """Grant `role` what the application needs, and no more, on every table; the statements run.

    Run as the owner (normally by `migrate`, see `grant_after_migrate`). Idempotent: it
    revokes everything from the role first, so a privilege granted by hand is taken back.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    who = _quote(connection, role)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [row[0] for row in cursor.fetchall()]
    protected = set(append_only_tables())
    statements = [
        f"GRANT USAGE ON SCHEMA {_quote(connection, 'public')} TO {who}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}",
    ]
    for table in tables:
        privileges = "SELECT, INSERT" if table in protected else "SELECT, INSERT, UPDATE, DELETE"
        statements.append(f"GRANT {privileges} ON {_quote(connection, table)} TO {who}")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return statements


def grant_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """`post_migrate` receiver: grant `DATABASE_APP_ROLE` once per `migrate` (the last app)."""
    role = getattr(settings, "DATABASE_APP_ROLE", "")
    if not role:
        return
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if sender.label != with_models[-1].label:  # once, after the last app's migrations
        return
    statements = app_role_grant(role, using=using)
    if statements:
        logger.info("granted the application role %s its privileges on %s", role, using)


@dataclass(frozen=True)
class Rewriter:
    """Something that lets the connected role rewrite the log."""

    table: str
    how: str  # "superuser", "owner", or a privilege such as "TRUNCATE"

    def __str__(self) -> str:
        return self.how if self.how == "superuser" else f"{self.how} on {self.table}"


def ledger_rewriters(*, using: str = "default") -> list[Rewriter]:
    """What lets this connection's role change or empty the append-only tables ([] = nothing).

    On SQLite there are no roles (whoever can write the file can rewrite it): [].
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    tables = append_only_tables()
    found: list[Rewriter] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        if row and row[0]:
            return [Rewriter(table="", how="superuser")]
        # one statement for every table and privilege (/readyz runs this on each probe)
        checks = ", ".join(
            f"has_table_privilege(current_user, quote_ident(tablename), '{privilege}')"
            for privilege in REWRITE_PRIVILEGES
        )
        cursor.execute(
            f"SELECT tablename, tableowner = current_user, {checks} FROM pg_tables "  # noqa: S608 - constants only
            "WHERE schemaname = current_schema() AND tablename = ANY(%s) ORDER BY 1",
            [tables],
        )
        for table, owned, *granted in cursor.fetchall():
            if owned:
                found.append(Rewriter(table=table, how="owner"))
                continue
            found.extend(
                Rewriter(table=table, how=privilege)
                for privilege, has in zip(REWRITE_PRIVILEGES, granted, strict=True)
                if has
            )
    return found


def ledger_protection_summary(*, using: str = "default") -> str:
    """'protected', 'not applicable (sqlite)', or 'REWRITABLE: …' for logs and commands."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return f"not applicable ({connection.vendor}: no database roles)"
    rewriters = ledger_rewriters(using=using)
    if not rewriters:
        return "protected"
    shown = ", ".join(str(r) for r in rewriters[:5])
    more = f" and {len(rewriters) - 5} more" if len(rewriters) > 5 else ""
    return (
        "REWRITABLE: the application's database role can change or empty the ledger "
        f"({shown}{more}); run it as a role that does not own the tables (docs/operations.md)"
    )
