"""Append-only triggers on the federation tables that hold signed data or evidence.

The same rule as the ledger's (ledger/triggers.py): UPDATE and DELETE are refused on
PostgreSQL and SQLite alike. Mirrored entries, mirror nodes and checkpoints are copies
of a peer's signed log; cosignatures, witnessed checkpoints and evidence are what this
registry may have to show later, unchanged.
"""

APPEND_ONLY_TABLES = (
    "federation_witnessedcheckpoint",
    "federation_evidence",
    "federation_cosignature",
    "federation_mirroredentry",
    "federation_mirrornode",
    "federation_mirrorcheckpoint",
)

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION federation_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'federation table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def create_sql(vendor: str) -> list[str]:
    """Statements creating the triggers on this database vendor."""
    if vendor == "postgresql":
        return [_PG_FUNCTION] + [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION federation_refuse_change()"
            for table in APPEND_ONLY_TABLES
        ]
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'federation table {table} is append-only: {op} refused'); END"
            for table in APPEND_ONLY_TABLES
            for op in ("UPDATE", "DELETE")
        ]
    return []


def drop_sql(vendor: str) -> list[str]:
    """Statements removing them again."""
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in APPEND_ONLY_TABLES
        ] + ["DROP FUNCTION IF EXISTS federation_refuse_change()"]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_{op.lower()}"
            for table in APPEND_ONLY_TABLES
            for op in ("UPDATE", "DELETE")
        ]
    return []
