from django.apps import AppConfig


class ProviderConfig(AppConfig):
    """Vestibule's OpenID Provider: applications, their sign-ins, tokens, signing keys, logout and events."""

    name = "vestibule.provider"
    label = "provider"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the receivers that end applications' sign-ins (Django's documented pattern).
        from vestibule.provider import signals  # noqa: F401
