"""``vestibule scim-token …``: the bearer tokens an account's directory (Okta, Entra ID) provisions with."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the directory commands to the ``vestibule`` parser."""
    del sub  # the scim-token commands land with the SCIM service


__all__ = ["register", "argparse"]
