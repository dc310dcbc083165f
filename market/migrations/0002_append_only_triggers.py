"""Append-only triggers on the journal and the trades."""

from django.db import migrations

from market.triggers import MARKET_TABLES


def create_triggers(apps, schema_editor) -> None:
    for statement in MARKET_TABLES.create_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in MARKET_TABLES.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("market", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
