"""Placing one dial of the API (``POST /v1/calls``): the calling rules and the Idempotency-Key's
claim with the call's row, the agent's row, the fence just before the create-call, the create-call
once, the result and the answer under the key. What follows the answer (the event, the audit line,
following the call) runs after it, in :mod:`gcdial.serve.following`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from gcdial.calls import CallTarget
from gcdial.dialing import Dial
from gcdial.errors import GcdialError
from gcdial.resolve import UNTAGGED_SKEW_S, Attempt, new_attempt_id
from gcdial.serve import dialing
from gcdial.serve.call_rules import RulesAnswer, call_rules_in_store
from gcdial.serve.call_views import call_json
from gcdial.serve.following import CallFollower, SeenFrom
from gcdial.serve.models import CallRequest
from gcdial.serve.problems import ApiProblem, ErrorDetail, problem_body
from gcdial.serve.recovery import attempt_to_origin
from gcdial.serve.service_core import ServiceCore, ServicePart, agent_key
from gcdial.serve.store import ApiKeyRecord, CallRecord, Claim, Event, body_fingerprint
from gcdial.serve.store_thread import URGENT as _URGENT

__all__ = ["DialAnswer", "Dials"]

logger = logging.getLogger("gcdial.serve")

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_AGENTS_REMEMBERED = 10_000  # agents' user ids a replica remembers (see Dials._claim)
_KEYS_REMEMBERED = 4096  # dials' keys a replica remembers, to tell a retry (see _seen_before)


def _remember(recent: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Keep ``key`` in ``recent`` as its newest entry, forgetting the oldest beyond ``limit``."""
    recent[key] = value
    recent.move_to_end(key)
    while len(recent) > limit:
        recent.popitem(last=False)


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


@dataclass(frozen=True)
class DialAnswer:
    """What ``POST /v1/calls`` answers: a claim result and the body to send."""

    kind: str  # claimed (a fresh answer), replay, mismatch, in_progress
    status_code: int  # 202, or a refusal's 4xx (its body the error shape with the call in it)
    body: dict[str, Any]
    call_id: str


class Dials(ServicePart):
    """``POST /v1/calls``: claim, dial once, record, answer."""

    def __init__(self, core: ServiceCore, follower: CallFollower) -> None:
        super().__init__(core)
        # The (key, Idempotency-Key) pairs of dials seen lately: a retry's agent check waits.
        self._keys_seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        # The Genesys user id each agent (as dials name it) had at its last check: the dial's
        # claim takes that agent's row at once (one store hop less); its check confirms it.
        self._agent_ids: OrderedDict[str, str] = OrderedDict()
        # After the answer: follow a placed call, or go on with the ladder of an unknown one.
        self._follow = follower.follow
        self._resolve_later = follower.resolve_later

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
            agent_id=self._agent_ids.get(agent_key(request.agent)),
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
        _remember(self._keys_seen, seen, None, _KEYS_REMEMBERED)
        return before

    def _claim(
        self,
        key: ApiKeyRecord,
        idem_key: str,
        request: CallRequest,
        body: dict[str, Any],
        call: CallRecord,
    ) -> tuple[RulesAnswer, CallRecord, Claim | None, Event | None]:
        """The calling rules (a key claimed before answers as it did, whatever the rules say
        now; a refusal claims nothing); then claim the key and, when claimed, write the call's
        row durably (one sync for both: the claim commits first, so the row never exists
        without it, as recovery needs). One hop to the store's thread, while the dial's check
        of the agent runs.

        When the agent's user id is known from an earlier check (``call.agent_id``), its row
        among live calls is taken in the claim's own transaction (a live call holding it
        answers ``agent_busy`` and claims nothing) and ``call.placing`` is appended: the dial
        needs no other hop once the check confirms the id. Otherwise the agent's row waits for
        the check (``_hold_agent``). The call returned carries the rules' warnings."""
        rules = call_rules_in_store(self.core, key, idem_key, request)
        if rules.refusal is not None:
            return rules, call, None, None
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
            agent=call.agent_id,
            agent_ttl_s=self.config.stale_claim_s,
            durable=False,
        )
        if claim.kind != "claimed":
            return rules, call, claim, None
        self.store.insert_call(call, durable=True)
        placing = self._append_call_event("call.placing", call) if call.agent_id else None
        return rules, call, claim, placing

    def _hold_agent(
        self,
        key_id: str,
        idem_key: str,
        call: CallRecord,
        agent_id: str | None,
        placing: Event | None,
    ) -> tuple[str | None, Event | None]:
        """Claim the agent's row among live calls for a call whose key and row are claimed
        already, keyed by the agent's user id (so an email and an id meet on one row; the name
        as given when it could not be read: the dial then refuses the call), then note the id
        on the call's row (a witness or a recovery ladder reads it there) and append its
        ``call.placing`` event, unless the claim did (``placing``). A row the claim took under
        an id the check did not confirm is given back first. When another live call holds the
        agent: undo the claim (nothing was sent: the key is free again, as if the claim had
        found the agent busy) and name that call."""
        if call.agent_id:
            self.store.release_agent(call.id)
        holder = self._hold_agent_row(agent_id or agent_key(call.agent), call.id)
        if holder is not None:
            self.store.drop_claim(key_id, idem_key, call.id)
            return holder, None
        if agent_id != call.agent_id:
            call = self.store.update_call(call.id, now=self.clock(), agent_id=agent_id)
        return None, placing or self._append_call_event("call.placing", call)

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
        rules, call, claim, placing = await self.db(self._claim, key, idem_key, request, body, call)
        if claim is None:
            return DialAnswer("refused_rules", 403, rules.refusal or {}, "")
        if claim.kind == "replay":
            record = claim.record
            stored = json.loads(record.response_body or "{}")
            return DialAnswer("replay", record.status_code or 202, stored, record.call_id)
        if claim.kind == "agent_busy":
            return self._agent_busy(request, claim.live_call or "unknown")
        if claim.kind != "claimed":
            return DialAnswer(claim.kind, 0, {}, claim.record.call_id)
        # The key and the row are on disk; now the agent's row, once its check answered
        # (the claim took it already under the id the last check gave: confirmed, no hop).
        if target is None:
            target = self._check(request.agent)
        agent_id = await self._checked_agent_id(request.agent, target)
        if agent_id is not None:
            self._remember_agent_id(request.agent, agent_id)
        if placing is None or (agent_id is not None and agent_id != call.agent_id):
            holder, placing = await self.db(
                self._hold_agent, key.id, idem_key, call, agent_id, placing
            )
            if holder is not None or placing is None:
                return self._agent_busy(request, holder or "unknown")
        # Taken before the POST: when the agent's frames already arrive, following the call
        # needs no catch-up GET (see ``CallFollower.follow``).
        assert self._monitor is not None
        seen_from = (agent_id, self._monitor.watch_mark(agent_id)) if agent_id else None
        status_code, done = await self._dial(
            key, idem_key, call, request, placing, target, seen_from
        )
        return DialAnswer("claimed", status_code, done, call.id)

    def _remember_agent_id(self, agent: str, agent_id: str) -> None:
        _remember(self._agent_ids, agent_key(agent), agent_id, _AGENTS_REMEMBERED)

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
            agent = current.agent_id or agent_key(current.agent)
            return self._hold_agent_row(agent, call_id) is not None

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
        seen_from: SeenFrom = None,
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
        task = asyncio.create_task(self._after_dial(key, call, status, handle, seen_from))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        return status_code, answer

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

    async def _after_dial(
        self,
        key: ApiKeyRecord,
        call: CallRecord,
        status: str,
        handle: Dial | None,
        seen_from: SeenFrom = None,
    ) -> None:
        _URGENT.set(False)  # this task's own context: nobody waits for what follows
        await self.publish(f"call.{status}", call)
        await self.audit(key.id, "dial", status, call, call.detail)
        if status == "placed":
            self._spawn(self._follow(call, seen_from), f"gcdial-follow-{call.id}")
        elif status == "unknown" and handle is not None and self.config.resolve_later_s > 0:
            self._spawn(self._resolve_later(call, handle))
