"""The service's HTTP API: one router per resource, each module with its named handlers.

Every route declares its caller (:mod:`gcdial.serve.routes.deps`): a Bearer key, or the page's
session cookie and CSRF token; what the caller may do is decided by
:class:`gcdial.serve.principal.Principal`. The page has no copies of these handlers.
"""

from fastapi import APIRouter

from gcdial.serve.routes import agents, calls, campaigns, dnc, events, health, review, webhooks

__all__ = ["ROUTERS"]

# Order matters once: review's /v1/campaigns/{id}/reassign before campaigns' /{action}.
ROUTERS: tuple[APIRouter, ...] = (
    calls.router,
    review.router,
    events.router,
    agents.router,
    campaigns.router,
    webhooks.router,
    dnc.router,
    health.router,
)
