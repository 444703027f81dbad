"""OAuth for the Platform API, as ``httpx.Auth`` flows: nothing else in gcdial touches tokens.

* :class:`ClientCredentialsAuth` asks the region's *login* host for a token, caches it until
  shortly before ``expires_in`` runs out, and makes exactly one token request however many
  requests need one at the same time. Tokens are numbered (generations). A request the API
  refused with 401 was not acted on, so it is re-sent once a token *newer than the one it
  carried* is at hand: fetched by the first request that needs it, shared by the others. Two
  expiries or revocations close together cost each request in flight one more re-send, never a
  failure; :data:`MAX_TOKEN_RENEWALS` bounds the re-sends of one request.
* :class:`BearerTokenAuth` attaches a user token (from ``gcdial login`` or
  ``GENESYSCLOUD_ACCESS_TOKEN``); a 401 becomes an AuthenticationError telling the user to log
  in again.

Token requests use their own short-lived HTTP client, not the API client: a failure there is
reported as an AuthError / ApiConnectionError (a GcdialError), which tells the transport that the
API request itself was never sent.
"""

from __future__ import annotations

import base64
import collections
import itertools
import logging
import random
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import httpx
from pydantic import SecretStr

from gcdial.config import Settings
from gcdial.errors import (
    ApiConnectionError,
    ApiTimeoutError,
    AuthenticationError,
    AuthError,
    ConfigError,
    InvalidClientError,
    ResponseFormatError,
)
from gcdial.http import (
    MAX_RETRIES,
    MAX_RETRY_AFTER_S,
    Rng,
    api_error_from_response,
    async_sleep,
    backoff_delay,
    parse_retry_after,
    should_retry,
    tls_for,
)
from gcdial.regions import Endpoints
from gcdial.scrub import scrub

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop, Lock

__all__ = [
    "DEFAULT_TOKEN_TIMEOUT",
    "MAX_TOKEN_RENEWALS",
    "OAUTH_ERROR_HINTS",
    "REFRESH_MARGIN_S",
    "BearerTokenAuth",
    "ClientCredentialsAuth",
    "GcdialAuth",
    "TokenGrant",
    "auth_from_settings",
    "is_user_token",
    "parse_token_response",
    "renew_after",
    "token_transport_error",
    "token_url",
]

logger = logging.getLogger(__name__)

REFRESH_MARGIN_S: Final = 60.0
"""Refresh this long before ``expires_in`` runs out (at most a tenth of the token's lifetime)."""
ASSUMED_LIFETIME_S: Final = 300.0
"""Lifetime assumed when the token endpoint omits ``expires_in`` (Genesys' shortest)."""
DEFAULT_TOKEN_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
MAX_TOKEN_RENEWALS: Final = 4
"""How many times one request is re-sent with a newer token after a 401. Each re-send needs a
token newer than the refused one, so this bounds the token changes one request rides out (two
expiries close together need two), and a token the API refuses however fresh it is (a client
whose permission went away) ends in AuthenticationError after this many tries, not a loop."""
_DESCRIPTION_CHARS: Final = 200
_REMEMBERED_TOKENS: Final = 4

Clock = Callable[[], float]
WallClock = Callable[[], datetime]


def token_url(login_base_url: str) -> str:
    """The token endpoint of a login host."""
    return f"{login_base_url.rstrip('/')}/oauth/token"


def _host_of(url: str) -> str:
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint gave: the token (kept out of ``repr``) and its lifetime."""

    access_token: str = field(repr=False)
    expires_in: float | None
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


# What to do about each OAuth error code of the login host.
OAUTH_ERROR_HINTS: Final[Mapping[str, str]] = {
    "unauthorized_client": (
        "This OAuth client may not use this grant: for gcdial's server-side use, create an OAuth "
        "client of grant type Client Credentials (Admin > Integrations > OAuth)."
    ),
    "invalid_grant": "The login code was used or has expired: run `gcdial login` again.",
    "unsupported_grant_type": "The login host does not support this grant type for this client.",
    "invalid_request": "The login host found the token request malformed.",
    "invalid_scope": "The OAuth client is not allowed the scopes asked for.",
    "access_denied": "The login was refused or cancelled.",
}


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    return scrub(text, secrets)[:_DESCRIPTION_CHARS]


def parse_token_response(
    response: httpx.Response,
    *,
    client_id: str | None,
    secrets: tuple[str, ...] = (),
) -> TokenGrant:
    """Read a token endpoint answer: a TokenGrant, or the AuthError / ResponseFormatError it means.

    ``secrets`` are scrubbed from any server text quoted in an error, as a last line of defence.
    """
    login_host = _host_of(str(response.request.url))
    status = response.status_code
    try:
        body: object = response.json()
    except (ValueError, RecursionError):
        body = None
    if status == 200:
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ResponseFormatError(
                f"The login host {login_host} answered 200 without an access token "
                f"({response.headers.get('content-type', 'no content type')}).",
                status=status,
                content_type=response.headers.get("content-type"),
                url=token_url(login_host),
            )
        assert isinstance(body, dict)
        raw_lifetime = body.get("expires_in")
        lifetime: float | None = None
        if isinstance(raw_lifetime, int | float) and not isinstance(raw_lifetime, bool):
            lifetime = float(raw_lifetime) if raw_lifetime > 0 else None
        token_type = body.get("token_type")
        return TokenGrant(
            access_token=token,
            expires_in=lifetime,
            token_type=token_type if isinstance(token_type, str) else "bearer",
        )
    code = body.get("error") if isinstance(body, dict) else None
    if code == "invalid_client":
        raise InvalidClientError(login_host=login_host, client_id=client_id, status=status)
    if status == 429:
        raise AuthError(
            f"The login host {login_host} is rate limiting token requests (HTTP 429).",
            login_host=login_host,
            status=status,
            code=code if isinstance(code, str) else None,
            hint="Wait a minute; if many processes share this OAuth client, let them share "
            "one token.",
        )
    if status >= 500:
        raise AuthError(
            f"The login host {login_host} failed to issue a token (HTTP {status}).",
            login_host=login_host,
            status=status,
            hint="Genesys Cloud may be having trouble; try again in a minute.",
        )
    if not isinstance(code, str):
        raise ResponseFormatError(
            f"The login host {login_host} answered HTTP {status} with "
            f"{response.headers.get('content-type', 'no content type')} instead of an OAuth "
            "answer.",
            status=status,
            content_type=response.headers.get("content-type"),
            url=token_url(login_host),
        )
    assert isinstance(body, dict)
    description = body.get("error_description") or body.get("description")
    said = f": {_scrub(description, secrets)}" if isinstance(description, str) else ""
    raise AuthError(
        f"The login host {login_host} refused the token request (HTTP {status}, {code}){said}.",
        login_host=login_host,
        status=status,
        code=code,
        hint=OAUTH_ERROR_HINTS.get(code),
    )


def token_transport_error(exc: httpx.HTTPError, login_host: str) -> ApiConnectionError:
    """The gcdial error for a token request that got no (complete) answer."""
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ApiTimeoutError(
            f"The login host {login_host} did not answer the token request in time ({what}); "
            "nothing was sent to the API.",
            method="POST",
            url=token_url(login_host),
        )
    return ApiConnectionError(
        f"Could not get a token from the login host {login_host} ({what}); nothing was sent to "
        "the API.",
        method="POST",
        url=token_url(login_host),
        hint="Check the network and the region: the login host must match your org's region.",
    )


class GcdialAuth(httpx.Auth):
    """An httpx.Auth that also says whether it carries a user token (which picks the call route)."""

    is_user_token: bool = False

    def describe(self) -> str:
        """One line for humans (``gcdial doctor``): which credentials, from where; no secret."""
        raise NotImplementedError

    def sensitive_values(self) -> tuple[str, ...]:
        """Every secret value this auth has sent or may send (to scrub from error text)."""
        return ()


def renew_after(status: int, renewals: int) -> bool:
    """Whether a request answered ``status`` after ``renewals`` re-sends goes again with a newer
    token: only a 401 (the API did not act on it), and at most :data:`MAX_TOKEN_RENEWALS` times."""
    return status == 401 and renewals < MAX_TOKEN_RENEWALS


@dataclass(frozen=True)
class _CachedToken:
    value: str = field(repr=False)
    refresh_at: float
    generation: int
    """1 for the first token fetched, then one more for each new token."""


class ClientCredentialsAuth(GcdialAuth):
    """Client-credentials OAuth with a cached, shared token; thread- and task-safe."""

    is_user_token = False

    def __init__(
        self,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        login_base_url: str,
        verify: bool = True,
        timeout: httpx.Timeout = DEFAULT_TOKEN_TIMEOUT,
        clock: Clock = time.monotonic,
        refresh_margin_s: float = REFRESH_MARGIN_S,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = async_sleep,
        rng: Rng | None = None,
    ) -> None:
        self.client_id = client_id
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self.login_base_url = login_base_url.rstrip("/")
        self.login_host = _host_of(self.login_base_url)
        self._verify = verify
        self._timeout = timeout
        self._clock = clock
        self._margin = refresh_margin_s
        self._transport = transport
        self._async_transport = async_transport
        self._max_retries = max_retries
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._rng: Rng = rng if rng is not None else random.Random()
        self._cached: _CachedToken | None = None
        self._generation = 0
        self._issued: collections.deque[str] = collections.deque(maxlen=_REMEMBERED_TOKENS)
        self._thread_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[AbstractEventLoop, Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.token_requests = 0
        """How many token requests were sent (for tests and ``gcdial doctor``)."""

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={self.client_id!r}, login={self.login_host!r})"

    def describe(self) -> str:
        """Which client, which login host."""
        return f"client credentials (client id {self.client_id}) via {self.login_host}"

    def invalidate(self) -> None:
        """Forget the cached token; the next request fetches a new one."""
        self._cached = None

    def sensitive_values(self) -> tuple[str, ...]:
        """The secret, its Basic-header form, and the tokens issued lately."""
        secret = self._secret.get_secret_value()
        basic = base64.b64encode(f"{self.client_id}:{secret}".encode()).decode("ascii")
        return (secret, basic, *self._issued)

    def _usable(self, newer_than: int) -> _CachedToken | None:
        """The cached token if it is newer than generation ``newer_than`` and not due for
        refresh; None when a new one must be fetched."""
        cached = self._cached
        if cached is None or cached.generation <= newer_than or self._clock() >= cached.refresh_at:
            return None
        return cached

    def _token_request(self) -> httpx.Request:
        secret = self._secret.get_secret_value()
        basic = base64.b64encode(f"{self.client_id}:{secret}".encode()).decode("ascii")
        return httpx.Request(
            "POST",
            token_url(self.login_base_url),
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )

    def _store(self, response: httpx.Response, started: float) -> _CachedToken:
        grant = parse_token_response(
            response, client_id=self.client_id, secrets=self.sensitive_values()
        )
        lifetime = grant.expires_in if grant.expires_in is not None else ASSUMED_LIFETIME_S
        margin = min(self._margin, lifetime / 10)
        self._generation += 1
        self._cached = _CachedToken(
            grant.access_token, started + lifetime - margin, self._generation
        )
        self._issued.append(grant.access_token)
        logger.debug(
            "got token %d from %s, valid for %.0f s", self._generation, self.login_host, lifetime
        )
        return self._cached

    def _retry_delay(
        self, attempt: int, response: httpx.Response | None, error: httpx.HTTPError | None
    ) -> float | None:
        """Seconds before asking again, or None to stop: the backoff of reads, since a token
        request is safe to repeat. Any 5xx (a login host that failed issued no token), a 429,
        timeouts and dropped connections are retried; a 4xx such as invalid_client never."""
        if response is None:
            retry = should_retry(
                idempotent=True, attempt=attempt, error=error, max_retries=self._max_retries
            )
            return backoff_delay(attempt, rng=self._rng) if retry else None
        status = response.status_code
        if attempt >= self._max_retries or not (status == 429 or status >= 500):
            return None
        retry_after = parse_retry_after(response.headers)
        if retry_after is None:
            return backoff_delay(attempt, rng=self._rng)
        return retry_after if retry_after <= MAX_RETRY_AFTER_S else None

    def _log_retry(self, what: str, delay: float, attempt: int) -> None:
        logger.debug(
            "token request to %s: %s; asking again in %.2f s (retry %d of %d)",
            self.login_host,
            what,
            delay,
            attempt + 1,
            self._max_retries,
        )

    def _fetch_sync(self) -> _CachedToken:
        started = self._clock()
        with httpx.Client(
            verify=tls_for(self.login_base_url, self._verify),
            timeout=self._timeout,
            transport=self._transport,
        ) as client:
            for attempt in itertools.count():
                self.token_requests += 1
                try:
                    response = client.send(self._token_request())
                except httpx.HTTPError as exc:
                    delay = self._retry_delay(attempt, None, exc)
                    if delay is None:
                        raise token_transport_error(exc, self.login_host) from None
                    self._log_retry(type(exc).__name__, delay, attempt)
                    self._sleep(delay)
                    continue
                delay = self._retry_delay(attempt, response, None)
                if delay is None:
                    return self._store(response, started)
                self._log_retry(f"HTTP {response.status_code}", delay, attempt)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch_async(self) -> _CachedToken:
        started = self._clock()
        async with httpx.AsyncClient(
            verify=tls_for(self.login_base_url, self._verify),
            timeout=self._timeout,
            transport=self._async_transport,
        ) as client:
            for attempt in itertools.count():
                self.token_requests += 1
                try:
                    response = await client.send(self._token_request())
                except httpx.HTTPError as exc:
                    delay = self._retry_delay(attempt, None, exc)
                    if delay is None:
                        raise token_transport_error(exc, self.login_host) from None
                    self._log_retry(type(exc).__name__, delay, attempt)
                    await self._async_sleep(delay)
                    continue
                delay = self._retry_delay(attempt, response, None)
                if delay is None:
                    return self._store(response, started)
                self._log_retry(f"HTTP {response.status_code}", delay, attempt)
                await self._async_sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def token(self) -> str:
        """A valid token, fetched at most once however many threads ask at the same time."""
        return self._held(newer_than=0).value

    async def atoken(self) -> str:
        """Async twin of :meth:`token`: one fetch however many tasks of one event loop ask."""
        return (await self._aheld(newer_than=0)).value

    def _held(self, *, newer_than: int) -> _CachedToken:
        """A usable token of a generation after ``newer_than`` (0: any), fetched under the lock
        unless another thread already did."""
        with self._thread_lock:
            return self._usable(newer_than) or self._fetch_sync()

    async def _aheld(self, *, newer_than: int) -> _CachedToken:
        import asyncio  # runs on an event loop, so already imported (see http.async_sleep)

        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        async with lock:
            return self._usable(newer_than) or await self._fetch_async()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Attach the token; after a 401, re-send with a newer token (see :func:`renew_after`)."""
        request.read()
        held = self._held(newer_than=0)
        for renewals in itertools.count():
            request.headers["Authorization"] = f"Bearer {held.value}"
            response = yield request
            if not renew_after(response.status_code, renewals):
                return
            held = self._held(newer_than=held.generation)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Async twin of :meth:`sync_auth_flow`."""
        await request.aread()
        held = await self._aheld(newer_than=0)
        for renewals in itertools.count():
            request.headers["Authorization"] = f"Bearer {held.value}"
            response = yield request
            if not renew_after(response.status_code, renewals):
                return
            held = await self._aheld(newer_than=held.generation)


class BearerTokenAuth(GcdialAuth):
    """A user token given to gcdial; it cannot be renewed, so a 401 asks the user to log in."""

    is_user_token = True

    def __init__(
        self,
        token: SecretStr | str,
        *,
        source: str,
        expires_at: datetime | None = None,
        wall_clock: WallClock = lambda: datetime.now(UTC),
    ) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.source = source
        self.expires_at = expires_at
        self._now = wall_clock

    def __repr__(self) -> str:
        return f"BearerTokenAuth(source={self.source!r})"

    def sensitive_values(self) -> tuple[str, ...]:
        """The user token."""
        return (self._token.get_secret_value(),)

    def describe(self) -> str:
        """Where the user token came from and until when it is valid."""
        until = f", valid until {self.expires_at.isoformat()}" if self.expires_at else ""
        return f"user token from {self.source}{until}"

    def _hint(self) -> str:
        return (
            f"The user token from {self.source} is expired or was revoked: run `gcdial login` "
            "again (or give a fresh GENESYSCLOUD_ACCESS_TOKEN)."
        )

    def _check_expiry(self) -> None:
        if self.expires_at is not None and self._now() >= self.expires_at:
            raise AuthError(
                f"The user token from {self.source} expired at "
                f"{self.expires_at.astimezone(UTC).isoformat(timespec='seconds')}.",
                hint="Run `gcdial login` again.",
            )

    def _refused(self, request: httpx.Request, response: httpx.Response) -> AuthenticationError:
        try:
            body: object = response.json()
        except (ValueError, RecursionError):
            body = None
        error = api_error_from_response(
            401, body, response.headers, method=request.method, url=str(request.url)
        )
        error.hint = self._hint()
        assert isinstance(error, AuthenticationError)
        return error

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Attach the token; a 401 raises AuthenticationError (nothing to refresh with)."""
        self._check_expiry()
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        response = yield request
        if response.status_code == 401:
            response.read()
            raise self._refused(request, response)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Async twin of :meth:`sync_auth_flow`."""
        self._check_expiry()
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            raise self._refused(request, response)


def is_user_token(auth: httpx.Auth | None) -> bool:
    """Whether requests made with ``auth`` act as a user (the route ``call_route="auto"`` picks)."""
    return isinstance(auth, GcdialAuth) and auth.is_user_token


def auth_from_settings(
    settings: Settings,
    *,
    clock: Clock = time.monotonic,
    wall_clock: WallClock = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    async_sleep: Callable[[float], Awaitable[None]] = async_sleep,
    rng: Rng | None = None,
) -> GcdialAuth:
    """The auth the settings call for, in this order (``sleep``, ``async_sleep`` and ``rng``
    pace the token request's retries: a client passes its own, so tests stay instant).

    1. an explicit access token (``GENESYSCLOUD_ACCESS_TOKEN`` / an override);
    2. client credentials (id + secret);
    3. the user token saved by ``gcdial login`` for this profile and API host.

    Raises ConfigError saying how to provide credentials when there are none.
    """
    if settings.access_token is not None:
        return BearerTokenAuth(
            settings.access_token, source=settings.source_of("access_token"), wall_clock=wall_clock
        )
    endpoints: Endpoints = settings.endpoints()
    if settings.client_id and settings.client_secret is not None:
        return ClientCredentialsAuth(
            settings.client_id,
            settings.client_secret,
            login_base_url=endpoints.login_base_url,
            verify=settings.verify_tls,
            timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
            clock=clock,
            sleep=sleep,
            async_sleep=async_sleep,
            rng=rng,
        )
    if settings.client_id or settings.client_secret is not None:
        missing = (
            "client secret (GENESYSCLOUD_OAUTHCLIENT_SECRET or client_secret_file)"
            if settings.client_id
            else "client id (GENESYSCLOUD_OAUTHCLIENT_ID)"
        )
        given = "client_id" if settings.client_id else "client_secret"
        raise ConfigError(
            f"Only half of the client credentials is set: the {missing} is missing "
            f"(the {given.replace('_', ' ')} came from {settings.source_of(given)}).",
            setting="client_secret" if settings.client_id else "client_id",
            hint="Set both, from the OAuth client's page (Admin > Integrations > OAuth).",
        )
    # Imported here for start-up time: only credentials from `gcdial login` need the store.
    from gcdial import tokenstore

    stored = tokenstore.load_for(settings)
    if stored is not None:
        return BearerTokenAuth(
            stored.access_token,
            source=f"`gcdial login` (saved in {tokenstore.path_for(settings)})",
            expires_at=stored.expires_at,
            wall_clock=wall_clock,
        )
    raise ConfigError(
        "No credentials are set.",
        setting="client_id",
        hint=(
            "Set GENESYSCLOUD_OAUTHCLIENT_ID and GENESYSCLOUD_OAUTHCLIENT_SECRET (or "
            "GCDIAL_CLIENT_SECRET_FILE), or put them in a profile of the config file; or run "
            "`gcdial login` to dial as yourself; or set GENESYSCLOUD_ACCESS_TOKEN."
        ),
    )
