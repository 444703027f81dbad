"""The resolution ladder: did an ambiguous create-call place the call? Placed, not placed, unknown.

A create-call POST whose answer was lost (timeout after sending, dropped connection, 5xx, 3xx, a
2xx without an id) may or may not have rung the customer. Every call gcdial places carries a
unique attempt id in its ``attributes``; the ladder looks for it:

1. *Live evidence*: a call snapshot on the agent's notifications topic whose participant carries
   the attempt id (or, when snapshots carry no attributes, the dialed number on a call of that
   agent that started after the intent) -> **placed**.
2. *Conversation details* (``POST /api/v2/analytics/conversations/details/query``): the agent's
   voice conversations around the intent, the attempt id in a participant's ``attributes`` ->
   **placed**. Nothing found, every page read, the settle time passed since the ambiguous answer
   and the live channel connected without a drop throughout -> **not placed**.
3. Anything less certain -> **unknown**, with the evidence gathered so far.

The decisions are pure functions of what was observed (:func:`decide`, :func:`match_snapshot`,
:func:`match_details`, :func:`search_interval`); the I/O (:func:`query_details`) is thin.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal

from gcdial.errors import ApiError, GcdialError, RateLimitedError

if TYPE_CHECKING:
    from gcdial.monitor.channel import Transport

__all__ = [
    "DETAILS_PATH",
    "AnalyticsAnswer",
    "Attempt",
    "Evidence",
    "LadderFacts",
    "LadderSettings",
    "Resolution",
    "Verdict",
    "decide",
    "details_query",
    "match_details",
    "match_snapshot",
    "new_attempt_id",
    "probe_query",
    "query_details",
    "search_interval",
]

DETAILS_PATH: Final = "/api/v2/analytics/conversations/details/query"
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 10
"""Pages read per details query; more hits than this many pages is 'too many to be sure'."""
INTERVAL_MARGIN_S: Final = 120.0
"""Widening of the search interval on both sides when the server's clock is known (Date header)."""
UNKNOWN_SKEW_S: Final = 3600.0
"""Widening when the server's clock was never seen: the local clock may be off by this much."""
MIN_DIGITS: Final = 7
UNTAGGED_SKEW_S: Final = 5.0
"""Clock skew allowed between the server's hosts when an untagged call is matched on its start:
too little could miss the attempt's own call (a wrong "not placed"), so it errs wide."""
LONG_PAST_S: Final = 600.0
"""Beyond the settle time: an attempt this much older is judged by the details alone."""


class Verdict(StrEnum):
    """What the ladder concluded about an attempt."""

    PLACED = "placed"
    NOT_PLACED = "not_placed"
    UNKNOWN = "unknown"


EvidenceSource = Literal["create", "live", "details", "settle", "channel", "resolver"]


@dataclass(frozen=True)
class Evidence:
    """One observation the verdict rests on: where it came from and what it showed."""

    source: EvidenceSource
    detail: str
    conversation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {"source": self.source, "detail": self.detail}
        if self.conversation_id is not None:
            data["conversationId"] = self.conversation_id
        return data


@dataclass(frozen=True)
class Resolution:
    """The verdict on an attempt, the conversation when placed, and the evidence behind it."""

    verdict: Verdict
    evidence: tuple[Evidence, ...] = ()
    conversation_id: str | None = None

    @property
    def safe_to_redial(self) -> bool:
        """True only for a proven ``not_placed``: dialing again cannot ring the customer twice."""
        return self.verdict is Verdict.NOT_PLACED

    @property
    def summary(self) -> str:
        """One line for people."""
        if self.verdict is Verdict.PLACED:
            return f"placed: conversation {self.conversation_id}"
        if self.verdict is Verdict.NOT_PLACED:
            return "not placed: safe to dial again"
        why = self.evidence[-1].detail if self.evidence else "no evidence either way"
        return f"still unknown: {why}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "verdict": self.verdict.value,
            "conversationId": self.conversation_id,
            "evidence": [item.to_dict() for item in self.evidence],
        }


def new_attempt_id() -> str:
    """A fresh, unique attempt id (a UUID4: unguessable, never reused)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Attempt:
    """One create-call attempt, as the ladder needs it: what was dialed, by whom, and when.

    ``sent_after`` is the server's time (its ``Date``) of the last response before the POST left,
    or None when the server's clock was never seen; ``sent_at`` is the local wall time. They bound
    the details search from below, widely. ``match_after`` is a tighter bound, a time the server's
    clock had surely passed when the POST left (:meth:`ServerClock.passed`): only an untagged call
    started after it can be this attempt's, so that an earlier call of the agent to the same
    number, long after the last ``Date`` seen, is not taken for it. None: ``sent_after`` serves.
    """

    attempt_id: str
    agent_id: str
    number: str
    sent_at: datetime
    sent_after: datetime | None = None
    attempt_key: str = "gcdialAttemptId"
    match_after: datetime | None = None

    @property
    def untagged_after(self) -> datetime | None:
        """The lower bound of an untagged call's start that may be this attempt's."""
        return self.match_after or self.sent_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the journal and ``gcdial resolve`` keep)."""
        return {
            "attemptId": self.attempt_id,
            "agentId": self.agent_id,
            "number": self.number,
            "sentAt": self.sent_at.isoformat(),
            "sentAfter": self.sent_after.isoformat() if self.sent_after else None,
            "matchAfter": self.match_after.isoformat() if self.match_after else None,
            "attemptKey": self.attempt_key,
        }


@dataclass(frozen=True)
class LadderSettings:
    """The ladder's knobs. ``settle_s`` is setting ``analytics_settle_s``."""

    settle_s: float = 120.0
    live_window_s: float = 15.0
    """How long to wait for live evidence before asking the details query (if it may settle)."""
    retry_s: float = 5.0
    """Pause before asking the details query again after a 429 or an error."""
    page_size: int = PAGE_SIZE
    max_pages: int = MAX_PAGES


def digits(number: str) -> str:
    """The digits of a number as Genesys may spell it (``tel:+1415...``, ``+1 415 ...``)."""
    return re.sub(r"\D", "", number.split("@", 1)[0])


def same_number(dialed: str, seen: object) -> bool:
    """Whether ``seen`` (an address or dnis) is the dialed number, tolerant of its spelling."""
    if not isinstance(seen, str):
        return False
    ours, theirs = digits(dialed), digits(seen)
    if len(ours) < MIN_DIGITS or len(theirs) < MIN_DIGITS:
        return False
    return ours.endswith(theirs) or theirs.endswith(ours)


def _started(snapshot: Mapping[str, Any]) -> datetime | None:
    from gcdial.monitor.events import parse_time, participants_of  # see match_snapshot

    times = [
        parse_time(p.get("startTime") or p.get("connectedTime"))
        for p in participants_of(snapshot).values()
    ]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def match_snapshot(attempt: Attempt, snapshot: Mapping[str, Any]) -> Evidence | None:
    """Live evidence in one call snapshot (a notification frame or a GET), or None.

    The attempt id in a participant's attributes is proof. A snapshot carrying no attempt tag (no
    attributes in frames) that is a call of this agent to the dialed number, started after the
    intent, is taken as the call.
    """
    # Imported here for start-up time: snapshots are matched only after a lost answer, so a call
    # that goes well never loads the monitor's event model.
    from gcdial.monitor.events import Role, participants_of, role_of

    conversation_id = snapshot.get("id")
    if not isinstance(conversation_id, str):
        return None
    participants = list(participants_of(snapshot).values())
    tagged = False
    for participant in participants:
        attributes = participant.get("attributes")
        if isinstance(attributes, Mapping) and attempt.attempt_key in attributes:
            tagged = True
            if attributes.get(attempt.attempt_key) == attempt.attempt_id:
                return Evidence(
                    "live",
                    f"a call frame of conversation {conversation_id} carries attempt id "
                    f"{attempt.attempt_id}",
                    conversation_id,
                )
    after = attempt.untagged_after
    if tagged or after is None:
        return None
    agent_here = any(
        role_of(p) is Role.AGENT
        and isinstance(p.get("user"), Mapping)
        and p["user"].get("id") == attempt.agent_id
        for p in participants
    )
    number_here = any(
        role_of(p) is Role.CUSTOMER and (same_number(attempt.number, p.get("address")))
        for p in participants
    )
    started = _started(snapshot)
    if agent_here and number_here and started is not None and started >= after:
        return Evidence(
            "live",
            f"conversation {conversation_id} (no attributes in frames) is this agent's call to "
            f"{attempt.number}, started {started.isoformat()} after the attempt",
            conversation_id,
        )
    return None


def search_interval(
    attempt: Attempt, server_now: datetime | None, *, margin_s: float = INTERVAL_MARGIN_S
) -> tuple[datetime, datetime]:
    """The details query's interval: from before the intent to after now, in the server's time.

    A clock skew only ever widens it: without the server's clock (no ``Date`` seen) the local
    times are widened by :data:`UNKNOWN_SKEW_S` on both sides.
    """
    margin = timedelta(seconds=margin_s)
    if attempt.sent_after is not None and server_now is not None:
        return attempt.sent_after - margin, max(server_now, attempt.sent_after) + margin
    skew = timedelta(seconds=UNKNOWN_SKEW_S)
    start = (attempt.sent_after or attempt.sent_at) - skew - margin
    end = max(server_now or attempt.sent_at, datetime.now(UTC)) + skew + margin
    return start, end


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def details_query(
    attempt: Attempt, interval: tuple[datetime, datetime], *, page: int, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """The ``ConversationQuery`` body: the agent's voice conversations in ``interval``."""
    start, end = interval
    return {
        "interval": f"{_iso(start)}/{_iso(end)}",
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": page_size, "pageNumber": page},
        "segmentFilters": [
            {
                "type": "and",
                "predicates": [
                    {
                        "type": "dimension",
                        "dimension": "userId",
                        "operator": "matches",
                        "value": attempt.agent_id,
                    },
                    {
                        "type": "dimension",
                        "dimension": "mediaType",
                        "operator": "matches",
                        "value": "voice",
                    },
                ],
            }
        ],
    }


def probe_query(now: datetime) -> dict[str, Any]:
    """A details query for the minute before ``now``, one conversation a page: to learn whether
    the credentials may run the query at all (``gcdial doctor``)."""
    start = now - timedelta(minutes=1)
    return {
        "interval": f"{_iso(start)}/{_iso(now)}",
        "paging": {"pageSize": 1, "pageNumber": 1},
    }


AnswerStatus = Literal["found", "not_found", "forbidden", "rate_limited", "error", "incomplete"]


@dataclass(frozen=True)
class AnalyticsAnswer:
    """What the details query said: found, not found (every page read), or why it could not."""

    status: AnswerStatus
    detail: str
    conversation_id: str | None = None

    @property
    def evidence(self) -> Evidence:
        """This answer as evidence."""
        return Evidence("details", self.detail, self.conversation_id)


def _sessions(participant: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    sessions = participant.get("sessions")
    return [s for s in sessions if isinstance(s, Mapping)] if isinstance(sessions, list) else []


def match_details(
    attempt: Attempt, conversations: Sequence[Mapping[str, Any]]
) -> AnalyticsAnswer | None:
    """The attempt among details conversations: found, unusable (``incomplete``), or None.

    The attempt id in a participant's attributes: found. A conversation carrying no attempt tag
    at all (the details may leave attributes out, or the route may not attach them) is matched on
    the agent's call to the dialed number after the intent: exactly one such is found, more than
    one is ``incomplete``, and so is one whose numbers cannot be read, so that a "not found" is
    never drawn from conversations that could be the attempt.
    """
    from gcdial.monitor.events import parse_time  # see match_snapshot

    by_number: list[str] = []
    unreadable = 0
    for conversation in conversations:
        cid = conversation.get("conversationId")
        cid = cid if isinstance(cid, str) else None
        raw = conversation.get("participants")
        participants = [p for p in raw if isinstance(p, Mapping)] if isinstance(raw, list) else []
        tagged = False
        for participant in participants:
            attributes = participant.get("attributes")
            if isinstance(attributes, Mapping) and attempt.attempt_key in attributes:
                tagged = True
                if attributes.get(attempt.attempt_key) == attempt.attempt_id:
                    return AnalyticsAnswer(
                        "found",
                        f"the conversation details of {cid} carry attempt id {attempt.attempt_id}",
                        cid,
                    )
        if tagged:
            continue  # another attempt's call
        numbers = [s.get("dnis") for p in participants for s in _sessions(p)]
        if not any(isinstance(n, str) and len(digits(n)) >= MIN_DIGITS for n in numbers):
            unreadable += 1
            continue
        started = parse_time(conversation.get("conversationStart"))
        lower = attempt.untagged_after
        after = lower is None or started is None or started >= lower
        if cid is not None and after and any(same_number(attempt.number, n) for n in numbers):
            by_number.append(cid)
    if len(by_number) == 1 and not unreadable:
        return AnalyticsAnswer(
            "found",
            f"conversation {by_number[0]} is the agent's only untagged call to {attempt.number} "
            "after the attempt",
            by_number[0],
        )
    if by_number:
        return AnalyticsAnswer(
            "incomplete",
            f"{len(by_number)} untagged calls of the agent to {attempt.number} after the attempt "
            f"({', '.join(by_number)}): which one (if any) is this attempt cannot be told",
        )
    if unreadable:
        return AnalyticsAnswer(
            "incomplete",
            f"{unreadable} untagged conversation(s) of the agent have no readable dialed number, "
            "so the attempt cannot be ruled out",
        )
    return None


async def query_details(
    transport: Transport,
    attempt: Attempt,
    interval: tuple[datetime, datetime],
    *,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
) -> AnalyticsAnswer:
    """Run the details query, page by page, and say what it shows about ``attempt``.

    Never raises for the API's refusals: 403 (no permission), 429 and other errors come back as
    answers that keep the attempt unknown.
    """
    seen: list[Mapping[str, Any]] = []
    total: int | None = None
    for page in range(1, max_pages + 1):
        body = details_query(attempt, interval, page=page, page_size=page_size)
        try:
            response = await transport.request("POST", DETAILS_PATH, json=body, idempotent=True)
            data = response.json()
        except RateLimitedError as exc:
            return AnalyticsAnswer("rate_limited", f"the details query was rate limited ({exc})")
        except ApiError as exc:
            if exc.status == 403:
                return AnalyticsAnswer(
                    "forbidden",
                    "the credentials may not run the conversation details query (permission "
                    "analytics:conversationDetail:view)",
                )
            if exc.status == 429:
                return AnalyticsAnswer("rate_limited", "the details query was rate limited")
            return AnalyticsAnswer("error", f"the details query failed: {exc.message}")
        except (GcdialError, ValueError) as exc:
            return AnalyticsAnswer("error", f"the details query failed: {exc}")
        if not isinstance(data, Mapping):
            return AnalyticsAnswer("error", "the details query answered something not an object")
        raw = data.get("conversations") or []
        conversations = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
        hits = data.get("totalHits")
        total = hits if isinstance(hits, int) else total
        seen += conversations
        found = match_details(attempt, conversations)
        if found is not None and found.status == "found":
            return found
        if len(conversations) < page_size or (total is not None and len(seen) >= total):
            break
    else:
        return AnalyticsAnswer(
            "incomplete",
            f"the agent has more than {max_pages * page_size} conversations around the attempt "
            f"({total if total is not None else 'many'} hits); not all could be searched",
        )
    final = match_details(attempt, seen)
    if final is not None:
        return final
    start, end = interval
    return AnalyticsAnswer(
        "not_found",
        f"no conversation of the agent between {_iso(start)} and {_iso(end)} carries attempt "
        f"id {attempt.attempt_id} ({len(seen)} searched)",
    )


@dataclass(frozen=True)
class LadderFacts:
    """Everything observed about one ambiguous attempt; :func:`decide` turns it into a verdict.

    ``settled``: the settle time has passed since the ambiguous answer (by the injected clock).
    ``channel_healthy``: the notifications channel, subscribed to the agent's topic, stayed
    connected without a single drop from the ambiguous answer until now.
    """

    live: Evidence | None = None
    details: AnalyticsAnswer | None = None
    settled: bool = False
    channel_healthy: bool = False
    settle_s: float = 120.0
    notes: tuple[Evidence, ...] = field(default=())
    long_past: bool = False
    """The attempt is so old (settle time + :data:`LONG_PAST_S` on the server's clock) that a call
    it created, however late, shows in the details by now: no live channel is needed."""


def decide(facts: LadderFacts) -> Resolution:
    """The verdict. ``not_placed`` needs ALL of: details searched in full and nothing found,
    settle time passed, channel healthy throughout. Anything less is ``unknown``."""
    if facts.live is not None:
        return Resolution(Verdict.PLACED, (*facts.notes, facts.live), facts.live.conversation_id)
    details = facts.details
    if details is not None and details.status == "found":
        return Resolution(Verdict.PLACED, (*facts.notes, details.evidence), details.conversation_id)
    evidence = list(facts.notes)
    if details is not None:
        evidence.append(details.evidence)
    if details is None or details.status != "not_found":
        why = (
            "the conversation details query was not run (no analytics permission, or no time)"
            if details is None
            else "without a complete conversation details answer, 'not placed' cannot be proven"
        )
        evidence.append(Evidence("resolver", why))
        return Resolution(Verdict.UNKNOWN, tuple(evidence))
    if not facts.settled:
        evidence.append(
            Evidence(
                "settle",
                f"the details may not show a call yet: the settle time ({facts.settle_s:g} s) "
                "had not passed",
            )
        )
        return Resolution(Verdict.UNKNOWN, tuple(evidence))
    if facts.long_past and not facts.channel_healthy:
        evidence.append(
            Evidence(
                "settle",
                f"the attempt is older than the settle time ({facts.settle_s:g} s) plus "
                f"{LONG_PAST_S:g} s: a call it created would show in the details by now",
            )
        )
        return Resolution(Verdict.NOT_PLACED, tuple(evidence))
    if not facts.channel_healthy:
        evidence.append(
            Evidence(
                "channel",
                "the live channel was not connected throughout (dropped, lost, or never "
                "opened), so a call created late could have gone unseen",
            )
        )
        return Resolution(Verdict.UNKNOWN, tuple(evidence))
    evidence.append(
        Evidence(
            "settle",
            f"settle time of {facts.settle_s:g} s passed and the live channel stayed connected "
            "with no call frame carrying the attempt",
        )
    )
    return Resolution(Verdict.NOT_PLACED, tuple(evidence))


def first_match(attempt: Attempt, snapshots: Iterable[Mapping[str, Any]]) -> Evidence | None:
    """The first live evidence among ``snapshots``."""
    for snapshot in snapshots:
        found = match_snapshot(attempt, snapshot)
        if found is not None:
            return found
    return None
