"""What every ``vestibule`` subcommand shares: help that teaches, and Django set up on demand.

Why the CLI modules import models inside functions: ``vestibule --help`` and
configuration errors must work before (and without) a configured Django, and
importing a model module needs configured settings. So a command calls
:func:`_setup` first and imports what it touches after it; this is the one
documented reason for function-local imports (tests/test_architecture.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import Any


class CliError(Exception):
    """One line for stderr, and the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _help(
    parent: Any, name: str, summary: str, description: str, *, example: str, next_step: str = ""
) -> argparse.ArgumentParser:
    """A subcommand whose --help teaches: what it does, an example, and what to run next."""
    epilog = f"example:\n  {example}"
    if next_step:
        epilog += f"\n\nnext:\n  {next_step}"
    parser: argparse.ArgumentParser = parent.add_parser(
        name,
        help=summary,
        description=_wrap(description),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _wrap(text: str) -> str:
    # Paragraphs are reflowed; examples in the epilog keep their lines (RawDescriptionHelpFormatter).
    return "\n\n".join(textwrap.fill(" ".join(paragraph.split()), 79) for paragraph in text.split("\n\n"))


def _actions(parent: Any, name: str, summary: str, description: str, *, example: str) -> Any:
    """A command grouping actions (``vestibule account create``): its --help lists them, with an example."""
    parser = parent.add_parser(
        name, help=summary, description=_wrap(description), formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example:\n  {example}\n\nEach action explains itself: vestibule {name} ACTION --help",
    )  # fmt: skip
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True, title="actions")


def _setup(test_idp: bool = False, *, server: bool = False) -> None:
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
    if not server and "VESTIBULE_LOG_LEVEL" not in os.environ:
        # A one-shot command prints its own result; the INFO log lines (audit
        # events, already stored in the database) would only bury it.
        import logging

        logging.getLogger().setLevel(logging.WARNING)
