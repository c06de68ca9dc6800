"""Shared pieces of request and response schemas."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import ConfigDict, field_validator

from vestibule.api.errors import Unprocessable
from vestibule.domain.text import is_storable


def _refuse_unstorable(value: Any) -> Any:
    if not is_storable(value):
        raise ValueError("must not contain NUL or other control characters")
    return value


class StrictSchema(Schema):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)

    # PostgreSQL cannot store NUL in text: refuse it (and the other characters
    # vestibule.domain.text would replace) here, naming the field, instead of
    # failing in the database.
    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _refuse_unstorable(value)


class ErrorOut(Schema):
    detail: str
    field: str | None = None


def changes_without_nulls(payload: Schema, *not_nullable: str) -> dict[str, Any]:
    """A PATCH body's set fields; ``null`` for a field that cannot be cleared is a 422 naming it."""

    changes = payload.model_dump(exclude_unset=True)
    for field in not_nullable:
        if field in changes and changes[field] is None:
            raise Unprocessable(f"{field} cannot be null", field=field)
    return changes
