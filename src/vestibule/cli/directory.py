"""``vestibule scim-token …``: the bearer tokens an account's directory (Okta, Entra ID) provisions with.

The rules and the output are the API's (``directory.tokens``): ``scim-token
create`` prints the JSON object ``POST /api/v1/accounts/SLUG/scim-tokens``
answers, the token included, once. Whoever runs these acts as the operator;
every change is audited with ``via=cli``.

Exit status: 0 done; 2 the input was refused (a connection of another
account); 1 the command is fine but cannot be done now (unknown account or
token). Either way one line on stderr says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vestibule.cli import common
from vestibule.cli.common import CliError, _actions, _help


def _run(fn: Any, args: argparse.Namespace) -> int:
    common._setup()
    from vestibule.connections.rules import ConnectionRuleError

    try:
        return int(fn(args) or 0)
    except ConnectionRuleError as exc:
        print(f"vestibule: {exc.field}: {exc.detail}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"vestibule: {exc}", file=sys.stderr)
        return exc.status


def _account(slug: str) -> Any:
    from vestibule.accounts.models import Account

    account = Account.objects.filter(slug=slug).first()
    if account is None:
        raise CliError(f"no account '{slug}' (see GET /api/v1/accounts)")
    return account


def cmd_create(args: argparse.Namespace) -> int:
    from vestibule.directory import tokens

    account = _account(args.account)
    _, body = tokens.issue(
        account, actor={"via": "cli"}, name=args.name, connection_id=args.connection, created_by="cli"
    )
    print(json.dumps(body, indent=2))
    print("Store the token now: shown only once. Paste base_url and token into the directory's SCIM settings.",
          file=sys.stderr)  # fmt: skip
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from vestibule.directory import tokens

    rows = tokens.live_tokens(_account(args.account))
    if args.json:
        print(json.dumps([tokens.token_out(t) for t in rows], indent=2))
        return 0
    if not rows:
        print(f"no SCIM tokens yet: vestibule scim-token create --account {args.account}", file=sys.stderr)
        return 0
    print(f"{'PREFIX':14}  {'CREATED':25}  {'LAST USED':25}  NAME")
    for t in rows:
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
        print(f"{t.prefix:14}  {t.created_at.isoformat(timespec='seconds'):25}  {used:25}  {t.name}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from vestibule.directory import tokens

    account = _account(args.account)
    if not tokens.revoke(account, args.prefix, actor={"via": "cli"}):
        raise CliError(f"account '{args.account}' has no live SCIM token '{args.prefix}' (see scim-token list)")
    print(f"revoked {args.prefix}: the directory's next request with it gets 401", file=sys.stderr)
    return 0


_CREATE_HELP = (
    "Create a bearer token for an account's directory (Okta, Microsoft Entra ID, any SCIM 2.0 client) and print "
    "it as JSON, with the SCIM base URL to paste beside it. The token is shown only once; Vestibule keeps only a "
    "hash of it. It speaks for this one account: people and groups it provisions are that account's members.\n\n"
    "With --connection, the directory's externalId is the person's external user ID at that connection (the "
    "SAML NameID or OIDC sub): the next SSO login through it finds the person the directory provisioned."
)


def register(sub: Any) -> None:
    """Add the directory commands to the ``vestibule`` parser."""
    tok = _actions(
        sub, "scim-token", "manage the SCIM tokens an account's directory provisions people with",
        "An account's directory (Okta, Entra ID) creates, updates and deactivates the account's people through "
        "SCIM 2.0 at VESTIBULE_BASE_URL/scim/v2, authenticated with a bearer token made here (or with "
        "POST /api/v1/accounts/SLUG/scim-tokens).",
        example="vestibule scim-token create --account acme --name 'Okta production'",
    )  # fmt: skip

    p = _help(
        tok, "create", "create a SCIM token for an account and print it (once) as JSON", _CREATE_HELP,
        example="vestibule scim-token create --account acme --name 'Okta production'",
        next_step="paste base_url and token into the directory's SCIM provisioning settings",
    )  # fmt: skip
    p.add_argument("--account", metavar="SLUG", required=True, help="the account the directory provisions")
    p.add_argument("--name", metavar="N", default="", help="what people and the audit log call the directory")
    p.add_argument("--connection", metavar="ID", help="bind externalId to this connection's external user IDs")
    p.set_defaults(func=lambda a: _run(cmd_create, a))

    p = _help(
        tok, "list", "list an account's live SCIM tokens (never their secrets)",
        "List the account's live SCIM tokens: prefix, when made, when last used, name. Revoked tokens are not "
        "listed. --json prints the API's shape (GET /api/v1/accounts/SLUG/scim-tokens).",
        example="vestibule scim-token list --account acme",
        next_step="vestibule scim-token revoke --account acme PREFIX",
    )  # fmt: skip
    p.add_argument("--account", metavar="SLUG", required=True, help="the account whose tokens to list")
    p.add_argument("--json", action="store_true", help="print JSON, as GET /api/v1/accounts/SLUG/scim-tokens does")
    p.set_defaults(func=lambda a: _run(cmd_list, a))

    p = _help(
        tok, "revoke", "revoke a SCIM token: the directory's next request with it gets 401",
        "Revoke one of the account's SCIM tokens by its prefix (see scim-token list). Nothing the directory "
        "provisioned is undone; it just cannot provision any more with this token.",
        example="vestibule scim-token revoke --account acme 3f9c0a1b2c4d",
        next_step="vestibule scim-token create --account acme   (a replacement for the directory)",
    )  # fmt: skip
    p.add_argument("--account", metavar="SLUG", required=True, help="the account the token belongs to")
    p.add_argument("prefix", metavar="PREFIX", help="the token's prefix (see scim-token list)")
    p.set_defaults(func=lambda a: _run(cmd_revoke, a))


__all__ = ["register"]
