from django.apps import AppConfig


class TestIdpConfig(AppConfig):
    name = "vestibule.testidp"
    label = "testidp"
    verbose_name = "Vestibule test identity provider"
