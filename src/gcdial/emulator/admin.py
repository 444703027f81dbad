"""``/_emulator/*``: inspect and steer the emulator (not part of Genesys Cloud)."""

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gcdial.emulator.errorbody import ApiError, bad_request, not_found
from gcdial.emulator.faults import FaultSpec
from gcdial.emulator.requestbody import read_json
from gcdial.emulator.state import Call, EmulatorState


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def _optional_json(request: Request) -> dict[str, Any]:
    if not (await request.body()).strip():
        return {}
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body


async def list_calls(request: Request) -> JSONResponse:
    """Every call created since the last reset, oldest first."""
    calls = [
        {
            "id": call.id,
            "userId": call.user_id,
            "phoneNumber": call.phone_number,
            "body": call.body,
            "createdAt": call.created_at,
            "state": call.summary_state,
            "queueId": call.queue_id,
            "wrapup": _wrapup_entry(call),
        }
        for call in _state(request).calls.values()
    ]
    return JSONResponse({"calls": calls})


def _wrapup_entry(call: Call) -> dict[str, Any] | None:
    """The agent's recorded wrap-up (or skip) with who recorded it; None while there is none."""
    agent = call.participants[0]
    if agent.wrapup is None and not agent.wrapup_skipped:
        return None
    entry: dict[str, Any] = {"source": call.wrapup_source, "endAcwTime": agent.end_acw_time}
    if agent.wrapup_skipped:
        entry["skipped"] = True
    else:
        entry.update(agent.wrapup or {})
    return entry


async def list_wrapups(request: Request) -> JSONResponse:
    """The wrap-up ledger: one entry per recorded wrap-up, counts per code name, and how many
    calls are still in after-call work."""
    state = _state(request)
    recorded = []
    by_code: dict[str, int] = {}
    pending = 0
    for call in state.calls.values():
        entry = _wrapup_entry(call)
        if entry is None:
            pending += call.participants[0].start_acw_time is not None
            continue
        recorded.append({"conversationId": call.id, "phoneNumber": call.phone_number, **entry})
        name = "(skipped)" if entry.get("skipped") else str(entry["name"])
        by_code[name] = by_code.get(name, 0) + 1
    return JSONResponse(
        {"wrapups": recorded, "byCode": by_code, "total": len(recorded), "pending": pending}
    )


async def overlaps(request: Request) -> JSONResponse:
    """Create-calls for an agent who had a live call then, and how many per agent (``byAgent``,
    by email), whether the emulator created them (``busy_agent_calls`` allow) or not."""
    ledger = _state(request).overlaps
    by_agent: dict[str, int] = {}
    for entry in ledger:
        by_agent[entry["email"]] = by_agent.get(entry["email"], 0) + 1
    return JSONResponse({"overlaps": ledger, "byAgent": by_agent, "total": len(ledger)})


async def request_counts(request: Request) -> JSONResponse:
    """Requests seen per route template, how many hit the catch-all 500, and how many clients
    left before their request was read."""
    state = _state(request)
    return JSONResponse(
        {
            "total": sum(state.requests.values()),
            "byRoute": dict(state.requests),
            "internalErrors": state.internal_errors,
            "clientDisconnects": state.client_disconnects,
        }
    )


async def rate_windows(request: Request) -> JSONResponse:
    """The rate limiter's windows, oldest first: start and end (the emulator's monotonic clock,
    real seconds), requests allowed and refused, whose key (``rate_limit_scope``) and bucket."""
    windows = _state(request).rate_limiter.ledger()
    refused = sum(w["refused"] for w in windows)
    return JSONResponse({"windows": windows, "refused": refused})


async def reset(request: Request) -> Response:
    """Forget calls, tokens, channels, faults, counters and rate windows."""
    _state(request).reset()
    return Response(status_code=204)


async def add_fault(request: Request) -> JSONResponse:
    """Put a fault in force; answers its id."""
    body = await _optional_json(request)
    try:
        spec = FaultSpec.model_validate(body)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    return JSONResponse({"id": _state(request).faults.add(spec)}, status_code=201)


def _validation_error(exc: ValidationError) -> ApiError:
    problems = []
    details = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{field}: {str(error['msg']).removeprefix('Value error, ')}")
        details.append({"errorCode": error["type"], "fieldName": field})
    return ApiError(400, "bad.request", "; ".join(problems), details=details)


async def list_faults(request: Request) -> JSONResponse:
    """The faults in force."""
    return JSONResponse({"faults": [f.to_json() for f in _state(request).faults.active()]})


async def fault_ledger(request: Request) -> JSONResponse:
    """Every time a fault acted since the last reset, oldest first, and the count per fault."""
    ledger = _state(request).faults.ledger
    counts: dict[str, int] = {}
    for entry in ledger:
        fault_id = str(entry["faultId"])
        counts[fault_id] = counts.get(fault_id, 0) + 1
    return JSONResponse({"fired": ledger, "byFault": counts})


async def clear_faults(request: Request) -> Response:
    """Remove every fault."""
    _state(request).faults.clear()
    return Response(status_code=204)


async def delete_fault(request: Request) -> Response:
    """Remove one fault."""
    fault_id = request.path_params["faultId"]
    if not _state(request).faults.remove(fault_id):
        raise not_found("fault", fault_id)
    return Response(status_code=204)


async def expire_tokens(request: Request) -> Response:
    """Every issued token now answers 401 ``bad.credentials``."""
    _state(request).expire_tokens()
    return Response(status_code=204)


async def revoke_tokens(request: Request) -> Response:
    """Every issued token is revoked."""
    _state(request).revoke_tokens()
    return Response(status_code=204)


async def clock(request: Request) -> JSONResponse:
    """``GET`` shows the simulated clock; ``POST {"speed": x}`` changes its acceleration."""
    state = _state(request)
    if request.method == "POST":
        body = await _optional_json(request)
        speed = body.get("speed")
        if (
            isinstance(speed, bool)
            or not isinstance(speed, int | float)
            or not 0 < speed <= 100_000
        ):
            raise bad_request("'speed' must be a number in (0, 100000].", field="speed")
        state.clock.set_speed(float(speed))
    return JSONResponse(
        {"speed": state.clock.speed, "now": state.clock.now(), "time": state.clock.iso()}
    )


_ANALYTICS_KNOBS = {
    "ingestionDelay": "ingestion_delay_s",
    "includeAttributes": "include_attributes",
    "fillerConversations": "filler_conversations",
}


async def analytics_settings(request: Request) -> JSONResponse:
    """``GET`` shows the conversation-details knobs; ``POST`` changes some of them.

    ``ingestionDelay`` (simulated seconds before a new call is visible), ``includeAttributes``
    (participants carry their ``attributes``) and ``fillerConversations`` (synthetic
    conversations added to every query's hits).
    """
    settings = _state(request).analytics
    if request.method == "POST":
        body = await _optional_json(request)
        for key, value in body.items():
            if key not in _ANALYTICS_KNOBS:
                raise bad_request(
                    f"Unknown analytics setting {key!r}; use {', '.join(_ANALYTICS_KNOBS)}.",
                    field=key,
                )
            if key == "includeAttributes":
                if not isinstance(value, bool):
                    raise bad_request("'includeAttributes' must be true or false.", field=key)
            elif key == "fillerConversations":
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not 0 <= value <= 100_000
                ):
                    raise bad_request(
                        "'fillerConversations' must be an integer in [0, 100000].", field=key
                    )
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise bad_request("'ingestionDelay' must be a number of seconds >= 0.", field=key)
        for key, value in body.items():
            setattr(settings, _ANALYTICS_KNOBS[key], value)
    return JSONResponse({key: getattr(settings, attr) for key, attr in _ANALYTICS_KNOBS.items()})


def admin_routes() -> list[Route]:
    """The admin API's routes (mounted only when ``EmulatorConfig.admin`` is on)."""
    return [
        Route("/_emulator/calls", list_calls, methods=["GET"]),
        Route("/_emulator/wrapups", list_wrapups, methods=["GET"]),
        Route("/_emulator/overlaps", overlaps, methods=["GET"]),
        Route("/_emulator/requests", request_counts, methods=["GET"]),
        Route("/_emulator/ratelimit", rate_windows, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/faults", add_fault, methods=["POST"]),
        Route("/_emulator/faults", list_faults, methods=["GET"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/faults/{faultId}", delete_fault, methods=["DELETE"]),
        Route("/_emulator/ledger", fault_ledger, methods=["GET"]),
        Route("/_emulator/tokens/expire", expire_tokens, methods=["POST"]),
        Route("/_emulator/tokens/revoke", revoke_tokens, methods=["POST"]),
        Route("/_emulator/clock", clock, methods=["GET", "POST"]),
        Route("/_emulator/analytics", analytics_settings, methods=["GET", "POST"]),
    ]
