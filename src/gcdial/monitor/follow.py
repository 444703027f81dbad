"""Follow calls to their end: a CallMonitor shares one channel among many calls and agents.

Subscribe first, then read: ``monitor.watch_agent(agent_id)`` before placing a call means no early
event can be missed; :meth:`CallMonitor.follow` then subscribes (if needed), GETs the conversation
once to catch up, and yields events until every participant has left. Without a channel (refused,
limit reached, WebSocket unreachable or lost for good) it polls instead, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from gcdial.errors import (
    CallWaitTimeoutError,
    ChannelUnavailableError,
    GcdialError,
    NotFoundError,
)
from gcdial.monitor.channel import (
    ChannelSettings,
    NotificationChannel,
    Transport,
    conversation_topic,
    user_topic,
)
from gcdial.monitor.events import (
    CallEvent,
    EventKind,
    Role,
    agent_wrapup,
    conversation_of,
    events_between,
    is_over,
    merge,
    parse_time,
    participants_of,
    role_of,
    wrapup_expected,
)
from gcdial.monitor.outcome import DEFAULT_RULES, Outcome, OutcomeRules, classify
from gcdial.monitor.polling import (
    PollSettings,
    conversation_path,
    get_conversation,
    poll_conversation,
)
from gcdial.monitor.wrapup import (
    WrapupWait,
    fetch_details_wrapup,
    is_agent,
    list_wrapup_codes,
)

logger = logging.getLogger("gcdial.monitor")

EARLY_CONVERSATIONS: Final = 256
EARLY_SNAPSHOTS_PER_CONVERSATION: Final = 64

Sleep = Callable[[float], Awaitable[None]]
_Item = Mapping[str, Any] | BaseException


class MonitorMode(StrEnum):
    """How calls are followed: ``auto`` tries the WebSocket and falls back to polling."""

    AUTO = "auto"
    WEBSOCKET = "websocket"
    POLLING = "polling"


class _Watch:
    """One follower of one conversation: its inbox and, when polling, its poller."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self.poller: asyncio.Task[None] | None = None
        # True once frames are known to arrive through a watched agent's topic.
        self.covered = False
        # When a poller stops: at the call's end, or (waiting for the wrap-up) at the wrap-up.
        self.done: Callable[[Mapping[str, Any]], bool] = is_over


class CallMonitor:
    """Follows many calls over one notifications channel, or by polling when it cannot have one.

    Use as ``async with CallMonitor(transport) as monitor:``; the transport is not closed.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        mode: MonitorMode | str = MonitorMode.AUTO,
        rules: OutcomeRules = DEFAULT_RULES,
        channel_settings: ChannelSettings | None = None,
        poll_settings: PollSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.transport = transport
        self.requested_mode = MonitorMode(mode)
        self.rules = rules
        self.channel_settings = channel_settings or ChannelSettings()
        self.poll_settings = poll_settings or PollSettings()
        self.clock = clock
        self.sleep = sleep
        self.channel: NotificationChannel | None = None
        self.fallback_reason: str | None = None
        self._mode: MonitorMode | None = None
        self._watches: dict[str, list[_Watch]] = {}
        self._early: OrderedDict[str, list[Mapping[str, Any]]] = OrderedDict()
        self._agents: set[str] = set()
        self._listeners: list[Callable[[Mapping[str, Any]], None]] = []
        self._start_lock = asyncio.Lock()
        self._wrapup_codes: dict[str, str] | None = None

    @property
    def mode(self) -> MonitorMode | None:
        """``websocket`` or ``polling`` once started (None before)."""
        return self._mode

    async def __aenter__(self) -> CallMonitor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the notifications channel (unless polling); idempotent."""
        async with self._start_lock:
            if self._mode is not None:
                return
            if self.requested_mode is MonitorMode.POLLING:
                self._mode = MonitorMode.POLLING
                return
            channel = NotificationChannel(
                self.transport,
                on_conversation=self._on_conversation,
                on_reconnected=self._catch_up,
                on_lost=self._on_channel_lost,
                settings=self.channel_settings,
                sleep=self.sleep,
            )
            try:
                await channel.open()
            except ChannelUnavailableError as exc:
                if self.requested_mode is MonitorMode.WEBSOCKET:
                    raise
                logger.warning("%s Following calls by polling.", exc.message)
                self.fallback_reason = exc.reason
                self._mode = MonitorMode.POLLING
                return
            self.channel = channel
            self._mode = MonitorMode.WEBSOCKET

    async def close(self) -> None:
        """Stop the channel and every poller; anyone still following gets a clear error."""
        for conversation_id, watches in self._watches.items():
            for watch in watches:
                await _cancel(watch.poller)
                watch.inbox.put_nowait(
                    GcdialError(
                        f"The call monitor was closed while following call {conversation_id}."
                    )
                )
        if self.channel is not None:
            await self.channel.close()

    async def watch_agent(self, agent_id: str) -> None:
        """Subscribe to every call of this agent, so a call placed next is seen from its start."""
        await self.watch_agents([agent_id])

    async def watch_agents(self, agent_ids: Iterable[str]) -> None:
        """:meth:`watch_agent` for many agents at once, in one subscriptions request."""
        ids = list(agent_ids)
        await self.start()
        self._agents.update(ids)
        if self._mode is MonitorMode.WEBSOCKET and self.channel is not None:
            await self.channel.subscribe([user_topic(agent_id) for agent_id in ids])

    def _watched_now(self, agent_id: str) -> bool:
        """Whether the agent's calls' frames arrive from now on: its topic is in force."""
        channel = self.channel
        return (
            self._mode is MonitorMode.WEBSOCKET
            and channel is not None
            and channel.in_force(user_topic(agent_id))
        )

    def listen(self, listener: Callable[[Mapping[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener`` with every call snapshot the channel brings (those already kept for
        watched agents first); returns the function that stops it."""
        for snapshots in list(self._early.values()):
            for snapshot in snapshots:
                listener(snapshot)
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def health_mark(self) -> tuple[int, int] | None:
        """A mark of the channel's state now; None when no live channel is connected."""
        channel = self.channel
        if self._mode is not MonitorMode.WEBSOCKET or channel is None or not channel.connected:
            return None
        return (id(channel), channel.drops)

    def watch_mark(self, agent_id: str) -> tuple[int, int] | None:
        """:meth:`health_mark` when every frame of the agent's calls arrives from now on (its
        topic is in force on a connected channel), else None. A call of that agent created
        after it needs no catch-up GET while ``healthy_since(mark)``: pass ``catch_up=False``
        to :meth:`follow` (its frames before the follower came are kept for it)."""
        return self.health_mark() if self._watched_now(agent_id) else None

    def healthy_since(self, mark: tuple[int, int] | None) -> bool:
        """Whether the channel has stayed connected, without a single drop, since ``mark``."""
        return mark is not None and self.health_mark() == mark

    async def follow(
        self,
        conversation_id: str,
        *,
        agent_id: str | None = None,
        timeout_s: float | None = None,
        catch_up: bool = True,
        wrapup: WrapupWait | None = None,
    ) -> AsyncGenerator[CallEvent, None]:
        """Yield the call's events until it is over; CallWaitTimeoutError after ``timeout_s``.

        An unknown conversation id raises ``gcdial.errors.NotFoundError``. Use with
        ``contextlib.aclosing`` if you may stop early. ``catch_up=False`` skips the first GET
        when ``agent_id`` is watched on a connected channel: pass it only when the channel has
        been healthy since before the call was placed (every frame of the call then arrives).

        ``wrapup``: once the call is over, go on until the agent's wrap-up arrives (a ``wrapup``
        event), for at most ``wrapup.timeout_s``, and only when one is expected
        (:func:`gcdial.monitor.events.wrapup_expected`). A wrap-up whose frame was missed is
        looked up once, by GET and then in conversation details; if neither has it, the stream
        simply ends (the outcome then says ``wrapup_missing``).
        """
        conversation_path(conversation_id)
        deadline = self.clock() + timeout_s if timeout_s is not None else None
        await self.start()
        watch = self._register(conversation_id)
        state: dict[str, Any] | None = None
        try:
            covered = not catch_up and agent_id is not None and self._watched_now(agent_id)
            first = await self._subscribe(watch, agent_id)
            if first is None and not covered:
                first = await get_conversation(self.transport, conversation_id)
            if first is not None:
                watch.inbox.put_nowait(first)
            if self._mode is MonitorMode.POLLING:
                self._start_poller(watch)
            while True:
                item = await self._next(watch, self._recheck_at(state, deadline))
                if item is None and (deadline is None or self.clock() < deadline):
                    # Silence on a live channel: read the call once (a lost frame, its end).
                    try:
                        item = await get_conversation(self.transport, conversation_id)
                    except NotFoundError:
                        raise
                    except GcdialError as exc:
                        logger.warning("re-reading silent call %s failed: %s", conversation_id, exc)
                        continue
                if item is None:
                    if is_over(state):  # the wrap-up's time ran out
                        for event in await self._wrapup_fallback(conversation_id, state):
                            yield event
                        return
                    assert timeout_s is not None
                    outcome = classify(state or {}, rules=self.rules)
                    raise CallWaitTimeoutError(conversation_id, timeout_s, outcome)
                if isinstance(item, BaseException):
                    raise item
                events = events_between(state, item)
                was_over = is_over(state)
                state = merge(state, item)
                for event in events:
                    yield await self._named(event)
                if not is_over(state):
                    continue
                if (
                    wrapup is None
                    or agent_wrapup(state) is not None
                    or not wrapup_expected(state, acd=wrapup.acd, non_acd=wrapup.non_acd)
                ):
                    return
                if not was_over:
                    # After-call work: wait for the frame that brings the wrap-up.
                    deadline = self.clock() + wrapup.timeout_s
                    watch.done = _has_wrapup
                    if watch.poller is not None:
                        await _cancel(watch.poller)
                        watch.poller = None
                        self._start_poller(watch)
        finally:
            await self._unregister(watch)

    async def wait(
        self,
        conversation_id: str,
        *,
        agent_id: str | None = None,
        timeout_s: float | None = None,
        on_event: Callable[[CallEvent], None] | None = None,
        catch_up: bool = True,
        wrapup: WrapupWait | None = None,
    ) -> Outcome:
        """Follow the call to its end (and its wrap-up, if asked) and return its outcome
        (``on_event`` sees each event)."""
        events: list[CallEvent] = []
        stream = self.follow(
            conversation_id,
            agent_id=agent_id,
            timeout_s=timeout_s,
            catch_up=catch_up,
            wrapup=wrapup,
        )
        async with contextlib.aclosing(stream):
            async for event in stream:
                events.append(event)
                if on_event is not None:
                    on_event(event)
        outcome = classify(events, rules=self.rules)
        if wrapup is not None and outcome.wrapup is None:
            final = conversation_of(events)
            if wrapup_expected(final, acd=wrapup.acd, non_acd=wrapup.non_acd):
                outcome = replace(outcome, wrapup_missing=True)
        return outcome

    async def _wrapup_fallback(
        self, conversation_id: str, state: Mapping[str, Any] | None
    ) -> list[CallEvent]:
        """The wrap-up's frame never came: one GET, then one conversation-details query."""
        try:
            snapshot = await get_conversation(self.transport, conversation_id)
        except GcdialError as exc:
            logger.info("looking up the wrap-up of %s: %s", conversation_id, exc)
            snapshot = None
        if snapshot is not None and agent_wrapup(snapshot) is not None:
            return [
                await self._named(e)
                for e in events_between(state, snapshot)
                if e.kind is EventKind.WRAPUP
            ]
        ended = [t for p in participants_of(state).values() if (t := parse_time(p.get("endTime")))]
        around = max(ended) if ended else datetime.now(UTC)
        found = await fetch_details_wrapup(self.transport, conversation_id, around)
        if found is None:
            return []
        agent = next((p for p in participants_of(state).values() if is_agent(p)), {})
        pid = agent.get("id")
        return [
            await self._named(
                CallEvent(
                    kind=EventKind.WRAPUP,
                    conversation_id=conversation_id,
                    at=found.at,
                    role=Role.AGENT,
                    participant_id=pid if isinstance(pid, str) else None,
                    participant=agent,
                    wrapup=found,
                )
            )
        ]

    async def _named(self, event: CallEvent) -> CallEvent:
        """A wrap-up event with its code's name: the topic's and the details' wrap-ups carry the
        code's id only, so the org's codes are listed once per monitor to name them."""
        wrapup = event.wrapup
        if wrapup is None or wrapup.name is not None or wrapup.code is None:
            return event
        return replace(event, wrapup=wrapup.named(await self._wrapup_names()))

    async def _wrapup_names(self) -> Mapping[str, str]:
        """The org's wrap-up codes (id -> name), asked once per monitor, for details' ids."""
        if self._wrapup_codes is None:
            try:
                self._wrapup_codes = await list_wrapup_codes(self.transport)
            except GcdialError as exc:
                logger.info("listing the wrap-up codes failed: %s", exc)
                return {}
        return self._wrapup_codes

    def _recheck_at(self, state: Mapping[str, Any] | None, deadline: float | None) -> float | None:
        """When to stop waiting for the next frame: the deadline, or sooner, on a channel, when
        a live call has been silent for ``silent_recheck_s`` (the poller reads it otherwise)."""
        if self._mode is not MonitorMode.WEBSOCKET or is_over(state):
            return deadline
        silent = self.clock() + self.channel_settings.silent_recheck_s
        return silent if deadline is None else min(deadline, silent)

    async def _next(self, watch: _Watch, deadline: float | None) -> _Item | None:
        if deadline is None:
            return await watch.inbox.get()
        left = deadline - self.clock()
        if not watch.inbox.empty():
            return watch.inbox.get_nowait()
        if left <= 0:
            return None
        # The deadline is on the injected clock, so the wait is the injected sleep (a sandbox's
        # accelerated clock, a test's fake one), not asyncio's real-time timeout.
        getter = asyncio.ensure_future(watch.inbox.get())
        timer = asyncio.ensure_future(self.sleep(left))
        try:
            await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None

    def _register(self, conversation_id: str) -> _Watch:
        watch = _Watch(conversation_id)
        self._watches.setdefault(conversation_id, []).append(watch)
        for snapshot in self._early.pop(conversation_id, []):
            watch.inbox.put_nowait(snapshot)
            watch.covered = True
        return watch

    async def _unregister(self, watch: _Watch) -> None:
        await _cancel(watch.poller)
        watches = self._watches.get(watch.conversation_id, [])
        if watch in watches:
            watches.remove(watch)
        if not watches:
            self._watches.pop(watch.conversation_id, None)
            if self.channel is not None:
                self.channel.forget([conversation_topic(watch.conversation_id)])

    async def _subscribe(self, watch: _Watch, agent_id: str | None) -> dict[str, Any] | None:
        """Make sure the call's frames reach ``watch``; returns the first snapshot if it GOT one.

        A call of a watched agent needs no topic of its own (its frames already arrive), which
        saves a subscriptions PUT per call; finding that out may take the catch-up GET early.
        """
        channel = self.channel
        if self._mode is not MonitorMode.WEBSOCKET or channel is None or not channel.alive:
            return None
        first: dict[str, Any] | None = None
        try:
            if agent_id is not None:
                await self.watch_agent(agent_id)
                return None
            if watch.covered:
                return None
            if self._agents:
                # Only an agent whose topic was in force before the GET covers the call: frames
                # after the GET then arrive. An agent still being subscribed (another task's
                # watch in flight) does not: the call's end could fall in between and be lost.
                watched = {a for a in self._agents if self._watched_now(a)}
                first = await get_conversation(self.transport, watch.conversation_id)
                if _agent_ids(first) & watched:
                    return first
            await channel.subscribe([conversation_topic(watch.conversation_id)])
        except GcdialError as exc:
            if isinstance(exc, NotFoundError):
                raise
            logger.warning(
                "could not subscribe to call %s (%s); polling it", watch.conversation_id, exc
            )
            self._start_poller(watch)
        # Subscribed after the early GET: the gap between the two is caught by GETting again.
        return None

    def _start_poller(self, watch: _Watch, *, first_delay_s: float | None = None) -> None:
        if watch.poller is not None and not watch.poller.done():
            return
        watch.poller = asyncio.create_task(
            poll_conversation(
                self.transport,
                watch.conversation_id,
                deliver=watch.inbox.put_nowait,
                settings=self.poll_settings,
                sleep=self.sleep,
                first_delay_s=first_delay_s,
                done=watch.done,
            ),
            name=f"gcdial-poll-{watch.conversation_id}",
        )

    def _on_conversation(self, snapshot: Mapping[str, Any]) -> None:
        conversation_id = snapshot.get("id")
        if not isinstance(conversation_id, str):
            return
        for listener in list(self._listeners):
            try:
                listener(snapshot)
            except Exception:  # a listener's bug must not stop the channel
                logger.exception("a call snapshot listener failed")
        watches = self._watches.get(conversation_id)
        if watches:
            for watch in watches:
                watch.inbox.put_nowait(snapshot)
            return
        # A call of a watched agent that nobody follows yet: keep it for the follower to come.
        early = self._early.setdefault(conversation_id, [])
        self._early.move_to_end(conversation_id)
        early.append(snapshot)
        del early[:-EARLY_SNAPSHOTS_PER_CONVERSATION]
        while len(self._early) > EARLY_CONVERSATIONS:
            self._early.popitem(last=False)

    async def _catch_up(self) -> None:
        """After a reconnect: one GET per followed call, for what the gap may have hidden."""
        for conversation_id, watches in list(self._watches.items()):
            try:
                snapshot: _Item = await get_conversation(self.transport, conversation_id)
            except GcdialError as exc:
                logger.warning("catching up on call %s failed: %s", conversation_id, exc)
                continue
            for watch in watches:
                watch.inbox.put_nowait(snapshot)

    def _on_channel_lost(self, error: BaseException) -> None:
        self.fallback_reason = str(error)
        self._mode = MonitorMode.POLLING
        for watches in self._watches.values():
            for watch in watches:
                self._start_poller(watch, first_delay_s=0.0)


def _has_wrapup(snapshot: Mapping[str, Any]) -> bool:
    return agent_wrapup(snapshot) is not None


def _agent_ids(snapshot: Mapping[str, Any]) -> set[str]:
    ids = set()
    for participant in participants_of(snapshot).values():
        user = participant.get("user")
        if role_of(participant) is Role.AGENT and isinstance(user, Mapping):
            user_id = user.get("id")
            if isinstance(user_id, str):
                ids.add(user_id)
    return ids


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def follow(
    transport: Transport,
    conversation_id: str,
    *,
    agent_id: str | None = None,
    monitor: CallMonitor | None = None,
    timeout_s: float | None = None,
    mode: MonitorMode | str = MonitorMode.AUTO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    wrapup: WrapupWait | None = None,
) -> AsyncGenerator[CallEvent, None]:
    """Yield one call's events until it ends (and its wrap-up, with ``wrapup``), on ``monitor``
    or on a monitor of its own."""
    async with contextlib.AsyncExitStack() as stack:
        if monitor is None:
            own = CallMonitor(transport, mode=mode, clock=clock, sleep=sleep)
            monitor = await stack.enter_async_context(own)
        stream = monitor.follow(
            conversation_id, agent_id=agent_id, timeout_s=timeout_s, wrapup=wrapup
        )
        async with contextlib.aclosing(stream):
            async for event in stream:
                yield event


async def wait(
    transport: Transport,
    conversation_id: str,
    *,
    agent_id: str | None = None,
    monitor: CallMonitor | None = None,
    timeout_s: float | None = None,
    mode: MonitorMode | str = MonitorMode.AUTO,
    rules: OutcomeRules = DEFAULT_RULES,
    on_event: Callable[[CallEvent], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    wrapup: WrapupWait | None = None,
) -> Outcome:
    """Follow one call to its end (and its wrap-up, with ``wrapup``) and return its outcome."""
    async with contextlib.AsyncExitStack() as stack:
        if monitor is None:
            own = CallMonitor(transport, mode=mode, rules=rules, clock=clock, sleep=sleep)
            monitor = await stack.enter_async_context(own)
        return await monitor.wait(
            conversation_id,
            agent_id=agent_id,
            timeout_s=timeout_s,
            on_event=on_event,
            wrapup=wrapup,
        )
