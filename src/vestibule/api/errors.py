"""Errors of the REST API and how they look on the wire.

Every error body is ``{"detail": "<what happened>", "field": "<where>"?}``,
or for schema validation ``{"detail": ..., "errors": [{"field", "message"}]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vestibule.connections.rules import ConnectionRuleError

T = TypeVar("T")


class ApiError(Exception):
    status = 400

    def __init__(self, detail: str, *, field: str | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if status is not None:
            self.status = status

    def body(self) -> dict[str, str]:
        body = {"detail": self.detail}
        if self.field:
            body["field"] = self.field
        return body


class NotFound(ApiError):
    status = 404


class Forbidden(ApiError):
    status = 403


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


def applying_rules(fn: Callable[[], T]) -> T:
    """Run a change through the connection rules, a broken rule answered as the API error it names."""
    try:
        return fn()
    except ConnectionRuleError as exc:
        raise ApiError(exc.detail, field=exc.field, status=exc.status) from None
