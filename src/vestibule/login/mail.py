"""Sending the few emails Vestibule sends, and the console backend for the embedded mode."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage, send_mail
from django.core.mail.backends.base import BaseEmailBackend

log = logging.getLogger("vestibule.mail")


class LogEmailBackend(BaseEmailBackend):
    """Writes each email to the log, so the embedded mode needs no mail server."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            log.warning(
                "email to %s\nSubject: %s\n\n%s", ", ".join(message.to), message.subject, message.body
            )
        return len(email_messages)


def absolute(path: str) -> str:
    return f"{settings.VESTIBULE_BASE_URL}{path}"


def send(to: str, subject: str, body: str) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
