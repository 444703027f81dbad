"""After-call work: which calls get a wrap-up, what the agent records, and when.

A call placed for a queue (``callFromQueueId``) is an ACD call: when the agent's leg ends, the
agent is in after-call work (``startAcwTime``) until a wrap-up is recorded (``wrapup``,
``endAcwTime``). The fixture's ``wrapups`` rules play the agent: the first rule matching the dialed
number picks the code and notes, recorded ``wrapup_after_s`` simulated seconds later, or never.
A ``PATCH .../participants/{id}`` with ``{"wrapup": {...}}`` or ``{"wrapupSkipped": true}`` may
get there first. Whether non-ACD calls carry a wrap-up is UNCONFIRMED (``non_acd_wrapup``).
"""

import asyncio
import fnmatch
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gcdial.emulator.clock import iso_utc
from gcdial.emulator.errorbody import ApiError, bad_request
from gcdial.emulator.fixtures import Fixture, WrapupCodeSpec, WrapupRule
from gcdial.emulator.state import Call, EmulatorState, Participant

CODE_REQUIRED = "conversation.error.wrapup.code.required"
# Genesys' system wrap-up codes: the code id is the name itself (seen in analytics exports:
# UNCONFIRMED whether GET conversation shows them too).
TIMEOUT_CODE = "ININ-WRAP-UP-TIMEOUT"
SKIPPED_CODE = "ININ-WRAP-UP-SKIPPED"
# Prompts under which after-call work ends by itself when ``wrapupTimeoutMs`` runs out.
TIMED_PROMPTS = frozenset({"timeout", "forcedTimeout"})
CANNOT_SKIP = "conversation.error.wrapup.cannot.skip"
# Prompts under which the agent may skip the wrap-up (UNCONFIRMED: the contract names only the
# error for a refused skip).
SKIPPABLE_PROMPTS = frozenset({"optional", "agentRequested"})


class WrapupBody(BaseModel):
    """The ``Wrapup`` a client sends in ``MediaParticipantRequest.wrapup``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str | None = None
    name: str | None = None
    notes: str | None = None
    tags: list[str] = Field(default_factory=list)
    durationSeconds: int | None = None
    endTime: str | None = None
    provisional: bool | None = None


def rule_for(fixture: Fixture, number: str, *, answered: bool) -> WrapupRule | None:
    """The first of the fixture's wrap-up rules that matches ``number`` and whether the customer
    answered."""
    for rule in fixture.wrapups:
        if fnmatch.fnmatchcase(number, rule.match) and rule.answered in (None, answered):
            return rule
    return None


def has_after_call_work(call: Call, state: EmulatorState) -> bool:
    """ACD calls always; non-ACD calls only with ``non_acd_wrapup`` (UNCONFIRMED)."""
    return call.queue_id is not None or state.config.non_acd_wrapup


def prepare_agent(agent: Participant, call: Call, state: EmulatorState) -> None:
    """Give a new agent participant its queue and wrap-up settings."""
    if call.queue_id is not None:
        agent.queue = {"id": call.queue_id}
    if not has_after_call_work(call, state):
        return
    agent.wrapup_required = call.queue_id is not None
    agent.wrapup_prompt = state.config.wrapup_prompt
    agent.wrapup_timeout_ms = round(state.config.wrapup_timeout_s * 1000)


def wrapup_json(
    code_id: str, name: str, *, notes: str, tags: list[str], started: str, end: str
) -> dict[str, Any]:
    """A ``Wrapup``; ``durationSeconds`` is the after-call time from ``started`` to ``end``."""
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(started)).total_seconds()
    body: dict[str, Any] = {
        "code": code_id,
        "name": name,
        "tags": tags,
        "durationSeconds": max(0, round(seconds)),
        "endTime": end,
        "provisional": False,
    }
    if notes:
        body["notes"] = notes
    return body


class AfterCallWork:
    """Starts each call's after-call work and records its wrap-up, by rule or by PATCH."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def begin(self, call: Call, ended_sim: float) -> None:
        """The agent's leg ended at simulated time ``ended_sim``: start after-call work.

        Call before announcing the end, so the end's frame already carries ``startAcwTime``.
        An agent who never connected has nothing to wrap up.
        """
        state = self._state
        agent = call.participants[0]
        if not has_after_call_work(call, state) or agent.connected_time is None:
            return
        if agent.start_acw_time is not None:
            return
        agent.start_acw_time = state.clock.iso(ended_sim)
        answered = any(p.connected_time for p in call.participants[1:])
        rule = rule_for(state.fixture, call.phone_number, answered=answered)
        due = _agent_due(rule, state.config.wrapup_after_s, ended_sim)
        if agent.wrapup_prompt in TIMED_PROMPTS:
            timeout_due = ended_sim + state.config.wrapup_timeout_s
            if due is None or timeout_due < due:
                rule, due = None, timeout_due
        if due is not None:
            call.acw_task = asyncio.get_running_loop().create_task(self._finish(call, rule, due))

    async def _finish(self, call: Call, rule: WrapupRule | None, due: float) -> None:
        """At ``due``: the agent records the rule's wrap-up, or (no rule) the time runs out."""
        state = self._state
        await state.clock.sleep_until(due)
        call.acw_task = None
        end = state.clock.iso(due)
        if rule is None:
            self._record(call, TIMEOUT_CODE, TIMEOUT_CODE, notes="", tags=[], end=end)
            call.wrapup_source = "timeout"
        else:
            assert rule.code is not None
            code = state.fixture.find_wrapup_code(rule.code)
            assert code is not None
            callback = iso_utc(state.clock.moment(due) + timedelta(seconds=rule.callback_in_s))
            notes = rule.notes.replace("{callback}", callback)
            self._record(call, str(code.id), code.name, notes=notes, tags=list(rule.tags), end=end)
            call.wrapup_source = "agent"
        state.hub.publish(call)

    def _record(
        self, call: Call, code_id: str, name: str, *, notes: str, tags: list[str], end: str
    ) -> None:
        agent = call.participants[0]
        assert agent.start_acw_time is not None
        agent.wrapup = wrapup_json(
            code_id, name, notes=notes, tags=tags, started=agent.start_acw_time, end=end
        )
        agent.end_acw_time = end

    def patch(self, call: Call, participant: Participant, body: dict[str, Any]) -> None:
        """Apply ``{"wrapup": {...}}`` or ``{"wrapupSkipped": true}``, or raise the 400."""
        state = self._state
        if participant is not call.participants[0]:
            raise bad_request(
                "Only the agent's participant has after-call work.", field="participantId"
            )
        if not has_after_call_work(call, state):
            raise bad_request(
                "This call was not placed for a queue, so it has no after-call work "
                "(see non_acd_wrapup in docs/emulator.md).",
                field="wrapup",
            )
        if participant.start_acw_time is None:
            raise bad_request(
                "The agent's leg has not ended yet: the emulator takes a wrap-up only in "
                "after-call work.",
                field="wrapup",
            )
        if participant.wrapup is not None or participant.wrapup_skipped:
            raise bad_request("This participant's after-call work is already over.", field="wrapup")
        if body.get("wrapupSkipped") is True:
            if participant.wrapup_prompt not in SKIPPABLE_PROMPTS:
                raise ApiError(
                    400,
                    CANNOT_SKIP,
                    f"The wrap-up cannot be skipped: the prompt is {participant.wrapup_prompt!r}.",
                )
            self._stop_agent(call)
            participant.wrapup_skipped = True
            participant.end_acw_time = state.clock.iso()
            call.wrapup_source = "api"
            state.hub.publish(call)
            return
        wrapup = _parse_wrapup(body.get("wrapup"))
        if wrapup.provisional:
            raise bad_request(
                "The emulator does not keep provisional wrap-ups; send the final one.",
                field="wrapup.provisional",
                error_code="not.emulated",
            )
        if not wrapup.code:
            raise ApiError(400, CODE_REQUIRED, "A wrap-up code is required.")
        code = state.fixture.find_wrapup_code(wrapup.code)
        if code is None or (
            call.queue_id is not None and code not in self._queue_codes(call.queue_id)
        ):
            where = "" if call.queue_id is None else " assigned to this call's queue"
            raise bad_request(f"No wrap-up code {wrapup.code!r}{where}.", field="wrapup.code")
        self._stop_agent(call)
        self._record(
            call,
            str(code.id),
            code.name,
            notes=wrapup.notes or "",
            tags=wrapup.tags,
            end=state.clock.iso(),
        )
        call.wrapup_source = "api"
        state.hub.publish(call)

    def _queue_codes(self, queue_id: str) -> list[WrapupCodeSpec]:
        fixture = self._state.fixture
        queue = next(q for q in fixture.queues if str(q.id) == queue_id)
        return fixture.queue_codes(queue)

    @staticmethod
    def _stop_agent(call: Call) -> None:
        if call.acw_task is not None:
            call.acw_task.cancel()
            call.acw_task = None


def _agent_due(rule: WrapupRule | None, after_s: float, ended_sim: float) -> float | None:
    """When the agent records the rule's wrap-up; None when the rule says never (or no rule)."""
    if rule is None or rule.code is None:
        return None
    return ended_sim + (after_s if rule.after_s is None else rule.after_s)


def _parse_wrapup(raw: Any) -> WrapupBody:
    if not isinstance(raw, dict):
        raise bad_request("'wrapup' must be an object (Wrapup).", field="wrapup")
    try:
        return WrapupBody.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "wrapup." + ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise bad_request(
                f"Unrecognized field {field!r} in Wrapup.",
                field=field,
                error_code="unrecognized.field",
            ) from None
        raise bad_request(f"Invalid value for {field}: {first['msg']}.", field=field) from None
