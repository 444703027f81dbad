"""Groups of users: ``GET /api/v2/groups`` (``GroupEntityListing``), one ``Group``, and a group's
members (``GET /api/v2/groups/{groupId}/members``, a ``UserEntityListing``), from the fixture."""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gcdial.emulator.auth import require_token
from gcdial.emulator.errorbody import not_found
from gcdial.emulator.fixtures import GroupSpec
from gcdial.emulator.routing import _name_matches, listing
from gcdial.emulator.state import EmulatorState
from gcdial.emulator.users import user_json

GROUPS_PATH = "/api/v2/groups"


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def group_json(state: EmulatorState, group: GroupSpec) -> dict[str, Any]:
    """A ``Group``: an official, public group whose membership rules are not shown."""
    return {
        "id": str(group.id),
        "name": group.name,
        "memberCount": len(state.fixture.group_members(group)),
        "state": "active",
        "version": 1,
        "type": "official",
        "rulesVisible": False,
        "visibility": "public",
        "selfUri": f"{GROUPS_PATH}/{group.id}",
    }


def _group(state: EmulatorState, group_id: str) -> GroupSpec:
    for group in state.fixture.groups:
        if str(group.id) == group_id.lower():
            return group
    raise not_found("group", group_id)


async def list_groups(request: Request) -> JSONResponse:
    """``GET /api/v2/groups`` (``pageSize``, ``pageNumber``)."""
    state = _state(request)
    require_token(request, state)
    groups = [group_json(state, g) for g in state.fixture.groups]
    return JSONResponse(listing(request, GROUPS_PATH, groups))


async def get_group(request: Request) -> JSONResponse:
    """``GET /api/v2/groups/{groupId}``."""
    state = _state(request)
    require_token(request, state)
    return JSONResponse(group_json(state, _group(state, request.path_params["groupId"])))


async def group_members(request: Request) -> JSONResponse:
    """``GET /api/v2/groups/{groupId}/members`` (``pageSize``, ``pageNumber``): the users, as
    they are now."""
    state = _state(request)
    require_token(request, state)
    group = _group(state, request.path_params["groupId"])
    users = [
        user_json(state, state.users.get(str(u.id), u), set())
        for u in state.fixture.group_members(group)
        if _name_matches(request, u.name)
    ]
    return JSONResponse(listing(request, f"{GROUPS_PATH}/{group.id}/members", users))


def routes() -> list[Route]:
    """The group routes (named "users" for faults and rate limits: directory reads)."""
    return [
        Route(GROUPS_PATH, list_groups, methods=["GET"], name="users"),
        Route(GROUPS_PATH + "/{groupId}", get_group, methods=["GET"], name="users"),
        Route(GROUPS_PATH + "/{groupId}/members", group_members, methods=["GET"], name="users"),
    ]
