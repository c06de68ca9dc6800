"""Contract: the JSON list of grants is gone; MappingRoleGrant rows (0003) hold them.

A separate migration (its own transaction on PostgreSQL) so the column is
dropped only after the rows are written. Reversing re-adds the column
empty, and reversing 0003 then fills it from the rows.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0003_mapping_role_grant_rows"),
    ]

    operations = [
        migrations.RemoveField(model_name="mappingrole", name="grants"),
    ]
