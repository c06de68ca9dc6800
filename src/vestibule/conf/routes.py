"""The name a request is known by in logs and metrics: its URL pattern's, never its path.

A path can carry a secret (``/setup/<token>``, an OIDC ``code`` in the query)
and is unbounded; a pattern name is neither. Namespaced ("setup:open"),
because bare names repeat across apps ("open", "values"). The request log,
Django's request records and the metrics histogram all use this one name, so
a log line and a histogram bucket can be matched up.
"""

from __future__ import annotations

from typing import Any

__all__ = ["route_name"]


def route_name(request: Any) -> str:
    """The matched pattern's namespaced name, "unmatched" when none matched."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return str(match.view_name or "unnamed")
