"""What the emulator remembers: tokens, calls and their participants, and who listens to changes."""

import asyncio
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gcdial.emulator.clock import SimClock
from gcdial.emulator.config import EmulatorConfig
from gcdial.emulator.faults import FaultBook
from gcdial.emulator.fixtures import ClientSpec, Fixture, UserSpec
from gcdial.emulator.ratelimit import RateLimiter

ENDED_STATES = frozenset({"disconnected", "terminated"})
# The notification topic's wrap-up (ConversationCallEventTopicWrapup) has no name or provisional.
EVENT_WRAPUP_FIELDS = ("code", "notes", "tags", "durationSeconds", "endTime")
# The official models disagree on the name of "nobody acted in time": CallMediaParticipant (and
# the topic) list ``inactivity``, the ``Call`` inside a ``Conversation`` lists ``timeout``.
CALL_DISCONNECT_TYPES = {"inactivity": "timeout"}


@dataclass
class Token:
    """An issued access token; ``user_id`` is None for client credentials."""

    client_id: str
    user_id: str | None
    expires_at: float
    revoked: bool = False
    serial: int = 0


@dataclass
class Participant:
    """One leg of a call, as Genesys reports it."""

    purpose: str
    state: str
    start_time: str
    address: str | None = None
    name: str | None = None
    user: dict[str, str] | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    connected_time: str | None = None
    end_time: str | None = None
    disconnect_type: str | None = None
    error_info: dict[str, str] | None = None
    queue: dict[str, str] | None = None
    wrapup_required: bool | None = None
    wrapup_prompt: str | None = None
    wrapup_timeout_ms: int | None = None
    start_acw_time: str | None = None
    end_acw_time: str | None = None
    wrapup: dict[str, Any] | None = None
    wrapup_skipped: bool | None = None

    @property
    def ended(self) -> bool:
        """Whether this leg is over."""
        return self.state in ENDED_STATES

    def to_json(self) -> dict[str, Any]:
        """The CallConversation participant JSON."""
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "address": self.address,
            "purpose": self.purpose,
            "state": self.state,
            "direction": "outbound",
            "startTime": self.start_time,
            "connectedTime": self.connected_time,
            "endTime": self.end_time,
            "disconnectType": self.disconnect_type,
            "user": self.user,
            "errorInfo": self.error_info,
            "attributes": self.attributes,
            "queue": self.queue,
            "wrapupRequired": self.wrapup_required,
            "wrapupPrompt": self.wrapup_prompt,
            "wrapupTimeoutMs": self.wrapup_timeout_ms,
            "startAcwTime": self.start_acw_time,
            "endAcwTime": self.end_acw_time,
            "wrapup": self.wrapup,
            "wrapupSkipped": self.wrapup_skipped,
        }
        return {k: v for k, v in body.items() if v is not None}

    def to_event_json(self) -> dict[str, Any]:
        """The participant as the call topics carry it (its wrap-up has fewer fields)."""
        body = self.to_json()
        if self.wrapup is not None:
            body["wrapup"] = {k: self.wrapup[k] for k in EVENT_WRAPUP_FIELDS if k in self.wrapup}
        return body

    def to_conversation_json(self) -> dict[str, Any]:
        """The ``Participant`` of a ``Conversation``: the leg's state lives in its ``calls``."""
        leg = {
            "id": self.id,
            "state": self.state,
            "direction": "outbound",
            "connectedTime": self.connected_time,
            "disconnectedTime": self.end_time,
            "errorInfo": self.error_info,
            "wrapup": self.wrapup,
        }
        if self.disconnect_type is not None:
            leg["disconnectType"] = CALL_DISCONNECT_TYPES.get(
                self.disconnect_type, self.disconnect_type
            )
        user_id = self.user["id"] if self.user is not None else None
        body: dict[str, Any] = {
            "id": self.id,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "connectedTime": self.connected_time,
            "name": self.name,
            "userId": user_id,
            "userUri": f"/api/v2/users/{user_id}" if user_id is not None else None,
            "queueId": self.queue["id"] if self.queue is not None else None,
            "purpose": self.purpose,
            "address": self.address,
            "wrapupRequired": self.wrapup_required,
            "wrapupPrompt": self.wrapup_prompt,
            "wrapupTimeoutMs": self.wrapup_timeout_ms,
            "wrapupSkipped": self.wrapup_skipped,
            "wrapup": self.wrapup,
            "startAcwTime": self.start_acw_time,
            "endAcwTime": self.end_acw_time,
            "attributes": self.attributes,
            "calls": [{k: v for k, v in leg.items() if v is not None}],
        }
        return {k: v for k, v in body.items() if v is not None}


@dataclass
class Call:
    """A call conversation and the raw request that created it."""

    id: str
    user_id: str
    phone_number: str
    body: dict[str, Any]
    created_at: str
    participants: list[Participant]
    created_sim: float = 0.0
    task: "asyncio.Task[None] | None" = None
    queue_id: str | None = None
    acw_task: "asyncio.Task[None] | None" = None
    wrapup_source: str | None = None
    """Who recorded the wrap-up: ``agent`` (the fixture's rule) or ``api`` (a PATCH)."""

    @property
    def over(self) -> bool:
        """Whether every participant has disconnected."""
        return all(p.ended for p in self.participants)

    @property
    def summary_state(self) -> str:
        """``disconnected`` when over, else the dialed party's state (or the agent's)."""
        if self.over:
            return "disconnected"
        return self.participants[-1].state

    def to_json(self) -> dict[str, Any]:
        """The CallConversation JSON."""
        return {
            "id": self.id,
            "participants": [p.to_json() for p in self.participants],
            "recordingState": "none",
            "selfUri": f"/api/v2/conversations/calls/{self.id}",
        }

    def to_event_json(self) -> dict[str, Any]:
        """The eventBody of the call topics (``ConversationCallEventTopicCallConversation``:
        no ``selfUri``)."""
        return {
            "id": self.id,
            "participants": [p.to_event_json() for p in self.participants],
            "recordingState": "none",
        }

    def to_conversation_json(self) -> dict[str, Any]:
        """The ``Conversation`` a PATCH of the call answers: upper-case ``recordingState``."""
        body: dict[str, Any] = {
            "id": self.id,
            "startTime": self.created_at,
            "participants": [p.to_conversation_json() for p in self.participants],
            "recordingState": "NONE",
            "selfUri": f"/api/v2/conversations/calls/{self.id}",
        }
        if self.over:
            body["endTime"] = max(p.end_time for p in self.participants if p.end_time)
        return body


Listener = Callable[[Call], None]
UserListener = Callable[[UserSpec, str], None]
"""Told ``(user, what)`` after a user's ``presence`` or ``routingStatus`` changed."""


@dataclass
class AnalyticsSettings:
    """The conversation-details knobs the admin API may change at run time."""

    ingestion_delay_s: float
    include_attributes: bool
    filler_conversations: int

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> "AnalyticsSettings":
        """The start-up values from ``config``."""
        return cls(
            ingestion_delay_s=config.analytics_ingestion_delay_s,
            include_attributes=config.analytics_include_attributes,
            filler_conversations=config.analytics_filler_conversations,
        )


class EventHub:
    """Tells every listener about each participant change, synchronously and in order."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every change; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, call: Call) -> None:
        """Announce that ``call`` changed."""
        for listener in list(self._listeners):
            listener(call)


class EmulatorState:
    """Everything one emulator instance knows; touched only from its event loop."""

    def __init__(self, config: EmulatorConfig, fixture: Fixture) -> None:
        self.config = config
        self.fixture = fixture
        self.clock = SimClock(config.speed)
        self.hub = EventHub()
        self.users: dict[str, UserSpec] = {}
        self.users_by_email: dict[str, UserSpec] = {}
        self._load_users()
        self.user_listeners: list[UserListener] = []
        self.clients: dict[str, ClientSpec] = {c.id: c for c in fixture.clients}
        self.faults = FaultBook(seed=config.seed)
        self.rate_limiter = RateLimiter(
            per_window=config.rate_limit_per_minute,
            buckets=config.rate_limit_buckets,
            window_s=config.rate_limit_window_s,
        )
        self.tokens: dict[str, Token] = {}
        self.auth_codes: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, Call] = {}
        # A create-call for an agent who had a live call then: the judge of "one call per agent".
        self.overlaps: list[dict[str, Any]] = []
        self.analytics = AnalyticsSettings.from_config(config)
        self.requests: Counter[str] = Counter()
        self.internal_errors = 0
        self.client_disconnects = 0
        self.stopping = asyncio.Event()
        self.on_reset: list[Callable[[], None]] = []
        for spec in config.faults:
            self.faults.add(spec)

    def live_calls_of(self, user_id: str) -> list[Call]:
        """The agent's calls whose agent leg has not ended."""
        return [
            c for c in self.calls.values() if c.user_id == user_id and not c.participants[0].ended
        ]

    def rate_key(self, authorization: str | None) -> tuple[str, str]:
        """Whose window a request counts in (``rate_limit_scope``), and that key's name in the
        ledger: the client id, or the client id and which of its tokens; never the token."""
        if not authorization:
            return "anonymous", "anonymous"
        scheme, _, credential = authorization.partition(" ")
        token = self.tokens.get(credential.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return authorization, "unknown credential"
        if self.config.rate_limit_scope == "client":
            return f"client:{token.client_id}", token.client_id
        return authorization, f"{token.client_id} token {token.serial}"

    def issue_token(self, client: ClientSpec, *, user_id: str | None) -> tuple[str, float]:
        """A new access token for ``client`` (and ``user_id``), with its lifetime in seconds."""
        lifetime = client.token_lifetime_s or self.config.token_lifetime_s
        token = secrets.token_urlsafe(32)
        serial = len(self.tokens) + 1
        self.tokens[token] = Token(client.id, user_id, self.clock.now() + lifetime, serial=serial)
        return token, lifetime

    def expire_tokens(self) -> None:
        """Make every issued token expired."""
        now = self.clock.now()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)

    def revoke_tokens(self) -> None:
        """Revoke every issued token."""
        for token in self.tokens.values():
            token.revoked = True

    def _load_users(self) -> None:
        self.users = {str(u.id): u for u in self.fixture.all_users()}
        self.users_by_email = {u.email.lower(): u for u in self.users.values()}

    def change_user(self, user: UserSpec, what: str, **changes: Any) -> UserSpec:
        """Change a user's ``presence`` or ``routing_status`` and tell the listeners."""
        changed = user.model_copy(update=changes)
        self.users[str(user.id)] = changed
        self.users_by_email[user.email.lower()] = changed
        for listener in list(self.user_listeners):
            listener(changed, what)
        return changed

    def reset(self) -> None:
        """Forget calls, tokens, channels, faults, counters, rate windows and presence changes;
        keep the fixture."""
        for call in self.calls.values():
            for task in (call.task, call.acw_task):
                if task is not None:
                    task.cancel()
        self.calls.clear()
        self.overlaps.clear()
        self.tokens.clear()
        self.auth_codes.clear()
        self.faults.reset()
        self.analytics = AnalyticsSettings.from_config(self.config)
        self.requests.clear()
        self.internal_errors = 0
        self.client_disconnects = 0
        self.rate_limiter.reset()
        self._load_users()
        for hook in self.on_reset:
            hook()
