"""Django authentication backend: password users only.

SSO users, pending users and disabled users never authenticate by password,
whatever hash may linger. The check runs argon2 even for unknown emails, so
timing does not reveal which addresses exist.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest

from vestibule.accounts.models import User
from vestibule.domain.emails import InvalidEmail, email_key

_DUMMY_HASH: str | None = None


def _burn_time(password: str) -> None:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = make_password("vestibule-timing-equalizer")
    from django.contrib.auth.hashers import check_password

    check_password(password, _DUMMY_HASH)


class PasswordBackend(BaseBackend):
    def authenticate(
        self, request: HttpRequest | None, email: str | None = None, password: str | None = None, **kw: Any
    ) -> User | None:
        if not email or not password:
            return None
        try:
            user = User.objects.get(email_key=email_key(email))
        except (User.DoesNotExist, InvalidEmail):
            _burn_time(password)
            return None
        if not user.check_password(password):
            return None
        if not self.user_can_authenticate(user):
            return None
        return user

    @staticmethod
    def user_can_authenticate(user: User) -> bool:
        # Approval and deactivation per account are membership matters: they
        # take the account out of the session, not the person out of Vestibule.
        return user.is_active and user.login_method == User.LoginMethod.PASSWORD

    def get_user(self, user_id: Any) -> User | None:
        user = User.objects.filter(pk=user_id, is_active=True).first()
        return user
