"""PostgreSQL: a device's live issued periods never overlap (exclusion constraint).

SQLite has no exclusion constraints; there the issuance service's check (under the
device's unit-counter lock) and the unique (device, period_start) index stand alone.
"""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE certificates_issuedperiod
    ADD CONSTRAINT cert_period_no_overlap
    EXCLUDE USING gist (device_id WITH =, tstzrange(period_start, period_end, '[)') WITH &&)
    WHERE (withdrawn_at IS NULL);
"""
DROP = "ALTER TABLE certificates_issuedperiod DROP CONSTRAINT IF EXISTS cert_period_no_overlap;"


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("certificates", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
