"""A campaign's attempts as the service's calls, and its state changes as events.

The campaign runner tells every step of every attempt (:class:`AttemptUpdate`); ``CampaignCalls``
turns them, in order, into one call record per attempt (``source`` campaign, the campaign's key as
the placer, the journal's attempt id) and the same events a call placed through ``POST /v1/calls``
gets (``call.placing``, ``call.placed``, ``call.progress``, ``call.ended``, ``call.unknown``,
``call.not_placed``, ``call.refused``), on SSE and webhooks alike. The journal stays the
campaign's record; the call rows are its mirror for watchers, so a failure here is logged and
never stops the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from gcdial.campaign.progress import AttemptUpdate
from gcdial.serve.store import CallRecord

if TYPE_CHECKING:
    from gcdial.serve.campaigns import CampaignMeta
    from gcdial.serve.service_core import ServiceCore

__all__ = ["FINAL_STEPS", "CampaignCalls", "call_change", "campaign_call_id"]

logger = logging.getLogger("gcdial.serve")

FINAL_STEPS: Final = frozenset({"outcome", "unknown", "not_placed", "refused"})
"""Steps after which the attempt is settled (and the campaign's counts changed)."""

_EVENT_OF_STEP: Final[Mapping[str, str]] = {
    "dialing": "call.placing",
    "placed": "call.placed",
    "progress": "call.progress",
    "outcome": "call.ended",
    "unknown": "call.unknown",
    "not_placed": "call.not_placed",
    "refused": "call.refused",
}


def campaign_call_id(campaign_id: str, attempt_id: int) -> str:
    """The call id of one attempt: the same across runs, so a resume updates the same call."""
    return f"call_{campaign_id.removeprefix('cmp_')}_{attempt_id}"


def call_change(update: AttemptUpdate) -> dict[str, Any]:
    """What one step changes on the attempt's call record (``Store.update_call`` fields)."""
    if update.step == "dialing":
        return {"status": "placing", "agent_id": update.agent_id}
    if update.step == "placed":
        return {"status": "placed", "conversation_id": update.conversation_id}
    if update.step == "outcome":
        change = {"status": "placed", "outcome": update.outcome, "detail": update.detail}
        shown = {k: v for k, v in (update.wrapup or {}).items() if k != "source"}
        return {**change, "wrapup": json.dumps(shown)} if shown else change
    if update.step in ("unknown", "not_placed", "refused"):
        return {"status": update.step, "detail": update.detail}
    return {}


class CampaignCalls:
    """Mirrors one campaign run; ``on_attempt`` is the runner's hook, ``close`` at its end."""

    def __init__(
        self,
        service: ServiceCore,
        meta: CampaignMeta,
        on_settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self.meta = meta
        self._on_settled = on_settled
        self._queue: asyncio.Queue[AttemptUpdate | None] = asyncio.Queue()
        self._calls: dict[int, CallRecord] = {}
        self._task = asyncio.create_task(self._drain(), name=f"gcdial-serve-{meta.id}-calls")

    def on_attempt(self, update: AttemptUpdate) -> None:
        """The runner's hook: queue the step (the runner never waits for the store)."""
        self._queue.put_nowait(update)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _drain(self) -> None:
        while (update := await self._queue.get()) is not None:
            try:
                await self._apply(update)
            except Exception as exc:
                logger.warning(
                    "campaign %s attempt %s: the call record was not updated (%s)",
                    self.meta.id,
                    update.attempt,
                    type(exc).__name__,
                )
            if update.step in FINAL_STEPS and self._queue.empty() and self._on_settled is not None:
                with contextlib.suppress(Exception):
                    await self._on_settled()

    async def _apply(self, update: AttemptUpdate) -> None:
        service = self.service
        call = self._calls.get(update.attempt) or await self._record(update)
        change = {k: v for k, v in call_change(update).items() if v is not None}
        if change:
            call = await service.db(
                service.store.update_call, call.id, now=service.clock(), **change
            )
        self._calls[update.attempt] = call
        extra: dict[str, Any] = {"progress": update.progress} if update.progress is not None else {}
        if update.step == "outcome":
            # The runner records a call's outcome once its wrap-up came: both are known now.
            extra["wrapupExpected"] = bool(call.wrapup)
        await service.publish(_EVENT_OF_STEP[update.step], call, **extra)
        if update.step == "outcome" and call.wrapup:
            wrapup = json.loads(call.wrapup)
            await service.publish("call.wrapup", call, wrapup=wrapup, missing=False)
        if update.step in ("placed", "unknown", "not_placed", "refused"):
            await service.audit(call.api_key_id, "campaign.dial", call.status, call, call.detail)
        elif update.step == "outcome":
            await service.audit(call.api_key_id, "verdict", update.outcome or "", call)
        if update.step in FINAL_STEPS:
            self._calls.pop(update.attempt, None)

    async def _record(self, update: AttemptUpdate) -> CallRecord:
        """The attempt's call record: the stored one (a resumed run), else a new one."""
        service = self.service
        call_id = campaign_call_id(self.meta.id, update.attempt)
        found = await service.db(service.store.get_call, call_id)
        if found is not None:
            return found
        now = service.clock()
        origin = {
            "campaignName": self.meta.name,
            "contact": {"line": update.line, "key": update.external_id},
        }
        call = CallRecord(
            id=call_id,
            api_key_id=self.meta.api_key_id,
            agent=update.agent or update.agent_id or "",
            agent_id=update.agent_id,
            to=update.phone,
            status="placing",
            created_at=now,
            updated_at=now,
            source="campaign",
            campaign_id=self.meta.id,
            attempt_id=update.attempt,
            origin=json.dumps(origin),
        )
        await service.db(service.store.insert_call, call)
        return call


async def mirror_verdict(
    service: ServiceCore, campaign_id: str, attempt_id: int, *, placed: bool, by: str, note: str
) -> None:
    """A person's verdict on a campaign attempt (recorded in its journal) reaches the attempt's
    call: ``placed`` (its outcome stays unknown) or ``not_placed``, and a ``call.verdict`` event.
    A call that is no longer unknown, or not mirrored, is left alone."""
    store = service.store
    call = await service.db(store.get_call, campaign_call_id(campaign_id, attempt_id))
    if call is None or call.status != "unknown":
        return
    verdict = "placed" if placed else "not_placed"
    call = await service.db(
        store.update_call,
        call.id,
        now=service.clock(),
        status=verdict,
        outcome="unknown" if placed else None,
        detail=f"verdict by {by}: {verdict} ({note}); was: {call.detail or 'outcome unknown'}",
    )
    await service.publish("call.verdict", call, verdict=verdict, by=by)
