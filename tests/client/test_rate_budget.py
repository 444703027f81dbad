"""The shared RateBudget: rate-limit headers, 429 pauses, threads and tasks alike."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from gcdial.http import MAX_RETRY_AFTER_S, RATELIMIT_RESET_MARGIN_S, RateBudget

from .timefake import FakeTime

_REQ = httpx.Request("GET", "https://api.example.test/api/v2/users/x")


def _response(status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={}, headers={k.replace("_", "-"): v for k, v in headers.items()}, request=_REQ
    )


def test_fresh_budget_does_not_wait() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    assert budget.acquire() == 0.0
    assert budget.remaining is None
    assert budget.paused_until is None
    assert fake.sleeps == []


def test_observe_reads_the_ratelimit_headers() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.observe(
        _response(
            inin_ratelimit_count="12", inin_ratelimit_allowed="300", inin_ratelimit_reset="40"
        )
    )
    assert budget.limit == 300
    assert budget.remaining == 288
    budget.acquire()
    assert budget.remaining == 287


def test_a_429_pauses_every_caller_until_retry_after() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.observe(_response(429, retry_after="3"))
    assert budget.paused_until == fake.now + 3
    assert budget.acquire() == 3.0
    assert budget.acquire() == 0.0
    assert fake.sleeps == [3.0]
    assert budget.rate_limited_count == 1


def test_an_exhausted_window_waits_for_its_reset() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.observe(
        _response(
            inin_ratelimit_count="300", inin_ratelimit_allowed="300", inin_ratelimit_reset="5"
        )
    )
    assert budget.acquire() == pytest.approx(5.0 + RATELIMIT_RESET_MARGIN_S)
    # The new window starts from the known allowance (one request of it just taken), not from
    # "unlimited": a crowd of workers waiting at the reset cannot overrun it before a header comes.
    assert budget.remaining == 299
    assert budget.acquire() == 0.0


def _headers(count: int, allowed: int = 300, reset: int = 30) -> httpx.Response:
    return _response(
        inin_ratelimit_count=str(count),
        inin_ratelimit_allowed=str(allowed),
        inin_ratelimit_reset=str(reset),
    )


def test_a_lagging_header_never_hands_back_requests_already_spent() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.observe(_headers(10))
    for _ in range(50):
        budget.acquire()
    assert budget.remaining == 240
    # A response to a request sent before those 50 reports the count as it was then.
    budget.observe(_headers(20))
    assert budget.remaining == 240
    # A header that knows of more use than we do (another process on the token) lowers it.
    budget.observe(_headers(100))
    assert budget.remaining == 200


def test_headers_of_a_request_sent_in_an_earlier_window_are_ignored() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.observe(_headers(299, allowed=300, reset=2))
    budget.acquire()
    old_window = budget.window
    budget.acquire()  # the window is used up: waits for the reset, then a new window begins
    assert budget.window == old_window + 1
    assert budget.remaining == 299
    # A late answer to a request of the old window: "300 of 300 used, resets in 1 s".
    budget.observe(_headers(300, allowed=300, reset=1), window=old_window)
    assert budget.remaining == 299
    assert budget.acquire() == 0.0


def test_pauses_extend_and_are_capped() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.pause(2)
    budget.pause(1)
    assert budget.paused_until == fake.now + 2
    budget.pause(10_000)
    assert budget.paused_until == fake.now + MAX_RETRY_AFTER_S


def test_a_sleep_that_does_not_move_the_clock_still_counts() -> None:
    slept: list[float] = []
    budget = RateBudget(clock=lambda: 100.0, sleep=slept.append)
    budget.observe(_response(429, retry_after="4"))
    assert budget.acquire() == 4.0
    assert slept == [4.0]


def test_threads_share_one_pause() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.observe(_response(429, retry_after="2"))
    waited: list[float] = []

    def worker() -> None:
        waited.append(budget.acquire())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    start = fake.now
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waited) == 8
    # Each thread waits out the one shared pause, never a pause of its own on top of it.
    assert all(0.0 <= w <= 2.0 for w in waited)
    assert max(waited) == 2.0
    assert fake.now - start >= 2.0


async def test_tasks_share_one_pause() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep, async_sleep=fake.async_sleep)
    budget.observe(_response(429, retry_after="6"))
    start = fake.now
    waits = await asyncio.gather(*(budget.acquire_async() for _ in range(20)))
    assert max(waits) == 6.0
    # One shared pause: the clock moved by the Retry-After once, not once per task.
    assert fake.now - start == 6.0
    assert budget.paused_until is None


def test_the_window_ends_at_the_earliest_bound_its_responses_give() -> None:
    # The server's window ends at 1005.3: "reset" is the seconds left, rounded up, at arrival.
    fake = FakeTime(start=1000.0)
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    for at in (1000.0, 1000.2, 1000.35, 1000.9):
        fake.now = at
        left = 1005.3 - at
        budget.observe(_headers(100, allowed=300, reset=-int(-left // 1)))
    # 1000.0 + 6 and 1000.9 + 5 overshoot; 1000.35 + 5 is within 0.05 s of the true end.
    fake.now = 1001.0
    budget.observe(_headers(300, allowed=300, reset=5))
    waited = budget.acquire()
    assert fake.now == pytest.approx(1005.35 + RATELIMIT_RESET_MARGIN_S)
    assert waited == pytest.approx(fake.now - 1001.0)
    assert budget.remaining == 299


def test_the_history_says_how_long_each_window_held_its_callers() -> None:
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    budget.observe(_headers(297, allowed=300, reset=4))
    for _ in range(3):
        assert budget.acquire() == 0.0
    fake.now += 1.0
    budget.acquire()  # used up one second into the wait: held until the reset
    [window] = budget.history()
    assert (window.window, window.sent) == (0, 3)
    assert window.idle_s == pytest.approx(3.0 + RATELIMIT_RESET_MARGIN_S)


def test_a_request_sent_when_the_window_may_have_ended_counts_in_the_next() -> None:
    # "reset: 10" rounded up: the window ends somewhere in (now + 9, now + 10.1]. A request sent
    # at now + 9.5 may count in the next window: the next window starts with it spent, or the
    # budget would hand that window out whole and overrun it.
    fake = FakeTime()
    budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
    start = fake.now
    budget.observe(_headers(1, allowed=300, reset=10))
    window = budget.window
    fake.now = start + 9.5
    assert budget.acquire() == 0.0
    assert budget.acquire() == 0.0
    fake.now = start + 10 + RATELIMIT_RESET_MARGIN_S
    budget.acquire()
    assert budget.window == window + 1
    assert budget.remaining == 300 - 2 - 1
