"""Agents: find a Genesys Cloud user by id or email, and check that they can take a call.

A call placed for an agent without a station fails (``conversation.error.no.user.station``) or,
worse, never rings; :meth:`Agents.check` finds that out first and says exactly what to fix in
Genesys Cloud and on which admin page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import pydantic

from gcdial.errors import (
    AgentNotReadyError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    ResponseFormatError,
)
from gcdial.http import ApiTransport, AsyncApiTransport
from gcdial.models import (
    Presence,
    User,
    UserSearchResults,
    UserStation,
    UserStations,
)
from gcdial.readiness import READY, Readiness, ReadinessPolicy, judge

__all__ = [
    "ME",
    "USER_EXPAND",
    "AgentReadiness",
    "Agents",
    "AsyncAgents",
    "is_email",
    "readiness",
]

USER_EXPAND: Final = "presence,routingStatus,station"
ME: Final = "me"
"""Pass as the agent to mean the owner of the user token (``GET /api/v2/users/me``)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PEOPLE_PAGE: Final = "Admin > People"
# No call can be placed at all for these: the check raises rather than reporting them.
_HARD_REASONS: Final = frozenset({"inactive", "no_station"})
# Presence is only reported, never required: failing to read it must not stop a call.
_PRESENCE_OPTIONAL: Final = (NotFoundError, PermissionDeniedError, ResponseFormatError)


def is_email(agent: str) -> bool:
    """Whether ``agent`` looks like an email address (else it is taken as a user id)."""
    return bool(_EMAIL.match(agent.strip()))


def _user_path(agent: str) -> str:
    text = agent.strip()
    if text.lower() == ME:
        return "/api/v2/users/me"
    if not _USER_ID.match(text):
        raise InputError(
            f"{agent!r} is neither a user id nor an email address.",
            hint="Give the agent's Genesys Cloud user id (a UUID, from Admin > People > the user, "
            "in the address bar) or the email address they log in with.",
        )
    return f"/api/v2/users/{quote(text, safe='')}"


def _search_body(email: str) -> dict[str, Any]:
    return {
        "query": [{"type": "EXACT", "fields": ["email"], "value": email.strip()}],
        "expand": USER_EXPAND.split(","),
    }


def _parse(model: type[pydantic.BaseModel], data: object, what: str) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ResponseFormatError(
            f"The {what} Genesys Cloud returned does not have the expected shape "
            f"({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}).",
        ) from None


def _unknown_agent(agent: str) -> AgentNotReadyError:
    by = "email" if is_email(agent) else "id"
    return AgentNotReadyError(
        f"No agent with {by} {agent!r} exists in this Genesys Cloud org.",
        agent=agent,
        reason="unknown",
        hint=f"Check the {by} under {_PEOPLE_PAGE} (search for the person). If they are there, "
        "your credentials belong to another org or region: check GENESYSCLOUD_REGION.",
    )


def _found(agent: str, results: UserSearchResults) -> User:
    wanted = agent.strip().casefold()
    exact = [u for u in results.results if (u.email or "").casefold() == wanted]
    if not exact:
        raise _unknown_agent(agent)
    return exact[0]


@dataclass(frozen=True)
class AgentReadiness:
    """What :meth:`Agents.check` found: the agent, the station a call rings, presence, routing
    status, and the verdict of :func:`gcdial.readiness.judge` (``ready``, ``reason``)."""

    agent: User
    station: UserStation
    presence: str | None
    routing_status: str | None
    notes: tuple[str, ...] = ()
    verdict: Readiness = READY

    @property
    def ready(self) -> bool:
        """Whether a call may be placed for the agent now (the policy accepts their state)."""
        return self.verdict.ready

    @property
    def available(self) -> bool:
        """Same as :attr:`ready` (kept for callers of earlier versions)."""
        return self.verdict.ready

    def error(self) -> AgentNotReadyError:
        """The refusal to raise when not :attr:`ready`."""
        return AgentNotReadyError(
            self.verdict.problem or f"Agent {self.agent.label} is not ready.",
            agent=self.agent.label,
            reason=self.verdict.reason or "not_ready",
            hint=self.verdict.hint,
        )


def readiness(
    agent: User,
    stations: UserStations | None,
    presence: Presence | None,
    policy: ReadinessPolicy | None = None,
) -> AgentReadiness:
    """Judge whether ``agent`` can take a call (:func:`gcdial.readiness.judge`).

    Raises AgentNotReadyError when no call can be placed at all (inactive, no station); a
    presence or routing status the policy refuses comes back as ``ready`` False, so that readers
    can still show the station and presence.
    """
    who = agent.label
    station = stations.dialing_station if stations is not None else None
    system_presence = presence.system_presence if presence is not None else None
    if system_presence is None and agent.presence is not None:
        system_presence = agent.presence.system_presence
    routing = agent.routing_status.status if agent.routing_status is not None else None
    verdict = judge(
        who,
        active=agent.is_active,
        state=agent.state,
        has_station=station is not None,
        presence=system_presence,
        routing_status=routing,
        policy=policy or ReadinessPolicy(),
    )
    if station is None or verdict.reason in _HARD_REASONS:
        raise AgentNotReadyError(
            verdict.problem or f"Agent {who} cannot take calls.",
            agent=who,
            reason=verdict.reason or "no_station",
            hint=verdict.hint,
        )
    return AgentReadiness(
        agent=agent,
        station=station,
        presence=system_presence,
        routing_status=routing,
        notes=verdict.notes,
        verdict=verdict,
    )


class Agents:
    """Agent lookups and readiness checks over a synchronous transport."""

    def __init__(self, transport: ApiTransport, *, policy: ReadinessPolicy | None = None) -> None:
        self._transport = transport
        self.policy = policy or ReadinessPolicy()

    def get(self, agent: str) -> User:
        """The agent by user id, exact email or ``"me"``; unknown: AgentNotReadyError."""
        if is_email(agent):
            data = self._transport.request_json(
                "POST", "/api/v2/users/search", json=_search_body(agent), idempotent=True
            )
            return _found(agent, _parse(UserSearchResults, data, "user search result"))
        try:
            data = self._transport.get_json(_user_path(agent), params={"expand": USER_EXPAND})
        except NotFoundError:
            raise _unknown_agent(agent) from None
        user: User = _parse(User, data, "user")
        return user

    def station(self, user_id: str) -> UserStations:
        """The user's stations (associated, effective, default, last associated)."""
        data = self._transport.get_json(f"{_user_path(user_id)}/station")
        stations: UserStations = _parse(UserStations, data or {}, "station")
        return stations

    def presence(self, user_id: str) -> Presence:
        """The user's Genesys Cloud presence (``systemPresence`` AVAILABLE, BUSY, ...)."""
        data = self._transport.get_json(f"{_user_path(user_id)}/presences/purecloud")
        result: Presence = _parse(Presence, data, "presence")
        return result

    def check(self, agent: str | User) -> AgentReadiness:
        """Check the agent exists, is active and has a station; judge presence and routing
        status by the policy (``ready``, ``reason`` on the result).

        Raises AgentNotReadyError naming what to fix in Genesys Cloud and where when no call
        can be placed at all (unknown, inactive, no station).
        """
        user = agent if isinstance(agent, User) else self.get(agent)
        stations = user.station
        if stations is None or stations.dialing_station is None:
            stations = self.station(user.id) if user.is_active else stations
        presence = user.presence
        if presence is None or presence.system_presence is None:
            presence = self._presence_or_none(user.id)
        return readiness(user, stations, presence, self.policy)

    def _presence_or_none(self, user_id: str) -> Presence | None:
        try:
            return self.presence(user_id)
        except _PRESENCE_OPTIONAL:
            return None


class AsyncAgents:
    """Agent lookups and readiness checks over an asynchronous transport."""

    def __init__(
        self, transport: AsyncApiTransport, *, policy: ReadinessPolicy | None = None
    ) -> None:
        self._transport = transport
        self.policy = policy or ReadinessPolicy()

    async def get(self, agent: str) -> User:
        """The agent by user id, exact email or ``"me"``; unknown: AgentNotReadyError."""
        if is_email(agent):
            data = await self._transport.request_json(
                "POST", "/api/v2/users/search", json=_search_body(agent), idempotent=True
            )
            return _found(agent, _parse(UserSearchResults, data, "user search result"))
        try:
            data = await self._transport.get_json(_user_path(agent), params={"expand": USER_EXPAND})
        except NotFoundError:
            raise _unknown_agent(agent) from None
        user: User = _parse(User, data, "user")
        return user

    async def station(self, user_id: str) -> UserStations:
        """The user's stations (associated, effective, default, last associated)."""
        data = await self._transport.get_json(f"{_user_path(user_id)}/station")
        stations: UserStations = _parse(UserStations, data or {}, "station")
        return stations

    async def presence(self, user_id: str) -> Presence:
        """The user's Genesys Cloud presence (``systemPresence`` AVAILABLE, BUSY, ...)."""
        data = await self._transport.get_json(f"{_user_path(user_id)}/presences/purecloud")
        result: Presence = _parse(Presence, data, "presence")
        return result

    async def check(self, agent: str | User) -> AgentReadiness:
        """Check the agent exists, is active and has a station; judge presence and routing
        status by the policy (``ready``, ``reason`` on the result).

        Raises AgentNotReadyError naming what to fix in Genesys Cloud and where when no call
        can be placed at all (unknown, inactive, no station).
        """
        user = agent if isinstance(agent, User) else await self.get(agent)
        stations = user.station
        if stations is None or stations.dialing_station is None:
            stations = await self.station(user.id) if user.is_active else stations
        presence = user.presence
        if presence is None or presence.system_presence is None:
            try:
                presence = await self.presence(user.id)
            except _PRESENCE_OPTIONAL:
                presence = None
        return readiness(user, stations, presence, self.policy)
