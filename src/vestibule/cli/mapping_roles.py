"""``vestibule mapping-role ...``: an account's mapping roles from the command line (seed 002).

A mapping role's name is compared with the identity provider's
``role_mapping`` claim; per scope (the account, or one project) it grants
catalog roles. The same rules as ``/api/v1/accounts/<slug>/mapping-roles``
apply (``authorization.validate_grants``), every change is audited, and,
as through the API, it reaches users at their next login::

    vestibule mapping-role list   --account acme [--json]
    vestibule mapping-role create --account acme --name Finance \\
        --grant account=analyst,report-viewer --grant project:production=report-manager
    vestibule mapping-role update --account acme --name Finance [--rename "Finance EMEA"] [--grant ...]
    vestibule mapping-role delete --account acme --name Finance

The shell is the deployment's own console: whoever runs it acts with the
operator's authority, like an operator API key.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vestibule.cli import common
from vestibule.cli.common import _actions, _help

GRANT_HELP = "SCOPE=ROLE[,ROLE...], SCOPE is 'account' or 'project:<slug>'; repeat per scope"


def _grant(text: str) -> dict[str, Any]:
    scope, sep, roles = text.partition("=")
    names = [r.strip() for r in roles.split(",") if r.strip()]
    if not sep or not scope.strip() or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {GRANT_HELP}")
    return {"scope": scope.strip(), "roles": names}


def _name(text: str) -> str:
    # The API's limits (MappingRoleIn.name), so both surfaces accept the same names.
    if not 1 <= len(text) <= 200:
        raise argparse.ArgumentTypeError("a mapping role name has 1 to 200 characters")
    return text


def _fail(message: str) -> int:
    print(f"vestibule: {message}", file=sys.stderr)
    return 1


def _account(slug: str) -> Any:
    from vestibule.accounts.models import Account

    return Account.objects.filter(slug=slug).first()


def _setup() -> None:
    # Looked up at call time so tests can run the commands in an already configured process.
    common._setup()


def _format(mapping_role: Any) -> str:
    grants = " ".join(f"{g['scope']}={','.join(g['roles'])}" for g in mapping_role.grants)
    return f"{mapping_role.pk}\t{mapping_role.name}\t{grants}"


def _out(mapping_role: Any) -> dict[str, Any]:
    from vestibule.api.connections import mapping_role_out

    return mapping_role_out(mapping_role)


def _find(account: Any, name: str) -> Any:
    from vestibule.connections.models import MappingRole

    return MappingRole.objects.filter(account=account, name=name).first()


def cmd_list(args: argparse.Namespace) -> int:
    _setup()
    from vestibule.connections.models import MappingRole

    account = _account(args.account)
    if account is None:
        return _fail(f"no account with slug '{args.account}'")
    rows = MappingRole.objects.filter(account=account).prefetch_related("role_grants__project").order_by("name")
    if args.json:
        print(json.dumps([_out(m) for m in rows], indent=2))
    else:
        for mapping_role in rows:
            print(_format(mapping_role))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    return _save(args, creating=True)


def cmd_update(args: argparse.Namespace) -> int:
    return _save(args, creating=False)


def _save(args: argparse.Namespace, *, creating: bool) -> int:
    _setup()
    from vestibule.audit.events import record
    from vestibule.connections.authorization import MappingRoleError, save_mapping_role

    account = _account(args.account)
    if account is None:
        return _fail(f"no account with slug '{args.account}'")
    existing = None
    if not creating:
        existing = _find(account, args.name)
        if existing is None:
            return _fail(f"account '{account.slug}' has no mapping role named '{args.name}'")
    name = args.name if creating else args.rename
    try:
        mapping_role = save_mapping_role(account, existing, name=name, grants=args.grant or None)
    except MappingRoleError as exc:
        return _fail(exc.detail if exc.conflict else f"{exc.field}: {exc.detail}")
    if creating:
        record("mapping_role.created", account=account, name=mapping_role.name, via="cli")
    else:
        record("mapping_role.updated", account=account, name=mapping_role.name, previous_name=args.name, via="cli")
    print(_format(mapping_role))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _setup()
    from vestibule.audit.events import record

    account = _account(args.account)
    if account is None:
        return _fail(f"no account with slug '{args.account}'")
    mapping_role = _find(account, args.name)
    if mapping_role is None:
        return _fail(f"account '{account.slug}' has no mapping role named '{args.name}'")
    mapping_role.delete()
    record("mapping_role.deleted", account=account, name=args.name, via="cli")
    print(args.name)
    return 0


def register(sub: Any) -> None:
    actions = _actions(
        sub, "mapping-role", "manage an account's mapping roles (SSO authorization)",
        "Mapping roles turn the identity provider's role_mapping claim into roles. "
        "Changes apply to each user at their next SSO login.",
        example="vestibule mapping-role list --account acme",
    )  # fmt: skip

    def account_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--account", metavar="SLUG", required=True, help="the account the mapping roles belong to")

    p = _help(
        actions, "list", "list mapping roles: id, name, grants",
        "List an account's mapping roles, one per line: id, name, and grants as SCOPE=ROLE,... (--json: the API's shape).",
        example="vestibule mapping-role list --account acme",
        next_step="vestibule mapping-role create --account acme --name NAME --grant account=ROLE",
    )  # fmt: skip
    account_arg(p)
    p.add_argument(
        "--json", action="store_true", help="print the API's JSON shape instead of one line per mapping role"
    )
    p.set_defaults(func=cmd_list)

    p = _help(
        actions, "create", "create a mapping role",
        "Create a mapping role: people whose identity provider sends this name in role_mapping get the granted "
        "catalog roles (GET /api/v1/roles lists them) at their next SSO login.",
        example="vestibule mapping-role create --account acme --name Finance --grant account=analyst --grant project:production=report-manager",
        next_step="configure the identity provider to send role_mapping=Finance; check with: vestibule mapping-role list --account acme",
    )  # fmt: skip
    account_arg(p)
    p.add_argument("--name", type=_name, required=True, help="compared with the role_mapping claim value")
    p.add_argument("--grant", type=_grant, action="append", required=True, help=GRANT_HELP)
    p.set_defaults(func=cmd_create)

    p = _help(
        actions, "update", "rename a mapping role or replace its grants",
        "Rename a mapping role (--rename) or replace all of its grants (--grant), or both.",
        example="vestibule mapping-role update --account acme --name Finance --grant account=analyst,report-viewer",
        next_step="vestibule mapping-role list --account acme",
    )  # fmt: skip
    account_arg(p)
    p.add_argument("--name", required=True, help="the mapping role to change")
    p.add_argument(
        "--rename", type=_name, metavar="NEW_NAME", help="new name (users must then send it in role_mapping)"
    )
    p.add_argument("--grant", type=_grant, action="append", help=f"replaces all grants; {GRANT_HELP}")
    p.set_defaults(func=cmd_update)

    p = _help(
        actions, "delete", "delete a mapping role",
        "Delete a mapping role. People keep the roles it granted until their next SSO login.",
        example="vestibule mapping-role delete --account acme --name Finance",
        next_step="vestibule mapping-role list --account acme",
    )  # fmt: skip
    account_arg(p)
    p.add_argument("--name", required=True, help="the mapping role to delete")
    p.set_defaults(func=cmd_delete)
