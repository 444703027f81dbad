import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gcdial.campaign.pacing import AgentPool, Assignment, Dispatcher, PoolAgent
from gcdial.errors import InputError

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ALICE = PoolAgent("u-a", "alice@example.com")
BOB = PoolAgent("u-b", "bob@example.com")
CAROL = PoolAgent("u-c", "carol@example.com")


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def dispatcher(*agents: PoolAgent, cap: int | None = None) -> tuple[Dispatcher[str], FakeTime]:
    fake = FakeTime()
    return Dispatcher(
        AgentPool(agents), max_concurrent=cap, clock=fake.clock, sleep=fake.sleep
    ), fake


def test_pool_lookup_and_errors() -> None:
    pool = AgentPool([ALICE, BOB])
    assert pool.find("ALICE@example.com") is ALICE
    assert pool.find("u-b") is BOB
    assert pool.find("nobody") is None
    with pytest.raises(InputError, match="nobody to dial through"):
        AgentPool([])
    with pytest.raises(InputError, match="listed twice"):
        AgentPool([ALICE, ALICE])


def test_one_live_call_per_agent_and_idle_longest_first() -> None:
    d, _ = dispatcher(ALICE, BOB)
    for name in "wxyz":
        d.add(name)
    first = d.poll()
    second = d.poll()
    assert first is not None
    assert second is not None
    assert [(first.item, first.agent), (second.item, second.agent)] == [("w", ALICE), ("x", BOB)]
    assert d.poll() is None  # both agents busy
    d.finish(second)  # Bob is free first now, so Bob gets the next contact
    third = d.poll()
    assert third is not None
    assert (third.item, third.agent) == ("y", BOB)
    with pytest.raises(ValueError, match="not live"):
        d.finish(second)


def test_concurrency_cap() -> None:
    d, _ = dispatcher(ALICE, BOB, CAROL, cap=2)
    for name in "abc":
        d.add(name)
    assert d.poll() is not None
    held = d.poll()
    assert held is not None
    assert d.poll() is None
    assert d.live == 2
    d.finish(held)
    assert d.poll() is not None
    with pytest.raises(InputError):
        Dispatcher(AgentPool([ALICE]), max_concurrent=0)


def test_contact_naming_an_agent_waits_for_that_agent_only() -> None:
    d, _ = dispatcher(ALICE, BOB)
    d.add("for-bob-1", agent="bob@example.com")
    d.add("for-bob-2", agent="u-b")
    d.add("anyone-1")
    d.add("anyone-2")
    got = [d.poll(), d.poll()]
    assert [(a.item, a.agent) for a in got if a] == [("anyone-1", ALICE), ("for-bob-1", BOB)]
    alice = got[0]
    assert alice is not None
    d.finish(alice)
    # Bob is busy: Alice takes the next unpinned contact rather than waiting behind Bob's.
    nxt = d.poll()
    assert nxt is not None
    assert (nxt.item, nxt.agent) == ("anyone-2", ALICE)
    assert d.poll() is None
    with pytest.raises(ValueError, match="not in the pool"):
        d.add("x", agent="mallory@example.com")


def test_deferred_contacts_wait_in_due_order() -> None:
    d, _ = dispatcher(ALICE)
    d.add("later", due=T0 + timedelta(hours=2))
    d.add("soon", due=T0 + timedelta(hours=1))
    d.add("now")
    assert d.next_due() == T0
    first = d.poll()
    assert first is not None
    assert first.item == "now"
    d.finish(first)
    assert d.poll() is None  # nothing due yet
    assert d.queued == 2


async def test_next_sleeps_until_due_and_ends_when_idle() -> None:
    d, fake = dispatcher(ALICE)
    d.add("later", due=T0 + timedelta(hours=2))
    d.add("soon", due=T0 + timedelta(minutes=30))
    order = []
    while (a := await d.next()) is not None:
        order.append((a.item, fake.now))
        d.finish(a)
    assert order == [("soon", T0 + timedelta(minutes=30)), ("later", T0 + timedelta(hours=2))]
    assert await d.next() is None


async def test_stop_hands_out_nothing_more() -> None:
    d, _ = dispatcher(ALICE)
    d.add("a")
    d.add("b")
    first = await d.next()
    assert first is not None
    waiter = asyncio.ensure_future(d.next())
    await asyncio.sleep(0)
    assert not waiter.done()  # waiting for Alice to be free
    d.stop()
    assert await waiter is None
    d.finish(first)
    assert await d.next() is None
    assert d.queued == 1


async def test_retire_returns_orphans() -> None:
    d, _ = dispatcher(ALICE, BOB)
    d.add("bob-now", agent="u-b")
    d.add("bob-later", agent="u-b", due=T0 + timedelta(hours=1))
    d.add("any")
    assert sorted(d.retire("u-b")) == ["bob-later", "bob-now"]
    a = await d.next()
    assert a is not None
    assert (a.item, a.agent) == ("any", ALICE)
    with pytest.raises(ValueError, match="not in the pool"):
        d.add("again", agent="u-b")


async def test_workers_never_overlap_an_agent() -> None:
    agents = [PoolAgent(f"u-{i}", f"agent{i}@example.com") for i in range(5)]
    fake = FakeTime()
    d: Dispatcher[int] = Dispatcher(
        AgentPool(agents), max_concurrent=3, clock=fake.clock, sleep=fake.sleep
    )
    for n in range(40):
        d.add(n, due=T0 + timedelta(seconds=n % 7), agent=agents[0].id if n % 10 == 0 else None)
    live: dict[str, int] = {}
    peak = 0
    done: list[int] = []

    async def call(a: Assignment[int]) -> None:
        nonlocal peak
        assert a.agent.id not in live
        live[a.agent.id] = a.item
        peak = max(peak, len(live))
        await asyncio.sleep(0.001 * (a.item % 3))
        del live[a.agent.id]
        done.append(a.item)
        d.finish(a)

    tasks = []
    while (a := await d.next()) is not None:
        tasks.append(asyncio.ensure_future(call(a)))
    await asyncio.gather(*tasks)
    assert sorted(done) == list(range(40))
    assert peak == 3
