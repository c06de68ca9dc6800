"""The console's URL map, under /console/. Account pages live under a/<slug>/."""

from __future__ import annotations

from django.urls import path

from vestibule.console.views import branding, connections, diagnostics, home, operator, setup_links, sso, users

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
    path("switch", home.switch, name="switch"),
    path("a/<str:slug>/", home.account_overview, name="account"),
    *connections.urlpatterns,
    *users.urlpatterns,
    *sso.urlpatterns,
    *diagnostics.urlpatterns,
    *operator.urlpatterns,
    *setup_links.urlpatterns,
    *branding.urlpatterns,
]
