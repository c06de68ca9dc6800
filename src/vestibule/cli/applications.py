"""``vestibule application …`` and ``vestibule signing-key …`` (being written)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the subcommands to the ``vestibule`` parser."""
    _ = argparse
