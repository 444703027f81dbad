"""Opaque list cursors: where the next page starts, signed so a client cannot forge one.

A cursor holds the last row of a page as ``(created_at, id)``, the list's order. The next page is
the rows strictly after it in that order, so rows inserted meanwhile (all newer) never shift a
page: nothing is seen twice or missed. It also holds a fingerprint of the filters it was made for
and when it was made: a cursor reused with other filters, or older than ``MAX_AGE_S``, is refused
as stale rather than silently answering a different question.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from gcdial.serve.problems import ApiProblem

__all__ = ["MAX_AGE_S", "decode_cursor", "encode_cursor", "filters_fingerprint", "page_of"]

T = TypeVar("T")

MAX_AGE_S = 7 * 24 * 3600
_VERSION = 1
_MAC_BYTES = 16


def filters_fingerprint(filters: Mapping[str, object]) -> str:
    """A short digest of a list's filters (``None`` ones left out), to bind a cursor to them."""
    kept = {name: value for name, value in filters.items() if value is not None}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(key: bytes, last: tuple[float, str], fingerprint: str, *, now: float) -> str:
    """The cursor for the page after the one ending at ``last``."""
    payload = json.dumps([_VERSION, last[0], last[1], fingerprint, int(now)]).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def _refuse(why: str) -> ApiProblem:
    return ApiProblem(
        400,
        "invalid_cursor",
        f"cursor: {why}",
        hint="Use the `next` value of the previous page as it was given, with the same "
        "filters; or start again without a cursor.",
        path="query:cursor",
    )


def decode_cursor(key: bytes, cursor: str, fingerprint: str, *, now: float) -> tuple[float, str]:
    """The ``(created_at, id)`` a cursor continues after; a 400 naming ``cursor`` when it was
    altered, made for other filters, or is too old."""
    try:
        encoded, mac_text = cursor.split(".")
        payload, mac = _unb64(encoded), _unb64(mac_text)
    except ValueError:
        raise _refuse("not a cursor this service gave out.") from None
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise _refuse("not a cursor this service gave out (it was altered or is from elsewhere).")
    version, created_at, call_id, made_for, issued = json.loads(payload)
    if version != _VERSION or made_for != fingerprint:
        raise _refuse("it was made for other filters; send the same filters as the first page.")
    if now - issued > MAX_AGE_S:
        raise _refuse("it is stale (older than 7 days).")
    return float(created_at), str(call_id)


def page_of(
    rows: Sequence[T],
    position: Callable[[T], tuple[float, str]],
    before: tuple[float, str] | None,
    limit: int,
) -> tuple[list[T], bool]:
    """For lists read whole (not from SQL): the rows after ``before`` in the newest-first
    ``(created_at, id)`` order, at most ``limit`` of them, and whether more follow."""
    ordered = sorted(rows, key=position, reverse=True)
    after = [row for row in ordered if before is None or position(row) < before]
    return after[:limit], len(after) > limit
