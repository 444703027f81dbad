"""``/v1/events`` and ``/v1/calls/{id}/events``: the one Server-Sent Events loop.

The page's live feed is this stream too (an ``EventSource`` sends the session cookie). Every
event has the shape webhooks deliver (:func:`gcdial.serve.service.public_event`). The loop asks
the authenticator again on a short timer, whether events flow or not: a revoked key or a signed
out session ends the stream within ``credential_check_s``, with a last ``stream.ended`` event
saying why.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse

from gcdial.serve.call_views import ends_call_stream, public_event
from gcdial.serve.params import MAX_EVENT_ID, CallId, event_cursor
from gcdial.serve.principal import Authenticator, Principal
from gcdial.serve.routes.deps import ERRORS, Auth, Caller, Service
from gcdial.serve.service_core import ServiceCore

__all__ = ["router", "stream_events"]

ENDED = "stream.ended"

router = APIRouter(tags=["events"])
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}
}
LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume after this event id (sent on reconnect)"),
]
After = Annotated[
    int | None,
    Query(ge=0, le=MAX_EVENT_ID, description="Resume after this event id (when no header)"),
]


def resume_point(last_event_id: str | None, after: int | None, default: int) -> int:
    """Where a stream starts: after ``Last-Event-ID``, else ``?after=``, else ``default``."""
    cursor = event_cursor(last_event_id, where="header:Last-Event-ID")
    if cursor is not None:
        return cursor
    return after if after is not None else default


def stream_events(
    service: ServiceCore,
    auth: Authenticator,
    caller: Principal,
    after: int,
    call_id: str | None = None,
) -> EventSourceResponse:
    """The events after ``after`` that ``caller`` may see, live; one call's until it ends."""
    store = service.store
    config = service.config

    async def events() -> AsyncIterator[dict[str, str]]:
        last = after
        check_at = time.monotonic() + config.credential_check_s
        service.metrics.sse_streams.inc()
        try:
            while True:
                if time.monotonic() >= check_at:
                    ended = await auth.ended(caller)
                    if ended is not None:
                        detail = {"type": ended.detail.type, "message": ended.detail.message}
                        yield {"event": ENDED, "data": json.dumps(detail)}
                        return
                    check_at = time.monotonic() + config.credential_check_s
                batch = await service.db(store.events_after, last, call_id=call_id)
                for event in batch:
                    last = event.id
                    data = json.loads(event.data)
                    if not caller.sees_event(data):
                        continue
                    body = json.dumps(public_event(data))
                    yield {"id": str(event.id), "event": event.type, "data": body}
                    if call_id is not None and ends_call_stream(event.type, data):
                        return
                if not batch:
                    wait = max(0.0, min(config.sse_ping_s, check_at - time.monotonic()))
                    await service.hub.wait_beyond(last, wait)
        finally:
            service.metrics.sse_streams.dec()

    return EventSourceResponse(
        events(),
        ping=int(config.sse_ping_s),
        send_timeout=config.sse_send_timeout_s,
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/v1/calls/{call_id}/events",
    responses={**ERRORS, **_SSE},
    response_class=EventSourceResponse,
    summary="One call's events (SSE); resume with Last-Event-ID",
)
async def call_events(
    call_id: CallId,
    caller: Caller,
    service: Service,
    auth: Auth,
    last_event_id: LastEventId = None,
    after: After = None,
) -> EventSourceResponse:
    """One call's events from its first (or after the resume point) until it ends."""
    caller.need("watch")
    await service.own_call(caller.key, call_id)
    return stream_events(service, auth, caller, resume_point(last_event_id, after, 0), call_id)


@router.get(
    "/v1/events",
    responses={**ERRORS, **_SSE},
    response_class=EventSourceResponse,
    summary="Every event this key may see (SSE); resume with Last-Event-ID",
)
async def all_events(
    caller: Caller,
    service: Service,
    auth: Auth,
    last_event_id: LastEventId = None,
    after: After = None,
) -> EventSourceResponse:
    """Every event the caller may see, from now (or after the resume point) on."""
    caller.need("watch")
    start = resume_point(last_event_id, after, service.hub.last_id)
    return stream_events(service, auth, caller, start)
