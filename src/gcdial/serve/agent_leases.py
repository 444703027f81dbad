"""The service's side of agent exclusivity: its store's ``live_agents`` rows, for the gate.

One row per agent with a live call, claimed in the same transaction as a dial's idempotency key
(``POST /v1/calls``, the page) or before a campaign's attempt is journaled (:mod:`gcdial.gate`),
released when the call ends or is settled not placed. A row carries its replica's id and an
expiry that the replica renews with its heartbeat (the recovery loop), so a dead replica's rows
expire after ``stale_claim_s``, as its idempotency claims do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcdial.gate import ExclusiveGate, ReadinessGate

if TYPE_CHECKING:
    from gcdial.serve.service_core import ServiceCore

__all__ = ["StoreDnc", "StoreLeases", "campaign_gate"]


class StoreLeases:
    """:class:`gcdial.gate.AgentLeases` over the service's store."""

    def __init__(self, service: ServiceCore) -> None:
        self._service = service

    async def claim(self, agent_id: str, call_id: str) -> str | None:
        """None when granted; else the live call holding the agent (raises StoreError)."""
        service = self._service
        return await service.db(
            service.store.claim_agent,
            agent_id,
            call_id,
            owner=service.config.instance_id,
            now=service.clock(),
            ttl_s=service.config.stale_claim_s,
        )

    async def rebind(self, agent_id: str, old_call_id: str, new_call_id: str) -> None:
        """The holder got its final call id."""
        await self._service.db(self._service.store.rebind_agent, old_call_id, new_call_id)

    async def release(self, agent_id: str, call_id: str) -> None:
        """Free the agent if ``call_id`` holds it."""
        await self._service.db(self._service.store.release_agent, call_id)


class StoreDnc:
    """:class:`gcdial.gate.DoNotCall` over the service's store."""

    def __init__(self, service: ServiceCore) -> None:
        self._service = service

    async def reason(self, phone_e164: str) -> str | None:
        """Why the number is listed ("" without a reason), None when it is not (raises
        StoreError when the store cannot answer)."""
        found = await self._service.db(self._service.store.dnc_listed, [phone_e164])
        entry = found.get(phone_e164)
        return None if entry is None else entry.reason or ""


def campaign_gate(service: ServiceCore, campaign_id: str) -> ExclusiveGate:
    """The gate of a campaign the service runs: the store's do-not-call list, readiness as
    ``GET /v1/agents`` reads it (the shared check, forgotten at each presence change), then the
    agent's row in the store."""
    from gcdial.serve.campaign_calls import campaign_call_id

    return ExclusiveGate(
        ReadinessGate(service.agent_checks.get, ttl_s=0.0),
        StoreLeases(service),
        lambda attempt_id: campaign_call_id(campaign_id, attempt_id),
        StoreDnc(service),
    )
