"""Calling rules: the do-not-call list, the calling window in the recipient's time, retries.

Everything here is pure: time comes in as an aware ``now`` argument, nothing reads a clock.

Time zone of a contact, first match wins: the CSV ``timezone`` column; the zones of the number
(``phonenumbers``; several for some numbers, and then only instants legal in *all* of them
count); ``fallback_zone`` if configured. A number with no known zone (non-geographic ranges such
as +800) is skipped by default (``unknown_zone="skip"``), because dialing it at 3 a.m. local time
is exactly what the window exists to prevent; ``unknown_zone="any"`` dials it at any hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from gcdial.campaign.contact import Contact, is_valid_time_zone
from gcdial.errors import DncFileError, InputError, InvalidPhoneNumberError
from gcdial.phone import time_zones, to_e164

if TYPE_CHECKING:
    from gcdial.campaign.csvinput import RowProblem

__all__ = [
    "DEFAULT_WINDOW",
    "Action",
    "CallingWindow",
    "Decision",
    "DncFileError",
    "DoNotCallList",
    "RetryDecision",
    "RetryPolicy",
    "Rules",
    "UnknownZone",
]

# How far ahead to look for a legal instant before declaring a number's zones incompatible.
SEARCH_HORIZON: Final = timedelta(days=8)
_WINDOW_TEXT: Final = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """Local hours in which a recipient may be called: ``start`` inclusive, ``end`` exclusive.

    ``start`` after ``end`` means a window across midnight (e.g. 22:00-02:00); ``all_day``
    (written ``00:00-24:00``) means any hour.
    """

    start: time = time(8, 0)
    end: time = time(21, 0)
    all_day: bool = False

    def __post_init__(self) -> None:
        if self.start == self.end and not self.all_day:
            raise InputError(
                f"The calling window {self} is empty.",
                hint="Give different start and end times, e.g. 08:00-21:00.",
            )

    def __str__(self) -> str:
        if self.all_day:
            return "00:00-24:00"
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @classmethod
    def parse(cls, text: str) -> CallingWindow:
        """Read ``HH:MM-HH:MM`` (24-hour clock), refusing anything else with a clear error."""
        match = _WINDOW_TEXT.match(text)
        hint = "Write it as HH:MM-HH:MM on a 24-hour clock, e.g. 08:00-21:00."
        if match is None:
            raise InputError(f"Cannot read the calling window {text!r}.", hint=hint)
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise InputError(f"The calling window {text!r} has an impossible time.", hint=hint)
        end = time(0, 0) if h2 == 24 else time(h2, m2)
        if h2 == 24 and (h1, m1) == (0, 0):
            return cls(time(0, 0), time(0, 0), all_day=True)
        return cls(time(h1, m1), end)

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        if self.all_day:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_open(self, moment: datetime, zone: str) -> bool:
        """Whether ``moment`` is inside the window in ``zone``."""
        return self.contains(moment.astimezone(_zone(zone)).time().replace(tzinfo=None))

    def next_open(self, moment: datetime, zone: str) -> datetime:
        """The next instant after ``moment`` at which the window opens in ``zone`` (UTC)."""
        local = moment.astimezone(_zone(zone))
        for days in range(3):
            wall = datetime.combine(local.date() + timedelta(days=days), self.start)
            opening = wall.replace(tzinfo=_zone(zone)).astimezone(UTC)
            if opening > moment:
                return opening
        return moment + timedelta(days=1)

    def next_allowed(
        self, zones: Iterable[str], now: datetime, *, horizon: timedelta = SEARCH_HORIZON
    ) -> datetime | None:
        """The first instant at or after ``now`` inside the window in *every* zone; None if none
        within ``horizon`` (the zones are too far apart for the window)."""
        names = tuple(zones)
        moment = now.astimezone(UTC)
        limit = moment + horizon
        while moment <= limit:
            closed = [z for z in names if not self.is_open(moment, z)]
            if not closed:
                return moment
            # Each closed zone stays closed until its next opening, so no legal instant lies
            # before the latest of those openings.
            later = max(self.next_open(moment, z) for z in closed)
            moment = later if later > moment else moment + timedelta(minutes=1)
        return None


DEFAULT_WINDOW: Final = CallingWindow()


@dataclass(frozen=True, slots=True)
class DoNotCallList:
    """Numbers never to dial, in E.164; ``problems`` lists the lines that were not numbers."""

    numbers: frozenset[str] = frozenset()
    problems: tuple[RowProblem, ...] = ()
    file: str | None = None

    def __contains__(self, phone_e164: object) -> bool:
        return phone_e164 in self.numbers

    def __len__(self) -> int:
        return len(self.numbers)

    @classmethod
    def load(
        cls, path: str | Path, *, default_country: str = "US", strict: bool = False
    ) -> DoNotCallList:
        """Read one number per line (``#`` comments and blank lines allowed; a ``phone`` header
        line is ignored). Junk lines are reported in ``problems``, or raise with ``strict``."""
        # Here, not at the top: a single call without --dnc never loads the CSV reader.
        from gcdial.campaign.csvinput import PHONE_ALIASES, RowProblem, decoded_lines

        file = str(path)
        numbers: set[str] = set()
        problems: list[RowProblem] = []
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise DncFileError(
                f"cannot be read ({exc.strerror})",
                file=file,
                hint="Check the path of the do-not-call file.",
            ) from None
        with raw:
            for number, line in enumerate(decoded_lines(raw, file, error=DncFileError), start=1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                first = re.split(r"[,;\t]", text, maxsplit=1)[0].strip().strip('"')
                if number == 1 and first.lower().replace(" ", "_") in PHONE_ALIASES:
                    continue
                try:
                    numbers.add(to_e164(first, default_country=default_country))
                except InvalidPhoneNumberError as exc:
                    problems.append(
                        RowProblem(
                            file,
                            number,
                            None,
                            f"not a phone number ({exc.reason}): {first[:40]!r}",
                            "Put one number per line; start comments with #.",
                        )
                    )
        if strict and problems:
            shown = "\n".join(str(p) for p in problems[:20])
            raise DncFileError(
                f"{len(problems)} line(s) are not phone numbers and --strict is on:\n{shown}",
                file=file,
                hint="Fix or comment out those lines (#), or run without --strict to ignore them.",
            )
        return cls(frozenset(numbers), tuple(problems), file)


class UnknownZone(StrEnum):
    """What to do with a contact whose time zone cannot be known."""

    SKIP = "skip"  # do not dial it (default)
    ANY = "any"  # dial it at any hour


class Action(StrEnum):
    """What the rules say about a contact right now."""

    DIAL = "dial"
    DEFER = "defer"  # wait until ``Decision.at``
    SKIP = "skip"  # never dial it; ``Decision.outcome`` says why
    ENDED = "ended"  # the campaign ends before it may be dialed: leave it pending, stop


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one contact at one instant."""

    action: Action
    reason: str
    at: datetime | None = None
    outcome: str | None = None


def _default_delays() -> dict[str, timedelta]:
    return {"no_answer": timedelta(hours=1), "busy": timedelta(minutes=10)}


def _default_agent_side() -> frozenset[str]:
    return frozenset({"agent_no_answer", "agent_rejected"})


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to try a contact again after an outcome, and from when."""

    retry: bool
    at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries after a call ends: only for the outcomes in ``delays``, up to ``max_attempts``.

    Agent-side failures (the agent did not answer or rejected; the customer was never dialed)
    are retried with the next free agent after ``agent_retry_delay``, at most
    ``max_agent_retries`` times, without using up the customer's attempts.
    """

    max_attempts: int = 3
    delays: Mapping[str, timedelta] = field(default_factory=_default_delays)
    agent_side: frozenset[str] = field(default_factory=_default_agent_side)
    max_agent_retries: int = 3
    agent_retry_delay: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InputError(
                f"max attempts must be at least 1, not {self.max_attempts}.",
                hint="Use --max-attempts 1 to dial every contact once.",
            )

    def counts_as_attempt(self, outcome: str) -> bool:
        """Whether an outcome used one of the customer's attempts (agent-side failures do not)."""
        return outcome not in self.agent_side

    def after(
        self, outcome: str, *, attempts: int, agent_failures: int, now: datetime
    ) -> RetryDecision:
        """Decide after a call ended with ``outcome``; ``attempts`` counts customer attempts so
        far and ``agent_failures`` the agent-side failures so far (both including this one)."""
        if outcome in self.agent_side:
            if agent_failures <= self.max_agent_retries:
                return RetryDecision(True, now + self.agent_retry_delay, f"{outcome}: next agent")
            return RetryDecision(False, None, f"{outcome} {agent_failures} times: giving up")
        delay = self.delays.get(outcome)
        if delay is None:
            return RetryDecision(False, None, f"final outcome {outcome}")
        if attempts >= self.max_attempts:
            return RetryDecision(False, None, f"{outcome} after {attempts} attempt(s): giving up")
        return RetryDecision(True, now + delay, f"{outcome}: retry {attempts + 1}")


@dataclass(frozen=True, slots=True)
class Rules:
    """All calling rules of a campaign; ``check`` says whether a contact may be dialed now."""

    window: CallingWindow = DEFAULT_WINDOW
    dnc: DoNotCallList = field(default_factory=DoNotCallList)
    unknown_zone: UnknownZone = UnknownZone.SKIP
    fallback_zone: str | None = None
    end_at: datetime | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.fallback_zone is not None and not is_valid_time_zone(self.fallback_zone):
            raise InputError(
                f"Unknown fallback time zone {self.fallback_zone!r}.",
                hint="Use an IANA zone name such as America/New_York or Europe/London.",
            )
        if self.end_at is not None and self.end_at.tzinfo is None:
            raise InputError(
                "The campaign end time needs a time zone or offset.",
                hint="Write it like 2026-03-02T18:00:00-05:00 or 2026-03-02T23:00:00Z.",
            )

    def zones_for(self, contact: Contact) -> tuple[str, ...]:
        """The zones whose local time governs the contact; ``()`` when none is known."""
        if contact.tz:
            return (contact.tz,)
        zones = time_zones(contact.phone_e164)
        if zones:
            return zones
        return (self.fallback_zone,) if self.fallback_zone else ()

    def next_allowed_time(self, contact: Contact, now: datetime) -> datetime | None:
        """The first instant at or after ``now`` when the contact may be called; None if never."""
        return self._next_allowed(self.zones_for(contact), now)

    def _next_allowed(self, zones: tuple[str, ...], now: datetime) -> datetime | None:
        if not zones:
            return now if self.unknown_zone is UnknownZone.ANY else None
        return self.window.next_allowed(zones, now)

    def check(self, contact: Contact, now: datetime) -> Decision:
        """Dial now, wait until a later time, skip for good, or stop because the campaign ends."""
        if contact.phone_e164 in self.dnc:
            return Decision(Action.SKIP, "on the do-not-call list", outcome="do_not_call")
        zones = self.zones_for(contact)
        if not zones and self.unknown_zone is UnknownZone.SKIP:
            return Decision(
                Action.SKIP,
                f"no time zone is known for {contact.phone_e164}; give it in the timezone "
                "column or set a fallback time zone",
                outcome="unknown_time_zone",
            )
        if self.end_at is not None and now >= self.end_at:
            return Decision(Action.ENDED, "the campaign end time has passed")
        at = self._next_allowed(zones, now)  # the zones found above: looking them up is costly
        if at is None:
            return Decision(
                Action.SKIP,
                f"no time in {self.window} is inside the calling window in all of its time "
                f"zones ({', '.join(zones)}); give its zone in the timezone column",
                outcome="no_calling_hours",
            )
        if self.end_at is not None and at >= self.end_at:
            return Decision(Action.ENDED, "the campaign ends before its calling hours", at=at)
        if at <= now:
            return Decision(Action.DIAL, "inside the calling window", at=now)
        closed = [z for z in zones if not self.window.is_open(now, z)]
        local = ", ".join(f"{now.astimezone(_zone(z)):%H:%M} in {z}" for z in closed[:3])
        return Decision(Action.DEFER, f"outside the calling window {self.window} ({local})", at=at)
