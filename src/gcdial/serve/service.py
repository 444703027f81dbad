"""What the API does, apart from HTTP: claim, dial once, record, follow, publish, deliver.

``DialService`` owns the Genesys client and one ``CallMonitor`` (one notifications channel per
replica, whatever the number of calls), the event hub, the webhook worker and crash recovery.
Store calls run in a worker thread, so a slow store never stalls the event loop (one exception:
each request's key lookup on SQLite, a read that never waits: ``SqliteStore.find_api_key_inline``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import httpx

from gcdial.agents import AgentReadiness
from gcdial.calls import CallTarget
from gcdial.client import AsyncClient
from gcdial.dialing import Dial, keep_resolving
from gcdial.errors import AgentNotReadyError, BadRequestError, GcdialError, InvalidPhoneNumberError
from gcdial.monitor import CallEvent, CallMonitor, EventKind, classify
from gcdial.monitor.events import conversation_of, wrapup_expected
from gcdial.monitor.wrapup import Wrapup, WrapupWait
from gcdial.phone import to_e164
from gcdial.resolve import (
    UNTAGGED_SKEW_S,
    Attempt,
    Evidence,
    LadderSettings,
    Resolution,
    Verdict,
    new_attempt_id,
)
from gcdial.serve import dialing
from gcdial.serve.budget import share_budget
from gcdial.serve.call_rules import RulesAnswer, call_rules_in_store
from gcdial.serve.config import ServeConfig
from gcdial.serve.hub import EventHub
from gcdial.serve.metrics import Metrics
from gcdial.serve.models import AgentState, CallRequest
from gcdial.serve.presence import PresenceWatcher
from gcdial.serve.principal import owns
from gcdial.serve.problems import ApiProblem, ErrorDetail, problem_body
from gcdial.serve.queues import QueueDirectory
from gcdial.serve.readiness import SharedChecks
from gcdial.serve.recovery import (
    WitnessBook,
    attempt_from_origin,
    attempt_to_origin,
    resolve_stale,
    settles_it,
)
from gcdial.serve.signing import sign
from gcdial.serve.steps import step_of
from gcdial.serve.store import (
    ApiKeyRecord,
    AuditEntry,
    CallRecord,
    Claim,
    Delivery,
    Event,
    Store,
    WebhookEndpoint,
    body_fingerprint,
)
from gcdial.serve.store_thread import URGENT as _URGENT
from gcdial.serve.store_thread import StoreThread
from gcdial.serve.webhook_targets import GENERIC_REFUSAL, TargetRefused, WebhookGuard

__all__ = ["DialAnswer", "DialService", "call_json", "ends_call_stream", "iso", "public_event"]

logger = logging.getLogger("gcdial.serve")

P = ParamSpec("P")
T = TypeVar("T")

TERMINAL_EVENTS = frozenset({"call.ended", "call.unknown", "call.not_placed", "call.refused"})
_RECOVERY_EVERY_S = 30.0
_WATCH_EVERY_S = 2.0  # how often a replica reads which agents have a dial in flight anywhere
_LADDER_GRACE_S = 10.0  # no "not placed" from a recovery ladder sooner than this after its lease
_KEYS_REMEMBERED = 4096  # dials' keys a replica remembers, to tell a retry (see _seen_before)
_FINISH_S = 5.0  # how long ``stop`` waits for answered dials' events and audit lines
# The webhook worker looks at the outbox once per burst of events, not once per event.
_WEBHOOK_COALESCE_S = 0.05


def _retrieved(task: asyncio.Future[T]) -> asyncio.Future[T]:
    """``task``, whose error counts as seen even if nobody comes to await it (a dial that
    stopped before it needed its agent's check)."""
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


def _kept_attempt_id(call: CallRecord) -> str | None:
    """The attempt id kept with a call's row (``origin.attempt``), if any."""
    kept = json.loads(call.origin or "{}").get("attempt")
    found = kept.get("attemptId") if isinstance(kept, dict) else None
    return found if isinstance(found, str) else None


def ends_call_stream(type: str, data: dict[str, Any]) -> bool:
    """Whether a call's event stream ends with this event: its last verdict, or its end when no
    wrap-up is to come (else ``call.wrapup``, which comes even when the wrap-up never did)."""
    if type == "call.ended":
        return not data.get("wrapupExpected")
    return type in TERMINAL_EVENTS or type == "call.wrapup"


def iso(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def call_json(call: CallRecord) -> dict[str, Any]:
    """The API's JSON for a call (``CallResource``)."""
    origin = json.loads(call.origin or "{}")
    request = json.loads(call.request or "{}")
    sent = request.get("to")
    attributes = request.get("attributes")
    return {
        "id": call.id,
        "status": call.status,
        "agent": call.agent,
        "agentId": call.agent_id,
        "to": call.to,
        "toAsSent": sent if isinstance(sent, str) else None,
        "callerId": _caller_id(request),
        "label": request.get("label"),
        "attributes": attributes if isinstance(attributes, dict) else {},
        "conversationId": call.conversation_id,
        "outcome": call.outcome,
        "ended": call.outcome is not None or call.status in ("not_placed", "refused"),
        "detail": call.detail,
        "createdAt": iso(call.created_at),
        "updatedAt": iso(call.updated_at),
        "source": call.source,
        "campaign": (
            {"id": call.campaign_id, "name": origin.get("campaignName")}
            if call.campaign_id is not None
            else None
        ),
        "attemptId": call.attempt_id,
        "contact": origin.get("contact"),
        "wrapup": json.loads(call.wrapup) if call.wrapup else None,
        "warnings": origin.get("warnings") or [],
        "overrideReason": _override_reason(request),
        "links": {"self": f"/v1/calls/{call.id}", "events": f"/v1/calls/{call.id}/events"},
    }


def _override_reason(request: dict[str, Any]) -> str | None:
    override = request.get("override")
    reason = override.get("reason") if isinstance(override, dict) else None
    return reason if isinstance(reason, str) else None


def _caller_id(request: dict[str, Any]) -> str | None:
    """The caller id the call was placed with, in E.164 (the request keeps it as sent; it was
    checked before the claim, so a failure here means a row from before the check)."""
    sent = request.get("callerId")
    if not isinstance(sent, str):
        return None
    try:
        return to_e164(sent, default_country=request.get("defaultCountry") or "US")
    except InvalidPhoneNumberError:
        return None


def public_event(data: dict[str, Any]) -> dict[str, Any]:
    """An event as every reader gets it, SSE and webhooks alike: without the internal id of
    the key that placed the call (kept in the log only to decide who may see it)."""
    return {name: value for name, value in data.items() if name != "apiKeyId"}


@dataclass(frozen=True)
class DialAnswer:
    """What ``POST /v1/calls`` answers: a claim result and the body to send."""

    kind: str  # claimed (a fresh answer), replay, mismatch, in_progress
    status_code: int  # 202, or a refusal's 4xx (its body the error shape with the call in it)
    body: dict[str, Any]
    call_id: str


def _log_failure(task: asyncio.Task[Any]) -> None:
    """A background task (a follow, a ladder) that died says so in the log, rather than at
    garbage collection or never: its call may be left unsettled, holding its agent."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("background task %s failed: %s", task.get_name(), type(exc).__name__)


class DialService:
    """The service behind the API; ``start()`` in the app's lifespan, ``stop()`` at its end."""

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
        self._monitor: CallMonitor | None = None
        self._witness: WitnessBook | None = None
        # Dead replicas' calls whose ladder runs in this process.
        self._laddering: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finishing: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._webhook_http: httpx.AsyncClient | None = None
        self.webhook_guard = WebhookGuard(allow_insecure=config.allow_insecure_webhooks)
        self._ready_cache: tuple[float, dict[str, str]] | None = None
        self._unlisten: Callable[[], None] | None = None
        # Calls whose dial task runs in this process: their claims are not leftovers.
        self._dialing: set[str] = set()
        # The (key, Idempotency-Key) pairs of dials seen lately: a retry's agent check waits.
        self._keys_seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.presence = PresenceWatcher(self)
        self.queues = QueueDirectory(lambda: self.client, config.queue_cache_s)
        self.agent_checks: SharedChecks[AgentReadiness] = SharedChecks(
            lambda agent: self.client.agents.check(agent), config.agent_cache_s
        )

    @property
    def client(self) -> AsyncClient:
        """The Genesys client (after ``start``)."""
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

    async def _agent_id(self, agent: str) -> str | None:
        """The agent's Genesys user id from the shared check, or None when it cannot be read."""
        try:
            return (await self.agent_checks.get(agent)).agent.id
        except GcdialError:
            return None

    async def _free_agent_after(self, call: CallRecord, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self.free_agent(call)

    async def free_agent(self, call: CallRecord) -> None:
        """The call ended or was not placed: its agent may take another (best effort: a row
        left behind expires with this replica's heartbeat)."""
        try:
            await self.db(self.store.release_agent, call.id)
        except Exception as exc:
            logger.warning("could not free the agent of %s: %s", call.id, type(exc).__name__)

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

    async def start(self) -> None:
        """Open the client and the monitor, resume following placed calls, start the workers."""
        self._client = self._client_factory()
        # One Genesys budget per OAuth client for every replica on this store (issue 17).
        if self.config.shared_budget:
            share_budget(self._client, self.store, batch_max=self.config.budget_batch)
        self._monitor = CallMonitor(self._client.transport)
        self._witness = WitnessBook(
            self._monitor, attempt_key=self._client.settings.attempt_attribute
        )
        self._webhook_http = self.webhook_guard.client(self.config.webhook_timeout_s)
        self.hub.last_id = await self.db(self.store.last_event_id)
        self._unlisten = await self._listen_to_replicas()
        self._spawn(self.presence.start())  # in the background: Genesys may be slow or down
        await self.recover(startup=True)
        for placed in await self.db(self.store.calls_with_status, "placed"):
            # A campaign's calls are followed by its run (a resume reconciles them from the
            # journal): two followers would write two outcomes.
            if placed.outcome is None and placed.conversation_id and placed.source == "api":
                with contextlib.suppress(Exception):  # its agent stays held, now by this replica
                    await self.db(
                        self.store.claim_agent,
                        placed.agent_id or placed.agent.strip().lower(),
                        placed.id,
                        owner=self.config.instance_id,
                        now=self.clock(),
                        ttl_s=self.config.stale_claim_s,
                    )
                self._spawn(self._follow(placed), f"gcdial-follow-{placed.id}")
        self._workers = [
            asyncio.create_task(self._poll_events(), name="gcdial-serve-events"),
            asyncio.create_task(self._deliver_webhooks(), name="gcdial-serve-webhooks"),
            asyncio.create_task(self._recovery_loop(), name="gcdial-serve-recovery"),
        ]
        if not self.single_process:
            # Another replica may die mid-dial: be the witness its calls' ladder needs.
            self._workers.append(
                asyncio.create_task(self._watch_in_flight(), name="gcdial-serve-witness")
            )

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

    async def stop(self) -> None:
        """Stop workers and followers (placed calls are followed again at the next start)."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._finishing:
            await asyncio.wait(list(self._finishing), timeout=_FINISH_S)
        for task in [*self._workers, *self._tasks]:
            task.cancel()
        for task in [*self._workers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        if self._witness is not None:
            self._witness.close()
        await self.presence.close()
        if self._monitor is not None:
            with contextlib.suppress(Exception):
                await self._monitor.close()
        if self._webhook_http is not None:
            await self._webhook_http.aclose()
        if self._client is not None:
            await self._client.aclose()
        if self._store_thread is not None:
            thread, self._store_thread = self._store_thread, None
            thread.close()  # its queued calls still run; a later call makes another

    def _spawn(
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
        event = await self.db(self._append_call_event, type, call, **extra)
        await self.hub.notify(event.id)
        return event

    def _append_call_event(self, type: str, call: CallRecord, **extra: Any) -> Event:
        data = {"type": type, "call": call_json(call), "apiKeyId": call.api_key_id, **extra}
        progress = extra.get("progress")
        if isinstance(progress, dict):
            data["step"] = step_of(progress)  # a campaign's calls' progress too
        return self.store.append_event(type, call.id, json.dumps(data), now=self.clock())

    def _settle(
        self,
        key_id: str,
        idem_key: str,
        call_id: str,
        refused: ApiProblem | None,
        changes: dict[str, Any],
    ) -> tuple[CallRecord, int, dict[str, Any]]:
        """Record a dial's result, then its answer under the key: one hop for both. A refusal
        answers its 4xx with the call inside."""
        call = self.store.update_call(call_id, now=self.clock(), **changes)
        body = call_json(call)
        status_code, answer = 202, body
        if refused is not None:
            status_code, answer = refused.status, {**problem_body(refused.detail), "call": body}
        self.store.complete_idempotency(key_id, idem_key, status_code, json.dumps(answer))
        return call, status_code, answer

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

    async def create_call(
        self, key: ApiKeyRecord, idem_key: str, request: CallRequest
    ) -> DialAnswer:
        """The calling rules, then claim the idempotency key (both in one hop to the store's
        thread), and dial once, the claim and the call's row on disk before the create-call
        leaves; or answer from the earlier claim.

        The claim and the dial run in their own task: a client hanging up mid-request must not
        cancel them half-way, or the key would stay claimed with nobody to dial or to record
        what happened."""
        urgent = _URGENT.set(True)
        try:
            return await self._create_call(key, idem_key, request)
        finally:
            _URGENT.reset(urgent)

    async def _create_call(
        self, key: ApiKeyRecord, idem_key: str, request: CallRequest
    ) -> DialAnswer:
        body = request.model_dump(mode="json", exclude_none=True)
        call_id = "call_" + uuid.uuid4().hex
        # The dial's own check of the agent (fresh, as a bare dial makes it) starts now,
        # alongside the claim and the call's row; the dial uses it instead of checking again.
        # Not for a key this replica has seen: a retry is mostly answered from its claim (a
        # replay, in progress, the agent busy), and a CRM's retries must not spend the org's
        # Genesys budget on checks nobody uses; it starts once the key is claimed.
        target = None if self._seen_before(key.id, idem_key) else self._check(request.agent)
        now = self.clock()
        call = CallRecord(
            id=call_id,
            api_key_id=key.id,
            agent=request.agent,
            to=request.to_e164,
            status="placing",
            idempotency_key=idem_key,
            request=json.dumps(body),
            created_at=now,
            updated_at=now,
            origin=json.dumps(
                {
                    "attempt": attempt_to_origin(self._attempt_for(request)),
                }
            ),
        )
        self._dialing.add(call_id)
        task = self._spawn(
            self._claim_and_dial(key, idem_key, call, request, body, target), awaited=True
        )
        task.add_done_callback(lambda _: self._dialing.discard(call_id))
        return await asyncio.shield(task)

    def _check(self, agent: str) -> asyncio.Future[CallTarget]:
        """Start the dial's own check of the agent."""
        return _retrieved(asyncio.ensure_future(self.client.calls.target(agent)))

    def _seen_before(self, key_id: str, idem_key: str) -> bool:
        """Whether this replica saw a dial with this key lately (and remember this one)."""
        seen = (key_id, idem_key)
        before = seen in self._keys_seen
        self._keys_seen[seen] = None
        self._keys_seen.move_to_end(seen)
        while len(self._keys_seen) > _KEYS_REMEMBERED:
            self._keys_seen.popitem(last=False)
        return before

    def _claim(
        self,
        key: ApiKeyRecord,
        idem_key: str,
        request: CallRequest,
        body: dict[str, Any],
        call: CallRecord,
    ) -> tuple[RulesAnswer, CallRecord, Claim | None]:
        """The calling rules (a key claimed before answers as it did, whatever the rules say
        now; a refusal claims nothing); then claim the key and, when claimed, write the call's
        row durably (one sync for both: the claim commits first, so the row never exists
        without it, as recovery needs). One hop to the store's thread, while the dial's check
        of the agent runs; the agent's own row is claimed once that answers (``_hold_agent``).
        The call returned carries the rules' warnings."""
        rules = call_rules_in_store(self, key, idem_key, request)
        if rules.refusal is not None:
            return rules, call, None
        if rules.warnings:
            origin = {**json.loads(call.origin or "{}"), "warnings": rules.warnings}
            call = dataclasses.replace(call, origin=json.dumps(origin))
        claim = self.store.claim_idempotency(
            key.id,
            idem_key,
            body_fingerprint(body),
            call.id,
            now=call.created_at,
            ttl_s=self.config.idempotency_ttl_s,
            owner=self.config.instance_id,
            durable=False,
        )
        if claim.kind == "claimed":
            self.store.insert_call(call, durable=True)
        return rules, call, claim

    def _hold_agent(
        self, key_id: str, idem_key: str, call: CallRecord, agent_id: str | None
    ) -> tuple[str | None, Event | None]:
        """Claim the agent's row among live calls for a call whose key and row are claimed
        already, keyed by the agent's user id (so an email and an id meet on one row; the name
        as given when it could not be read: the dial then refuses the call), then note the id
        on the call's row (a witness or a recovery ladder reads it there) and append its
        ``call.placing`` event. When another live call holds the agent: undo the claim (nothing
        was sent or published: the key is free again, as if the claim had found the agent
        busy) and name that call."""
        holder = self.store.claim_agent(
            agent_id or call.agent.strip().lower(),
            call.id,
            owner=self.config.instance_id,
            now=self.clock(),
            ttl_s=self.config.stale_claim_s,
        )
        if holder is not None:
            self.store.drop_claim(key_id, idem_key, call.id)
            return holder, None
        if agent_id:
            call = self.store.update_call(call.id, now=self.clock(), agent_id=agent_id)
        return None, self._append_call_event("call.placing", call)

    def _agent_busy(self, request: CallRequest, live: str) -> DialAnswer:
        self.metrics.dials.labels("agent_busy").inc()
        error = ErrorDetail(
            type="agent_busy",
            message=f"Agent {request.agent} has a live call ({live}): one call at a time.",
            hint="Dial again once that call has ended (GET /v1/calls/" + live + " shows it).",
            path="$.agent",
        )
        answer = {**problem_body(error), "liveCall": {"id": live, "href": f"/v1/calls/{live}"}}
        return DialAnswer("agent_busy", 409, answer, live)

    async def _checked_agent_id(self, agent: str, target: asyncio.Future[CallTarget]) -> str | None:
        """The agent's Genesys user id, from the dial's own check (the shared check's when
        calls are placed as the user: the dial's check is then the user's); None when it
        cannot be read: the dial meets the check's error and answers it as it answers any
        (a refusal for a gcdial error, ``unknown`` for anything else), the call recorded."""
        if self.client.calls.route == "user":
            return await self._agent_id(agent)
        try:
            return (await asyncio.shield(target)).agent_id
        except Exception:
            return None

    async def _claim_and_dial(
        self,
        key: ApiKeyRecord,
        idem_key: str,
        call: CallRecord,
        request: CallRequest,
        body: dict[str, Any],
        target: asyncio.Future[CallTarget] | None,
    ) -> DialAnswer:
        rules, call, claim = await self.db(self._claim, key, idem_key, request, body, call)
        if claim is None:
            return DialAnswer("refused_rules", 403, rules.refusal or {}, "")
        if claim.kind == "replay":
            record = claim.record
            stored = json.loads(record.response_body or "{}")
            return DialAnswer("replay", record.status_code or 202, stored, record.call_id)
        if claim.kind != "claimed":
            return DialAnswer(claim.kind, 0, {}, claim.record.call_id)
        # The key and the row are on disk; now the agent's row, once its check answered.
        if target is None:
            target = self._check(request.agent)
        agent_id = await self._checked_agent_id(request.agent, target)
        holder, placed = await self.db(self._hold_agent, key.id, idem_key, call, agent_id)
        if holder is not None or placed is None:
            return self._agent_busy(request, holder or "unknown")
        status_code, done = await self._dial(key, idem_key, call, request, placed, target)
        return DialAnswer("claimed", status_code, done, call.id)

    def _attempt_for(self, request: CallRequest) -> Attempt:
        """The attempt a dial is about to make, kept with its ``placing`` row before the POST
        leaves, so that another replica can run the ladder on it should this one die. Its times
        are taken before the POST (a wider search, never a narrower one). Its agent id is left
        empty (the row is written while the agent is checked): whoever recovers it looks the
        agent up."""
        server_clock = self.client.transport.server_clock
        return Attempt(
            attempt_id=new_attempt_id(),
            agent_id="",
            number=request.to_e164,
            sent_at=datetime.now(UTC),
            sent_after=server_clock.last,
            attempt_key=self.client.settings.attempt_attribute,
            match_after=server_clock.passed(UNTAGGED_SKEW_S),
        )

    async def _fence(self, call_id: str) -> None:
        """Just before the POST: refuse to send a call another replica has taken over (its
        ladder lease is held, or its row is no longer ``placing``), or whose agent's row lapsed
        while it waited and went to another call (the agent row is the exclusivity's fence:
        this replica holds it again, or the call is not sent)."""

        def taken() -> bool:
            if self.store.lease_holder(f"ladder:{call_id}", now=self.clock()) is not None:
                return True
            current = self.store.get_call(call_id)
            if current is None or current.status != "placing":
                return True
            holder = self.store.claim_agent(
                current.agent_id or current.agent.strip().lower(),
                call_id,
                owner=self.config.instance_id,
                now=self.clock(),
                ttl_s=self.config.stale_claim_s,
            )
            return holder is not None

        if self.single_process:
            return  # one process: nobody else recovers its calls while it runs
        try:
            stop = await self.db(taken)
        except Exception as exc:
            raise dialing.TakenOverError(
                f"This call was not sent: the store could not be read just before sending it "
                f"({type(exc).__name__})",
                hint="Dial again with a new Idempotency-Key once the store is reachable.",
            ) from exc
        if stop:
            raise dialing.TakenOverError(
                "This call was not sent: its claim went stale while it waited, and another "
                "replica took it over (or gave its agent another call)",
                hint="Dial again with a new Idempotency-Key once that call shows not_placed.",
            )

    async def _dial(
        self,
        key: ApiKeyRecord,
        idem_key: str,
        call: CallRecord,
        request: CallRequest,
        placing: Event,
        target: asyncio.Future[CallTarget],
    ) -> tuple[int, dict[str, Any]]:
        await self.hub.notify(placing.id)
        started = time.perf_counter()
        assert self._monitor is not None
        handle: Dial | None = None
        refused = None
        try:
            handle = await dialing.place_call(
                self.client,
                request,
                monitor=self._monitor,
                resolve_timeout_s=self.config.resolve_timeout_s,
                attempt_id=_kept_attempt_id(call),
                fence=lambda: self._fence(call.id),
                target=target,
            )
            result = dialing.dial_status(handle)
        except BaseException as exc:
            target.cancel()  # when the dial stopped before it needed the agent's check
            status = dialing.failed_dial_status(exc)
            refused = dialing.refusal(exc)
            detail = str(exc) if isinstance(exc, GcdialError) else "internal error while dialing"
            if not isinstance(exc, GcdialError):
                logger.error("dial %s failed with %s", call.id, type(exc).__name__)
            call = await self.db(
                self.store.update_call, call.id, now=self.clock(), status=status, detail=detail
            )
            changes: dict[str, Any] = {"status": status, "detail": detail}
            if not isinstance(exc, Exception):  # cancelled: record what is known, then stop
                await self.db(self._settle, key.id, idem_key, call.id, None, changes)
                raise
        else:
            status = result.status
            changes = {
                "status": status,
                "conversation_id": result.conversation_id,
                "detail": result.detail,
                "agent_id": result.agent_id,
            }
        call, status_code, answer = await self.db(
            self._settle, key.id, idem_key, call.id, refused, changes
        )
        if status == "unknown" and handle is not None and self.config.resolve_later_s > 0:
            # It may be ringing the agent: held while the evidence may still come, but no longer
            # than a dead replica's claim would be (the resolution itself may take many minutes).
            self._spawn(self._free_agent_after(call, self.config.stale_claim_s))
        elif status != "placed":
            await self.free_agent(call)  # before the answer: the client may dial again at once
        self.metrics.dial_seconds.observe(time.perf_counter() - started)
        self.metrics.dials.labels(status).inc()
        # The event, the audit line and following the call do not hold the answer up: the claim
        # and the call row already hold everything a retry or a reader needs. ``stop`` lets
        # these finish before it cancels anything.
        task = asyncio.create_task(self._after_dial(key, call, status, handle))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        return status_code, answer

    async def _after_dial(
        self, key: ApiKeyRecord, call: CallRecord, status: str, handle: Dial | None
    ) -> None:
        _URGENT.set(False)  # this task's own context: nobody waits for what follows
        await self.publish(f"call.{status}", call)
        await self.audit(key.id, "dial", status, call, call.detail)
        if status == "placed":
            self._spawn(self._follow(call), f"gcdial-follow-{call.id}")
        elif status == "unknown" and handle is not None and self.config.resolve_later_s > 0:
            self._spawn(self._resolve_later(call, handle))

    async def _resolve_later(self, call: CallRecord, handle: Dial) -> None:
        """Go on with the ladder of a call answered ``unknown``, in the background; record its
        verdict only if nobody recorded one meanwhile (the same lease as a person's verdict)."""
        settle = self.client.settings.analytics_settle_s
        try:
            resolution = await keep_resolving(
                self.client.transport,
                handle,
                monitor=self._monitor,
                settings=self.client.settings,
                timeout_s=settle + self.config.resolve_later_s,
            )
        except GcdialError as exc:
            logger.warning("resolving call %s later failed: %s", call.id, exc.message)
            await self.free_agent(call)
            return
        if resolution.verdict is not Verdict.PLACED:
            await self.free_agent(call)
        if resolution.verdict is Verdict.UNKNOWN:
            return  # still for a person: the row says so already
        status = "placed" if resolution.verdict is Verdict.PLACED else "not_placed"
        detail = f"resolved by evidence after the answer: {resolution.summary}"
        owner = f"{self.config.instance_id}:{uuid.uuid4().hex}"
        lease = f"verdict:{call.id}"
        if not await self.db(self.store.acquire_lease, lease, owner, now=self.clock(), ttl_s=30):
            return  # a person is recording a verdict right now: theirs stands
        try:
            current = await self.db(self.store.get_call, call.id)
            if current is None or current.status != "unknown":
                return
            call = await self.db(
                self.store.update_call,
                call.id,
                now=self.clock(),
                status=status,
                conversation_id=resolution.conversation_id,
                detail=detail,
            )
        finally:
            await self.db(self.store.release_lease, lease, owner)
        self.metrics.dials.labels(f"resolved_{status}").inc()
        await self.publish(f"call.{status}", call, resolvedLater=True)
        await self.audit(call.api_key_id, "resolve", status, call, resolution.summary)
        if status == "placed":
            self._spawn(self._follow(call), f"gcdial-follow-{call.id}")

    async def _follow(self, call: CallRecord) -> None:
        """Follow a placed call to its end: progress events, then the outcome (the verdict);
        then, for a call that has one, the agent's wrap-up (``call.wrapup``)."""
        assert self._monitor is not None
        assert call.conversation_id is not None
        events: list[CallEvent] = []
        ended = False
        wait = self._wrapup_wait(call)
        stream = self._monitor.follow(
            call.conversation_id, timeout_s=self.config.call_wait_timeout_s, wrapup=wait
        )
        try:
            async with contextlib.aclosing(stream):
                async for event in stream:
                    events.append(event)
                    if event.kind is EventKind.WRAPUP and event.wrapup is not None:
                        if not ended:
                            call, ended = await self._ended(call, events, wait), True
                        call = await self._wrapped_up(call, event.wrapup)
                        return
                    await self.publish("call.progress", call, progress=event.to_dict())
                    if event.kind is EventKind.CALL_ENDED:
                        call, ended = await self._ended(call, events, wait), True
        except GcdialError as exc:
            if not ended:
                reason = f"the call could not be followed to its end: {exc.message}"
                await self._ended(call, events, None, unknown=reason)
                return
            logger.info("waiting for the wrap-up of %s: %s", call.id, exc)
        if not ended:  # the stream ended without a CALL_ENDED event (seen ended at once)
            call = await self._ended(call, events, wait)
        if wrapup_expected(conversation_of(events), acd=wait.acd, non_acd=wait.non_acd):
            await self.publish("call.wrapup", call, wrapup=None, missing=True)

    def _wrapup_wait(self, call: CallRecord) -> WrapupWait:
        """Wait for the wrap-up of calls placed for a queue (or any, with wrapup_non_acd)."""
        settings = self.client.settings
        queue = json.loads(call.request or "{}").get("queueId") or settings.queue_id
        return WrapupWait(acd=bool(queue), non_acd=settings.wrapup_non_acd)

    async def _ended(
        self,
        call: CallRecord,
        events: list[CallEvent],
        wait: WrapupWait | None,
        *,
        unknown: str | None = None,
    ) -> CallRecord:
        outcome = classify(events)
        expected = wait is not None and wrapup_expected(
            conversation_of(events), acd=wait.acd, non_acd=wait.non_acd
        )
        kind, reason = ("unknown", unknown) if unknown else (outcome.kind.value, outcome.reason)
        await self.free_agent(call)  # before the outcome shows: a reader may dial at once
        call = await self.db(
            self.store.update_call, call.id, now=self.clock(), outcome=kind, detail=reason
        )
        self.metrics.calls_ended.labels(kind).inc()
        await self.publish("call.ended", call, wrapupExpected=expected)
        await self.audit(call.api_key_id, "verdict", kind, call, reason)
        return call

    async def _wrapped_up(self, call: CallRecord, wrapup: Wrapup) -> CallRecord:
        """Keep the wrap-up with the call and publish ``call.wrapup``."""
        shown = wrapup.to_dict()
        shown.pop("source", None)
        call = await self.db(
            self.store.update_call, call.id, now=self.clock(), wrapup=json.dumps(shown)
        )
        await self.publish("call.wrapup", call, wrapup=shown, missing=False)
        return call

    async def hang_up(self, key: ApiKeyRecord, call: CallRecord) -> CallRecord:
        """End a placed call for everyone."""
        assert call.conversation_id is not None
        try:
            await self.client.calls.hang_up(call.conversation_id)
        except GcdialError as exc:
            await self.audit(key.id, "hangup", "failed", call, exc.message)
            raise
        await self.audit(key.id, "hangup", "ok", call)
        await self.publish("call.hangup_requested", call)
        return call

    async def recover(self, *, startup: bool = False) -> int:
        """Resolve claims left ``in_progress`` by a process that died mid-dial.

        On SQLite (one process) every claim found at start-up is such a leftover; on a shared
        store only claims older than ``stale_claim_s`` are, unless this process is dialing them.
        - No call row: the process died between claim and dial (the row is written before the
          create-call leaves). A ``not_placed`` row under the claim's call id is written first,
          so that process, were it only stalled, fails to write its own row and never dials.
        - Still ``placing``: it may or may not have been placed. Never re-sent: its attempt goes
          through the resolution ladder (:meth:`_recover_placing`), with this replica's channel
          as the witness, to ``placed`` (then followed), ``not_placed``, or ``unknown`` with its
          evidence. The key stays in progress meanwhile (a retry gets 409, then the verdict).
        - Already settled (the process died before answering the key): that answer is replayed.
        """
        now = self.clock()
        older = now if startup and self.single_process else now - self.config.stale_claim_s
        fixed = 0
        for claim in await self.db(self.store.stale_claims, older):
            if claim.owner == self.config.instance_id and claim.call_id in self._dialing:
                continue
            call = await self.db(self.store.get_call, claim.call_id)
            event = None
            if call is None:
                call = CallRecord(
                    id=claim.call_id,
                    api_key_id=claim.scope,
                    agent="",
                    to="",
                    status="not_placed",
                    idempotency_key=claim.key,
                    detail=(
                        "The service stopped before sending this call: it was not placed. "
                        "Dial again with a new Idempotency-Key."
                    ),
                    created_at=now,
                    updated_at=now,
                )
                try:
                    await self.db(self.store.insert_call, call)
                except Exception as exc:
                    # The dialing process wrote its row after all: look again next round.
                    logger.info("recovery of %s deferred: %s", claim.call_id, type(exc).__name__)
                    continue
                event = "call.not_placed"
                with contextlib.suppress(Exception):  # its agent row, if the claim took one
                    await self.db(self.store.release_agent, claim.call_id)
            elif call.status == "placing":
                if call.id not in self._laddering:
                    self._laddering.add(call.id)
                    self._spawn(self._recover_placing(call))
                fixed += 1
                continue
            body = json.dumps(call_json(call))
            await self.db(self.store.complete_idempotency, claim.scope, claim.key, 202, body)
            if event is not None:
                await self.publish(event, call)
                await self.audit(call.api_key_id, "recover", call.status, call)
            fixed += 1
        return fixed

    async def _recover_placing(self, call: CallRecord) -> None:
        """Run the ladder on a dead process's ``placing`` call under a lease (one replica at a
        time; should this one die, the lease lapses and another starts over), then record the
        verdict, answer the key, publish it, and follow a placed call."""
        lease = f"ladder:{call.id}"
        owner = f"{self.config.instance_id}:ladder"
        ttl = max(self.config.stale_claim_s, 5.0)
        try:
            await self._recover_leased(call, lease, owner, ttl)
        finally:
            self._laddering.discard(call.id)

    async def _recover_leased(self, call: CallRecord, lease: str, owner: str, ttl: float) -> None:
        if not await self.db(self.store.acquire_lease, lease, owner, now=self.clock(), ttl_s=ttl):
            return
        try:
            resolution = await self._ladder_of(call, lease, owner, ttl)
            if not await self.db(
                self.store.acquire_lease, lease, owner, now=self.clock(), ttl_s=ttl
            ):
                return  # another replica took it over (this one stalled): its verdict stands
            await self._record_recovered(call, resolution)
        except Exception as exc:
            # The store or Genesys failed: the lease lapses, and the next round starts over.
            logger.warning("recovery of %s failed: %s", call.id, type(exc).__name__)
            return
        with contextlib.suppress(Exception):
            await self.db(self.store.release_lease, lease, owner)

    async def _ladder_of(self, call: CallRecord, lease: str, owner: str, ttl: float) -> Resolution:
        died = Evidence(
            "create",
            "the replica that sent this call stopped before recording Genesys's answer",
        )
        origin = json.loads(call.origin or "{}")
        kept = origin.get("attempt") if isinstance(origin, dict) else None
        agent_id = call.agent_id
        if not agent_id and isinstance(kept, dict) and not kept.get("agentId"):
            try:
                agent_id = (await self.agent_checks.get(call.agent)).agent.id
            except GcdialError as exc:
                why = f"the agent {call.agent} could not be looked up: {exc.message}"
                return Resolution(Verdict.UNKNOWN, (died, Evidence("resolver", why)))
        attempt = attempt_from_origin(kept, agent_id=agent_id)
        if attempt is None:
            why = "the call's row keeps no attempt id (a dial from before gcdial kept one)"
            return Resolution(Verdict.UNKNOWN, (died, Evidence("resolver", why)))
        assert self._witness is not None
        with contextlib.suppress(Exception):  # its agent stays held while the ladder runs
            await self.db(
                self.store.claim_agent,
                attempt.agent_id,
                call.id,
                owner=self.config.instance_id,
                now=self.clock(),
                ttl_s=self.config.stale_claim_s,
            )

        async def heartbeat() -> bool:
            epoch = await self.db(
                self.store.acquire_lease, lease, owner, now=self.clock(), ttl_s=ttl
            )
            return epoch is not None

        return await self._witnessed_ladder(attempt, died, heartbeat)

    async def settle_left_attempt(self, attempt: Attempt) -> Resolution:
        """The ladder for a campaign attempt a stopped run (a dead replica's, say) left between
        its intent and Genesys' answer, with this replica's channel as the witness; the
        campaign's lease fences the run meanwhile (``gcdial.campaign.resolver.settle_intents``
        holds its agent)."""
        died = Evidence(
            "create",
            "the run that sent this call stopped before recording Genesys's answer",
        )
        return await self._witnessed_ladder(attempt, died, None)

    async def _witnessed_ladder(
        self,
        attempt: Attempt,
        died: Evidence,
        heartbeat: Callable[[], Awaitable[bool]] | None,
    ) -> Resolution:
        assert self._witness is not None
        settle = self.client.settings.analytics_settle_s
        return await resolve_stale(
            self.client.transport,
            self._witness,
            attempt,
            ladder=LadderSettings(settle_s=settle, retry_s=min(5.0, max(settle / 4, 0.2))),
            # Bounded: whoever waits (a key answering 409 in progress, a campaign's contact)
            # waits this long at most. A window is usually open long before, so most are
            # decided at once.
            timeout_s=2 * settle + 60,
            notes=(died,),
            heartbeat=heartbeat,
            # A stalled dialer's POST that passed its fence just before the lease was taken
            # has this long to show (see gcdial.serve.recovery).
            grace_s=min(settle, _LADDER_GRACE_S),
        )

    async def _record_recovered(self, call: CallRecord, resolution: Resolution) -> None:
        status = resolution.verdict.value
        if resolution.verdict is Verdict.PLACED:
            detail = f"resolved after its replica stopped: {resolution.summary}"
        elif resolution.verdict is Verdict.NOT_PLACED:
            detail = (
                "The service stopped while placing this call; the evidence shows it was not "
                f"placed ({'; '.join(e.detail for e in resolution.evidence[1:])}). Dial again "
                "with a new Idempotency-Key."
            )
        else:
            looked = "; ".join(item.detail for item in resolution.evidence)
            detail = (
                "The service stopped while placing this call: it may or may not have been "
                f"placed, and was not re-sent. Looked at: {looked}. What would settle it: "
                f"{settles_it(resolution)}."
            )

        def record() -> CallRecord | None:
            current = self.store.get_call(call.id)
            if current is None or current.status != "placing":
                return None  # settled meanwhile (the dialing process was only stalled)
            done = self.store.update_call(
                call.id,
                now=self.clock(),
                status=status,
                conversation_id=resolution.conversation_id,
                detail=detail,
            )
            body = json.dumps(call_json(done))
            self.store.complete_idempotency(done.api_key_id, done.idempotency_key, 202, body)
            return done

        recorded = await self.db(record)
        if recorded is None:
            return
        if resolution.verdict is not Verdict.PLACED:
            await self.free_agent(recorded)
        self.metrics.dials.labels(f"recovered_{status}").inc()
        await self.publish(f"call.{status}", recorded, recovered=True)
        await self.audit(recorded.api_key_id, "recover", status, recorded, resolution.summary)
        if resolution.verdict is Verdict.PLACED and recorded.conversation_id:
            self._spawn(self._follow(recorded), f"gcdial-follow-{recorded.id}")

    async def _watch_in_flight(self) -> None:
        """Watch the agents of every dial in flight on any replica (the live calls' agents,
        and ``placing`` calls'), so that this replica's channel is a witness for their ladder
        should the replica that dials them die (see :mod:`gcdial.serve.recovery`)."""
        every = min(_WATCH_EVERY_S, max(self.config.stale_claim_s / 4, 0.2))
        while True:
            with contextlib.suppress(Exception):
                await self._watch_once()
            await asyncio.sleep(every)

    async def _watch_once(self) -> None:
        assert self._witness is not None
        live = await self.db(self.store.live_agents, now=self.clock())
        placing = await self.db(self.store.calls_with_status, "placing")
        wanted = [agent for agent, call_id in live.items() if call_id not in self._dialing]
        for call in placing:
            if call.id in self._dialing:
                continue
            kept = json.loads(call.origin or "{}").get("attempt") or {}
            agent = call.agent_id or (kept.get("agentId") if isinstance(kept, dict) else None)
            if agent:
                wanted.append(agent)
        # An agent key that is not a Genesys id (an agent that could not be looked up) has no
        # topic to watch; ids have no '@'. A window that a drop ended is opened again.
        wanted = [a for a in wanted if "@" not in a and self._witness.window(a) is None]
        if wanted:
            await self._witness.watch(wanted)

    async def _recovery_loop(self) -> None:
        # Check at least twice per stale period, so a dead replica's claim waits at most 1.5x it.
        every = min(_RECOVERY_EVERY_S, self.config.stale_claim_s / 2)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                # The heartbeat of this replica's live agents: a dead one's rows expire.
                await self.db(
                    self.store.renew_agents,
                    self.config.instance_id,
                    now=self.clock(),
                    ttl_s=self.config.stale_claim_s,
                )
            with contextlib.suppress(Exception):
                await self.recover()
                await self.db(self.store.purge_expired, self.clock())

    async def _poll_events(self) -> None:
        """Notice events appended by other replicas (the local ones notify at once)."""
        while True:
            await asyncio.sleep(self.config.sse_poll_s)
            with contextlib.suppress(Exception):
                await self.hub.notify(await self.db(self.store.last_event_id))

    async def _deliver_webhooks(self) -> None:
        seen = self.hub.last_id
        while True:
            try:
                batch = await self.db(
                    self.store.claim_deliveries,
                    self.config.instance_id,
                    now=self.clock(),
                    lease_s=self.config.webhook_lease_s,
                )
                if batch:
                    await asyncio.gather(*(self._deliver(item) for item in batch))
                    continue
            except Exception as exc:
                logger.warning("webhook delivery pass failed: %s", type(exc).__name__)
            if await self.hub.wait_beyond(seen, self.config.webhook_poll_s):
                await asyncio.sleep(min(_WEBHOOK_COALESCE_S, self.config.webhook_poll_s))
            seen = self.hub.last_id

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._webhook_http is not None
        endpoint = await self.db(self.store.get_webhook, delivery.endpoint_id)
        if endpoint is None:
            await self.db(self.store.ack_delivery, delivery.id, now=self.clock())
            return
        event = delivery.event
        data = public_event(json.loads(event.data))
        error = await self.post_signed(endpoint, f"evt_{event.id}", event.type, event.at, data)
        now = self.clock()
        if error is None:
            await self.db(self.store.ack_delivery, delivery.id, now=now)
            self.metrics.webhooks.labels("delivered").inc()
            return
        schedule = self.config.webhook_schedule
        attempt = delivery.attempts
        retry_at = now + schedule[attempt] if attempt < len(schedule) else None
        await self.db(
            self.store.fail_delivery, delivery.id, next_attempt_at=retry_at, error=error, now=now
        )
        self.metrics.webhooks.labels("retry" if retry_at is not None else "dead").inc()

    async def post_signed(
        self, endpoint: WebhookEndpoint, msg_id: str, type: str, at: float, data: dict[str, Any]
    ) -> str | None:
        """POST one signed message to an endpoint: None when it was accepted (2xx), else why
        not, in words safe to show (never which internal address answered)."""
        assert self._webhook_http is not None
        stamp = int(self.clock())
        payload = json.dumps(
            {"id": msg_id, "type": type, "timestamp": iso(at), "data": data}
        ).encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(endpoint.secret, msg_id, stamp, payload),
            "user-agent": "gcdial-serve",
        }
        try:
            response = await self._webhook_http.post(endpoint.url, content=payload, headers=headers)
        except TargetRefused:
            # Checked again at each delivery (DNS may have changed): one reason for every kind of
            # refused address, so dead letters never tell which internal ports answer.
            return f"refused: {GENERIC_REFUSAL}"
        except httpx.TimeoutException:
            return "timed out"
        except httpx.HTTPError:
            return "connection failed"
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"

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
