from django.urls import path

from vestibule.testidp import views

# Always routed; every view answers 404 unless settings.VESTIBULE_TEST_IDP is on,
# so the switch can be flipped (and tested) without reloading the URLconf.
urlpatterns = [
    path("test-idp/metadata", views.metadata, name="testidp-metadata"),
    path("test-idp/sso", views.sso, name="testidp-sso"),
    path("test-idp/login", views.idp_initiated, name="testidp-login"),
]
