from django.apps import AppConfig


class LoginConfig(AppConfig):
    name = "vestibule.login"
    label = "login"
    default_auto_field = "django.db.models.BigAutoField"
