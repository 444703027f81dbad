"""The simulated telephone network: each call's timeline, chosen by the dialed number.

The last two digits ``NN`` of the number decide the outcome (see docs/emulator.md):
00-49 answered (talks 10+NN s), 50-59 no answer, 60-69 busy, 70-79 invalid number,
80-89 carrier failure, 90-94 agent does not answer, 95-99 agent rejects.
"""

import asyncio
import contextlib
from dataclasses import dataclass

from gcdial.emulator.state import Call, EmulatorState, Participant
from gcdial.emulator.wrapup import AfterCallWork

BUSY_AFTER_S = 2.0
CARRIER_FAILURE_AFTER_S = 3.0
AGENT_REJECT_AFTER_S = 2.0
TALK_BASE_S = 10.0


@dataclass(frozen=True)
class Outcome:
    """How a call to one number unfolds."""

    kind: str
    agent_answers: bool
    customer_ends_after_s: float = 0.0
    customer_disconnect: str = "endpoint"
    error_code: str | None = None


def outcome_for(number: str, state: EmulatorState) -> Outcome:
    """The deterministic outcome of dialing ``number`` (its last two digits)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    nn = int(digits[-2:]) if len(digits) >= 2 else 0
    cfg = state.config
    if nn < 50:
        return Outcome("answered", True, TALK_BASE_S + nn)
    if nn < 60:
        return Outcome("no_answer", True, cfg.no_answer_s, cfg.no_answer_disconnect_type)
    if nn < 70:
        return Outcome("busy", True, BUSY_AFTER_S, "peer", "error.ininedgecontrol.remote.busy")
    if nn < 80:
        return Outcome(
            "invalid_number", True, 0.0, "error", "error.ininedgecontrol.remote.address.invalid"
        )
    if nn < 90:
        return Outcome(
            "carrier_failure",
            True,
            CARRIER_FAILURE_AFTER_S,
            "transport.failure",
            "error.ininedgecontrol.network.failure",
        )
    if nn < 95:
        return Outcome("agent_no_answer", False, customer_disconnect=cfg.no_answer_disconnect_type)
    return Outcome("agent_rejects", False, customer_disconnect="client")


class TelephoneNetwork:
    """Drives every call's timeline as an asyncio task on the simulated clock."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self.acw = AfterCallWork(state)

    def start(self, call: Call) -> None:
        """Begin ``call``'s timeline (the agent leg is already alerting)."""
        call.task = asyncio.get_running_loop().create_task(self._run(call))

    def hang_up(self, call: Call, participant_id: str | None = None) -> None:
        """End ``call`` now: the patched participant (or agent) ``client``, others ``peer``."""
        if call.over:
            return
        if call.task is not None:
            call.task.cancel()
            call.task = None
        target = participant_id or call.participants[0].id
        now_sim = self._state.clock.now()
        now = self._state.clock.iso(now_sim)
        for participant in call.participants:
            if not participant.ended:
                kind = "client" if participant.id == target else "peer"
                _end(participant, now, kind)
        self.acw.begin(call, now_sim)
        self._state.hub.publish(call)

    async def stop_all(self) -> None:
        """Cancel every running timeline and wait for them to finish."""
        tasks = [
            task
            for call in self._state.calls.values()
            for task in (call.task, call.acw_task)
            if task is not None
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, call: Call) -> None:
        """The call's timeline. Each step is stamped with the simulated time it was due, not the
        time its timer fired: on a busy machine a timer fires late, and a stamp taken then would
        stretch the talk time by the lateness times the speed."""
        state = self._state
        clock = state.clock
        cfg = state.config
        agent = call.participants[0]
        outcome = outcome_for(call.phone_number, state)
        due = call.created_sim

        async def after(sim_seconds: float) -> str:
            nonlocal due
            due += sim_seconds
            await clock.sleep_until(due)
            return clock.iso(due)

        if not outcome.agent_answers:
            wait = (
                cfg.agent_no_answer_s if outcome.kind == "agent_no_answer" else AGENT_REJECT_AFTER_S
            )
            _end(agent, await after(wait), outcome.customer_disconnect)
            call.task = None
            state.hub.publish(call)
            return
        agent_connected = await after(cfg.agent_answer_s)
        agent.state = "connected"
        agent.connected_time = agent_connected
        customer = Participant(
            purpose=cfg.customer_purpose,
            state="dialing",
            start_time=agent_connected,
            address=f"tel:{call.phone_number}",
            attributes=dict(call.body.get("attributes") or {}),
        )
        call.participants.append(customer)
        state.hub.publish(call)
        if outcome.kind == "answered":
            customer_connected = await after(cfg.ring_s)
            customer.state = "connected"
            customer.connected_time = customer_connected
            state.hub.publish(call)
        ended = await after(outcome.customer_ends_after_s)
        _end(customer, ended, outcome.customer_disconnect)
        if outcome.error_code is not None:
            customer.error_info = {"code": outcome.error_code, "message": outcome.kind}
        _end(agent, ended, "peer")
        call.task = None
        self.acw.begin(call, due)
        state.hub.publish(call)


def _end(participant: Participant, when: str, disconnect_type: str) -> None:
    participant.state = "disconnected"
    participant.end_time = when
    participant.disconnect_type = disconnect_type
