"""`flush`, able to empty the append-only tables on SQLite too.

Flushing wipes every table, as tests between transactional cases do. PostgreSQL
flushes with TRUNCATE, which the row triggers do not see; SQLite flushes with DELETE,
which they refuse, so here they are lifted for the flush and put back in the same
transaction. The tables are those the apps registered in APPEND_ONLY_TABLES.
"""

from django.core.management.commands import flush
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from registry.append_only import APPEND_ONLY_TABLES


class Command(flush.Command):
    def handle(self, **options) -> None:
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        existing = set(connection.introspection.table_names())
        guarded = [group for group in APPEND_ONLY_TABLES if set(group.tables) <= existing]
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                for group in guarded:
                    for statement in group.drop_sql(connection.vendor):
                        cursor.execute(statement)
            super().handle(**options)
            with connection.cursor() as cursor:
                for group in guarded:
                    for statement in group.create_sql(connection.vendor):
                        cursor.execute(statement)
