"""``/v1/agents``: are the agents ready to be dialed for (the page's agents panel too); and
``/v1/queues``: the queues a supervisor may choose to watch, whose members ``?queue=`` lists.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from gcdial.errors import GcdialError, NotFoundError
from gcdial.queues import Queue
from gcdial.serve.models import AgentsPage, QueuesPage
from gcdial.serve.principal import Principal
from gcdial.serve.problems import ApiProblem
from gcdial.serve.queues import member_allowed, watch_queue_of
from gcdial.serve.routes.deps import Caller, Service, errors_with
from gcdial.serve.service import DialService

__all__ = ["MAX_AGENTS", "router"]

MAX_AGENTS = 50

router = APIRouter(tags=["agents"])


def _genesys_failed(exc: GcdialError) -> ApiProblem:
    return ApiProblem(502, "genesys_error", exc.message, hint=exc.hint)


def _no_queue(ref: str, path: str) -> ApiProblem:
    return ApiProblem(
        404,
        "queue_not_found",
        f"No Genesys queue has the id or name {ref!r}.",
        hint="GET /v1/queues lists the queues you may watch.",
        path=path,
    )


@router.get("/v1/queues", response_model=QueuesPage, responses=errors_with(e502="Genesys failed"))
async def queues(caller: Caller, service: Service) -> dict[str, Any]:
    """The organisation's queues, by name, for a supervisor to choose whose members to watch
    (``GET /v1/agents?queue=ID``). Read from Genesys at most once a minute per replica."""
    caller.need("watch")
    try:
        found = await service.queues.queues()
    except GcdialError as exc:
        raise _genesys_failed(exc) from None
    return {"queues": [service.queues.queue_json(q) for q in found]}


async def _queue_members(
    caller: Principal, service: DialService, ref: str, path: str
) -> tuple[Queue, list[str], int]:
    """The queue, the names of its members the caller may see (at most ``MAX_AGENTS``: the
    email, else the user id) and how many more there are."""
    try:
        queue = await service.queues.find(ref)
        if queue is None:
            raise _no_queue(ref, path)
        members = await service.queues.members(queue)
    except NotFoundError:
        raise _no_queue(ref, path) from None
    except GcdialError as exc:
        raise _genesys_failed(exc) from None
    names = [m.email or m.id for m in members if member_allowed(caller.key, m)]
    return queue, names[:MAX_AGENTS], max(0, len(names) - MAX_AGENTS)


@router.get("/v1/agents", response_model=AgentsPage, responses=errors_with(e502="Genesys failed"))
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
) -> dict[str, Any]:
    """Readiness of the given agents, else of the queue's members (``queue``, else the queue
    the key was made to watch), else of the key's agents, else of those of recent calls;
    ``presence`` says whether their changes arrive live on the event stream or must be polled."""
    caller.need("watch")
    if agent and queue is not None:
        raise ApiProblem(
            400,
            "agent_or_queue",
            "Give agent or queue, not both.",
            hint="GET /v1/agents?queue=ID lists a queue's members; ?agent= names agents.",
            path="query:queue",
        )
    chosen: Queue | None = None
    more = 0
    ref = queue if queue is not None else (None if agent else watch_queue_of(caller.key))
    if ref is not None:
        path = "query:queue" if queue is not None else "key:watchQueue"
        chosen, wanted, more = await _queue_members(caller, service, ref, path)
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
    # Their presence changes are agent.updated events on /v1/events from now on.
    await service.presence.watch({s.id: s.agent for s in states if s.id})
    return {
        "agents": [state.model_dump() for state in states],
        "presence": {"live": service.presence.live, "pollSeconds": service.config.presence_poll_s},
        "queue": service.queues.queue_json(chosen) if chosen is not None else None,
        "membersNotShown": more,
    }
