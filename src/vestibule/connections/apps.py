from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "vestibule.connections"
    label = "connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vestibule.connections import checks  # noqa: F401  (registers the system checks)
