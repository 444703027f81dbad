"""Place a call on behalf of an agent, read it, hang it up.

Everything that can be checked is checked before the create-call POST leaves: the numbers are
normalised to E.164, the body is validated, the agent is found and (unless told not to) checked
for an active account and a station. The POST itself is sent at most once unless the server
provably did not act on it (see :mod:`gcdial.http`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from gcdial.agents import ME, Agents, AsyncAgents, is_email
from gcdial.config import Settings
from gcdial.errors import CallOutcomeUnknownError, InputError, ResponseFormatError
from gcdial.http import ApiTransport, AsyncApiTransport, PreparedRequest
from gcdial.models import CallConversation, CallCreated, CreateCallRequest, User
from gcdial.phone import to_e164

if TYPE_CHECKING:
    from gcdial.monitor import CallEvent, CallMonitor, Outcome

__all__ = [
    "ON_BEHALF_PATH",
    "USER_ROUTE_PATH",
    "AsyncCalls",
    "CallTarget",
    "Calls",
    "Route",
    "build_create_body",
    "choose_route",
]

ON_BEHALF_PATH: Final = "/api/v2/conversations/calls/user/{user_id}"
USER_ROUTE_PATH: Final = "/api/v2/conversations/calls"
_CALL_PATH: Final = "/api/v2/conversations/calls/{conversation_id}"
_PARTICIPANT_PATH: Final = "/api/v2/conversations/calls/{conversation_id}/participants/{pid}"
_DISCONNECT: Final = {"state": "disconnected"}

Route = Literal["on_behalf", "user"]


def choose_route(call_route: str, *, user_token: bool) -> Route:
    """The create-call route: ``auto`` means on_behalf with client credentials, else user."""
    if call_route == "on_behalf":
        return "on_behalf"
    if call_route == "user":
        return "user"
    return "user" if user_token else "on_behalf"


def _check_id(value: str, what: str) -> str:
    text = value.strip()
    if not text or len(text) > 128 or any(c.isspace() or c in "/?#%" for c in text):
        raise InputError(
            f"{value!r} is not a valid {what}.",
            hint=f"Give the {what} exactly as Genesys Cloud shows it (a UUID).",
        )
    return text


def _segment(value: str, what: str) -> str:
    return quote(_check_id(value, what), safe="")


def build_create_body(
    *,
    to: str,
    caller_id: str | None = None,
    caller_id_name: str | None = None,
    queue: str | None = None,
    attributes: Mapping[str, str] | None = None,
    label: str | None = None,
    uui: str | None = None,
    default_country: str = "US",
) -> CreateCallRequest:
    """Validate and normalise the call's details into the CreateCallRequest body; sends nothing.

    Raises InvalidPhoneNumberError for a bad number and InputError for other bad input.
    """
    phone_number = to_e164(to, default_country=default_country)
    caller = to_e164(caller_id, default_country=default_country) if caller_id else None
    try:
        return CreateCallRequest(
            phone_number=phone_number,
            caller_id=caller,
            caller_id_name=caller_id_name or None,
            call_from_queue_id=_check_id(queue, "queue id") if queue else None,
            attributes=dict(attributes) if attributes is not None else None,
            label=label or None,
            uui_data=uui or None,
        )
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InputError(
            f"The call details are invalid: {where}: {first['msg']}.",
            hint="Attributes must map text keys to text values; check the other options.",
        ) from None


@dataclass(frozen=True)
class CallTarget:
    """Where the create-call POST goes and whose phone rings first."""

    route: Route
    path: str
    agent_id: str | None
    agent: User | None


def _created(
    response: httpx.Response, body: object, transport: ApiTransport | AsyncApiTransport
) -> CallCreated:
    """Read the create-call answer; an unreadable 2xx means the call may exist: outcome unknown."""
    try:
        created = CallCreated.model_validate(transport.parse_json(response))
        if not created.id.strip():
            raise ResponseFormatError(
                "The create-call answer has a blank conversation id.",
                status=response.status_code,
                content_type=response.headers.get("content-type"),
                url=str(response.request.url),
            )
        return created
    except (ResponseFormatError, pydantic.ValidationError) as exc:
        raise CallOutcomeUnknownError(
            method=response.request.method,
            url=str(response.request.url),
            body=body,
            sent_at=datetime.now(UTC) - response.elapsed,
            cause=exc,
            reason=f"the server answered {response.status_code} without a conversation id",
        ) from None


def _conversation(data: object) -> CallConversation:
    try:
        return CallConversation.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ResponseFormatError(
            "The conversation Genesys Cloud returned does not have the expected shape "
            f"(first problem: {exc.errors()[0]['msg']}).",
        ) from None


def _hang_up_path(conversation_id: str, participant_id: str | None) -> str:
    cid = _segment(conversation_id, "conversation id")
    if participant_id is None:
        return _CALL_PATH.format(conversation_id=cid)
    return _PARTICIPANT_PATH.format(
        conversation_id=cid, pid=_segment(participant_id, "participant id")
    )


def _not_the_token_owner(agent: str, me: User) -> InputError:
    return InputError(
        f"With a user token the call rings the token owner's phone ({me.label}), not {agent}'s.",
        hint="Pass the agent as 'me', log in as that agent (`gcdial login`), or use client "
        "credentials with call_route = on_behalf to dial on behalf of someone else.",
    )


def _needs_other_lookup(agent: str) -> bool:
    """With a user token: whether ``agent`` must be looked up to compare it with the owner."""
    return agent.strip().lower() != ME and is_email(agent)


def _owner_target(agent: str, me: User, other: User | None) -> CallTarget:
    """The user route's target: the token owner, who must be the agent asked for."""
    if agent.strip().lower() != ME:
        other_id = other.id if other is not None else agent.strip()
        if other_id.casefold() != me.id.casefold():
            raise _not_the_token_owner(agent, me)
    return CallTarget("user", USER_ROUTE_PATH, me.id, me)


def _on_behalf_target(route: Route, agent: str, user: User | None) -> CallTarget:
    """The on-behalf route's target; an email not looked up keeps a ``{userId}`` placeholder."""
    if user is not None:
        agent_id = user.id
    elif is_email(agent):
        return CallTarget(route, ON_BEHALF_PATH.format(user_id="{userId}"), None, None)
    else:
        agent_id = agent.strip()
    path = ON_BEHALF_PATH.format(user_id=_segment(agent_id, "agent id"))
    return CallTarget(route, path, agent_id, user)


TransportT = TypeVar("TransportT", ApiTransport, AsyncApiTransport)
AgentsT = TypeVar("AgentsT", Agents, AsyncAgents)


class _CallsBase(Generic[TransportT, AgentsT]):
    """What the sync and async resources share: settings, route choice and the request body."""

    def __init__(
        self,
        transport: TransportT,
        agents: AgentsT,
        *,
        settings: Settings,
        user_token: bool,
    ) -> None:
        self._transport: TransportT = transport
        self._agents: AgentsT = agents
        self._settings = settings
        self._user_token = user_token

    @property
    def route(self) -> Route:
        """The create-call route these settings and this token pick."""
        return choose_route(self._settings.call_route, user_token=self._user_token)

    def _body(
        self,
        *,
        to: str,
        caller_id: str | None,
        caller_id_name: str | None,
        queue: str | None,
        attributes: Mapping[str, str] | None,
        label: str | None,
        uui: str | None,
        default_country: str | None,
    ) -> dict[str, Any]:
        """The validated CreateCallRequest body, in Genesys' JSON names; raises before sending."""
        return build_create_body(
            to=to,
            caller_id=caller_id,
            caller_id_name=caller_id_name,
            queue=queue,
            attributes=attributes,
            label=label,
            uui=uui,
            default_country=default_country or self._settings.default_country,
        ).to_wire()


class Calls(_CallsBase[ApiTransport, Agents]):
    """Create, read and hang up calls over a synchronous transport."""

    def _target(self, agent: str, *, check_agent: bool, resolve: bool = True) -> CallTarget:
        route = self.route
        if route == "user":
            me = self._agents.get(ME)
            other = self._agents.get(agent) if _needs_other_lookup(agent) else None
            target = _owner_target(agent, me, other)
            if check_agent:
                self._agents.check(me)
            return target
        user: User | None = None
        if check_agent:
            user = self._agents.get(agent)
            self._agents.check(user)
        elif is_email(agent) and resolve:
            user = self._agents.get(agent)
        return _on_behalf_target(route, agent, user)

    def create(
        self,
        agent: str,
        *,
        to: str,
        caller_id: str | None = None,
        caller_id_name: str | None = None,
        queue: str | None = None,
        attributes: Mapping[str, str] | None = None,
        label: str | None = None,
        uui: str | None = None,
        check_agent: bool = True,
        default_country: str | None = None,
    ) -> CallCreated:
        """Ring ``agent`` (id, email or "me"), then connect them to ``to``.

        The 200 only means Genesys accepted the call. Raises InvalidPhoneNumberError or InputError
        before anything is sent, AgentNotReadyError when the agent cannot take calls, and
        CallOutcomeUnknownError when the request went out but its outcome is unknown.
        """
        body = self._body(
            to=to,
            caller_id=caller_id,
            caller_id_name=caller_id_name,
            queue=queue,
            attributes=attributes,
            label=label,
            uui=uui,
            default_country=default_country,
        )
        target = self._target(agent, check_agent=check_agent)
        response = self._transport.request("POST", target.path, json=body, idempotent=False)
        return _created(response, body, self._transport)

    def build_create_request(
        self,
        agent: str,
        *,
        to: str,
        caller_id: str | None = None,
        caller_id_name: str | None = None,
        queue: str | None = None,
        attributes: Mapping[str, str] | None = None,
        label: str | None = None,
        uui: str | None = None,
        default_country: str | None = None,
        resolve: bool = True,
    ) -> PreparedRequest:
        """The exact create-call request :meth:`create` would send, without sending it (dry run).

        With ``resolve`` an email is looked up (a read-only search) to fill in the agent id;
        without it the URL keeps a ``{userId}`` placeholder. Nothing is dialed either way.
        """
        body = self._body(
            to=to,
            caller_id=caller_id,
            caller_id_name=caller_id_name,
            queue=queue,
            attributes=attributes,
            label=label,
            uui=uui,
            default_country=default_country,
        )
        if self.route == "user":
            path = USER_ROUTE_PATH
        else:
            path = self._target(agent, check_agent=False, resolve=resolve).path
        return self._transport.prepare("POST", path, json=body, idempotent=False)

    def get(self, conversation_id: str) -> CallConversation:
        """The call conversation with its participants (GET, retried when transient)."""
        path = _CALL_PATH.format(conversation_id=_segment(conversation_id, "conversation id"))
        return _conversation(self._transport.get_json(path))

    def hang_up(self, conversation_id: str, *, participant_id: str | None = None) -> None:
        """End the call for everyone, or only ``participant_id``'s leg (PATCH to disconnected)."""
        path = _hang_up_path(conversation_id, participant_id)
        self._transport.request("PATCH", path, json=_DISCONNECT, idempotent=True)

    def wait(
        self,
        conversation_id: str,
        *,
        agent_id: str | None = None,
        timeout_s: float | None = None,
        on_event: Callable[[CallEvent], None] | None = None,
    ) -> Outcome:
        """Block until the call ends and return its outcome (notifications, else polling).

        Runs the monitor on a private event loop with this client's token and rate budget; from
        async code use ``AsyncClient.calls.wait`` instead.
        """
        from gcdial import monitor

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "Client.calls.wait blocks, so it cannot run inside an event loop: "
                "use AsyncClient.calls.wait there."
            )
        transport = self._transport

        async def _wait() -> Outcome:
            async with httpx.AsyncClient(timeout=transport.timeout) as http:
                twin = AsyncApiTransport(
                    http,
                    base_url=transport.base_url,
                    auth=transport.auth,
                    budget=transport.budget,
                    timeout=transport.timeout,
                    max_retries=transport.max_retries,
                )
                return await monitor.wait(
                    twin,
                    conversation_id,
                    agent_id=agent_id,
                    timeout_s=timeout_s,
                    on_event=on_event,
                )

        return asyncio.run(_wait())


class AsyncCalls(_CallsBase[AsyncApiTransport, AsyncAgents]):
    """Create, read and hang up calls over an asynchronous transport."""

    async def _target(self, agent: str, *, check_agent: bool, resolve: bool = True) -> CallTarget:
        route = self.route
        if route == "user":
            me = await self._agents.get(ME)
            other = await self._agents.get(agent) if _needs_other_lookup(agent) else None
            target = _owner_target(agent, me, other)
            if check_agent:
                await self._agents.check(me)
            return target
        user: User | None = None
        if check_agent:
            user = await self._agents.get(agent)
            await self._agents.check(user)
        elif is_email(agent) and resolve:
            user = await self._agents.get(agent)
        return _on_behalf_target(route, agent, user)

    async def create(
        self,
        agent: str,
        *,
        to: str,
        caller_id: str | None = None,
        caller_id_name: str | None = None,
        queue: str | None = None,
        attributes: Mapping[str, str] | None = None,
        label: str | None = None,
        uui: str | None = None,
        check_agent: bool = True,
        default_country: str | None = None,
    ) -> CallCreated:
        """Ring ``agent``, then connect them to ``to``; see :meth:`Calls.create`."""
        body = self._body(
            to=to,
            caller_id=caller_id,
            caller_id_name=caller_id_name,
            queue=queue,
            attributes=attributes,
            label=label,
            uui=uui,
            default_country=default_country,
        )
        target = await self._target(agent, check_agent=check_agent)
        response = await self._transport.request("POST", target.path, json=body, idempotent=False)
        return _created(response, body, self._transport)

    async def build_create_request(
        self,
        agent: str,
        *,
        to: str,
        caller_id: str | None = None,
        caller_id_name: str | None = None,
        queue: str | None = None,
        attributes: Mapping[str, str] | None = None,
        label: str | None = None,
        uui: str | None = None,
        default_country: str | None = None,
        resolve: bool = True,
    ) -> PreparedRequest:
        """The exact create-call request :meth:`create` would send, without sending it (dry run)."""
        body = self._body(
            to=to,
            caller_id=caller_id,
            caller_id_name=caller_id_name,
            queue=queue,
            attributes=attributes,
            label=label,
            uui=uui,
            default_country=default_country,
        )
        if self.route == "user":
            path = USER_ROUTE_PATH
        else:
            path = (await self._target(agent, check_agent=False, resolve=resolve)).path
        return self._transport.prepare("POST", path, json=body, idempotent=False)

    async def get(self, conversation_id: str) -> CallConversation:
        """The call conversation with its participants (GET, retried when transient)."""
        path = _CALL_PATH.format(conversation_id=_segment(conversation_id, "conversation id"))
        return _conversation(await self._transport.get_json(path))

    async def hang_up(self, conversation_id: str, *, participant_id: str | None = None) -> None:
        """End the call for everyone, or only ``participant_id``'s leg (PATCH to disconnected)."""
        path = _hang_up_path(conversation_id, participant_id)
        await self._transport.request("PATCH", path, json=_DISCONNECT, idempotent=True)

    def follow(
        self,
        conversation_id: str,
        *,
        agent_id: str | None = None,
        timeout_s: float | None = None,
        monitor: CallMonitor | None = None,
    ) -> AsyncIterator[CallEvent]:
        """The call's events as they happen, until it ends (``async for event in ...``).

        Pass a ``CallMonitor`` that already watches the agent to see the earliest events too.
        """
        from gcdial.monitor import follow

        return follow(
            self._transport,
            conversation_id,
            agent_id=agent_id,
            monitor=monitor,
            timeout_s=timeout_s,
        )

    async def wait(
        self,
        conversation_id: str,
        *,
        agent_id: str | None = None,
        timeout_s: float | None = None,
        monitor: CallMonitor | None = None,
        on_event: Callable[[CallEvent], None] | None = None,
    ) -> Outcome:
        """Follow the call to its end and return its outcome."""
        from gcdial.monitor import wait

        return await wait(
            self._transport,
            conversation_id,
            agent_id=agent_id,
            monitor=monitor,
            timeout_s=timeout_s,
            on_event=on_event,
        )
