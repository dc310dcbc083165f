"""Start deriving at the log's current head: a registry that installs notifications does not
notify its whole history (old transfers long accepted, batches long reviewed)."""

from django.db import migrations


def cursor_at_head(apps, schema_editor):
    tree_head = apps.get_model("ledger", "TreeHead")
    cursor = apps.get_model("notifications", "DerivationCursor")
    size = tree_head.objects.filter(pk=1).values_list("size", flat=True).first() or 0
    cursor.objects.get_or_create(pk=1, defaults={"next_seq": size})


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0002_append_only_triggers"),
        ("notifications", "0001_initial"),
    ]

    operations = [migrations.RunPython(cursor_at_head, migrations.RunPython.noop)]
