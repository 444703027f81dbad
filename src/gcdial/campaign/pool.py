"""Check a campaign's agents up front: who can take calls, who is left out and why.

An agent that is not ready by :mod:`gcdial.readiness` (does not exist, inactive, no phone station,
or a presence or routing status the policy refuses) is excluded with a warning and its reason,
the same as ``gcdial agent show`` gives (a call for them would fail, never ring, or go unanswered).
An agent who stops being ready during the run is skipped at dispatch and tried again later.
When nobody is left the campaign cannot start.
Other failures (credentials, network) are not the agent's fault and stop the run as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from gcdial.campaign.pacing import PoolAgent
from gcdial.errors import AgentNotReadyError, NoUsableAgentError

if TYPE_CHECKING:
    from gcdial.client import AsyncClient

__all__ = ["Exclusion", "NoUsableAgentError", "PoolCheck", "check_pool"]

CHECK_CONCURRENCY: Final = 8


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An agent left out of the pool: as given, the reason code, and the full explanation."""

    agent: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class PoolCheck:
    """The agents that can take calls (in the order given) and those excluded."""

    agents: tuple[PoolAgent, ...]
    excluded: tuple[Exclusion, ...]
    notes: tuple[str, ...] = ()


async def check_pool(
    client: AsyncClient, agents: Sequence[str], *, concurrency: int = CHECK_CONCURRENCY
) -> PoolCheck:
    """Look up and check every agent (a few at a time); raise NoUsableAgentError if none is fit.

    The same person given twice (by email and by id) is kept once.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(agent: str) -> PoolAgent | Exclusion:
        async with gate:
            try:
                ready = await client.agents.check(agent)
            except AgentNotReadyError as exc:
                return Exclusion(agent, exc.reason, exc.message)
        if not ready.ready:  # the one verdict agent show and GET /v1/agents give as well
            refusal = ready.error()
            return Exclusion(agent, refusal.reason, refusal.message)
        user = ready.agent
        label = user.email or agent
        return PoolAgent(id=user.id, label=label)

    results = await asyncio.gather(*(one(a) for a in agents))
    fit: dict[str, PoolAgent] = {}
    excluded: list[Exclusion] = []
    notes: list[str] = []
    for result in results:
        if isinstance(result, Exclusion):
            excluded.append(result)
        elif result.id in fit:
            notes.append(f"{result} is listed twice; kept once")
        else:
            fit[result.id] = result
    if not fit:
        raise NoUsableAgentError(excluded)
    return PoolCheck(tuple(fit.values()), tuple(excluded), tuple(notes))
