"""The ledger's append-only tables (see registry/append_only.py for the rule)."""

from registry.append_only import AppendOnlyTables

LEDGER_TABLES = AppendOnlyTables(
    app="ledger",
    tables=(
        "ledger_ledgerentry",
        "ledger_entrysubject",
        "ledger_treenode",
        "ledger_checkpoint",
    ),
)
INDEX_TABLES = AppendOnlyTables(
    app="ledger_index",
    tables=(
        "ledger_subjectindexrecord",
        "ledger_subjectindexnode",
        "ledger_subjectindexcommit",
    ),
)
"""The subject map's tables (ledger/index.py): versioned, so never updated either."""
APPEND_ONLY_TABLES = LEDGER_TABLES.tables + INDEX_TABLES.tables
create_sql = LEDGER_TABLES.create_sql
drop_sql = LEDGER_TABLES.drop_sql
