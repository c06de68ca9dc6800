from django.urls import include, path

from example_site import views

urlpatterns = [
    path("", views.home, name="home"),
    # /oidc/authenticate/ (sign in), /oidc/callback/ (the redirect URI), /oidc/logout/ (POST).
    path("oidc/", include("mozilla_django_oidc.urls")),
]
