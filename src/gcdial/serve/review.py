"""Review over HTTP: verdicts on calls of unknown outcome; a campaign's unknowns, pinned contacts.

One place for what ``/v1`` and the page both do, so a verdict means the same wherever it comes from:

- a service call whose outcome is unknown gets one verdict (``placed`` / ``not_placed``): audited,
  published as ``call.verdict`` (SSE and webhooks), visible in ``GET /v1/calls/{id}``;
- a campaign's attempts of unknown outcome and its contacts pinned to an agent who is gone are
  read from, and decided in, the campaign's journal through :mod:`gcdial.campaign.review` (the
  functions ``gcdial campaign review`` uses), published as ``campaign.verdict`` and
  ``campaign.reassigned``.

Exactly one of two decisions taken at the same moment applies. In this process an asyncio lock
per subject queues them; across replicas the store's lease does (the campaign's own run lease for
a campaign, so no replica can start it meanwhile); in the journal, the check and the change are
one transaction. The loser gets a 409 saying who decided first and when. A campaign running
anywhere cannot be reviewed (its runner holds the journal, as for the CLI): pause it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from gcdial.campaign import review as journal_review
from gcdial.campaign.journal import Attempt, ContactRecord, Journal
from gcdial.errors import JournalError, JournalLockedError, ReviewConflictError
from gcdial.serve.call_views import call_json
from gcdial.serve.campaign_calls import mirror_verdict
from gcdial.serve.principal import sees_all
from gcdial.serve.problems import ApiProblem, problem_body
from gcdial.serve.store import ApiKeyRecord, CallRecord, body_fingerprint

if TYPE_CHECKING:
    from gcdial.serve.campaigns import CampaignManager, CampaignMeta
    from gcdial.serve.service_core import ServiceCore

__all__ = [
    "CampaignReview",
    "CampaignVerdictResult",
    "ReassignRequest",
    "ReassignResult",
    "Reviews",
    "VerdictAnswer",
    "VerdictRequest",
]

T = TypeVar("T")

LEASE_TTL_S = 30.0
"""A review decision holds its lease this long at most (a dead replica's lease expires)."""
LEASE_WAIT_S = 5.0
"""How long a decision waits for another one on the same subject before answering 409."""
MAX_ITEMS = 200
"""Attempts listed per campaign (the journal keeps them all; the CLI lists every one)."""
_BUSY_STATES = ("running", "pausing", "stopping")


class VerdictRequest(BaseModel):
    """A person's verdict on a call whose outcome is unknown, after checking Genesys Cloud."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    verdict: Literal["placed", "not_placed"] = Field(
        description="placed: it did ring (a conversation exists); not_placed: it never rang."
    )
    note: Annotated[str, Field(max_length=500)] = ""


class ReassignRequest(BaseModel):
    """Give the pending contacts pinned to one agent to another agent, or to any (``any``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    from_: Annotated[str, Field(alias="from", min_length=1, max_length=200)] = Field(
        description="The agent the contacts are pinned to (email or id, as in the CSV)."
    )
    to: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Another agent (email or id), or 'any' for whoever is free."
    )


class CampaignRef(BaseModel):
    """The campaign a review item belongs to."""

    id: str
    name: str
    state: str
    agents: list[str] = Field(default=[], description="The campaign's agents (reassign targets).")


class ReviewContact(BaseModel):
    """A contact of the campaign's list."""

    line: int
    phone: str
    name: str | None = None
    externalId: str | None = None
    agent: str | None = None
    status: str
    outcome: str | None = None
    detail: str | None = None


class AttemptEvidence(BaseModel):
    """One dial attempt of the contact, as the journal recorded it."""

    attemptId: int
    number: int
    state: str
    agent: str | None = None
    at: str
    conversationId: str | None = None
    outcome: str | None = None
    errorCode: str | None = None
    detail: str | None = None


class JournalEvent(BaseModel):
    """What the run saw or decided about the contact (resolver findings included)."""

    at: str
    kind: str
    attemptId: int | None = None
    detail: str | None = None


class ReviewAttempt(BaseModel):
    """An attempt whose outcome is unknown: it may or may not have rung; never re-dialed."""

    attemptId: int
    contact: ReviewContact
    attempts: list[AttemptEvidence]
    events: list[JournalEvent]
    verdict: str = Field(description="Where to POST the verdict.")


class PinnedContacts(BaseModel):
    """Pending contacts pinned to one agent; ``gone``: the last run could not use that agent."""

    agent: str
    contacts: int
    gone: bool


class MissingWrapup(BaseModel):
    """A call whose wrap-up was waited for and never came: the retry policy decided for it;
    check its disposition in Genesys Cloud."""

    attemptId: int
    contact: ReviewContact
    attempt: AttemptEvidence


class CampaignReview(BaseModel):
    """What a campaign needs a person for."""

    campaign: CampaignRef
    reviewable: bool = Field(description="False while the campaign runs: pause it first.")
    unknown: list[ReviewAttempt]
    pinned: list[PinnedContacts]
    wrapupsMissing: list[MissingWrapup] = Field(default_factory=list)


class CampaignVerdictResult(BaseModel):
    """A verdict recorded on a campaign attempt."""

    campaign: CampaignRef
    attemptId: int
    verdict: Literal["placed", "not_placed"]
    by: str
    contact: ReviewContact


class ReassignResult(BaseModel):
    """Pinned contacts moved to another agent (or to any)."""

    campaign: CampaignRef
    from_: str = Field(alias="from")
    to: str
    moved: int
    by: str


@dataclass(frozen=True)
class VerdictAnswer:
    """What a verdict request answers: a fresh answer, or the replay of an earlier one."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def _hhmm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")


class Reviews:
    """The review decisions of one service process (and the reads they rest on)."""

    def __init__(self, service: ServiceCore, campaigns: CampaignManager | None) -> None:
        self.service = service
        self.campaigns = campaigns
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, how many use it
        # Decisions of this process are serialised by the locks, so one owner name is enough.
        self._owner = f"{service.config.instance_id}:review:{uuid.uuid4().hex[:8]}"

    # exclusion ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _exclusive(
        self, lease: str, busy: Callable[[str], ApiProblem], now: Callable[[], float]
    ) -> AsyncIterator[None]:
        """Hold ``lease``: queued behind decisions of this process (a lock), then the store's
        lease, waiting a moment for another holder (another replica's review, the background
        resolver of a call); ``busy(holder)`` is raised when someone holds it for longer, or
        when a campaign's run holds it."""
        lock, users = self._locks.get(lease, (asyncio.Lock(), 0))
        self._locks[lease] = (lock, users + 1)
        try:
            async with lock:
                await self._take(lease, busy, now)
                try:
                    yield
                finally:
                    await self.service.db(self.service.store.release_lease, lease, self._owner)
        finally:
            lock, users = self._locks[lease]
            if users <= 1:
                del self._locks[lease]
            else:
                self._locks[lease] = (lock, users - 1)

    async def _take(
        self, lease: str, busy: Callable[[str], ApiProblem], now: Callable[[], float]
    ) -> None:
        service = self.service
        store = service.store
        deadline = time.monotonic() + LEASE_WAIT_S
        while not await service.db(
            store.acquire_lease, lease, self._owner, now=now(), ttl_s=LEASE_TTL_S
        ):
            holder = await service.db(store.lease_holder, lease, now=now()) or ""
            # A campaign's run holds its lease for as long as it runs: no use waiting for that.
            if lease.startswith("campaign:") and ":review:" not in holder:
                raise busy(holder)
            if time.monotonic() > deadline:
                raise busy(holder)
            await asyncio.sleep(0.1)

    # service calls --------------------------------------------------------------------------

    async def unknown_calls(self, key: ApiKeyRecord, limit: int = 100) -> list[CallRecord]:
        """The service's calls of unknown outcome this key may see, newest first (a campaign's
        attempts, when the store mirrors them as calls, are the campaign's review, not these)."""
        found = await self.service.db(
            self.service.store.list_calls,
            status="unknown",
            api_key_id=None if sees_all(key) else key.id,
            limit=limit,
        )
        return [call for call in found if _campaign_of(call) is None]

    async def _decided(self, call: CallRecord) -> str:
        """Who recorded the verdict on ``call``, and when, from its events."""
        events = await self.service.db(self.service.store.events_after, 0, call_id=call.id)
        for event in reversed(events):
            if event.type == "call.verdict":
                data = json.loads(event.data)
                return (
                    f"Already recorded: {str(data.get('verdict', '')).replace('_', ' ')} "
                    f"by {data.get('by', '?')} at {_hhmm(event.at)}."
                )
        return f"It is no longer unknown (now {call.status})."

    async def call_verdict(
        self, key: ApiKeyRecord, call_id: str, body: VerdictRequest
    ) -> CallRecord:
        """Record the one verdict on an unknown call; a second one is a 409 saying who was first."""
        service = self.service
        call = await self.service.own_call(key, call_id)

        def busy(_: str) -> ApiProblem:
            return ApiProblem(
                409,
                "verdict_in_progress",
                "Another verdict on this call is being recorded.",
                hint="Reload in a moment to see it.",
            )

        campaign = _campaign_of(call)
        if campaign is not None:
            # The campaign's journal is its record: a verdict there, or the two would disagree.
            raise ApiProblem(
                409,
                "campaign_call",
                "This call is an attempt of campaign "
                f"{campaign[0]}: record the verdict on the campaign's attempt.",
                hint=f"POST /v1/campaigns/{campaign[0]}/attempts/{campaign[1]}/verdict",
            )
        async with self._exclusive(f"verdict:{call_id}", busy, service.clock):
            call = await self.service.own_call(key, call_id)
            if call.status != "unknown":
                raise ApiProblem(
                    409,
                    "already_resolved",
                    f"{await self._decided(call)} Nothing was changed.",
                    hint="Someone else recorded a verdict first; the list is refreshed.",
                )
            why = f"verdict by {key.name}: {body.verdict}" + (
                f" ({body.note})" if body.note else ""
            )
            # "placed" with no way left to learn how it ended: the outcome stays unknown, but the
            # call is settled; "not_placed" is settled by its status.
            call = await service.db(
                service.store.update_call,
                call.id,
                now=service.clock(),
                status=body.verdict,
                outcome="unknown" if body.verdict == "placed" else None,
                detail=f"{why}; was: {call.detail or 'outcome unknown'}",
            )
        service.metrics.review_verdicts.labels("call", body.verdict).inc()
        await service.audit(key.id, "verdict", body.verdict, call, body.note or None)
        await service.publish("call.verdict", call, verdict=body.verdict, by=key.name)
        return call

    async def call_verdict_once(
        self, key: ApiKeyRecord, call_id: str, body: VerdictRequest, idem: str | None
    ) -> VerdictAnswer:
        """``call_verdict`` under an optional Idempotency-Key: the same key and body replay the
        first answer (a 409 included); another body is a 422; one still running, a 409."""
        if idem is None:
            return VerdictAnswer(200, call_json(await self.call_verdict(key, call_id, body)))
        await self.service.own_call(key, call_id)
        service = self.service
        scoped = "verdict:" + idem
        fingerprint = body_fingerprint({"call": call_id, **body.model_dump()})
        claim = await service.db(
            service.store.claim_idempotency,
            key.id,
            scoped,
            fingerprint,
            call_id,
            now=service.clock(),
            ttl_s=service.config.idempotency_ttl_s,
            owner=service.config.instance_id,
        )
        if claim.kind == "replay":
            stored = json.loads(claim.record.response_body or "{}")
            return VerdictAnswer(claim.record.status_code or 200, stored, replayed=True)
        if claim.kind == "mismatch":
            raise ApiProblem(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different verdict or call.",
                hint="Use a new key for a different request; retries must send the same body.",
                path="header:Idempotency-Key",
            )
        if claim.kind == "in_progress":
            raise ApiProblem(
                409,
                "idempotency_key_in_progress",
                "A request with this Idempotency-Key is still recording the verdict.",
                headers={"Retry-After": "1"},
                path="header:Idempotency-Key",
            )
        try:
            answer = VerdictAnswer(200, call_json(await self.call_verdict(key, call_id, body)))
        except ApiProblem as problem:
            answer = VerdictAnswer(problem.status, problem_body(problem.detail))
            await service.db(
                service.store.complete_idempotency,
                key.id,
                scoped,
                answer.status_code,
                json.dumps(answer.body),
            )
            raise
        await service.db(
            service.store.complete_idempotency,
            key.id,
            scoped,
            answer.status_code,
            json.dumps(answer.body),
        )
        return answer

    # campaigns ------------------------------------------------------------------------------

    def _manager(self) -> CampaignManager:
        if self.campaigns is None:
            raise ApiProblem(404, "not_found", "This service runs no campaigns.")
        return self.campaigns

    async def campaign_review(self, meta: CampaignMeta) -> dict[str, Any]:
        """The campaign's attempts needing a verdict (with their evidence) and pinned contacts."""
        journals = self._manager().journals

        def read() -> tuple[
            list[journal_review.ReviewItem],
            list[journal_review.PinnedAgent],
            list[dict[str, Any]],
        ]:
            opened = journals.read(meta.id)
            if opened is None:
                return [], [], []
            with opened as journal:
                items = journal_review.needs_review(journal, limit=MAX_ITEMS)
                missing = [
                    {
                        "attemptId": a.id,
                        "contact": _contact_json(journal.contacts.get(a.contact_id)),
                        "attempt": _attempt_json(a),
                    }
                    for a in journal.attempts.missing_wrapups()[:MAX_ITEMS]
                ]
                return items, journal_review.pinned_agents(journal), missing

        try:
            items, pinned, missing = await asyncio.to_thread(read)
        except JournalError as exc:
            raise ApiProblem(409, "journal_unusable", exc.message, hint=exc.hint) from None
        return {
            "campaign": _campaign_ref(meta),
            "reviewable": meta.state not in _BUSY_STATES,
            "unknown": [_review_item(meta, item) for item in items if item.attempt is not None],
            "pinned": [{"agent": p.agent, "contacts": p.contacts, "gone": p.gone} for p in pinned],
            "wrapupsMissing": missing,
        }

    async def campaigns_to_review(self, key: ApiKeyRecord) -> list[dict[str, Any]]:
        """The review of each recent campaign of ``key`` that needs a person."""
        manager = self._manager()
        found = []
        for meta in await asyncio.to_thread(manager.recent, key):
            review = await self.campaign_review(meta)
            if review["unknown"] or review["pinned"] or review["wrapupsMissing"]:
                found.append(review)
        return found

    async def _in_journal(
        self, key: ApiKeyRecord, meta: CampaignMeta, change: Callable[[Journal], T]
    ) -> tuple[T, CampaignMeta]:
        """Apply ``change`` to the campaign's journal, alone (refused while the campaign runs);
        a finished campaign given contacts to dial again becomes paused, still alone."""
        manager = self._manager()

        def running(holder: str = "") -> ApiProblem:
            where = "" if not holder or manager.runs(meta.id) else " (on another replica)"
            return ApiProblem(
                409,
                "campaign_running",
                f"Campaign {meta.name} is running{where}: its unknowns and pinned contacts can "
                "be changed only while it is paused.",
                hint="Pause the campaign, record the verdict or reassign, then resume it.",
            )

        if manager.runs(meta.id):
            raise running()
        if not await asyncio.to_thread(manager.journals.exists, meta.id):
            raise ApiProblem(
                409,
                "campaign_not_started",
                f"Campaign {meta.name} has not run yet: nothing to review.",
            )

        def apply() -> T:
            opened = manager.journals.write(meta.id)
            if opened is None:
                raise JournalError(f"Campaign {meta.name} has no journal.")
            with opened as journal:
                return change(journal)

        async with self._exclusive(f"campaign:{meta.id}", running, time.time):
            # The state as it is now, not as the request's caller loaded it.
            fresh = await manager.find(meta.id, key)
            if fresh.state in _BUSY_STATES or manager.runs(meta.id):
                raise running()
            try:
                done = await asyncio.to_thread(apply)
                return done, await asyncio.to_thread(manager.reopen, fresh)
            except JournalLockedError:
                raise running("elsewhere") from None
            except ReviewConflictError as exc:
                raise ApiProblem(409, "already_resolved", exc.message, hint=exc.hint) from None
            except journal_review.ReviewNotFoundError:
                raise ApiProblem(404, "not_found", "No such attempt in this campaign.") from None
            except JournalError as exc:
                raise ApiProblem(409, "journal_unusable", exc.message, hint=exc.hint) from None

    async def campaign_verdict(
        self, key: ApiKeyRecord, meta: CampaignMeta, attempt_id: int, body: VerdictRequest
    ) -> dict[str, Any]:
        """Record the verdict on a campaign attempt of unknown outcome (the journal's function)."""
        placed = body.verdict == "placed"
        note = body.note or "checked in Genesys Cloud"

        def change(journal: Journal) -> ContactRecord:
            return journal_review.verdict_on_attempt(
                journal, attempt_id, placed=placed, note=note, by=key.name
            )

        contact, meta = await self._in_journal(key, meta, change)
        await mirror_verdict(
            self.service, meta.id, attempt_id, placed=placed, by=key.name, note=note
        )
        result = {
            "campaign": _campaign_ref(meta),
            "attemptId": attempt_id,
            "verdict": body.verdict,
            "by": key.name,
            "contact": _contact_json(contact),
        }
        detail = f"{meta.id} attempt {attempt_id} line {contact.line}" + (
            f": {body.note}" if body.note else ""
        )
        self.service.metrics.review_verdicts.labels("campaign_attempt", body.verdict).inc()
        await self.service.audit(key.id, "campaign.verdict", body.verdict, None, detail)
        await self._publish("campaign.verdict", meta, result)
        return result

    async def reassign(
        self, key: ApiKeyRecord, meta: CampaignMeta, body: ReassignRequest
    ) -> dict[str, Any]:
        """Move the pending contacts pinned to one agent (the journal's function)."""
        if (
            key.agents
            and body.to.lower() != journal_review.ANY_AGENT
            and body.to.lower() not in key.agents
        ):
            raise ApiProblem(
                403, "agent_not_allowed", f"Your API key may not dial for {body.to!r}.", path="$.to"
            )
        if body.from_.strip().lower() == body.to.strip().lower():
            raise ApiProblem(
                422, "invalid_request", "from and to name the same agent.", path="$.to"
            )

        moved, meta = await self._in_journal(
            key, meta, lambda journal: journal_review.reassign(journal, body.from_, body.to)
        )
        if moved == 0:
            raise ApiProblem(
                409,
                "nothing_to_reassign",
                f"No pending contact of campaign {meta.name} is pinned to {body.from_}: nothing "
                "was changed (someone may have reassigned them first).",
                hint="The review list shows the pinned contacts as they are now.",
            )
        result = {
            "campaign": _campaign_ref(meta),
            "from": body.from_,
            "to": body.to,
            "moved": moved,
            "by": key.name,
        }
        detail = f"{meta.id}: {moved} contact(s) from {body.from_} to {body.to}"
        await self.service.audit(key.id, "campaign.reassign", "ok", None, detail)
        await self._publish("campaign.reassigned", meta, result)
        return result

    async def _publish(self, type: str, meta: CampaignMeta, result: dict[str, Any]) -> None:
        service = self.service
        data = {"type": type, **result, "apiKeyId": meta.api_key_id}
        event = await service.db(
            service.store.append_event, type, None, json.dumps(data), now=service.clock()
        )
        await service.hub.notify(event.id)


def _campaign_of(call: CallRecord) -> tuple[str, int] | None:
    """The campaign and attempt a call record mirrors, on a store that records them."""
    campaign_id = getattr(call, "campaign_id", None)
    attempt_id = getattr(call, "attempt_id", None)
    if not campaign_id or attempt_id is None:
        return None
    return str(campaign_id), int(attempt_id)


def _campaign_ref(meta: CampaignMeta) -> dict[str, Any]:
    agents = meta.settings.get("agents") or []
    listed = [str(a) for a in agents] if isinstance(agents, list) else []
    return {"id": meta.id, "name": meta.name, "state": meta.state, "agents": listed}


def _contact_json(contact: ContactRecord) -> dict[str, Any]:
    return {
        "line": contact.line,
        "phone": contact.phone,
        "name": contact.name,
        "externalId": contact.external_id,
        "agent": contact.agent,
        "status": contact.status.value,
        "outcome": contact.outcome,
        "detail": contact.detail,
    }


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "attemptId": attempt.id,
        "number": attempt.number,
        "state": attempt.state.value,
        "agent": attempt.agent or attempt.agent_id,
        "at": attempt.created_at.isoformat(timespec="seconds"),
        "conversationId": attempt.conversation_id,
        "outcome": attempt.outcome,
        "errorCode": attempt.error_code,
        "detail": attempt.detail,
    }


def _review_item(meta: CampaignMeta, item: journal_review.ReviewItem) -> dict[str, Any]:
    assert item.attempt is not None
    return {
        "attemptId": item.attempt.id,
        "contact": _contact_json(item.contact),
        "attempts": [_attempt_json(a) for a in item.attempts],
        "events": [
            {
                "at": str(e.get("at", "")),
                "kind": str(e.get("kind", "")),
                "attemptId": e.get("attempt_id"),
                "detail": e.get("detail"),
            }
            for e in item.events
        ],
        "verdict": f"/v1/campaigns/{meta.id}/attempts/{item.attempt.id}/verdict",
    }
