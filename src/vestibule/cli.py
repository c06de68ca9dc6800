"""The ``vestibule`` command.

Each subcommand is a thin wrapper; the work happens in the same kits the web
and API layers use. Configuration errors print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

DESCRIPTION = """\
Vestibule: enterprise single sign-on and user access for multi-tenant SaaS.

Configuration comes from VESTIBULE_* environment variables (see README).
With none set, Vestibule keeps an SQLite database and its secret key in ./var/.

Typical first run:
  vestibule demo                      # seeded demo on http://127.0.0.1:8000
Production:
  vestibule migrate && vestibule serve --host 0.0.0.0 --workers 4
"""


def _setup(test_idp: bool = False) -> None:
    if test_idp:
        os.environ["VESTIBULE_TEST_IDP"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vestibule.conf.settings")
    from vestibule.conf.env import ConfigError, load_config

    try:
        load_config()
    except ConfigError as exc:
        print(f"vestibule: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    import django

    django.setup()


def _migrate(verbosity: int = 1) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup()
    _migrate(verbosity=1)
    return 0


def _embedded() -> bool:
    from django.conf import settings

    return bool(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"))


def cmd_serve(args: argparse.Namespace, *, test_idp: bool = False, before: Callable[[], None] | None = None) -> int:
    _setup(test_idp=test_idp)
    from django.conf import settings

    if _embedded() or args.migrate:
        # The embedded database migrates itself: a fresh clone needs no extra step.
        _migrate(verbosity=0)
    if before is not None:
        before()
    from gunicorn.app.base import BaseApplication

    embedded_cache = not settings.CONFIG.redis_url
    # Without Redis the cache lives in one process; several workers would each
    # keep their own rate-limit counters, so the embedded mode uses one worker
    # with threads.
    workers = 1 if embedded_cache else args.workers
    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": workers,
        "threads": args.threads,
        "worker_class": "gthread",
        "accesslog": "-",
        "errorlog": "-",
        "timeout": 30,
        "graceful_timeout": 10,
        "forwarded_allow_ips": "*" if settings.VESTIBULE_TRUSTED_PROXIES else "127.0.0.1",
    }

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from vestibule.conf.wsgi import application

            return application

    print(f"Vestibule listening on http://{args.host}:{args.port}  (public URL {settings.VESTIBULE_BASE_URL})", flush=True)
    Server().run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    # The demo's identity providers (and the ones people try next to it) listen on
    # this machine, which the outbound guard refuses unless the operator allows it.
    os.environ.setdefault("VESTIBULE_OUTBOUND_ALLOW", "127.0.0.1,::1,localhost")

    def seed() -> None:
        from vestibule.demo import seed_demo

        for line in seed_demo(base_url_port=args.port):
            print(line, flush=True)

    return cmd_serve(args, test_idp=True, before=seed)


def cmd_api_key_create(args: argparse.Namespace) -> int:
    _setup()
    from vestibule.accounts.models import Account
    from vestibule.api.models import ApiKey

    account = None
    if args.account:
        account = Account.objects.filter(slug=args.account).first()
        if account is None:
            print(f"vestibule: no account with slug '{args.account}'", file=sys.stderr)
            return 1
    if args.role and account is None:
        print("vestibule: --role applies to --account keys; an operator key acts as the operator", file=sys.stderr)
        return 2
    roles = sorted(set(args.role or ["administrator"])) if account is not None else []
    _, secret = ApiKey.issue(account=account, name=args.name, roles=roles, created_by="cli")
    # The key alone on stdout, so `KEY=$(vestibule api-key create --operator)` works.
    print(secret)
    print("Store this key now: it is shown only once.", file=sys.stderr)
    return 0


def cmd_account_create(args: argparse.Namespace) -> int:
    _setup()
    from django.db import IntegrityError

    from vestibule.accounts.models import Account

    try:
        Account.objects.create(slug=args.slug, name=args.name or args.slug)
    except IntegrityError:
        print(f"vestibule: account '{args.slug}' already exists", file=sys.stderr)
        return 1
    print(args.slug)
    return 0


def cmd_operator_create(args: argparse.Namespace) -> int:
    _setup()
    import secrets

    from vestibule.accounts.models import User
    from vestibule.domain.emails import InvalidEmail, email_key

    try:
        key = email_key(args.email)
    except InvalidEmail as exc:
        print(f"vestibule: {args.email!r} is not a valid email: {exc.reason}", file=sys.stderr)
        return 1
    password = secrets.token_urlsafe(15)
    user = User.objects.filter(email_key=key).first() or User(email=args.email, name=args.name or "")
    user.is_operator = True
    user.login_method = User.LoginMethod.PASSWORD
    user.set_password(password)
    user.save()
    from vestibule.login.internal.credentials import credentials_changed

    credentials_changed(user)  # a new password voids the links minted for the old one
    print(password)
    print(f"Operator {user.email} can sign in with this password; it is shown only once.", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    _setup()
    from django.core.management import call_command

    call_command("check", "--deploy" if args.deploy else "--fail-level=ERROR")
    print("configuration OK")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vestibule", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def server_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
        p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
        p.add_argument("--workers", type=int, default=2, help="worker processes when Redis is configured (default 2)")
        p.add_argument("--threads", type=int, default=8, help="threads per worker (default 8)")
        p.add_argument("--migrate", action="store_true", help="apply database migrations first (automatic on SQLite)")

    p = sub.add_parser("serve", help="run the service with gunicorn", description="Run Vestibule behind gunicorn. On the embedded SQLite database it migrates itself first.")
    server_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run with demo data and the built-in test identity provider", description="Seed account 'acme' with users and a SAML connection to the built-in test IdP, print how to sign in, then serve.")
    server_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("check", help="validate configuration and run Django's system checks")
    p.add_argument("--deploy", action="store_true", help="also run the production hardening checks")
    p.set_defaults(func=cmd_check)

    key = sub.add_parser("api-key", help="manage API keys").add_subparsers(dest="action", metavar="ACTION", required=True)
    p = key.add_parser(
        "create",
        help="create an API key and print it (once) on stdout",
        description=(
            "Create an API key: a named service credential. --operator keys act on every account and may claim "
            "domains; --account keys act in one account with the admin roles you give them (--role, repeatable; "
            "default administrator). People administer through their own sign-in; keys are for automation."
        ),
        epilog="example: vestibule api-key create --account acme --role sso-admin --name terraform",
    )
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--operator", action="store_true", help="deployment-wide key")
    scope.add_argument("--account", metavar="SLUG", help="key limited to one account")
    p.add_argument(
        "--role",
        action="append",
        choices=["administrator", "user-manager", "sso-admin"],
        help="admin role the key holds in its account (repeat for several; default administrator)",
    )
    p.add_argument("--name", default="", help="a label to recognize the key later")
    p.set_defaults(func=cmd_api_key_create)

    acc = sub.add_parser("account", help="manage accounts").add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acc.add_parser("create", help="create an account")
    p.add_argument("slug")
    p.add_argument("--name", default="")
    p.set_defaults(func=cmd_account_create)

    op = sub.add_parser("operator", help="manage operators (global administrators)").add_subparsers(dest="action", metavar="ACTION", required=True)
    p = op.add_parser("create", help="create or reset an operator and print a new password once")
    p.add_argument("email")
    p.add_argument("--name", default="")
    p.set_defaults(func=cmd_operator_create)

    _extend(sub)
    return parser


def _extend(sub: Any) -> None:
    """Protocol-specific subcommands register themselves here."""
    from vestibule.connections import cli as connections_cli

    connections_cli.register(sub)
    __import__("vestibule.connections.cli_mapping_roles", fromlist=["register"]).register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
