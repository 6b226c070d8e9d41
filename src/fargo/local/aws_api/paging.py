"""Paginated answers: an offset as the token, as opaque to clients as AWS's own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from fargo.local.aws_api.errors import AwsError

T = TypeVar("T")


def page(
    items: Sequence[T], token: str | None, limit: int | None, *, default: int, invalid: str
) -> tuple[list[T], str | None]:
    """One page of ``items`` from ``token`` (None: the first), at most ``limit`` (or
    ``default``); the next page's token, None at the end. ``invalid`` is the error code a
    bad token gets (``InvalidParameterException``, ``ValidationError``...)."""
    start = 0
    if token:
        try:
            start = int(token)
        except ValueError:
            raise AwsError(invalid, f"invalid nextToken {token!r}") from None
        if not 0 <= start <= len(items):
            raise AwsError(invalid, f"invalid nextToken {token!r}")
    size = limit or default
    end = start + size
    return list(items[start:end]), (str(end) if end < len(items) else None)
