"""Bounds of the API's ids, cursors and numbers, in one place: every one has a limit, and a value
past it gets a 4xx that names the parameter, never an overflow deep in a store.

(No ``from __future__ import annotations``: FastAPI reads these annotations.)
"""

from typing import Annotated

from fastapi import Path

from gcdial.serve.problems import ApiProblem

__all__ = [
    "MAX_EVENT_ID",
    "MAX_ID_CHARS",
    "CallId",
    "CampaignId",
    "WebhookId",
    "event_cursor",
]

MAX_EVENT_ID = 2**62
"""The largest event id a cursor may name: SQLite INTEGER and PostgreSQL bigint hold 2**63-1."""
MAX_ID_CHARS = 64

CallId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_-]+$")]
CampaignId = Annotated[str, Path(pattern=r"^cmp_[a-z0-9]{1,32}$", description="cmp_...")]
WebhookId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_-]+$")]


def event_cursor(raw: str | None, *, where: str) -> int | None:
    """An event id sent as text (``Last-Event-ID``): None when absent, else 0..MAX_EVENT_ID in
    ASCII digits; anything else is a 400 naming ``where`` (e.g. ``header:Last-Event-ID``)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_EVENT_ID:
        name = where.split(":", 1)[-1]
        raise ApiProblem(
            400,
            "bad_event_id",
            f"{name} must be an event id: a whole number from 0 to {MAX_EVENT_ID}.",
            hint="Send the id of the last event received, or nothing to start from now.",
            path=where,
        )
    return int(text)
