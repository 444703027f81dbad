"""SharedBudget, the service's Genesys budget in the store, as two replicas on one SQLite file
see it: tokens taken in batches, a 429 seen by one holds the other, a token never outlives its
window, and a store that cannot grant tokens stops the request rather than letting it out."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gcdial.errors import BudgetUnavailableError, CallEffect
from gcdial.serve.budget import SharedBudget
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import StoreError

_REQ = httpx.Request("GET", "https://api.example.test/api/v2/users/x")
KEY = "https://api.example.test client-a"


class Wall:
    """Fake epoch time that a sleep moves on."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _response(status: int = 200, **headers: str) -> httpx.Response:
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    return httpx.Response(status, json={}, headers=named, request=_REQ)


def _headers(*, count: int, allowed: int, reset: int) -> httpx.Response:
    return _response(
        inin_ratelimit_count=str(count),
        inin_ratelimit_allowed=str(allowed),
        inin_ratelimit_reset=str(reset),
    )


def _pair(tmp_path: Path, wall: Wall) -> tuple[SharedBudget, SharedBudget, list[SqliteStore]]:
    stores = [SqliteStore(tmp_path / "serve.sqlite3") for _ in range(2)]
    a, b = (
        SharedBudget(s, KEY, batch_max=4, wall=wall, clock=wall, sleep=wall.sleep) for s in stores
    )
    return a, b, stores


def test_two_replicas_together_get_one_allowance(tmp_path: Path) -> None:
    wall = Wall()
    a, b, stores = _pair(tmp_path, wall)
    try:
        a.acquire()
        a.observe(
            _headers(count=1, allowed=6, reset=9),
            window=a.window,
        )
        sent = 1
        for _ in range(5):
            (a if sent % 2 else b).acquire()
            sent += 1
        assert wall.slept == []
        # The seventh request of the window waits for its end, whichever replica sends it.
        b.acquire()
        assert wall.slept == [pytest.approx(9.1, abs=0.01)]
    finally:
        for store in stores:
            store.close()


def test_a_429_seen_by_one_replica_holds_the_other(tmp_path: Path) -> None:
    wall = Wall()
    a, b, stores = _pair(tmp_path, wall)
    try:
        a.acquire()
        a.observe(_response(429, retry_after="3"), window=a.window)
        assert a.rate_limited_count == 1
        a.acquire()  # tells the store, then waits out the pause
        assert sum(wall.slept) == pytest.approx(3.0)
        wall.now -= 2  # b asks one second into a's pause
        b.acquire()
        assert sum(wall.slept[1:]) == pytest.approx(2.0)
    finally:
        for store in stores:
            store.close()


def test_a_token_held_past_its_windows_end_is_dropped(tmp_path: Path) -> None:
    wall = Wall()
    a, _, stores = _pair(tmp_path, wall)
    try:
        for _ in range(4):
            a.acquire()  # the rate grows: the next take reserves a batch
        a.acquire()
        held = a.stats()["takes"]
        a.observe(
            _headers(count=5, allowed=100, reset=1),
            window=a.window,
        )
        wall.now += 1.5
        window = a.window
        a.acquire()
        assert a.stats()["takes"] == held + 1
        assert a.window == window + 1
    finally:
        for store in stores:
            store.close()


class BrokenStore:
    def take_budget(self, *args: object, **kwargs: object) -> None:
        raise StoreError("the store is down")


def test_a_store_that_cannot_grant_stops_the_request() -> None:
    budget = SharedBudget(BrokenStore(), KEY)  # type: ignore[arg-type]
    with pytest.raises(BudgetUnavailableError) as raised:
        budget.acquire()
    assert raised.value.call_effect is CallEffect.NOT_PLACED
    assert "the store is down" in str(raised.value)


def test_a_late_429_from_an_earlier_window_still_holds_everyone(tmp_path: Path) -> None:
    wall = Wall()
    a, b, stores = _pair(tmp_path, wall)
    try:
        a.acquire()
        old = a.window
        a.observe(_headers(count=1, allowed=100, reset=1), window=old)
        wall.now += 1.5
        a.acquire()  # the window has turned
        assert a.window == old + 1
        a.observe(_response(429, retry_after="2"), window=old)
        a.acquire()
        assert wall.slept[-1] == pytest.approx(2.0)
        wall.now -= 1.0
        b.acquire()
        assert wall.slept[-1] == pytest.approx(1.0)
    finally:
        for store in stores:
            store.close()


def test_a_token_taken_when_the_window_may_have_ended_counts_in_the_next(tmp_path: Path) -> None:
    # The server's window really ends at T+9.4; it says "reset: 10" (rounded up) at T, so the
    # end is known only to lie in (T+9, T+10.1]. A request sent at T+9.5 counts in the next
    # window at the server: the store must count it there too, or it hands that window out whole
    # again (one request too many: a 429).
    wall = Wall()
    a, b, stores = _pair(tmp_path, wall)
    try:
        start = wall.now
        a.acquire()
        a.observe(_headers(count=1, allowed=5, reset=10), window=a.window)
        a.acquire()  # its take tells the store the window's end
        window = a.window
        wall.now = start + 9.5
        b.acquire()  # the window may have ended: counted in this one and the next
        assert wall.slept == []
        wall.now = start + 10.1
        for _ in range(4):
            a.acquire()
        assert a.window == window + 1
        assert wall.slept == []
        a.observe(_headers(count=5, allowed=5, reset=30), window=a.window)
        a.acquire()  # the next window's fifth request from a: b's took its place, so it waits
        assert wall.slept == [pytest.approx(30.1, abs=0.001)]
        assert a.window == window + 2
    finally:
        for store in stores:
            store.close()


def test_a_held_token_is_dropped_when_the_window_may_have_ended(tmp_path: Path) -> None:
    wall = Wall()
    a, _, stores = _pair(tmp_path, wall)
    try:
        start = wall.now
        for _ in range(4):
            a.acquire()  # the rate grows: the next take reserves a batch
        a.acquire()
        takes = a.stats()["takes"]
        a.observe(_headers(count=5, allowed=100, reset=2), window=a.window)
        wall.now = start + 1.5  # inside the second before the latest end (start + 2.1)
        a.acquire()
        # The tokens it held were dropped: the one spent now is taken afresh, counted in both.
        assert a.stats()["takes"] == takes + 1
        assert wall.slept == []
    finally:
        for store in stores:
            store.close()
