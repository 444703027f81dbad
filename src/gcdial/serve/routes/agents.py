"""``/v1/agents``: are the agents ready to be dialed for (the page's agents panel too).

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from gcdial.serve.models import AgentsPage
from gcdial.serve.routes.deps import ERRORS, Caller, Service

__all__ = ["MAX_AGENTS", "router"]

MAX_AGENTS = 50

router = APIRouter(tags=["agents"])


@router.get("/v1/agents", response_model=AgentsPage, responses=ERRORS)
async def agents(
    caller: Caller,
    service: Service,
    agent: Annotated[list[str] | None, Query(max_length=MAX_AGENTS)] = None,
) -> dict[str, Any]:
    """Readiness of the given agents, else the key's agents, else those of recent calls;
    ``presence`` says whether their changes arrive live on the event stream or must be polled."""
    caller.need("watch")
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
    }
