"""Payments of contract obligations and charging bills: two journal kinds (the kind column
grows to 20 characters) and one payment per obligation or bill (a unique reference).

On SQLite, altering a column rebuilds the table, which drops its triggers: the append-only
triggers are lifted first and created again afterwards (on PostgreSQL this is a no-op
round trip)."""

from django.db import migrations, models

from market.triggers import MARKET_TABLES


def create_triggers(apps, schema_editor) -> None:
    for statement in MARKET_TABLES.create_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in MARKET_TABLES.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("market", "0002_append_only_triggers")]

    operations = [
        migrations.RunPython(drop_triggers, create_triggers),
        migrations.AlterField(
            model_name="journalentry",
            name="kind",
            field=models.CharField(
                choices=[
                    ("deposit", "Deposit"),
                    ("withdrawal", "Withdrawal"),
                    ("reserve", "Reserved for a bid"),
                    ("release", "Released from a bid"),
                    ("trade", "Trade settlement"),
                    ("contract_payment", "Contract payment (settlement obligation)"),
                    ("bill_payment", "Charging bill payment"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="journalentry",
            name="reference",
            field=models.CharField(
                blank=True,
                help_text="External reference (bank transfer) of a deposit; for a payment, "
                "what it pays (`settlement_obligation:<id>`, `charging_bill:<id>`).",
                max_length=200,
            ),
        ),
        migrations.AddConstraint(
            model_name="journalentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind__in", ["contract_payment", "bill_payment"])),
                fields=("kind", "reference"),
                name="market_payment_once",
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
