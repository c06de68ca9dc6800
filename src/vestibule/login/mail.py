"""Sending the few emails this deployment sends, and the console backend for the embedded mode."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.core.mail import EmailMessage, send_mail
from django.core.mail.backends.base import BaseEmailBackend

log = logging.getLogger("vestibule.mail")


class ConsoleEmailBackend(BaseEmailBackend):
    """Prints each email on stdout (``VESTIBULE_EMAIL_URL=console:``), so the embedded mode needs no mail server.

    Mail, not a log record: the log goes to stderr as JSON (vestibule.conf.logging), where the one-time
    link an email carries would be masked, and must be, since log stores keep lines for months and
    show them to more people. Here the person running the demo reads it as mail.
    """

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        with _console_lock:
            for message in email_messages:
                sys.stdout.write(
                    f"----- email to {', '.join(message.to)}\nSubject: {message.subject}\n\n{message.body}\n-----\n"
                )
            sys.stdout.flush()
        return len(email_messages)


# Emails from concurrent requests are printed one after the other, not interleaved.
_console_lock = threading.Lock()


def product_name() -> str:
    """What end users call this deployment (VESTIBULE_PRODUCT_NAME): in subjects, bodies and pages."""
    return str(getattr(settings, "VESTIBULE_PRODUCT_NAME", "Vestibule"))


def absolute(path: str) -> str:
    return f"{settings.VESTIBULE_BASE_URL}{path}"


def send(to: str, subject: str, body: str) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)


# One sender thread per process for emails whose sending time must not show
# in the response (recovery access: an answer for an eligible address must not
# take an SMTP round trip longer than one for an unknown address).
_sender: ThreadPoolExecutor | None = None
_sender_lock = threading.Lock()
_pending: list[Future[None]] = []


def _send_logged(to: str, subject: str, body: str) -> None:
    try:
        send(to, subject, body)
    except Exception:  # The request has been answered; the log is the only place left.
        log.exception("sending email to %s failed", to)


def send_in_background(to: str, subject: str, body: str) -> None:
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vestibule-mail")
        _pending[:] = [f for f in _pending if not f.done()]
        _pending.append(_sender.submit(_send_logged, to, subject, body))


def wait_for_background_mail(timeout: float = 10.0) -> None:
    """Block until queued emails are sent (tests, and a clean shutdown)."""
    with _sender_lock:
        pending = list(_pending)
    for future in pending:
        future.result(timeout=timeout)
