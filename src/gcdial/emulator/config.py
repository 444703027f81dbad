"""``EmulatorConfig``: every knob of the local Genesys Cloud, with the defaults of the real one."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gcdial._shared import DEFAULT_RATE_LIMIT_PER_MINUTE, NOTIFICATION_CHANNEL_LIMIT
from gcdial.emulator.faults import ROUTE_NAMES, FaultSpec


class EmulatorConfig(BaseModel):
    """Settings of one emulator instance; unknown or out-of-range values are rejected at start-up.

    Durations ending in ``_s`` are simulated seconds (scaled by ``speed``), except
    ``rate_limit_window_s``, which is real seconds like the ``Retry-After`` it produces.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    speed: float = Field(default=1.0, gt=0, le=100_000)
    fixture: Path | None = None
    admin: bool = False
    token_lifetime_s: float = Field(default=86399, gt=0)
    rate_limit_per_minute: int = Field(default=DEFAULT_RATE_LIMIT_PER_MINUTE, ge=1)
    rate_limit_buckets: dict[str, int] = Field(default_factory=dict)
    rate_limit_window_s: float = Field(default=60.0, gt=0)
    # Whose requests one window counts is UNCONFIRMED: the contract says "per client-credentials
    # token"; issue 17 speaks of one budget per OAuth client. "token" counts each access token on
    # its own; "client" counts every token of one OAuth client together (replicas of a service
    # each hold their own token of the same client).
    rate_limit_scope: Literal["token", "client"] = "token"
    customer_purpose: Literal["external", "customer"] = "external"
    on_behalf_accepts_client_credentials: bool = True
    heartbeat_interval_s: float = Field(default=30.0, gt=0)
    channel_lifetime_s: float = Field(default=86400.0, gt=0)
    channel_limit: int = Field(default=NOTIFICATION_CHANNEL_LIMIT, ge=1)
    channel_limit_mode: Literal["replace_oldest", "reject"] = "replace_oldest"
    socket_closing_lead_s: float = Field(default=60.0, ge=0)
    agent_answer_s: float = Field(default=2.0, ge=0)
    ring_s: float = Field(default=4.0, ge=0)
    no_answer_s: float = Field(default=30.0, ge=0)
    agent_no_answer_s: float = Field(default=15.0, ge=0)
    no_answer_disconnect_type: Literal["inactivity", "other", "system", "endpoint"] = "inactivity"
    analytics_ingestion_delay_s: float = Field(default=90.0, ge=0)
    analytics_include_attributes: bool = True
    analytics_filler_conversations: int = Field(default=0, ge=0, le=100_000)
    wrapup_after_s: float = Field(default=10.0, ge=0)
    wrapup_prompt: Literal[
        "mandatory", "optional", "agentRequested", "timeout", "forcedTimeout"
    ] = "mandatory"
    wrapup_timeout_s: float = Field(default=60.0, ge=0)
    non_acd_wrapup: bool = False
    # What Genesys does with a second call for an agent whose station has a live call is
    # UNCONFIRMED: "allow" creates it (the agent's phone rings again), "reject" answers 400.
    # Either way the overlap ledger (GET /_emulator/overlaps) records every such create.
    busy_agent_calls: Literal["allow", "reject"] = "allow"
    # How the login host refuses an inactive user on its sign-in form is UNCONFIRMED:
    # "redirect" sends the browser back to the client with error=access_denied and a
    # description; "page" keeps the user on the sign-in form, saying why.
    signin_inactive_user: Literal["redirect", "page"] = "redirect"
    faults: tuple[FaultSpec, ...] = ()
    seed: int = 0

    @field_validator("rate_limit_buckets")
    @classmethod
    def _known_buckets(cls, buckets: dict[str, int]) -> dict[str, int]:
        for name, limit in buckets.items():
            if name not in ROUTE_NAMES:
                raise ValueError(f"unknown bucket {name!r}; use one of {', '.join(ROUTE_NAMES)}")
            if limit < 1:
                raise ValueError(f"bucket {name!r}: the limit must be at least 1")
        return buckets
