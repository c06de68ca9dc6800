from django.urls import path

from vestibule.signin import sso_admin, views

urlpatterns = [
    path("sso/start/<str:connection_id>", views.sso_start, name="sso-start"),
    path("sso/saml/<str:connection_id>/metadata", views.saml_metadata, name="saml-metadata"),
    path("sso/saml/<str:connection_id>/acs", views.saml_acs, name="saml-acs"),
    path("sso/oidc/<str:connection_id>/callback", views.oidc_callback, name="oidc-callback"),
    path("sso/oidc/<str:connection_id>/connect", views.oidc_connect, name="oidc-connect"),
    path("sso-admin", sso_admin.sso_admin_home, name="sso-admin"),
    path("sso-admin/connections/<str:connection_id>/enabled", sso_admin.set_enabled, name="sso-admin-enabled"),
]
