from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "vestibule.connections"
    label = "connections"
    default_auto_field = "django.db.models.BigAutoField"
