from django.urls import path
from oauth2_provider.views.base import RevokeTokenView
from oauth2_provider.views.oidc import UserInfoView

from vestibule.provider import views

app_name = "oauth2_provider"

# django-oauth-toolkit's URL names (its views reverse them), under /oauth/; discovery at the issuer's root.
urlpatterns = [
    path(".well-known/openid-configuration", views.DiscoveryView.as_view(), name="oidc-connect-discovery-info"),
    path("oauth/authorize", views.AuthorizeView.as_view(), name="authorize"),
    path("oauth/token", views.TokenView.as_view(), name="token"),
    path("oauth/userinfo", UserInfoView.as_view(), name="user-info"),
    path("oauth/jwks", views.jwks_view, name="jwks-info"),
    path("oauth/logout", views.LogoutView.as_view(), name="rp-initiated-logout"),
    path("oauth/revoke", RevokeTokenView.as_view(), name="revoke-token"),
]
