"""The IT admin's setup wizard (public: the link, then a cookie bound to the browser that opened it)."""

from __future__ import annotations

from django.urls import URLPattern, path

from vestibule.setup import views

app_name = "setup"

urlpatterns: list[URLPattern] = [
    path("s/<uuid:link_id>/", views.provider, name="provider"),
    path("s/<uuid:link_id>/values", views.values, name="values"),
    path("s/<uuid:link_id>/idp", views.idp, name="idp"),
    path("s/<uuid:link_id>/test", views.test, name="test"),
    path("s/<uuid:link_id>/test/result", views.result, name="result"),
    path("s/<uuid:link_id>/finish", views.finish, name="finish"),
    path("<str:token>", views.open_link, name="open"),
]
