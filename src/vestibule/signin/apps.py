from django.apps import AppConfig


class SigninConfig(AppConfig):
    """The sign-in runtime: SSO start, ACS and callback, the login pipeline, login traces."""

    name = "vestibule.signin"
    label = "signin"
    default_auto_field = "django.db.models.BigAutoField"
