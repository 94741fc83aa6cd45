"""Page sizes and opaque page tokens, bound to the query they were issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from lanesight.reporting.model import InvalidArgument, PageInfo, PageRequest

T = TypeVar("T")


def fingerprint(*parts: Any) -> str:
    """A short digest of a query (report name, filter, options) that tokens carry."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def page_size(page: PageRequest, default: int, maximum: int) -> int:
    """The effective page size, or InvalidArgument naming page.page_size."""
    if page.page_size < 0:
        raise InvalidArgument("page.page_size", "must not be negative")
    if page.page_size > maximum:
        raise InvalidArgument("page.page_size", f"must be at most {maximum}")
    return page.page_size or default


def encode_token(query: str, position: dict[str, Any]) -> str:
    """An opaque token for ``position`` within the query with fingerprint ``query``."""
    payload = json.dumps({"q": query, **position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_token(token: str, query: str) -> dict[str, Any]:
    """The position a token holds; InvalidArgument if it is not one of ours for this query."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument("page.page_token", "not a page token this server issued") from None
    if not isinstance(data, dict) or "q" not in data:
        raise InvalidArgument("page.page_token", "not a page token this server issued")
    if data["q"] != query:
        raise InvalidArgument("page.page_token", "was issued for a different query or filter")
    return data


def paginate(
    rows: Sequence[T], page: PageRequest, query: str, default: int, maximum: int
) -> tuple[list[T], PageInfo]:
    """One page of fully computed rows, with offset tokens."""
    size = page_size(page, default, maximum)
    offset = 0
    if page.page_token:
        position = decode_token(page.page_token, query)
        stored = position.get("o")
        if not isinstance(stored, int) or stored < 0:
            raise InvalidArgument("page.page_token", "not a page token this server issued")
        offset = stored
    chunk = list(rows[offset : offset + size])
    following = offset + size
    token = encode_token(query, {"o": following}) if following < len(rows) else ""
    return chunk, PageInfo(next_page_token=token, total_size=len(rows))
