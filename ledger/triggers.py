"""Database triggers that make the log append-only: UPDATE and DELETE are refused.

PostgreSQL and SQLite get the same rule; both raise an integrity error naming the table.
TRUNCATE (and DROP) need the table owner and are not covered: run the application as a
role that does not own the ledger tables to rule those out as well.
"""

APPEND_ONLY_TABLES = (
    "ledger_ledgerentry",
    "ledger_entrysubject",
    "ledger_treenode",
    "ledger_checkpoint",
)

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def create_sql(vendor: str) -> list[str]:
    """Statements creating the triggers on this database vendor."""
    if vendor == "postgresql":
        return [_PG_FUNCTION] + [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            for table in APPEND_ONLY_TABLES
        ]
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'ledger table {table} is append-only: {op} refused'); END"
            for table in APPEND_ONLY_TABLES
            for op in ("UPDATE", "DELETE")
        ]
    return []


def drop_sql(vendor: str) -> list[str]:
    """Statements removing them again."""
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in APPEND_ONLY_TABLES
        ] + ["DROP FUNCTION IF EXISTS ledger_refuse_change()"]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_{op.lower()}"
            for table in APPEND_ONLY_TABLES
            for op in ("UPDATE", "DELETE")
        ]
    return []
