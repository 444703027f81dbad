"""The store's rows of agents with a live call (both SQLite and PostgreSQL): one per agent,
claimed with the dial's idempotency key in one transaction, released, expiring with a dead
owner; on PostgreSQL, two connections racing for one agent never both win."""

from __future__ import annotations

import threading

from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.store import CallRecord, Store

T0 = 1_000_000.0


def _claim(store: Store, key: str, call_id: str, agent: str = "u-alice", now: float = T0) -> object:
    return store.claim_idempotency(
        "k1", key, "fp-" + key, call_id, now=now, ttl_s=600, owner="r1", agent=agent, agent_ttl_s=30
    )


def test_a_busy_agent_is_refused_and_the_key_is_not_claimed(store: Store) -> None:
    first = _claim(store, "one", "call_1")
    assert first.kind == "claimed"  # type: ignore[attr-defined]
    second = _claim(store, "two", "call_2")
    assert second.kind == "agent_busy"  # type: ignore[attr-defined]
    assert second.live_call == "call_1"  # type: ignore[attr-defined]
    assert store.get_idempotency("k1", "two") is None  # nothing written: it can be sent again
    # A retry of the first key replays its claim; it is not refused as busy.
    assert _claim(store, "one", "call_1b").kind == "in_progress"  # type: ignore[attr-defined]
    assert store.live_agents(now=T0) == {"u-alice": "call_1"}
    store.release_agent("call_1")
    assert _claim(store, "two", "call_2").kind == "claimed"  # type: ignore[attr-defined]


def test_rows_expire_unless_their_owner_renews_them(store: Store) -> None:
    assert store.claim_agent("u-bob", "call_a", owner="dead", now=T0, ttl_s=30) is None
    assert store.claim_agent("u-bob", "call_b", owner="live", now=T0 + 10, ttl_s=30) == "call_a"
    assert store.renew_agents("dead", now=T0 + 31, ttl_s=30) == 0  # too late: already expired
    assert store.claim_agent("u-bob", "call_b", owner="live", now=T0 + 31, ttl_s=30) is None
    assert store.renew_agents("live", now=T0 + 50, ttl_s=30) == 1
    assert store.claim_agent("u-bob", "call_c", owner="x", now=T0 + 70, ttl_s=30) == "call_b"
    store.rebind_agent("call_b", "call_final")
    assert store.live_agents(now=T0 + 70) == {"u-bob": "call_final"}
    assert store.claim_agent("u-bob", "call_final", owner="live", now=T0 + 70, ttl_s=30) is None


def _call(call_id: str, status: str, outcome: str | None = None) -> CallRecord:
    return CallRecord(
        id=call_id, api_key_id="k1", agent="a@example.com", to="+14155550100",
        status=status, outcome=outcome, created_at=T0, updated_at=T0,
    )  # fmt: skip


def test_the_heartbeat_drops_rows_of_settled_calls_and_lets_unknown_ones_lapse(
    store: Store,
) -> None:
    # Rows whose release never reached the store (a store fault at the call's end): the call is
    # over, so the owner's heartbeat must not keep its agent busy for good.
    store.insert_call(_call("ended", "placed", outcome="answered"))
    store.insert_call(_call("refused", "refused"))
    store.insert_call(_call("gone", "not_placed"))
    store.insert_call(_call("live", "placed"))
    store.insert_call(_call("unknown", "unknown"))
    for agent, call_id in [
        ("u-1", "ended"), ("u-2", "refused"), ("u-3", "gone"), ("u-4", "live"),
        ("u-5", "unknown"), ("u-6", "not-yet-written"),
    ]:  # fmt: skip
        assert store.claim_agent(agent, call_id, owner="r1", now=T0, ttl_s=30) is None
    # The live call and the claim whose call row is not written yet are renewed; the unknown
    # call keeps its row until it lapses; the settled ones are freed at once.
    assert store.renew_agents("r1", now=T0 + 20, ttl_s=30) == 2
    assert store.live_agents(now=T0 + 20) == {
        "u-4": "live", "u-5": "unknown", "u-6": "not-yet-written",
    }  # fmt: skip
    assert store.live_agents(now=T0 + 40) == {"u-4": "live", "u-6": "not-yet-written"}
    assert store.claim_agent("u-1", "next", owner="r2", now=T0 + 20, ttl_s=30) is None


def _race(
    store: PostgresStore, n: int, round_: int, barrier: threading.Barrier, kinds: list[str]
) -> None:
    barrier.wait()
    claim = store.claim_idempotency(
        "k1", f"r{round_}-{n}", "fp", f"call_{round_}_{n}", now=T0 + round_,
        ttl_s=600, owner=f"replica{n}", agent="u-carl", agent_ttl_s=30,
    )  # fmt: skip
    kinds.append(claim.kind)


def test_two_replicas_racing_for_one_agent_never_both_win(pg_url: str) -> None:
    stores = [PostgresStore(pg_url) for _ in range(2)]
    try:
        for round_ in range(20):
            barrier = threading.Barrier(2)
            kinds: list[str] = []
            threads = [
                threading.Thread(target=_race, args=(s, n, round_, barrier, kinds))
                for n, s in enumerate(stores)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(kinds) == ["agent_busy", "claimed"], (round_, kinds)
            holder = stores[0].live_agents(now=T0 + round_)["u-carl"]
            stores[1].release_agent(holder)
    finally:
        for store in stores:
            store.close()


def test_a_dial_without_an_agent_claims_only_the_key(store: Store) -> None:
    claim = store.claim_idempotency("k1", "x", "fp", "call_x", now=T0, ttl_s=600)
    assert claim.kind == "claimed"
    assert store.live_agents(now=T0) == {}
