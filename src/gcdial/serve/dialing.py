"""The one place where the service dials, and the pure verdict on a failed dial.

The service never re-sends a create-call itself: the library's transport alone decides whether a
POST may be re-sent (only after a 429 or a connection that provably never sent it).
"""

from __future__ import annotations

from gcdial.client import AsyncClient
from gcdial.errors import (
    AgentNotReadyError,
    ApiConnectionError,
    ApiError,
    AuthError,
    CallOutcomeUnknownError,
    ConfigError,
    GcdialError,
    InputError,
)
from gcdial.models import CallCreated
from gcdial.serve.models import CallRequest

__all__ = ["failed_dial_status", "place_call"]


async def place_call(client: AsyncClient, request: CallRequest) -> CallCreated:
    """Send the create-call for ``request`` once, through the library's dialing path."""
    return await client.calls.create(
        request.agent,
        to=request.to,
        caller_id=request.callerId,
        caller_id_name=request.callerIdName,
        queue=request.queueId,
        attributes=request.attributes,
        label=request.label,
        default_country=request.defaultCountry,
    )


def failed_dial_status(exc: BaseException) -> str:
    """The call status after ``place_call`` raised ``exc``.

    ``refused``: refused before anything was sent (agent not ready, bad input). ``not_placed``: the
    create-call provably did nothing (an error status came back, or it never left). Anything else,
    including an error we do not know, is ``unknown``: a wrong "not placed" would invite a second
    ring.
    """
    if isinstance(exc, CallOutcomeUnknownError):
        return "unknown"
    if isinstance(exc, AgentNotReadyError | InputError | ConfigError):
        return "refused"
    if isinstance(exc, ApiError | ApiConnectionError | AuthError):
        # The transport turns every ambiguous create-call failure into CallOutcomeUnknownError;
        # what remains came back with a definite refusal, or never left.
        return "not_placed"
    if isinstance(exc, GcdialError):
        return "unknown"
    return "unknown"
