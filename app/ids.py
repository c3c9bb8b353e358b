"""Ids as clients send them (strings in GraphQL), checked once in one way."""

from __future__ import annotations

from typing import Any

from app.errors import BadInput


def parse_id(value: Any, name: str) -> int:
    """A positive integer id, or BAD_USER_INPUT naming the field."""
    if isinstance(value, bool):
        raise BadInput(f"{name} is not a valid id", field=name)
    try:
        parsed = int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} is not a valid id", field=name) from None
    if parsed <= 0:
        raise BadInput(f"{name} is not a valid id", field=name)
    return parsed
