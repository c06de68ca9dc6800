"""Storable text: the one rule for hostile strings on their way into the database.

Claims, trace details and audit details come from identity providers and
browsers, and may carry anything. PostgreSQL refuses NUL in ``text`` and
``jsonb`` (and a lone surrogate cannot be encoded at all), so storing such a
value fails the whole request; the other control characters store fine but
are never meaningful in a name, a role or a trace line, and a terminal escape
read back by an admin's tool is an attack. Tab, line feed and carriage return
stay: they are ordinary in settings documents (PEM, XML) and descriptions.

Two uses, one definition of what is not storable:

* :func:`storable` replaces each such character with U+FFFD, for values we
  record whatever they hold (login traces, audit details, last claims);
* :func:`is_storable` says whether a value needs no replacement, for inputs
  we refuse instead (API request bodies, with a 422 naming the field).
"""

from __future__ import annotations

import unicodedata
from typing import TypeVar

__all__ = ["REPLACEMENT", "is_storable", "storable", "unstorable"]

REPLACEMENT = "\ufffd"
_KEPT = frozenset("\t\n\r")

T = TypeVar("T")


def unstorable(ch: str) -> bool:
    """NUL, any other control character except tab/LF/CR (Unicode category Cc), or a lone surrogate (Cs)."""
    return ch not in _KEPT and unicodedata.category(ch) in ("Cc", "Cs")


def _clean(text: str) -> str:
    if all(ch.isprintable() or ch in _KEPT for ch in text):
        # Fast path: printable text holds no Cc or Cs character.
        return text
    return "".join(REPLACEMENT if unstorable(ch) else ch for ch in text)


def storable(value: T) -> T:
    """``value`` with every unstorable character replaced by U+FFFD, through lists, tuples and dict values.

    Anything that is not text (numbers, ``None``, booleans) is returned as is.
    """
    if isinstance(value, str):
        return _clean(value)  # type: ignore[return-value]
    if isinstance(value, list):
        return [storable(v) for v in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(storable(v) for v in value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}  # type: ignore[return-value]
    return value


def is_storable(value: object) -> bool:
    """True when :func:`storable` would leave ``value`` unchanged (checked through lists, tuples and dicts)."""
    if isinstance(value, str):
        return not any(unstorable(ch) for ch in value)
    if isinstance(value, (list, tuple)):
        return all(is_storable(v) for v in value)
    if isinstance(value, dict):
        return all(is_storable(v) for v in value.values())
    return True
