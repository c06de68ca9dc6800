"""IdP certificate lifecycle (issue 15): metadata URL sources, their change log, expiry notices."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0005_domain_verification"),
    ]

    operations = [
        migrations.CreateModel(
            name="IdpMetadataSource",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("url", models.CharField(max_length=2000)),
                ("refresh_seconds", models.PositiveIntegerField(blank=True, null=True)),
                ("next_fetch_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("last_fetched_at", models.DateTimeField(blank=True, null=True)),
                ("last_success_at", models.DateTimeField(blank=True, null=True)),
                ("consecutive_failures", models.PositiveIntegerField(default=0)),
                ("last_error", models.CharField(blank=True, max_length=300)),
                (
                    "connection",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="idp_metadata_source",
                        to="connections.connection",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="CertificateNotice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("fingerprint", models.CharField(max_length=95)),
                ("threshold", models.CharField(max_length=10)),
                ("not_after", models.DateTimeField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="certificate_notices",
                        to="connections.connection",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("connection", "fingerprint", "threshold"), name="certificate_threshold_once"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="MetadataChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("adopted", "Adopted"),
                            ("pending", "Pending"),
                            ("confirmed", "Confirmed"),
                            ("discarded", "Discarded"),
                            ("superseded", "Superseded"),
                        ],
                        max_length=10,
                    ),
                ),
                ("url", models.CharField(max_length=2000)),
                ("trigger", models.CharField(max_length=20)),
                ("triggered_by", models.CharField(blank=True, max_length=300)),
                ("before", models.JSONField(default=dict)),
                ("after", models.JSONField(default=dict)),
                ("proposed", models.JSONField(default=dict)),
                ("added_certificates", models.JSONField(default=list)),
                ("removed_certificates", models.JSONField(default=list)),
                ("changed_fields", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("decided_by", models.CharField(blank=True, max_length=300)),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="metadata_changes",
                        to="connections.connection",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["connection", "status"], name="metadata_change_status")],
            },
        ),
    ]
