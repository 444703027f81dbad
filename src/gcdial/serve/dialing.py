"""The one place where the service dials (the library's dialing core), and the pure verdicts.

The service never re-sends a create-call itself: ``client.dial`` sends it once (its transport
alone may re-send, and only after a 429 or a connection that provably never sent it) and resolves
an ambiguous answer by its evidence ladder.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from gcdial.calls import AsyncCalls, CallParams, CallTarget
from gcdial.client import AsyncClient
from gcdial.dialing import Dial, dial
from gcdial.errors import (
    AgentNotReadyError,
    CallEffect,
    GcdialError,
    InputError,
    InvalidPhoneNumberError,
    TakenOverError,
)
from gcdial.monitor import CallMonitor
from gcdial.resolve import Verdict
from gcdial.serve.models import CallRequest
from gcdial.serve.problems import ApiProblem

__all__ = [
    "DialResult",
    "TakenOverError",
    "dial_status",
    "failed_dial_status",
    "place_call",
    "refusal",
]


class _FencedCalls:
    """``AsyncCalls`` whose ``send`` first awaits ``fence`` (which raises to stop the POST),
    and whose checked ``target`` is ``checked`` when given (the agent's check, under way)."""

    def __init__(
        self,
        calls: AsyncCalls,
        fence: Callable[[], Awaitable[None]] | None,
        checked: Awaitable[CallTarget] | None,
    ) -> None:
        self._calls = calls
        self._fence = fence
        self._checked = checked

    def __getattr__(self, name: str) -> Any:
        return getattr(self._calls, name)

    async def target(self, agent: str, *, check_agent: bool = True) -> CallTarget:
        if self._checked is not None and check_agent:
            return await self._checked
        return await self._calls.target(agent, check_agent=check_agent)

    async def send(self, target: CallTarget, params: CallParams) -> Any:
        if self._fence is not None:
            await self._fence()
        return await self._calls.send(target, params)


@dataclass(frozen=True)
class DialResult:
    """A dial's verdict as the API states it."""

    status: str  # placed / not_placed / unknown
    conversation_id: str | None
    detail: str | None
    agent_id: str | None = None


def params_for(request: CallRequest) -> CallParams:
    """The library's create-call options for an API request."""
    return CallParams(
        to=request.to_e164,
        caller_id=request.caller_id_e164,
        caller_id_name=request.callerIdName,
        queue=request.queueId,
        attributes=request.attributes,
        label=request.label,
        default_country=request.defaultCountry,
    )


async def place_call(
    client: AsyncClient,
    request: CallRequest,
    *,
    monitor: CallMonitor,
    resolve_timeout_s: float,
    attempt_id: str | None = None,
    fence: Callable[[], Awaitable[None]] | None = None,
    target: Awaitable[CallTarget] | None = None,
) -> Dial:
    """Dial once through ``client.dial``; an ambiguous create is resolved before answering, for
    at most ``resolve_timeout_s`` (then :func:`gcdial.dialing.keep_resolving` may go on).
    ``attempt_id``: the id kept with the call's row before the POST (recovery looks for it).
    ``fence``: awaited just before the POST leaves; it raises :class:`TakenOverError` when
    another replica has taken the call over (a process that stalled past its claim never
    sends what another one is already settling). ``target``: the agent's check
    (``client.calls.target(request.agent)``), already started by the caller: the dial uses it
    instead of checking the agent again."""
    calls = client.calls
    if fence is not None or target is not None:
        calls = cast(AsyncCalls, _FencedCalls(client.calls, fence, target))
    return await dial(
        calls,
        client.transport,
        client.settings,
        request.agent,
        params_for(request),
        monitor=monitor,
        resolve=True,
        resolve_timeout_s=resolve_timeout_s,
        attempt_id=attempt_id,
    )


def dial_status(dial: Dial) -> DialResult:
    """The API status for a dial handle: the resolution's verdict, with its summary."""
    verdict = dial.resolution.verdict
    agent_id = dial.attempt.agent_id or None
    if verdict is Verdict.PLACED:
        conversation = dial.conversation_id or dial.resolution.conversation_id
        return DialResult("placed", conversation, None, agent_id)
    status = "not_placed" if verdict is Verdict.NOT_PLACED else "unknown"
    return DialResult(status, None, dial.resolution.summary, agent_id)


def failed_dial_status(exc: BaseException) -> str:
    """The call status after ``place_call`` raised ``exc``: the error's own ``call_effect``
    (``refused``, ``not_placed`` or ``unknown``). Anything that is not a gcdial error is
    ``unknown``: a wrong "not placed" would invite a second ring."""
    if isinstance(exc, GcdialError):
        return exc.call_effect.value
    return CallEffect.UNKNOWN.value


def refusal(exc: BaseException) -> ApiProblem | None:
    """The 4xx answer for a dial refused before anything was sent, or None if it was not one.

    A refusal is no call: answering it 2xx would let a client that checks only the status
    believe the phone rang. 409 when the state of things refused it (the agent, the service's
    settings), 422 when the request did (the number).
    """
    if failed_dial_status(exc) != "refused" or not isinstance(exc, GcdialError):
        return None
    if isinstance(exc, AgentNotReadyError):
        return ApiProblem(
            409,
            "agent_not_ready",
            f"Refused, nothing was dialed: {exc.message}",
            hint=exc.hint or "Fix the agent's state, then dial again with a new Idempotency-Key.",
            path="$.agent",
        )
    if isinstance(exc, InvalidPhoneNumberError):
        return ApiProblem(
            422, "invalid_number", f"Refused, nothing was dialed: {exc.message}", hint=exc.hint,
            path="$.to",
        )  # fmt: skip
    if isinstance(exc, InputError):
        return ApiProblem(
            422, "invalid_request", f"Refused, nothing was dialed: {exc.message}", hint=exc.hint
        )
    return ApiProblem(
        409, "dial_not_configured", f"Refused, nothing was dialed: {exc.message}", hint=exc.hint
    )
