"""What only the PostgreSQL store promises: two replicas (two stores on one database) never both
dial, never both deliver, see each other's events in order and at once, and a PostgreSQL restart
in the middle of a dial is ridden through or reported clearly, never turned into a second dial."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from gcdial.serve.pg_store import PostgresStore, describe_url
from gcdial.serve.store import SCHEMA_VERSION, AuditEntry, StoreError, WebhookEndpoint
from pgcluster import PgCluster

DAY = 86_400.0


@pytest.fixture
def replicas(pg_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two replicas have."""
    first = PostgresStore(pg_url)
    second = PostgresStore(pg_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_two_replicas_racing_on_one_key_dial_once(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    def claim(i: int) -> tuple[str, str]:
        store = replicas[i % 2]
        found = store.claim_idempotency("crm", "k-1", "fp", f"call-{i}", now=1.0, ttl_s=DAY)
        return found.kind, found.record.call_id

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(claim, range(64)))
    kinds = [kind for kind, _ in results]
    assert kinds.count("claimed") == 1
    assert kinds.count("in_progress") == 63
    assert len({call_id for _, call_id in results}) == 1


def test_a_claim_retried_after_its_commit_was_acknowledged_to_nobody_is_still_ours(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, other = replicas
    assert first.claim_idempotency("crm", "k", "fp", "call-1", now=1.0, ttl_s=DAY).kind == "claimed"
    # The same attempt (same call id) running again: it may dial, since it is the only claimant.
    again = first.claim_idempotency("crm", "k", "fp", "call-1", now=1.5, ttl_s=DAY)
    assert again.kind == "claimed"
    # Any other request with that key waits for it.
    assert other.claim_idempotency("crm", "k", "fp", "call-2", now=2.0, ttl_s=DAY).kind == (
        "in_progress"
    )


def test_migrations_run_once_even_when_replicas_start_together(pg_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(pg_url), range(4)))
    try:
        assert {store.schema_version() for store in stores} == {SCHEMA_VERSION}
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT version FROM schema_version").fetchall()
        assert rows == [(version,) for version in range(1, SCHEMA_VERSION + 1)]
    finally:
        for store in stores:
            store.close()


def test_a_database_from_a_newer_gcdial_is_refused(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=r"newer than this gcdial .* upgrade gcdial"):
        PostgresStore(pg_url)


def test_an_unreachable_server_is_a_clear_error_without_the_password(
    pg_cluster: PgCluster,
) -> None:
    with psycopg.connect(pg_cluster.url()) as probe:
        probe.execute("SELECT 1")
    closed_port = pg_cluster.port + 1 if pg_cluster.port < 65535 else pg_cluster.port - 1
    url = f"postgresql://gcdial:hunter2secret@127.0.0.1:{closed_port}/nowhere"
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, connect_timeout_s=1.0)
    message = str(caught.value)
    assert time.monotonic() - started < 10
    assert f"cannot reach PostgreSQL at 127.0.0.1:{closed_port}/nowhere" in message
    assert "GCDIAL_DATABASE_URL" in message
    assert "hunter2secret" not in message
    assert describe_url(url) == f"127.0.0.1:{closed_port}/nowhere"


def test_outbox_rows_go_to_exactly_one_replica(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    replicas[0].add_webhook(
        WebhookEndpoint(id="w1", url="http://127.0.0.1:1/", secret="s", created_at=0)
    )
    for i in range(200):
        replicas[i % 2].append_event("call.placed", f"c{i}", "{}", now=1.0)
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def drain(i: int) -> None:
        barrier.wait()
        while batch := replicas[i].claim_deliveries(f"r{i}", now=2.0, lease_s=60, limit=7):
            claimed[i] += [d.id for d in batch]

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(drain, range(2)))
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == 200
    assert claimed[0]
    assert claimed[1]


def test_event_ids_become_visible_in_order_under_concurrent_appends(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    """A reader that resumes from the last id it saw (as SSE does) must miss nothing."""
    done = threading.Event()
    seen: list[int] = []

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()
            for event in replicas[0].events_after(last):
                seen.append(event.id)
                last = event.id
            if finished:
                return

    def write(i: int) -> None:
        for _ in range(25):
            replicas[i % 2].append_event("call.placed", None, "{}", now=1.0)

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    done.set()
    reader.join(timeout=30)
    assert seen == list(range(1, 201))


def test_every_replica_hears_every_event(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    first, second = replicas
    heard: list[int] = []
    woke = threading.Condition()

    def listener(event_id: int) -> None:
        with woke:
            heard.append(event_id)
            woke.notify_all()

    remove = first.add_event_listener(listener)
    ids = [second.append_event("call.placed", "c1", "{}", now=1.0).id for _ in range(3)]
    with woke:
        assert woke.wait_for(lambda: set(ids) <= set(heard), timeout=10), heard
    remove()
    later = second.append_event("call.ended", "c1", "{}", now=2.0).id
    time.sleep(0.5)
    assert later not in heard


def test_listener_wakes_after_postgres_restarts(
    pg_cluster: PgCluster, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    first, second = replicas
    heard: list[int] = []
    woke = threading.Condition()

    def listener(event_id: int) -> None:
        with woke:
            heard.append(event_id)
            woke.notify_all()

    first.add_event_listener(listener)
    pg_cluster.restart()
    event = second.append_event("call.placed", "c1", "{}", now=1.0)
    with woke:
        assert woke.wait_for(lambda: event.id in heard, timeout=20), heard


def test_postgres_restarting_mid_dial_never_dials_twice(
    pg_cluster: PgCluster, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    """Claim, then PostgreSQL goes away while the create-call is out, then the answer is stored:
    the store rides through the restart, and the client's retry on the other replica replays."""
    first, second = replicas
    claim = first.claim_idempotency("crm", "k", "fp", "call-1", now=1.0, ttl_s=DAY)
    assert claim.kind == "claimed"
    pg_cluster.stop_server()
    restarter = threading.Timer(1.0, pg_cluster.start_server)
    restarter.start()
    try:
        # The answer arrives while the server is down: stored once it is back.
        first.complete_idempotency("crm", "k", 202, '{"id": "call-1"}')
    finally:
        restarter.join()
    replay = second.claim_idempotency("crm", "k", "fp", "call-2", now=3.0, ttl_s=DAY)
    assert (replay.kind, replay.record.call_id, replay.record.status_code) == (
        "replay",
        "call-1",
        202,
    )


def test_postgres_down_for_longer_than_the_retry_window_is_a_clear_error(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    store = PostgresStore(pg_url, retry_s=1.0)
    try:
        pg_cluster.stop_server()
        try:
            with pytest.raises(StoreError, match=r"PostgreSQL at 127\.0\.0\.1:\d+/t_\w+ unavail"):
                store.claim_idempotency("crm", "k", "fp", "call-1", now=1.0, ttl_s=DAY)
        finally:
            pg_cluster.start_server()
        # Nothing was claimed: the client's retry claims the key and may dial.
        assert store.get_idempotency("crm", "k") is None
        assert store.claim_idempotency("crm", "k", "fp", "call-2", now=2.0, ttl_s=DAY).kind == (
            "claimed"
        )
    finally:
        store.close()


def test_a_dead_replicas_lease_is_taken_over(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    assert first.acquire_lease("campaign:x", "r1", now=0.0, ttl_s=10) == 1
    assert second.acquire_lease("campaign:x", "r2", now=5.0, ttl_s=10) is None
    assert first.acquire_lease("campaign:x", "r1", now=9.0, ttl_s=10) == 1
    assert second.acquire_lease("campaign:x", "r2", now=18.0, ttl_s=10) is None
    assert second.acquire_lease("campaign:x", "r2", now=19.5, ttl_s=10) == 2
    assert first.lease_holder("campaign:x", now=20.0) == "r2"
    # The old holder's heartbeat now fails: it must stop running the campaign.
    assert first.acquire_lease("campaign:x", "r1", now=20.0, ttl_s=10) is None


def test_the_audit_log_refuses_changes(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        store.append_audit(AuditEntry(at=1.0, api_key_id="k", action="dial", result="placed"))
    finally:
        store.close()
    with (
        psycopg.connect(pg_url) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="append-only"),
    ):
        conn.execute("UPDATE audit SET result = 'x'")
