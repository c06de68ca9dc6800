"""Shared pieces of request and response schemas."""

from __future__ import annotations

from ninja import Schema
from pydantic import ConfigDict


class StrictSchema(Schema):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class ErrorOut(Schema):
    detail: str
    field: str | None = None
