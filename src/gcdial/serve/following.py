"""Following a placed call to its end: its progress events, its outcome, its wrap-up; the ladder
of a call answered ``unknown``, gone on with in the background; hanging up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid

from gcdial.dialing import Dial, keep_resolving
from gcdial.errors import GcdialError
from gcdial.monitor import CallEvent, EventKind, classify
from gcdial.monitor.events import conversation_of, wrapup_expected
from gcdial.monitor.wrapup import Wrapup, WrapupWait
from gcdial.resolve import Verdict
from gcdial.serve.service_core import ServicePart, agent_key
from gcdial.serve.store import ApiKeyRecord, CallRecord

__all__ = ["CallFollower", "SeenFrom"]

SeenFrom = tuple[str, tuple[int, int] | None] | None
"""The agent a dial's check confirmed, and the monitor's mark (``CallMonitor.watch_mark``) when
that agent's frames were already arriving just before the POST (None when they were not)."""

logger = logging.getLogger("gcdial.serve")


class CallFollower(ServicePart):
    """The calls of the API after their answer, to their end."""

    async def resume(self) -> None:
        """Follow again the API's placed calls whose end is not recorded (at start-up: the
        process that followed them stopped)."""
        for placed in await self.db(self.store.calls_with_status, "placed"):
            # A campaign's calls are followed by its run (a resume reconciles them from the
            # journal): two followers would write two outcomes.
            if placed.outcome is None and placed.conversation_id and placed.source == "api":
                with contextlib.suppress(Exception):  # its agent stays held, now by this replica
                    agent = placed.agent_id or agent_key(placed.agent)
                    await self.db(self._hold_agent_row, agent, placed.id)
                self._spawn(self.follow(placed), f"gcdial-follow-{placed.id}")

    async def resolve_later(self, call: CallRecord, handle: Dial) -> None:
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
            self._spawn(self.follow(call), f"gcdial-follow-{call.id}")

    async def follow(self, call: CallRecord, seen_from: SeenFrom = None) -> None:
        """Follow a placed call to its end: progress events, then the outcome (the verdict);
        then, for a call that has one, the agent's wrap-up (``call.wrapup``).

        Through its agent's topic (one subscription per agent, not one per call). The call is
        read once first (a frame may have come before the topic was in force), unless
        ``seen_from`` shows the agent's frames arriving since before the create-call left, on
        a channel healthy since: every frame of the call then came, or comes."""
        assert self._monitor is not None
        assert call.conversation_id is not None
        events: list[CallEvent] = []
        ended = False
        wait = self._wrapup_wait(call)
        seen = (
            seen_from is not None
            and seen_from[0] == call.agent_id
            and self._monitor.healthy_since(seen_from[1])
        )
        stream = self._monitor.follow(
            call.conversation_id,
            agent_id=call.agent_id,
            timeout_s=self.config.call_wait_timeout_s,
            catch_up=not seen,
            wrapup=wait,
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
