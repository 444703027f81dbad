"""``/v1/calls``: place a call (once, under an Idempotency-Key), read, list and hang up.

The page's dial form, its call lists and its hang-up button are these handlers too, reached with
the session cookie and CSRF token instead of a Bearer key.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from gcdial.errors import GcdialError, NotFoundError
from gcdial.serve.call_views import call_json
from gcdial.serve.cursor import decode_cursor, encode_cursor, filters_fingerprint
from gcdial.serve.models import CallRequest, CallResource, CallsPage, RefusedCall, RuleRefusal
from gcdial.serve.params import CallId
from gcdial.serve.problems import ApiProblem, ErrorBody
from gcdial.serve.routes.deps import ERRORS, Caller, DialPart, FollowPart, Service
from gcdial.serve.service_core import ServiceCore
from gcdial.serve.steps import call_view
from gcdial.serve.store import CallRecord

__all__ = ["MAX_IDEMPOTENCY_KEY", "attribute_filters", "key_names", "router", "with_progress"]

MAX_IDEMPOTENCY_KEY = 255
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")
ATTRIBUTE_PREFIX = "attribute."
MAX_ATTRIBUTE_FILTERS = 5

router = APIRouter(tags=["calls"])


def _idempotency_key(value: str | None) -> str:
    if value is None or not value.strip():
        raise ApiProblem(
            400,
            "idempotency_key_missing",
            "The Idempotency-Key header is required on POST /v1/calls.",
            hint="Send a new unique value (e.g. a UUID) per call, and the same one on retries.",
            path="header:Idempotency-Key",
        )
    if len(value) > MAX_IDEMPOTENCY_KEY or not _KEY_CHARS.match(value):
        raise ApiProblem(
            400,
            "idempotency_key_invalid",
            f"The Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters.",
            path="header:Idempotency-Key",
        )
    return value


@router.post(
    "/v1/calls",
    status_code=202,
    response_model=CallResource,
    responses={
        **ERRORS,
        403: {
            "model": RuleRefusal,
            "description": "Refused by a calling rule before anything was claimed or sent "
            "(error.type do_not_call, calling_window, unknown_time_zone or no_calling_hours; "
            "the contact's local time in localTime); or the key lacks a scope or the agent",
        },
        409: {
            "model": RefusedCall,
            "description": "Refused before anything was sent (the agent is not ready, ...), "
            "with the call inside; or the Idempotency-Key is still in use",
        },
        422: {
            "model": RefusedCall,
            "description": "Invalid body, or a number refused before anything was sent",
        },
    },
    summary="Place a call (the Idempotency-Key header is required)",
)
async def create_call(
    request: CallRequest,
    caller: Caller,
    dials: DialPart,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required; 1-255 printable ASCII characters, unique per intended call.",
        ),
    ] = None,
) -> Response:
    """Claim the key, dial once; a replay of the key answers as the first time (a refusal's
    4xx included)."""
    caller.need("dial")
    key = _idempotency_key(idempotency_key)
    caller.need_agent(request.agent)
    if request.override is not None:
        caller.need("override")
    answer = await dials.create_call(caller.key, key, request)
    if answer.kind == "refused_rules":
        return JSONResponse(answer.body, answer.status_code)
    if answer.kind == "mismatch":
        raise ApiProblem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
            hint="Use a new key for a different call; retries must send the same body.",
            path="header:Idempotency-Key",
        )
    if answer.kind == "in_progress":
        raise ApiProblem(
            409,
            "idempotency_key_in_progress",
            "A request with this Idempotency-Key is still placing the call.",
            hint="Retry in a moment with the same key and body to get its answer.",
            path="header:Idempotency-Key",
            headers={"Retry-After": "1"},
        )
    headers = {"Location": f"/v1/calls/{answer.call_id}"}
    if answer.kind == "replay":
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(answer.body, answer.status_code, headers=headers)


@router.get("/v1/calls/{call_id}", response_model=CallResource, responses=ERRORS)
async def get_call(
    call_id: CallId,
    caller: Caller,
    service: Service,
    expand: Annotated[
        str | None,
        Query(
            pattern="^progress$",
            description="progress: add the call's step, talk time and the placing key's name",
        ),
    ] = None,
) -> dict[str, Any]:
    """One call the caller may see."""
    caller.need("watch")
    call = await service.own_call(caller.key, call_id)
    if expand == "progress":
        [shown] = await with_progress(service, [call])
        return shown
    return call_json(call)


@router.get(
    "/v1/calls",
    response_model=CallsPage,
    responses=ERRORS,
    description="The calls the caller may see, newest first, a page at a time: pass the "
    "answer's `next` as `cursor` for the next page (with the same filters). Filter by what the "
    "client sent with `attribute.NAME=VALUE` (e.g. `attribute.ticket=4711`; up to "
    f"{MAX_ATTRIBUTE_FILTERS}, all must match).",
)
async def list_calls(
    request: Request,
    caller: Caller,
    service: Service,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[
        datetime | None, Query(description="ISO 8601 time: calls created at or after it")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="ISO 8601 time: calls created before it")
    ] = None,
    status: Annotated[
        str | None, Query(pattern="^(placing|placed|unknown|not_placed|refused)$")
    ] = None,
    outcome: Annotated[
        str | None,
        Query(
            pattern="^[a-z_]{1,40}$",
            description="The call's outcome, or its status while it has none (answered, unknown)",
        ),
    ] = None,
    label: Annotated[
        str | None, Query(min_length=1, max_length=200, description="The label sent")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="The page size")] = 100,
    cursor: Annotated[
        str | None,
        Query(max_length=500, description="The previous page's `next`, as given"),
    ] = None,
    source: Annotated[
        str | None, Query(pattern="^(api|campaign)$", description="Who placed the calls")
    ] = None,
    campaign: Annotated[
        str | None, Query(max_length=40, description="One campaign's calls (its id)")
    ] = None,
    expand: Annotated[
        str | None,
        Query(
            pattern="^progress$",
            description="progress: add each call's step, talk time and the placing key's name",
        ),
    ] = None,
) -> dict[str, Any]:
    """The calls the caller may see, newest first; ``lastEventId`` is where an event stream
    opened now would resume from, so the list and the stream miss nothing between them."""
    caller.need("watch")
    attributes = attribute_filters(request.query_params.multi_items())
    filters: dict[str, Any] = {
        "agent": agent,
        "since": _epoch(since, "since") if since is not None else None,
        "until": _epoch(until, "until") if until is not None else None,
        "status": status,
        "outcome": outcome,
        "label": label,
        "attributes": attributes or None,
        "api_key_id": caller.owner_filter,
        "source": source,
        "campaign_id": campaign,
    }
    fingerprint = filters_fingerprint(filters)
    key = await service.db(service.store.cursor_key)
    now = service.clock()
    before = decode_cursor(key, cursor, fingerprint, now=now) if cursor is not None else None
    last = await service.db(service.store.last_event_id)
    calls = await service.db(service.store.list_calls, **filters, limit=limit + 1, before=before)
    more = len(calls) > limit
    calls = calls[:limit]
    nxt = (
        encode_cursor(key, (calls[-1].created_at, calls[-1].id), fingerprint, now=now)
        if more
        else None
    )
    if expand == "progress":
        listed = await with_progress(service, calls)
    else:
        listed = [call_json(call) for call in calls]
    return {"calls": listed, "lastEventId": last, "next": nxt}


def attribute_filters(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``attribute.NAME=VALUE`` query parameters as ``{NAME: VALUE}``, bounded like the
    attributes a call may carry; a 422 naming the parameter otherwise."""
    found: dict[str, str] = {}
    for param, value in params:
        if not param.startswith(ATTRIBUTE_PREFIX):
            continue
        name = param.removeprefix(ATTRIBUTE_PREFIX)
        where = f"query:{param[:120]}"
        if not 1 <= len(name) <= 100:
            raise ApiProblem(
                422, "invalid_request", "An attribute filter's name must be 1-100 characters.",
                hint="Write attribute.NAME=VALUE, e.g. attribute.ticket=4711.", path=where,
            )  # fmt: skip
        if len(value) > 1000:
            raise ApiProblem(
                422, "invalid_request", f"{param[:120]}: the value is over 1000 characters.",
                path=where,
            )  # fmt: skip
        if name in found:
            raise ApiProblem(
                422, "invalid_request", f"{param[:120]} is given twice; give each name once.",
                path=where,
            )  # fmt: skip
        found[name] = value
        if len(found) > MAX_ATTRIBUTE_FILTERS:
            raise ApiProblem(
                422, "invalid_request",
                f"At most {MAX_ATTRIBUTE_FILTERS} attribute filters at once.", path=where,
            )  # fmt: skip
    return found


async def key_names(service: ServiceCore, key_ids: set[str]) -> dict[str, str | None]:
    """The names of these keys (None once revoked), each looked up by id: never every key."""
    names: dict[str, str | None] = {}
    for key_id in key_ids:
        record = await service.db(service.store.get_api_key, key_id)
        names[key_id] = record.name if record is not None else None
    return names


async def with_progress(service: ServiceCore, calls: list[CallRecord]) -> list[dict[str, Any]]:
    """The calls with their step, talk time and placing key's name (``expand=progress``)."""
    names = await key_names(service, {call.api_key_id for call in calls})
    found = []
    for call in calls:
        events = await service.db(service.store.events_after, 0, call_id=call.id, limit=500)
        progress = [
            json.loads(e.data).get("progress", {}) for e in events if e.type == "call.progress"
        ]
        found.append(call_view(call_json(call), progress, names.get(call.api_key_id)))
    return found


@router.delete(
    "/v1/calls/{call_id}",
    status_code=202,
    response_model=CallResource,
    responses={**ERRORS, 409: {"model": ErrorBody, "description": "Nothing to hang up"}},
    summary="Hang up a call",
)
async def hang_up(
    call_id: CallId, caller: Caller, service: Service, follower: FollowPart
) -> dict[str, Any]:
    """End a live call for everyone."""
    caller.need("dial")
    call = await service.own_call(caller.key, call_id)
    if call.conversation_id is None or call.outcome is not None:
        raise ApiProblem(
            409,
            "not_connected",
            f"Call {call_id} has no live conversation to hang up (status {call.status}).",
        )
    try:
        await follower.hang_up(caller.key, call)
    except NotFoundError:
        raise ApiProblem(409, "not_connected", "The conversation is already over.") from None
    except GcdialError as exc:
        raise ApiProblem(502, "genesys_error", exc.message, hint=exc.hint) from None
    return call_json(call)


def _epoch(moment: datetime, name: str) -> float:
    if moment.tzinfo is None:
        raise ApiProblem(
            422, "invalid_request", f"{name}: give a time zone (e.g. 2026-01-01T00:00:00Z).",
            path=f"query:{name}",
        )  # fmt: skip
    return moment.timestamp()
