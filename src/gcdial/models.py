"""Pydantic models of the Genesys Cloud payloads gcdial sends and reads.

Python attributes are snake_case; the wire names are the camelCase ones of the Platform API
(``phoneNumber``, ``disconnectType``, ...), checked against the official SDK's ``attribute_map``.

Request models are strict: unknown fields and conflicting destinations are refused before
anything is sent. Response models are tolerant: Genesys adds fields and enum values over time, so
unknown fields are kept (``model_extra``) and enum-like fields are plain strings whose known values
are listed as constants (``ParticipantState.CONNECTED``, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "CallConversation",
    "CallCreated",
    "CreateCallRequest",
    "Destination",
    "DisconnectType",
    "ErrorInfo",
    "Participant",
    "ParticipantPurpose",
    "ParticipantState",
    "Presence",
    "PresenceDefinition",
    "RoutingStatus",
    "SystemPresence",
    "User",
    "UserRef",
    "UserSearchResults",
    "UserStation",
    "UserStations",
    "WireModel",
]


class ParticipantState:
    """Participant states Genesys documents; others may appear and are kept as they come."""

    ALERTING: Final = "alerting"
    DIALING: Final = "dialing"
    CONTACTING: Final = "contacting"
    OFFERING: Final = "offering"
    CONNECTED: Final = "connected"
    DISCONNECTED: Final = "disconnected"
    TERMINATED: Final = "terminated"
    CONVERTING: Final = "converting"
    UPLOADING: Final = "uploading"
    TRANSMITTING: Final = "transmitting"
    PARKED: Final = "parked"
    NONE: Final = "none"
    ENDED: Final = frozenset({DISCONNECTED, TERMINATED})


class ParticipantPurpose:
    """Participant purposes; the dialed party is ``external`` or ``customer`` depending on route."""

    AGENT: Final = "agent"
    USER: Final = "user"
    CUSTOMER: Final = "customer"
    EXTERNAL: Final = "external"
    ACD: Final = "acd"
    IVR: Final = "ivr"
    AGENT_SIDE: Final = frozenset({AGENT, USER})
    CUSTOMER_SIDE: Final = frozenset({CUSTOMER, EXTERNAL})


class DisconnectType:
    """Common ``disconnectType`` values (Genesys has more, including ``transfer.*``)."""

    ENDPOINT: Final = "endpoint"
    CLIENT: Final = "client"
    SYSTEM: Final = "system"
    PEER: Final = "peer"
    ERROR: Final = "error"
    OTHER: Final = "other"
    SPAM: Final = "spam"
    TIMEOUT: Final = "timeout"
    INACTIVITY: Final = "inactivity"
    TRANSPORT_FAILURE: Final = "transport.failure"


class SystemPresence:
    """System presences, upper-cased; Genesys' casing varies, so compare with :func:`same`."""

    AVAILABLE: Final = "AVAILABLE"
    AWAY: Final = "AWAY"
    BUSY: Final = "BUSY"
    OFFLINE: Final = "OFFLINE"
    ON_QUEUE: Final = "ON_QUEUE"
    IDLE: Final = "IDLE"
    MEAL: Final = "MEAL"
    MEETING: Final = "MEETING"
    TRAINING: Final = "TRAINING"
    BREAK: Final = "BREAK"

    @staticmethod
    def same(a: str | None, b: str | None) -> bool:
        """Compare two presence names case-insensitively (``Available`` == ``AVAILABLE``)."""
        return a is not None and b is not None and a.casefold() == b.casefold()


class WireModel(BaseModel):
    """Base of the response models: camelCase on the wire, unknown fields kept."""

    # defer_build: a model's validator is built on first use, not at import (start-up speed).
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", defer_build=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The payload as Genesys would send it (camelCase keys, no nulls), JSON-ready."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class _RequestModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body to send: camelCase keys, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Destination(_RequestModel):
    """One party of an ad-hoc conference (``CreateCallRequest.participants``)."""

    address: str | None = None
    name: str | None = None
    user_id: str | None = None
    queue_id: str | None = None


_DESTINATION_FIELDS: Final = (
    "phone_number",
    "call_queue_id",
    "call_user_id",
    "conversation_ids",
    "participants",
)


class CreateCallRequest(_RequestModel):
    """The body of both create-call endpoints; exactly one destination must be set."""

    phone_number: str | None = None
    caller_id: str | None = None
    caller_id_name: str | None = None
    call_from_queue_id: str | None = None
    call_queue_id: str | None = None
    call_user_id: str | None = None
    priority: int | None = None
    attributes: dict[str, str] | None = None
    language_id: str | None = None
    routing_skills_ids: list[str] | None = None
    routing_skill_expression: str | None = None
    conversation_ids: list[str] | None = None
    participants: list[Destination] | None = None
    uui_data: str | None = None
    external_contact_id: str | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _exactly_one_destination(self) -> CreateCallRequest:
        chosen = [name for name in _DESTINATION_FIELDS if getattr(self, name) is not None]
        if len(chosen) != 1:
            wire = ", ".join(to_camel(name) for name in _DESTINATION_FIELDS)
            got = ", ".join(to_camel(name) for name in chosen) or "none"
            raise ValueError(f"a call needs exactly one destination among {wire}; got {got}")
        return self


class CallCreated(WireModel):
    """The answer to a create-call POST: accepted, not yet ringing. ``id`` is the conversation."""

    id: str
    name: str | None = None
    self_uri: str | None = None


class UserRef(WireModel):
    """A reference to a user inside another payload."""

    id: str | None = None
    name: str | None = None
    self_uri: str | None = None


class ErrorInfo(WireModel):
    """Why a participant's leg failed (``error.ininedgecontrol.remote.busy``, ...)."""

    code: str | None = None
    message: str | None = None


class Participant(WireModel):
    """One leg of a call conversation."""

    id: str
    name: str | None = None
    address: str | None = None
    purpose: str | None = None
    state: str | None = None
    direction: str | None = None
    disconnect_type: str | None = None
    start_time: datetime | None = None
    connected_time: datetime | None = None
    end_time: datetime | None = None
    user: UserRef | None = None
    error_info: ErrorInfo | None = None
    attributes: dict[str, Any] | None = None

    @property
    def is_over(self) -> bool:
        """Whether this leg has ended (``disconnected`` or ``terminated``)."""
        return self.state in ParticipantState.ENDED

    @property
    def is_agent(self) -> bool:
        """Whether this is the agent's (or a user's) leg."""
        return self.purpose in ParticipantPurpose.AGENT_SIDE

    @property
    def is_customer(self) -> bool:
        """Whether this is the dialed party (purpose ``external`` or ``customer``)."""
        return self.purpose in ParticipantPurpose.CUSTOMER_SIDE


def _no_participants() -> list[Participant]:
    # A function, not ``list``: pydantic reads a default factory's signature when it builds the
    # model, and reading a built-in type's takes ~1.5 ms (a text signature, parsed) on one call.
    return []


class CallConversation(WireModel):
    """A call conversation as ``GET /api/v2/conversations/calls/{id}`` returns it."""

    id: str
    participants: list[Participant] = Field(default_factory=_no_participants)
    recording_state: str | None = None
    self_uri: str | None = None

    @property
    def is_over(self) -> bool:
        """Whether every participant has ended; a conversation with no legs yet is not over."""
        return bool(self.participants) and all(p.is_over for p in self.participants)

    def agent_participant(self, user_id: str | None = None) -> Participant | None:
        """The agent's leg (of ``user_id`` when given), whatever the order of participants."""
        for participant in self.participants:
            if not participant.is_agent:
                continue
            if user_id is None or (participant.user is not None and participant.user.id == user_id):
                return participant
        return None

    def customer_participant(self) -> Participant | None:
        """The dialed party's leg (purpose ``external`` or ``customer``), if present."""
        return next((p for p in self.participants if p.is_customer), None)


class UserStation(WireModel):
    """A station (phone) as seen from a user."""

    id: str | None = None
    name: str | None = None
    type: str | None = None


class UserStations(WireModel):
    """A user's stations: ``GET /api/v2/users/{id}/station`` or the ``station`` expansion."""

    associated_station: UserStation | None = None
    effective_station: UserStation | None = None
    default_station: UserStation | None = None
    last_associated_station: UserStation | None = None

    @property
    def dialing_station(self) -> UserStation | None:
        """The station a call would ring (associated, else effective); None: calls cannot work."""
        return self.associated_station or self.effective_station


class PresenceDefinition(WireModel):
    """The presence a user is in; ``system_presence`` is one of :class:`SystemPresence`."""

    id: str | None = None
    system_presence: str | None = None


class Presence(WireModel):
    """A user's presence (``GET /api/v2/users/{id}/presences/purecloud``)."""

    id: str | None = None
    name: str | None = None
    source: str | None = None
    primary: bool | None = None
    presence_definition: PresenceDefinition | None = None
    message: str | None = None
    modified_date: datetime | None = None

    @property
    def system_presence(self) -> str | None:
        """The system presence, upper-cased (``AVAILABLE``, ``ON_QUEUE``, ...), or None."""
        definition = self.presence_definition
        if definition is None or definition.system_presence is None:
            return None
        return definition.system_presence.upper()


class RoutingStatus(WireModel):
    """ACD routing status (``OFF_QUEUE``, ``IDLE``, ``INTERACTING``, ...)."""

    status: str | None = None
    start_time: datetime | None = None


class User(WireModel):
    """A Genesys Cloud user (an agent), with the ``presence,routingStatus,station`` expansions."""

    id: str
    name: str | None = None
    email: str | None = None
    state: str | None = None
    presence: Presence | None = None
    routing_status: RoutingStatus | None = None
    station: UserStations | None = None
    self_uri: str | None = None

    @property
    def is_active(self) -> bool:
        """Whether the user's account is active (not ``inactive`` or ``deleted``)."""
        return (self.state or "").casefold() == "active"

    @property
    def label(self) -> str:
        """A human name for messages: the name, else the email, else the id."""
        return self.name or self.email or self.id


def _no_users() -> list[User]:
    return []  # a function, not ``list``: see _no_participants


class UserSearchResults(WireModel):
    """The answer to ``POST /api/v2/users/search``."""

    total: int | None = None
    results: list[User] = Field(default_factory=_no_users)
