"""The service's shared core: its store (each call off the event loop), the Genesys client and
the call monitor, the event hub, and what every part of the service does with them: publish a
call's event, append an audit line, free an agent, run a task in the background.

The parts each hold the one ``ServiceCore`` of their process (:class:`ServicePart`): placing a
dial (:mod:`gcdial.serve.dials`), following a placed call (:mod:`gcdial.serve.following`),
recovering dials a dead process left (:mod:`gcdial.serve.dial_recovery`) and delivering webhooks
(:mod:`gcdial.serve.webhook_delivery`); :class:`gcdial.serve.service.DialService` wires them.

One ``CallMonitor`` per replica (one notifications channel, whatever the number of calls). Store
calls run in a worker thread, so a slow store never stalls the event loop (one exception: each
request's key lookup on SQLite, a read that never waits: ``SqliteStore.find_api_key_inline``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from gcdial.agents import AgentReadiness
from gcdial.client import AsyncClient
from gcdial.errors import AgentNotReadyError, BadRequestError, GcdialError
from gcdial.monitor import CallMonitor
from gcdial.serve.budget import share_budget
from gcdial.serve.call_views import call_json
from gcdial.serve.config import ServeConfig
from gcdial.serve.hub import EventHub
from gcdial.serve.metrics import Metrics
from gcdial.serve.models import AgentState
from gcdial.serve.presence import PresenceWatcher
from gcdial.serve.principal import owns
from gcdial.serve.problems import ApiProblem
from gcdial.serve.queues import QueueDirectory
from gcdial.serve.readiness import SharedChecks
from gcdial.serve.steps import step_of
from gcdial.serve.store import ApiKeyRecord, AuditEntry, CallRecord, Event, Store
from gcdial.serve.store_thread import URGENT as _URGENT
from gcdial.serve.store_thread import StoreThread

__all__ = ["ServiceCore", "ServicePart", "agent_key"]

logger = logging.getLogger("gcdial.serve")

P = ParamSpec("P")
T = TypeVar("T")

_FINISH_S = 5.0  # how long ``stop_tasks`` waits for answered dials' events and audit lines


def _log_failure(task: asyncio.Task[Any]) -> None:
    """A background task (a follow, a ladder) that died says so in the log, rather than at
    garbage collection or never: its call may be left unsettled, holding its agent."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("background task %s failed: %s", task.get_name(), type(exc).__name__)


class ServiceCore:
    """What the parts of the service share: ``open()`` (then ``listen()``) at start, and
    ``stop_tasks()`` then ``close()`` at the end, by :class:`gcdial.serve.service.DialService`."""

    def __init__(
        self,
        store: Store,
        client_factory: Callable[[], AsyncClient],
        config: ServeConfig,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        single_process: bool = False,
    ) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.hub = EventHub()
        self.single_process = single_process
        self._client_factory = client_factory
        # A store on one connection (SQLite: one lock) runs every call on one thread of its
        # own: the calls wait there in order, not in a pool's threads convoying on the lock.
        self._serial = bool(getattr(store, "serialised", False))
        self._store_thread: StoreThread | None = None
        self._client: AsyncClient | None = None
        self.monitor: CallMonitor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Answered dials' events and audit lines: ``stop_tasks`` lets them finish.
        self.finishing: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._ready_cache: tuple[float, dict[str, str]] | None = None
        self._unlisten: Callable[[], None] | None = None
        # Calls whose dial task runs in this process: their claims are not leftovers.
        self.dialing: set[str] = set()
        self.presence = PresenceWatcher(self)
        self.queues = QueueDirectory(lambda: self.client, config.queue_cache_s)
        self.agent_checks: SharedChecks[AgentReadiness] = SharedChecks(
            lambda agent: self.client.agents.check(agent), config.agent_cache_s
        )

    @property
    def client(self) -> AsyncClient:
        """The Genesys client (after ``open``)."""
        if self._client is None:
            raise RuntimeError("the service is not started")
        return self._client

    async def agent_state(self, agent: str) -> AgentState:
        """One agent's readiness (station, presence, routing status; the problem when not
        ready), from the check every reader of this replica shares."""
        try:
            found = await self.agent_checks.get(agent)
        except AgentNotReadyError as exc:
            return AgentState(agent=agent, ready=False, reason=exc.reason, problem=exc.message)
        except GcdialError as exc:
            return AgentState(agent=agent, ready=False, reason="unchecked", problem=exc.message)
        station = found.station.name or found.station.id if found.station else None
        return AgentState(
            agent=agent,
            id=found.agent.id,
            name=found.agent.name,
            ready=found.ready,
            reason=found.verdict.reason,
            problem=found.verdict.problem,
            presence=found.presence,
            routingStatus=found.routing_status,
            station=station,
            notes=list(found.notes),
        )

    async def agent_id(self, agent: str) -> str | None:
        """The agent's Genesys user id from the shared check, or None when it cannot be read."""
        try:
            return (await self.agent_checks.get(agent)).agent.id
        except GcdialError:
            return None

    async def free_agent_after(self, call: CallRecord, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self.free_agent(call)

    async def free_agent(self, call: CallRecord) -> None:
        """The call ended or was not placed: its agent may take another (best effort: a row
        left behind expires with this replica's heartbeat)."""
        try:
            await self.db(self.store.release_agent, call.id)
        except Exception as exc:
            logger.warning("could not free the agent of %s: %s", call.id, type(exc).__name__)

    def hold_agent(self, agent: str, call_id: str) -> str | None:
        """Give ``agent``'s row among live calls (its :func:`agent_key`) to ``call_id``, held
        by this replica for the stale-claim time; or name the live call that holds it. Runs in
        the store's thread."""
        return self.store.claim_agent(
            agent,
            call_id,
            owner=self.config.instance_id,
            now=self.clock(),
            ttl_s=self.config.stale_claim_s,
        )

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one store call in a worker thread: the store's own thread when its calls are
        serialised anyway (SQLite), else the default pool (PostgreSQL: network round trips
        that overlap)."""
        if not self._serial:
            return await asyncio.to_thread(fn, *args, **kwargs)
        if self._store_thread is None:
            self._store_thread = StoreThread()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        future = self._store_thread.submit(call, urgent=_URGENT.get())
        return await asyncio.wrap_future(future)

    def open(self) -> None:
        """Open the Genesys client and the call monitor on its transport."""
        self._client = self._client_factory()
        # One Genesys budget per OAuth client for every replica on this store (issue 17).
        if self.config.shared_budget:
            share_budget(self._client, self.store, batch_max=self.config.budget_batch)
        self.monitor = CallMonitor(self._client.transport)

    async def listen(self) -> None:
        """Start from the event log's end, and hear other replicas' events as they come."""
        self.hub.last_id = await self.db(self.store.last_event_id)
        self._unlisten = await self._listen_to_replicas()

    async def _listen_to_replicas(self) -> Callable[[], None] | None:
        """Wake local streams at once when another replica appends an event, on a store that
        can tell (PostgreSQL's LISTEN/NOTIFY); ``_poll_events`` remains the fallback."""
        add_listener: Callable[[Callable[[int], None]], Callable[[], None]] | None = getattr(
            self.store, "add_event_listener", None
        )
        if add_listener is None:
            return None
        loop = asyncio.get_running_loop()

        def on_event(event_id: int) -> None:
            if not loop.is_closed():
                asyncio.run_coroutine_threadsafe(self.hub.notify(event_id), loop)

        return await self.db(add_listener, on_event)

    async def poll_events(self) -> None:
        """Notice events appended by other replicas (the local ones notify at once)."""
        while True:
            await asyncio.sleep(self.config.sse_poll_s)
            with contextlib.suppress(Exception):
                await self.hub.notify(await self.db(self.store.last_event_id))

    def start_worker(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run one of the service's loops until ``stop_tasks``."""
        self._workers.append(asyncio.create_task(coro, name=name))

    async def stop_tasks(self) -> None:
        """Let answered dials finish their events, then stop the workers and the background
        tasks."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self.finishing:
            await asyncio.wait(list(self.finishing), timeout=_FINISH_S)
        for task in [*self._workers, *self._tasks]:
            task.cancel()
        for task in [*self._workers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()

    async def close(self) -> None:
        """Close presence, the monitor, the client and the store's thread (after ``stop_tasks``)."""
        await self.presence.close()
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                await self.monitor.close()
        if self._client is not None:
            await self._client.aclose()
        if self._store_thread is not None:
            thread, self._store_thread = self._store_thread, None
            thread.close()  # its queued calls still run; a later call makes another

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None, *, awaited: bool = False
    ) -> asyncio.Task[Any]:
        """Run ``coro`` in the background (``stop`` cancels it); its failure is logged unless
        the caller ``awaited`` it and handles it."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if not awaited:
            task.add_done_callback(_log_failure)
        return task

    async def publish(self, type: str, call: CallRecord, **extra: Any) -> Event:
        """Append a call event (and its webhook outbox rows) and wake the streams."""
        event = await self.db(self.append_call_event, type, call, **extra)
        await self.hub.notify(event.id)
        return event

    def append_call_event(self, type: str, call: CallRecord, **extra: Any) -> Event:
        data = {"type": type, "call": call_json(call), "apiKeyId": call.api_key_id, **extra}
        progress = extra.get("progress")
        if isinstance(progress, dict):
            data["step"] = step_of(progress)  # a campaign's calls' progress too
        return self.store.append_event(type, call.id, json.dumps(data), now=self.clock())

    async def audit(self, key_id: str, action: str, result: str, call: CallRecord | None = None,
                    detail: str | None = None) -> None:  # fmt: skip
        """Append one line to the audit log."""
        entry = AuditEntry(
            at=self.clock(),
            api_key_id=key_id,
            action=action,
            result=result,
            call_id=call.id if call else None,
            agent=call.agent if call else None,
            number=call.to if call else None,
            detail=detail,
        )
        await self.db(self.store.append_audit, entry)

    async def readiness(self) -> dict[str, str]:
        """Problems by check name (empty when ready); cached a few seconds to spare the budget."""
        now = time.monotonic()
        if self._ready_cache is not None and now - self._ready_cache[0] < 5.0:
            return self._ready_cache[1]
        problems: dict[str, str] = {}
        try:
            await self.db(self.store.check_writable)
        except Exception as exc:
            problems["store"] = str(exc)
        try:
            await self.client.transport.get_json("/api/v2/users/me")
        except BadRequestError as exc:
            if exc.code != "not.a.user":
                problems["genesys"] = exc.message
        except GcdialError as exc:
            problems["genesys"] = exc.message
        self._ready_cache = (now, problems)
        return problems

    async def own_call(self, key: ApiKeyRecord, call_id: str) -> CallRecord:
        """The call ``call_id`` if ``key`` may see it; else a 404 (never a 403: no probing)."""
        call = await self.db(self.store.get_call, call_id)
        if call is None or not owns(key, call.api_key_id):
            raise ApiProblem(404, "not_found", f"No call {call_id!r}.")
        return call


def agent_key(agent: str) -> str:
    """An agent named by a dial (an email or a user id), as the service keys it when its user
    id is not known: case does not matter."""
    return agent.strip().lower()


class ServicePart:
    """A part of the service: its ``core``, and the core's state and helpers under the names
    the part's methods use (``self.db``, ``self.publish``, ``self._spawn``...). They are the names
    these methods had when one class held them all: a method moved here unchanged, and a change
    made to it before the split applies here as it is."""

    def __init__(self, core: ServiceCore) -> None:
        self.core = core
        self.store = core.store
        self.config = core.config
        self.metrics = core.metrics
        self.clock = core.clock
        self.hub = core.hub
        self.single_process = core.single_process
        self.agent_checks = core.agent_checks
        self.db = core.db
        self.publish = core.publish
        self.audit = core.audit
        self.free_agent = core.free_agent
        self._hold_agent_row = core.hold_agent
        self._free_agent_after = core.free_agent_after
        self._agent_id = core.agent_id
        self._spawn = core.spawn
        self._append_call_event = core.append_call_event
        self._dialing = core.dialing
        self._finishing = core.finishing

    @property
    def client(self) -> AsyncClient:
        """The Genesys client (after ``ServiceCore.open``)."""
        return self.core.client

    @property
    def _monitor(self) -> CallMonitor | None:
        return self.core.monitor
