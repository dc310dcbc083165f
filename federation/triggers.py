"""Append-only federation tables: copies of peers' signed logs, cosignatures and evidence.

Mirrored entries, mirror nodes and checkpoints are copies of a peer's signed log;
cosignatures, witnessed checkpoints and evidence are what this registry may have to show
later, unchanged. The rule is registry/append_only.py's, as for the ledger.
"""

from registry.append_only import AppendOnlyTables

FEDERATION_TABLES = AppendOnlyTables(
    app="federation",
    tables=(
        "federation_witnessedcheckpoint",
        "federation_evidence",
        "federation_cosignature",
        "federation_mirroredchunk",
        "federation_mirrornode",
        "federation_mirrorcheckpoint",
    ),
)
APPEND_ONLY_TABLES = FEDERATION_TABLES.tables
create_sql = FEDERATION_TABLES.create_sql
drop_sql = FEDERATION_TABLES.drop_sql
