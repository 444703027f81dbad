"""The CRM groundwork in both stores: a store of schema 3 (before webhook subscriptions) is
migrated on open and keeps delivering every type to its old endpoints; subscriptions, delivery
listing, redelivery, attribute and cursor reads, on real SQLite and real PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg

from gcdial.serve import pg_store, sqlite_store
from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import (
    SCHEMA_VERSION,
    CallRecord,
    CampaignRecord,
    Store,
    WebhookEndpoint,
)

SECRET = "whsec_" + "A" * 44


def _call(call_id: str, at: float, **request: object) -> CallRecord:
    body = {"agent": "alice@example.com", "to": "+14155550100", **request}
    return CallRecord(
        id=call_id, api_key_id="k", agent="alice@example.com", to="+14155550100",
        status="placed", created_at=at, updated_at=at, request=json.dumps(body),
    )  # fmt: skip


def _old_rows_then_new(store: Store) -> None:
    """What a schema-3 store held still works, and the new columns do what they say."""
    assert store.schema_version() == SCHEMA_VERSION  # 3 and what came after it
    (old,) = store.list_webhooks()
    assert old.events is None  # registered before subscriptions: every type
    store.add_webhook(
        WebhookEndpoint(
            id="new", url="https://r.example/h", secret=SECRET, created_at=2, events=("call.ended",)
        )
    )
    assert {w.id: w.events for w in store.list_webhooks()} == {"old": None, "new": ("call.ended",)}
    store.append_event("call.placed", "c1", "{}", now=10.0)
    store.append_event("call.ended", "c1", "{}", now=11.0)
    old_types = [d.event.type for d in store.list_deliveries("old")]
    assert old_types == ["call.ended", "call.placed", "call.placed"]  # one from before
    (only,) = store.list_deliveries("new")
    assert (only.event.type, only.state, only.attempts) == ("call.ended", "pending", 0)
    store.fail_delivery(only.id, next_attempt_at=None, error="HTTP 500", now=12.0)
    (dead,) = store.list_deliveries("new", state="dead")
    assert (dead.state, dead.last_error, dead.done_at) == ("dead", "HTTP 500", 12.0)
    assert not store.redeliver("old", dead.id, now=13.0)  # not that endpoint's
    assert store.redeliver("new", dead.id, now=13.0)
    assert not store.redeliver("new", dead.id, now=13.0)  # no longer dead
    (again,) = store.list_deliveries("new")
    assert (again.state, again.attempts, again.next_attempt_at) == ("pending", 0, 13.0)
    # Calls of before the migration are read, filtered and paged like new ones.
    store.insert_call(_call("c2", 5.0, label="crm", attributes={"ticket": "4711", "o'k": "x"}))
    store.insert_call(_call("c3", 5.0, attributes={"ticket": "4712"}))
    assert [c.id for c in store.list_calls(attributes={"ticket": "4711"})] == ["c2"]
    assert [c.id for c in store.list_calls(attributes={"o'k": "x", "ticket": "4711"})] == ["c2"]
    assert [c.id for c in store.list_calls(attributes={"ticket": "4713"})] == []
    assert [c.id for c in store.list_calls(label="crm")] == ["c2"]
    assert [c.id for c in store.list_calls(before=(5.0, "c3"))] == ["c2", "c1"]
    assert [c.id for c in store.list_calls(until=5.0)] == ["c1"]
    assert [c.id for c in store.list_calls(outcome="placed", limit=1)] == ["c3"]


def test_sqlite_store_of_schema_3_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version in (1, 2, 3):
            db.executescript(sqlite_store._MIGRATIONS[version])
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute(
            "INSERT INTO webhooks (id, url, secret, created_at) VALUES ('old', "
            "'https://r.example/o', ?, 1)",
            (SECRET,),
        )
        db.execute(
            "INSERT INTO events (type, call_id, data, at) VALUES ('call.placed', 'c1', '{}', 1)"
        )
        db.execute(
            "INSERT INTO outbox (endpoint_id, event_id, next_attempt_at) VALUES ('old', 1, 1)"
        )
        db.execute(
            'INSERT INTO calls (id, api_key_id, agent, "to", status, request, created_at, '
            "updated_at) VALUES ('c1', 'k', 'alice@example.com', '+14155550100', 'placed', "
            '\'{"to": "+14155550100"}\', 1, 1)'
        )
    store = SqliteStore(path)
    try:
        _old_rows_then_new(store)
    finally:
        store.close()


def test_postgres_store_of_schema_3_is_migrated(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip
        for version in (1, 2, 3):
            for statement in pg_store._statements(pg_store._MIGRATIONS[version]):
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        conn.execute(
            "INSERT INTO webhooks (id, url, secret, created_at) VALUES ('old', "
            "'https://r.example/o', %s, 1)",
            (SECRET,),
        )
        conn.execute("UPDATE event_counter SET last_id = 1")
        conn.execute(
            "INSERT INTO events (id, type, call_id, data, at) "
            "VALUES (1, 'call.placed', 'c1', '{}', 1)"
        )
        conn.execute(
            "INSERT INTO outbox (endpoint_id, event_id, next_attempt_at) VALUES ('old', 1, 1)"
        )
        conn.execute(
            'INSERT INTO calls (id, api_key_id, agent, "to", status, request, created_at, '
            "updated_at) VALUES ('c1', 'k', 'alice@example.com', '+14155550100', 'placed', "
            '\'{"to": "+14155550100"}\', 1, 1)'
        )
    store = PostgresStore(pg_url)
    try:
        _old_rows_then_new(store)
    finally:
        store.close()


def _leases_then_campaigns(store: Store) -> None:
    """A store migrated from schema 8: its live leases are held at epoch 1 (a truthy epoch: a
    page session's renewal must still succeed), and campaigns can be kept."""
    assert store.schema_version() == SCHEMA_VERSION
    assert store.acquire_lease("session:s1", "key-1", now=10.0, ttl_s=100) == 1  # renewed
    assert store.acquire_lease("campaign:cmp_1", "r2", now=10.0, ttl_s=10) is None  # r1's
    assert store.acquire_lease("campaign:cmp_1", "r2", now=200.0, ttl_s=10) == 2  # expired
    store.insert_campaign(
        CampaignRecord(id="cmp_1", name="x", api_key_id="k", created_at=1.0, settings={}),
        "phone\n",
    )
    assert [c.id for c in store.list_campaigns()] == ["cmp_1"]


def test_sqlite_store_of_schema_8_gains_lease_epochs_and_campaigns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version in range(1, 9):
            db.executescript(sqlite_store._MIGRATIONS[version])
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute("INSERT INTO leases VALUES ('session:s1', 'key-1', 100)")
        db.execute("INSERT INTO leases VALUES ('campaign:cmp_1', 'r1', 100)")
    store = SqliteStore(path)
    try:
        _leases_then_campaigns(store)
    finally:
        store.close()


def test_postgres_store_of_schema_8_gains_lease_epochs_and_campaigns(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip
        for version in range(1, 9):
            for statement in pg_store._statements(pg_store._MIGRATIONS[version]):
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        conn.execute("INSERT INTO leases VALUES ('session:s1', 'key-1', 100)")
        conn.execute("INSERT INTO leases VALUES ('campaign:cmp_1', 'r1', 100)")
    store = PostgresStore(pg_url)
    try:
        _leases_then_campaigns(store)
    finally:
        store.close()
