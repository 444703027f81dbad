"""Agents' presence and routing status pushed to watchers, instead of polled.

One notifications channel per replica, subscribed to the presence topics
(``ServeConfig.presence_topics``) of the agents someone watches (the page asks for them). Each
change becomes an ``agent.updated`` event in the event log, so SSE streams of every replica and
webhooks see it. While the channel is down (it could not be opened, or reconnecting failed for
good) ``live`` is False: the page says so and falls back to polling, and the watcher tries to open
a channel again every ``RETRY_S``. After a reconnect, one ``agent.updated`` with ``resync`` tells
watchers to read the agents again (notifications are not durable: changes during the gap are lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from gcdial.errors import GcdialError
from gcdial.monitor.channel import Frame, NotificationChannel

if TYPE_CHECKING:
    from gcdial.serve.service_core import ServiceCore

__all__ = ["RETRY_S", "PresenceWatcher", "agent_change"]

logger = logging.getLogger("gcdial.serve")

RETRY_S: Final = 30.0
"""How often a replica without a channel tries to open one again."""


def agent_change(body: Mapping[str, Any]) -> dict[str, str]:
    """The readiness fields a presence or routing-status frame carries (possibly none)."""
    change: dict[str, str] = {}
    definition = body.get("presenceDefinition")
    if isinstance(definition, Mapping) and isinstance(definition.get("systemPresence"), str):
        change["presence"] = definition["systemPresence"].upper().replace(" ", "_")
    routing = body.get("routingStatus")
    if isinstance(routing, Mapping) and isinstance(routing.get("status"), str):
        change["routingStatus"] = routing["status"].upper()
    return change


class PresenceWatcher:
    """The presence channel of one replica; ``start`` and ``close`` with the service."""

    def __init__(self, service: ServiceCore) -> None:
        self.service = service
        self.topics = service.config.presence_topics
        self._channel: NotificationChannel | None = None
        self._agents: dict[str, str] = {}  # user id -> the name watchers know it by
        self._retry: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def live(self) -> bool:
        """True while presence changes arrive over an open channel."""
        return self._channel is not None and self._channel.connected

    async def start(self) -> None:
        """Open the channel (failing that, retry in the background)."""
        if self.topics:
            await self._open()

    async def _open(self) -> bool:
        channel = NotificationChannel(
            self.service.client.transport,
            on_conversation=lambda _: None,
            on_reconnected=self._resync,
            on_lost=self._lost,
            on_frame=self._frame,
        )
        try:
            await channel.open()
            await channel.subscribe(self._wanted(self._agents))
        except GcdialError as exc:
            logger.warning("presence updates will be polled: %s", exc.message)
            with contextlib.suppress(Exception):
                await channel.close()
            self._schedule_retry()
            return False
        self._channel = channel
        if self._agents:  # watchers read the agents while the channel was down: read again
            await self._resync()
        return True

    def _wanted(self, agent_ids: Any) -> list[str]:
        return [t.replace("{id}", agent_id) for agent_id in agent_ids for t in self.topics]

    async def watch(self, agents: Mapping[str, str]) -> None:
        """Follow these agents (user id -> name) from now on; one PUT when some are new."""
        new = {agent_id: name for agent_id, name in agents.items() if agent_id not in self._agents}
        if not new:
            return
        self._agents.update(new)
        if self._channel is not None:
            try:
                await self._channel.subscribe(self._wanted(new))
            except GcdialError as exc:
                logger.warning("presence topics refused: %s", exc.message)

    def _frame(self, frame: Frame) -> None:
        change = agent_change(frame.body)
        topic = frame.topic.lower()
        agent_id = next(
            (a for a in self._agents if any(t.lower() == topic for t in self._wanted([a]))), None
        )
        if agent_id is None or not change:
            return
        agent = {"id": agent_id, "agent": self._agents[agent_id], **change}
        self.service.agent_checks.forget(agent_id, self._agents[agent_id])
        self._spawn(self._publish({"type": "agent.updated", "agent": agent}))

    async def _resync(self) -> None:
        self.service.agent_checks.clear()
        await self._publish({"type": "agent.updated", "agent": None, "resync": True})

    def _lost(self, exc: BaseException) -> None:
        logger.warning("presence channel lost (%s); polling until it is back", type(exc).__name__)
        self._channel = None
        self._spawn(self._resync())
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._closed or (self._retry is not None and not self._retry.done()):
            return

        async def retry() -> None:
            while not self._closed:
                await asyncio.sleep(RETRY_S)
                if await self._open():
                    return

        self._retry = asyncio.create_task(retry(), name="gcdial-serve-presence-retry")

    async def _publish(self, data: dict[str, Any]) -> None:
        service = self.service
        try:
            event = await service.db(
                service.store.append_event,
                "agent.updated",
                None,
                json.dumps(data),
                now=service.clock(),
            )
            await service.hub.notify(event.id)
        except Exception as exc:  # the next change, or the page's poll, shows it
            logger.warning("agent.updated not recorded (%s)", type(exc).__name__)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop retrying and close the channel."""
        self._closed = True
        for task in [self._retry, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None
