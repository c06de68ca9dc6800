"""What ends applications' sign-ins: the browser session ending, the person deactivated, the membership gone."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import vestibule.provider.events  # noqa: F401  (connects the webhook receivers)
from vestibule.accounts.models import Membership, User
from vestibule.login.sessions import sessions_ended
from vestibule.provider import authorizations


@receiver(user_logged_out, dispatch_uid="provider.logged_out")
def _logged_out(sender: Any, request: Any, **kwargs: Any) -> None:
    if request is not None and request.session.session_key:
        authorizations.end_for_sessions([request.session.session_key], "logout")


@receiver(sessions_ended, dispatch_uid="provider.sessions_ended")
def _sessions_ended(sender: Any, session_keys: list[str], **kwargs: Any) -> None:
    authorizations.end_for_sessions(session_keys)


@receiver(post_save, sender=User, dispatch_uid="provider.user_saved")
def _user_saved(sender: Any, instance: User, **kwargs: Any) -> None:
    if not instance.is_active:
        authorizations.end_for_user(instance.pk, "person_deactivated")


@receiver(post_save, sender=Membership, dispatch_uid="provider.membership_saved")
def _membership_saved(sender: Any, instance: Membership, **kwargs: Any) -> None:
    if not instance.is_active or instance.approval != Membership.Approval.APPROVED:
        authorizations.end_for_membership(instance.user_id, instance.account_id)


@receiver(post_delete, sender=Membership, dispatch_uid="provider.membership_deleted")
def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    authorizations.end_for_membership(instance.user_id, instance.account_id, "membership_removed")
