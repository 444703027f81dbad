"""The store behind ``gcdial serve``: one interface, two implementations (SQLite, PostgreSQL).

Everything the service must not forget across a restart, or share between replicas, lives here:

- idempotency keys, claimed *before* the create-call leaves (a unique row, not a lock in memory);
- call records and an append-only audit log;
- the event log, with monotonically increasing ids (SSE ``Last-Event-ID`` resume), and in the same
  transaction one outbox row per active webhook endpoint (durable delivery, never lost);
- webhook endpoints, API keys (only their SHA-256 hashes, and each key's rules policy), campaign
  leases with a heartbeat and an epoch (the fencing token a takeover increments);
- the campaigns uploaded over HTTP: their settings, state and uploaded list (``campaigns``), so
  that any replica can run, show or take over any of them;
- the do-not-call list (E.164 numbers, who added them, when, why) that every dial is checked
  against.

Times are epoch seconds (float) passed in by the caller, so tests control the clock. Methods are
synchronous; the service calls them from a worker thread. Every implementation passes the same
tests (``tests/serve/test_store.py`` over the ``store`` fixture).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gcdial.serve.budget import BudgetEvidence, BudgetGrant

__all__ = [
    "RULES_POLICIES",
    "SCHEMA_VERSION",
    "ApiKeyRecord",
    "AuditEntry",
    "CallRecord",
    "CampaignRecord",
    "Claim",
    "ClaimKind",
    "Delivery",
    "DncEntry",
    "Event",
    "IdempotencyRecord",
    "Store",
    "StoreError",
    "WebhookEndpoint",
    "body_fingerprint",
    "hash_api_key",
]

SCHEMA_VERSION = 9
"""2: calls gain their source (api or campaign) and origin. 3: calls gain ``wrapup``.
4: webhooks gain ``events``, the event types an endpoint subscribed to (NULL: every type).
5: ``live_agents``, the agents with a live call (one row per agent: exclusivity).
6: ``genesys_budget``, one Genesys request budget per OAuth client (gcdial.serve.budget).
7: ``dnc``, the service's do-not-call list; API keys gain ``rules`` (enforce or warn).
8: ``genesys_budget`` gains ``carry``, tokens taken when the window may already have ended.
9: ``leases.epoch`` (the fencing token) and ``campaigns`` (a campaign's settings, state and
uploaded list, which lived in ``serve-campaigns/`` on one replica's disk)."""

RULES_POLICIES: tuple[str, ...] = ("enforce", "warn")
"""What a key's dials do when a calling rule (window, do-not-call) forbids them: refused, or
placed with the warnings on the call."""

CallStatus = Literal["placing", "placed", "unknown", "not_placed", "refused"]
CALL_STATUSES: tuple[str, ...] = ("placing", "placed", "unknown", "not_placed", "refused")
ClaimKind = Literal["claimed", "replay", "mismatch", "in_progress", "agent_busy"]


class StoreError(Exception):
    """The store failed (unreachable, read-only, corrupt); the message names no secret."""


def body_fingerprint(body: Any) -> str:
    """A stable SHA-256 of a JSON-able request body (key order does not matter)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_api_key(key: str) -> str:
    """The only form in which an API key is stored: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IdempotencyRecord:
    """One claimed key. ``response_body`` is set (and ``state`` is ``done``) once answered."""

    scope: str
    key: str
    fingerprint: str
    call_id: str
    state: Literal["in_progress", "done"]
    created_at: float
    expires_at: float
    owner: str = ""
    status_code: int | None = None
    response_body: str | None = None


@dataclass(frozen=True)
class Claim:
    """What ``claim_idempotency`` found: ``claimed`` means the caller alone may dial now."""

    kind: ClaimKind
    record: IdempotencyRecord
    live_call: str | None = None
    """For ``agent_busy``: the call that holds the agent (the key was not claimed)."""


@dataclass(frozen=True)
class CallRecord:
    """A call as the service tracks it; ``request`` is the validated body, JSON text."""

    id: str
    api_key_id: str
    agent: str
    to: str
    status: str
    created_at: float
    updated_at: float
    idempotency_key: str = ""
    agent_id: str | None = None
    conversation_id: str | None = None
    outcome: str | None = None
    detail: str | None = None
    request: str = "{}"
    # Who placed it: ``api`` (POST /v1/calls or the page) or ``campaign`` (then the campaign's
    # id, the journal's attempt id, and ``origin``: JSON with the campaign's name and the contact's
    # line and key, nothing more personal than the number already shown).
    source: str = "api"
    campaign_id: str | None = None
    attempt_id: int | None = None
    origin: str = "{}"
    # The agent's wrap-up once it came (JSON ``{code, name, notes, at}``), else None.
    wrapup: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One append-only audit line: who (key), what (action), which agent and number, result."""

    at: float
    api_key_id: str
    action: str
    result: str
    call_id: str | None = None
    agent: str | None = None
    number: str | None = None
    detail: str | None = None
    id: int = 0


@dataclass(frozen=True)
class Event:
    """One call event; ``id`` increases monotonically across the whole store."""

    id: int
    type: str
    call_id: str | None
    data: str
    at: float


@dataclass(frozen=True)
class WebhookEndpoint:
    """A registered receiver. ``secret`` signs deliveries; it is shown to the client only once."""

    id: str
    url: str
    secret: str
    created_at: float
    api_key_id: str = ""
    description: str = ""
    active: bool = True
    # The event types it subscribed to; None means every type (as before subscriptions).
    events: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Delivery:
    """One outbox row: an event to deliver to one endpoint."""

    id: int
    endpoint_id: str
    event_id: int
    attempts: int
    next_attempt_at: float
    event: Event
    last_error: str | None = None
    state: str = "pending"  # pending, delivered, dead
    done_at: float | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: its hash, never the key. Empty ``agents`` means every agent."""

    id: str
    name: str
    key_hash: str
    created_at: float
    scopes: tuple[str, ...] = ("dial", "watch")
    agents: tuple[str, ...] = ()
    rate_per_minute: int = 60
    prefix: str = ""
    revoked_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    rules: str = "enforce"  # one of RULES_POLICIES


@dataclass(frozen=True)
class DncEntry:
    """One number of the do-not-call list (E.164), who added it, when, and why."""

    number: str
    added_at: float
    added_by: str
    reason: str | None = None


CAMPAIGN_STATES: tuple[str, ...] = (
    "created", "running", "pausing", "paused", "stopping", "stopped", "finished", "failed"
)  # fmt: skip
CAMPAIGN_FIELDS = ("state", "error", "stop_reason", "history", "contacts", "settings")


@dataclass
class CampaignRecord:
    """A campaign uploaded over HTTP (its list is kept beside it: :meth:`Store.campaign_csv`).

    ``state``: created, running, pausing, paused, stopping, stopped, finished, failed. A state of
    ``pausing``/``stopping`` written while another replica runs the campaign is that replica's
    order, read on its next heartbeat."""

    id: str
    name: str
    api_key_id: str
    created_at: float
    settings: dict[str, Any]
    state: str = "created"
    # The list's contacts as the upload's check counted them: the total shown before the first
    # run creates the journal (which counts them from then on).
    contacts: int | None = None
    error: str | None = None
    stop_reason: str | None = None
    history: list[str] = field(default_factory=list)


@runtime_checkable
class Store(Protocol):
    """The persistence interface of ``gcdial serve``; see the module docstring."""

    def schema_version(self) -> int:
        """The schema version the open store has (migrations bring it to ``SCHEMA_VERSION``)."""
        ...

    def check_writable(self) -> None:
        """Raise ``StoreError`` unless a write succeeds now (``/readyz``)."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    # idempotency
    def claim_idempotency(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        call_id: str,
        *,
        now: float,
        ttl_s: float,
        owner: str = "",
        agent: str | None = None,
        agent_ttl_s: float = 0.0,
        durable: bool = True,
    ) -> Claim:
        """Atomically claim ``(scope, key)``, or report the existing claim.

        ``claimed``: a new row (state ``in_progress``) was written durably; only this caller may
        dial. ``replay``: same fingerprint and ``done``; ``in_progress``: same fingerprint, still
        being placed; ``mismatch``: another body. An expired row is replaced by a new claim.
        With ``agent`` (its canonical key: the user id) the agent is claimed for ``call_id`` in
        the same transaction (see :meth:`claim_agent`); when another live call holds it nothing
        is written and the answer is ``agent_busy`` naming that call.

        ``durable=False``: committed (every reader sees it, a crash of the process keeps it)
        but not yet forced to disk where that costs a sync of its own (SQLite): the caller must
        not act on the claim (send its create-call) until a later durable write has returned
        (``insert_call(durable=True)``), which makes this one durable too.
        """
        ...

    def complete_idempotency(self, scope: str, key: str, status_code: int, body: str) -> None:
        """Record the answer for a claimed key (state becomes ``done``)."""
        ...

    def drop_claim(self, scope: str, key: str, call_id: str) -> None:
        """Undo a claim whose dial stopped before anything was sent or published (its agent
        turned out busy): the key's ``in_progress`` row for ``call_id`` and that call's
        ``placing`` row go, as if never claimed (a retry of the key dials afresh)."""
        ...

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The record for a key, expired or not."""
        ...

    def stale_claims(self, older_than: float) -> list[IdempotencyRecord]:
        """Claims still ``in_progress`` that were created before ``older_than`` (crash recovery)."""
        ...

    def purge_expired(self, now: float) -> int:
        """Delete expired idempotency keys and expired leases (page sessions among them, which
        otherwise pile up: a session row outlives its cookie); return how many rows."""
        ...

    # calls
    def insert_call(self, call: CallRecord, *, durable: bool = False) -> None:
        """Store a new call (its id must be new). ``durable``: on disk before this returns, and
        every write committed before it too, so a power cut forgets none of them (SQLite syncs
        the log; a PostgreSQL commit always is)."""
        ...

    def update_call(self, call_id: str, *, now: float, **changes: Any) -> CallRecord:
        """Change fields of a call (status, conversation_id, outcome, detail, agent_id)."""
        ...

    def get_call(self, call_id: str) -> CallRecord | None:
        """One call, or None."""
        ...

    def cursor_key(self) -> bytes:
        """The key that signs list cursors, the same on every replica sharing the store."""
        ...

    def list_calls(
        self,
        *,
        agent: str | None = None,
        since: float | None = None,
        status: str | None = None,
        api_key_id: str | None = None,
        limit: int = 100,
        source: str | None = None,
        campaign_id: str | None = None,
        until: float | None = None,
        outcome: str | None = None,
        label: str | None = None,
        attributes: dict[str, str] | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[CallRecord]:
        """Calls newest first, filtered; ``agent`` matches the given agent or its resolved id;
        ``source`` is ``api`` or ``campaign``; ``campaign_id`` one campaign's calls; ``until``
        ends the time range (exclusive); ``outcome`` matches the outcome, or the status while
        there is none; ``label`` and ``attributes`` (every one must match) what the client sent;
        ``before`` is a page's last (created_at, id): only calls strictly older in that order,
        so a page boundary holds however many calls are inserted meanwhile."""
        ...

    def calls_with_status(self, status: str, limit: int = 1000) -> list[CallRecord]:
        """Calls currently in ``status`` (e.g. ``placed`` ones to watch after a restart)."""
        ...

    # audit
    def append_audit(self, entry: AuditEntry) -> int:
        """Append one audit line; return its id. There is no update or delete."""
        ...

    def list_audit(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit lines in order."""
        ...

    # events and the webhook outbox
    def append_event(self, type: str, call_id: str | None, data: str, *, now: float) -> Event:
        """Append an event and, in the same transaction, one outbox row per active endpoint."""
        ...

    def events_after(
        self, after_id: int, *, call_id: str | None = None, limit: int = 500
    ) -> list[Event]:
        """Events with id > ``after_id``, oldest first (optionally of one call)."""
        ...

    def last_event_id(self) -> int:
        """The highest event id (0 when none)."""
        ...

    def add_webhook(self, endpoint: WebhookEndpoint) -> None:
        """Register an endpoint."""
        ...

    def list_webhooks(self) -> list[WebhookEndpoint]:
        """Active endpoints."""
        ...

    def get_webhook(self, endpoint_id: str) -> WebhookEndpoint | None:
        """One active endpoint, or None."""
        ...

    def delete_webhook(self, endpoint_id: str) -> bool:
        """Deactivate an endpoint and drop its pending deliveries; False when unknown."""
        ...

    def claim_deliveries(
        self, owner: str, *, now: float, lease_s: float, limit: int = 50
    ) -> list[Delivery]:
        """Due deliveries not leased by anyone else, now leased to ``owner`` until now+lease_s."""
        ...

    def ack_delivery(self, delivery_id: int, *, now: float) -> None:
        """The receiver accepted it: remove it from the outbox."""
        ...

    def fail_delivery(
        self, delivery_id: int, *, next_attempt_at: float | None, error: str, now: float
    ) -> None:
        """An attempt failed: retry at ``next_attempt_at``, or give up (dead letter) when None."""
        ...

    def outbox_backlog(self) -> int:
        """Deliveries still pending (for ``/metrics``)."""
        ...

    def list_deliveries(
        self, endpoint_id: str, *, state: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """One endpoint's deliveries, newest first, in ``state`` if given."""
        ...

    def redeliver(self, endpoint_id: str, delivery_id: int, *, now: float) -> bool:
        """Put a dead delivery back in line, due now, with the whole retry schedule ahead of
        it again; False when there is no such dead delivery of that endpoint."""
        ...

    def dead_deliveries(self, limit: int = 100) -> list[Delivery]:
        """Deliveries given up on, newest first."""
        ...

    # API keys
    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key (by hash); its name must be unique among unrevoked keys."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The unrevoked key with this hash, or None."""
        ...

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The unrevoked key with this id, or None."""
        ...

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included."""
        ...

    def revoke_api_key(self, id_or_name: str, *, now: float) -> bool:
        """Revoke by id or name; False when no unrevoked key matches."""
        ...

    # agents with a live call: at most one per agent, across processes and replicas
    def claim_agent(
        self, agent: str, call_id: str, *, owner: str, now: float, ttl_s: float
    ) -> str | None:
        """Give ``agent`` to ``call_id`` until released or ``now + ttl_s`` (renewed by
        :meth:`renew_agents` while ``owner`` lives). None when granted (or already held by
        ``call_id``); else the id of the live call that holds the agent."""
        ...

    def rebind_agent(self, old_call_id: str, new_call_id: str) -> None:
        """The holder's call got its final id (a campaign attempt, once journaled)."""
        ...

    def release_agent(self, call_id: str) -> None:
        """The call ended or was not placed: the agent it held (if any) is free."""
        ...

    def renew_agents(self, owner: str, *, now: float, ttl_s: float) -> int:
        """``owner``'s heartbeat: drop its rows whose call is settled (a release that failed, say,
        under a store fault: renewed, such a row held its agent for good), then extend the rest
        but those of calls of unknown outcome (they hold their agent ``ttl_s`` at most); a dead
        owner's rows expire. Returns how many were extended."""
        ...

    def live_agents(self, *, now: float) -> dict[str, str]:
        """Unexpired claims: agent -> call id."""
        ...

    # the Genesys request budget, one row per OAuth client, shared by every replica
    def take_budget(
        self, key: str, want: int, *, now: float, evidence: BudgetEvidence | None
    ) -> BudgetGrant:
        """In one transaction on ``key``'s row: apply ``evidence``, turn an ended window and
        grant up to ``want`` tokens (:func:`gcdial.serve.budget.decide`)."""

    # the do-not-call list
    def add_dnc(self, entries: Sequence[DncEntry]) -> int:
        """Add numbers in one transaction (all or none); a number already listed keeps its
        entry. Returns how many were new."""
        ...

    def remove_dnc(self, number: str) -> bool:
        """Take a number off the list; False when it was not on it."""
        ...

    def dnc_listed(self, numbers: Sequence[str]) -> dict[str, DncEntry]:
        """The entries of those of ``numbers`` on the list (raises ``StoreError`` when the store
        cannot answer: a dial is then refused, never sent unchecked)."""
        ...

    def list_dnc(
        self, *, limit: int = 100, before: tuple[float, str] | None = None
    ) -> list[DncEntry]:
        """The list, newest first by (added_at, number); ``before`` a page's last entry."""
        ...

    # campaigns
    def insert_campaign(self, record: CampaignRecord, csv_text: str) -> None:
        """Keep a new campaign and its uploaded list (its id must be new)."""
        ...

    def get_campaign(self, campaign_id: str) -> CampaignRecord | None:
        """One campaign, or None."""
        ...

    def campaign_csv(self, campaign_id: str) -> str | None:
        """The campaign's uploaded list, as text, or None."""
        ...

    def list_campaigns(
        self, *, api_key_id: str | None = None, limit: int | None = None
    ) -> list[CampaignRecord]:
        """Campaigns newest first (of one key when given; every one when None)."""
        ...

    def update_campaign(
        self,
        campaign_id: str,
        *,
        states: Sequence[str] | None = None,
        fence: tuple[str, str, int] | None = None,
        **changes: Any,
    ) -> CampaignRecord | None:
        """Change fields (``CAMPAIGN_FIELDS``) of a campaign; None when nothing was changed:
        no such campaign, its state not among ``states`` (when given), or ``fence`` (lease name,
        owner, epoch) not held as given any more (a replica that was taken over writes nothing).
        """
        ...

    def orphaned_campaigns(self, *, now: float) -> list[CampaignRecord]:
        """Campaigns in ``running``, ``pausing`` or ``stopping`` whose lease ``campaign:<id>`` is
        absent or expired: their replica died (the takeover's question)."""
        ...

    # leases (campaigns, page sessions, the ladder)
    def acquire_lease(self, name: str, owner: str, *, now: float, ttl_s: float) -> int | None:
        """Take or renew ``name`` for ``owner``: the lease's epoch when ``owner`` now holds it
        (1 or more), None when another owner holds it unexpired. A renewal by the holder keeps
        the epoch; a new lease, or one taken after it expired (by anyone), gets the next."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up (only if ``owner`` holds it); its epoch is kept for the next."""
        ...

    def lease_holder(self, name: str, *, now: float) -> str | None:
        """Who holds an unexpired lease on ``name``."""
        ...
