from django.db import migrations, models


def mark_managed_grants(apps, schema_editor):
    # Until now a grant counted as SSO-managed whenever its connection had SSO
    # authorization on at the time of asking. Grants in force under such a
    # connection keep that standing; those of connections with it off (a
    # roles claim applied leniently, the default role) stay editable.
    RoleGrant = apps.get_model("accounts", "RoleGrant")
    RoleGrant.objects.filter(source="sso", connection__sso_authorization=True).update(managed=True)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_identity_ownership"),
        ("connections", "0002_share_offers"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="password_pinned_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="rolegrant",
            name="managed",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_managed_grants, migrations.RunPython.noop),
    ]
