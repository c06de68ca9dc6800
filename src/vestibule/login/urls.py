from django.urls import path

from vestibule.login import announcement, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login", views.login_view, name="login"),
    path("login/totp", views.totp_view, name="login-totp"),
    path("logout", views.logout_view, name="logout"),
    path("login/announcement", announcement.login_announcement, name="login-announcement"),
    path("account/totp", views.totp_setup, name="totp-setup"),
    path("password/reset", views.password_reset, name="password-reset"),
    path("password/reset/<str:token>", views.password_reset_confirm, name="password-reset-confirm"),
    path("password/expired", views.password_expired, name="password-expired"),
    path("recovery-access", views.recovery_access, name="recovery-access"),
    path("recovery-access/<str:token>", views.recovery_access_confirm, name="recovery-access-confirm"),
    path("invite/<str:token>", views.invitation_accept, name="invitation-accept"),
    path("api/v1/session", views.session_api, name="session-api"),
]
