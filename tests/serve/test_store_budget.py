"""The Genesys request budget in the store (SQLite and PostgreSQL): one row per OAuth client,
tokens granted in one transaction, fed by the ratelimit headers' evidence; replicas racing for
tokens on PostgreSQL never get more than the window allows."""

from __future__ import annotations

import threading

from gcdial.serve.budget import BudgetEvidence
from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.store import Store

T0 = 1_000_000.0
KEY = "https://api.example.test client-a"


def test_tokens_are_granted_up_to_the_allowance_the_headers_gave(store: Store) -> None:
    # Before any response the allowance is unknown: the first take is granted in full.
    first = store.take_budget(KEY, 5, now=T0, evidence=None)
    assert (first.window, first.granted, first.limit) == (0, 5, None)
    told = BudgetEvidence(0, allowed=12, count=3, reset_at=T0 + 30)
    second = store.take_budget(KEY, 5, now=T0 + 1, evidence=told)
    # 5 granted before (in flight: the count of 3 does not hand them back), 5 now, 2 left.
    assert (second.granted, second.spent, second.limit, second.reset_at) == (5, 10, 12, T0 + 30)
    third = store.take_budget(KEY, 5, now=T0 + 2, evidence=None)
    assert (third.granted, third.spent) == (2, 12)
    refused = store.take_budget(KEY, 5, now=T0 + 3, evidence=None)
    assert (refused.granted, refused.wait_until) == (0, T0 + 30)
    # Another client's budget is its own.
    assert store.take_budget("other", 5, now=T0 + 3, evidence=None).granted == 5


def test_the_window_turns_at_the_earliest_end_reported(store: Store) -> None:
    store.take_budget(KEY, 4, now=T0, evidence=BudgetEvidence(0, allowed=4))
    store.take_budget(KEY, 1, now=T0, evidence=BudgetEvidence(0, reset_at=T0 + 20))
    later = store.take_budget(KEY, 1, now=T0 + 5, evidence=BudgetEvidence(0, reset_at=T0 + 9))
    assert (later.granted, later.wait_until) == (0, T0 + 9)
    turned = store.take_budget(KEY, 3, now=T0 + 9, evidence=None)
    assert (turned.window, turned.granted, turned.spent, turned.reset_at) == (1, 3, 3, None)
    # Evidence of the old window says nothing about the new one.
    stale = BudgetEvidence(0, allowed=4, count=4, reset_at=T0 + 9.5)
    assert store.take_budget(KEY, 1, now=T0 + 9.1, evidence=stale).granted == 1


def test_a_429_holds_every_replica_until_retry_after(store: Store) -> None:
    store.take_budget(KEY, 2, now=T0, evidence=BudgetEvidence(0, allowed=100))
    pause = BudgetEvidence(0, paused_until=T0 + 4)
    held = store.take_budget(KEY, 2, now=T0 + 1, evidence=pause)
    assert (held.granted, held.wait_until, held.paused_until) == (0, T0 + 4, T0 + 4)
    # Another replica, told nothing, is held too.
    assert store.take_budget(KEY, 2, now=T0 + 2, evidence=None).granted == 0
    assert store.take_budget(KEY, 2, now=T0 + 4, evidence=None).granted == 2


def test_a_header_count_above_the_grants_is_believed(store: Store) -> None:
    # Someone outside the store (a CLI run on the same OAuth client) spent requests too.
    store.take_budget(KEY, 2, now=T0, evidence=BudgetEvidence(0, allowed=10))
    grant = store.take_budget(KEY, 10, now=T0 + 1, evidence=BudgetEvidence(0, count=7))
    assert (grant.granted, grant.spent) == (3, 10)


def _take_all(store: PostgresStore, got: list[int], barrier: threading.Barrier) -> None:
    barrier.wait()
    for _ in range(40):
        got.append(store.take_budget(KEY, 3, now=T0 + 1, evidence=None).granted)


def test_replicas_racing_for_tokens_never_share_one(pg_url: str) -> None:
    stores = [PostgresStore(pg_url) for _ in range(3)]
    try:
        stores[0].take_budget(KEY, 0, now=T0, evidence=BudgetEvidence(0, allowed=200))
        barrier = threading.Barrier(3)
        got: list[int] = []
        threads = [threading.Thread(target=_take_all, args=(s, got, barrier)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(got) == 120
        assert sum(got) == 200
        assert stores[1].take_budget(KEY, 1, now=T0 + 1, evidence=None).spent == 200
    finally:
        for store in stores:
            store.close()


def test_tokens_taken_when_the_window_may_have_ended_count_in_the_next(store: Store) -> None:
    told = BudgetEvidence(0, allowed=10, reset_at=T0 + 10)
    store.take_budget(KEY, 1, now=T0, evidence=told)
    assert store.take_budget(KEY, 2, now=T0 + 8.8, evidence=None).granted == 2
    doubt = store.take_budget(KEY, 3, now=T0 + 9.0, evidence=None)
    assert (doubt.granted, doubt.window, doubt.spent) == (3, 0, 6)
    turned = store.take_budget(KEY, 10, now=T0 + 10, evidence=BudgetEvidence(1, allowed=10))
    # The 3 taken in the doubt count in the new window: 7 left of its 10.
    assert (turned.window, turned.granted, turned.spent) == (1, 7, 10)
