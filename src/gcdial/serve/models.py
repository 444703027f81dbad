"""The API's request and response models; the OpenAPI document is generated from them.

Request models are strict (unknown fields are errors, numbers are checked before anything is
claimed or dialed); response models describe exactly what the service sends.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gcdial.campaign.csvinput import is_valid_time_zone
from gcdial.errors import InvalidPhoneNumberError
from gcdial.phone import to_e164
from gcdial.serve.problems import ErrorDetail

__all__ = [
    "WEBHOOK_EVENT_TYPES",
    "AgentState",
    "AgentsPage",
    "CallCampaign",
    "CallContact",
    "CallLinks",
    "CallOverride",
    "CallRequest",
    "CallResource",
    "CallsPage",
    "CampaignAttempt",
    "CampaignAttemptsPage",
    "CampaignDetail",
    "CampaignDetailResource",
    "CampaignList",
    "CampaignPreview",
    "CampaignResource",
    "DncAdd",
    "DncEntryResource",
    "DncImport",
    "DncImported",
    "DncPage",
    "PresenceMode",
    "RefusedCall",
    "ReviewList",
    "RuleRefusal",
    "RuleWarning",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookDeliveries",
    "WebhookDelivery",
    "WebhookPing",
    "WebhookResource",
]

CallStatusName = Literal["placing", "placed", "unknown", "not_placed", "refused"]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class CallOverride(BaseModel):
    """Dial against a calling rule (window, do-not-call): needs a key with the ``override``
    scope and a reason, which goes to the audit log."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="Why this call may go against the rules (e.g. the customer asked to be "
        "called back now); kept in the audit log."
    )


class CallRequest(BaseModel):
    """``POST /v1/calls``: ring ``agent`` (id or email), then connect them to ``to``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    agent: ShortText = Field(description="The agent's user id or email.")
    # Before the numbers: they are read in this country.
    defaultCountry: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    to: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        description="The customer's number, E.164 (+14155550100) or national with defaultCountry."
    )
    callerId: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    callerIdName: ShortText | None = None
    queueId: ShortText | None = None
    attributes: (
        dict[
            Annotated[str, Field(min_length=1, max_length=100)],
            Annotated[str, Field(max_length=1000)],
        ]
        | None
    ) = Field(default=None, max_length=50)
    label: ShortText | None = None
    timeZone: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="The customer's IANA time zone (America/Chicago), when the client knows "
        "it: the calling window is applied in it instead of the zones of the number.",
    )
    override: CallOverride | None = Field(
        default=None,
        description="Dial even if a calling rule forbids it now (the key needs the override "
        "scope); the call then carries the rules it broke in `warnings`.",
    )

    _to_e164: str = PrivateAttr(default="")
    _caller_id_e164: str | None = PrivateAttr(default=None)

    @field_validator("to", "callerId")
    @classmethod
    def _number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            to_e164(value, default_country=info.data.get("defaultCountry") or "US")
        except InvalidPhoneNumberError as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("timeZone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_time_zone(value):
            raise ValueError(f"unknown time zone {value[:64]!r}; use an IANA name such as "
                             "America/New_York")  # fmt: skip
        return value

    @model_validator(mode="after")
    def _normalise(self) -> CallRequest:
        """Both numbers in E.164 (read in ``defaultCountry``, else US) before anything is
        claimed or dialed; ``to`` itself stays as sent (the call resource shows both)."""
        country = self.defaultCountry or "US"
        self._to_e164 = to_e164(self.to, default_country=country)
        if self.callerId is not None:
            self._caller_id_e164 = to_e164(self.callerId, default_country=country)
        return self

    @property
    def to_e164(self) -> str:
        """The customer's number in E.164: what is dialed and stored."""
        return self._to_e164

    @property
    def caller_id_e164(self) -> str | None:
        """The caller id in E.164, if one was given."""
        return self._caller_id_e164


class CallLinks(BaseModel):
    """Where to look next."""

    self: str
    events: str


class CallCampaign(BaseModel):
    """The campaign that placed a call."""

    id: str
    name: str | None = None


class CallContact(BaseModel):
    """The campaign contact a call was for: its CSV line and key (``external_id``), if any."""

    line: int | None = None
    key: str | None = None


class CallWrapup(BaseModel):
    """The agent's wrap-up of the call: the code's id, its name, the notes, and when."""

    code: str | None = None
    name: str | None = None
    notes: str | None = None
    at: str | None = None


class RuleWarning(BaseModel):
    """A calling rule that forbade a call: which, why, and the contact's local time then."""

    rule: Literal["do_not_call", "calling_window", "unknown_time_zone", "no_calling_hours"]
    message: str
    localTime: str | None = Field(
        default=None,
        description="The contact's wall-clock time in each of its zones (e.g. `Mon 04:30 "
        "America/New_York`); null when no zone is known.",
    )


class CallResource(BaseModel):
    """A call placed through the service: by ``POST /v1/calls`` or the page (``source`` api),
    or by a campaign the service runs (``source`` campaign, with ``campaign`` and ``attemptId``,
    the attempt in the campaign's journal)."""

    id: str
    status: CallStatusName
    agent: str
    agentId: str | None = None
    to: str = Field(description="The customer's number in E.164: what was dialed.")
    toAsSent: str | None = Field(
        default=None,
        description="The number exactly as the client sent it (e.g. national, with spaces); "
        "null for calls a campaign placed.",
    )
    callerId: str | None = Field(
        default=None, description="The caller id shown to the customer, E.164, if one was set."
    )
    label: str | None = Field(default=None, description="The label the client gave the call.")
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="The client's attributes, as sent (e.g. a CRM ticket id): every event and "
        "webhook about the call carries them; list by them with ?attribute.NAME=VALUE.",
    )
    conversationId: str | None = None
    outcome: str | None = None
    ended: bool = False
    detail: str | None = None
    createdAt: str
    updatedAt: str
    source: Literal["api", "campaign"] = "api"
    campaign: CallCampaign | None = None
    attemptId: int | None = None
    contact: CallContact | None = None
    wrapup: CallWrapup | None = None
    warnings: list[RuleWarning] = Field(
        default_factory=list,
        description="The calling rules the call went against: placed by a key whose rules "
        "policy is `warn`, or with an `override`; empty otherwise.",
    )
    overrideReason: str | None = Field(
        default=None, description="The override's reason, when the dial carried one."
    )
    links: CallLinks
    # With ``GET /v1/calls?expand=progress`` only: where the call is, how long the customer
    # talked, and the name of the key that placed it.
    step: str | None = None
    talkSeconds: float | None = None
    talkStartedAt: str | None = None
    keyName: str | None = None


class CallsPage(BaseModel):
    """A list of calls, newest first."""

    calls: list[CallResource]
    lastEventId: int = Field(
        0, description="The newest event id now: open the stream after it to miss nothing"
    )
    next: str | None = Field(
        None,
        description="Pass as `cursor` (with the same filters) for the next, older page; null "
        "on the last page",
    )


class RefusedCall(BaseModel):
    """A dial refused before anything was sent (or another 4xx): the error, and the call."""

    error: ErrorDetail
    call: CallResource | None = None


class RuleRefusal(BaseModel):
    """A dial refused by a calling rule before anything was claimed or sent (403): the error
    (its type is the first rule), every rule it broke, and the contact's local time."""

    error: ErrorDetail
    rules: list[RuleWarning]
    localTime: str | None = None


class DncAdd(BaseModel):
    """``POST /v1/dnc``: put a number on the do-not-call list."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Before the number: it is read in this country.
    defaultCountry: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    number: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        description="E.164 (+14155550100), or national with defaultCountry; kept in E.164."
    )
    reason: Annotated[str, Field(max_length=500)] | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: str, info: ValidationInfo) -> str:
        try:
            return to_e164(value, default_country=info.data.get("defaultCountry") or "US")
        except InvalidPhoneNumberError as exc:
            raise ValueError(exc.message) from None


class DncImport(BaseModel):
    """``POST /v1/dnc/import``: many numbers at once, all or none (a bad one refuses all)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    entries: Annotated[list[DncAdd], Field(min_length=1, max_length=10_000)]


class DncEntryResource(BaseModel):
    """One number of the do-not-call list."""

    number: str = Field(description="E.164")
    addedAt: str
    addedBy: str = Field(description="key:NAME (the API) or cli:USER (gcdial serve dnc)")
    reason: str | None = None


class DncPage(BaseModel):
    """The do-not-call list, newest first, a page at a time."""

    entries: list[DncEntryResource]
    next: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page"
    )


class DncImported(BaseModel):
    """What an import did."""

    added: int = Field(description="Numbers new to the list")
    alreadyListed: int = Field(description="Numbers that were on it already (kept as they were)")


class AgentState(BaseModel):
    """An agent's readiness to be dialed for, and its live state."""

    agent: str
    id: str | None = None
    name: str | None = None
    ready: bool
    presence: str | None = None
    routingStatus: str | None = None
    station: str | None = None
    notes: list[str] = []
    reason: str | None = None
    """Why not ready (``gcdial.readiness``): unknown, inactive, no_station, presence,
    routing_status; ``unchecked`` when Genesys could not be asked."""
    problem: str | None = None


class PresenceMode(BaseModel):
    """Whether presence changes arrive live (agent.updated events) or must be polled."""

    live: bool
    pollSeconds: float


class QueueRef(BaseModel):
    """A Genesys ACD queue."""

    id: str
    name: str


class QueuesPage(BaseModel):
    """The organisation's queues, by name: the ones a supervisor may choose to watch."""

    queues: list[QueueRef]


class GroupsPage(BaseModel):
    """The organisation's groups of users, by name: another way to choose whom to watch."""

    groups: list[QueueRef]


class AgentsPage(BaseModel):
    """The agents this API key may dial for (or has dialed for), or a queue's members."""

    agents: list[AgentState]
    presence: PresenceMode | None = None
    queue: QueueRef | None = Field(
        None, description="The queue whose members these are (?queue=, or the key's watch queue)"
    )
    group: QueueRef | None = Field(None, description="The group whose members these are (?group=)")
    membersNotShown: int = Field(
        0,
        description="Members of the queue or group beyond the first 50 the key may see, not listed",
    )


class CampaignCounts(BaseModel):
    """A campaign's journal, counted."""

    total: int
    contacts: dict[str, int]
    outcomes: dict[str, int]
    attempts: dict[str, int]
    rowsRefused: int
    needsReview: int
    inFlight: int


class CampaignLinks(BaseModel):
    """Where to look next."""

    self: str
    report: str


class CampaignResource(BaseModel):
    """A campaign: created, running, paused, stopped, finished or failed."""

    id: str
    name: str
    state: Literal[
        "created", "running", "pausing", "paused", "stopping", "stopped", "finished", "failed"
    ]
    error: str | None = None
    stopReason: str | None = None
    settings: dict[str, Any]
    counts: CampaignCounts | None = None
    links: CampaignLinks


class CampaignList(BaseModel):
    """The campaigns a key may see, newest created first, a page at a time."""

    campaigns: list[CampaignResource]
    next: str | None = Field(
        None, description="Pass as `cursor` for the next, older page; null on the last page"
    )


class AttemptContact(BaseModel):
    """The contact an attempt dialed: its line in the CSV and its ``external_id``."""

    line: int
    externalId: str | None = None


class CampaignAttempt(BaseModel):
    """One dial attempt of a campaign, as its journal recorded it."""

    attemptId: int
    number: int = Field(description="The contact's attempt number: 1 for the first try")
    status: Literal["placing", "placed", "unknown", "not_placed"] = Field(
        description="As the attempt's call shows it (GET /v1/calls/{id})"
    )
    agent: str
    contact: AttemptContact
    createdAt: str
    endedAt: str | None = None
    conversationId: str | None = None
    outcome: str | None = None
    detail: str | None = None
    call: str = Field(description="The attempt's call: GET it, or follow its events")


class CampaignAttemptsPage(BaseModel):
    """A campaign's attempts, newest first, a page at a time."""

    attempts: list[CampaignAttempt]
    next: str | None = Field(
        None, description="Pass as `cursor` for the next, older page; null on the last page"
    )


class PreviewRows(BaseModel):
    """How the rows of an upload would be treated."""

    total: int
    accepted: int = Field(description="Rows that become contacts (dialed now or later)")
    refused: int = Field(description="Rows never dialed: invalid, duplicate, or by the rules")
    deferred: int = Field(description="Accepted rows outside the calling window right now")
    waitingForAgent: int = Field(description="Accepted rows whose agent column is not listed")
    afterEnd: int = Field(description="Accepted rows whose calling hours fall after the end")
    skipped: int = Field(
        description="Refused rows that still become contacts, settled at once as skipped by the "
        "rules (the do-not-call list, no calling hours); a campaign's contacts are "
        "accepted + skipped"
    )


class RefusedRow(BaseModel):
    """A row that would not be dialed: where, why (never quoting its values), how to fix it."""

    line: int
    column: str | None = None
    kind: str = Field(
        description="invalid, duplicate, do_not_call, unknown_time_zone or no_calling_hours"
    )
    reason: str
    fix: str


class CampaignPreview(BaseModel):
    """``POST /v1/campaigns/preview``: what creating the campaign would accept and refuse."""

    rows: PreviewRows
    refusedByKind: dict[str, int]
    refused: list[RefusedRow] = Field(description="The first 200 refused rows, in file order")
    moreRefused: int = Field(description="Refused rows not listed")
    canUpload: bool = Field(description="At least one row would be dialed")
    wrapup: list[str] = Field(
        default_factory=list,
        description="The queue and the wrap-up rules, the org's codes they leave unmapped, or "
        "that calls carry no wrap-up code without a queue",
    )


class DetailProgress(BaseModel):
    """Contacts settled out of the total; by status, and the settled ones by outcome."""

    total: int
    settled: int
    byStatus: dict[str, int]
    byOutcome: dict[str, int]
    byDisposition: dict[str, int] = Field(
        default_factory=dict, description="Calls by the agent's wrap-up (its name, else its code)"
    )
    wrapupsMissing: int = Field(0, description="Calls whose wrap-up never arrived (to review)")


class CampaignAgent(BaseModel):
    """One agent of the campaign's pool."""

    agent: str
    state: Literal["idle", "on call", "retired", "excluded", "checking", "not ready"]
    step: str | None = Field(None, description="The call's step when on a call")
    forSeconds: float | None = Field(None, description="Seconds in this state (running here)")
    calls: int
    why: str | None = Field(None, description="Why it was retired, excluded or not ready")
    reason: str | None = Field(
        None, description="Why not ready (gcdial.readiness): the reason GET /v1/agents gives"
    )


class GenesysBudget(BaseModel):
    """The Genesys API request budget as the service's client last saw it."""

    remaining: int | None = None
    limit: int | None = None
    rateLimited: int
    pausedSeconds: float


class RateBudget(BaseModel):
    """The campaign's pacing limits against what it uses now."""

    inFlight: int
    maxConcurrent: int | None = None
    callsLastMinute: int
    callsPerMinuteLimit: int | None = None
    genesys: GenesysBudget | None = None


class PerMinute(BaseModel):
    """Calls begun in each minute of the last hour, oldest first, from ``start`` (UTC)."""

    start: str
    minutes: int
    counts: list[int]


class DeferredContact(BaseModel):
    """A contact waiting for a later time (a retry delay, the calling window)."""

    line: int
    externalId: str | None = None
    reason: str
    dueAt: str | None = None
    attempts: int


class DeferredList(BaseModel):
    """The deferred contacts, soonest due first (the first 100), and how many in all."""

    total: int
    items: list[DeferredContact]


class CampaignDetail(BaseModel):
    """What a supervisor watches: progress, agents, rate budget, chart, deferred contacts."""

    now: str
    running: bool = Field(description="This service process runs the campaign now")
    progress: DetailProgress
    agents: list[CampaignAgent]
    rate: RateBudget
    perMinute: PerMinute
    deferred: DeferredList


class CampaignDetailResource(CampaignResource):
    """``GET /v1/campaigns/{id}/detail``: the campaign and its live detail."""

    detail: CampaignDetail


class ReviewList(BaseModel):
    """What needs a person: calls of unknown outcome with their evidence, and campaigns with
    attempts of unknown outcome or pinned contacts."""

    unknown: list[dict[str, Any]]
    campaigns: list[dict[str, Any]]
    canDial: bool
    canCampaigns: bool


# The event types a webhook endpoint may subscribe to: every type the service publishes.
WEBHOOK_EVENT_TYPES = (
    "call.placing",
    "call.placed",
    "call.refused",
    "call.not_placed",
    "call.unknown",
    "call.progress",
    "call.hangup_requested",
    "call.ended",
    "call.wrapup",
    "call.verdict",
    "campaign.updated",
    "campaign.verdict",
    "campaign.reassigned",
    "agent.updated",
)


class WebhookCreate(BaseModel):
    """``POST /v1/webhooks``: an http(s) URL that receives the chosen events (all by default),
    signed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]
    description: Annotated[str, Field(max_length=200)] = ""
    events: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None,
        min_length=1,
        max_length=len(WEBHOOK_EVENT_TYPES),
        description="The event types to deliver (absent: every type): "
        + ", ".join(WEBHOOK_EVENT_TYPES),
    )

    @field_validator("events")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            if name not in WEBHOOK_EVENT_TYPES:
                raise ValueError(
                    f"unknown event type {name[:40]!r}; known: {', '.join(WEBHOOK_EVENT_TYPES)}"
                )
        return sorted(set(value), key=WEBHOOK_EVENT_TYPES.index)


class WebhookResource(BaseModel):
    """A registered webhook endpoint (its secret is never shown again)."""

    id: str
    url: str
    description: str
    createdAt: str
    events: list[str] | None = Field(
        default=None, description="The event types it receives; null for every type"
    )


class WebhookDelivery(BaseModel):
    """One event's delivery to one endpoint: its attempts so far and what comes next."""

    id: int = Field(description="The delivery's number (for redelivery)")
    eventId: str = Field(description="The event's id, as the webhook-id header sends it")
    type: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    nextAttemptAt: str | None = Field(description="When it is tried next; null when done")
    lastError: str | None = None
    doneAt: str | None = None


class WebhookDeliveries(BaseModel):
    """An endpoint's deliveries, newest first."""

    deliveries: list[WebhookDelivery]


class WebhookPing(BaseModel):
    """What the receiver did with the signed ``webhook.ping``."""

    delivered: bool
    eventId: str
    error: str | None = Field(None, description="Why it was not delivered (HTTP 500, ...)")


class WebhookCreated(WebhookResource):
    """The answer to a registration: the signing secret, shown this once."""

    secret: str
