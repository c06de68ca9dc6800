"""Querysets of the login path compiled to SQL once, then run with each login's values.

Building a queryset and compiling it to SQL cost a login more CPU than
running the statements (a sampling profile: ~45 % of a worker's CPU in
``QuerySet.filter``/``annotate``/``as_sql`` against ~5 % executing). The
statements of a login have a fixed shape; only a few values change. A
:class:`CompiledQuery` builds its queryset once per database connection with
*sentinel* values in those places, compiles it, records which SQL parameter
holds which sentinel, and from then on executes the same SQL with the real
values put in those positions, converting the rows with the compiler's own
converters (what the ORM would have returned). The SQL is Django's, for the
connection's own database; the values stay bound parameters, never text.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections, models
from django.db.models.sql.compiler import SQLCompiler

__all__ = ["CompiledQuery", "attnames", "instance"]


def _uuid_sentinel(index: int) -> uuid.UUID:
    return uuid.UUID(int=(0x5E17_1E11_0000_0000 << 64) + index)


def _int_sentinel(index: int) -> int:
    # Negative and far from any constant a login query holds.
    return -7_315_000_000_000 - index


def _str_sentinel(index: int) -> str:
    return f"\u2603sentinel-{index}\u2603"


_SENTINELS: dict[type, Callable[[int], Any]] = {uuid.UUID: _uuid_sentinel, int: _int_sentinel, str: _str_sentinel}


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per SQL parameter: (name, form) of a value of the call, or (None, constant) for a constant of the queryset.
    slots: tuple[tuple[str | None, Any], ...]
    compiler: SQLCompiler
    converters: dict[int, tuple[list[Any], Any]]


class CompiledQuery:
    """A values / values_list queryset compiled once per database connection and thread.

    ``build(**sentinels)`` must return the queryset for the given values, each
    used only as a lookup value (never in Python logic), with ``params``
    naming each value's type: ``uuid.UUID``, ``int`` or ``str``.
    """

    def __init__(self, build: Callable[..., models.QuerySet[Any]], **params: type) -> None:
        unknown = [name for name, kind in params.items() if kind not in _SENTINELS]
        if unknown:
            raise TypeError(f"unsupported parameter types: {unknown}")
        self._build = build
        self._params = params
        # Compilers hold the connection wrapper they were made for, and wrappers are per thread.
        self._local = threading.local()

    def _compile(self, using: str) -> _Compiled:
        sentinels = {name: _SENTINELS[kind](i) for i, (name, kind) in enumerate(self._params.items())}
        queryset = self._build(**sentinels)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots: list[tuple[str | None, Any]] = []
        found = set()
        for param in params:
            for name, sentinel in sentinels.items():
                if isinstance(sentinel, uuid.UUID) and param == sentinel.hex:
                    slots.append((name, "hex"))
                    break
                if isinstance(sentinel, uuid.UUID) and isinstance(param, str) and param == str(sentinel):
                    slots.append((name, "str"))
                    break
                if type(param) is type(sentinel) and param == sentinel:
                    slots.append((name, "raw"))
                    break
            else:
                slots.append((None, param))
                continue
            found.add(slots[-1][0])
        missing = set(sentinels) - found
        if missing:
            # A value the SQL does not carry as a parameter (folded into the text, or unused): refuse to cache.
            raise ValueError(f"parameters not bound in the compiled SQL: {sorted(missing)}")
        fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
        return _Compiled(sql, tuple(slots), compiler, compiler.get_converters(fields))

    def rows(self, using: str = "default", **values: Any) -> list[list[Any]]:
        """The rows the queryset would return for ``values`` (as lists, converted like the ORM's)."""
        db = connections[using]
        cache: dict[int, _Compiled] = self._local.__dict__.setdefault("compiled", {})
        compiled = cache.get(id(db))
        if compiled is None:
            compiled = cache[id(db)] = self._compile(using)
        params = []
        for name, form in compiled.slots:
            if name is None:
                params.append(form)
                continue
            value = values[name]
            if form in ("hex", "str") and not isinstance(value, uuid.UUID):
                value = uuid.UUID(str(value))
            if form == "hex":
                value = value.hex
            elif form == "str":
                value = str(value)
            params.append(value)
        with db.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            raw = cursor.fetchall()
        if not compiled.converters:
            return [list(row) for row in raw]
        return list(compiled.compiler.apply_converters(raw, compiled.converters))


M = TypeVar("M", bound=models.Model)


def instance(model: type[M], row: list[Any], start: int, using: str = "default") -> M:
    """A model instance from ``row[start:]``, whose columns are ``model``'s concrete fields' attnames in order."""
    names = [f.attname for f in model._meta.concrete_fields]
    return model.from_db(using, names, row[start : start + len(names)])


def attnames(model: type[models.Model], prefix: str = "") -> list[str]:
    """``values_list`` arguments for every concrete field of ``model`` (through the relation ``prefix``)."""
    return [prefix + f.attname for f in model._meta.concrete_fields]
