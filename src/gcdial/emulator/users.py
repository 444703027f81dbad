"""Agent endpoints: users, their stations and presences, and search by email."""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gcdial.emulator.auth import require_token, require_user_token
from gcdial.emulator.errorbody import ApiError, bad_request, not_found
from gcdial.emulator.fixtures import UserSpec
from gcdial.emulator.requestbody import read_json
from gcdial.emulator.state import EmulatorState

HOME_DIVISION = {
    "id": "d0d0d0d0-0000-4000-8000-000000000000",
    "name": "Home",
    "selfUri": "/api/v2/authorization/divisions/d0d0d0d0-0000-4000-8000-000000000000",
}
EXPANSIONS = frozenset({"presence", "routingStatus", "station"})
_PRESENCE_LABELS = {"ON_QUEUE": "On Queue"}


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def find_user(state: EmulatorState, user_id: str) -> UserSpec:
    """The user ``user_id`` or a 404 ErrorBody."""
    user = state.users.get(user_id.lower())
    if user is None:
        raise not_found("user", user_id)
    return user


def presence_label(presence: str) -> str:
    """The presence endpoint's casing (``Available``); elsewhere Genesys uses ``AVAILABLE``."""
    return _PRESENCE_LABELS.get(presence, presence.replace("_", " ").title())


def presence_json(state: EmulatorState, user: UserSpec, *, label: bool) -> dict[str, Any]:
    """A ``UserPresence`` body."""
    return {
        "source": "PURECLOUD",
        "presenceDefinition": {
            "id": f"presence-{user.presence.lower()}",
            "systemPresence": presence_label(user.presence) if label else user.presence,
        },
        "message": "",
        "modifiedDate": state.clock.iso(0),
    }


def station_json(user: UserSpec) -> dict[str, Any]:
    """A ``UserStations`` body: empty when the user has no station."""
    if user.station is None:
        return {}
    station = {
        "id": user.station.id,
        "name": user.station.name,
        "type": "inin_webrtc_softphone",
        "associatedUser": {
            "id": str(user.id),
            "name": user.name,
            "version": 1,
            "selfUri": f"/api/v2/users/{user.id}",
        },
    }
    return {
        "associatedStation": station,
        "effectiveStation": station,
        "defaultStation": station,
        "lastAssociatedStation": station,
    }


def user_json(state: EmulatorState, user: UserSpec, expand: set[str]) -> dict[str, Any]:
    """A ``User`` body with the requested expansions (unknown ones are ignored)."""
    body: dict[str, Any] = {
        "id": str(user.id),
        "name": user.name,
        "division": HOME_DIVISION,
        "email": user.email,
        "username": user.email,
        "state": user.state,
        "version": 1,
        "selfUri": f"/api/v2/users/{user.id}",
    }
    if user.title is not None:
        body["title"] = user.title
    if user.department is not None:
        body["department"] = user.department
    if "presence" in expand:
        body["presence"] = presence_json(state, user, label=False)
    if "routingStatus" in expand:
        routing = routing_status_json(state, user)
        body["routingStatus"] = {"status": routing["status"], "startTime": routing["startTime"]}
    if "station" in expand:
        body["station"] = station_json(user)
    return body


async def get_station_by_id(request: Request) -> JSONResponse:
    """``GET /api/v2/stations/{stationId}``: a ``Station``, associated with its agent."""
    state = _state(request)
    require_token(request, state)
    station_id = request.path_params["stationId"]
    for user in state.users.values():
        if user.station is not None and user.station.id == station_id:
            return JSONResponse(
                {
                    "id": user.station.id,
                    "name": user.station.name,
                    "status": "ASSOCIATED",
                    "userId": str(user.id),
                    "webRtcUserId": str(user.id),
                    "type": "inin_webrtc_softphone",
                    "selfUri": f"/api/v2/stations/{user.station.id}",
                }
            )
    raise not_found("station", station_id)


async def get_division(request: Request) -> JSONResponse:
    """``GET /api/v2/authorization/divisions/{divisionId}``: the one division every user is in."""
    require_token(request, _state(request))
    division_id = request.path_params["divisionId"]
    if division_id != HOME_DIVISION["id"]:
        raise not_found("division", division_id)
    return JSONResponse(
        {**HOME_DIVISION, "description": "The home division.", "homeDivision": True}
    )


def _expand(values: list[str]) -> set[str]:
    return {part.strip() for value in values for part in value.split(",") if part.strip()}


async def get_me(request: Request) -> JSONResponse:
    """``GET /api/v2/users/me``: needs a user token."""
    state = _state(request)
    token = require_user_token(request, state)
    assert token.user_id is not None
    user = find_user(state, token.user_id)
    expand = _expand(request.query_params.getlist("expand"))
    return JSONResponse(user_json(state, user, expand))


async def get_user(request: Request) -> JSONResponse:
    """``GET /api/v2/users/{userId}``."""
    state = _state(request)
    require_token(request, state)
    user = find_user(state, request.path_params["userId"])
    expand = _expand(request.query_params.getlist("expand"))
    return JSONResponse(user_json(state, user, expand))


async def get_station(request: Request) -> JSONResponse:
    """``GET /api/v2/users/{userId}/station``."""
    state = _state(request)
    require_token(request, state)
    return JSONResponse(station_json(find_user(state, request.path_params["userId"])))


async def get_presence(request: Request) -> JSONResponse:
    """``GET /api/v2/users/{userId}/presences/purecloud``."""
    state = _state(request)
    require_token(request, state)
    user = find_user(state, request.path_params["userId"])
    return JSONResponse(presence_json(state, user, label=True))


async def patch_presence(request: Request) -> JSONResponse:
    """``PATCH /api/v2/users/{userId}/presences/purecloud``: body ``{"presenceDefinition":
    {"id": ...}}`` (the emulator's ids are ``presence-<name>``) or ``{"systemPresence": ...}``."""
    state = _state(request)
    require_token(request, state)
    user = find_user(state, request.path_params["userId"])
    body = await read_json(request)
    definition = body.get("presenceDefinition") if isinstance(body, dict) else None
    if not isinstance(definition, dict):
        raise bad_request(
            "'presenceDefinition' must be an object with an 'id'.", field="presenceDefinition"
        )
    raw = definition.get("systemPresence") or str(definition.get("id") or "")
    name = raw.removeprefix("presence-").replace(" ", "_").upper()
    if not name or not name.replace("_", "").isalpha():
        raise bad_request(f"Unknown presence definition {raw!r}.", field="presenceDefinition.id")
    user = state.change_user(user, "presence", presence=name)
    return JSONResponse(presence_json(state, user, label=True))


def routing_status_json(state: EmulatorState, user: UserSpec) -> dict[str, Any]:
    """A ``RoutingStatus`` body."""
    status = user.routing_status or ("IDLE" if user.presence == "ON_QUEUE" else "OFF_QUEUE")
    return {"userId": str(user.id), "status": status, "startTime": state.clock.iso(0)}


async def put_routing_status(request: Request) -> JSONResponse:
    """``PUT /api/v2/users/{userId}/routingstatus``: body ``{"status": "OFF_QUEUE"}``."""
    state = _state(request)
    require_token(request, state)
    user = find_user(state, request.path_params["userId"])
    body = await read_json(request)
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, str) or not status.replace("_", "").isalpha():
        raise bad_request("'status' must be a routing status, e.g. OFF_QUEUE.", field="status")
    user = state.change_user(user, "routingStatus", routing_status=status.upper())
    return JSONResponse(routing_status_json(state, user))


async def search(request: Request) -> JSONResponse:
    """``POST /api/v2/users/search``: EXACT match on email, id or name."""
    state = _state(request)
    require_token(request, state)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("The search body must be a JSON object with a 'query' list.")
    queries = body.get("query")
    if not isinstance(queries, list) or not queries:
        raise bad_request("'query' must be a non-empty list of criteria.", field="query")
    expand_raw = body.get("expand", [])
    if not isinstance(expand_raw, list) or not all(isinstance(e, str) for e in expand_raw):
        raise bad_request("'expand' must be a list of strings.", field="expand")
    matches = list(state.users.values())
    for index, query in enumerate(queries):
        matches = [u for u in matches if _matches(u, query, f"query[{index}]")]
    results = [user_json(state, u, _expand(expand_raw)) for u in matches]
    return JSONResponse(
        {
            "total": len(results),
            "pageSize": 25,
            "pageNumber": 1,
            "pageCount": 1,
            "types": ["users"],
            "results": results,
        }
    )


def _matches(user: UserSpec, query: object, where: str) -> bool:
    if not isinstance(query, dict):
        raise bad_request(f"{where} must be an object.", field=where)
    if query.get("type") != "EXACT":
        raise ApiError(
            400,
            "bad.request",
            f"{where}.type: the emulator supports only EXACT searches.",
            details=[{"errorCode": "unsupported.search.type", "fieldName": f"{where}.type"}],
        )
    fields = query.get("fields")
    values = query.get("values", [query.get("value")] if "value" in query else None)
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise bad_request(
            f"{where}.fields must be a non-empty list of strings.", field=f"{where}.fields"
        )
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise bad_request(f"{where} needs 'value' or 'values' (strings).", field=f"{where}.value")
    wanted = {v.lower() for v in values}
    known = {"email": user.email, "id": str(user.id), "name": user.name, "username": user.email}
    for field_name in fields:
        if field_name not in known:
            raise bad_request(
                f"{where}.fields: unsupported field {field_name!r} (use email, id, name).",
                field=f"{where}.fields",
            )
    return any(known[f].lower() in wanted for f in fields)
