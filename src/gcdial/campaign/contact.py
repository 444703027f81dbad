"""One contact to call, and whether a time zone name is one this system knows.

Apart from :mod:`gcdial.campaign.csvinput` (which reads them from a CSV and re-exports both), so
that a single ``gcdial call``, whose calling rules ask about one contact, does not load the CSV
reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Contact", "is_valid_time_zone"]


@dataclass(frozen=True, slots=True)
class Contact:
    """One validated row: who to call, optionally by which agent, with what call attributes."""

    line: int
    phone_e164: str
    name: str | None = None
    agent: str | None = None
    external_id: str | None = None
    tz: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def is_valid_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this system knows (``Europe/London``, ``UTC``)."""
    if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
