from django.apps import AppConfig


class PeopleConfig(AppConfig):
    """People administration: adding, inviting, approving and removing members."""

    name = "vestibule.people"
    label = "people"
    default_auto_field = "django.db.models.BigAutoField"
