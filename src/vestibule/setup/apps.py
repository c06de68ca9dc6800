from django.apps import AppConfig


class SetupConfig(AppConfig):
    name = "vestibule.setup"
    label = "setup"
    verbose_name = "Setup links"
