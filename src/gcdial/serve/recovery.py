"""A dead replica's dials, settled by evidence: the witness book and the recovery ladder.

A replica killed between sending a create-call and recording its answer leaves the call
``placing``. Another replica finds it when its claim goes stale and runs the resolution ladder
(:mod:`gcdial.resolve`) on the attempt recorded with the row before the POST left:

1. *Live evidence*: a call frame on the agent's topic carrying the attempt id -> placed.
2. *Conversation details*: the attempt id in a conversation of the agent -> placed.
3. *Not placed* only with a **witness**: the details searched in full and nothing found, asked
   at least the settle time after the start of a window over which this replica's notifications
   channel was subscribed to the agent and connected without a single drop, with no frame of the
   attempt seen in the window. The details show every call created up to the settle time before
   they were asked, so together they cover every moment a call could have been created (and
   only the frames since then must still be in the book). A call to the attempt's number that no
   frame ever tagged with an attempt id, seen in the window, is a doubt: it could be this
   attempt's own call. Without such a window (no channel, a drop, a doubt, no analytics
   permission, too many conversations) the call stays ``unknown``, with what was looked at and
   what would settle it.

The other side of the race is the dialing process that only stalled past its claim: just before
its POST it checks that no replica holds the call's ladder lease (``Dials._fence``). The
ladder takes that lease before anything else and concludes "not placed" no sooner than
``grace_s`` after it, so a POST that passed the check just before the lease was taken has that
long to reach Genesys and show on the witness's channel. This narrows the race to a POST slower
than the grace; it is not a fence Genesys enforces.

Why the witness is kept in this replica's memory and not in the store: a witness is worth
something only together with the frames it saw. A "healthy from S to T" row written by replica B
would let replica C conclude "not placed" while only B saw the frames of that window: C would
need B's frames too. The replica that resolves is therefore its own witness: it watches the
agents of every dial in flight anywhere (``live_agents`` and ``placing`` calls, read every few
seconds), so that by the time a dead replica's claim goes stale it has usually been watching the
agent for longer than the settle time, and decides at once. A replica that started later (or
whose channel dropped) opens a fresh window and decides a settle time later. A replica that dies
mid-ladder takes its window with it; its ladder lease lapses and another replica starts over.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gcdial.http import AsyncApiTransport
from gcdial.monitor import CallMonitor, MonitorMode
from gcdial.resolve import (
    AnalyticsAnswer,
    Attempt,
    Evidence,
    LadderFacts,
    LadderSettings,
    Resolution,
    Verdict,
    decide,
    match_snapshot,
    query_details,
    same_number,
    search_interval,
)

__all__ = [
    "RECENT_SNAPSHOTS",
    "Window",
    "WitnessBook",
    "attempt_from_origin",
    "attempt_to_origin",
    "recovery_facts",
    "resolve_stale",
    "settles_it",
]

RECENT_SNAPSHOTS: Final = 20_000
"""Call frames kept for the ladder, trimmed to what it matches on (a few hundred bytes each); a
window from which a frame it needs was dropped is no witness."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Window:
    """A span over which this replica's channel watched an agent: from ``since`` (monotonic
    clock) while the channel's health mark stays ``mark``."""

    agent_id: str
    since: float
    mark: tuple[int, int] | None


class WitnessBook:
    """Which agents this replica's channel watches, since when, and the frames it brought.

    ``monitor.listen`` feeds :meth:`on_snapshot` every call frame of every watched agent; the
    book keeps the latest :data:`RECENT_SNAPSHOTS` with their arrival times.
    """

    def __init__(
        self,
        monitor: CallMonitor,
        *,
        clock: Clock = time.monotonic,
        attempt_key: str = "gcdialAttemptId",
    ) -> None:
        self.monitor = monitor
        self.clock = clock
        self.attempt_key = attempt_key
        self._windows: dict[str, Window] = {}
        self._recent: deque[tuple[float, Mapping[str, Any]]] = deque()
        self._dropped_until = float("-inf")
        self._lock = asyncio.Lock()
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        """Listen to the channel's frames (once)."""
        if self._stop is None:
            self._stop = self.monitor.listen(self.on_snapshot)

    def close(self) -> None:
        """Stop listening."""
        if self._stop is not None:
            self._stop()
            self._stop = None

    def on_snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """Keep one frame (the monitor calls this for every frame)."""
        self._recent.append((self.clock(), _trim(snapshot, self.attempt_key)))
        while len(self._recent) > RECENT_SNAPSHOTS:
            at, _ = self._recent.popleft()
            self._dropped_until = max(self._dropped_until, at)

    @property
    def watched(self) -> frozenset[str]:
        """The agents with a window (healthy or not)."""
        return frozenset(self._windows)

    async def watch(self, agent_ids: list[str]) -> None:
        """Watch these agents; a new window opens for each agent not yet watched, or watched
        on a channel that dropped since (the window is over)."""
        async with self._lock:
            wanted = [a for a in dict.fromkeys(agent_ids) if self.window(a) is None]
            if not wanted:
                return
            self.start()
            await self.monitor.watch_agents(wanted)
            # The subscription is in force from here: frames of calls created from now on come.
            mark, since = self.monitor.health_mark(), self.clock()
            for agent_id in wanted:
                self._windows[agent_id] = Window(agent_id, since, mark)

    def window(self, agent_id: str) -> Window | None:
        """The agent's window while its channel has stayed healthy since it opened."""
        found = self._windows.get(agent_id)
        if found is None or not self.monitor.healthy_since(found.mark):
            return None
        return found

    def intact(self, window: Window, *, needed_from: float | None = None) -> bool:
        """Whether ``window`` still witnesses: the channel has not dropped since its start and
        no frame it needs was dropped from the book: those that arrived since its start, or
        since ``needed_from`` if later (details asked at T show every call created before T
        less the settle time, so frames from before then are not needed)."""
        start = window.since if needed_from is None else max(window.since, needed_from)
        return self.monitor.healthy_since(window.mark) and self._dropped_until < start

    def seen(self, attempt: Attempt) -> Evidence | None:
        """Live evidence of ``attempt`` among the frames kept."""
        for _, snapshot in reversed(self._recent):
            found = match_snapshot(attempt, snapshot)
            if found is not None:
                return found
        return None

    def doubt(self, attempt: Attempt, since: float) -> Evidence | None:
        """A call to the attempt's number seen since ``since`` that no frame ever tagged with an
        attempt id and that :meth:`seen` could not match (its start unknown, or the attempt's
        times unknown): it could be this attempt's own call, so the window proves nothing.

        A frame with no customer yet (the agent's leg, before the customer is dialed) names no
        number and raises no doubt: the call's later frames, or its details, decide it.
        """
        from gcdial.monitor.events import participants_of  # see gcdial.resolve.match_snapshot

        tagged: set[object] = set()
        for _, snapshot in self._recent:
            for participant in participants_of(snapshot).values():
                attributes = participant.get("attributes")
                if isinstance(attributes, Mapping) and attempt.attempt_key in attributes:
                    tagged.add(snapshot.get("id"))
        for at, snapshot in self._recent:
            if at < since or snapshot.get("id") in tagged:
                continue
            if any(
                same_number(attempt.number, p.get("address"))
                for p in participants_of(snapshot).values()
            ):
                return Evidence(
                    "channel",
                    f"conversation {snapshot.get('id')} to {attempt.number} came with no attempt "
                    "id in the window: it could be this attempt's call",
                )
        return None


def _trim(snapshot: Mapping[str, Any], attempt_key: str) -> dict[str, Any]:
    """What the ladder matches a frame on: its id and, per participant, the id, purpose,
    address, user id, start and connect times, and the attempt id attribute alone."""
    from gcdial.monitor.events import participants_of  # see gcdial.resolve.match_snapshot

    participants = []
    for participant in participants_of(snapshot).values():
        kept: dict[str, Any] = {
            name: participant[name]
            for name in ("id", "purpose", "address", "startTime", "connectedTime")
            if name in participant
        }
        user = participant.get("user")
        if isinstance(user, Mapping) and isinstance(user.get("id"), str):
            kept["user"] = {"id": user["id"]}
        attributes = participant.get("attributes")
        if isinstance(attributes, Mapping) and attempt_key in attributes:
            kept["attributes"] = {attempt_key: attributes[attempt_key]}
        participants.append(kept)
    return {"id": snapshot.get("id"), "participants": participants}


def recovery_facts(
    *,
    live: Evidence | None,
    details: AnalyticsAnswer | None,
    window: Window | None,
    asked_at: float | None,
    intact: bool,
    settle_s: float,
    notes: tuple[Evidence, ...],
) -> LadderFacts:
    """The ladder's facts for a dead replica's attempt.

    ``settled``: the details were asked at least ``settle_s`` after the window opened, so they
    show every call created before it. ``channel_healthy``: the window is still intact, so every
    frame of a call created within it was seen. No window: no witness, never ``not_placed``.
    """
    if window is None:
        # No witness: whatever the details say, the verdict turns on the channel, never settles.
        settled = asked_at is not None
    else:
        settled = asked_at is not None and asked_at - window.since >= settle_s
    return LadderFacts(
        live=live,
        details=details,
        settled=settled,
        channel_healthy=window is not None and intact,
        settle_s=settle_s,
        notes=notes,
        long_past=False,  # never: a dead replica's attempt is settled only with a witness
    )


def settles_it(resolution: Resolution) -> str:
    """In words, what would settle an attempt the ladder left unknown."""
    sources = {item.source for item in resolution.evidence}
    details = [item for item in resolution.evidence if item.source == "details"]
    if details and "permission" in details[-1].detail:
        return (
            "the conversation details query (permission analytics:conversationDetail:view): a "
            "conversation carrying the attempt id means placed; none, with a live channel "
            "watching the agent for the settle time, means not placed"
        )
    if "channel" in sources:
        return (
            "a notifications channel subscribed to the agent and connected without a drop for "
            "the settle time, then a conversation details search that finds nothing"
        )
    return (
        "a complete conversation details search (a conversation carrying the attempt id means "
        "placed), asked the settle time after a live channel began watching the agent"
    )


def attempt_to_origin(attempt: Attempt) -> dict[str, Any]:
    """The attempt as kept with a ``placing`` row (``origin.attempt``)."""
    return attempt.to_dict()


def attempt_from_origin(data: object, *, agent_id: str | None) -> Attempt | None:
    """The attempt kept with a call row, or None when the row has none (a dial from before
    attempts were kept); ``agent_id`` when the row did not know the agent's id."""
    if not isinstance(data, Mapping):
        return None
    attempt_id, number = data.get("attemptId"), data.get("number")
    agent = data.get("agentId") or agent_id
    sent_at = _time(data.get("sentAt"))
    if not (isinstance(attempt_id, str) and isinstance(number, str) and isinstance(agent, str)):
        return None
    if sent_at is None:
        return None
    key = data.get("attemptKey")
    return Attempt(
        attempt_id=attempt_id,
        agent_id=agent,
        number=number,
        sent_at=sent_at,
        sent_after=_time(data.get("sentAfter")),
        attempt_key=key if isinstance(key, str) else "gcdialAttemptId",
        match_after=_time(data.get("matchAfter")),
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def resolve_stale(
    transport: AsyncApiTransport,
    book: WitnessBook,
    attempt: Attempt,
    *,
    ladder: LadderSettings,
    timeout_s: float,
    notes: tuple[Evidence, ...] = (),
    heartbeat: Callable[[], Awaitable[bool]] | None = None,
    sleep: Sleep = asyncio.sleep,
    grace_s: float = 0.0,
) -> Resolution:
    """The ladder for a dead replica's attempt, with this replica's channel as the witness.

    Asks the details at once (a call placed long ago shows there), then again once a window has
    been open for the settle time. Returns ``placed`` on any evidence of the call, ``not_placed``
    only per :func:`recovery_facts`, else ``unknown`` after ``timeout_s``. ``heartbeat`` is
    awaited between steps (renew the ladder's lease); False stops the ladder (unknown).
    ``grace_s``: no ``not_placed`` sooner than this after the start (see the module doc).
    """
    clock = book.clock
    started = clock()
    details: AnalyticsAnswer | None = None
    asked_at: float | None = None
    window: Window | None = None
    analytics = True
    while True:
        if heartbeat is not None and not await heartbeat():
            lost = Evidence("resolver", "another replica took this attempt over")
            return Resolution(Verdict.UNKNOWN, (*notes, lost))
        window = book.window(attempt.agent_id)
        if window is None:
            try:
                await book.watch([attempt.agent_id])
            except Exception as exc:  # no channel: no witness, details can still find it
                notes_exc = Evidence("channel", f"the agent could not be watched: {exc}")
                if notes_exc not in notes:
                    notes = (*notes, notes_exc)
            window = book.window(attempt.agent_id)
        live = book.seen(attempt)
        if live is not None:
            return decide(LadderFacts(live=live, notes=notes))
        now = clock()
        due = (
            window is not None
            and now - window.since >= ladder.settle_s
            and now - started >= grace_s
        )
        # Asked again now and then while the window opens: a call created just before the
        # dialer died shows in the details once they have ingested it.
        again = asked_at is None or now - asked_at >= max(ladder.retry_s, ladder.settle_s / 8)
        if analytics and (details is None or due or again):
            ask = clock()
            interval = search_interval(attempt, transport.server_clock.now())
            details = await query_details(
                transport, attempt, interval, page_size=ladder.page_size, max_pages=ladder.max_pages
            )
            asked_at = ask
            if details.status == "forbidden":
                analytics = False
            if details.status == "found":
                return decide(LadderFacts(details=details, notes=notes))
            if details.status == "not_found" and due and window is not None:
                watched = Evidence(
                    "channel",
                    f"this replica's notifications channel watched agent {attempt.agent_id} "
                    f"without a drop from {ask - window.since:.0f} s before the conversation "
                    "details were asked until the verdict: it is the witness",
                )
                doubt = book.doubt(attempt, window.since)
                if doubt is not None and doubt not in notes:
                    notes = (*notes, doubt)
                facts = recovery_facts(
                    live=book.seen(attempt),
                    details=details,
                    window=window,
                    asked_at=asked_at,
                    intact=book.intact(window, needed_from=ask - ladder.settle_s) and doubt is None,
                    settle_s=ladder.settle_s,
                    notes=notes if doubt is not None else (*notes, watched),
                )
                resolution = decide(facts)
                if resolution.verdict is not Verdict.UNKNOWN:
                    return resolution
        left = timeout_s - (clock() - started)
        if left <= 0 or not analytics:
            break
        blind = window is None and book.monitor.mode is MonitorMode.POLLING
        if blind and asked_at is not None and asked_at - started >= ladder.settle_s:
            break  # no channel will come back to witness; the details had their settle time
        if window is not None and not due:
            pause = max(window.since + ladder.settle_s, started + grace_s) - clock()
        else:
            pause = ladder.retry_s
        await sleep(max(0.05, min(pause, left, ladder.retry_s)))
    facts = recovery_facts(
        live=book.seen(attempt),
        details=details,
        window=window,
        asked_at=asked_at,
        intact=window is not None
        and asked_at is not None
        and book.intact(window, needed_from=asked_at - ladder.settle_s)
        and book.doubt(attempt, window.since) is None,
        settle_s=ladder.settle_s,
        notes=notes,
    )
    return decide(facts)
