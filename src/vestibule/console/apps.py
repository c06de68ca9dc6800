from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "vestibule.console"
    label = "console"
    verbose_name = "Console"
