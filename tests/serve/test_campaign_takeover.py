"""A campaign whose replica dies is taken over by another, with nobody pressing a button.

Two services share one store: two ``SqliteStore`` handles on one file, or two ``PostgresStore``
replicas on one database. A campaign is started on A; A then stops without a word (its runs end
where they are, its lease is left to expire, it writes nothing more: a crash as far as the store
and the journal can tell). B's watcher finds the campaign ``running`` with no live lease, takes
the lease (a new epoch) and resumes it like a resume. The emulator's ledger is the judge: every
contact dialed once, none twice, and the campaign finished by B.

Also: a pause sent to the replica that does not run the campaign is obeyed by the one that does,
and a campaign paused (or finished) is never taken over.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.campaign_journals import CampaignJournals
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import Store

LEASE_S = 1.2  # real seconds: the heartbeat beats every 0.4 s
CONTACTS = 8
# Answered, talking 40-47 s of emulator time (under a second each at the tests' speed).
NUMBERS = [f"+141555501{40 + i:02d}" for i in range(CONTACTS)]


@dataclass
class Replica:
    """One service on the shared store."""

    name: str
    store: Store
    server: ServeServer
    app: Any

    @property
    def url(self) -> str:
        return self.server.base_url

    def crash(self) -> None:
        """Stop without a word: the runs end where they are (calls in flight are left to the
        journal), the lease is not given up and nothing more is written to the campaign."""

        def keep(*_: object, **__: object) -> None:
            return None

        self.store.release_lease = keep  # type: ignore[method-assign]
        self.store.update_campaign = keep  # type: ignore[method-assign]
        self.server.stop()


def _config(name: str) -> ServeConfig:
    return ServeConfig(
        sse_poll_s=0.2,
        resolve_timeout_s=3,
        campaign_resolve_timeout_s=3,
        campaign_lease_s=LEASE_S,
        instance_id=f"replica-{name}",
    )


def _start(emulator: EmulatorServer, store: Store, name: str) -> Replica:
    app = create_app(
        store,
        lambda: AsyncClient(
            base_url=emulator.base_url,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
        ),
        _config(name),
        single_process=False,
    )
    return Replica(name, store, ServeServer(app).start(), app)


@pytest.fixture(autouse=True)
def _settle_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """A contact whose create-call A may have sent just before it died is settled by B's ladder
    once the analytics settle time (2 s here, 120 s by default) has passed, never re-dialed."""
    monkeypatch.setenv("GCDIAL_ANALYTICS_SETTLE_S", "2")


@pytest.fixture(params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path: Path
) -> Iterator[tuple[Replica, Replica, str]]:
    """Replicas A and B on one store, and a ``campaigns`` key's secret."""
    stores: list[Store] = []
    if request.param == "sqlite":
        stores = [SqliteStore(tmp_path / "serve.sqlite3") for _ in range(2)]
    else:
        from gcdial.serve.pg_store import PostgresStore

        pg_url = request.getfixturevalue("pg_url")
        stores = [PostgresStore(pg_url, retry_s=5.0) for _ in range(2)]
    made = new_api_key(
        "ops", now=time.time(), scopes=("campaigns", "watch"), rate_per_minute=100_000
    )
    stores[0].add_api_key(made.record)
    replicas: list[Replica] = []
    try:
        replicas = [_start(emulator, store, name) for store, name in zip(stores, "ab", strict=True)]
        yield replicas[0], replicas[1], made.key
    finally:
        for replica in replicas:
            replica.server.stop()
        for store in stores:
            store.close()


def _create(url: str, key: str, numbers: list[str]) -> str:
    csv = "phone,external_id\n" + "".join(f"{n},k{i}\n" for i, n in enumerate(numbers))
    created = httpx.post(
        f"{url}/v1/campaigns",
        files={"file": ("spring.csv", csv.encode(), "text/csv")},
        data={"agents": "alice@example.com", "name": "Spring", "window": "00:00-23:59"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    cid: str = created.json()["id"]
    return cid


def _act(url: str, key: str, cid: str, action: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/campaigns/{cid}/{action}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def _campaign(url: str, key: str, cid: str) -> dict[str, Any]:
    got = httpx.get(
        f"{url}/v1/campaigns/{cid}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def _until(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _dialed(emulator: EmulatorServer) -> Counter[str]:
    """Create-calls per number in the emulator's ledger."""
    return Counter(str(call["phoneNumber"]) for call in emulator.calls_created())


@pytest.mark.timeout(120)
def test_a_dead_replicas_campaign_is_taken_over_and_finished_once(
    pair: tuple[Replica, Replica, str], emulator: EmulatorServer
) -> None:
    a, b, key = pair
    cid = _create(a.url, key, NUMBERS)
    started = _act(a.url, key, cid, "start")
    assert started.status_code == 200, started.text
    # A dials a few contacts, then dies mid-campaign.
    _until(lambda: len(emulator.calls_created()), lambda n: n >= 2, 30)
    a.crash()
    died = time.monotonic()
    assert a.store.lease_holder(f"campaign:{cid}", now=time.time()) == "replica-a"  # left held

    # B notices once the lease expired, takes it over and finishes the campaign.
    history = _until(lambda: _campaign(b.url, key, cid), lambda c: c["state"] == "finished", 60)
    assert history["state"] == "finished", history
    taken_at = b.store.get_campaign(cid)
    assert taken_at is not None
    assert any("taken over by replica-b" in line for line in taken_at.history), taken_at.history
    print(f"finished {time.monotonic() - died:.1f}s after A died")

    dialed = _dialed(emulator)
    assert max(dialed.values()) == 1, dialed  # 0 duplicate create-calls
    assert set(dialed) == set(NUMBERS), dialed  # every contact dialed
    counts = history["counts"]
    assert counts["contacts"].get("done") == CONTACTS, counts


@pytest.mark.timeout(90)
def test_a_pause_sent_to_the_other_replica_is_obeyed_and_a_paused_campaign_stays(
    pair: tuple[Replica, Replica, str], emulator: EmulatorServer
) -> None:
    a, b, key = pair
    cid = _create(a.url, key, NUMBERS)
    assert _act(a.url, key, cid, "start").status_code == 200
    _until(lambda: len(emulator.calls_created()), lambda n: n >= 1, 30)
    # B does not run it: the order goes through the store to A's next heartbeat.
    paused = _act(b.url, key, cid, "pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "pausing"
    again = _act(b.url, key, cid, "start")
    assert again.status_code == 409, again.text  # A still runs it (ending its call)
    state = _until(lambda: _campaign(b.url, key, cid)["state"], lambda s: s == "paused", 30)
    assert state == "paused"
    assert a.store.lease_holder(f"campaign:{cid}", now=time.time()) is None
    dialed = len(emulator.calls_created())
    assert dialed < CONTACTS
    # Paused, it is never taken over: several leases' lives later nothing more was dialed.
    time.sleep(3 * LEASE_S)
    assert _campaign(b.url, key, cid)["state"] == "paused"
    assert len(emulator.calls_created()) == dialed
    # Resumed on B, it finishes there.
    assert _act(b.url, key, cid, "resume").status_code == 200
    done = _until(lambda: _campaign(a.url, key, cid), lambda c: c["state"] == "finished", 60)
    assert done["state"] == "finished", done
    counted = _dialed(emulator)
    assert max(counted.values()) == 1, counted
    assert set(counted) == set(NUMBERS), counted


@pytest.mark.timeout(90)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_frozen_replica_whose_lease_was_taken_dials_nothing_more(
    backend: str,
    emulator: EmulatorServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend == "sqlite":
        stores: list[Store] = [SqliteStore(tmp_path / "serve.sqlite3") for _ in range(2)]
    else:
        from gcdial.serve.pg_store import PostgresStore

        pg_url = request.getfixturevalue("pg_url")
        stores = [PostgresStore(pg_url, retry_s=5.0) for _ in range(2)]
    mine, other = stores
    made = new_api_key("ops", now=time.time(), scopes=("campaigns",), rate_per_minute=100_000)
    mine.add_api_key(made.record)
    # A's lease lives a minute: its heartbeat (every 20 s) would notice the loss too late, so
    # what stops it is the fence in its next attempt's own transaction.
    app = create_app(
        mine,
        lambda: AsyncClient(
            base_url=emulator.base_url,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
        ),
        replace(_config("a"), campaign_lease_s=60.0),
        single_process=False,
    )
    a = Replica("a", mine, ServeServer(app).start(), app)
    try:
        cid = _create(a.url, made.key, NUMBERS)
        assert _act(a.url, made.key, cid, "start").status_code == 200
        _until(lambda: len(emulator.calls_created()), lambda n: n >= 1, 30)
        # A is "frozen" past its lease as far as B can tell: B takes it (the next epoch). An
        # intent A committed under its lease is in the journal by now (the takeover waited).
        epoch = other.acquire_lease(f"campaign:{cid}", "replica-b", now=time.time() + 61, ttl_s=600)
        assert epoch == 2
        with CampaignJournals.for_store(other) as journals:
            journal = journals.read(cid)
            assert journal is not None
            with journal:
                attempts = len(journal.attempts.all())
        stopped = _until(lambda: app.state.campaigns.runs(cid), lambda r: not r, 30)
        assert stopped is False  # A's run ended at its next attempt, not at a heartbeat
        assert any("fenced" in r.getMessage() for r in caplog.records), caplog.text
        time.sleep(1.0)
        with CampaignJournals.for_store(other) as journals:
            journal = journals.read(cid)
            assert journal is not None
            with journal:
                assert len(journal.attempts.all()) == attempts  # the fenced attempt wrote nothing
        assert len(emulator.calls_created()) <= attempts < CONTACTS  # and dialed nothing
        kept = other.get_campaign(cid)
        assert kept is not None
        assert kept.state == "running"  # A wrote nothing: the campaign is B's to run
        assert other.lease_holder(f"campaign:{cid}", now=time.time()) == "replica-b"
    finally:
        a.server.stop()
        for store in stores:
            store.close()


@pytest.mark.timeout(90)
def test_a_replica_shutting_down_leaves_its_campaign_to_another_which_a_stop_reaches(
    pair: tuple[Replica, Replica, str], emulator: EmulatorServer
) -> None:
    a, b, key = pair
    cid = _create(a.url, key, NUMBERS)
    assert _act(a.url, key, cid, "start").status_code == 200
    _until(lambda: len(emulator.calls_created()), lambda n: n >= 1, 30)
    a.server.stop()  # a deploy: A gives its lease up and leaves the campaign running
    kept = b.store.get_campaign(cid)
    assert kept is not None
    assert kept.state == "running"  # not paused: left for another replica
    holder = _until(
        lambda: b.store.lease_holder(f"campaign:{cid}", now=time.time()),
        lambda h: h == "replica-b",
        10 * LEASE_S,
    )
    assert holder == "replica-b"  # taken at B's next beat, not after a lease's life
    _until(lambda: len(emulator.calls_created()), lambda n: n >= 3, 30)
    stopped = _act(b.url, key, cid, "stop")
    assert stopped.status_code == 200, stopped.text
    state = _until(lambda: _campaign(b.url, key, cid)["state"], lambda s: s == "stopped", 30)
    assert state == "stopped"
    dialed = _dialed(emulator)
    assert max(dialed.values()) == 1, dialed
    assert len(dialed) < CONTACTS  # stopped before the end
    time.sleep(3 * LEASE_S)  # stopped is final: nobody takes it over
    assert len(emulator.calls_created()) == sum(dialed.values())


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("mode", "rang"), [("hang_without_create", False), ("hang_after_create", True)]
)
def test_a_dial_a_dead_replica_left_unanswered_is_settled_by_the_new_holders_witness(
    pair: tuple[Replica, Replica, str], emulator: EmulatorServer, mode: str, rang: bool
) -> None:
    """A dies while its create-call waits for Genesys' answer (the emulator holds it; it made
    the call or not). B's ladder, its own channel the witness, settles that attempt: placed and
    followed, or not placed and dialed again; never left unknown, never dialed twice, and the
    agent never given a second call meanwhile."""
    a, b, key = pair
    fault = emulator.add_fault(route="create_call", mode=mode, seconds=60, count=1)
    cid = _create(a.url, key, NUMBERS[:3])
    assert _act(a.url, key, cid, "start").status_code == 200
    assert _until(lambda: emulator.fired(fault), lambda n: n >= 1, 30) == 1
    a.crash()

    done = _until(lambda: _campaign(b.url, key, cid), lambda c: c["state"] == "finished", 60)
    assert done["state"] == "finished", done
    counts = done["counts"]
    assert counts["contacts"].get("done") == 3, counts
    assert not counts["contacts"].get("unknown"), counts
    dialed = _dialed(emulator)
    # Placed: the held call is the contact's one call. Not placed: dialed again by B, once.
    assert sorted(dialed.values()) == [1, 1, 1], dialed
    assert set(dialed) == set(NUMBERS[:3]), dialed
    assert emulator.overlaps()["total"] == 0, emulator.overlaps()
    attempts = httpx.get(
        f"{b.url}/v1/campaigns/{cid}/attempts",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()["attempts"]
    verdicts = [a.get("detail") or "" for a in attempts]
    if not rang:
        assert any("proven not placed after a restart" in v for v in verdicts), attempts
    assert len(attempts) == (3 if rang else 4), attempts
