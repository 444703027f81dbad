"""One Genesys request budget per OAuth client, shared by every replica through the store.

Each replica of ``gcdial serve`` (or each process on one SQLite file) would otherwise keep its own
:class:`gcdial.http.RateBudget`, and together they could overrun the client's limit. Here the
store holds one row per client: the rate window's number, the requests granted in it, the
allowance and the window's end as the ``inin-ratelimit-*`` headers told them, and a 429's pause.

- A replica takes tokens in small batches (one store transaction per batch, sized to its recent
  request rate), spends them locally, and sends what its responses' headers taught it (evidence)
  with its next take: the store keeps the highest count, the earliest window end, the longest
  pause. One round trip does both.
- A token is good only in its window: a replica drops the ones it holds when its evidence says
  the window may have ended, and after :data:`TOKEN_TTL_S` in any case, so a token granted in one
  window is never spent in the next.
- ``inin-ratelimit-reset`` is whole seconds, so a window's end is known only to within a second
  (:data:`gcdial.http.WINDOW_END_DOUBT_S`): the stored end is the latest it can be. A token taken
  in the second before it may count in either window, so it is counted in both (``carry``: the
  next window starts with it spent); a token taken earlier is good only until that second.
  Otherwise the store would count it in the old window and grant the new one's whole allowance
  again.
- If the store cannot grant tokens, the request waits (the store is retried), and a store that
  fails raises :class:`~gcdial.errors.BudgetUnavailableError` (the call was not placed): a
  request never goes out without its token.

:func:`decide` is the whole policy, pure; both stores run it inside one transaction on the row
they locked (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import httpx

from gcdial._shared import (
    RATELIMIT_ALLOWED_HEADER,
    RATELIMIT_COUNT_HEADER,
    RATELIMIT_RESET_HEADER,
)
from gcdial.errors import BudgetUnavailableError
from gcdial.http import (
    INITIAL_BACKOFF_S,
    MAX_RATELIMIT_RESET_S,
    MAX_RETRY_AFTER_S,
    RATELIMIT_RESET_MARGIN_S,
    WINDOW_END_DOUBT_S,
    header_value,
    parse_retry_after,
)
from gcdial.serve.store import StoreError

if TYPE_CHECKING:
    from gcdial.client import AsyncClient
    from gcdial.serve.store import Store

__all__ = [
    "BATCH_MAX",
    "BUDGET_COLUMNS",
    "TOKEN_TTL_S",
    "BudgetEvidence",
    "BudgetGrant",
    "BudgetRow",
    "SharedBudget",
    "budget_args",
    "budget_row",
    "decide",
    "share_budget",
]

logger = logging.getLogger("gcdial.serve.budget")

BATCH_MAX: Final = 8
"""Most tokens one take reserves: a replica asks for what it spent in the last
:data:`REFILL_HORIZON_S` (at least one), so a busy replica makes one store round trip per several
requests and an idle one holds nothing back from the others."""
REFILL_HORIZON_S: Final = 0.25
TOKEN_TTL_S: Final = 2.0
"""A reserved token unspent after this long is dropped (its window may have turned meanwhile)."""
UNKNOWN_RESET_POLL_S: Final = 0.25
"""How soon to ask again when the window is used up and nobody has reported its end yet."""
LOST_WINDOW_S: Final = 2 * MAX_RATELIMIT_RESET_S
"""A window whose end no response ever reported is taken as over after this long."""


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """The stored state of one client's budget (times are epoch seconds)."""

    window: int
    spent: int
    limit: int | None
    reset_at: float | None
    started_at: float
    paused_until: float | None
    carry: int = 0
    """Tokens granted in the second before ``reset_at``, when the window may already have ended:
    they count in the next window too."""


@dataclass(frozen=True, slots=True)
class BudgetEvidence:
    """What one replica's responses of window ``window`` said: the allowance, the highest count,
    the earliest end ("received at + reset"), and a 429's pause (which holds whatever window)."""

    window: int
    allowed: int | None = None
    count: int | None = None
    reset_at: float | None = None
    paused_until: float | None = None


@dataclass(frozen=True, slots=True)
class BudgetGrant:
    """The store's answer to a take: ``granted`` tokens of ``window``; when none, ``wait_until``
    (epoch seconds) says when to ask again."""

    window: int
    granted: int
    limit: int | None
    spent: int
    reset_at: float | None
    paused_until: float | None
    wait_until: float | None


BUDGET_COLUMNS: Final = "win, spent, lim, reset_at, started_at, paused_until, carry"
"""The ``genesys_budget`` columns after ``key``, in :class:`BudgetRow`'s order."""


def budget_row(found: Mapping[str, Any] | None) -> BudgetRow | None:
    """A stored row (``BUDGET_COLUMNS``) as a :class:`BudgetRow`; None when absent."""
    if found is None:
        return None
    return BudgetRow(
        window=int(found["win"]),
        spent=int(found["spent"]),
        limit=None if found["lim"] is None else int(found["lim"]),
        reset_at=None if found["reset_at"] is None else float(found["reset_at"]),
        started_at=float(found["started_at"]),
        paused_until=None if found["paused_until"] is None else float(found["paused_until"]),
        carry=int(found["carry"]),
    )


def budget_args(row: BudgetRow) -> tuple[Any, ...]:
    """A row's values in ``BUDGET_COLUMNS`` order."""
    return (
        row.window,
        row.spent,
        row.limit,
        row.reset_at,
        row.started_at,
        row.paused_until,
        row.carry,
    )


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def decide(
    row: BudgetRow | None, want: int, *, now: float, evidence: BudgetEvidence | None
) -> tuple[BudgetRow, BudgetGrant]:
    """Apply ``evidence``, turn the window if it has ended, and grant up to ``want`` tokens."""
    if row is None:
        row = BudgetRow(0, 0, None, None, now, None)
    if evidence is not None:
        if evidence.paused_until is not None and (
            row.paused_until is None or evidence.paused_until > row.paused_until
        ):
            row = replace(row, paused_until=evidence.paused_until)
        if evidence.window == row.window:
            row = replace(
                row,
                limit=evidence.allowed if evidence.allowed is not None else row.limit,
                # A header's count never hands back tokens granted (they may be in flight), but
                # one higher than ours counts requests we did not grant: believe it.
                spent=max(row.spent, evidence.count or 0),
                reset_at=_earliest(row.reset_at, evidence.reset_at),
            )
    ended = row.reset_at is not None and row.reset_at <= now
    lost = row.reset_at is None and now - row.started_at >= LOST_WINDOW_S
    if ended or lost:
        # Tokens taken when the old window may already have ended count in this one too.
        row = replace(
            row, window=row.window + 1, spent=row.carry, carry=0, reset_at=None, started_at=now
        )
    if row.paused_until is not None and row.paused_until > now:
        granted = 0
        wait_until: float | None = row.paused_until
    else:
        room = want if row.limit is None else max(0, min(want, row.limit - row.spent))
        granted = room
        wait_until = None
        if not granted:
            wait_until = row.reset_at if row.reset_at is not None else now + UNKNOWN_RESET_POLL_S
    doubt = row.reset_at is not None and now >= row.reset_at - WINDOW_END_DOUBT_S
    row = replace(row, spent=row.spent + granted, carry=row.carry + (granted if doubt else 0))
    grant = BudgetGrant(
        row.window, granted, row.limit, row.spent, row.reset_at, row.paused_until, wait_until
    )
    return row, grant


def _int_header(response: httpx.Response, name: str) -> int | None:
    raw = header_value(response.headers, name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return int(value) if math.isfinite(value) else None


class SharedBudget:
    """The rate budget of a service's Genesys client, kept in the store (see the module doc).

    It answers what the transport and the views ask of :class:`gcdial.http.RateBudget`:
    ``acquire``/``acquire_async``, ``window``, ``observe``, ``remaining``, ``limit``,
    ``paused_until`` (this process's monotonic clock) and ``rate_limited_count``. ``stats`` counts
    the store round trips and the time they took.
    """

    def __init__(
        self,
        store: Store,
        key: str,
        *,
        batch_max: int = BATCH_MAX,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self.key = key
        self._batch_max = max(1, batch_max)
        self._wall = wall
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._refill_lock = threading.Lock()
        self._async_refill: asyncio.Lock | None = None
        self._tokens = 0
        self._tokens_until = 0.0
        self._tokens_doubtful = False  # taken when the window may have ended: counted in both
        self._window = -1
        self._grant: BudgetGrant | None = None
        self._evidence: BudgetEvidence | None = None
        self._paused_until: float | None = None  # epoch seconds
        self._spent_at: deque[float] = deque(maxlen=self._batch_max * 4)
        self.rate_limited_count = 0
        self.takes = 0
        self.take_seconds = 0.0

    # what the views read
    @property
    def window(self) -> int:
        """The store window of the token last handed out."""
        with self._lock:
            return self._window

    @property
    def limit(self) -> int | None:
        """The window's allowance, as the store last said."""
        with self._lock:
            return self._grant.limit if self._grant else None

    @property
    def remaining(self) -> int | None:
        """Requests left in the window for every replica: the store's count at the last take
        plus the tokens this replica still holds."""
        with self._lock:
            grant = self._grant
            if grant is None or grant.limit is None:
                return None
            return max(0, grant.limit - grant.spent) + self._tokens

    @property
    def paused_until(self) -> float | None:
        """This process's monotonic time until which every request waits after a 429."""
        with self._lock:
            until = self._paused_until
        if until is None:
            return None
        left = until - self._wall()
        return self._clock() + left if left > 0 else None

    def stats(self) -> dict[str, float]:
        """Store round trips so far and the seconds they took."""
        with self._lock:
            return {"takes": self.takes, "take_seconds": self.take_seconds}

    # what the transport calls
    def observe(self, response: httpx.Response, *, window: int | None = None) -> None:
        """Keep what a response's headers say about its window, to send with the next take."""
        count = _int_header(response, RATELIMIT_COUNT_HEADER)
        allowed = _int_header(response, RATELIMIT_ALLOWED_HEADER)
        reset = _int_header(response, RATELIMIT_RESET_HEADER)
        now = self._wall()
        paused: float | None = None
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers)
            wait = retry_after if retry_after is not None else INITIAL_BACKOFF_S
            paused = now + min(max(0.0, wait), MAX_RETRY_AFTER_S)
        with self._lock:
            if paused is not None:
                self.rate_limited_count += 1
                self._paused_until = max(self._paused_until or 0.0, paused)
                self._tokens = 0  # the next take tells the store, which holds every replica
            pause = self._paused_until if (self._paused_until or 0.0) > now else None
            tagged = self._window if window is None else window
            old = self._evidence
            if old is None or old.window != self._window:
                old = BudgetEvidence(self._window)
            if tagged != self._window:
                # A late answer from an earlier window says nothing about this one; its 429
                # still holds everyone.
                if paused is not None:
                    self._evidence = replace(old, paused_until=pause)
                return
            bound = None
            if reset is not None:
                bound = now + min(max(0, reset), MAX_RATELIMIT_RESET_S) + RATELIMIT_RESET_MARGIN_S
            self._evidence = BudgetEvidence(
                tagged,
                allowed=allowed if allowed is not None else old.allowed,
                count=max(count or 0, old.count or 0) or None,
                reset_at=_earliest(old.reset_at, bound),
                paused_until=pause,
            )
            if bound is not None and not self._tokens_doubtful:
                # The window may end from then on: a token spent later could count in the next.
                self._tokens_until = min(self._tokens_until, bound - WINDOW_END_DOUBT_S)

    def _spend(self) -> bool:
        now = self._wall()
        with self._lock:
            if self._paused_until is not None and self._paused_until > now:
                return False
            if self._tokens > 0 and now < self._tokens_until:
                self._tokens -= 1
                self._spent_at.append(now)
                return True
            self._tokens = 0
            return False

    def _want(self, now: float) -> int:
        with self._lock:
            recent = sum(1 for t in self._spent_at if now - t <= REFILL_HORIZON_S)
        return max(1, min(self._batch_max, recent))

    def _take(self) -> float | None:
        """One round trip: send the evidence, take a batch; None when granted, else the epoch
        time to ask again."""
        now = self._wall()
        want = self._want(now)
        with self._lock:
            evidence = self._evidence
        started = time.perf_counter()
        try:
            grant = self._store.take_budget(self.key, want, now=now, evidence=evidence)
        except StoreError as exc:
            raise BudgetUnavailableError(
                f"The Genesys request budget in the store could not be read, so nothing was "
                f"sent: {exc}",
                hint="Check the service's store (gcdial serve's /readyz); dial again once it "
                "answers.",
            ) from None
        took = time.perf_counter() - started
        with self._lock:
            self.takes += 1
            self.take_seconds += took
            self._grant = grant
            if evidence is not None and self._evidence is evidence:
                self._evidence = None  # delivered; newer evidence (kept) goes with the next take
            if grant.paused_until is not None and grant.paused_until > now:
                self._paused_until = max(self._paused_until or 0.0, grant.paused_until)
            if grant.window != self._window:
                self._window = grant.window
                if self._evidence is not None and self._evidence.window != grant.window:
                    self._evidence = (
                        BudgetEvidence(grant.window, paused_until=self._paused_until)
                        if self._paused_until
                        else None
                    )
            if grant.granted:
                self._tokens = grant.granted
                until = now + TOKEN_TTL_S
                # A token taken earlier is good only until the window may end; one taken after
                # that counts in the next window too (the store's carry), so it keeps its TTL.
                doubtful = grant.reset_at is not None and now >= grant.reset_at - WINDOW_END_DOUBT_S
                if grant.reset_at is not None and not doubtful:
                    until = min(until, grant.reset_at - WINDOW_END_DOUBT_S)
                self._tokens_until = until
                self._tokens_doubtful = doubtful
                return None
        return grant.wait_until if grant.wait_until is not None else now + UNKNOWN_RESET_POLL_S

    def acquire(self) -> float:
        """Block until a token is held and spent; returns the seconds waited."""
        waited = 0.0
        while not self._spend():
            with self._refill_lock:
                if self._spend():
                    break
                until = self._paused_wait() or self._take()
            if until is not None:
                pause = max(0.0, until - self._wall())
                self._sleep(pause)
                waited += pause
        return waited

    async def acquire_async(self) -> float:
        """Await a token; the store is asked from a worker thread, one take at a time."""
        if self._async_refill is None:
            self._async_refill = asyncio.Lock()
        waited = 0.0
        while not self._spend():
            async with self._async_refill:
                if self._spend():
                    break
                until = self._paused_wait() or await asyncio.to_thread(self._take)
            if until is not None:
                pause = max(0.0, until - self._wall())
                await asyncio.sleep(pause)
                waited += pause
        return waited

    def _paused_wait(self) -> float | None:
        """The local pause after a 429 this replica saw, once the store has been told of it."""
        with self._lock:
            if self._evidence is not None and self._evidence.paused_until is not None:
                return None  # tell the store first
            if self._paused_until is not None and self._paused_until > self._wall():
                return self._paused_until
        return None


def share_budget(client: AsyncClient, store: Store, *, batch_max: int = BATCH_MAX) -> bool:
    """Give ``client`` the budget its OAuth client has in ``store`` (every request of the
    service then takes its token there); False, keeping the in-process budget, for a client
    without an OAuth client id (a user's own token is not shared between replicas)."""
    settings = client.settings
    if not settings.client_id:
        return False
    key = f"{settings.endpoints().api_base_url} {settings.client_id}"
    shared = SharedBudget(store, key, batch_max=batch_max)
    client.budget = shared
    client.transport.budget = shared
    return True
