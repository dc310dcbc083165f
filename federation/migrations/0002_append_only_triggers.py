"""Append-only triggers on mirrored data, cosignatures, witnessed checkpoints and evidence."""

from django.db import migrations

from registry.append_only import AppendOnlyTables

# The tables as of this migration (federation/triggers.py lists today's; 0005 moved the
# mirrored entries into chunks).
TABLES = AppendOnlyTables(
    app="federation",
    tables=(
        "federation_witnessedcheckpoint",
        "federation_evidence",
        "federation_cosignature",
        "federation_mirroredentry",
        "federation_mirrornode",
        "federation_mirrorcheckpoint",
    ),
)


def create_triggers(apps, schema_editor) -> None:
    for statement in TABLES.create_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in TABLES.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("federation", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
