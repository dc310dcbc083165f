"""Append-only triggers on entries, subject rows, tree nodes and checkpoints."""

from django.db import migrations

from ledger import triggers


def create_triggers(apps, schema_editor) -> None:
    for statement in triggers.create_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in triggers.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
