"""Database triggers that make tables append-only: UPDATE and DELETE are refused.

PostgreSQL and SQLite get the same rule; both raise an integrity error naming the table.
TRUNCATE (and DROP) need the table owner and are not covered: run the application as a
role that does not own these tables to rule those out as well.

Each app that has such tables defines its `AppendOnlyTables` (its migrations create the
triggers) and registers it in APPEND_ONLY_TABLES from `AppConfig.ready()`, so that code
here (the SQLite `flush`) can lift and restore the triggers without knowing the apps.
"""

from dataclasses import dataclass

from registry.hooks import Hook


@dataclass(frozen=True)
class AppendOnlyTables:
    """The append-only tables of one app, with the SQL that guards them."""

    app: str
    tables: tuple[str, ...]

    @property
    def _function(self) -> str:
        return f"{self.app}_refuse_change"

    def create_sql(self, vendor: str) -> list[str]:
        """Statements creating the triggers on this database vendor."""
        if vendor == "postgresql":
            function = (
                f"CREATE OR REPLACE FUNCTION {self._function}() RETURNS trigger\n"
                "LANGUAGE plpgsql AS $$\nBEGIN\n"
                f"    RAISE EXCEPTION '{self.app} table % is append-only: % refused', "
                "TG_TABLE_NAME, TG_OP\n        USING ERRCODE = 'restrict_violation';\nEND\n$$"
            )
            return [function] + [
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {self._function}()"
                for table in self.tables
            ]
        if vendor == "sqlite":
            return [
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, '{self.app} table {table} is append-only: {op} refused'); "
                "END"
                for table in self.tables
                for op in ("UPDATE", "DELETE")
            ]
        return []

    def drop_sql(self, vendor: str) -> list[str]:
        """Statements removing them again."""
        if vendor == "postgresql":
            return [
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in self.tables
            ] + [f"DROP FUNCTION IF EXISTS {self._function}()"]
        if vendor == "sqlite":
            return [
                f"DROP TRIGGER IF EXISTS {table}_no_{op.lower()}"
                for table in self.tables
                for op in ("UPDATE", "DELETE")
            ]
        return []


APPEND_ONLY_TABLES = Hook("registry.append_only_tables")
"""The `AppendOnlyTables` of every installed app (registered by ledger and federation)."""
