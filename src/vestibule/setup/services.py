"""Setup links: issue, find, bind to a browser, configure the IdP side of ONE connection, finish, revoke.

What a link may change is deliberately narrow: the IdP half of its own
connection's protocol settings (SAML: entity ID, SSO URL and binding,
certificates from the metadata, and the metadata URL to follow; OIDC:
issuer, client ID and secret). Enabling, domains, provisioning, roles and
claim mapping stay with the account's sso-admins in the console. Every write
goes through :mod:`vestibule.connections.rules`, as the admin API's do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from vestibule.accounts.models import Account, User
from vestibule.audit.events import client_ip, record
from vestibule.connections import metadata_refresh, rules
from vestibule.connections.keys import read_secrets
from vestibule.connections.metadata_refresh import MetadataFetchError
from vestibule.connections.models import Connection
from vestibule.connections.rules import ConnectionRuleError
from vestibule.login import mail, ratelimit
from vestibule.oidc import OidcClientConfig, OidcRelyingParty
from vestibule.oidc.errors import OidcConfigError
from vestibule.protocol_errors import ProtocolError
from vestibule.setup.models import SetupLink
from vestibule.signin import adapters

__all__ = [
    "BROWSER_COOKIE",
    "LIFETIMES",
    "SetupError",
    "TooManyGuesses",
    "TOKEN_GUESSES_PER_IP",
    "configure_oidc",
    "create",
    "finish",
    "find",
    "import_saml_metadata",
    "open_link",
    "providers_for",
    "revoke",
]

PREFIX = "vsu"
BROWSER_COOKIE = "vestibule_setup"
#: Choices of the console's form, in hours: 1 hour to 7 days, 72 hours by default.
LIFETIMES = (1, 4, 24, 72, 168)
DEFAULT_LIFETIME = 72
#: Token look-ups that find nothing, per client address: the secret is 256 bits, this only keeps scanners off the database.
TOKEN_GUESSES_PER_IP = ratelimit.Limit("setup-token-ip", attempts=30, window_seconds=15 * 60)
_TOKEN = re.compile(r"vsu_([0-9a-f]{12})_([A-Za-z0-9_-]{20,64})")
MAX_METADATA_BYTES = metadata_refresh.MAX_METADATA_BYTES

SAML_PROVIDERS = (
    SetupLink.Provider.OKTA,
    SetupLink.Provider.ENTRA,
    SetupLink.Provider.GOOGLE,
    SetupLink.Provider.ADFS,
    SetupLink.Provider.ONELOGIN,
    SetupLink.Provider.KEYCLOAK,
    SetupLink.Provider.SAML,
)
OIDC_PROVIDERS = (
    SetupLink.Provider.OKTA,
    SetupLink.Provider.ENTRA,
    SetupLink.Provider.GOOGLE,
    SetupLink.Provider.ONELOGIN,
    SetupLink.Provider.KEYCLOAK,
    SetupLink.Provider.OIDC,
)


class SetupError(Exception):
    """A refusal tied to a form field, in words for the person at the form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def providers_for(connection: Connection) -> tuple[str, ...]:
    return tuple(
        str(p) for p in (SAML_PROVIDERS if connection.protocol == Connection.Protocol.SAML else OIDC_PROVIDERS)
    )


# ---- Lifecycle


def create(
    account: Account, connection: Connection, provider: str, hours: int, *, created_by: User | None, label: str
) -> tuple[SetupLink, str]:
    """A new link for ``connection`` (of ``account``); returns it and the token, which is never stored."""
    if connection.account_id != account.pk:
        raise SetupError("connection", "Pick one of this account's connections.")
    if provider not in providers_for(connection):
        raise SetupError(
            "provider",
            f"{SetupLink.Provider(provider).label} cannot be set up for a {connection.protocol.upper()} connection.",
        )
    if hours not in LIFETIMES:
        raise SetupError("hours", "Pick how long the link stays valid: between 1 hour and 7 days.")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    link = SetupLink.objects.create(
        account=account,
        connection=connection,
        provider=provider,
        prefix=prefix,
        digest=_digest(secret),
        created_by=created_by,
        created_by_label=label[:300],
        expires_at=timezone.now() + timedelta(hours=hours),
    )
    return link, f"{PREFIX}_{prefix}_{secret}"


class TooManyGuesses(Exception):
    """This client address presented too many tokens that name no link; it is refused for the window."""


def find(request: HttpRequest, token: str) -> SetupLink | None:
    """The link a token names (whatever its state), or None; raises :class:`TooManyGuesses`."""
    subject = client_ip(request) or "unknown"
    if ratelimit.count(TOKEN_GUESSES_PER_IP, subject) >= TOKEN_GUESSES_PER_IP.attempts:
        raise TooManyGuesses
    match = _TOKEN.fullmatch(token) if len(token) <= 100 else None
    link = (
        SetupLink.objects.select_related("account", "connection").filter(prefix=match.group(1)).first()
        if match
        else None
    )
    if link is None or match is None or not hmac.compare_digest(link.digest, _digest(match.group(2))):
        ratelimit.hit(TOKEN_GUESSES_PER_IP, subject)
        return None
    return link


def open_link(link: SetupLink, browser: str | None) -> tuple[bool, str | None]:
    """Bind a live link to the browser opening it first.

    Returns (allowed, new cookie value or None). A browser already holding
    the bound cookie is let in again; any other browser is refused, so a URL
    leaked after the IT admin opened it is useless.
    """
    if link.browser_digest:
        return bound(link, browser), None
    value = secrets.token_urlsafe(32)
    now = timezone.now()
    # Compare-and-set: two browsers opening the link at once, one wins.
    won = SetupLink.objects.filter(pk=link.pk, browser_digest="").update(browser_digest=_digest(value), opened_at=now)
    if won != 1:
        return False, None
    link.browser_digest, link.opened_at = _digest(value), now
    record(
        "setup_link.opened", account=link.account, connection=link.connection, link=link.prefix, provider=link.provider
    )
    return True, value


def bound(link: SetupLink, browser: str | None) -> bool:
    return (
        bool(link.browser_digest) and bool(browser) and hmac.compare_digest(link.browser_digest, _digest(browser or ""))
    )


def revoke(link: SetupLink, actor: dict[str, Any]) -> bool:
    changed = SetupLink.objects.filter(pk=link.pk, revoked_at__isnull=True, finished_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if changed:
        record("setup_link.revoked", account=link.account, connection=link.connection, **actor, link=link.prefix)
    return bool(changed)


def finish(link: SetupLink) -> bool:
    """Spend the link; the account's sso-admins review and enable the connection in the console."""
    now = timezone.now()
    changed = SetupLink.objects.filter(
        pk=link.pk, revoked_at__isnull=True, finished_at__isnull=True, expires_at__gt=now
    ).update(finished_at=now)
    if not changed:
        return False
    link.finished_at = now
    record(
        "setup_link.finished",
        account=link.account,
        connection=link.connection,
        link=link.prefix,
        provider=link.provider,
        tested=bool(link.last_test),
        test_outcome=link.last_test.get("outcome", "") if link.last_test else "",
    )
    _tell_creator(link)
    return True


def _tell_creator(link: SetupLink) -> None:
    creator = link.created_by
    if creator is None or not creator.is_active:
        return
    url = mail.absolute(reverse("console:connections", args=[link.account.slug]))
    body = (
        f"The setup link {link.prefix} for the connection {link.connection.name} of {link.account.name} was finished.\n\n"
        f"The connection is still disabled. Review its settings and enable it: {url}\n"
    )
    mail.send_in_background(creator.email, f"Setup of {link.connection.name} finished", body)


# ---- Configuring the connection's IdP side


def import_saml_metadata(link: SetupLink, *, xml: bytes | None, url: str | None) -> dict[str, Any]:
    """Generate the connection's IdP settings from metadata (pasted, or read from ``url`` by the guarded client)."""
    connection = link.connection
    _require_disabled(connection, "metadata_url" if url else "metadata_xml")
    if connection.protocol != Connection.Protocol.SAML:
        raise SetupError("metadata", "This connection uses OpenID Connect; enter the issuer and client instead.")
    if url:
        try:
            url = rules.validate_metadata_url(url, "metadata_url")
        except ConnectionRuleError as exc:
            raise SetupError("metadata_url", _sentence(exc.detail)) from None
        try:
            xml = metadata_refresh.fetch(adapters.http_client(), url)
        except MetadataFetchError as exc:
            raise SetupError("metadata_url", f"The metadata URL gave no usable metadata ({exc.summary}).") from None
    if not xml or not xml.strip():
        raise SetupError("metadata_xml", "Paste the metadata XML, or give its URL.")
    if len(xml) > MAX_METADATA_BYTES:
        raise SetupError("metadata_xml", f"The metadata is larger than {MAX_METADATA_BYTES // 1024} KiB.")
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        try:
            settings = rules.import_idp_metadata(locked, xml, save=True)
            if url:
                # Followed from now on: certificate rollovers arrive without anyone pasting again.
                rules.configure_metadata_source(locked, {"idp_metadata_url": url})
        except ConnectionRuleError as exc:
            raise SetupError("metadata_url" if url else "metadata_xml", _sentence(exc.detail)) from None
        _configured(link)
    link.connection = locked
    record(
        "connection.idp_metadata_imported",
        account=link.account,
        connection=locked,
        via="setup_link",
        link=link.prefix,
        idp_entity_id=settings.get("idp_entity_id", ""),
    )
    return settings


def configure_oidc(link: SetupLink, *, issuer: str, client_id: str, client_secret: str) -> None:
    """Store the provider's issuer and client, once discovery at the issuer works (through the guarded client)."""
    connection = link.connection
    _require_disabled(connection, "issuer")
    if connection.protocol != Connection.Protocol.OIDC:
        raise SetupError("issuer", "This connection uses SAML; give the identity provider's metadata instead.")
    doc = {**connection.oidc_settings, "issuer": issuer.strip(), "client_id": client_id.strip()}
    if not client_secret and not read_secrets(connection).get("client_secret"):
        raise SetupError("client_secret", "Enter the client secret your provider shows for this application.")
    try:
        config = OidcClientConfig.from_dict({**doc, **({"client_secret": client_secret} if client_secret else {})})
    except OidcConfigError as exc:
        field = exc.field if exc.field in ("issuer", "client_id", "client_secret") else "issuer"
        raise SetupError(field, _sentence(f"{exc.field}: {getattr(exc, 'description', str(exc))}")) from None
    try:
        OidcRelyingParty(config, adapters.http_client(), adapters.DjangoCache(), time.time).metadata()
    except ProtocolError as exc:
        raise SetupError("issuer", _sentence(f"discovery at the issuer failed: {exc.description}")) from None
    changes: dict[str, Any] = {"issuer": doc["issuer"], "client_id": doc["client_id"]}
    if client_secret:
        changes["client_secret"] = client_secret
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        try:
            rules.update_connection(locked, {"oidc": changes})
        except ConnectionRuleError as exc:
            raise SetupError("issuer", _sentence(exc.detail)) from None
        _configured(link)
    link.connection = locked
    record(
        "connection.updated", account=link.account, connection=locked, via="setup_link", link=link.prefix,
        fields=["oidc.issuer", "oidc.client_id", *(["oidc.client_secret"] if client_secret else [])],
    )  # fmt: skip


def _require_disabled(connection: Connection, field: str) -> None:
    """A link never changes a connection people sign in through: a leaked one would swap in another provider."""
    if Connection.objects.filter(pk=connection.pk, enabled=True).exists():
        raise SetupError(
            field,
            "This connection is already switched on, so it can no longer be changed through a setup link. "
            "Ask the person who sent you the link to change it in the console.",
        )


def _configured(link: SetupLink) -> None:
    now = timezone.now()
    SetupLink.objects.filter(pk=link.pk).update(configured_at=now)
    link.configured_at = now


def _sentence(text: str) -> str:
    text = str(text).strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else "This value is not accepted."
