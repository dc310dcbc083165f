"""`flush`, able to empty the append-only ledger tables on SQLite too.

Flushing wipes every table, as tests between transactional cases do. PostgreSQL
flushes with TRUNCATE, which the row triggers do not see; SQLite flushes with DELETE,
which they refuse, so here they are lifted for the flush and put back in the same
transaction.
"""

from django.core.management.commands import flush
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ledger import triggers


class Command(flush.Command):
    def handle(self, **options) -> None:
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        if connection.vendor != "sqlite" or not _has_ledger_tables(connection):
            return super().handle(**options)
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                for statement in triggers.drop_sql(connection.vendor):
                    cursor.execute(statement)
            super().handle(**options)
            with connection.cursor() as cursor:
                for statement in triggers.create_sql(connection.vendor):
                    cursor.execute(statement)


def _has_ledger_tables(connection) -> bool:
    return set(triggers.APPEND_ONLY_TABLES) <= set(connection.introspection.table_names())
