"""``POST /api/v2/analytics/conversations/details/query``: calls as the analytics store sees them.

A call shows up here only ``ingestion_delay_s`` simulated seconds after it was created (real
Genesys ingests with a delay too; how long is UNCONFIRMED). The body is a ``ConversationQuery``
and the answer an ``AnalyticsConversationQueryResponse``, with the official JSON names.

Filters: every entry of ``segmentFilters`` and of ``conversationFilters`` must hold (they are
ANDed); a segment filter holds when one session (with its participant's fields) satisfies it.
A filter combines its ``predicates`` and ``clauses`` with its ``type`` (``and``/``or``); a clause
combines its predicates the same way. Predicates are ``dimension`` predicates with the operators
``matches`` (exact string), ``exists`` and ``notExists``.
"""

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from gcdial.emulator.auth import require_token
from gcdial.emulator.clock import iso_utc
from gcdial.emulator.errorbody import ApiError, bad_request
from gcdial.emulator.requestbody import read_json
from gcdial.emulator.state import Call, EmulatorState, Participant
from gcdial.emulator.users import HOME_DIVISION
from gcdial.emulator.wrapup import SKIPPED_CODE

DETAIL_PERMISSIONS = (
    "analytics:conversationDetail:view",
    "analytics:agentConversationDetail:view",
)
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
SEGMENT_DIMENSIONS = frozenset(
    {
        "ani",
        "direction",
        "disconnectType",
        "dnis",
        "mediaType",
        "participantId",
        "participantName",
        "purpose",
        "queueId",
        "segmentType",
        "sessionId",
        "userId",
        "wrapUpCode",
    }
)
CONVERSATION_DIMENSIONS = frozenset({"conversationId", "originatingDirection"})
_NAMESPACE = uuid.UUID("5b0c6a5e-2f43-4c1f-9d0e-3a3f0e9c7a21")
_FILLER_NUMBER = "tel:+15550100{:03d}"
_FILLER_SPACING = timedelta(milliseconds=1)

Context = dict[str, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Predicate(_Strict):
    """``SegmentDetailQueryPredicate`` / ``ConversationDetailQueryPredicate``."""

    type: Literal["dimension", "property", "metric"] = "dimension"
    dimension: str | None = None
    propertyType: str | None = None
    property: str | None = None
    metric: str | None = None
    operator: Literal["matches", "exists", "notExists"] = "matches"
    value: str | None = None
    range: dict[str, Any] | None = None


class Clause(_Strict):
    """``SegmentDetailQueryClause`` / ``ConversationDetailQueryClause``."""

    type: Literal["and", "or"]
    predicates: list[Predicate] = Field(min_length=1)


class QueryFilter(_Strict):
    """``SegmentDetailQueryFilter`` / ``ConversationDetailQueryFilter``."""

    type: Literal["and", "or"]
    clauses: list[Clause] | None = None
    predicates: list[Predicate] | None = None


class Paging(_Strict):
    """``PagingSpec``."""

    pageSize: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    pageNumber: int = Field(default=1, ge=1)


class ConversationQuery(_Strict):
    """The request body; fields the emulator does not evaluate must be absent or empty."""

    conversationFilters: list[QueryFilter] | None = None
    segmentFilters: list[QueryFilter] | None = None
    evaluationFilters: list[Any] | None = None
    mediaEndpointStatFilters: list[Any] | None = None
    surveyFilters: list[Any] | None = None
    resolutionFilters: list[Any] | None = None
    order: Literal["asc", "desc"] = "asc"
    orderBy: Literal["conversationStart", "conversationEnd", "segmentStart", "segmentEnd"] = (
        "conversationStart"
    )
    interval: str
    aggregations: list[Any] | None = None
    paging: Paging | None = None


def parse_query(raw: Any) -> ConversationQuery:
    """Validate a ``ConversationQuery``; each problem is a 400 naming its JSON path."""
    if not isinstance(raw, dict):
        raise bad_request("The request body must be a JSON object (ConversationQuery).")
    try:
        query = ConversationQuery.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":
            message = f"Unrecognized field {field!r} in ConversationQuery."
            raise bad_request(message, field=field, error_code="unrecognized.field") from None
        if first["type"] == "missing":
            raise bad_request(f"{field} is required.", field=field) from None
        raise bad_request(f"Invalid value for {field}: {first['msg']}.", field=field) from None
    for name in (
        "evaluationFilters",
        "mediaEndpointStatFilters",
        "surveyFilters",
        "resolutionFilters",
        "aggregations",
    ):
        if getattr(query, name):
            raise bad_request(
                f"{name}: the emulator does not evaluate these; leave it out.",
                field=name,
                error_code="not.emulated",
            )
    _check_filters(query.segmentFilters, "segmentFilters", SEGMENT_DIMENSIONS)
    _check_filters(query.conversationFilters, "conversationFilters", CONVERSATION_DIMENSIONS)
    return query


def _check_filters(filters: list[QueryFilter] | None, where: str, known: frozenset[str]) -> None:
    for index, query_filter in enumerate(filters or []):
        place = f"{where}[{index}]"
        if not query_filter.predicates and not query_filter.clauses:
            raise bad_request(f"{place} needs predicates or clauses.", field=place)
        for p_index, predicate in enumerate(query_filter.predicates or []):
            _check_predicate(predicate, f"{place}.predicates[{p_index}]", known)
        for c_index, clause in enumerate(query_filter.clauses or []):
            for p_index, predicate in enumerate(clause.predicates):
                _check_predicate(
                    predicate, f"{place}.clauses[{c_index}].predicates[{p_index}]", known
                )


def _check_predicate(predicate: Predicate, place: str, known: frozenset[str]) -> None:
    if predicate.type != "dimension":
        raise bad_request(
            f"{place}.type: the emulator evaluates only dimension predicates.",
            field=f"{place}.type",
            error_code="not.emulated",
        )
    if predicate.dimension not in known:
        raise bad_request(
            f"{place}.dimension: {predicate.dimension!r} is not supported here; "
            f"use one of {', '.join(sorted(known))}.",
            field=f"{place}.dimension",
        )
    if predicate.operator == "matches" and predicate.value is None:
        raise bad_request(
            f"{place}.value is required with operator 'matches'.", field=f"{place}.value"
        )


def parse_interval(interval: str) -> tuple[datetime, datetime]:
    """``start/end`` (ISO 8601; a time without an offset is UTC) or a 400 naming ``interval``."""
    start_text, sep, end_text = interval.partition("/")
    try:
        if not sep:
            raise ValueError
        start, end = (_parse_time(start_text), _parse_time(end_text))
    except ValueError:
        raise bad_request(
            f"interval {interval!r} is not valid: use ISO 8601 'start/end', e.g. "
            "2026-11-30T10:00:00.000Z/2026-11-30T10:10:00.000Z.",
            field="interval",
        ) from None
    if end <= start:
        raise bad_request(f"interval {interval!r} ends before it starts.", field="interval")
    return start, end


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _analytics_disconnect(kind: str) -> str:
    """The analytics spelling of a conversation ``disconnectType`` (``transport.failure`` →
    ``transportFailure``)."""
    head, *rest = kind.split(".")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _segments(participant: Participant, *, opening: str) -> list[dict[str, Any]]:
    """Segments of one leg: ``opening`` (alert/dialing) until connected, then ``interact``."""
    segments: list[dict[str, Any]] = [
        {"segmentStart": participant.start_time, "segmentType": opening}
    ]
    if participant.connected_time is not None:
        segments[0]["segmentEnd"] = participant.connected_time
        segments.append({"segmentStart": participant.connected_time, "segmentType": "interact"})
    last = segments[-1]
    if participant.end_time is not None:
        last["segmentEnd"] = participant.end_time
        if participant.disconnect_type is not None:
            last["disconnectType"] = _analytics_disconnect(participant.disconnect_type)
        if participant.error_info is not None:
            last["errorCode"] = participant.error_info["code"]
    if participant.start_acw_time is not None:
        segments.append(_wrapup_segment(participant, participant.start_acw_time))
    if participant.queue is not None:
        for segment in segments:
            segment["queueId"] = participant.queue["id"]
    return segments


def _wrapup_segment(participant: Participant, start: str) -> dict[str, Any]:
    """The agent's after-call work: open until it ends, then with the code, note and tags."""
    segment: dict[str, Any] = {"segmentStart": start, "segmentType": "wrapup"}
    if participant.end_acw_time is not None:
        segment["segmentEnd"] = participant.end_acw_time
    wrapup = participant.wrapup
    if participant.wrapup_skipped:
        segment["wrapUpCode"] = SKIPPED_CODE
    if wrapup is not None:
        segment["wrapUpCode"] = wrapup["code"]
        if wrapup.get("notes"):
            segment["wrapUpNote"] = wrapup["notes"]
        if wrapup.get("tags"):
            segment["wrapUpTags"] = list(wrapup["tags"])
    return segment


def _participant_json(
    call: Call, participant: Participant, *, include_attributes: bool
) -> dict[str, Any]:
    is_agent = participant.purpose in ("agent", "user")
    session: dict[str, Any] = {
        "sessionId": str(uuid.uuid5(_NAMESPACE, participant.id)),
        "mediaType": "voice",
        "direction": "outbound",
        "dnis": f"tel:{call.phone_number}",
        "provider": "Edge",
        "segments": _segments(participant, opening="alert" if is_agent else "dialing"),
    }
    if participant.wrapup_skipped:
        session["acwSkipped"] = True
    caller_id = call.body.get("callerId")
    if isinstance(caller_id, str):
        session["ani"] = caller_id if caller_id.startswith("tel:") else f"tel:{caller_id}"
    body: dict[str, Any] = {
        "participantId": participant.id,
        "purpose": participant.purpose,
        "sessions": [session],
    }
    if participant.name is not None:
        body["participantName"] = participant.name
    if participant.user is not None:
        body["userId"] = participant.user["id"]
    if include_attributes and participant.attributes:
        body["attributes"] = dict(participant.attributes)
    return body


def conversation_json(
    state: EmulatorState, call: Call, *, include_attributes: bool
) -> dict[str, Any]:
    """One ``AnalyticsConversation``."""
    body: dict[str, Any] = {
        "conversationId": call.id,
        "conversationStart": call.created_at,
        "originatingDirection": "outbound",
        "divisionIds": [HOME_DIVISION["id"]],
        "participants": [
            _participant_json(call, p, include_attributes=include_attributes)
            for p in call.participants
        ],
    }
    if call.over:
        ends = [p.end_time for p in call.participants if p.end_time is not None]
        body["conversationEnd"] = max(ends)
    return body


def filler_json(index: int, start: datetime, user_id: str | None) -> dict[str, Any]:
    """A synthetic ended conversation that stands for some other traffic of the agent."""
    conversation_id = str(uuid.uuid5(_NAMESPACE, f"filler-{index}"))
    when = iso_utc(start)
    agent_id = user_id or str(uuid.uuid5(_NAMESPACE, "filler-agent"))

    def leg(name: str, purpose: str, opening: str) -> dict[str, Any]:
        participant: dict[str, Any] = {
            "participantId": str(uuid.uuid5(_NAMESPACE, f"{conversation_id}-{name}")),
            "participantName": name,
            "purpose": purpose,
            "sessions": [
                {
                    "sessionId": str(uuid.uuid5(_NAMESPACE, f"{conversation_id}-{name}-s")),
                    "mediaType": "voice",
                    "direction": "outbound",
                    "dnis": _FILLER_NUMBER.format(index % 1000),
                    "provider": "Edge",
                    "segments": [
                        {
                            "segmentStart": when,
                            "segmentEnd": when,
                            "segmentType": opening,
                            "disconnectType": "endpoint",
                        }
                    ],
                }
            ],
        }
        if purpose == "agent":
            participant["userId"] = agent_id
        return participant

    return {
        "conversationId": conversation_id,
        "conversationStart": when,
        "conversationEnd": when,
        "originatingDirection": "outbound",
        "divisionIds": [HOME_DIVISION["id"]],
        "participants": [
            leg("Filler Agent", "agent", "alert"),
            leg("Filler", "external", "dialing"),
        ],
    }


def _session_contexts(conversation: dict[str, Any]) -> Iterable[Context]:
    for participant in conversation["participants"]:
        for session in participant["sessions"]:
            context: Context = {
                key: participant[key]
                for key in ("participantId", "participantName", "purpose", "userId")
                if key in participant
            }
            for key in ("ani", "dnis", "direction", "mediaType", "sessionId"):
                if key in session:
                    context[key] = session[key]
            for segment in session["segments"]:
                yield {
                    **context,
                    **{
                        key: segment[key]
                        for key in ("segmentType", "disconnectType", "queueId", "wrapUpCode")
                        if key in segment
                    },
                }


def _predicate_holds(predicate: Predicate, context: Context) -> bool:
    assert predicate.dimension is not None
    present = predicate.dimension in context
    if predicate.operator == "exists":
        return present
    if predicate.operator == "notExists":
        return not present
    return present and context[predicate.dimension] == predicate.value


def _combine(kind: str, results: Iterable[bool]) -> bool:
    return all(results) if kind == "and" else any(results)


def _filter_holds(query_filter: QueryFilter, context: Context) -> bool:
    results = [_predicate_holds(p, context) for p in query_filter.predicates or []]
    results += [
        _combine(c.type, (_predicate_holds(p, context) for p in c.predicates))
        for c in query_filter.clauses or []
    ]
    return _combine(query_filter.type, results)


def matches(query: ConversationQuery, conversation: dict[str, Any]) -> bool:
    """Whether ``conversation`` passes every conversation filter and every segment filter."""
    conversation_context: Context = {
        "conversationId": conversation["conversationId"],
        "originatingDirection": conversation["originatingDirection"],
    }
    if not all(_filter_holds(f, conversation_context) for f in query.conversationFilters or []):
        return False
    contexts = list(_session_contexts(conversation))
    return all(
        any(_filter_holds(f, context) for context in contexts) for f in query.segmentFilters or []
    )


def _wanted_user(query: ConversationQuery) -> str | None:
    """The first ``userId`` a segment filter matches on, so fillers look like that agent's."""
    for query_filter in query.segmentFilters or []:
        predicates = list(query_filter.predicates or [])
        for clause in query_filter.clauses or []:
            predicates += clause.predicates
        for predicate in predicates:
            if predicate.dimension == "userId" and predicate.value is not None:
                return predicate.value
    return None


def run_query(state: EmulatorState, query: ConversationQuery) -> dict[str, Any]:
    """The ``AnalyticsConversationQueryResponse`` for ``query`` at the current simulated time."""
    start, end = parse_interval(query.interval)
    settings = state.analytics
    now = state.clock.now()
    found: list[tuple[datetime, dict[str, Any]]] = []
    for call in state.calls.values():
        if now < call.created_sim + settings.ingestion_delay_s:
            continue
        began = state.clock.moment(call.created_sim)
        if not start <= began < end:
            continue
        conversation = conversation_json(
            state, call, include_attributes=settings.include_attributes
        )
        if matches(query, conversation):
            found.append((began, conversation))
    user_id = _wanted_user(query)
    for index in range(settings.filler_conversations):
        began = min(start + _FILLER_SPACING * index, end - _FILLER_SPACING)
        found.append((began, filler_json(index, began, user_id)))
    key = _sort_key(query.orderBy)
    found.sort(key=lambda item: key(item[0], item[1]), reverse=query.order == "desc")
    paging = query.paging or Paging()
    first = (paging.pageNumber - 1) * paging.pageSize
    page = [conversation for _, conversation in found[first : first + paging.pageSize]]
    body: dict[str, Any] = {"totalHits": len(found)}
    if page:
        body["conversations"] = page
    return body


def _sort_key(order_by: str) -> Callable[[datetime, dict[str, Any]], tuple[str, str]]:
    def key(began: datetime, conversation: dict[str, Any]) -> tuple[str, str]:
        if order_by == "conversationEnd":
            # An ongoing conversation has no end yet: it sorts after every ended one.
            return (conversation.get("conversationEnd", "~"), conversation["conversationId"])
        return (iso_utc(began), conversation["conversationId"])

    return key


async def details_query(request: Request) -> JSONResponse:
    """``POST /api/v2/analytics/conversations/details/query``."""
    state: EmulatorState = request.app.state.emulator
    token = require_token(request, state)
    client = state.clients.get(token.client_id)
    if client is not None and not client.has_any(DETAIL_PERMISSIONS):
        raise ApiError(
            403,
            "missing.any.permissions",
            "Unable to perform the requested action. You must have at least one of the "
            f"following permissions assigned: {', '.join(DETAIL_PERMISSIONS)}.",
        )
    query = parse_query(await read_json(request))
    return JSONResponse(run_query(state, query))
