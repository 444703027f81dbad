"""The transport: explicit timeouts, the retry policy, the shared rate budget and error mapping.

Every request to the Platform API goes through :class:`ApiTransport` (or its async twin). The retry
policy is a handful of pure functions (:func:`should_retry`, :func:`parse_retry_after`,
:func:`backoff_delay`) with named limits:

* idempotent requests (GET, PUT, the PATCH that disconnects a call) are retried after 429, 502,
  503, 504 and after connection errors and timeouts, honouring ``Retry-After``;
* a non-idempotent request (the create-call POST) is re-sent ONLY when the server provably did not
  act on it: a 429, or a connection that failed before the request went out. Any other failure
  after sending raises :class:`~gcdial.errors.RequestOutcomeUnknownError`, never a re-send, so a
  customer is never rung twice by accident; the create-call reads it as
  :class:`~gcdial.errors.CallOutcomeUnknownError`.

A :class:`RateBudget` is shared by every request and worker of one client (threads and asyncio
tasks alike): it follows the ``inin-ratelimit-*`` headers and, after a 429, pauses everyone until
``Retry-After`` instead of letting each worker hammer the API on its own schedule.
"""

from __future__ import annotations

import email.utils
import functools
import json as jsonlib
import logging
import math
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol

import httpx

from gcdial._shared import (
    CORRELATION_HEADER,
    RATELIMIT_ALLOWED_HEADER,
    RATELIMIT_COUNT_HEADER,
    RATELIMIT_RESET_HEADER,
    RETRY_AFTER_HEADER,
)
from gcdial._version import __version__
from gcdial.errors import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    GcdialError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestOutcomeUnknownError,
    ResponseFormatError,
    ServerError,
)
from gcdial.scrub import REDACTED, redact_error, scrub, scrub_shapes

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_TIMEOUT",
    "INITIAL_BACKOFF_S",
    "JITTER_FRACTION",
    "MAX_BACKOFF_S",
    "MAX_RATELIMIT_RESET_S",
    "MAX_RETRIES",
    "MAX_RETRY_AFTER_S",
    "POOL_TIMEOUT_S",
    "RATELIMIT_RESET_MARGIN_S",
    "READ_TIMEOUT_S",
    "RETRYABLE_STATUSES",
    "WINDOW_END_DOUBT_S",
    "WRITE_TIMEOUT_S",
    "ApiTransport",
    "AsyncApiTransport",
    "Budget",
    "BudgetWindow",
    "PreparedRequest",
    "RateBudget",
    "ServerClock",
    "SyncBridge",
    "async_sleep",
    "backoff_delay",
    "parse_json",
    "parse_retry_after",
    "prepare_request",
    "redact_headers",
    "request_was_sent",
    "should_retry",
]

logger = logging.getLogger("gcdial.http")

CONNECT_TIMEOUT_S: Final = 5.0
READ_TIMEOUT_S: Final = 30.0
WRITE_TIMEOUT_S: Final = 10.0
POOL_TIMEOUT_S: Final = 10.0
DEFAULT_TIMEOUT: Final = httpx.Timeout(
    connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S, write=WRITE_TIMEOUT_S, pool=POOL_TIMEOUT_S
)

MAX_RETRIES: Final = 3
INITIAL_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 8.0
JITTER_FRACTION: Final = 0.25
# A server asking for a longer wait than this is reported (RateLimitedError) rather than obeyed
# silently: blocking a script for minutes without a word is worse than failing with the reason.
MAX_RETRY_AFTER_S: Final = 60.0
# Genesys' rate-limit window is a minute; a reset further out than that is not believed.
MAX_RATELIMIT_RESET_S: Final = 60.0
# inin-ratelimit-reset is whole seconds, rounded up: a response received at t saying "n" proves
# the window ends by t + n, and the earliest such bound of a window is within a request's spacing
# of the true end (RateBudget.observe). This margin covers the rest: two clocks that tick at
# slightly different rates, and a server that rounds to nearest (UNCONFIRMED for Genesys).
RATELIMIT_RESET_MARGIN_S: Final = 0.1
# The reset is whole seconds rounded up, so a window may already have ended up to this long
# before its bound (received at + reset + margin). A request sent in that stretch may count in
# either window: it is counted in both.
WINDOW_END_DOUBT_S: Final = 1.0 + RATELIMIT_RESET_MARGIN_S
# How many past windows a RateBudget keeps in its history (BudgetWindow).
BUDGET_HISTORY: Final = 100
RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})

# Failures that happen before a single byte of the request leaves: connecting (TCP/TLS) failed,
# no pooled connection became free, or the URL cannot be sent at all. Only these make a re-send
# of a non-idempotent request safe.
_NEVER_SENT_ERRORS: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
_RETRYABLE_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

_EXCERPT_CHARS: Final = 120
_REDACTED: Final = REDACTED

JsonBody = Any


class Rng(Protocol):
    """Where backoff jitter comes from (``random.Random`` fits); injected in tests."""

    def random(self) -> float: ...


Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


async def async_sleep(seconds: float) -> None:
    """``asyncio.sleep``, the default async sleep of gcdial's clients and loops.

    asyncio is imported here, on first use, for start-up time: a program that runs no event loop
    (one ``gcdial call``, a script using :class:`gcdial.Client`) never imports it.
    """
    import asyncio

    await asyncio.sleep(seconds)


# Reading Genesys' ErrorBody answers into the exception tree of gcdial.errors.

_STATION_HINT = (
    "The agent has no phone station. The agent picks one in Genesys Cloud (Calls > Phone "
    "selector), or an admin assigns a default station under Admin > Telephony > Phone Management; "
    "WebRTC phones must allow placing calls with another app."
)
_PERMISSION_HINT = (
    "The OAuth client (or user) lacks a permission: give its role conversation:call:add, or "
    "conversation:agentlessCall:add for calls placed on behalf of an agent (Admin > People & "
    "Permissions > Roles, then assign the role under Admin > Integrations > OAuth > Roles)."
)
_ROLE_PLACES = (
    "(Admin > People & Permissions > Roles, then assign the role under Admin > Integrations > "
    "OAuth > Roles)."
)
_REQUEST_PERMISSION_HINT = (
    "The OAuth client (or user) lacks a permission this request needs: give its role the one "
    f"Genesys names {_ROLE_PLACES}"
)
# The permission a refused request needs, by the path it asked for (the create-call's own are
# _PERMISSION_HINT's): a hint naming another request's permission sends the user the wrong way.
_PERMISSION_BY_PATH: tuple[tuple[str, str], ...] = (
    ("/api/v2/users", "directory:user:view"),
    (
        "/api/v2/analytics/conversations",
        "analytics:conversationDetail:view (or analytics:agentConversationDetail:view)",
    ),
)


def _permission_hint_for(url: str) -> str:
    path = httpx.URL(url).path
    if "/conversations/calls" in path:
        return _PERMISSION_HINT
    for prefix, permission in _PERMISSION_BY_PATH:
        if path.startswith(prefix):
            return (
                f"The OAuth client (or user) lacks a permission this request needs, likely "
                f"{permission}: give it to the client's role {_ROLE_PLACES}"
            )
    return _REQUEST_PERMISSION_HINT


_EXPIRED_HINT = (
    "The access token is missing, expired or revoked. A client-credentials token is renewed "
    "automatically; for a user token run `gcdial login` again."
)

_HINTS_BY_CODE: Mapping[str, str] = {
    "not.a.user": (
        "Client credentials cannot use this endpoint: use the on-behalf route (setting "
        "call_route = on_behalf) or a user token (`gcdial login`, call_route = user)."
    ),
    "conversation.error.no.user.station": _STATION_HINT,
    "too.many.create.conversation.parameters": (
        "Give exactly one destination (a phone number, a queue or a user), not several."
    ),
    "missing.permissions": _PERMISSION_HINT,
    "missing.any.permissions": _PERMISSION_HINT,
    "not.authorized": _PERMISSION_HINT,
    "bad.credentials": _EXPIRED_HINT,
    "authentication.required": _EXPIRED_HINT,
    "too.many.requests": (
        "The rate limit (by default 300 requests a minute per token) was hit; gcdial waits for "
        "Retry-After on its own. Lower the concurrency or pacing if it keeps happening."
    ),
    "not.found": (
        "Check the id: the user or conversation may not exist, or belongs to an org in another "
        "region."
    ),
}

_HINTS_BY_STATUS: Mapping[int, str] = {
    401: _EXPIRED_HINT,
    403: _PERMISSION_HINT,
    404: _HINTS_BY_CODE["not.found"],
    429: _HINTS_BY_CODE["too.many.requests"],
    500: (
        "Genesys Cloud had an internal error. If it persists, give Genesys support the contextId."
    ),
    502: "Genesys Cloud is temporarily unreachable (bad gateway); try again in a minute.",
    503: (
        "Genesys Cloud is temporarily unavailable; try again in a minute, and check "
        "https://status.mypurecloud.com if it persists."
    ),
    504: "Genesys Cloud timed out (gateway timeout); try again in a minute.",
}

_CLASS_BY_STATUS: Mapping[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}


def hint_for(status: int, code: str | None) -> str | None:
    """Return what the user should do about an API error, picked by Genesys ``code`` then status."""
    if code and code in _HINTS_BY_CODE:
        return _HINTS_BY_CODE[code]
    if status in _HINTS_BY_STATUS:
        return _HINTS_BY_STATUS[status]
    if status >= 500:
        return _HINTS_BY_STATUS[500]
    return None


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name, from httpx.Headers or any plain mapping."""
    getter = getattr(headers, "get_list", None)
    if callable(getter):  # httpx.Headers: already case-insensitive
        values: list[str] = getter(name)
        return values[0] if values else None
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _str_field(body: object, name: str) -> str | None:
    if isinstance(body, Mapping):
        value = body.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def retry_after_seconds(raw: str | None, *, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After`` as seconds or as an HTTP date; None when absent or unusable."""
    if raw is None or not raw.strip():
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _permission_names(body: object) -> str | None:
    """Name the missing permissions when Genesys lists them in ``messageParams``."""
    if not isinstance(body, Mapping):
        return None
    params = body.get("messageParams")
    if not isinstance(params, Mapping):
        return None
    names = [str(v) for v in params.values() if isinstance(v, str) and ":" in v]
    return ", ".join(names) or None


def api_error_from_response(
    status: int,
    body: object,
    headers: Mapping[str, str],
    *,
    method: str | None = None,
    url: str | None = None,
) -> ApiError:
    """Build the right ApiError subclass for an error response, reading ErrorBody defensively.

    ``body`` is the parsed JSON (any shape, or None); ``headers`` the response headers.
    """
    code = _str_field(body, "code")
    message = (
        _str_field(body, "messageWithParams")
        or _str_field(body, "message")
        or f"HTTP {status} with no error message"
    )
    hint = hint_for(status, code)
    if hint == _PERMISSION_HINT and url is not None:
        hint = _permission_hint_for(url)  # the create-call's permissions are not every request's
    if code in {"missing.permissions", "missing.any.permissions"}:
        missing = _permission_names(body)
        if missing:
            hint = f"Missing: {missing}. {hint}"
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "context_id": _str_field(body, "contextId"),
        "correlation_id": header_value(headers, CORRELATION_HEADER),
        "hint": hint,
        "body": body,
        "method": method,
        "url": url,
    }
    if status == 429:
        retry_after = retry_after_seconds(header_value(headers, RETRY_AFTER_HEADER))
        return RateLimitedError(message, retry_after=retry_after, **common)
    cls = _CLASS_BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ApiError
    return cls(message, **common)


@functools.cache
def tls_context(verify: bool) -> ssl.SSLContext:
    """The TLS context every gcdial client shares: the certificate store is read once per process
    instead of once per ``httpx.Client`` (about 40 ms each: it is most of a call's start-up)."""
    return httpx.create_ssl_context(verify=verify)


def tls_for(url: str, verify: bool) -> ssl.SSLContext:
    """The TLS context for a client whose requests go to ``url``. A plain-http base URL (allowed
    on loopback only: the emulator) never uses TLS, so the certificate store is not read for it."""
    return tls_context(verify and not url.lower().startswith("http://"))


def request_was_sent(error: BaseException) -> bool:
    """Whether the request may have reached the server before ``error`` failed it."""
    return not isinstance(error, _NEVER_SENT_ERRORS)


def should_retry(
    *,
    idempotent: bool,
    attempt: int,
    status: int | None = None,
    error: BaseException | None = None,
    max_retries: int = MAX_RETRIES,
) -> bool:
    """Whether to send again after attempt ``attempt`` (0-based) ended with ``status`` or ``error``.

    Idempotent requests retry 429/502/503/504, timeouts and connection errors. Non-idempotent ones
    retry only a 429 or an error that provably happened before the request went out.
    """
    if attempt >= max_retries:
        return False
    if status is not None:
        if idempotent:
            return status in RETRYABLE_STATUSES
        return status == 429
    if error is not None:
        if not isinstance(error, _RETRYABLE_ERRORS):
            return False
        return idempotent or not request_was_sent(error)
    return False


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait per ``Retry-After`` (seconds or an HTTP date); None if absent or junk."""
    return retry_after_seconds(header_value(headers, RETRY_AFTER_HEADER), now=now)


def backoff_delay(attempt: int, *, rng: Rng) -> float:
    """Exponential backoff before retry ``attempt`` (0-based), capped, minus up to 25% jitter."""
    base = min(MAX_BACKOFF_S, INITIAL_BACKOFF_S * (2.0 ** max(0, attempt)))
    jitter: float = rng.random()
    return base * (1.0 - JITTER_FRACTION * jitter)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = header_value(headers, name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return int(value) if math.isfinite(value) else None


class Budget(Protocol):
    """What the transport and the progress views ask of a request budget: :class:`RateBudget`
    in one process, ``gcdial.serve.budget.SharedBudget`` across a service's replicas."""

    @property
    def window(self) -> int: ...

    @property
    def remaining(self) -> int | None: ...

    @property
    def limit(self) -> int | None: ...

    @property
    def paused_until(self) -> float | None: ...

    rate_limited_count: int

    def observe(self, response: httpx.Response, *, window: int | None = None) -> None: ...

    def acquire(self) -> float: ...

    async def acquire_async(self) -> float: ...


@dataclass(frozen=True, slots=True)
class BudgetWindow:
    """One rate-limit window as the budget lived it: requests let out, and how long callers were
    held at its end waiting for the reset (``idle_s``: the time the window's allowance was used
    up before it turned, the budget's measure of a window it could not fill faster)."""

    window: int
    sent: int
    idle_s: float


class RateBudget:
    """The request budget one client shares between all its workers (threads and asyncio tasks).

    ``observe`` reads each response's ``inin-ratelimit-count/allowed/reset`` headers; a 429 pauses
    every caller of ``acquire``/``acquire_async`` until ``Retry-After`` has passed. When the
    window is used up, callers wait for it to reset. Clock and sleeps are injectable; the clock is
    monotonic seconds.

    With many requests in flight the headers lag behind: a response reports the count as it was
    when that request arrived, not the requests sent since. So within a window the budget only
    ever lowers what it has left on a header's word (never hands back spent requests), starts each
    new window from the known allowance rather than from "unlimited", and ignores the headers of
    responses to requests sent in an earlier window (``window`` as read right after acquiring).

    The window's end is the earliest of "received at + ``inin-ratelimit-reset``" over the
    window's responses: the header is whole seconds rounded up, so each response bounds the end
    from above, and the earliest bound is within a request's spacing of the truth. (Taking the
    latest response's bound, rounded up and then padded, idled up to 1.25 s of every window.)
    The window may have ended up to :data:`WINDOW_END_DOUBT_S` before that bound, so a request
    sent in that stretch may count in either window: it is counted in both (the next window
    starts with them spent), or the budget would hand the next window out whole and overrun it.
    A run that uses its window up before the end loses nothing to it.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        async_sleep: AsyncSleep = async_sleep,
        max_pause_s: float = MAX_RETRY_AFTER_S,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._max_pause_s = max_pause_s
        self._lock = threading.Lock()
        self._paused_until: float | None = None
        self._remaining: int | None = None
        self._limit: int | None = None
        self._reset_at: float | None = None
        self._window = 0
        self._sent = 0
        self._doubtful = 0
        self._exhausted_at: float | None = None
        self._history: deque[BudgetWindow] = deque(maxlen=BUDGET_HISTORY)
        self.rate_limited_count = 0

    @property
    def window(self) -> int:
        """Which rate-limit window this is (it grows at each reset); pass it back to ``observe``."""
        with self._lock:
            return self._window

    @property
    def remaining(self) -> int | None:
        """Requests left in the current window as last reported (minus those since), or None."""
        with self._lock:
            return self._remaining

    @property
    def limit(self) -> int | None:
        """The window's allowance (``inin-ratelimit-allowed``), or None before any response."""
        with self._lock:
            return self._limit

    def history(self) -> list[BudgetWindow]:
        """The last windows that ended (at most :data:`BUDGET_HISTORY`), oldest first."""
        with self._lock:
            return list(self._history)

    @property
    def paused_until(self) -> float | None:
        """Clock time until which every request waits after a 429, or None when not paused."""
        with self._lock:
            if self._paused_until is not None and self._paused_until <= self._clock():
                return None
            return self._paused_until

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (capped); never shortens a pause."""
        seconds = min(max(0.0, seconds), self._max_pause_s)
        with self._lock:
            until = self._clock() + seconds
            if self._paused_until is None or until > self._paused_until:
                self._paused_until = until

    def observe(self, response: httpx.Response, *, window: int | None = None) -> None:
        """Learn from one response: the rate-limit headers, and a 429's ``Retry-After``.

        ``window`` is :attr:`window` as it was when the request was sent; a response to a request
        of an earlier window says nothing about this one, so its headers are not used.
        """
        headers = response.headers
        count = _int_header(headers, RATELIMIT_COUNT_HEADER)
        allowed = _int_header(headers, RATELIMIT_ALLOWED_HEADER)
        reset = _int_header(headers, RATELIMIT_RESET_HEADER)
        with self._lock:
            now = self._clock()
            current = window is None or window == self._window
            if current and allowed is not None:
                self._limit = allowed
                if count is not None:
                    reported = max(0, allowed - count)
                    self._remaining = (
                        reported if self._remaining is None else min(self._remaining, reported)
                    )
            if current and reset is not None:
                wait = min(max(0, reset), MAX_RATELIMIT_RESET_S)
                bound = now + wait + RATELIMIT_RESET_MARGIN_S
                if self._reset_at is None or bound < self._reset_at:
                    self._reset_at = bound
        if response.status_code == 429:
            with self._lock:
                self.rate_limited_count += 1
            retry_after = parse_retry_after(headers)
            self.pause(retry_after if retry_after is not None else INITIAL_BACKOFF_S)

    def _take(self, now: float) -> float | None:
        """Consume one request if allowed at ``now``; else return the clock time to wait until."""
        with self._lock:
            if self._paused_until is not None and self._paused_until > now:
                return self._paused_until
            if self._reset_at is not None and self._reset_at <= now:
                idle = 0.0 if self._exhausted_at is None else now - self._exhausted_at
                self._history.append(BudgetWindow(self._window, self._sent, idle))
                logger.debug(
                    "rate window %d: %d requests, then %.2f s held for the reset",
                    self._window, self._sent, idle,
                )  # fmt: skip
                self._reset_at = None
                self._exhausted_at = None
                # What was sent when the old window may already have ended counts in this one.
                self._sent = self._doubtful
                self._remaining = (
                    None if self._limit is None else max(0, self._limit - self._doubtful)
                )
                self._doubtful = 0
                self._window += 1
            if self._remaining is not None and self._remaining <= 0 and self._reset_at is not None:
                if self._exhausted_at is None:
                    self._exhausted_at = now
                return self._reset_at
            if self._reset_at is not None and now >= self._reset_at - WINDOW_END_DOUBT_S:
                self._doubtful += 1
            if self._remaining is not None:
                self._remaining -= 1
            self._sent += 1
            return None

    def acquire(self) -> float:
        """Block until a request may go out; returns the seconds waited (0.0 when none)."""
        waited = 0.0
        served = -math.inf
        while True:
            now = max(self._clock(), served)
            until = self._take(now)
            if until is None:
                return waited
            # `served` makes an injected sleep that does not move the clock still count as waited.
            self._sleep(until - now)
            waited += until - now
            served = until

    async def acquire_async(self) -> float:
        """Await until a request may go out; returns the seconds waited (0.0 when none)."""
        waited = 0.0
        served = -math.inf
        while True:
            now = max(self._clock(), served)
            until = self._take(now)
            if until is None:
                return waited
            await self._async_sleep(until - now)
            waited += until - now
            served = until


class ServerClock:
    """The server's clock as its ``Date`` headers tell it, so times sent to it are in its time.

    Genesys' clock and this machine's may differ (and the emulator's runs faster than real time);
    a search interval built from the local clock could miss a call. Every response's ``Date`` is
    recorded; :meth:`now` extrapolates from the latest one with ``clock`` (the client's
    monotonic clock, injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, datetime] | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Record a response's ``Date`` header (ignored when absent or garbled)."""
        value = headers.get("date")
        if not value:
            return
        try:
            server = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        with self._lock:
            self._last = (self._clock(), server.astimezone(UTC))

    @property
    def last(self) -> datetime | None:
        """The latest ``Date`` the server sent (whole seconds), or None before any."""
        with self._lock:
            return self._last[1] if self._last is not None else None

    def now(self) -> datetime | None:
        """The server's time now, extrapolated from its latest ``Date``; None when never seen."""
        with self._lock:
            if self._last is None:
                return None
            local, server = self._last
        return server + timedelta(seconds=max(self._clock() - local, 0.0))

    def passed(self, margin_s: float) -> datetime | None:
        """A time the server's clock has surely passed: :meth:`now` less ``margin_s`` (for clock
        skew between its hosts), never before its latest ``Date``; None when never seen.

        ``Date`` is whole seconds and made before the response left, and the elapsed time is
        this machine's monotonic clock, so :meth:`now` is never ahead of the server's time
        unless the server's clock runs slower than this one.
        """
        now, last = self.now(), self.last
        if now is None or last is None:
            return None
        return max(last, now - timedelta(seconds=margin_s))


_DECODED_HEADERS: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class SyncBridge(httpx.AsyncBaseTransport):
    """An async transport that sends through a caller's synchronous ``httpx.Client`` in a thread.

    The sync client's async work (the notifications monitor, ``wait()``, resolving a call) runs
    over an ``httpx.AsyncClient`` built on this bridge, so the caller's own transport, proxies and
    TLS settings reach those requests too. Redirects are never followed here: the outer client
    decides.
    """

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with the sync client in a worker thread and read the whole body."""
        body = await request.aread()
        sync_request = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            content=body,
            extensions=request.extensions,
        )

        def send() -> httpx.Response:
            response = self._client.send(sync_request, follow_redirects=False)
            try:
                response.read()
            finally:
                response.close()
            return response

        import asyncio  # see async_sleep

        response = await asyncio.to_thread(send)
        # The body is already decoded: its encoding headers no longer describe it.
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _DECODED_HEADERS
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=response.content,
            extensions={"http_version": response.extensions.get("http_version", b"HTTP/1.1")},
        )


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` safe to print or log: the Authorization credentials replaced by ***."""
    safe: dict[str, str] = {}
    for key, value in headers.items():
        if key.lower() in {"authorization", "proxy-authorization"}:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            safe[key] = f"{scheme} {_REDACTED}".strip()
        elif key.lower() == "cookie":
            safe[key] = _REDACTED
        else:
            safe[key] = value
    return safe


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    flat = scrub_shapes(flat)
    if len(flat) > _EXCERPT_CHARS:
        return flat[:_EXCERPT_CHARS] + "..."
    return flat


def parse_json(response: httpx.Response) -> JsonBody:
    """The response's JSON body (None when empty); else ResponseFormatError with a safe excerpt."""
    if not response.content.strip():
        return None
    content_type = response.headers.get("content-type")
    try:
        return jsonlib.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        excerpt = _excerpt(response.content[:2000].decode("utf-8", errors="replace"))
        raise ResponseFormatError(
            f"Expected JSON from {response.request.method} {response.request.url} but got "
            f"HTTP {response.status_code} {content_type or 'without a content type'}: "
            f"{excerpt!r}.",
            status=response.status_code,
            content_type=content_type,
            url=str(response.request.url),
        ) from None


def _try_json(response: httpx.Response) -> JsonBody:
    try:
        return parse_json(response)
    except ResponseFormatError:
        return None


@dataclass(frozen=True)
class PreparedRequest:
    """A request as it would be sent (for ``--dry-run``), with the credentials redacted."""

    method: str
    url: str
    headers: dict[str, str]
    body: JsonBody = None
    idempotent: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: method, url, headers (redacted) and body."""
        return {"method": self.method, "url": self.url, "headers": self.headers, "body": self.body}


@dataclass
class _Step:
    """What the retry loop does next: return the response, wait then retry, or raise."""

    response: httpx.Response | None = None
    retry_after_s: float | None = None
    wait_on_budget: bool = False
    error: Exception | None = None


@dataclass
class _Attempt:
    method: str
    url: str
    body: JsonBody
    idempotent: bool
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    window: int | None = None


def prepare_request(
    url: str,
    method: str,
    *,
    headers: Mapping[str, str] | None = None,
    json: JsonBody = None,
    params: Mapping[str, str] | None = None,
    idempotent: bool = True,
    authorized: bool = True,
) -> PreparedRequest:
    """A request as it would be sent, built without a client or credentials (``--dry-run``)."""
    base_headers = headers or {
        "Accept": "application/json",
        "User-Agent": f"gcdial/{__version__}",
    }
    request = httpx.Request(method.upper(), url, params=params, json=json, headers=base_headers)
    sent = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
    if authorized:
        sent["Authorization"] = f"Bearer {_REDACTED}"
    return PreparedRequest(
        method=request.method,
        # Our paths are already quoted; keep a `{userId}` placeholder readable.
        url=str(request.url) if params else url,
        headers=redact_headers(sent),
        body=json,
        idempotent=idempotent,
    )


class _TransportCore:
    """What the sync and async transports share: URL building, logging and retry decisions."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None,
        budget: Budget,
        timeout: httpx.Timeout | float | None,
        max_retries: int,
        rng: Rng | None,
        user_agent: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.budget = budget
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self.max_retries = max_retries
        self.server_clock = ServerClock(clock)
        self._rng: Rng = rng if rng is not None else random.Random()
        self._headers = {
            "Accept": "application/json",
            "User-Agent": user_agent or f"gcdial/{__version__}",
        }

    def redact(self, text: str) -> str:
        """``text`` with credentials masked: Bearer/Basic values and this auth's secrets/tokens."""
        sensitive = getattr(self.auth, "sensitive_values", None)
        return scrub(text, sensitive() if callable(sensitive) else ())

    def safe(self, error: BaseException) -> BaseException:
        """The error to raise, with any echoed credential scrubbed from a gcdial error's text."""
        if isinstance(error, GcdialError):
            return redact_error(error, self.redact)
        return error

    def parse_json(self, response: httpx.Response) -> JsonBody:
        """:func:`parse_json`, with credentials scrubbed from the error's excerpt."""
        try:
            return parse_json(response)
        except ResponseFormatError as exc:
            raise self.safe(exc) from None

    def url(self, path: str) -> str:
        """The absolute URL of an API path (``/api/v2/...``); absolute URLs pass through."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def prepare(
        self,
        method: str,
        path: str,
        *,
        json: JsonBody = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> PreparedRequest:
        """Describe the exact request without sending it; the token is shown as ``Bearer ***``."""
        return prepare_request(
            self.url(path),
            method,
            headers=self._headers,
            json=json,
            params=params,
            idempotent=idempotent,
            authorized=self.auth is not None,
        )

    def _timeout(self, timeout: httpx.Timeout | float | None) -> httpx.Timeout | float:
        return self.timeout if timeout is None else timeout

    def _log_response(self, response: httpx.Response, attempt: int) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        request = response.request
        logger.debug(
            "%s %s -> %s (attempt %d, correlation %s) headers=%s",
            request.method,
            request.url,
            response.status_code,
            attempt + 1,
            response.headers.get(CORRELATION_HEADER, "-"),
            redact_headers(request.headers),
        )

    def on_response(self, response: httpx.Response, call: _Attempt, attempt: int) -> _Step:
        """Decide what a response means: success, a retry (and after how long), or an error."""
        self.budget.observe(response, window=call.window)
        self.server_clock.observe(response.headers)
        self._log_response(response, attempt)
        status = response.status_code
        if 200 <= status < 300:
            return _Step(response=response)
        retry_after = parse_retry_after(response.headers)
        too_long = retry_after is not None and retry_after > MAX_RETRY_AFTER_S
        if not too_long and should_retry(
            idempotent=call.idempotent, attempt=attempt, status=status, max_retries=self.max_retries
        ):
            if status == 429:
                # The budget already holds every worker until Retry-After; wait there.
                return _Step(wait_on_budget=True)
            delay = (
                retry_after if retry_after is not None else backoff_delay(attempt, rng=self._rng)
            )
            return _Step(retry_after_s=delay)
        error = api_error_from_response(
            status, _try_json(response), response.headers, method=call.method, url=call.url
        )
        if not call.idempotent and (status >= 500 or 300 <= status < 400):
            # A 5xx may come after the work was done; a redirect (303 See Other is the usual
            # answer to a POST that created something) is no proof that nothing was done either.
            return _Step(error=self._outcome_unknown(call, error, f"the server answered {status}"))
        return _Step(error=error)

    def on_error(self, exc: Exception, call: _Attempt, attempt: int) -> _Step:
        """Decide what an exception raised while sending means: a retry or the error to raise."""
        if isinstance(exc, GcdialError):
            # Raised by the auth flow (token endpoint), which has already retried what a token
            # request may retry; the API request itself was never sent.
            return _Step(error=exc)
        logger.debug(
            "%s %s failed (attempt %d): %s", call.method, call.url, attempt + 1, _describe(exc)
        )
        if should_retry(
            idempotent=call.idempotent, attempt=attempt, error=exc, max_retries=self.max_retries
        ):
            return _Step(retry_after_s=backoff_delay(attempt, rng=self._rng))
        if not call.idempotent and request_was_sent(exc):
            return _Step(error=self._outcome_unknown(call, exc, _describe(exc)))
        host = httpx.URL(call.url).host
        if isinstance(exc, httpx.TimeoutException):
            timeout_error: Exception = ApiTimeoutError(
                f"{host} did not answer {call.method} {call.url} in time ({_describe(exc)}).",
                method=call.method,
                url=call.url,
            )
            return _Step(error=timeout_error)
        if isinstance(exc, httpx.DecodingError):
            return _Step(
                error=ResponseFormatError(
                    f"The answer to {call.method} {call.url} could not be decoded: {exc}.",
                    url=call.url,
                )
            )
        return _Step(
            error=ApiConnectionError(
                f"Could not complete {call.method} {call.url}: {_describe(exc)}.",
                method=call.method,
                url=call.url,
            )
        )

    def _outcome_unknown(
        self, call: _Attempt, cause: BaseException, reason: str
    ) -> RequestOutcomeUnknownError:
        # Neutral words: only the caller knows what the request was for (the create-call says
        # the call may have been placed; the notifications channel says it polls instead).
        logger.debug(
            "%s %s sent at %s got no usable answer (%s); it will not be re-sent",
            call.method,
            call.url,
            call.sent_at.isoformat(),
            reason,
        )
        return RequestOutcomeUnknownError(
            method=call.method,
            url=call.url,
            body=call.body,
            sent_at=call.sent_at,
            cause=cause,
            reason=reason,
        )

    def unreadable_success(
        self, response: httpx.Response, call: _Attempt, error: Exception
    ) -> Exception:
        """The error for a 2xx with an unusable body (outcome unknown when non-idempotent)."""
        if call.idempotent:
            return error
        return self._outcome_unknown(
            call, error, f"the server answered {response.status_code} but the answer is unreadable"
        )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


_ERROR_TYPES: Final = (httpx.TransportError, httpx.DecodingError, GcdialError)


class ApiTransport(_TransportCore):
    """Synchronous transport over an injectable ``httpx.Client`` (not closed by the transport)."""

    def __init__(
        self,
        http_client: httpx.Client,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        budget: Budget | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = MAX_RETRIES,
        sleep: Sleep = time.sleep,
        rng: Rng | None = None,
        user_agent: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            base_url=base_url,
            auth=auth,
            budget=budget if budget is not None else RateBudget(sleep=sleep),
            timeout=timeout,
            max_retries=max_retries,
            rng=rng,
            user_agent=user_agent,
            clock=clock,
        )
        self.http = http_client
        self._sleep = sleep

    def request(
        self,
        method: str,
        path: str,
        *,
        json: JsonBody = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        timeout: httpx.Timeout | float | None = None,
    ) -> httpx.Response:
        """Send with the retry policy; returns a 2xx response or raises a gcdial error."""
        method = method.upper()
        attempt = 0
        while True:
            self.budget.acquire()
            window = self.budget.window
            request = self.http.build_request(
                method,
                self.url(path),
                json=json,
                params=params,
                headers=self._headers,
                timeout=self._timeout(timeout),
            )
            call = _Attempt(
                method=method,
                url=str(request.url),
                body=json,
                idempotent=idempotent,
                window=window,
            )
            try:
                # Following a redirect would re-send a POST: never for non-idempotent requests.
                response = self.http.send(
                    request,
                    auth=self.auth,
                    follow_redirects=idempotent and self.http.follow_redirects,
                )
            except _ERROR_TYPES as exc:
                step = self.on_error(exc, call, attempt)
            else:
                step = self.on_response(response, call, attempt)
            if step.error is not None:
                raise self.safe(step.error)
            if step.response is not None:
                return step.response
            if step.retry_after_s is not None:
                self._sleep(step.retry_after_s)
            attempt += 1

    def request_json(
        self,
        method: str,
        path: str,
        *,
        json: JsonBody = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        timeout: httpx.Timeout | float | None = None,
    ) -> JsonBody:
        """Like :meth:`request`, returning the parsed JSON body (None when empty)."""
        response = self.request(
            method, path, json=json, params=params, idempotent=idempotent, timeout=timeout
        )
        try:
            return parse_json(response)
        except ResponseFormatError as exc:
            call = _Attempt(
                method=method.upper(),
                url=str(response.request.url),
                body=json,
                idempotent=idempotent,
            )
            raise self.safe(self.unreadable_success(response, call, exc)) from None

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> JsonBody:
        """GET (idempotent, retried) and return the parsed JSON body."""
        return self.request_json("GET", path, params=params, idempotent=True, timeout=timeout)


class AsyncApiTransport(_TransportCore):
    """Async transport over an injectable ``httpx.AsyncClient`` (not closed by the transport)."""

    def __init__(
        self,
        http_client: httpx.AsyncClient,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        budget: Budget | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = MAX_RETRIES,
        sleep: AsyncSleep = async_sleep,
        rng: Rng | None = None,
        user_agent: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            base_url=base_url,
            auth=auth,
            budget=budget if budget is not None else RateBudget(async_sleep=sleep),
            timeout=timeout,
            max_retries=max_retries,
            rng=rng,
            user_agent=user_agent,
            clock=clock,
        )
        self.http = http_client
        self._sleep = sleep

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: JsonBody = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 (httpx's own timeout)
    ) -> httpx.Response:
        """Send with the retry policy; returns a 2xx response or raises a gcdial error."""
        method = method.upper()
        attempt = 0
        while True:
            await self.budget.acquire_async()
            window = self.budget.window
            request = self.http.build_request(
                method,
                self.url(path),
                json=json,
                params=params,
                headers=self._headers,
                timeout=self._timeout(timeout),
            )
            call = _Attempt(
                method=method,
                url=str(request.url),
                body=json,
                idempotent=idempotent,
                window=window,
            )
            try:
                response = await self.http.send(
                    request,
                    auth=self.auth,
                    follow_redirects=idempotent and self.http.follow_redirects,
                )
            except _ERROR_TYPES as exc:
                step = self.on_error(exc, call, attempt)
            else:
                step = self.on_response(response, call, attempt)
            if step.error is not None:
                raise self.safe(step.error)
            if step.response is not None:
                return step.response
            if step.retry_after_s is not None:
                await self._sleep(step.retry_after_s)
            attempt += 1

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json: JsonBody = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 (httpx's own timeout)
    ) -> JsonBody:
        """Like :meth:`request`, returning the parsed JSON body (None when empty)."""
        response = await self.request(
            method, path, json=json, params=params, idempotent=idempotent, timeout=timeout
        )
        try:
            return parse_json(response)
        except ResponseFormatError as exc:
            call = _Attempt(
                method=method.upper(),
                url=str(response.request.url),
                body=json,
                idempotent=idempotent,
            )
            raise self.safe(self.unreadable_success(response, call, exc)) from None

    async def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 (httpx's own timeout)
    ) -> JsonBody:
        """GET (idempotent, retried) and return the parsed JSON body."""
        return await self.request_json("GET", path, params=params, idempotent=True, timeout=timeout)
