"""May this dial go now? The one question every dial asks before a create-call leaves.

The gate decides three things:

1. **Readiness** (:mod:`gcdial.readiness`): the agent is active, has a station, and a presence
   and routing status the policy accepts. Asked fresh at dispatch (a short shared cache spares
   the rate budget), because an agent who was ready when the campaign started may be busy now.
2. **Exclusivity**: the agent has no other live call. Inside one campaign run the dispatcher
   already gives an agent one call at a time; across the service (API, page, every campaign,
   every replica) the service's store holds one row per agent with a live call, claimed here in
   one transaction and released when the call ends. If the store cannot grant it, the dial is
   refused, never sent without it.

3. **Compliance** (:func:`rule_breaches`): the calling window in the contact's time zone(s) and
   the do-not-call list, decided by the campaign's own rules (:mod:`gcdial.campaign.rules`, the
   same code for a campaign and a single call). A single call of the service asks it before
   its idempotency key is claimed; a campaign the service runs asks the service's list before
   each dial (``DoNotCall``), its own window and file being applied when contacts are queued.
   A number on the list refuses the contact for good (``do_not_call``), not the agent; a list
   that cannot be read refuses the dial (``store_unavailable``), never sends it unchecked.

A campaign's refused dial (but a listed number) is not a failed contact: the contact goes back
to the queue, the agent rests a while (``retry_after_s``) and is asked again.

The campaign runner, the service and the CLI are callers of the gate, not owners of these rules.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol
from zoneinfo import ZoneInfo

from gcdial.errors import AgentNotReadyError, GcdialError

if TYPE_CHECKING:
    from gcdial.agents import AgentReadiness
    from gcdial.campaign.rules import Rules

__all__ = [
    "DEFAULT_REST_S",
    "READINESS_TTL_S",
    "AgentGate",
    "AgentLeases",
    "CallGate",
    "DoNotCall",
    "ExclusiveGate",
    "ReadinessGate",
    "Refusal",
    "RuleBreach",
    "SingleCallGate",
    "local_times",
    "readiness_refusal",
    "rule_breaches",
]

logger = logging.getLogger("gcdial.gate")

DEFAULT_REST_S: Final = 5.0
"""How long a refused agent rests before being asked again."""
READINESS_TTL_S: Final = 3.0
"""How long one readiness check of an agent answers for (real seconds): at most one Genesys
read per agent per this period, however fast the campaign dials."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a dial may not go now: ``reason`` is a readiness reason (``presence``,
    ``no_station``...) or ``agent_busy`` / ``store_unavailable``; ``live_call`` names the call
    holding a busy agent."""

    reason: str
    message: str
    live_call: str | None = None
    retry_after_s: float = DEFAULT_REST_S
    local_time: str | None = None
    """For a calling rule: the contact's local time(s) (``Mon 04:30 America/New_York``)."""


@dataclass(frozen=True, slots=True)
class RuleBreach:
    """A calling rule that forbids a dial now: ``rule`` is ``do_not_call``, ``calling_window``,
    ``unknown_time_zone`` or ``no_calling_hours``; ``local_time`` the contact's local time(s)
    (``Mon 04:30 America/New_York``), None when no time zone is known."""

    rule: str
    message: str
    local_time: str | None


def local_times(zones: tuple[str, ...], now: datetime) -> str | None:
    """The contact's wall-clock time in each of its zones, e.g. ``Mon 04:30 America/New_York``."""
    if not zones:
        return None
    return ", ".join(f"{now.astimezone(ZoneInfo(zone)):%a %H:%M} {zone}" for zone in zones[:3])


def rule_breaches(
    rules: Rules,
    phone_e164: str,
    now: datetime,
    *,
    listed: str | None = None,
    time_zone: str | None = None,
) -> tuple[RuleBreach, ...]:
    """Every calling rule a dial to ``phone_e164`` breaks at ``now`` (empty: it may go).

    ``listed`` is why the number is on the do-not-call list (any text; None when it is not):
    the list lives in the caller's store. The window is the campaign rules' own check, in the
    contact's ``time_zone`` when known, else in the number's zone(s)."""
    # Here, not at the top: a single call with nothing to check never loads the rules' modules.
    from gcdial.campaign.contact import Contact
    from gcdial.campaign.rules import Action, DoNotCallList

    contact = Contact(line=0, phone_e164=phone_e164, tz=time_zone)
    zones = rules.zones_for(contact)
    local = local_times(zones, now)
    found: list[RuleBreach] = []
    if listed is not None or phone_e164 in rules.dnc:
        why = f" ({listed})" if listed else ""
        found.append(
            RuleBreach("do_not_call", f"{phone_e164} is on the do-not-call list{why}", local)
        )
    # The window is asked apart from the rules' own list, which would answer first and alone.
    window_rules = replace(rules, dnc=DoNotCallList()) if len(rules.dnc) else rules
    decision = window_rules.check(contact, now)
    if decision.action is Action.DEFER:
        found.append(RuleBreach("calling_window", f"{phone_e164}: {decision.reason}", local))
    elif decision.action is Action.SKIP:
        rule = decision.outcome or "calling_window"
        found.append(RuleBreach(rule, f"{phone_e164}: {decision.reason}", local))
    return tuple(found)


class DoNotCall(Protocol):
    """The do-not-call list of the caller's store."""

    async def reason(self, phone_e164: str) -> str | None:
        """Why the number is listed (``""`` when no reason was given), None when it is not.
        Raises when the store cannot answer."""
        ...


class AgentGate(Protocol):
    """What the campaign runner asks before each dial (``holder`` is the attempt's tag)."""

    async def admit(self, agent_id: str, holder: str, phone: str = "") -> Refusal | None:
        """None: the dial to ``phone`` (E.164) may go, and the agent is held for ``holder``
        until :meth:`release`."""
        ...

    async def bind(self, holder: str, attempt_id: int) -> None:
        """The dial was journaled as ``attempt_id`` (so a busy answer can name its call)."""
        ...

    async def hold(self, agent_id: str, holder: str, attempt_id: int) -> str | None:
        """An attempt an earlier run left (a call found live, or one whose outcome is being
        resolved): hold its agent for ``holder`` under the attempt's call until :meth:`release`,
        without asking readiness or the rules (the call exists, or may). None when held; else
        the other live call that holds the agent."""
        ...

    async def release(self, holder: str) -> None:
        """The call ended, or was never sent: the agent is free."""
        ...


def readiness_refusal(found: AgentReadiness | AgentNotReadyError) -> Refusal | None:
    """The gate's answer for a readiness check's result (None when ready)."""
    if isinstance(found, AgentNotReadyError):
        return Refusal(found.reason, found.message)
    if not found.ready:
        error = found.error()
        return Refusal(error.reason, error.message)
    return None


class ReadinessGate:
    """The gate over readiness alone (a CLI campaign: its own process is the only dialer, and
    the dispatcher keeps each agent to one call). ``then`` adds exclusivity (the service)."""

    def __init__(
        self,
        check: Callable[[str], Awaitable[AgentReadiness]],
        *,
        ttl_s: float = READINESS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, AgentReadiness | AgentNotReadyError]] = {}

    async def ready(self, agent_id: str) -> Refusal | None:
        """The agent's readiness, at most ``ttl_s`` old; a failed check (network) refuses."""
        now = self._clock()
        cached = self._cache.get(agent_id)
        if cached is None or now - cached[0] >= self._ttl_s:
            found: AgentReadiness | AgentNotReadyError
            try:
                found = await self._check(agent_id)
            except AgentNotReadyError as exc:
                found = exc
            except GcdialError as exc:  # not cached: the next dispatch asks again
                return Refusal("unchecked", f"the agent's readiness could not be read: {exc}")
            self._cache[agent_id] = (now, found)
            cached = (now, found)
        return readiness_refusal(cached[1])

    async def admit(self, agent_id: str, holder: str, phone: str = "") -> Refusal | None:
        """Ready: go (nothing to hold beyond the dispatcher's own one-call-per-agent rule; the
        campaign's own rules checked ``phone`` when it was queued)."""
        return await self.ready(agent_id)

    async def bind(self, holder: str, attempt_id: int) -> None:
        """Nothing to record."""

    async def hold(self, agent_id: str, holder: str, attempt_id: int) -> str | None:
        """Nothing to hold (the dispatcher keeps the agent)."""
        return None

    async def release(self, holder: str) -> None:
        """Nothing to free."""


class AgentLeases(Protocol):
    """The store's rows of agents with a live call (the service's ``live_agents``)."""

    async def claim(self, agent_id: str, call_id: str) -> str | None:
        """None when granted; else the live call holding the agent. Raises when the store fails."""
        ...

    async def rebind(self, agent_id: str, old_call_id: str, new_call_id: str) -> None:
        """The holder got its final call id."""
        ...

    async def release(self, agent_id: str, call_id: str) -> None:
        """Free the agent if ``call_id`` holds it."""
        ...


class ExclusiveGate:
    """The store's do-not-call list (``dnc``, for a campaign run by the service), readiness,
    then the agent's row in the store (the service's, or the CLI runs' shared file).

    ``call_id(attempt_id)`` names a journaled attempt's call (so that a second dial for the
    agent is told which call holds it); before that the holder's tag stands in.
    """

    def __init__(
        self,
        readiness: ReadinessGate,
        leases: AgentLeases,
        call_id: Callable[[int], str],
        dnc: DoNotCall | None = None,
    ) -> None:
        self._readiness = readiness
        self._leases = leases
        self._call_id = call_id
        self._dnc = dnc
        self._held: dict[str, tuple[str, str]] = {}  # holder -> (agent id, call id)

    async def _listed(self, phone: str) -> Refusal | None:
        if self._dnc is None or not phone:
            return None
        try:
            why = await self._dnc.reason(phone)
        except Exception as exc:  # the list cannot be read: never dial unchecked
            return Refusal(
                "store_unavailable",
                f"the do-not-call list could not be read ({type(exc).__name__})",
            )
        if why is None:
            return None
        return Refusal(
            "do_not_call", f"{phone} is on the do-not-call list" + (f" ({why})" if why else "")
        )

    async def admit(self, agent_id: str, holder: str, phone: str = "") -> Refusal | None:
        """Not listed, ready and free: the agent is held for ``holder``; else why not."""
        listed = await self._listed(phone)
        if listed is not None:
            return listed
        refusal = await self._readiness.ready(agent_id)
        if refusal is not None:
            return refusal
        try:
            live = await self._leases.claim(agent_id, holder)
        except Exception as exc:  # the store cannot grant it: never dial without it
            return Refusal(
                "store_unavailable",
                f"the store could not record the agent's call ({type(exc).__name__})",
            )
        if live is not None:
            return Refusal("agent_busy", f"the agent has a live call ({live})", live_call=live)
        self._held[holder] = (agent_id, holder)
        return None

    async def bind(self, holder: str, attempt_id: int) -> None:
        """Name the agent's row after the attempt's call (best effort: the tag still holds it)."""
        held = self._held.get(holder)
        if held is None:
            return
        agent_id, old = held
        new = self._call_id(attempt_id)
        try:
            await self._leases.rebind(agent_id, old, new)
        except Exception:  # the row keeps the tag: it still holds the agent
            return
        self._held[holder] = (agent_id, new)

    async def hold(self, agent_id: str, holder: str, attempt_id: int) -> str | None:
        """Take the agent's row for the attempt's call (a dead replica's row for that same call
        passes to this one). A store that fails is logged: the call exists whatever the row."""
        call_id = self._call_id(attempt_id)
        try:
            live = await self._leases.claim(agent_id, call_id)
        except Exception as exc:
            logger.warning(
                "the agent of %s could not be held in the store (%s)", call_id, type(exc).__name__
            )
            return None
        if live is None:
            self._held[holder] = (agent_id, call_id)
        return live

    async def release(self, holder: str) -> None:
        """Free the agent (if the store fails, the row expires with this replica's heartbeat)."""
        held = self._held.pop(holder, None)
        if held is None:
            return
        with contextlib.suppress(Exception):
            await self._leases.release(*held)


class SyncAgentLeases(Protocol):
    """Agent rows asked without an event loop (:class:`gcdial.local_leases.LocalAgentLeases`)."""

    def claim_now(self, agent_id: str, call_id: str) -> str | None:
        """None when granted; else the live call holding the agent. Raises when the store fails."""
        ...

    def rebind_now(self, agent_id: str, old_call_id: str, new_call_id: str) -> None:
        """The holder got its final call id."""
        ...

    def release_now(self, agent_id: str, call_id: str) -> None:
        """Free the agent if ``call_id`` holds it."""
        ...

    def replace_now(self, agent_id: str, old_call_id: str, call_id: str) -> bool:
        """Take the row over from ``old_call_id`` (a call known to have ended)."""
        ...


_CONVERSATION_ID: Final = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")


class CallGate(Protocol):
    """What one library dial (``dial(..., gate=...)``, ``Client.dial``) asks before its create-call
    leaves. Plain (blocking) methods: a dial that is not followed runs no event loop."""

    def admit_call(self, agent_id: str, holder: str, phone_e164: str) -> Refusal | None:
        """None: the dial may go (the agent is held for ``holder`` until :meth:`release_call`)."""
        ...

    def bind_call(self, holder: str, conversation_id: str) -> None:
        """The call was placed as ``conversation_id`` (a busy answer names it from now on)."""
        ...

    def release_call(self, holder: str) -> None:
        """The call ended, or was never placed: the agent is free."""
        ...


class SingleCallGate:
    """The gate of one call: the calling rules (``rules``: window in the contact's zone(s) and
    the rules' own do-not-call list), then the agent's row in ``leases`` (the CLI's shared
    file). Either may be None (not checked). ``time_zone`` is the customer's own zone, when the
    number's is not theirs; ``now`` the wall clock the window is asked at.

    A row held by a single call placed without following it (named by its conversation id) is
    kept until it expires, unless ``call_over(conversation_id)`` says that call has ended: then
    the row is taken over (campaign rows, named ``journal#attempt``, are never asked about)."""

    def __init__(
        self,
        rules: Rules | None = None,
        leases: SyncAgentLeases | None = None,
        *,
        time_zone: str | None = None,
        now: Callable[[], datetime] | None = None,
        call_over: Callable[[str], bool] | None = None,
    ) -> None:
        self.rules = rules
        self.call_over = call_over
        self.leases = leases
        self.time_zone = time_zone
        self._now = now or _utc_now
        self._held: dict[str, tuple[str, str]] = {}  # holder -> (agent id, call id)

    def breaches(self, phone_e164: str) -> tuple[RuleBreach, ...]:
        """The calling rules a dial to ``phone_e164`` breaks now (empty: none, or no rules)."""
        if self.rules is None:
            return ()
        return rule_breaches(self.rules, phone_e164, self._now(), time_zone=self.time_zone)

    def admit_call(self, agent_id: str, holder: str, phone_e164: str) -> Refusal | None:
        """The rules first (nothing is held for a refused number), then the agent's row."""
        found = self.breaches(phone_e164)
        if found:
            first = found[0]
            return Refusal(first.rule, first.message, local_time=first.local_time)
        if self.leases is None:
            return None
        try:
            live = self.leases.claim_now(agent_id, holder)
        except Exception as exc:  # the store cannot grant it: never dial without it
            return Refusal(
                "store_unavailable",
                f"the file of agents with a live call could not be written ({type(exc).__name__})",
            )
        if live is not None and not self._took_over(agent_id, live, holder):
            return Refusal("agent_busy", f"the agent has a live call ({live})", live_call=live)
        self._held[holder] = (agent_id, holder)
        return None

    def _took_over(self, agent_id: str, live: str, holder: str) -> bool:
        if self.call_over is None or self.leases is None or not _CONVERSATION_ID.fullmatch(live):
            return False
        try:
            return self.call_over(live) and self.leases.replace_now(agent_id, live, holder)
        except Exception:  # cannot tell: the row stands
            return False

    def bind_call(self, holder: str, conversation_id: str) -> None:
        """Name the row after the conversation (best effort: the holder's tag still holds it)."""
        held = self._held.get(holder)
        if held is None or self.leases is None:
            return
        try:
            self.leases.rebind_now(held[0], held[1], conversation_id)
        except Exception:
            return
        self._held[holder] = (held[0], conversation_id)

    def release_call(self, holder: str) -> None:
        """Free the agent (if the store fails, the row expires on its own)."""
        held = self._held.pop(holder, None)
        if held is None or self.leases is None:
            return
        with contextlib.suppress(Exception):
            self.leases.release_now(*held)


def _utc_now() -> datetime:
    return datetime.now(UTC)
