"""Who is calling, and what they may do: decided here once, for the API and the page alike.

A request is made by a :class:`Principal`: an API key, reached by a Bearer header (a CRM, a
script), by the page's session cookie plus its CSRF token (a supervisor's browser), or by a
widget token (``w1.``, the click-to-dial widget on an allowed CRM origin). An agent who signed in
with Genesys Cloud stands on an *agent key* (:func:`gcdial.serve.genesys_signin.agent_key_record`:
dial and watch, for that agent only, no usable secret), so "dial only as themselves, see only
their calls" is the same ``may_dial_for`` / ``owns`` as any key limited to one agent. All go
through :class:`Authenticator`, which also applies the key's rate limit, so every route of the
service (``/v1`` and the page's actions, which are the same handlers) passes the same checks:

    Bearer key ─────────┐
    cookie+CSRF ────────┼── Authenticator ── rate limit ── Principal.may / owns / may_dial_for
    widget token+Origin ┘

A widget token may dial until it expires (``widget_session_s``); after that, for
``widget_watch_s`` more, it may only read (a call placed just before keeps showing its outcome).

A page session lives in the store (a lease named after the session's nonce, held by its key until
it expires), not only in the browser: signing out releases it, so a copy of the cookie fails on
every replica sharing the store. Long-lived streams ask :meth:`Authenticator.ended` on a short
timer, so revoking a key or signing out ends them within seconds.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gcdial.serve.genesys_signin import GenesysUser, SignInRefused, agent_key_record, is_agent_key
from gcdial.serve.problems import ApiProblem
from gcdial.serve.session import (
    COOKIE_NAME,
    Session,
    csrf_token,
    new_session,
    read_session,
    read_widget,
    seal,
    seal_widget,
)
from gcdial.serve.store import ApiKeyRecord, CallRecord, StoreError, hash_api_key
from gcdial.serve.store_thread import urgent

if TYPE_CHECKING:
    from gcdial.serve.service_core import ServiceCore

__all__ = [
    "COOKIE_NAME",
    "SAFE_METHODS",
    "Authenticator",
    "Principal",
    "RateLimiter",
    "owns",
    "sees_all",
]

logger = logging.getLogger("gcdial.serve")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_SESSION_S = 8 * 3600.0
_SESSION_LEASE = "session:"
_ENDED_CACHE_MAX = 10_000


def sees_all(key: ApiKeyRecord) -> bool:
    """An admin key sees every key's calls, campaigns and events."""
    return "admin" in key.scopes


def owns(key: ApiKeyRecord, owner_key_id: str) -> bool:
    """May ``key`` see a record placed by the key ``owner_key_id``? Its own, or any if admin."""
    return sees_all(key) or owner_key_id == key.id


@dataclass(frozen=True)
class Principal:
    """The caller of one request: its API key, and the page session when it came by cookie (or
    the widget's session, with its origin); ``read_only`` once a widget token expired."""

    key: ApiKeyRecord
    session: Session | None = None
    read_only: bool = False

    @property
    def kind(self) -> str:
        """``widget``, ``agent`` (signed in with Genesys), ``page`` (an API key's session) or
        ``key`` (a Bearer API key)."""
        if self.session is not None and self.session.origin:
            return "widget"
        if is_agent_key(self.key):
            return "agent"
        return "page" if self.session is not None else "key"

    @property
    def sees_all(self) -> bool:
        """Whether lists and streams show every key's records (the admin scope)."""
        return sees_all(self.key)

    @property
    def owner_filter(self) -> str | None:
        """The key id that store queries filter by, or None for an admin."""
        return None if self.sees_all else self.key.id

    def may(self, scope: str) -> bool:
        """Has the key ``scope`` (admin has every scope)? Read-only: only ``watch``."""
        if self.read_only and scope != "watch":
            return False
        return scope in self.key.scopes or "admin" in self.key.scopes

    def need(self, scope: str) -> None:
        """Raise a 403 naming ``scope`` unless the key has it (a 401 once a widget's sign-in
        expired: signing in again gives it back)."""
        if self.read_only and scope != "watch":
            raise _signed_out(
                "session_expired",
                "Your sign-in expired: the calls you placed still show, new ones need you to "
                "sign in again.",
                "Sign in again (the Call button opens the sign-in window).",
            )
        if not self.may(scope):
            raise ApiProblem(
                403,
                "forbidden",
                f"This API key lacks the '{scope}' scope.",
                hint=f"Use a key created with --scopes including {scope}.",
            )

    def owns(self, call: CallRecord) -> bool:
        """May the caller see ``call``?"""
        return owns(self.key, call.api_key_id)

    def may_dial_for(self, agent: str) -> bool:
        """A key limited to agents may dial only for them."""
        return not self.key.agents or agent.lower() in self.key.agents

    def need_agent(self, agent: str, path: str = "$.agent") -> None:
        """Raise a 403 unless the key may dial for ``agent``."""
        if not self.may_dial_for(agent):
            raise ApiProblem(
                403,
                "agent_not_allowed",
                f"This API key may not dial for agent {agent!r}.",
                hint="Use one of the key's agents, or create a key with --agents including it.",
                path=path,
            )

    def sees_event(self, data: Mapping[str, Any]) -> bool:
        """May the caller see this event (its stored JSON)? A call's or a campaign's: its key's,
        or an admin; an agent's: an admin, a key for every agent, or a key limited to agents
        for theirs (and the resync, which names none); anything else: an admin."""
        if "apiKeyId" in data:
            return owns(self.key, str(data["apiKeyId"]))
        if data.get("type") != "agent.updated":
            return self.sees_all
        if self.sees_all or not self.key.agents:
            return True
        agent = data.get("agent")
        if not isinstance(agent, Mapping):
            return bool(data.get("resync"))
        names = {str(agent.get("agent") or "").lower(), str(agent.get("id") or "").lower()}
        return bool(names & set(self.key.agents))


class RateLimiter:
    """A token bucket per API key (per replica): ``rate_per_minute`` with a burst of as many."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: ApiKeyRecord) -> float:
        """0 when allowed, else seconds until a request would be."""
        rate = key.rate_per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key.id, (float(key.rate_per_minute), now))
            tokens = min(float(key.rate_per_minute), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key.id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key.id] = (tokens, now)
            return (1.0 - tokens) / rate


def _same(given: str | None, expected: str) -> bool:
    """Compare a secret in constant time (as bytes: a header may hold any character)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _unauthorized(message: str, hint: str | None = None) -> ApiProblem:
    return ApiProblem(
        401, "unauthorized", message, hint=hint, headers={"WWW-Authenticate": "Bearer"}
    )


def _signed_out(kind: str, message: str, hint: str) -> ApiProblem:
    return ApiProblem(401, kind, message, hint=hint)


class Authenticator:
    """Turns a Bearer key or a page session into a :class:`Principal`, and ends sessions.

    Store calls run off the event loop (``ServiceCore.db``) on the service's clock (epoch
    seconds); ``secret`` signs the page's cookies and CSRF tokens.
    """

    def __init__(
        self,
        service: ServiceCore,
        secret: bytes,
        *,
        session_s: float = DEFAULT_SESSION_S,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.service = service
        self.store = service.store
        self.secret = secret
        self.session_s = session_s
        self.limiter = limiter or RateLimiter()
        self.recheck_s = service.config.credential_check_s
        self.watch_s = service.config.widget_watch_s
        self._ended: dict[str, tuple[float, ApiProblem | None]] = {}

    async def from_bearer(self, token: str) -> Principal:
        """The principal of a Bearer API key, or a 401."""
        key_hash = hash_api_key(token)
        try:
            key = self._find_inline(key_hash)
        except StoreError:  # no inline read (PostgreSQL), or it could not answer at once
            with urgent():  # a client waits: ahead of the followers' events on a SQLite store
                key = await self.service.db(self.store.find_api_key, key_hash)
        if key is None:
            raise _unauthorized("The API key is not known or was revoked.")
        return Principal(key)

    def _find_inline(self, key_hash: str) -> ApiKeyRecord | None:
        """The key read on this thread, where the store can (SQLite: its own read connection,
        no hop to the store's thread); ``StoreError`` where it cannot."""
        inline: Callable[[str], ApiKeyRecord | None] | None = getattr(
            self.store, "find_api_key_inline", None
        )
        if inline is None:
            raise StoreError("this store reads keys on its own thread only")
        return inline(key_hash)

    async def from_cookie(self, cookie: str, csrf: str | None, *, unsafe: bool) -> Principal:
        """The principal of a page session; an ``unsafe`` request (one that changes something)
        must also carry the session's CSRF token."""
        session = read_session(cookie, self.secret)
        if session is None:
            raise _signed_out(
                "signed_out", "You are not signed in.", "Sign in with an API key (watch scope)."
            )
        principal = await self._session_principal(session)
        if unsafe and not _same(csrf, self.csrf(session)):
            raise ApiProblem(
                403,
                "csrf_failed",
                "This action did not carry the page's CSRF token.",
                hint="Reload the page and try again.",
            )
        return principal

    async def from_widget_token(self, token: str, origin: str | None, *, safe: bool) -> Principal:
        """The principal of a widget token sent from ``origin`` (the request's Origin header):
        refused from any origin but the one it was given to, or one no longer allowed; after
        it expires, read-only for ``widget_watch_s`` (``safe`` requests only)."""
        session = read_widget(token, self.secret)
        if session is None:
            raise _unauthorized("The widget token is not valid.", "Sign in again.")
        allowed = self.service.config.widget_origins
        if origin is None or origin != session.origin or origin not in allowed:
            raise ApiProblem(
                403,
                "origin_not_allowed",
                f"This widget token may not be used from {origin or 'a request without Origin'}.",
                hint="Use the widget on the page it signed in from (an allowed origin).",
            )
        now = self.service.clock()
        read_only = session.expires_at <= now
        if read_only and (not safe or now >= session.expires_at + self.watch_s):
            raise _signed_out(
                "session_expired", "Your sign-in expired.", "Sign in again to place a call."
            )
        holder = await self.service.db(
            self.store.lease_holder, _SESSION_LEASE + session.nonce, now=now
        )
        if holder is None or not _same(holder, session.key_id):
            raise _signed_out("signed_out", "This session was signed out.", "Sign in again.")
        key = await self.service.db(self.store.get_api_key, session.key_id)
        if key is None:
            raise _signed_out(
                "key_revoked",
                "Your sign-in was revoked by an administrator.",
                "Ask them to allow it again.",
            )
        return Principal(key, session, read_only=read_only)

    async def _session_principal(self, session: Session) -> Principal:
        problem = await self._session_problem(session)
        if problem is not None:
            raise problem
        key = await self.service.db(self.store.get_api_key, session.key_id)
        if key is None:
            raise _signed_out(
                "key_revoked",
                "The API key you signed in with was revoked.",
                "Sign in with another key (gcdial serve keys list shows the active ones).",
            )
        return Principal(key, session)

    async def _session_problem(self, session: Session) -> ApiProblem | None:
        now = self.service.clock()
        # A widget's stream may follow its calls through the read-only time after expiry.
        ends = session.expires_at + (self.watch_s if session.origin else 0.0)
        if ends <= now:
            return _signed_out("session_expired", "Your session expired.", "Sign in again.")
        holder = await self.service.db(
            self.store.lease_holder, _SESSION_LEASE + session.nonce, now=now
        )
        if holder is None or not _same(holder, session.key_id):
            return _signed_out("signed_out", "This session was signed out.", "Sign in again.")
        return None

    def admit(self, principal: Principal) -> None:
        """Apply the key's rate limit (the same bucket for the API and the page), or a 429."""
        wait = self.limiter.take(principal.key)
        if wait > 0:
            self.service.metrics.api_rejected.inc()
            raise ApiProblem(
                429,
                "rate_limited",
                f"This API key may send {principal.key.rate_per_minute} requests per minute.",
                hint="Retry after the number of seconds in Retry-After.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    async def ended(self, principal: Principal) -> ApiProblem | None:
        """Why the principal may no longer be served (key revoked, session ended), or None.

        Streams call this on a timer, so a revocation reaches an open stream. The streams of one
        key (or session) share one answer for half a check period: a thousand open streams of
        a wallboard's key cost one store read per period, not a thousand.
        """
        name = principal.key.id + (":" + principal.session.nonce if principal.session else "")
        now = time.monotonic()
        cached = self._ended.get(name)
        if cached is not None and now - cached[0] < self.recheck_s / 2:
            return cached[1]
        problem = await self._ended_now(principal)
        if len(self._ended) > _ENDED_CACHE_MAX:
            self._ended.clear()
        self._ended[name] = (now, problem)
        return problem

    async def _ended_now(self, principal: Principal) -> ApiProblem | None:
        if principal.session is not None:
            problem = await self._session_problem(principal.session)
            if problem is not None:
                return problem
        key = await self.service.db(self.store.get_api_key, principal.key.id)
        if key is None:
            return _signed_out(
                "key_revoked", "The API key was revoked.", "Use another key, or sign in again."
            )
        return None

    def csrf(self, session: Session) -> str:
        """The CSRF token the page sends with each action of ``session``."""
        return csrf_token(session, self.secret)

    def seal(self, session: Session) -> str:
        """The cookie value of ``session``."""
        return seal(session, self.secret)

    def seal_widget(self, session: Session) -> str:
        """The widget token of ``session`` (a session with an origin)."""
        return seal_widget(session, self.secret)

    async def sign_in(
        self, key: ApiKeyRecord, *, lifetime_s: float | None = None, origin: str = ""
    ) -> Session:
        """A new session of ``key``, recorded in the store until it expires (a widget's, bound
        to ``origin``, until its read-only time ends too)."""
        now = self.service.clock()
        lifetime = self.session_s if lifetime_s is None else lifetime_s
        made = new_session(key.id, now=now, lifetime_s=lifetime)
        session = Session(made.key_id, made.expires_at, made.nonce, origin=origin)
        await self.service.db(
            self.store.acquire_lease,
            _SESSION_LEASE + session.nonce,
            key.id,
            now=now,
            ttl_s=lifetime + (self.watch_s if origin else 0.0),
        )
        return session

    async def agent_key(self, user: GenesysUser) -> ApiKeyRecord:
        """The agent key of a person who signed in with Genesys: made at the first sign-in,
        the same one ever after (so they see the calls of earlier sessions). A revoked one stays
        revoked: that agent may no longer sign in."""
        store = self.store
        record = agent_key_record(user, now=self.service.clock())
        found = await self.service.db(store.get_api_key, record.id)
        if found is None:
            try:
                await self.service.db(store.add_api_key, record)
            except Exception as exc:
                logger.info("agent key %s not added: %s", record.id, type(exc).__name__)
            found = await self.service.db(store.get_api_key, record.id)
        if found is None or found.extra.get("genesysUserId") != user.id:
            raise SignInRefused(
                "agent_revoked",
                f"Sign-in for {user.email} was revoked by an administrator of this service.",
            )
        return found

    async def sign_out(self, session: Session) -> None:
        """End ``session`` in the store: its cookie no longer works anywhere."""
        await self.service.db(
            self.store.release_lease, _SESSION_LEASE + session.nonce, session.key_id
        )
