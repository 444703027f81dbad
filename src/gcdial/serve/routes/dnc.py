"""``/v1/dnc``: the service's do-not-call list (admin): list it by pages, add a number, take one
off, import many at once. Every single call and every campaign the service runs checks it.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gcdial.errors import InvalidPhoneNumberError
from gcdial.phone import to_e164
from gcdial.serve.call_views import iso
from gcdial.serve.cursor import decode_cursor, encode_cursor, filters_fingerprint
from gcdial.serve.models import DncAdd, DncEntryResource, DncImport, DncImported, DncPage
from gcdial.serve.principal import Principal
from gcdial.serve.problems import ApiProblem
from gcdial.serve.routes.deps import ERRORS, Caller, Service
from gcdial.serve.service_core import ServiceCore
from gcdial.serve.store import AuditEntry, DncEntry

__all__ = ["dnc_json", "router"]

router = APIRouter(tags=["do-not-call"])

_LIST = filters_fingerprint({"list": "dnc"})


def dnc_json(entry: DncEntry) -> dict[str, Any]:
    """A do-not-call entry as the API shows it."""
    return {
        "number": entry.number,
        "addedAt": iso(entry.added_at),
        "addedBy": entry.added_by,
        "reason": entry.reason,
    }


def _by(caller: Principal) -> str:
    return f"key:{caller.key.name}"


async def _audit(
    service: ServiceCore,
    caller: Principal,
    action: str,
    result: str,
    number: str | None,
    detail: str | None = None,
) -> None:
    """A change of the list is an audit line: who (key), what, which number."""
    entry = AuditEntry(
        at=service.clock(),
        api_key_id=caller.key.id,
        action=action,
        result=result,
        number=number,
        detail=detail,
    )
    await service.db(service.store.append_audit, entry)


@router.get("/v1/dnc", response_model=DncPage, responses=ERRORS)
async def list_dnc(
    caller: Caller,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000, description="The page size")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=500, description="The previous page's `next`, as given")
    ] = None,
) -> dict[str, Any]:
    """The do-not-call list, newest first, a page at a time (admin)."""
    caller.need("admin")
    key = await service.db(service.store.cursor_key)
    now = service.clock()
    before = decode_cursor(key, cursor, _LIST, now=now) if cursor is not None else None
    rows = await service.db(service.store.list_dnc, limit=limit + 1, before=before)
    page = rows[:limit]
    nxt = (
        encode_cursor(key, (page[-1].added_at, page[-1].number), _LIST, now=now)
        if len(rows) > limit
        else None
    )
    return {"entries": [dnc_json(entry) for entry in page], "next": nxt}


@router.post(
    "/v1/dnc",
    status_code=201,
    response_model=DncEntryResource,
    responses={
        **ERRORS,
        200: {"model": DncEntryResource, "description": "It was on the list already"},
    },
    summary="Put a number on the do-not-call list (admin); 200 if it was on it already",
)
async def add_dnc(body: DncAdd, caller: Caller, service: Service, response: Response) -> Any:
    """Add one number (kept in E.164); a number already listed keeps its first entry."""
    caller.need("admin")
    entry = DncEntry(body.number, service.clock(), _by(caller), body.reason or None)
    added = await service.db(service.store.add_dnc, [entry])
    await _audit(service, caller, "dnc_add", "added" if added else "already_listed", body.number)
    if not added:
        response.status_code = 200
        entry = (await service.db(service.store.dnc_listed, [body.number]))[body.number]
    return dnc_json(entry)


@router.post(
    "/v1/dnc/import",
    response_model=DncImported,
    responses=ERRORS,
    summary="Put many numbers on the list at once (admin): all or none",
)
async def import_dnc(body: DncImport, caller: Caller, service: Service) -> dict[str, int]:
    """Add every entry in one transaction; one bad number refuses the whole import (422 naming
    ``$.entries[N].number``) and nothing is added."""
    caller.need("admin")
    now = service.clock()
    by = _by(caller)
    unique = {e.number: DncEntry(e.number, now, by, e.reason or None) for e in body.entries}
    added = await service.db(service.store.add_dnc, list(unique.values()))
    await _audit(service, caller, "dnc_import", "imported", None, f"added {added} of {len(unique)}")
    return {"added": added, "alreadyListed": len(unique) - added}


@router.delete(
    "/v1/dnc/{number}",
    status_code=204,
    responses=ERRORS,
    summary="Take a number off the do-not-call list (admin)",
)
async def remove_dnc(
    number: Annotated[
        str, Path(min_length=1, max_length=40, description="E.164, e.g. +14155550100")
    ],
    caller: Caller,
    service: Service,
) -> Response:
    """Remove one number; 404 when it is not on the list."""
    caller.need("admin")
    try:
        e164 = to_e164(number, default_country="US")
    except InvalidPhoneNumberError as exc:
        raise ApiProblem(
            422, "invalid_number", exc.message, hint=exc.hint, path="path:number"
        ) from None
    if not await service.db(service.store.remove_dnc, e164):
        raise ApiProblem(404, "not_found", f"{e164} is not on the do-not-call list.")
    await _audit(service, caller, "dnc_remove", "removed", e164)
    return Response(status_code=204)
