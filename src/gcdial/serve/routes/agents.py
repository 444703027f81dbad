"""``/v1/agents``: are the agents ready to be dialed for (the page's agents panel too); and
``/v1/queues``, ``/v1/groups``: the queues and groups a supervisor may choose to watch, whose
members ``?queue=`` and ``?group=`` list.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from gcdial.errors import GcdialError, NotFoundError
from gcdial.queues import Group, Queue, QueueMember
from gcdial.serve.models import AgentsPage, GroupsPage, QueuesPage
from gcdial.serve.principal import Principal
from gcdial.serve.problems import ApiProblem
from gcdial.serve.queues import member_allowed, watch_queue_of
from gcdial.serve.routes.deps import Caller, Service, errors_with
from gcdial.serve.service_core import ServiceCore

__all__ = ["MAX_AGENTS", "router"]

MAX_AGENTS = 50
_GENESYS_FAILED = errors_with(e502="Genesys failed")

router = APIRouter(tags=["agents"])


def _genesys_failed(exc: GcdialError) -> ApiProblem:
    return ApiProblem(502, "genesys_error", exc.message, hint=exc.hint)


def _not_found(kind: str, ref: str, path: str) -> ApiProblem:
    return ApiProblem(
        404,
        f"{kind}_not_found",
        f"No Genesys {kind} has the id or name {ref!r}.",
        hint=f"GET /v1/{kind}s lists the {kind}s you may watch.",
        path=path,
    )


@router.get("/v1/queues", response_model=QueuesPage, responses=_GENESYS_FAILED)
async def queues(caller: Caller, service: Service) -> dict[str, Any]:
    """The organisation's queues, by name, for a supervisor to choose whose members to watch
    (``GET /v1/agents?queue=ID``). Read from Genesys at most once a minute per replica."""
    caller.need("watch")
    try:
        found = await service.queues.queues()
    except GcdialError as exc:
        raise _genesys_failed(exc) from None
    return {"queues": [service.queues.queue_json(q) for q in found]}


@router.get("/v1/groups", response_model=GroupsPage, responses=_GENESYS_FAILED)
async def groups(caller: Caller, service: Service) -> dict[str, Any]:
    """The organisation's groups of users, by name (``GET /v1/agents?group=ID``). Read from
    Genesys at most once a minute per replica."""
    caller.need("watch")
    try:
        found = await service.queues.groups()
    except GcdialError as exc:
        raise _genesys_failed(exc) from None
    return {"groups": [service.queues.queue_json(g) for g in found]}


async def _members_of(
    caller: Principal, service: ServiceCore, kind: str, ref: str, path: str
) -> tuple[Queue | Group, list[QueueMember], int]:
    """The queue or group, its members the caller may see (at most ``MAX_AGENTS``) and how
    many more there are."""
    directory = service.queues
    chosen: Queue | Group | None
    members: list[QueueMember]
    try:
        if kind == "queue":
            chosen = await directory.find(ref)
            members = await directory.members(chosen) if chosen is not None else []
        else:
            chosen = await directory.find_group(ref)
            members = await directory.group_members(chosen) if chosen is not None else []
    except NotFoundError:
        raise _not_found(kind, ref, path) from None
    except GcdialError as exc:
        raise _genesys_failed(exc) from None
    if chosen is None:
        raise _not_found(kind, ref, path)
    allowed = [m for m in members if member_allowed(caller.key, m)]
    return chosen, allowed[:MAX_AGENTS], max(0, len(allowed) - MAX_AGENTS)


@router.get("/v1/agents", response_model=AgentsPage, responses=_GENESYS_FAILED)
async def agents(
    caller: Caller,
    service: Service,
    agent: Annotated[list[str] | None, Query(max_length=MAX_AGENTS)] = None,
    queue: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="A queue's id or name (GET /v1/queues): list its members. A key "
            "limited to agents sees only those of them.",
        ),
    ] = None,
    group: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="A group's id or name (GET /v1/groups): list its members, as for queue.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Readiness of the given agents, else of the members of the queue or group (``queue``,
    ``group``, else the queue the key was made to watch), else of the key's agents, else of those
    of recent calls; ``presence`` says whether their changes arrive live on the event stream or
    must be polled."""
    caller.need("watch")
    if sum(bool(x) for x in (agent, queue is not None, group is not None)) > 1:
        raise ApiProblem(
            400,
            "agent_or_queue",
            "Give only one of agent, queue and group.",
            hint="GET /v1/agents?queue=ID (or ?group=ID) lists the members; ?agent= names agents.",
            path="query:group" if group is not None else "query:queue",
        )
    chosen: Queue | Group | None = None
    kind = "group" if group is not None else "queue"
    more = 0
    ref = group if group is not None else queue
    path = f"query:{kind}"
    if ref is None and not agent:
        ref, path = watch_queue_of(caller.key), "key:watchQueue"
    known: dict[str, QueueMember] = {}
    if ref is not None:
        chosen, members, more = await _members_of(caller, service, kind, ref, path)
        # An agent by email, else by user id; the member's name when the check finds none.
        known = {m.email or m.id: m for m in members}
        wanted = list(known)
    else:
        wanted = list(agent or caller.key.agents)
        if not wanted:
            recent = await service.db(
                service.store.list_calls, api_key_id=caller.owner_filter, limit=200
            )
            wanted = list(dict.fromkeys(call.agent for call in recent))[:MAX_AGENTS]
        for name in wanted:
            caller.need_agent(name, path="query:agent")
    states = await asyncio.gather(*(service.agent_state(name) for name in wanted))
    for state in states:
        member = known.get(state.agent)
        if member is not None:
            state.name = state.name or member.name
            state.id = state.id or member.id
    # Their presence changes are agent.updated events on /v1/events from now on.
    await service.presence.watch({s.id: s.agent for s in states if s.id})
    shown = service.queues.queue_json(chosen) if chosen is not None else None
    return {
        "agents": [state.model_dump() for state in states],
        "presence": {"live": service.presence.live, "pollSeconds": service.config.presence_poll_s},
        "queue": shown if kind == "queue" else None,
        "group": shown if kind == "group" else None,
        "membersNotShown": more,
    }
