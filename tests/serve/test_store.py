"""The store contract, run against every implementation (see ``conftest.STORE_FACTORIES``)."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gcdial.serve import sqlite_store
from gcdial.serve.store import (
    SCHEMA_VERSION,
    ApiKeyRecord,
    AuditEntry,
    CallRecord,
    CampaignRecord,
    DncEntry,
    Store,
    WebhookEndpoint,
    body_fingerprint,
    hash_api_key,
)

DAY = 86_400.0


def test_is_a_store_at_the_current_schema(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.schema_version() == SCHEMA_VERSION
    store.check_writable()


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert body_fingerprint({"a": 1, "b": 2}) == body_fingerprint({"b": 2, "a": 1})
    assert body_fingerprint({"a": 1}) != body_fingerprint({"a": 2})


def test_idempotency_claim_in_progress_replay_mismatch(store: Store) -> None:
    first = store.claim_idempotency("k1", "abc", "fp1", "call-1", now=100.0, ttl_s=DAY)
    assert first.kind == "claimed"
    assert first.record.call_id == "call-1"
    running = store.claim_idempotency("k1", "abc", "fp1", "call-2", now=101.0, ttl_s=DAY)
    assert (running.kind, running.record.call_id) == ("in_progress", "call-1")
    other = store.claim_idempotency("k1", "abc", "fp2", "call-3", now=101.0, ttl_s=DAY)
    assert other.kind == "mismatch"
    store.complete_idempotency("k1", "abc", 202, '{"id": "call-1"}')
    replay = store.claim_idempotency("k1", "abc", "fp1", "call-4", now=102.0, ttl_s=DAY)
    assert replay.kind == "replay"
    assert (replay.record.status_code, replay.record.response_body) == (202, '{"id": "call-1"}')
    # Keys are scoped per API key: another key with the same value claims its own row.
    assert store.claim_idempotency("k2", "abc", "fp1", "c5", now=102.0, ttl_s=DAY).kind == "claimed"


def test_idempotency_expiry_and_stale_claims(store: Store) -> None:
    store.claim_idempotency("k", "old", "fp", "c1", now=0.0, ttl_s=10.0)
    store.claim_idempotency("k", "new", "fp", "c2", now=50.0, ttl_s=100.0)
    assert [r.key for r in store.stale_claims(older_than=20.0)] == ["old"]
    again = store.claim_idempotency("k", "old", "other", "c3", now=11.0, ttl_s=10.0)
    assert (again.kind, again.record.call_id) == ("claimed", "c3")
    assert store.purge_expired(now=30.0) == 1
    assert store.get_idempotency("k", "old") is None
    assert store.get_idempotency("k", "new") is not None


def test_expired_leases_are_purged_and_live_ones_kept(store: Store) -> None:
    # Page sessions are leases ("session:<nonce>"): an expired one must not stay forever.
    assert store.acquire_lease("session:gone", "key-1", now=0.0, ttl_s=10.0)
    assert store.acquire_lease("session:live", "key-1", now=0.0, ttl_s=100.0)
    assert store.purge_expired(now=50.0) == 1
    assert store.lease_holder("session:live", now=50.0) == "key-1"
    # The purged name is free, and a renewal after a purge takes it again.
    assert store.acquire_lease("session:gone", "key-2", now=51.0, ttl_s=10.0)
    assert store.lease_holder("session:gone", now=51.0) == "key-2"


def test_concurrent_claims_let_exactly_one_dial(store: Store) -> None:
    def claim(i: int) -> str:
        return store.claim_idempotency("k", "same", "fp", f"c{i}", now=1.0, ttl_s=DAY).kind

    with ThreadPoolExecutor(8) as pool:
        kinds = list(pool.map(claim, range(32)))
    assert kinds.count("claimed") == 1
    assert kinds.count("in_progress") == 31


def _call(call_id: str, at: float, **fields: str) -> CallRecord:
    values = {"agent": "alice@example.com", "to": "+14155550100", "status": "placing"} | fields
    return CallRecord(
        id=call_id,
        api_key_id="key1",
        created_at=at,
        updated_at=at,
        agent=values["agent"],
        to=values["to"],
        status=values["status"],
    )


def test_calls_insert_update_list(store: Store) -> None:
    store.insert_call(_call("c1", 1.0))
    store.insert_call(_call("c2", 2.0, agent="bob@example.com"))
    updated = store.update_call("c1", now=5.0, status="placed", conversation_id="conv-1")
    assert (updated.status, updated.conversation_id, updated.updated_at) == (
        "placed",
        "conv-1",
        5.0,
    )
    assert store.get_call("missing") is None
    assert [c.id for c in store.list_calls()] == ["c2", "c1"]
    assert [c.id for c in store.list_calls(status="placed")] == ["c1"]
    assert [c.id for c in store.list_calls(agent="bob@example.com")] == ["c2"]
    assert [c.id for c in store.list_calls(since=1.5)] == ["c2"]
    store.update_call("c1", now=6.0, agent_id="user-a")
    assert [c.id for c in store.list_calls(agent="user-a")] == ["c1"]
    assert [c.id for c in store.calls_with_status("placing")] == ["c2"]
    with pytest.raises(ValueError, match="cannot change"):
        store.update_call("c1", now=7.0, to="+1")


def test_a_dropped_claim_frees_its_key_and_removes_its_placing_row(store: Store) -> None:
    assert store.claim_idempotency("k", "a", "fp", "c1", now=1.0, ttl_s=DAY).kind == "claimed"
    store.insert_call(_call("c1", 1.0), durable=True)
    store.drop_claim("k", "a", "c1")
    assert store.get_idempotency("k", "a") is None
    assert store.get_call("c1") is None
    assert store.claim_idempotency("k", "a", "fp", "c2", now=2.0, ttl_s=DAY).kind == "claimed"
    # Only an unanswered claim of that call, and only a row still placing.
    store.drop_claim("k", "a", "c1")
    assert store.get_idempotency("k", "a") is not None
    store.insert_call(_call("c2", 2.0, status="placed"))
    store.complete_idempotency("k", "a", 202, "{}")
    store.drop_claim("k", "a", "c2")
    assert store.get_idempotency("k", "a") is not None
    assert store.get_call("c2") is not None


def test_audit_is_append_only_and_ordered(store: Store) -> None:
    first = store.append_audit(AuditEntry(at=1.0, api_key_id="k", action="dial", result="placed"))
    second = store.append_audit(AuditEntry(at=2.0, api_key_id="k", action="hangup", result="ok"))
    assert second > first
    assert [e.action for e in store.list_audit()] == ["dial", "hangup"]
    assert [e.action for e in store.list_audit(after_id=first)] == ["hangup"]
    assert not hasattr(store, "delete_audit")


def test_events_are_monotonic_and_filterable(store: Store) -> None:
    ids = [store.append_event("call.placed", f"c{i % 2}", "{}", now=float(i)).id for i in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    assert store.last_event_id() == ids[-1]
    assert [e.id for e in store.events_after(ids[1])] == ids[2:]
    assert [e.id for e in store.events_after(0, call_id="c1")] == [ids[1], ids[3]]


def test_outbox_gets_one_row_per_active_endpoint(store: Store) -> None:
    store.add_webhook(
        WebhookEndpoint(id="w1", url="http://127.0.0.1:1/a", secret="s1", created_at=0)
    )
    store.add_webhook(
        WebhookEndpoint(id="w2", url="http://127.0.0.1:1/b", secret="s2", created_at=1)
    )
    event = store.append_event("call.placed", "c1", json.dumps({"x": 1}), now=10.0)
    assert store.outbox_backlog() == 2
    assert store.claim_deliveries("r1", now=9.0, lease_s=30) == []
    leased = store.claim_deliveries("r1", now=10.0, lease_s=30)
    assert sorted(d.endpoint_id for d in leased) == ["w1", "w2"]
    assert all(d.event.id == event.id for d in leased)
    # Leased rows are invisible to another worker until the lease runs out.
    assert store.claim_deliveries("r2", now=20.0, lease_s=30) == []
    one, two = sorted(leased, key=lambda d: d.endpoint_id)
    store.ack_delivery(one.id, now=21.0)
    store.fail_delivery(two.id, next_attempt_at=100.0, error="HTTP 500", now=21.0)
    assert store.outbox_backlog() == 1
    assert store.claim_deliveries("r2", now=50.0, lease_s=30) == []
    retry = store.claim_deliveries("r2", now=100.0, lease_s=30)
    assert [(d.endpoint_id, d.attempts, d.last_error) for d in retry] == [("w2", 1, "HTTP 500")]
    store.fail_delivery(retry[0].id, next_attempt_at=None, error="gave up", now=101.0)
    assert store.outbox_backlog() == 0
    assert [d.endpoint_id for d in store.dead_deliveries()] == ["w2"]


def test_expired_lease_is_claimable_again(store: Store) -> None:
    store.add_webhook(WebhookEndpoint(id="w1", url="http://127.0.0.1:1/", secret="s", created_at=0))
    store.append_event("call.placed", "c1", "{}", now=0.0)
    assert len(store.claim_deliveries("dead-replica", now=0.0, lease_s=5)) == 1
    assert len(store.claim_deliveries("other", now=6.0, lease_s=5)) == 1


def test_deleted_webhook_gets_nothing(store: Store) -> None:
    store.add_webhook(WebhookEndpoint(id="w1", url="http://127.0.0.1:1/", secret="s", created_at=0))
    store.append_event("call.placed", "c1", "{}", now=0.0)
    assert store.delete_webhook("w1") is True
    assert store.delete_webhook("w1") is False
    assert store.outbox_backlog() == 0
    store.append_event("call.placed", "c1", "{}", now=1.0)
    assert store.outbox_backlog() == 0
    assert store.list_webhooks() == []
    assert store.get_webhook("w1") is None


def test_api_keys_by_hash_and_revoke(store: Store) -> None:
    record = ApiKeyRecord(
        id="key1",
        name="crm",
        key_hash=hash_api_key("gcd_secret"),
        created_at=1.0,
        scopes=("dial",),
        agents=("alice@example.com",),
        rate_per_minute=5,
    )
    store.add_api_key(record)
    found = store.find_api_key(hash_api_key("gcd_secret"))
    assert found is not None
    assert (found.name, found.scopes, found.agents, found.rate_per_minute) == (
        "crm",
        ("dial",),
        ("alice@example.com",),
        5,
    )
    assert store.find_api_key(hash_api_key("other")) is None
    with pytest.raises(ValueError, match="exists"):
        store.add_api_key(ApiKeyRecord(id="key2", name="crm", key_hash="h2", created_at=2.0))
    assert store.revoke_api_key("crm", now=3.0) is True
    assert store.revoke_api_key("crm", now=3.0) is False
    assert store.find_api_key(hash_api_key("gcd_secret")) is None
    assert [k.revoked_at for k in store.list_api_keys()] == [3.0]


def test_a_keys_rules_policy_is_kept(store: Store) -> None:
    store.add_api_key(
        ApiKeyRecord(id="k1", name="desk", key_hash="h1", created_at=1.0, rules="warn")
    )
    store.add_api_key(ApiKeyRecord(id="k2", name="crm", key_hash="h2", created_at=2.0))
    assert [(k.name, k.rules) for k in store.list_api_keys()] == [
        ("desk", "warn"),
        ("crm", "enforce"),
    ]


def test_dnc_list_all_or_none_pages_and_removal(store: Store) -> None:
    entries = [DncEntry(f"+1415555010{n}", float(n), "cli:ops", f"r{n}" if n % 2 else None)
               for n in range(5)]  # fmt: skip
    assert store.add_dnc(entries) == 5
    # A listed number keeps its first entry; only the new one counts.
    again = [DncEntry("+14155550100", 9.0, "key:crm", "later"), DncEntry("+14155550199", 9.0, "x")]
    assert store.add_dnc(again) == 1
    found = store.dnc_listed(["+14155550100", "+14155550101", "+19999999999"])
    assert set(found) == {"+14155550100", "+14155550101"}
    assert found["+14155550100"] == entries[0]
    assert found["+14155550101"].reason == "r1"
    first = store.list_dnc(limit=4)
    assert [e.number for e in first] == ["+14155550199", *(f"+1415555010{n}" for n in (4, 3, 2))]
    rest = store.list_dnc(limit=4, before=(first[-1].added_at, first[-1].number))
    assert [e.number for e in rest] == ["+14155550101", "+14155550100"]
    assert store.remove_dnc("+14155550100") is True
    assert store.remove_dnc("+14155550100") is False
    assert store.dnc_listed(["+14155550100"]) == {}


def test_lease_one_owner_until_expiry(store: Store) -> None:
    assert store.acquire_lease("camp", "r1", now=0.0, ttl_s=10) == 1
    assert store.acquire_lease("camp", "r2", now=5.0, ttl_s=10) is None
    assert store.acquire_lease("camp", "r1", now=8.0, ttl_s=10) == 1  # heartbeat: same epoch
    assert store.lease_holder("camp", now=17.0) == "r1"
    assert store.acquire_lease("camp", "r2", now=18.5, ttl_s=10) == 2  # r1 died: a new epoch
    store.release_lease("camp", "r1")
    assert store.lease_holder("camp", now=19.0) == "r2"
    store.release_lease("camp", "r2")
    assert store.lease_holder("camp", now=19.0) is None
    # Taken again after a release, even by its last holder: the epoch still grows.
    assert store.acquire_lease("camp", "r2", now=20.0, ttl_s=10) == 3


def test_a_campaign_lease_keeps_its_epoch_through_the_purge(store: Store) -> None:
    assert store.acquire_lease("campaign:cmp_1", "r1", now=0.0, ttl_s=10) == 1
    assert store.acquire_lease("session:s", "k", now=0.0, ttl_s=10) == 1
    store.purge_expired(now=100.0)
    assert store.acquire_lease("session:s", "k", now=100.0, ttl_s=10) == 1  # purged: afresh
    # The campaign's row stayed: a frozen holder of epoch 1 can never match the next holder.
    assert store.acquire_lease("campaign:cmp_1", "r1", now=100.0, ttl_s=10) == 2


def _campaign(campaign_id: str, key: str, at: float, state: str = "created") -> CampaignRecord:
    return CampaignRecord(
        id=campaign_id,
        name=f"list {campaign_id}",
        api_key_id=key,
        created_at=at,
        settings={"agents": ["alice"], "phone_column": "tel"},
        state=state,
        contacts=3,
    )


def test_campaigns_are_kept_listed_and_changed(store: Store) -> None:
    store.insert_campaign(_campaign("cmp_a", "key-1", 1.0), "tel\n+14155550100\n")
    store.insert_campaign(_campaign("cmp_b", "key-2", 2.0), "tel\n+14155550101\n")
    store.insert_campaign(_campaign("cmp_c", "key-1", 3.0), "tel\n+14155550102\n")
    got = store.get_campaign("cmp_a")
    assert got == _campaign("cmp_a", "key-1", 1.0)
    assert store.get_campaign("cmp_zzz") is None
    assert store.campaign_csv("cmp_b") == "tel\n+14155550101\n"
    assert store.campaign_csv("cmp_zzz") is None
    assert [c.id for c in store.list_campaigns()] == ["cmp_c", "cmp_b", "cmp_a"]
    assert [c.id for c in store.list_campaigns(api_key_id="key-1")] == ["cmp_c", "cmp_a"]
    assert [c.id for c in store.list_campaigns(limit=1)] == ["cmp_c"]
    changed = store.update_campaign(
        "cmp_a", state="running", history=["1 running"], error=None, states=("created",)
    )
    assert changed is not None
    assert changed.state == "running"
    assert changed.history == ["1 running"]
    # Guarded by the state it had: a second start finds it running and changes nothing.
    assert store.update_campaign("cmp_a", state="paused", states=("created",)) is None
    assert store.get_campaign("cmp_a").state == "running"  # type: ignore[union-attr]
    assert store.update_campaign("cmp_zzz", state="paused") is None
    with pytest.raises(ValueError, match="not campaign fields"):
        store.update_campaign("cmp_a", csv="x")
    with pytest.raises(ValueError, match="not a campaign state"):
        store.update_campaign("cmp_a", state="bogus")


def test_a_fenced_campaign_update_needs_the_lease_as_it_was(store: Store) -> None:
    store.insert_campaign(_campaign("cmp_a", "key-1", 1.0, "running"), "tel\n")
    epoch = store.acquire_lease("campaign:cmp_a", "r1", now=0.0, ttl_s=10)
    assert epoch == 1
    fence = ("campaign:cmp_a", "r1", epoch)
    assert store.update_campaign("cmp_a", fence=fence, contacts=5) is not None
    assert store.acquire_lease("campaign:cmp_a", "r2", now=11.0, ttl_s=10) == 2
    # r1 was frozen past its lease and r2 took it: r1's write is refused, whatever it says.
    assert store.update_campaign("cmp_a", fence=fence, state="paused") is None
    assert store.get_campaign("cmp_a").state == "running"  # type: ignore[union-attr]


def test_orphaned_campaigns_are_the_running_ones_without_a_live_lease(store: Store) -> None:
    for i, state in enumerate(("running", "running", "paused", "stopping", "running", "finished")):
        store.insert_campaign(_campaign(f"cmp_{i}", "key-1", float(i), state), "tel\n")
    store.acquire_lease("campaign:cmp_0", "r1", now=0.0, ttl_s=10)  # live until 10
    store.acquire_lease("campaign:cmp_1", "r1", now=0.0, ttl_s=5)  # expired at 5
    store.acquire_lease("campaign:cmp_4", "r1", now=0.0, ttl_s=10)
    store.release_lease("campaign:cmp_4", "r1")  # released (a run that ended badly)
    found = store.orphaned_campaigns(now=6.0)
    # cmp_3 is stopping with no lease (its replica died while stopping); cmp_2 and cmp_5 are
    # paused and finished, never taken.
    assert [c.id for c in found] == ["cmp_1", "cmp_3", "cmp_4"]
    assert [c.id for c in store.orphaned_campaigns(now=11.0)] == [
        "cmp_0", "cmp_1", "cmp_3", "cmp_4"
    ]  # fmt: skip


def test_a_sqlite_store_of_schema_5_gains_the_list_and_keeps_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version in range(1, 6):
            db.executescript(sqlite_store._MIGRATIONS[version])
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute(
            "INSERT INTO api_keys (id, name, key_hash, scopes, agents, rate_per_minute, "
            "created_at) VALUES ('k1', 'crm', 'h1', '[\"dial\"]', '[]', 60, 1)"
        )
    store = sqlite_store.SqliteStore(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert [(k.name, k.rules) for k in store.list_api_keys()] == [("crm", "enforce")]
        assert store.add_dnc([DncEntry("+14155550100", 2.0, "cli:ops")]) == 1
        assert list(store.dnc_listed(["+14155550100"])) == ["+14155550100"]
    finally:
        store.close()
