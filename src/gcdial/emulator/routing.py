"""Routing endpoints: the organisation's queues and wrap-up codes, a queue's assigned codes and
its members.

Lists are the official paged entity listings (``QueueEntityListing``,
``WrapupCodeEntityListing``): ``entities``, ``pageSize``, ``pageNumber``, ``total``,
``pageCount`` and the page URIs. A queue's members are a ``QueueMemberEntityListing``, which has
no ``total``, ``pageCount`` or ``lastUri``: a reader follows ``nextUri`` to the end.
"""

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from gcdial.emulator.auth import require_token
from gcdial.emulator.errorbody import bad_request, not_found
from gcdial.emulator.fixtures import QueueSpec, UserSpec, WrapupCodeSpec
from gcdial.emulator.state import EmulatorState
from gcdial.emulator.users import HOME_DIVISION, routing_status_json, user_json

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 500
MAX_MEMBERS_PAGE_SIZE = 100
QUEUES_PATH = "/api/v2/routing/queues"
CODES_PATH = "/api/v2/routing/wrapupcodes"
_ACW_PROMPTS = {
    "mandatory": "MANDATORY",
    "optional": "OPTIONAL",
    "timeout": "MANDATORY_TIMEOUT",
    "forcedTimeout": "MANDATORY_FORCED_TIMEOUT",
    "agentRequested": "AGENT_REQUESTED",
}


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _positive(request: Request, name: str, default: int, limit: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (limit is not None and int(raw) > limit):
        bound = f" and at most {limit}" if limit is not None else ""
        raise bad_request(f"{name} must be a whole number of at least 1{bound}.", field=name)
    return int(raw)


def _name_matches(request: Request, name: str) -> bool:
    """The ``name`` query: exact, or a prefix with trailing ``*`` (case-insensitive)."""
    wanted = request.query_params.get("name")
    if not wanted:
        return True
    if wanted.endswith("*"):
        return name.lower().startswith(wanted.rstrip("*").lower())
    return name.lower() == wanted.lower()


def listing(
    request: Request,
    path: str,
    entities: Sequence[dict[str, Any]],
    max_size: int = MAX_PAGE_SIZE,
) -> dict[str, Any]:
    """One page of ``entities`` as an entity listing, paged by the request's query."""
    size = _positive(request, "pageSize", DEFAULT_PAGE_SIZE, max_size)
    number = _positive(request, "pageNumber", 1, None)
    total = len(entities)
    pages = max(1, math.ceil(total / size))

    def uri(page: int) -> str:
        return f"{path}?{urlencode({'pageSize': size, 'pageNumber': page})}"

    body: dict[str, Any] = {
        "entities": list(entities[(number - 1) * size : number * size]),
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": pages,
        "firstUri": uri(1),
        "lastUri": uri(pages),
        "selfUri": uri(number),
    }
    if number < pages:
        body["nextUri"] = uri(number + 1)
    if 1 < number <= pages:
        body["previousUri"] = uri(number - 1)
    return body


def code_json(code: WrapupCodeSpec) -> dict[str, Any]:
    """A ``WrapupCode``."""
    return {
        "id": str(code.id),
        "name": code.name,
        "division": HOME_DIVISION,
        "selfUri": f"{CODES_PATH}/{code.id}",
    }


def queue_json(state: EmulatorState, queue: QueueSpec) -> dict[str, Any]:
    """A ``Queue``, with the after-call-work settings the emulator applies to its calls."""
    return {
        "id": str(queue.id),
        "name": queue.name,
        "division": HOME_DIVISION,
        "acwSettings": {
            "wrapupPrompt": _ACW_PROMPTS[state.config.wrapup_prompt],
            "timeoutMs": round(state.config.wrapup_timeout_s * 1000),
        },
        "selfUri": f"{QUEUES_PATH}/{queue.id}",
    }


def _queue(state: EmulatorState, queue_id: str) -> QueueSpec:
    for queue in state.fixture.queues:
        if str(queue.id) == queue_id.lower():
            return queue
    raise not_found("queue", queue_id)


async def list_queues(request: Request) -> JSONResponse:
    """``GET /api/v2/routing/queues`` (``pageSize``, ``pageNumber``, ``name``)."""
    state = _state(request)
    require_token(request, state)
    queues = [queue_json(state, q) for q in state.fixture.queues if _name_matches(request, q.name)]
    return JSONResponse(listing(request, QUEUES_PATH, queues))


async def get_queue(request: Request) -> JSONResponse:
    """``GET /api/v2/routing/queues/{queueId}``."""
    state = _state(request)
    require_token(request, state)
    return JSONResponse(queue_json(state, _queue(state, request.path_params["queueId"])))


async def queue_codes(request: Request) -> JSONResponse:
    """``GET /api/v2/routing/queues/{queueId}/wrapupcodes``: the codes assigned to the queue."""
    state = _state(request)
    require_token(request, state)
    queue = _queue(state, request.path_params["queueId"])
    codes = [
        code_json(c) for c in state.fixture.queue_codes(queue) if _name_matches(request, c.name)
    ]
    return JSONResponse(listing(request, f"{QUEUES_PATH}/{queue.id}/wrapupcodes", codes))


def member_json(state: EmulatorState, user: UserSpec) -> dict[str, Any]:
    """A ``QueueMember``: the user (as they are now), joined, with their routing status."""
    current = state.users.get(str(user.id), user)
    return {
        "id": str(current.id),
        "name": current.name,
        "user": user_json(state, current, set()),
        "ringNumber": 1,
        "joined": True,
        "memberBy": "user",
        "routingStatus": routing_status_json(state, current),
    }


async def queue_members(request: Request) -> JSONResponse:
    """``GET /api/v2/routing/queues/{queueId}/members`` (``pageSize`` up to 100, ``pageNumber``,
    ``name``): the queue's members from the fixture (every user when it names none)."""
    state = _state(request)
    require_token(request, state)
    queue = _queue(state, request.path_params["queueId"])
    members = [
        member_json(state, user)
        for user in state.fixture.queue_members(queue)
        if _name_matches(request, user.name)
    ]
    path = f"{QUEUES_PATH}/{queue.id}/members"
    body = listing(request, path, members, MAX_MEMBERS_PAGE_SIZE)
    for absent in ("total", "pageCount", "lastUri"):  # not in QueueMemberEntityListing
        del body[absent]
    return JSONResponse(body)


async def list_codes(request: Request) -> JSONResponse:
    """``GET /api/v2/routing/wrapupcodes`` (``pageSize``, ``pageNumber``, ``name``)."""
    state = _state(request)
    require_token(request, state)
    codes = [code_json(c) for c in state.fixture.wrapup_codes if _name_matches(request, c.name)]
    return JSONResponse(listing(request, CODES_PATH, codes))


async def get_code(request: Request) -> JSONResponse:
    """``GET /api/v2/routing/wrapupcodes/{codeId}``."""
    state = _state(request)
    require_token(request, state)
    code_id = request.path_params["codeId"]
    for code in state.fixture.wrapup_codes:
        if str(code.id) == code_id.lower():
            return JSONResponse(code_json(code))
    raise not_found("wrapupcode", code_id)
