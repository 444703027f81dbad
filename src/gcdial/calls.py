"""Place a call on behalf of an agent, read it, hang it up.

Everything that can be checked is checked before the create-call POST leaves: the numbers are
normalised to E.164, the body is validated, the agent is found and (unless told not to) checked
for an active account and a station. The POST itself is sent at most once unless the server
provably did not act on it (see :mod:`gcdial.http`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from gcdial.agents import ME, AgentReadiness, Agents, AsyncAgents, is_email
from gcdial.config import Settings
from gcdial.errors import (
    CallOutcomeUnknownError,
    InputError,
    RequestOutcomeUnknownError,
    ResponseFormatError,
)
from gcdial.http import (
    ApiTransport,
    AsyncApiTransport,
    PreparedRequest,
    SyncBridge,
    prepare_request,
)
from gcdial.models import CallConversation, CallCreated, CreateCallRequest, User
from gcdial.phone import to_e164

if TYPE_CHECKING:
    from gcdial.monitor.events import CallEvent
    from gcdial.monitor.follow import CallMonitor
    from gcdial.monitor.outcome import Outcome
    from gcdial.monitor.wrapup import WrapupWait

__all__ = [
    "ON_BEHALF_PATH",
    "USER_ROUTE_PATH",
    "AsyncCalls",
    "CallParams",
    "CallTarget",
    "Calls",
    "Route",
    "build_create_body",
    "check_attributes",
    "choose_route",
    "preview_create",
]

logger = logging.getLogger("gcdial.calls")

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


# Genesys' limits on participant attributes are UNCONFIRMED (Architect documents 256-character
# values for bots; the API's own limits are not published): conservative bounds, checked before
# sending so an oversized tag never turns into an ambiguous 400-after-acting.
MAX_ATTRIBUTES: Final = 50
MAX_ATTRIBUTE_KEY_CHARS: Final = 256
MAX_ATTRIBUTE_VALUE_CHARS: Final = 2000
MAX_ATTRIBUTES_TOTAL_CHARS: Final = 20_000


@dataclass(frozen=True, kw_only=True)
class CallParams:
    """What to dial and how: the create-call options, one definition passed whole everywhere.

    ``to`` is the customer's number (E.164, or national with ``default_country``); ``caller_id``
    and ``caller_id_name`` what the customer sees; ``queue`` the queue id to call on behalf of
    (``callFromQueueId``); ``attributes`` text pairs attached to the customer participant;
    ``label`` the conversation label; ``uui`` user-to-user data (``uuiData``). Nothing is checked
    until :meth:`body` (or a create/dial) runs.
    """

    to: str
    caller_id: str | None = None
    caller_id_name: str | None = None
    queue: str | None = None
    attributes: Mapping[str, str] | None = None
    label: str | None = None
    uui: str | None = None
    default_country: str | None = None

    @classmethod
    def of(cls, params: CallParams | None, fields: Mapping[str, Any]) -> CallParams:
        """``params``, or the keyword form (``to=..., caller_id=...``) made into CallParams."""
        if params is not None:
            if fields:
                raise InputError(
                    f"Give the call either as CallParams or as keywords, not both "
                    f"(got {', '.join(sorted(fields))} too).",
                )
            return params
        try:
            return cls(**fields)
        except TypeError as exc:
            raise InputError(
                f"Unknown or missing call option: {exc}.",
                hint="The call options are the fields of gcdial.CallParams (to, caller_id, ...).",
            ) from None

    def with_attribute(self, key: str, value: str) -> CallParams:
        """These params with one more attribute; InputError when ``key`` is already the user's."""
        own = dict(self.attributes or {})
        if key in own:
            raise InputError(
                f"The attribute {key!r} is gcdial's attempt tag, but the call's attributes "
                "already have it.",
                hint="Rename your attribute, or choose another tag key with the setting "
                "attempt_attribute (GCDIAL_ATTEMPT_ATTRIBUTE).",
            )
        return replace(self, attributes={**own, key: value})

    def body(self, *, default_country: str = "US") -> CreateCallRequest:
        """Validate and normalise into the CreateCallRequest body; sends nothing.

        Raises InvalidPhoneNumberError for a bad number and InputError for other bad input
        (attributes over the limits included).
        """
        country = self.default_country or default_country
        phone_number = to_e164(self.to, default_country=country)
        caller = to_e164(self.caller_id, default_country=country) if self.caller_id else None
        attributes = dict(self.attributes) if self.attributes is not None else None
        if attributes:
            check_attributes(attributes)
        try:
            return CreateCallRequest(
                phone_number=phone_number,
                caller_id=caller,
                caller_id_name=self.caller_id_name or None,
                call_from_queue_id=_check_id(self.queue, "queue id") if self.queue else None,
                attributes=attributes,
                label=self.label or None,
                uui_data=self.uui or None,
            )
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise InputError(
                f"The call details are invalid: {where}: {first['msg']}.",
                hint="Attributes must map text keys to text values; check the other options.",
            ) from None


def check_attributes(attributes: Mapping[str, object]) -> None:
    """InputError naming the first attribute over Genesys' limits (count, key, value, total)."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise InputError(
            f"The call has {len(attributes)} attributes; at most {MAX_ATTRIBUTES} are sent.",
            hint="Keep only the attributes the agent or your reports need.",
        )
    total = 0
    for key, value in attributes.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InputError(
                f"attributes.{key}: attribute keys and values must be text.",
                hint="Convert numbers and other values to strings.",
            )
        if not key.strip() or len(key) > MAX_ATTRIBUTE_KEY_CHARS:
            raise InputError(
                f"attributes: the key {key[:40]!r} must be 1 to {MAX_ATTRIBUTE_KEY_CHARS} "
                "characters.",
                hint="Use a short, non-blank attribute name.",
            )
        if len(value) > MAX_ATTRIBUTE_VALUE_CHARS:
            raise InputError(
                f"attributes.{key}: the value has {len(value)} characters; at most "
                f"{MAX_ATTRIBUTE_VALUE_CHARS} are sent.",
                hint="Send a reference (an id) instead of the whole text.",
            )
        total += len(key) + len(value)
    if total > MAX_ATTRIBUTES_TOTAL_CHARS:
        raise InputError(
            f"The call's attributes total {total} characters; at most "
            f"{MAX_ATTRIBUTES_TOTAL_CHARS} are sent.",
            hint="Send references (ids) instead of whole texts.",
        )


def build_create_body(params: CallParams, *, default_country: str = "US") -> CreateCallRequest:
    """:meth:`CallParams.body`: validate the call's details into the body; sends nothing."""
    return params.body(default_country=default_country)


@dataclass(frozen=True)
class CallTarget:
    """Where the create-call POST goes and whose phone rings first."""

    route: Route
    path: str
    agent_id: str | None
    agent: User | None
    readiness: AgentReadiness | None = None
    """What the agent check found, when the agent was checked."""


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


def _call_outcome_unknown(error: RequestOutcomeUnknownError) -> CallOutcomeUnknownError:
    """The transport's neutral "no usable answer" read as what it means for a create-call."""
    logger.warning(
        "%s %s sent at %s has an unknown outcome (%s); it will not be re-sent",
        error.method,
        error.url,
        error.sent_at.isoformat(),
        error.reason,
    )
    return CallOutcomeUnknownError.of_request(error)


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


PLACEHOLDER_BASE_URL: Final = "https://api.{region}"


def preview_create(
    settings: Settings, agent: str, params: CallParams, *, user_token: bool | None = None
) -> PreparedRequest:
    """The create-call request for a dry run, built from settings alone: no credentials, no
    region and no request needed (an unknown region shows as ``{region}``, an email agent's id
    as ``{userId}``). Raises InputError / InvalidPhoneNumberError for bad input."""
    body = params.body(default_country=settings.default_country).to_wire()
    if user_token is None:
        user_token = settings.access_token is not None
    route = choose_route(settings.call_route, user_token=user_token)
    path = USER_ROUTE_PATH if route == "user" else _on_behalf_target(route, agent, None).path
    base = settings.api_base_url or PLACEHOLDER_BASE_URL
    return prepare_request(f"{base.rstrip('/')}{path}", "POST", json=body, idempotent=False)


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

    def _body(self, params: CallParams) -> dict[str, Any]:
        """The validated CreateCallRequest body, in Genesys' JSON names; raises before sending."""
        return params.body(default_country=self._settings.default_country).to_wire()

    def validate(self, params: CallParams) -> None:
        """Raise InputError / InvalidPhoneNumberError when ``params`` could not be sent."""
        self._body(params)


def _check_target(target: CallTarget) -> None:
    if target.agent_id is None and "{userId}" in target.path:
        raise InputError("The agent's user id is not known yet: look the agent up first.")


def _ready(readiness: AgentReadiness) -> AgentReadiness:
    """``readiness`` if the policy lets a call go now; else its refusal (nothing is sent)."""
    if not readiness.ready:
        raise readiness.error()
    return readiness


class Calls(_CallsBase[ApiTransport, Agents]):
    """Create, read and hang up calls over a synchronous transport."""

    def _target(self, agent: str, *, check_agent: bool, resolve: bool = True) -> CallTarget:
        route = self.route
        if route == "user":
            me = self._agents.get(ME)
            other = self._agents.get(agent) if _needs_other_lookup(agent) else None
            target = _owner_target(agent, me, other)
            if check_agent:
                target = replace(target, readiness=_ready(self._agents.check(me)))
            return target
        user: User | None = None
        readiness: AgentReadiness | None = None
        if check_agent:
            user = self._agents.get(agent)
            readiness = _ready(self._agents.check(user))
        elif is_email(agent) and resolve:
            user = self._agents.get(agent)
        return replace(_on_behalf_target(route, agent, user), readiness=readiness)

    def create(
        self,
        agent: str,
        params: CallParams | None = None,
        *,
        check_agent: bool = True,
        **options: Any,
    ) -> CallCreated:
        """Ring ``agent`` (id, email or "me"), then connect them to ``params.to``.

        Give the call as ``CallParams(to=...)`` or as its fields in keywords (``to=...``). This
        sends the call once and nothing more; :meth:`gcdial.Client.dial` also tags, follows and
        resolves it. The 200 only means Genesys accepted the call. Raises InvalidPhoneNumberError
        or InputError before anything is sent, AgentNotReadyError when the agent cannot take
        calls, and CallOutcomeUnknownError when the request went out but its outcome is unknown.
        """
        body = self._body(CallParams.of(params, options))
        return self._post(self._target(agent, check_agent=check_agent), body)

    def target(self, agent: str, *, check_agent: bool = True) -> CallTarget:
        """Find (and unless ``check_agent=False``, check) the agent: where the POST will go."""
        return self._target(agent, check_agent=check_agent)

    def send(self, target: CallTarget, params: CallParams) -> CallCreated:
        """Send the create-call POST for ``params`` to ``target`` (from :meth:`target`), once."""
        return self._post(target, self._body(params))

    def _post(self, target: CallTarget, body: dict[str, Any]) -> CallCreated:
        _check_target(target)
        try:
            response = self._transport.request("POST", target.path, json=body, idempotent=False)
        except RequestOutcomeUnknownError as exc:
            raise _call_outcome_unknown(exc) from exc.cause
        return _created(response, body, self._transport)

    def build_create_request(
        self,
        agent: str,
        params: CallParams | None = None,
        *,
        resolve: bool = True,
        **options: Any,
    ) -> PreparedRequest:
        """The exact create-call request :meth:`create` would send, without sending it (dry run).

        With ``resolve`` an email is looked up (a read-only search) to fill in the agent id;
        without it the URL keeps a ``{userId}`` placeholder. Nothing is dialed either way.
        """
        body = self._body(CallParams.of(params, options))
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
        wrapup: bool | WrapupWait = False,
    ) -> Outcome:
        """Block until the call ends and return its outcome (notifications, else polling).

        Runs the monitor on a private event loop with this client's token and rate budget; from
        async code use ``AsyncClient.calls.wait`` instead. ``wrapup``: see
        ``AsyncClient.calls.wait``.
        """
        refuse_running_loop("Client.calls.wait", "AsyncClient.calls.wait")
        twin = async_twin(self._transport)

        async def _wait() -> Outcome:
            # start-up: only following a call needs the monitor (and the WebSocket client)
            from gcdial.monitor.follow import wait as follow_wait

            async with twin.http:
                return await follow_wait(
                    twin,
                    conversation_id,
                    agent_id=agent_id,
                    timeout_s=timeout_s,
                    on_event=on_event,
                    wrapup=wrapup_wait(wrapup, self._settings),
                )

        import asyncio  # see gcdial.http.async_sleep

        return asyncio.run(_wait())


def refuse_running_loop(blocking: str, instead: str) -> None:
    """RuntimeError when called inside an event loop: a blocking call there would deadlock it."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return  # no event loop runs in a program that never imported asyncio
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{blocking} blocks, so it cannot run inside an event loop: use {instead} there."
    )


def async_twin(transport: ApiTransport) -> AsyncApiTransport:
    """An async transport over the same HTTP client, token, rate budget and server clock.

    Requests go through the sync client's own ``httpx.Client`` (its transport, proxies and TLS
    settings) via :class:`gcdial.http.SyncBridge`. Close the twin's ``http`` when done.
    """
    http = httpx.AsyncClient(transport=SyncBridge(transport.http), timeout=transport.timeout)
    twin = AsyncApiTransport(
        http,
        base_url=transport.base_url,
        auth=transport.auth,
        budget=transport.budget,
        timeout=transport.timeout,
        max_retries=transport.max_retries,
    )
    twin.server_clock = transport.server_clock
    return twin


class AsyncCalls(_CallsBase[AsyncApiTransport, AsyncAgents]):
    """Create, read and hang up calls over an asynchronous transport."""

    async def _target(self, agent: str, *, check_agent: bool, resolve: bool = True) -> CallTarget:
        route = self.route
        if route == "user":
            me = await self._agents.get(ME)
            other = await self._agents.get(agent) if _needs_other_lookup(agent) else None
            target = _owner_target(agent, me, other)
            if check_agent:
                target = replace(target, readiness=_ready(await self._agents.check(me)))
            return target
        user: User | None = None
        readiness: AgentReadiness | None = None
        if check_agent:
            user = await self._agents.get(agent)
            readiness = _ready(await self._agents.check(user))
        elif is_email(agent) and resolve:
            user = await self._agents.get(agent)
        return replace(_on_behalf_target(route, agent, user), readiness=readiness)

    async def create(
        self,
        agent: str,
        params: CallParams | None = None,
        *,
        check_agent: bool = True,
        **options: Any,
    ) -> CallCreated:
        """Ring ``agent``, then connect them to ``to``; see :meth:`Calls.create`."""
        body = self._body(CallParams.of(params, options))
        target = await self._target(agent, check_agent=check_agent)
        return await self._post(target, body)

    async def target(self, agent: str, *, check_agent: bool = True) -> CallTarget:
        """Find (and unless ``check_agent=False``, check) the agent: where the POST will go."""
        return await self._target(agent, check_agent=check_agent)

    async def send(self, target: CallTarget, params: CallParams) -> CallCreated:
        """Send the create-call POST for ``params`` to ``target`` (from :meth:`target`), once."""
        return await self._post(target, self._body(params))

    async def _post(self, target: CallTarget, body: dict[str, Any]) -> CallCreated:
        _check_target(target)
        try:
            response = await self._transport.request(
                "POST", target.path, json=body, idempotent=False
            )
        except RequestOutcomeUnknownError as exc:
            raise _call_outcome_unknown(exc) from exc.cause
        return _created(response, body, self._transport)

    async def build_create_request(
        self,
        agent: str,
        params: CallParams | None = None,
        *,
        resolve: bool = True,
        **options: Any,
    ) -> PreparedRequest:
        """The exact create-call request :meth:`create` would send, without sending it (dry run)."""
        body = self._body(CallParams.of(params, options))
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
        wrapup: bool | WrapupWait = False,
    ) -> AsyncIterator[CallEvent]:
        """The call's events as they happen, until it ends (``async for event in ...``).

        Pass a ``CallMonitor`` that already watches the agent to see the earliest events too.
        ``wrapup``: go on until the agent's wrap-up (see :meth:`wait`).
        """
        # start-up: only following a call needs the monitor (and the WebSocket client)
        from gcdial.monitor.follow import follow as follow_events

        return follow_events(
            self._transport,
            conversation_id,
            agent_id=agent_id,
            monitor=monitor,
            timeout_s=timeout_s,
            wrapup=wrapup_wait(wrapup, self._settings),
        )

    async def wait(
        self,
        conversation_id: str,
        *,
        agent_id: str | None = None,
        timeout_s: float | None = None,
        monitor: CallMonitor | None = None,
        on_event: Callable[[CallEvent], None] | None = None,
        wrapup: bool | WrapupWait = False,
    ) -> Outcome:
        """Follow the call to its end and return its outcome.

        ``wrapup=True``: once the call is over, wait (up to ``DEFAULT_WRAPUP_TIMEOUT_S``) for the
        agent's wrap-up, returned in ``outcome.wrapup``, when one is expected: the agent's leg
        was for a queue, or the setting ``wrapup_non_acd`` is on. A ``WrapupWait`` sets the time
        and says whether the call is an ACD one.
        """
        # start-up: only following a call needs the monitor (and the WebSocket client)
        from gcdial.monitor.follow import wait as follow_wait

        return await follow_wait(
            self._transport,
            conversation_id,
            agent_id=agent_id,
            monitor=monitor,
            timeout_s=timeout_s,
            on_event=on_event,
            wrapup=wrapup_wait(wrapup, self._settings),
        )


def wrapup_wait(wrapup: bool | WrapupWait, settings: Settings) -> WrapupWait | None:
    """The wrap-up wait a ``wrapup=`` option asks for (``True``: the default time)."""
    # Imported here for start-up time: only following a call waits for its wrap-up.
    from gcdial.monitor.wrapup import WrapupWait

    if isinstance(wrapup, WrapupWait):
        return wrapup
    return WrapupWait(non_acd=settings.wrapup_non_acd) if wrapup else None
