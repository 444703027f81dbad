"""Call endpoints: create (on behalf of a user, or as the token's user), get, hang up."""

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from gcdial.emulator.auth import NOT_A_USER_MESSAGE, require_token, require_user_token
from gcdial.emulator.errorbody import ApiError, bad_request, not_found
from gcdial.emulator.faults import NOT_ACTED_MODES, ActiveFault, FaultSpec
from gcdial.emulator.fixtures import UserSpec
from gcdial.emulator.requestbody import read_json
from gcdial.emulator.simulation import TelephoneNetwork
from gcdial.emulator.state import Call, EmulatorState, Participant
from gcdial.emulator.users import find_user
from gcdial.emulator.wrapup import prepare_agent

FAULT_SCOPE_KEY = "gcdial.emulator.fault"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
NO_STATION_MESSAGE = "A station is required to place a call."
PARTIAL_BODY_BYTES = 8


class CallParticipant(BaseModel):
    """One entry of ``CreateCallRequest.participants``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    address: str | None = None
    name: str | None = None
    userId: str | None = None
    queueId: str | None = None


class CreateCallRequest(BaseModel):
    """The create-call body; unknown fields and wrong types are rejected like Genesys does."""

    model_config = ConfigDict(extra="forbid", strict=True)

    phoneNumber: str | None = None
    callerId: str | None = None
    callerIdName: str | None = None
    callFromQueueId: str | None = None
    callQueueId: str | None = None
    callUserId: str | None = None
    priority: int | None = None
    attributes: dict[str, str] | None = None
    languageId: str | None = None
    routingSkillsIds: list[str] | None = None
    routingSkillExpression: str | None = None
    conversationIds: list[str] | None = None
    participants: list[CallParticipant] | None = None
    uuiData: str | None = None
    externalContactId: str | None = None
    label: str | None = None


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _network(request: Request) -> TelephoneNetwork:
    network: TelephoneNetwork = request.app.state.network
    return network


def normalise_number(value: str, *, field: str) -> str:
    """``+E164`` from ``value`` (an optional ``tel:`` prefix is accepted) or a 400."""
    number = value.removeprefix("tel:")
    if not E164.match(number):
        raise ApiError(
            400,
            "bad.request",
            f"{field} {value!r} is not a valid phone number: use E.164, e.g. +14155550100.",
            details=[{"errorCode": "invalid.phone.number", "fieldName": field}],
        )
    return number


def parse_create_request(raw: Any) -> CreateCallRequest:
    """Validate a create-call body, mapping each problem to the Genesys error."""
    if not isinstance(raw, dict):
        raise bad_request("The request body must be a JSON object (CreateCallRequest).")
    try:
        request = CreateCallRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ApiError(
                400,
                "bad.request",
                f"Unrecognized field {field!r} in CreateCallRequest.",
                details=[{"errorCode": "unrecognized.field", "fieldName": field}],
            ) from None
        raise bad_request(f"Invalid value for {field}: {first['msg']}.", field=field) from None
    destinations = [
        name
        for name in ("phoneNumber", "callUserId", "callQueueId", "participants", "conversationIds")
        if getattr(request, name)
    ]
    if len(destinations) > 1:
        raise ApiError(
            400,
            "too.many.create.conversation.parameters",
            "Only one of phoneNumber, callUserId, callQueueId, participants or conversationIds "
            f"may be given; got {', '.join(destinations)}.",
        )
    if not destinations:
        raise bad_request(
            "A destination is required: phoneNumber, callUserId, callQueueId, participants "
            "or conversationIds.",
            field="phoneNumber",
            error_code="missing.destination",
        )
    if destinations[0] != "phoneNumber":
        raise bad_request(
            f"The emulator only simulates phoneNumber destinations, not {destinations[0]}.",
            field=destinations[0],
            error_code="not.emulated",
        )
    if request.callerId is not None:
        normalise_number(request.callerId, field="callerId")
    return request


async def create_on_behalf(request: Request) -> Response:
    """``POST /api/v2/conversations/calls/user/{userId}``."""
    state = _state(request)
    with _refund_unless_valid(request):
        token = require_token(request, state)
        if token.user_id is None and not state.config.on_behalf_accepts_client_credentials:
            raise ApiError(400, "not.a.user", NOT_A_USER_MESSAGE)
        body, number, user = await _validated(request, request.path_params["userId"])
    return await _create(request, body, number, user)


async def create_as_me(request: Request) -> Response:
    """``POST /api/v2/conversations/calls``: rings the token owner's station."""
    with _refund_unless_valid(request):
        token = require_user_token(request, _state(request))
        assert token.user_id is not None
        body, number, user = await _validated(request, token.user_id)
    return await _create(request, body, number, user)


def _fault(request: Request) -> ActiveFault | None:
    fault: ActiveFault | None = request.scope.get(FAULT_SCOPE_KEY)
    return fault


@contextlib.contextmanager
def _refund_unless_valid(request: Request) -> Iterator[None]:
    """A create-call fault drawn for a request that is then refused keeps its use."""
    try:
        yield
    except BaseException:
        fault = _fault(request)
        if fault is not None:
            _state(request).faults.refund(fault)
        raise


async def _validated(request: Request, user_id: str) -> tuple[CreateCallRequest, str, UserSpec]:
    """The parsed body, the number to dial and the agent, or the Genesys 4xx."""
    state = _state(request)
    body = parse_create_request(await read_json(request))
    assert body.phoneNumber is not None
    number = normalise_number(body.phoneNumber, field="phoneNumber")
    user = find_user(state, user_id)
    if user.state != "active":
        raise ApiError(
            400,
            "conversation.error.user.inactive",
            f"User {user.id} is inactive and cannot place calls.",
            entity_id=str(user.id),
            entity_name="user",
        )
    if user.station is None:
        raise ApiError(400, "conversation.error.no.user.station", NO_STATION_MESSAGE)
    queue_id = body.callFromQueueId
    if queue_id is not None and not any(str(q.id) == queue_id for q in state.fixture.queues):
        # Which status real Genesys gives an unknown queue is UNCONFIRMED.
        raise bad_request(
            f"callFromQueueId {queue_id!r}: no such queue (GET /api/v2/routing/queues lists them).",
            field="callFromQueueId",
        )
    return body, number, user


def _created_json(conversation_id: str) -> dict[str, Any]:
    return {"id": conversation_id, "selfUri": f"/api/v2/conversations/calls/{conversation_id}"}


async def _create(
    request: Request, body: CreateCallRequest, number: str, user: UserSpec
) -> Response:
    state = _state(request)
    fault = _fault(request)
    if fault is not None and fault.spec.mode in NOT_ACTED_MODES:
        state.faults.record(
            fault, method=request.method, path=request.url.path, at=state.clock.iso()
        )
        return await _fail_without_acting(request, fault.spec)
    created_sim = state.clock.now()
    now = state.clock.iso(created_sim)
    agent = Participant(
        purpose="agent",
        state="alerting",
        start_time=now,
        name=user.name,
        user={"id": str(user.id), "name": user.name},
    )
    call = Call(
        id=str(uuid.uuid4()),
        user_id=str(user.id),
        phone_number=number,
        body=body.model_dump(exclude_none=True),
        created_at=now,
        participants=[agent],
        created_sim=created_sim,
        queue_id=body.callFromQueueId,
    )
    prepare_agent(agent, call, state)
    state.calls[call.id] = call
    state.hub.publish(call)
    _network(request).start(call)
    payload = _created_json(call.id)
    if fault is None:
        return JSONResponse(payload)
    state.faults.record(
        fault, method=request.method, path=request.url.path, at=now, conversationId=call.id
    )
    spec = fault.spec
    if spec.mode == "drop_after_create":
        return DroppedResponse(payload)
    if spec.mode == "status_after_create":
        raise spec.error()
    await _withhold(request, state, spec.seconds)
    if state.stopping.is_set():
        raise ApiError(503)
    return JSONResponse(payload)


async def _fail_without_acting(request: Request, spec: FaultSpec) -> Response:
    """Answer a valid create that was read but never acted on: cut, withheld, or an error."""
    if spec.mode == "drop_without_create":
        return DroppedResponse(_created_json(str(uuid.uuid4())))
    if spec.mode == "status_without_create":
        raise spec.error()
    await _withhold(request, _state(request), spec.seconds)
    raise ApiError(504, "gateway.timeout", "The request timed out before it was processed.")


async def _withhold(request: Request, state: EmulatorState, seconds: float) -> None:
    """Wait ``seconds`` (real), or less if the client disconnects or the server stops."""
    disconnect = asyncio.ensure_future(request.receive())
    stopping = asyncio.ensure_future(state.stopping.wait())
    try:
        await asyncio.wait({disconnect, stopping}, timeout=seconds, return_when="FIRST_COMPLETED")
    finally:
        for task in (disconnect, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


INCOMPLETE_RESPONSE_MESSAGE = "ASGI callable returned without completing response."


class _IntendedDrops(logging.Filter):
    """Silences uvicorn's error for a response the emulator cut off on purpose, and only that.

    Each ``DroppedResponse`` announces itself with ``expect``; uvicorn logs its complaint on the
    same event loop right after the response returns, so a count pairs them up. Any other
    incomplete response is still reported.
    """

    def __init__(self) -> None:
        super().__init__()
        self._expected = 0

    def expect(self) -> None:
        """One deliberately incomplete response is about to end."""
        self._expected += 1

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the complaint about an expected drop."""
        if self._expected and record.getMessage() == INCOMPLETE_RESPONSE_MESSAGE:
            self._expected -= 1
            return False
        return True


_INTENDED_DROPS = _IntendedDrops()
logging.getLogger("uvicorn.error").addFilter(_INTENDED_DROPS)


class DroppedResponse(Response):
    """Starts a 200 with the full Content-Length, sends the first few bytes, then stops.

    uvicorn closes the connection of a response the app left incomplete, so the client sees
    the answer cut off mid-body. The bytes sent stop before the conversation id, so a cut
    answer looks the same whether or not the call was created.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(JSONResponse(payload).body, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the start and a partial body, then return without completing."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send(
            {
                "type": "http.response.body",
                "body": self.body[:PARTIAL_BODY_BYTES],
                "more_body": True,
            }
        )
        _INTENDED_DROPS.expect()


def _find_call(state: EmulatorState, conversation_id: str) -> Call:
    call = state.calls.get(conversation_id)
    if call is None:
        raise not_found("conversation", conversation_id)
    return call


async def get_call(request: Request) -> JSONResponse:
    """``GET /api/v2/conversations/calls/{conversationId}``."""
    state = _state(request)
    require_token(request, state)
    return JSONResponse(_find_call(state, request.path_params["conversationId"]).to_json())


def _check_disconnect(body: Any) -> None:
    if not isinstance(body, dict) or set(body) - {"state"}:
        extra = sorted(set(body) - {"state"}) if isinstance(body, dict) else []
        raise bad_request(
            'The body must be {"state": "disconnected"}'
            + (f"; unrecognized field {extra[0]!r}." if extra else "."),
            field=extra[0] if extra else "state",
        )
    if body.get("state") != "disconnected":
        raise bad_request(
            'The emulator supports only {"state": "disconnected"} (hang up).', field="state"
        )


async def patch_call(request: Request) -> JSONResponse:
    """``PATCH /api/v2/conversations/calls/{conversationId}``: hang up every participant."""
    state = _state(request)
    require_token(request, state)
    call = _find_call(state, request.path_params["conversationId"])
    _check_disconnect(await read_json(request))
    _network(request).hang_up(call)
    return JSONResponse(call.to_conversation_json(), status_code=202)


async def patch_participant(request: Request) -> Response:
    """``PATCH /api/v2/conversations/calls/{conversationId}/participants/{participantId}``."""
    state = _state(request)
    require_token(request, state)
    call = _find_call(state, request.path_params["conversationId"])
    participant_id = request.path_params["participantId"]
    participant = next((p for p in call.participants if p.id == participant_id), None)
    if participant is None:
        raise not_found("participant", participant_id)
    body = await read_json(request)
    if isinstance(body, dict) and body.keys() & {"wrapup", "wrapupSkipped"}:
        extra = sorted(set(body) - {"wrapup", "wrapupSkipped"})
        if extra or len(body) != 1:
            raise bad_request(
                'Send either {"wrapup": {...}} or {"wrapupSkipped": true}, alone.',
                field=extra[0] if extra else "wrapupSkipped",
            )
        if "wrapupSkipped" in body and body["wrapupSkipped"] is not True:
            raise bad_request("'wrapupSkipped' must be true.", field="wrapupSkipped")
        _network(request).acw.patch(call, participant, body)
        return Response(status_code=202)
    _check_disconnect(body)
    _network(request).hang_up(call, participant_id)
    return Response(status_code=202)
