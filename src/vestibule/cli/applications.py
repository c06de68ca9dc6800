"""``vestibule application …`` and ``vestibule signing-key …``: the OpenID Provider's operator on the command line.

The rules are the API's (``provider.applications``, ``provider.keys``) and so
is the output: ``application create`` prints the JSON object that ``POST
/api/v1/applications`` answers, secrets included, once. The shell is the
deployment's own console, so whoever runs these acts as the operator; every
change is audited with ``via=cli``.

Exit status: 0 done; 2 the input was refused (a bad URI, an option that does
not apply), fix the command; 1 the command is fine but cannot be done now
(unknown client ID, an application already revoked, no staged key). Either
way one line on stderr says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vestibule.cli import common
from vestibule.cli.common import CliError, _actions, _help


def _run(fn: Any, args: argparse.Namespace) -> int:
    # Django first: the rules import models, which need configured settings.
    common._setup()
    from vestibule.provider.applications import ApplicationError
    from vestibule.provider.keys import SigningKeyError

    try:
        return int(fn(args) or 0)
    except (ApplicationError, SigningKeyError) as exc:
        print(f"vestibule: {exc.field}: {exc.detail}", file=sys.stderr)
        # A 4xx other than a conflict is the input's fault; a conflict is the state's.
        return 1 if exc.status == 409 else 2
    except CliError as exc:
        print(f"vestibule: {exc}", file=sys.stderr)
        return exc.status


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _application(client_id: str) -> Any:
    from vestibule.provider.models import Application

    application = Application.objects.filter(client_id=client_id).first()
    if application is None:
        raise CliError(f"no application with client ID '{client_id}' (see `vestibule application list`)")
    return application


def _not_revoked(application: Any) -> Any:
    if application.revoked_at is not None:
        raise CliError(
            f"application '{application.client_id}' was revoked at {application.revoked_at.isoformat()}; "
            "register a new one"
        )
    return application


# Applications ----------------------------------------------------------------------


def cmd_create(args: argparse.Namespace) -> int:
    from vestibule.api.applications import application_detail, created_out
    from vestibule.audit.events import record
    from vestibule.provider import applications

    registered = applications.register(
        name=args.name,
        redirect_uris=args.redirect_uri,
        client_type="public" if args.public else "confidential",
        post_logout_redirect_uris=args.post_logout_redirect_uri or [],
        backchannel_logout_uri=args.backchannel_logout_uri,
        webhook_url=args.webhook_url,
        created_by="cli",
    )
    record("application.created", via="cli", **application_detail(registered.application))
    _print_json(created_out(registered))
    shown = [
        s for s, v in (("client secret", registered.client_secret), ("webhook secret", registered.webhook_secret)) if v
    ]
    if shown:
        print(f"Store the {' and the '.join(shown)} now: shown only once.", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from vestibule.api.applications import application_out
    from vestibule.provider.models import Application

    rows = list(Application.objects.order_by("created", "pk"))
    if args.json:
        _print_json([application_out(a) for a in rows])
        return 0
    if not rows:
        print("no applications yet: vestibule application create --name N --redirect-uri URI", file=sys.stderr)
        return 0
    print(f"{'CLIENT ID':40}  {'TYPE':12}  {'STATE':7}  {'NAME':30}  REDIRECT URIS")
    for a in rows:
        state = "revoked" if a.revoked_at else "active"
        print(f"{a.client_id:40}  {a.client_type:12}  {state:7}  {a.name[:30]:30}  {' '.join(a.redirect_uri_list())}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from vestibule.api.applications import application_out

    _print_json(application_out(_application(args.client_id)))
    return 0


def cmd_rotate_secret(args: argparse.Namespace) -> int:
    from django.db import transaction

    from vestibule.audit.events import record
    from vestibule.provider import applications

    with transaction.atomic():
        application = _not_revoked(_application(args.client_id))
        secret = applications.rotate_secret(application)
    record("application.secret_rotated", via="cli", client_id=application.client_id, name=application.name)
    _print_json({"client_id": application.client_id, "client_secret": secret})
    print("Store the new client secret now: shown only once. The old one no longer authenticates.", file=sys.stderr)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from django.db import transaction

    from vestibule.audit.events import record
    from vestibule.provider import applications

    with transaction.atomic():
        application = _not_revoked(_application(args.client_id))
        ended = applications.revoke(application)
    record("application.revoked", via="cli", client_id=application.client_id, name=application.name, ended=ended)
    print(f"application {application.client_id} ({application.name}) revoked; {ended} sign-in(s) ended")
    return 0


# Signing keys ----------------------------------------------------------------------


def _print_keys(status: list[dict[str, Any]]) -> None:
    print(f"{'KID':44}  {'ALG':5}  {'STATE':7}  {'PUBLISHED':9}  CREATED")
    for k in status:
        published = "yes" if k["published"] else "no"
        print(f"{k['kid']:44}  {k['algorithm']:5}  {k['state']:7}  {published:9}  {k['created_at'][:19]}")


def _keys_next_step(status: list[dict[str, Any]]) -> str:
    if any(k["state"] == "next" for k in status):
        return (
            "once relying parties have refreshed their cached JWKS (wait at least their cache lifetime): "
            "vestibule signing-key rotate --promote"
        )
    return "to rotate: vestibule signing-key rotate --stage [--algorithm ES256]"


def cmd_keys_list(args: argparse.Namespace) -> int:
    from vestibule.api.applications import key_status_out

    status = key_status_out()
    if args.json:
        _print_json(status)
        return 0
    if not status:
        print("no signing key yet: the first token signed makes an RS256 key", file=sys.stderr)
    else:
        _print_keys(status)
    print(f"  Next: {_keys_next_step(status)}", file=sys.stderr)
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from vestibule.api.applications import KEY_EVENTS, key_changes, key_status_out
    from vestibule.audit.events import record
    from vestibule.provider import keys

    if args.algorithm is not None and args.key_action != "stage":
        raise CliError("--algorithm applies to --stage only: a promoted key keeps its own", status=2)
    before = keys.key_status()
    keys.rotate(args.key_action, algorithm=args.algorithm or "RS256")
    status = key_status_out()
    record(KEY_EVENTS[args.key_action], via="cli", **key_changes(args.key_action, before, status))
    if args.json:
        _print_json(status)
    else:
        _print_keys(status)
    print(f"  Next: {_keys_next_step(status)}", file=sys.stderr)
    return 0


_CREATE_HELP = """\
Register an application (a client of Vestibule's OpenID Provider) and print
it as JSON: the API's answer to POST /api/v1/applications. A confidential
client (the default: a server that can keep a secret) gets a client secret;
a public one (--public: a single-page or native app) uses PKCE alone. The
client secret, and the webhook signing secret when --webhook-url is given,
are in this output only: Vestibule keeps a hash of the client secret and
cannot show either again (rotate-secret makes a new one).

Redirect URIs are compared character for character with what the
application sends. Every URI must be absolute https (http only on 127.0.0.1
or localhost, for development), without a fragment or credentials."""

_ROTATE_HELP = """\
Rotate the provider's signing key in two steps, each audited.

1. --stage makes a next key. /oauth/jwks publishes it at once, beside the
active key, but it signs nothing yet. Wait until every application has
refreshed its cached JWKS (at least the cache lifetime they use).

2. --promote makes it the key that signs. The replaced key is retired: it
stays in /oauth/jwks until every token it signed has expired, so tokens
issued a moment ago still verify.

--discard drops a staged key that was never promoted. --algorithm (with
--stage) chooses RS256 (the default) or ES256."""


def register(sub: Any) -> None:
    """Add the subcommands to the ``vestibule`` parser."""
    app = _actions(
        sub, "application", "manage applications that sign people in through Vestibule (OpenID Connect clients)",
        "Applications are the clients of Vestibule's OpenID Provider: your product, or one environment of it. "
        "The operator registers them; each gets a client ID (and, if confidential, a client secret) to configure "
        "in its OpenID Connect library, with VESTIBULE_BASE_URL as the issuer.",
        example="vestibule application create --name Billing --redirect-uri https://billing.example.com/oidc/callback",
    )  # fmt: skip

    p = _help(
        app, "create", "register an application and print its client ID and secret (once) as JSON", _CREATE_HELP,
        example=(
            "vestibule application create --name Billing --redirect-uri https://billing.example.com/oidc/callback \\\n"
            "      --post-logout-redirect-uri https://billing.example.com/ --webhook-url https://billing.example.com/hooks"
        ),
        next_step=(
            "configure the app's OIDC client: issuer VESTIBULE_BASE_URL, the printed client_id and client_secret\n"
            "  (discovery at VESTIBULE_BASE_URL/.well-known/openid-configuration)"
        ),
    )  # fmt: skip
    p.add_argument("--name", metavar="N", required=True, help="what people and the audit log call the application")
    p.add_argument(
        "--redirect-uri", metavar="URI", action="append", required=True,
        help="where codes may be sent, exactly as the app sends it (repeat for several)",
    )  # fmt: skip
    p.add_argument("--public", action="store_true", help="a public client (browser or native app): no secret, PKCE")
    p.add_argument(
        "--post-logout-redirect-uri", metavar="URI", action="append",
        help="where logout may return the browser (repeat for several)",
    )  # fmt: skip
    p.add_argument("--backchannel-logout-uri", metavar="URI", help="receives signed logout tokens when a sign-in ends")
    p.add_argument("--webhook-url", metavar="URI", help="receives signed event webhooks (people, memberships, roles)")
    p.set_defaults(func=lambda a: _run(cmd_create, a))

    p = _help(
        app, "list", "list applications",
        "List every application: client ID, type, state (active or revoked), name and redirect URIs. "
        "Revoked applications stay listed. --json prints the API's shape (GET /api/v1/applications).",
        example="vestibule application list",
        next_step="vestibule application show CLIENT_ID",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON, as GET /api/v1/applications does")
    p.set_defaults(func=lambda a: _run(cmd_list, a))

    p = _help(
        app, "show", "show one application as JSON",
        "Show one application as JSON (GET /api/v1/applications/CLIENT_ID). Secrets are never shown again.",
        example="vestibule application show 9bXq...",
        next_step="vestibule application rotate-secret CLIENT_ID   (or revoke)",
    )  # fmt: skip
    p.add_argument("client_id", metavar="CLIENT_ID", help="the client ID (see `vestibule application list`)")
    p.set_defaults(func=lambda a: _run(cmd_show, a))

    p = _help(
        app, "rotate-secret", "give a confidential application a new client secret (printed once)",
        "Make a new client secret and print it (JSON, as POST /api/v1/applications/CLIENT_ID/secret). The old "
        "secret stops authenticating at once, so configure the application with the new one right away; tokens "
        "it already holds stay valid. Public clients have no secret.",
        example="vestibule application rotate-secret 9bXq...",
        next_step="put the new client_secret in the application's configuration and restart it",
    )  # fmt: skip
    p.add_argument("client_id", metavar="CLIENT_ID", help="the client ID (see `vestibule application list`)")
    p.set_defaults(func=lambda a: _run(cmd_rotate_secret, a))

    p = _help(
        app, "revoke", "revoke an application: it signs nobody in from now on",
        "Revoke an application: it can no longer get codes or tokens, nor refresh them, and the sign-ins it "
        "holds end (with back-channel logout where configured). It stays listed as revoked; this cannot be undone.",
        example="vestibule application revoke 9bXq...",
        next_step="vestibule application list   (it shows as revoked)",
    )  # fmt: skip
    p.add_argument("client_id", metavar="CLIENT_ID", help="the client ID (see `vestibule application list`)")
    p.set_defaults(func=lambda a: _run(cmd_revoke, a))

    key = _actions(
        sub, "signing-key", "show or rotate the keys Vestibule signs ID tokens with",
        "The OpenID Provider signs ID tokens and logout tokens with a key kept in the database, sealed; "
        "/oauth/jwks publishes the public halves. Rotate it with stage, then promote.",
        example="vestibule signing-key rotate --stage --algorithm ES256",
    )  # fmt: skip

    p = _help(
        key, "list", "list the signing keys and which ones /oauth/jwks publishes",
        "List the signing keys, newest first: key ID, algorithm, state (next: published, not signing yet; "
        "active: signs; retired: published until its tokens expire) and whether /oauth/jwks lists it. "
        "Private keys are never shown.",
        example="vestibule signing-key list",
        next_step="vestibule signing-key rotate --stage",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON, as GET /api/v1/signing-keys does")
    p.set_defaults(func=lambda a: _run(cmd_keys_list, a))

    p = _help(
        key, "rotate", "stage, promote or discard a signing key", _ROTATE_HELP,
        example="vestibule signing-key rotate --stage --algorithm ES256",
        next_step="vestibule signing-key rotate --promote   (once applications have refreshed their JWKS)",
    )  # fmt: skip
    step = p.add_mutually_exclusive_group(required=True)
    step.add_argument(
        "--stage", dest="key_action", action="store_const", const="stage",
        help="make a next key: published in /oauth/jwks now, signing nothing yet",
    )  # fmt: skip
    step.add_argument(
        "--promote", dest="key_action", action="store_const", const="promote",
        help="the staged key signs from now on; the active one retires",
    )  # fmt: skip
    step.add_argument(
        "--discard", dest="key_action", action="store_const", const="discard",
        help="drop a staged key without using it",
    )  # fmt: skip
    p.add_argument("--algorithm", choices=["RS256", "ES256"], help="the staged key's algorithm (default RS256)")
    p.add_argument("--json", action="store_true", help="print JSON, as POST /api/v1/signing-keys/rotate does")
    p.set_defaults(func=lambda a: _run(cmd_keys_rotate, a))
