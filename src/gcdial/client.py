"""``Client`` and ``AsyncClient``: settings, auth, one transport and one rate budget, resources.

>>> with gcdial.Client() as client:                                  # doctest: +SKIP
...     created = client.calls.create("alice@example.com", to="+14155550100")
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack

import httpx
from pydantic import SecretStr

from gcdial import dialing
from gcdial.agents import Agents, AsyncAgents
from gcdial.auth import GcdialAuth, auth_from_settings, is_user_token
from gcdial.calls import AsyncCalls, CallParams, Calls, async_twin, refuse_running_loop
from gcdial.config import Settings, load_settings
from gcdial.dialing import Dial, DialOptions
from gcdial.http import (
    MAX_RETRIES,
    ApiTransport,
    AsyncApiTransport,
    AsyncSleep,
    Budget,
    Clock,
    RateBudget,
    Rng,
    Sleep,
    async_sleep,
    tls_for,
)

if TYPE_CHECKING:
    from gcdial.monitor.follow import CallMonitor

__all__ = ["AsyncClient", "Client", "resolve_settings"]


def resolve_settings(
    settings: Settings | None,
    *,
    base_url: str | None = None,
    region: str | None = None,
    client_id: str | None = None,
    client_secret: str | SecretStr | None = None,
    access_token: str | SecretStr | None = None,
) -> Settings:
    """The settings a client uses: ``settings`` (else env, .env, profile), arguments on top."""
    given: dict[str, Any] = {
        key: value
        for key, value in {
            "base_url": base_url,
            "region": region,
            "client_id": client_id,
            "client_secret": client_secret,
            "access_token": access_token,
        }.items()
        if value is not None
    }
    if settings is None:
        return load_settings(overrides=given)
    if not given:
        return settings
    data = settings.model_dump()
    sources = dict(settings.sources)
    if base_url is not None or region is not None:
        data.update(api_base_url=base_url, login_base_url=None, region=region)
        sources["region"] = sources["api_base_url"] = sources["login_base_url"] = "arguments"
    for key in ("client_id", "client_secret", "access_token"):
        if key in given:
            value = given[key]
            data[key] = SecretStr(value) if key != "client_id" and isinstance(value, str) else value
            sources[key] = f"argument {key}"
    data["sources"] = sources
    return Settings.model_validate(data)


def _timeout(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)


class _ClientBase:
    settings: Settings
    auth: GcdialAuth
    budget: Budget

    def _setup(
        self,
        settings: Settings | None,
        overrides: Mapping[str, Any],
        auth: GcdialAuth | None,
        clock: Clock,
        pacing: dict[str, Any],
    ) -> str:
        self.settings = resolve_settings(settings, **overrides)
        base_url = self.settings.endpoints().api_base_url
        self.auth = (
            auth
            if auth is not None
            else auth_from_settings(
                self.settings, clock=clock, wall_clock=lambda: datetime.now(UTC), **pacing
            )
        )
        return base_url

    @property
    def user_token(self) -> bool:
        """Whether this client acts as a user (a user token) rather than as an OAuth client."""
        return is_user_token(self.auth)


class Client(_ClientBase):
    """The synchronous gcdial client: ``.calls``, ``.agents``, ``.transport``, ``.budget``.

    Settings come from ``settings`` or, when None, from the environment / ``.env`` / profile
    (:func:`gcdial.load_settings`); the keyword arguments override them. ``http_client`` routes
    API requests through your own ``httpx.Client`` (it is then not closed by :meth:`close`).
    ``clock``/``sleep``/``rng`` are injectable for tests.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        base_url: str | None = None,
        region: str | None = None,
        client_id: str | None = None,
        client_secret: str | SecretStr | None = None,
        access_token: str | SecretStr | None = None,
        http_client: httpx.Client | None = None,
        auth: GcdialAuth | None = None,
        budget: Budget | None = None,
        max_retries: int = MAX_RETRIES,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: Rng | None = None,
    ) -> None:
        overrides = {
            "base_url": base_url,
            "region": region,
            "client_id": client_id,
            "client_secret": client_secret,
            "access_token": access_token,
        }
        # The token request's retries wait with this client's sleep and jitter.
        base = self._setup(settings, overrides, auth, clock, {"sleep": sleep, "rng": rng})
        timeout = _timeout(self.settings)
        self._owns_http = http_client is None
        self.http = (
            http_client
            if http_client is not None
            else httpx.Client(timeout=timeout, verify=tls_for(base, self.settings.verify_tls))
        )
        self.budget = budget if budget is not None else RateBudget(clock=clock, sleep=sleep)
        self.transport = ApiTransport(
            self.http,
            base_url=base,
            auth=self.auth,
            budget=self.budget,
            timeout=timeout,
            max_retries=max_retries,
            sleep=sleep,
            rng=rng,
            clock=clock,
        )
        self.agents = Agents(self.transport, policy=self.settings.readiness_policy())
        self.calls = Calls(
            self.transport, self.agents, settings=self.settings, user_token=self.user_token
        )

    def dial(self, agent: str, params: CallParams, **options: Unpack[DialOptions]) -> Dial:
        """Check the agent, place the call tagged with an attempt id, follow it if asked, and
        resolve an ambiguous create; see :func:`gcdial.dialing.dial` for the options. Blocks;
        not for async code. A call that is not followed is placed with plain requests
        (:func:`gcdial.dialing.dial_sync`); following it, or resolving a lost answer, runs on an
        event loop over this client's own ``httpx.Client``.
        """
        refuse_running_loop("Client.dial", "AsyncClient.dial")
        if not options.get("follow", False):
            return dialing.dial_sync(
                self.calls,
                self.transport,
                self.settings,
                agent,
                params,
                **_unfollowed(options),
            )
        twin = async_twin(self.transport)

        async def run() -> Dial:
            async with twin.http:
                calls = AsyncCalls(
                    twin,
                    AsyncAgents(twin, policy=self.settings.readiness_policy()),
                    settings=self.settings,
                    user_token=self.user_token,
                )
                return await dialing.dial(calls, twin, self.settings, agent, params, **options)

        import asyncio  # see gcdial.http.async_sleep

        return asyncio.run(run())

    def close(self) -> None:
        """Close the HTTP connections (unless the ``httpx.Client`` was given to us)."""
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """The asynchronous twin of :class:`Client`; use ``async with`` or ``await aclose()``.

    ``sleep`` is an async callable (default ``asyncio.sleep``). One AsyncClient may serve many
    concurrent tasks: they share one token and one rate budget.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        base_url: str | None = None,
        region: str | None = None,
        client_id: str | None = None,
        client_secret: str | SecretStr | None = None,
        access_token: str | SecretStr | None = None,
        http_client: httpx.AsyncClient | None = None,
        auth: GcdialAuth | None = None,
        budget: Budget | None = None,
        max_retries: int = MAX_RETRIES,
        clock: Clock = time.monotonic,
        sleep: AsyncSleep = async_sleep,
        rng: Rng | None = None,
    ) -> None:
        overrides = {
            "base_url": base_url,
            "region": region,
            "client_id": client_id,
            "client_secret": client_secret,
            "access_token": access_token,
        }
        base = self._setup(settings, overrides, auth, clock, {"async_sleep": sleep, "rng": rng})
        timeout = _timeout(self.settings)
        self._owns_http = http_client is None
        self.http = (
            http_client
            if http_client is not None
            else httpx.AsyncClient(timeout=timeout, verify=tls_for(base, self.settings.verify_tls))
        )
        self.budget = budget if budget is not None else RateBudget(clock=clock, async_sleep=sleep)
        self.transport = AsyncApiTransport(
            self.http,
            base_url=base,
            auth=self.auth,
            budget=self.budget,
            timeout=timeout,
            max_retries=max_retries,
            sleep=sleep,
            rng=rng,
            clock=clock,
        )
        self.agents = AsyncAgents(self.transport, policy=self.settings.readiness_policy())
        self.calls = AsyncCalls(
            self.transport, self.agents, settings=self.settings, user_token=self.user_token
        )

    async def dial(
        self,
        agent: str,
        params: CallParams,
        *,
        monitor: CallMonitor | None = None,
        **options: Unpack[DialOptions],
    ) -> Dial:
        """Check the agent, place the call tagged with an attempt id, follow it if asked, and
        resolve an ambiguous create; see :func:`gcdial.dialing.dial` for the options.

        Pass a ``monitor`` shared by many dials (a campaign) to use one notifications channel.
        """
        return await dialing.dial(
            self.calls, self.transport, self.settings, agent, params, monitor=monitor, **options
        )

    async def aclose(self) -> None:
        """Close the HTTP connections (unless the ``httpx.AsyncClient`` was given to us)."""
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _unfollowed(options: DialOptions) -> dict[str, Any]:
    """The options of a dial that is not followed, for :func:`gcdial.dialing.dial_sync`: those
    about following (``timeout_s``, ``on_event``) have nothing to act on."""
    return {k: v for k, v in options.items() if k not in ("follow", "timeout_s", "on_event")}
