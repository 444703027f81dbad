"""Recovery of the dials a crash or a dead replica left: claims with no call sent, calls left
``placing`` (the resolution ladder, this replica's channel its witness), answers never given; the
loop that looks for them, and the watch that makes this replica a witness for other replicas'
dials in flight. The ladder and the witness book themselves are :mod:`gcdial.serve.recovery`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from gcdial.errors import GcdialError
from gcdial.resolve import Attempt, Evidence, LadderSettings, Resolution, Verdict
from gcdial.serve.call_views import call_json
from gcdial.serve.following import CallFollower
from gcdial.serve.recovery import WitnessBook, attempt_from_origin, resolve_stale, settles_it
from gcdial.serve.service_core import ServiceCore, ServicePart
from gcdial.serve.store import CallRecord

__all__ = ["DialRecovery"]

logger = logging.getLogger("gcdial.serve")

_RECOVERY_EVERY_S = 30.0
_WATCH_EVERY_S = 2.0  # how often a replica reads which agents have a dial in flight anywhere
_LADDER_GRACE_S = 10.0  # no "not placed" from a recovery ladder sooner than this after its lease


class DialRecovery(ServicePart):
    """The dials other processes left unsettled: ``open()`` after the core's, ``close()`` at
    the end."""

    def __init__(self, core: ServiceCore, follower: CallFollower) -> None:
        super().__init__(core)
        self._witness: WitnessBook | None = None
        # Dead replicas' calls whose ladder runs in this process.
        self._laddering: set[str] = set()
        self._follow = follower.follow

    def open(self) -> None:
        """The witness book, on the core's monitor (once ``ServiceCore.open`` made it)."""
        assert self._monitor is not None
        self._witness = WitnessBook(
            self._monitor, attempt_key=self.client.settings.attempt_attribute
        )

    def close(self) -> None:
        """Close the witness book."""
        if self._witness is not None:
            self._witness.close()

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

    async def watch_in_flight(self) -> None:
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

    async def recovery_loop(self) -> None:
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
