from django.urls import path

from vestibule.connections import views

urlpatterns = [
    path("sso/start/<str:connection_id>", views.sso_start, name="sso-start"),
]
