"""Give every person an opaque ``subject`` (the OpenID Provider's ``sub``): add, fill per row, then require."""

import uuid

from django.db import migrations, models


def fill_subjects(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(subject__isnull=True).only("pk"):
        User.objects.filter(pk=user.pk).update(subject=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_password_pinned_and_managed_grants")]

    operations = [
        migrations.AddField(model_name="user", name="subject", field=models.UUIDField(null=True, editable=False)),
        migrations.RunPython(fill_subjects, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="subject",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False),
        ),
    ]
