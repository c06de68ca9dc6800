"""Messages to applications: back-channel logout tokens and signed webhooks (being written)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vestibule.provider.models import Authorization


def queue_backchannel_logout(authorizations: Iterable[Authorization]) -> int:
    return 0
