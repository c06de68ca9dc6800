"""The ``vestibule`` command.

Each subcommand is a thin wrapper; the work happens in the same modules the web
and API layers use. Configuration errors print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from vestibule.cli import applications as applications_cli
from vestibule.cli import connections as connections_cli
from vestibule.cli import deliveries as deliveries_cli
from vestibule.cli import directory as directory_cli
from vestibule.cli import mapping_roles as mapping_roles_cli
from vestibule.cli.common import _actions, _help, _setup

DESCRIPTION = """\
Vestibule: enterprise single sign-on and user access for multi-tenant SaaS.

Configuration comes from VESTIBULE_* environment variables (see README).
With none set, Vestibule keeps an SQLite database and its secret key in ./var/.
"""

EPILOG = """\
Try it:
  vestibule demo                                  # seeded demo on http://127.0.0.1:8000
  vestibule demo --port 8422                      # the same on another port (URLs follow)
Set up a customer:
  vestibule account create acme --name "Acme Corporation"
  vestibule connection create-saml --account acme --name Okta --domain acme.com --metadata okta.xml
  vestibule connection enable ID
  vestibule api-key create --account acme --role sso-admin
Production:
  vestibule check --deploy && vestibule migrate && vestibule serve --host 0.0.0.0 --workers 4

Every command explains itself: vestibule COMMAND --help, vestibule COMMAND ACTION --help.
"""


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


def _base_url_for(host: str, port: int) -> None:
    """Make the public URL match where ``serve``/``demo`` listen, unless the operator set one.

    SAML and OIDC send browsers to VESTIBULE_BASE_URL. Were it left at its
    default while the server listens on another port, a sign-in would land in
    whatever else listens on 8000. An explicit VESTIBULE_BASE_URL (a proxy's
    https:// name) always wins.
    """
    if os.environ.get("VESTIBULE_BASE_URL"):
        return
    # A wildcard address is no URL a browser can open; the loopback one is, on this machine.
    shown = "127.0.0.1" if host in {"", "0.0.0.0", "::", "[::]"} else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    os.environ["VESTIBULE_BASE_URL"] = f"http://{shown}:{port}"


def _warn_port_mismatch(port: int) -> None:
    from urllib.parse import urlsplit

    from django.conf import settings

    base = urlsplit(settings.VESTIBULE_BASE_URL)
    loopback = base.hostname in {"127.0.0.1", "localhost", "::1"}
    if loopback and (base.port or 80) != port:
        print(
            f"vestibule: note: VESTIBULE_BASE_URL is {settings.VESTIBULE_BASE_URL} but this server listens on port {port}; "
            "sign-ins will send browsers there. Unset it to follow --port.",
            file=sys.stderr,
            flush=True,
        )


def _metrics_dir() -> None:
    """Give the workers a fresh shared folder for their metric samples, unless the operator chose one.

    ``prometheus_client`` reads ``PROMETHEUS_MULTIPROC_DIR`` when it is first
    imported, so this runs before Django (and the metrics module) load.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import atexit
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="vestibule-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        owner = os.getpid()

        def remove() -> None:
            # When the server ends; not a worker, which runs atexit handlers too.
            if os.getpid() == owner:
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(remove)


def _child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook: a finished worker's live gauges leave the scrape (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _worker_started(worker: Any) -> None:
    """gunicorn's hook, before the worker takes a request: load the URL map, start the IdP upkeep thread.

    Loading the URL map imports every view module (the admin API's schemas, SCIM's models...), one to
    two seconds of CPU that the first person to reach this worker would otherwise wait through, while
    ``/readyz`` (answered before URL resolution) already calls the node ready. The thread re-reads IdP
    metadata URLs and announces certificate expiry.
    """
    from django.urls import reverse

    from vestibule.signin import idp_lifecycle

    reverse("login")
    idp_lifecycle.start()


def cmd_serve(args: argparse.Namespace, *, test_idp: bool = False, before: Callable[[], None] | None = None) -> int:
    _base_url_for(args.host, args.port)
    _metrics_dir()
    _setup(test_idp=test_idp, server=True)
    from django.conf import settings

    _warn_port_mismatch(args.port)
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
        # gunicorn's messages join Vestibule's log (one JSON object per line on stderr), and it writes no
        # access log: that printed raw paths and query strings, which carry one-time tokens and codes.
        # The request line comes from vestibule.conf.request_log instead.
        "logger_class": "vestibule.conf.logging.GunicornLogger",
        "loglevel": settings.CONFIG.log_level.lower(),
        "timeout": 30,
        "graceful_timeout": 10,
        "forwarded_allow_ips": "*" if settings.VESTIBULE_TRUSTED_PROXIES else "127.0.0.1",
        "child_exit": _child_exit,
        "post_worker_init": _worker_started,
    }

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from vestibule.wsgi import application

            return application

    print(
        f"Vestibule listening on http://{args.host}:{args.port}  (public URL {settings.VESTIBULE_BASE_URL})", flush=True
    )
    Server().run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    # The demo's identity providers (and the ones people try next to it) listen on
    # this machine, which the outbound guard refuses unless the operator allows it.
    os.environ.setdefault("VESTIBULE_OUTBOUND_ALLOW", "127.0.0.1,::1,localhost")

    def seed() -> None:
        from vestibule.demo import seed_demo

        for line in seed_demo():
            print(line, flush=True)

    return cmd_serve(args, test_idp=True, before=seed)


def cmd_api_key_create(args: argparse.Namespace) -> int:
    _setup()
    from vestibule.accounts.models import Account
    from vestibule.authority.models import ApiKey

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
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError

    from vestibule.accounts.models import Account, slug_validator

    try:
        slug_validator(args.slug)
    except ValidationError as exc:
        print(f"vestibule: {args.slug!r} is not a usable slug: {' '.join(exc.messages)}", file=sys.stderr)
        return 1
    try:
        Account.objects.create(slug=args.slug, name=args.name or args.slug)
    except IntegrityError:
        print(f"vestibule: account '{args.slug}' already exists", file=sys.stderr)
        return 1
    print(args.slug)
    print(f"Next: vestibule connection create-saml --account {args.slug} --name NAME --domain DOMAIN", file=sys.stderr)
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
    from vestibule.login.credentials import credentials_changed

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
    parser = argparse.ArgumentParser(
        prog="vestibule", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def server_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
        p.add_argument(
            "--port", type=int, default=8000,
            help="port (default 8000); without VESTIBULE_BASE_URL the public URL becomes http://HOST:PORT",
        )  # fmt: skip
        p.add_argument("--workers", type=int, default=2, help="worker processes when Redis is configured (default 2)")
        p.add_argument("--threads", type=int, default=8, help="threads per worker (default 8)")
        p.add_argument("--migrate", action="store_true", help="apply database migrations first (automatic on SQLite)")

    p = _help(
        sub, "serve", "run the service with gunicorn",
        "Run Vestibule behind gunicorn. On the embedded SQLite database it migrates itself first. "
        "The public URL (SAML and OIDC endpoints, email links) is VESTIBULE_BASE_URL, or http://HOST:PORT when unset.",
        example="vestibule serve --port 8080                     # then open http://127.0.0.1:8080/login",
        next_step="vestibule operator create you@example.com     # a first administrator to sign in with",
    )  # fmt: skip
    server_args(p)
    p.set_defaults(func=cmd_serve)

    p = _help(
        sub, "demo", "run with demo data and the built-in test identity provider",
        "Seed account 'acme' (an administrator, people with roles, one waiting for approval, two connections, "
        "a mapping role, a failed login), an operator API key and a SAML connection to the built-in test IdP, "
        "print a one-time link that signs the administrator into the console, then serve. "
        "Data stays in VESTIBULE_DATA_DIR (default ./var).",
        example="vestibule demo --port 8422                      # then open the printed /demo/sign-in/... link",
        next_step="open the printed link (the console, signed in as admin@acme.test), "
        "or type any name@acme.test at /login to sign in through the test identity provider",
    )  # fmt: skip
    server_args(p)
    p.set_defaults(func=cmd_demo)

    p = _help(
        sub, "migrate", "create or upgrade the database schema",
        "Create or upgrade the database schema. `serve` does this itself on SQLite; on PostgreSQL run it once "
        "per upgrade, before starting the new version.",
        example="VESTIBULE_DATABASE_URL=postgres://vestibule@db/vestibule vestibule migrate",
        next_step="vestibule serve",
    )  # fmt: skip
    p.set_defaults(func=cmd_migrate)

    p = _help(
        sub, "check", "validate configuration and run Django's system checks",
        "Validate the VESTIBULE_* configuration and run the system checks (connections that accept unsigned "
        "assertions, and the like). Exits non-zero on an error.",
        example="vestibule check --deploy",
        next_step="vestibule migrate && vestibule serve",
    )  # fmt: skip
    p.add_argument("--deploy", action="store_true", help="also run the production hardening checks")
    p.set_defaults(func=cmd_check)

    key = _actions(
        sub, "api-key", "manage API keys (for automation)", "API keys let scripts and services call the admin REST API.",
        example="KEY=$(vestibule api-key create --account acme --role sso-admin --name terraform)",
    )  # fmt: skip
    p = _help(
        key, "create", "create an API key and print it (once) on stdout",
        "Create an API key: a named service credential. --operator keys act on every account and may claim "
        "domains; --account keys act in one account with the admin roles you give them (--role, repeatable; "
        "default administrator). People administer through their own sign-in; keys are for automation. "
        "The key alone goes to stdout, so KEY=$(vestibule api-key create ...) works; it is shown only once.",
        example="vestibule api-key create --account acme --role sso-admin --name terraform",
        next_step="curl -H \"Authorization: Bearer $KEY\" http://127.0.0.1:8000/api/v1/accounts/acme/connections",
    )  # fmt: skip
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

    acc = _actions(
        sub, "account", "manage accounts (customer organizations)",
        "An account is one customer organization of your product: its users, SSO connections and roles.",
        example='vestibule account create acme --name "Acme Corporation"',
    )  # fmt: skip
    p = _help(
        acc, "create", "create an account",
        "Create an account: one customer organization, with its own users, connections and roles. "
        "Prints the slug, which the other commands and the API use to name it.",
        example='vestibule account create acme --name "Acme Corporation"',
        next_step="vestibule connection create-saml --account acme --name Okta --domain acme.com --metadata okta.xml",
    )  # fmt: skip
    p.add_argument("slug", help="short identifier: lowercase letters, digits and hyphens, e.g. acme")
    p.add_argument("--name", default="", help="display name people see (default: the slug)")
    p.set_defaults(func=cmd_account_create)

    op = _actions(
        sub, "operator", "manage operators (global administrators)",
        "Operators administer the whole deployment: every account, and claiming email domains.",
        example="vestibule operator create ops@example.com",
    )  # fmt: skip
    p = _help(
        op, "create", "create or reset an operator and print a new password once",
        "Create an operator (a global administrator who signs in with a password), or give an existing one a "
        "new password. The password alone goes to stdout; it is shown only once.",
        example="vestibule operator create ops@example.com --name \"Ops Team\"",
        next_step="sign in at VESTIBULE_BASE_URL/login, then turn on two-factor sign-in at /account/totp",
    )  # fmt: skip
    p.add_argument("email", help="the operator's email address, used to sign in")
    p.add_argument("--name", default="", help="display name")
    p.set_defaults(func=cmd_operator_create)

    _extend(sub)
    return parser


def _extend(sub: Any) -> None:
    connections_cli.register(sub)
    mapping_roles_cli.register(sub)
    applications_cli.register(sub)
    deliveries_cli.register(sub)
    directory_cli.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
