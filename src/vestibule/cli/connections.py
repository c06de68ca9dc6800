"""``vestibule connection ...``: list, create, enable/disable, IdP metadata (import, URL, refresh), certificates, SP keys.

The rules live in ``connections.rules`` (the API uses the
same functions); this module only parses arguments, prints, and turns a
rule error into one line on stderr with exit status 1. The CLI runs with
database access, so it acts as the operator (it may claim domains), and
every change is audited with ``via=cli``.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from vestibule.cli import common
from vestibule.cli.common import CliError, _actions, _help

MAX_METADATA_BYTES = 2 * 1024 * 1024

_CREATE_HELP = """\
Create a SAML connection for an account. It starts disabled: import the IdP
metadata (--metadata FILE now, or `vestibule connection import-metadata` later),
then `vestibule connection enable ID`. Prints the connection ID, then the SP
values to give the identity provider (entity ID, ACS URL, metadata URL).
Claiming a domain for the account happens here too; a domain claimed by
another account is refused."""


def _fail(message: str) -> int:
    print(f"vestibule: {message}", file=sys.stderr)
    return 1


def _run(fn: Any, args: argparse.Namespace) -> int:
    # Django first: the rules import models, which need configured settings.
    common._setup()
    from vestibule.connections.rules import ConnectionRuleError

    try:
        return int(fn(args) or 0)
    except ConnectionRuleError as exc:
        where = f" ({exc.field})" if exc.field else ""
        return _fail(f"{exc.detail}{where}")
    except CliError as exc:
        return _fail(str(exc))


def _account(slug: str) -> Any:
    from vestibule.accounts.models import Account

    account = Account.objects.filter(slug=slug).first()
    if account is None:
        raise CliError(f"no account with slug '{slug}'")
    return account


def _connection(connection_id: str) -> Any:
    from vestibule.connections.models import Connection

    try:
        pk = uuid.UUID(connection_id)
    except ValueError:
        raise CliError(f"'{connection_id}' is not a connection ID (a UUID; see `vestibule connection list`)") from None
    connection = Connection.objects.select_related("account").filter(pk=pk).first()
    if connection is None:
        raise CliError(f"no connection {connection_id}")
    return connection


def _read_metadata(path: str) -> bytes:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_METADATA_BYTES:
            raise CliError(f"{path}: larger than {MAX_METADATA_BYTES // 1024} KiB; is this IdP metadata?")
        return file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _audit(code: str, connection: Any, **detail: Any) -> None:
    from vestibule.audit.events import record

    record(code, account=connection.account, connection=connection, via="cli", **detail)


def cmd_list(args: argparse.Namespace) -> int:
    from vestibule.connections.models import Connection

    account = _account(args.account)
    connections = list(Connection.objects.for_account(account).order_by("created_at"))
    if not connections:
        print(f"account '{account.slug}' has no connections", file=sys.stderr)
        return 0
    print(f"{'ID':36}  {'PROTOCOL':8}  {'ENABLED':7}  {'NAME':30}  DOMAINS")
    for c in connections:
        print(
            f"{c.pk!s:36}  {c.protocol:8}  {'yes' if c.enabled else 'no':7}  {c.name[:30]:30}  {', '.join(c.domain_list)}"
        )
    return 0


def cmd_create_saml(args: argparse.Namespace) -> int:
    from django.db import transaction

    from vestibule.connections import rules
    from vestibule.signin import adapters

    account = _account(args.account)
    metadata = _read_metadata(args.metadata) if args.metadata else None
    data = {
        "protocol": "saml", "name": args.name, "domains": args.domain,
        "auto_provision": args.auto_provision, "provisioned_users_can_login": args.allow_login,
    }  # fmt: skip
    with transaction.atomic():
        connection = rules.create_connection(account, data, may_claim=True)
        if metadata is not None:
            rules.import_idp_metadata(connection, metadata)
    _audit("connection.created", connection, protocol="saml", domains=connection.domain_list)
    urls = adapters.sp_urls(connection)
    print(connection.pk)
    print(f"  SP entity ID:  {urls['sp_entity_id']}", file=sys.stderr)
    print(f"  ACS URL:       {urls['acs_url']}", file=sys.stderr)
    print(f"  SP metadata:   {urls['metadata_url']}", file=sys.stderr)
    next_step = (
        f"vestibule connection enable {connection.pk}"
        if metadata
        else f"vestibule connection import-metadata {connection.pk} FILE"
    )
    print(f"  Created disabled. Next: {next_step}", file=sys.stderr)
    return 0


_CREATE_OIDC_HELP = """\
Create an OpenID Connect connection for an account. It starts disabled.
Register the printed redirect URI at the provider, then `vestibule connection
enable ID`. The client secret is read from a file or standard input, never
from the command line (where other local users could read it in the process
list); it is stored sealed and never shown again."""


def _read_secret(args: argparse.Namespace) -> str | None:
    if args.client_secret_file == "-":
        secret = sys.stdin.readline().rstrip("\r\n")
    elif args.client_secret_file:
        try:
            secret = Path(args.client_secret_file).read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read {args.client_secret_file}: {exc.strerror}") from None
    else:
        return None
    if not secret:
        raise CliError("the client secret is empty")
    return secret


def cmd_create_oidc(args: argparse.Namespace) -> int:
    from vestibule.connections import rules
    from vestibule.signin import adapters

    account = _account(args.account)
    oidc: dict[str, Any] = {
        "issuer": args.issuer,
        "client_id": args.client_id,
        "token_endpoint_auth_method": args.auth_method,
    }
    secret = _read_secret(args)
    if secret is not None:
        oidc["client_secret"] = secret
    if args.scope:
        oidc["scopes"] = ["openid", *[s for s in args.scope if s != "openid"]]
    if args.userinfo:
        oidc["use_userinfo"] = True
    data = {
        "protocol": "oidc", "name": args.name, "domains": args.domain, "oidc": oidc,
        "auto_provision": args.auto_provision, "provisioned_users_can_login": args.allow_login,
    }  # fmt: skip
    connection = rules.create_connection(account, data, may_claim=True)
    _audit("connection.created", connection, protocol="oidc", domains=connection.domain_list)
    print(connection.pk)
    print(f"  Redirect URI:  {adapters.redirect_uri(connection)}", file=sys.stderr)
    print(
        f"  Created disabled. Register the redirect URI at the provider, then: vestibule connection enable {connection.pk}",
        file=sys.stderr,
    )
    return 0


def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    from vestibule.connections import rules

    connection = _connection(args.id)
    rules.update_connection(connection, {"enabled": enabled})
    _audit("connection.updated", connection, fields=["enabled"], enabled=enabled)
    print(
        f"connection {connection.pk} ({connection.account.slug}/{connection.name}) is {'enabled' if enabled else 'disabled'}"
    )
    return 0


def cmd_import_metadata(args: argparse.Namespace) -> int:
    from vestibule.connections import rules

    connection = _connection(args.id)
    settings = rules.import_idp_metadata(connection, _read_metadata(args.file), entity_id=args.entity_id)
    _audit("connection.idp_metadata_imported", connection, idp_entity_id=settings["idp_entity_id"])
    print(f"imported IdP {settings['idp_entity_id']}: SSO {settings['sso_url']} ({settings['sso_binding']}), "
          f"{len(settings['certificates'])} signing certificate(s)")  # fmt: skip
    return 0


_SP_KEYS_HELP = """\
Show or rotate a SAML connection's own (SP) keys: the signing key for
AuthnRequests and the encryption key identity providers encrypt assertions
to. Without an action, shows the certificates: current, next (staged) and
previous (in its grace period), by SHA-256 fingerprint and expiry.

A rotation takes three steps, each audited:

1. --stage generates a next signing and encryption key pair. Both
certificates appear in the SP metadata at once (beside the current ones),
and assertions encrypted to the next certificate already decrypt. Let the
identity provider re-read the metadata (or send its admin the new
certificates).

2. --promote makes the next pair current: AuthnRequests are signed with the
new key from now on. The replaced encryption key becomes "previous": it
still decrypts (and stays listed in the metadata) so an identity provider
that has not switched yet keeps working.

3. --retire destroys the previous key once every identity provider encrypts
to the new certificate (right after --promote if the old key is
compromised).

--discard drops a staged pair without using it. A new rotation can be
staged once the previous key is retired."""


def _print_sp_keys(status: dict[str, Any]) -> None:
    rows = []
    for stage in ("current", "next", "previous"):
        for use in ("signing", "encryption"):
            info = (status.get(stage) or {}).get(use)
            if info:
                rows.append((stage, use, info["sha256_fingerprint"], info["not_after"][:10]))
    print(f"{'KEY':8}  {'USE':10}  {'NOT AFTER':10}  SHA-256 FINGERPRINT")
    for stage, use, fingerprint, not_after in rows:
        print(f"{stage:8}  {use:10}  {not_after:10}  {fingerprint}")


def _sp_keys_next_step(connection: Any, status: dict[str, Any]) -> str:
    if status.get("next"):
        return (f"once the IdP has read the metadata (or has the new certificates): "
                f"vestibule connection sp-keys {connection.pk} --promote")  # fmt: skip
    if status.get("previous"):
        return f"once the IdP encrypts to the new certificate: vestibule connection sp-keys {connection.pk} --retire"
    return f"to rotate: vestibule connection sp-keys {connection.pk} --stage"


def cmd_sp_keys(args: argparse.Namespace) -> int:
    from vestibule.connections.keys import SpKeyError, read_secrets, rotate_sp_keys, sp_key_status
    from vestibule.signin import adapters

    connection = _connection(args.id)
    if connection.protocol != "saml":
        raise CliError(f"connection {connection.pk} is an OIDC connection; SP keys belong to SAML connections")
    action = args.sp_key_action
    if action is None:
        status = sp_key_status(read_secrets(connection))
    else:
        try:
            status = rotate_sp_keys(connection, action)
        except SpKeyError as exc:
            raise CliError(exc.detail) from None
        fingerprints = {
            f"{stage}_{use}": info["sha256_fingerprint"]
            for stage in ("current", "next", "previous")
            for use, info in (status.get(stage) or {}).items()
            if isinstance(info, dict)
        }
        event = {"stage": "staged", "promote": "promoted", "retire": "retired", "discard": "discarded"}[action]
        _audit(f"connection.sp_keys_{event}", connection, **fingerprints)
    if args.json:
        print(json.dumps({**status, "metadata_url": adapters.sp_urls(connection)["metadata_url"]}, indent=2))
    else:
        _print_sp_keys(status)
        if action is not None:
            print(f"  SP keys {action}d; SP metadata: {adapters.sp_urls(connection)['metadata_url']}", file=sys.stderr)
    print(f"  Next: {_sp_keys_next_step(connection, status)}", file=sys.stderr)
    return 0


_METADATA_URL_HELP = """\
Set (or --remove) the URL a SAML connection re-reads its identity provider's
metadata from: https, or plain http to a host in VESTIBULE_OUTBOUND_ALLOW.
Every serve worker refreshes due URLs (every 12 hours unless --interval), and
`vestibule connection refresh-metadata ID` reads it now. A fetched change that
keeps at least one trusted signing certificate (a rollover) is adopted; one
that would drop every trusted certificate is held until an sso-admin confirms
it (`vestibule connection confirm-metadata`)."""


def cmd_metadata_url(args: argparse.Namespace) -> int:
    from django.db import transaction

    from vestibule.connections import rules

    connection = _connection(args.id)
    if args.remove == bool(args.url):
        raise CliError("give the URL, or --remove")
    changes: dict[str, Any] = {"idp_metadata_url": None if args.remove else args.url}
    if args.interval is not None:
        changes["idp_metadata_refresh_interval"] = args.interval
    with transaction.atomic():
        rules.configure_metadata_source(connection, changes)
        _audit("connection.updated", connection, fields=sorted(changes), **changes)
    source = rules.metadata_source_out(connection)
    if source is None:
        print(f"connection {connection.pk} has no IdP metadata URL")
    else:
        print(f"connection {connection.pk} reads {source['url']} every {source['refresh_interval']} s")
        print(f"  Next: vestibule connection refresh-metadata {connection.pk}", file=sys.stderr)
    return 0


def _print_change(change: Any) -> None:
    added = ", ".join(change.added_certificates) or "none"
    removed = ", ".join(change.removed_certificates) or "none"
    print(f"change {change.pk}: {change.status} ({', '.join(change.changed_fields)})")
    print(f"  certificates added:   {added}")
    print(f"  certificates removed: {removed}")


def cmd_refresh_metadata(args: argparse.Namespace) -> int:
    from vestibule.connections.metadata_refresh import MetadataFetchError
    from vestibule.signin import idp_lifecycle

    if args.due:
        if args.id:
            raise CliError("give a connection ID or --due, not both")
        passed = idp_lifecycle.run_once()
        for connection_id, outcome in sorted(passed.refreshed.items()):
            print(f"{connection_id}  {outcome}")
        for connection_id, fingerprint, threshold in passed.announced:
            print(f"{connection_id}  certificate {fingerprint}: {threshold} announced")
        return 0
    if not args.id:
        raise CliError("give a connection ID, or --due for every due metadata URL")
    connection = _connection(args.id)
    if connection.protocol != "saml":
        raise CliError(f"connection {connection.pk} is an OIDC connection; IdP metadata applies to SAML connections")
    try:
        result = idp_lifecycle.refresh(connection, trigger="cli", actor={})
    except MetadataFetchError as exc:
        raise CliError(f"the IdP metadata URL gave no usable metadata: {exc.summary}") from None
    print(result.outcome)
    if result.change is not None:
        _print_change(result.change)
    if result.outcome == "pending" and result.change is not None:
        print(
            f"  It drops every trusted signing certificate, so it was not adopted. If the IdP really replaced its "
            f"keys: vestibule connection confirm-metadata {connection.pk} {result.change.pk}",
            file=sys.stderr,
        )
    return 0


def cmd_metadata_changes(args: argparse.Namespace) -> int:
    from vestibule.connections.metadata_refresh import change_out

    connection = _connection(args.id)
    changes = [change_out(c) for c in connection.metadata_changes.order_by("-pk")[:200]]
    if args.json:
        print(json.dumps(changes, indent=2))
        return 0
    if not changes:
        print(f"connection {connection.pk} has no IdP metadata changes", file=sys.stderr)
    for change in changes:
        print(f"{change['id']:>6}  {change['status']:10}  {change['created_at'][:19]}  {change['trigger']:8}  "
              f"{', '.join(change['changed_fields'])}")  # fmt: skip
    return 0


def cmd_confirm_metadata(args: argparse.Namespace) -> int:
    from django.db import transaction
    from django.utils import timezone

    from vestibule.connections import metadata_refresh

    connection = _connection(args.id)
    decide = metadata_refresh.discard if args.discard else metadata_refresh.confirm
    with transaction.atomic():
        change = decide(connection, args.change_id, decided_by="cli", now=timezone.now())
        event = "connection.idp_metadata_discarded" if args.discard else "connection.idp_metadata_confirmed"
        _audit(event, connection, change_id=change.pk, added_certificates=change.added_certificates,
               removed_certificates=change.removed_certificates)  # fmt: skip
    _print_change(change)
    return 0


def cmd_check_certificates(args: argparse.Namespace) -> int:
    from django.utils import timezone

    from vestibule.connections.certificates import connection_certificates
    from vestibule.connections.models import Connection
    from vestibule.signin import idp_lifecycle

    now = timezone.now()
    connections = Connection.objects.filter(protocol="saml").select_related("account").order_by("created_at")
    if args.account:
        connections = connections.filter(account=_account(args.account))
    rows = []
    for connection in connections:
        announced = {i.fingerprint for i in idp_lifecycle.announce_expiry(connection, now)}
        for info in connection_certificates(connection, now):
            rows.append((connection, info, info.fingerprint in announced))
    if args.json:
        print(json.dumps([
            {"connection": str(c.pk), "account": c.account.slug, **info.to_dict(), "announced_now": new}
            for c, info, new in rows
        ], indent=2))  # fmt: skip
        return 0
    print(f"{'CONNECTION':36}  {'STATUS':8}  {'NOT AFTER':10}  {'DAYS':>5}  SHA-256 FINGERPRINT")
    for connection, info, new in rows:
        print(f"{connection.pk!s:36}  {info.status:8}  {info.not_after.date().isoformat():10}  {info.days_left:>5}  "
              f"{info.fingerprint}{'  (announced now)' if new else ''}")  # fmt: skip
    if any(info.status != "ok" for _, info, _ in rows):
        print(
            "  Next: add the IdP's new certificate (or refresh its metadata), then remove the old one", file=sys.stderr
        )
    return 0


def register(sub: Any) -> None:
    conn = _actions(
        sub, "connection", "manage SSO connections (SAML and OIDC)",
        "List and set up an account's SSO connections. IDs are the UUIDs shown by `list`.",
        example="vestibule connection list --account acme",
    )  # fmt: skip

    p = _help(
        conn, "list", "list an account's connections",
        "List an account's connections: ID, protocol, enabled, name, domains.",
        example="vestibule connection list --account acme",
        next_step="vestibule connection enable ID   (or disable, import-metadata)",
    )  # fmt: skip
    p.add_argument("--account", metavar="SLUG", required=True, help="the account's slug")
    p.set_defaults(func=lambda a: _run(cmd_list, a))

    p = _help(
        conn, "create-saml", "create a SAML connection (starts disabled)", _CREATE_HELP,
        example="vestibule connection create-saml --account acme --name Okta --domain acme.com --metadata okta.xml",
        next_step="vestibule connection enable ID   (without --metadata: vestibule connection import-metadata ID FILE)",
    )  # fmt: skip
    p.add_argument("--account", metavar="SLUG", required=True, help="the account's slug")
    p.add_argument("--name", metavar="N", required=True, help="a name people see when choosing a provider, e.g. 'Okta'")
    p.add_argument(
        "--domain",
        metavar="D",
        action="append",
        required=True,
        help="an email domain this connection serves (repeat for several)",
    )
    p.add_argument("--metadata", metavar="FILE", help="the IdP's SAML metadata XML, to fill in the IdP settings now")
    p.add_argument("--auto-provision", action="store_true", help="create unknown users at their first SSO login")
    p.add_argument(
        "--allow-login",
        action="store_true",
        help="auto-provisioned users may sign in at once (else they wait for approval)",
    )
    p.set_defaults(func=lambda a: _run(cmd_create_saml, a))

    p = _help(
        conn, "create-oidc", "create an OpenID Connect connection (starts disabled)", _CREATE_OIDC_HELP,
        example=(
            "vestibule connection create-oidc --account acme --name Entra --domain acme.com \\\n"
            "      --issuer https://login.microsoftonline.com/TENANT/v2.0 --client-id ID --client-secret-file - < secret.txt"
        ),
        next_step="register the printed redirect URI at the provider, then: vestibule connection enable ID",
    )  # fmt: skip
    p.add_argument("--account", metavar="SLUG", required=True, help="the account's slug")
    p.add_argument(
        "--name", metavar="N", required=True, help="a name people see when choosing a provider, e.g. 'Entra ID'"
    )
    p.add_argument(
        "--domain",
        metavar="D",
        action="append",
        required=True,
        help="an email domain this connection serves (repeat for several)",
    )
    p.add_argument(
        "--issuer",
        required=True,
        help="the provider's issuer URL (discovery at ISSUER/.well-known/openid-configuration)",
    )
    p.add_argument("--client-id", required=True, help="the client ID registered at the provider")
    p.add_argument(
        "--client-secret-file", metavar="FILE", help="file holding the client secret, or - to read one line from stdin"
    )
    p.add_argument(
        "--auth-method",
        default="client_secret_basic",
        choices=["client_secret_basic", "client_secret_post", "private_key_jwt"],
        help="token endpoint client authentication (default client_secret_basic)",
    )
    p.add_argument("--scope", action="append", help="extra scope to request (repeat); openid is always requested")
    p.add_argument("--userinfo", action="store_true", help="merge the userinfo endpoint's claims into the ID token's")
    p.add_argument("--auto-provision", action="store_true", help="create unknown users at their first SSO login")
    p.add_argument(
        "--allow-login",
        action="store_true",
        help="auto-provisioned users may sign in at once (else they wait for approval)",
    )
    p.set_defaults(func=lambda a: _run(cmd_create_oidc, a))

    p = _help(
        conn, "enable", "enable a connection",
        "Enable a connection: its domains route to the IdP at /login. Needs complete IdP settings "
        "(a SAML connection: imported metadata).",
        example="vestibule connection enable 3f2b...   (the ID from `vestibule connection list`)",
        next_step="open VESTIBULE_BASE_URL/login and type an address of one of its domains",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the connection ID (see `vestibule connection list`)")
    p.set_defaults(func=lambda a: _run(lambda args: _set_enabled(args, True), a))

    p = _help(
        conn, "disable", "disable a connection",
        "Disable a connection: new SSO logins through it stop and its domains get the password step; "
        "nobody is removed, and enabling it again restores SSO.",
        example="vestibule connection disable 3f2b...",
        next_step="vestibule connection enable ID   (when the provider is fixed)",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the connection ID (see `vestibule connection list`)")
    p.set_defaults(func=lambda a: _run(lambda args: _set_enabled(args, False), a))

    p = _help(
        conn, "import-metadata", "set a SAML connection's IdP settings from IdP metadata XML",
        "Read the IdP's metadata (Okta, Entra ID, Google Workspace, ADFS, or an EntitiesDescriptor "
        "with --entity-id) and store the generated SAML settings; the connection's own policy choices are kept.",
        example="vestibule connection import-metadata 3f2b... idp-metadata.xml",
        next_step="vestibule connection enable ID",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the connection ID")
    p.add_argument("file", metavar="FILE", help="the metadata XML file")
    p.add_argument("--entity-id", metavar="ENTITY_ID", help="which IdP of an aggregate (EntitiesDescriptor) to use")
    p.set_defaults(func=lambda a: _run(cmd_import_metadata, a))

    p = _help(
        conn, "sp-keys", "show or rotate a SAML connection's SP signing and encryption keys", _SP_KEYS_HELP,
        example="vestibule connection sp-keys 3f2b... --stage",
        next_step="vestibule connection sp-keys ID --promote   (after the IdP has the new certificates), then --retire",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the SAML connection's ID (see `vestibule connection list`)")
    step = p.add_mutually_exclusive_group()
    step.add_argument(
        "--stage",
        dest="sp_key_action",
        action="store_const",
        const="stage",
        help="generate a next key pair: published in the SP metadata, already accepted for decryption",
    )
    step.add_argument(
        "--promote",
        dest="sp_key_action",
        action="store_const",
        const="promote",
        help="make the staged pair current; the replaced encryption key stays accepted until --retire",
    )
    step.add_argument(
        "--retire",
        dest="sp_key_action",
        action="store_const",
        const="retire",
        help="destroy the previous encryption key (ends the grace period after --promote)",
    )
    step.add_argument(
        "--discard",
        dest="sp_key_action",
        action="store_const",
        const="discard",
        help="drop a staged pair without using it",
    )
    p.add_argument(
        "--json", action="store_true", help="print the API's JSON shape (GET /api/v1/connections/ID/sp-keys)"
    )
    p.set_defaults(func=lambda a: _run(cmd_sp_keys, a), sp_key_action=None)

    p = _help(
        conn, "metadata-url", "set or remove a SAML connection's IdP metadata URL (refreshed periodically)",
        _METADATA_URL_HELP,
        example="vestibule connection metadata-url 3f2b... https://idp.example.com/metadata --interval 21600",
        next_step="vestibule connection refresh-metadata ID",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the SAML connection's ID")
    p.add_argument("url", metavar="URL", nargs="?", help="the IdP's metadata URL")
    p.add_argument("--remove", action="store_true", help="stop refreshing from a URL (the change log stays)")
    p.add_argument(
        "--interval", type=int, metavar="SECONDS", help="seconds between reads (900 to 604800; default 43200)"
    )
    p.set_defaults(func=lambda a: _run(cmd_metadata_url, a))

    p = _help(
        conn, "refresh-metadata", "read a SAML connection's IdP metadata URL now",
        "Read the connection's IdP metadata URL now through the guarded outbound client and apply it: "
        "unchanged, adopted (at least one trusted signing certificate kept), or pending (it would drop every "
        "trusted certificate; an sso-admin confirms it). --due runs the serve workers' pass once instead: every "
        "due metadata URL, and the certificate expiry announcements (for deployments that prefer cron).",
        example="vestibule connection refresh-metadata 3f2b...",
        next_step="vestibule connection metadata-changes ID",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", nargs="?", help="the SAML connection's ID")
    p.add_argument("--due", action="store_true", help="refresh every due metadata URL and announce expiries")
    p.set_defaults(func=lambda a: _run(cmd_refresh_metadata, a))

    p = _help(
        conn, "metadata-changes", "show a SAML connection's IdP metadata change log",
        "List the changes fetched from the connection's IdP metadata URL, newest first: adopted, pending "
        "(waiting for confirmation), confirmed, discarded or superseded.",
        example="vestibule connection metadata-changes 3f2b...",
        next_step="vestibule connection confirm-metadata ID CHANGE_ID   (or --discard)",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the SAML connection's ID")
    p.add_argument("--json", action="store_true", help="print the API's JSON shape")
    p.set_defaults(func=lambda a: _run(cmd_metadata_changes, a))

    p = _help(
        conn, "confirm-metadata", "adopt (or --discard) a held IdP metadata change",
        "A fetched metadata document that would drop every signing certificate the connection trusts is held: "
        "that is what a rollover looks like when the IdP skipped publishing both keys, and also what a hijacked "
        "metadata host would publish. Check the new certificates with the IdP's administrator, then adopt it "
        "(the connection trusts exactly those certificates from then on), or --discard it.",
        example="vestibule connection confirm-metadata 3f2b... 12",
        next_step="vestibule connection check-certificates",
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the SAML connection's ID")
    p.add_argument("change_id", metavar="CHANGE_ID", help="the pending change (see metadata-changes)")
    p.add_argument("--discard", action="store_true", help="refuse the change; the connection keeps its certificates")
    p.set_defaults(func=lambda a: _run(cmd_confirm_metadata, a))

    p = _help(
        conn, "check-certificates", "show IdP signing certificates' expiry and announce crossed thresholds",
        "List every SAML connection's pinned IdP signing certificates with their expiry: ok, expiring (30 days "
        "or less) or expired. A threshold (30 days, 7 days, expired) crossed for the first time is audited "
        "(connection.certificate_expiring / connection.certificate_expired), once per certificate whoever runs "
        "it; the serve workers do the same every few minutes.",
        example="vestibule connection check-certificates --account acme",
        next_step="vestibule connection refresh-metadata ID   (or PATCH saml.certificates with the new one)",
    )  # fmt: skip
    p.add_argument("--account", metavar="SLUG", help="only this account's connections")
    p.add_argument("--json", action="store_true", help="JSON, one object per certificate")
    p.set_defaults(func=lambda a: _run(cmd_check_certificates, a))
