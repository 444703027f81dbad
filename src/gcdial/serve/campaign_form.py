"""The multipart fields of a campaign upload, read once for ``create`` and ``preview`` alike.

(No ``from __future__ import annotations``: FastAPI reads the dependency's signature.)
"""

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form

from gcdial.campaign.settings import parse_duration
from gcdial.campaign.wrapup_rules import WrapupRules
from gcdial.errors import InputError
from gcdial.serve.problems import ApiProblem

__all__ = ["CampaignForm", "campaign_form"]


@dataclass(frozen=True)
class CampaignForm:
    """The upload's fields: the agents, a name, and the settings as the campaign stores them."""

    agents: tuple[str, ...]
    name: str | None
    settings: dict[str, Any]


def _seconds(text: str | None, field: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return parse_duration(text, option=field).total_seconds()
    except InputError as exc:
        raise ApiProblem(
            422, "invalid_request", exc.message, hint=exc.hint, path=f"form:{field}"
        ) from None


def _wrapup_rules(text: str | None) -> dict[str, Any] | None:
    """The rules' JSON, checked (a 422 naming the bad entry), in the form the campaign keeps."""
    if text is None or not text.strip():
        return None
    try:
        return WrapupRules.from_json(json.loads(text)).to_json()
    except ValueError:
        raise ApiProblem(
            422,
            "invalid_request",
            "wrapupRules is not JSON.",
            hint='Send an object like {"codes": {"Do not call": "dnc"}}.',
            path="form:wrapupRules",
        ) from None
    except InputError as exc:
        raise ApiProblem(
            422, "invalid_request", exc.message, hint=exc.hint, path="form:wrapupRules"
        ) from None


def campaign_form(
    agents: Annotated[
        str, Form(min_length=1, max_length=5000, description="Agents, comma-separated")
    ],
    name: Annotated[str | None, Form(max_length=100)] = None,
    phoneColumn: Annotated[str | None, Form(max_length=100)] = None,
    defaultCountry: Annotated[str | None, Form(pattern="^[A-Z]{2}$")] = None,
    window: Annotated[str | None, Form(max_length=40, description="HH:MM-HH:MM")] = None,
    maxAttempts: Annotated[int | None, Form(ge=1, le=20)] = None,
    concurrency: Annotated[int | None, Form(ge=1, le=1000)] = None,
    callerId: Annotated[str | None, Form(max_length=40)] = None,
    end: Annotated[str | None, Form(max_length=40)] = None,
    retryNoAnswer: Annotated[
        str | None, Form(max_length=20, description="Retry a no-answer after (90s, 10m, 1h)")
    ] = None,
    retryBusy: Annotated[
        str | None, Form(max_length=20, description="Retry a busy number after (90s, 10m, 1h)")
    ] = None,
    queueId: Annotated[
        str | None,
        Form(max_length=64, description="Queue to place the calls for: they carry wrap-up codes"),
    ] = None,
    wrapupRules: Annotated[
        str | None,
        Form(
            max_length=20_000,
            description='Wrap-up rules as JSON: {"default": "policy", "codes": {"Sale": "done", '
            '"Do not call": "dnc"}} (see docs/campaign.md)',
        ),
    ] = None,
    wrapupTimeout: Annotated[
        str | None,
        Form(max_length=20, description="How long to wait for a call's wrap-up (5m; 0: not)"),
    ] = None,
) -> CampaignForm:
    """The fields of ``POST /v1/campaigns`` and ``/v1/campaigns/preview`` (and the page's)."""
    listed = tuple(a.strip() for a in agents.split(",") if a.strip())
    if not listed:
        raise ApiProblem(
            422, "invalid_request", "agents: give at least one agent.", path="form:agents"
        )
    settings = {
        k: v
        for k, v in {
            "agents": list(listed),
            "phone_column": phoneColumn or None,
            "default_country": defaultCountry,
            "window": window or None,
            "max_attempts": maxAttempts,
            "concurrency": concurrency,
            "caller_id": callerId or None,
            "end": end or None,
            "retry_no_answer_s": _seconds(retryNoAnswer, "retryNoAnswer"),
            "retry_busy_s": _seconds(retryBusy, "retryBusy"),
            "queue_id": queueId.strip() if queueId and queueId.strip() else None,
            "wrapup_rules": _wrapup_rules(wrapupRules),
            "wrapup_timeout_s": _seconds(wrapupTimeout, "wrapupTimeout"),
        }.items()
        if v is not None
    }
    return CampaignForm(agents=listed, name=name or None, settings=settings)
