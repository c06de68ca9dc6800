# ApiKey moved to ``authority`` (same table): forget it here, in state only.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_key_roles"),
        ("audit", "0002_apikey_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="ApiKey")]),
    ]
