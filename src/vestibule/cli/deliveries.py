"""``vestibule deliveries …``: send what applications are owed (logout tokens, webhooks) and read the log.

``vestibule serve`` sweeps in every worker already; ``deliveries run`` is for
a deployment that wants the sweeping in a process of its own, or a cron job
(``--once``). Several sweepers at once are safe: each attempt is claimed
first (see ``vestibule.provider.deliveries``)::

    vestibule deliveries run [--once] [--interval 5]
    vestibule deliveries list --client-id ID [--limit 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vestibule.cli import common
from vestibule.cli.common import _actions, _help


def _setup() -> None:
    # Looked up at call time so tests can run the commands in an already configured process.
    common._setup()


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError("the interval is 0.5 to 3600 seconds")
    return value


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("the limit is 1 to 1000")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    _setup()
    from vestibule.provider import deliveries

    if not args.once:
        print(f"vestibule: sweeping deliveries every {args.interval:g} s (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        outcome = deliveries.run(once=args.once, interval=args.interval)
    except KeyboardInterrupt:
        return 0
    print(json.dumps({"delivered": outcome.delivered, "retrying": outcome.retrying, "failed": outcome.failed}))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _setup()
    from vestibule.provider.deliveries import delivery_log
    from vestibule.provider.models import Application

    application = Application.objects.filter(client_id=args.client_id).first()
    if application is None:
        print(f"vestibule: no application with client_id {args.client_id!r}", file=sys.stderr)
        return 1
    print(json.dumps(delivery_log(application, args.limit), indent=2, default=str))
    return 0


def register(sub: Any) -> None:
    """Add ``vestibule deliveries`` to the ``vestibule`` parser."""
    group = _actions(
        sub, "deliveries", "send logout tokens and webhooks to applications, and read the delivery log",
        "Applications are told when a sign-in ends (back-channel logout) and when people, memberships or roles "
        "change (signed webhooks). Each message is kept until it is delivered, retried with backoff, and logged.",
        example="vestibule deliveries run --once",
    )  # fmt: skip
    p = _help(
        group, "run", "send every due delivery, retrying failed ones with backoff",
        "Send the deliveries that are due and retry failed ones (10 s, 1 min, 5 min, 30 min, 2 h, 6 h, 12 h; "
        "then the delivery is failed), and purge expired codes, tokens and ended sign-ins. Without --once it "
        "keeps going until stopped. `vestibule serve` does this in each worker already; run it on its own "
        "for a separate sweeper or a cron job. Prints what happened as JSON.",
        example="vestibule deliveries run --once",
        next_step="vestibule deliveries list --client-id CLIENT_ID",
    )  # fmt: skip
    p.add_argument("--once", action="store_true", help="one sweep and purge, then exit")
    p.add_argument("--interval", type=_interval, default=5.0, help="seconds between sweeps (default 5)")
    p.set_defaults(func=cmd_run)
    p = _help(
        group, "list", "print an application's most recent deliveries as JSON",
        "Print the delivery log of one application, newest first: kind, event, URL, status, attempts, "
        "the last status code or error, and when the next attempt is due.",
        example="vestibule deliveries list --client-id CLIENT_ID --limit 20",
        next_step="vestibule deliveries run --once                # retry what is due now",
    )  # fmt: skip
    p.add_argument("--client-id", required=True, help="the application's client_id")
    p.add_argument("--limit", type=_limit, default=50, help="how many (1 to 1000, default 50)")
    p.set_defaults(func=cmd_list)
