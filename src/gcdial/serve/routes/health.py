"""``/healthz``, ``/readyz`` and ``/metrics``: what an orchestrator and an operator may ask.

Anonymous callers get a bare status, nothing that helps an attacker map the deployment (no
upstream URL, no connect error). A key with the ``admin`` or ``metrics`` scope gets the detail of
``/readyz`` and may read ``/metrics``.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gcdial.serve.principal import Principal
from gcdial.serve.problems import ApiProblem, ErrorBody, ErrorItem, problem_body
from gcdial.serve.routes.deps import ERRORS, Caller, MaybeCaller, Service

__all__ = ["router"]

router = APIRouter(tags=["ops"])


def _operator(caller: Principal | None) -> bool:
    return caller is not None and caller.may("metrics")


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    """Always ``ok`` while the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Genesys reachable, token valid, store writable (detail for admin/metrics keys)",
    responses={
        503: {"model": ErrorBody, "description": "Not ready"},
        401: ERRORS[401],
        429: ERRORS[429],
    },
)
async def readyz(caller: MaybeCaller, service: Service) -> Response:
    """``ready``, or a 503; which check failed and why only for an operator's key."""
    problems = await service.readiness()
    if not problems:
        return JSONResponse({"status": "ready"})
    if not _operator(caller):
        problem = ApiProblem(503, "not_ready", "Not ready.")
    else:
        problem = ApiProblem(
            503,
            "not_ready",
            "Not ready: " + "; ".join(f"{name}: {why}" for name, why in problems.items()),
            errors=[ErrorItem(path=name, message=why) for name, why in problems.items()],
        )
    return JSONResponse(problem_body(problem.detail), 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **ERRORS,
        200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"},
    },
    summary="Prometheus metrics (a key with the metrics or admin scope)",
)
async def metrics(caller: Caller, service: Service) -> Response:
    """The service's counters and gauges, in Prometheus' text format."""
    caller.need("metrics")
    m = service.metrics
    m.webhook_backlog.set(await service.db(service.store.outbox_backlog))
    budget = service.client.budget
    m.observe_rate_limited(budget.rate_limited_count)
    m.budget_remaining.set(-1 if budget.remaining is None else budget.remaining)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
