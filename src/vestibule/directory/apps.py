from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    """SCIM 2.0 service provider per account: tokens, Users and Groups, provisioning and deprovisioning."""

    name = "vestibule.directory"
    label = "directory"
    default_auto_field = "django.db.models.BigAutoField"
