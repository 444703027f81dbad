"""Settings of ``gcdial serve`` (the service's own, apart from gcdial's Genesys settings)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S
from gcdial.campaign.csvinput import is_valid_time_zone
from gcdial.campaign.rules import CallingWindow, Rules, UnknownZone
from gcdial.config import default_config_dir
from gcdial.errors import ConfigError, InputError

__all__ = [
    "CALLING_WINDOW_ENV",
    "DEFAULT_CALLING_WINDOW",
    "DEFAULT_WEBHOOK_SCHEDULE",
    "MAX_IDEMPOTENCY_TTL_S",
    "MIN_IDEMPOTENCY_TTL_S",
    "STORE_ENV",
    "ServeConfig",
    "default_campaigns_dir",
    "default_store_path",
    "origin_of",
]

STORE_ENV = "GCDIAL_SERVE_STORE"
CALLING_WINDOW_ENV = "GCDIAL_SERVE_CALLING_WINDOW"
DEFAULT_CALLING_WINDOW = "08:00-21:00"
DAY_S = 86_400.0
MIN_IDEMPOTENCY_TTL_S = DAY_S
MAX_IDEMPOTENCY_TTL_S = 7 * DAY_S
# Retry delays after each failed delivery: about 26 hours in all, then the delivery is dead.
DEFAULT_WEBHOOK_SCHEDULE: tuple[float, ...] = (
    5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 36000,
)  # fmt: skip


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL (lower case, default port dropped), or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$GCDIAL_SERVE_STORE`` or ``serve.sqlite3`` in gcdial's config directory."""
    env = os.environ if environ is None else environ
    raw = env.get(STORE_ENV, "").strip()
    if raw:
        return Path(raw).expanduser()
    return default_config_dir(env) / "serve.sqlite3"


def _calling_window_setting() -> str:
    return os.environ.get(CALLING_WINDOW_ENV, "").strip() or DEFAULT_CALLING_WINDOW


def default_campaigns_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where an older gcdial kept the campaigns uploaded over HTTP: ``serve-campaigns`` next to
    the default store (refused at start while it holds any)."""
    return default_store_path(environ).parent / "serve-campaigns"


@dataclass(frozen=True)
class ServeConfig:
    """What the service does besides dialing: limits, timings, CORS, webhook retries."""

    idempotency_ttl_s: float = MIN_IDEMPOTENCY_TTL_S
    max_body_bytes: int = 64 * 1024
    cors_origins: tuple[str, ...] = ()
    sse_ping_s: float = 15.0
    sse_send_timeout_s: float = 30.0
    sse_poll_s: float = 1.0
    webhook_timeout_s: float = 10.0
    webhook_schedule: tuple[float, ...] = DEFAULT_WEBHOOK_SCHEDULE
    webhook_poll_s: float = 0.5
    webhook_lease_s: float = 60.0
    # http webhooks and internal addresses (loopback, private...): for local receivers only,
    # set by --sandbox or --allow-insecure-webhooks (see serve/webhook_targets.py).
    allow_insecure_webhooks: bool = False
    call_wait_timeout_s: float = 4 * 3600.0
    # How long a dial whose create-call answer was ambiguous may take to be resolved by evidence
    # before the API answers ``unknown`` (a CRM's retry meanwhile gets 409, then the answer).
    resolve_timeout_s: float = 20.0
    # After answering ``unknown``, the ladder goes on in the background until the analytics
    # settle time plus this much has passed since the lost answer, then leaves it for a person.
    # 0 turns it off. A restart ends it: what is still unknown then stays for a person.
    resolve_later_s: float = 600.0
    stale_claim_s: float = 300.0
    # The same for a campaign's attempts: how long the resolver may look for evidence before the
    # attempt is left for review (the run goes on meanwhile).
    campaign_resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S
    # Where an older gcdial kept the campaigns uploaded over HTTP (one folder each): refused at
    # start while it holds any (campaigns live in the store now).
    campaigns_dir: str | None = None
    # A replica runs a campaign while it holds the campaign's lease: renewed every third of
    # this, taken over by another replica at most this long (plus a third) after its holder died.
    campaign_lease_s: float = 30.0
    max_upload_bytes: int = 20 * 1024 * 1024
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    # Agents' presence and routing status come over the notifications channel; the topic names
    # are UNCONFIRMED by the contract, hence a setting ({id} is the user id). Empty: poll only.
    presence_topics: tuple[str, ...] = ("v2.users.{id}.presence", "v2.users.{id}.routingStatus")
    # How often the page re-reads agents when the notifications channel is down.
    presence_poll_s: float = 15.0
    # An agent's readiness (station, presence, routing status) as read for pages and
    # GET /v1/agents is shared by every reader for this long; a presence change renews it at once.
    agent_cache_s: float = 10.0
    # The org's queues and each queue's members (GET /v1/queues, GET /v1/agents?queue=) are
    # read from Genesys at most once per this long per replica, shared by every reader.
    queue_cache_s: float = 60.0
    # How often an open event stream asks again whether its key (or page session) is still
    # valid, events or not: a revocation or a sign-out ends the stream within this.
    credential_check_s: float = 1.0
    # The Genesys request budget is kept in the store, one per OAuth client, for every replica
    # (gcdial.serve.budget); a replica takes up to this many tokens per store round trip. Off
    # (shared_budget=False), each process keeps its own budget, as the library does: only for a
    # single process that is the OAuth client's only user.
    shared_budget: bool = True
    budget_batch: int = 8
    # Agents sign in with Genesys Cloud (authorization code + PKCE) through this OAuth client of
    # the org (a "Code Authorization" client whose redirect URI is public_url +
    # /auth/genesys/callback). None: agent sign-in is off, only API keys work.
    signin_client_id: str | None = None
    # Only for a client registered with a secret; never logged, never shown.
    signin_client_secret: str | None = field(default=None, repr=False)
    # The service's URL as browsers reach it (behind a TLS proxy: the proxy's https URL); the
    # redirect URI is built from it. None: the URL each request came to.
    public_url: str | None = None
    # How long an agent's page session lasts.
    agent_session_s: float = 8 * 3600.0
    # The CRM pages (origins, e.g. https://crm.example.com) allowed to use widget.js: CORS,
    # frame-ancestors and the widget token's origin check all read this list.
    widget_origins: tuple[str, ...] = ()
    # A widget token may dial for this long after the sign-in...
    widget_session_s: float = 15 * 60.0
    # ...and, read-only, follow the calls it placed for this much longer (a call outlives it).
    widget_watch_s: float = 3600.0
    # The calling window of single calls (POST /v1/calls, the page), in the contact's local
    # time (the zones of the number): HH:MM-HH:MM, 00:00-24:00 for any hour. From
    # $GCDIAL_SERVE_CALLING_WINDOW or --calling-window; a campaign keeps its own window.
    calling_window: str = field(default_factory=_calling_window_setting)
    # A number with no known time zone (+800...): "skip" refuses it, "any" dials it at any hour;
    # or give a fallback zone whose local time counts for such numbers.
    unknown_zone: str = "skip"
    fallback_zone: str | None = None

    @property
    def signin_enabled(self) -> bool:
        """Whether agents may sign in with Genesys Cloud."""
        return bool(self.signin_client_id)

    @cached_property
    def call_rules(self) -> Rules:
        """The calling rules of single calls (the do-not-call list is the store's)."""
        return Rules(
            window=CallingWindow.parse(self.calling_window),
            unknown_zone=UnknownZone(self.unknown_zone),
            fallback_zone=self.fallback_zone,
        )

    def __post_init__(self) -> None:
        for origin in self.widget_origins:
            if origin_of(origin) != origin:
                raise ConfigError(
                    f"widget origin {origin!r} is not an origin",
                    hint="Write scheme://host[:port] with nothing after it, e.g. "
                    "https://crm.example.com.",
                )
        if self.public_url is not None and not re.fullmatch(r"https?://[^/?#\s]+", self.public_url):
            raise ConfigError(
                f"public URL {self.public_url!r} is not a base URL",
                hint="Write scheme://host[:port] with no path, e.g. https://gcdial.example.com.",
            )
        if min(self.widget_session_s, self.widget_watch_s, self.agent_session_s) <= 0:
            raise ConfigError("session lifetimes must be positive")
        try:
            CallingWindow.parse(self.calling_window)
        except InputError as exc:
            raise ConfigError(f"calling window: {exc.message}", hint=exc.hint) from None
        if self.unknown_zone not in ("skip", "any"):
            raise ConfigError(
                f"unknown-zone policy {self.unknown_zone!r} does not exist",
                hint="Use skip (refuse numbers with no known time zone) or any.",
            )
        if self.fallback_zone is not None and not is_valid_time_zone(self.fallback_zone):
            raise ConfigError(
                f"unknown fallback time zone {self.fallback_zone!r}",
                hint="Use an IANA zone name such as America/New_York.",
            )
        if not MIN_IDEMPOTENCY_TTL_S <= self.idempotency_ttl_s <= MAX_IDEMPOTENCY_TTL_S:
            raise ConfigError(
                f"idempotency key lifetime {self.idempotency_ttl_s:g} s is out of range",
                hint="Keep idempotency keys between 24 hours and 7 days.",
            )
        if not 0.3 <= self.campaign_lease_s <= 3600:
            raise ConfigError(
                f"the campaign lease {self.campaign_lease_s:g} s is out of range",
                hint="Give between 0.3 and 3600 seconds (30 by default).",
            )
        if self.max_body_bytes < 1024:
            raise ConfigError("the request size limit must be at least 1024 bytes")
        if not 1 <= self.budget_batch <= 100:
            raise ConfigError(
                f"the budget batch {self.budget_batch} is out of range",
                hint="Take between 1 and 100 tokens per store round trip.",
            )
