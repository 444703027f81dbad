"""Two in-process replicas on one PostgreSQL, over HTTP: a retry on the other replica replays, an
SSE client of one replica hears a dial made through the other at once (LISTEN/NOTIFY, not the
slow poll), and a store outage is a 503 in the API's error shape, after which the same key
replays."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gcdial.emulator import EmulatorServer
from gcdial.serve.config import ServeConfig
from gcdial.serve.pg_store import PostgresStore
from pgcluster import PgCluster

from .replicas import running_replicas

ALICE = "alice@example.com"
ANSWERS = "+14155550100"
# Far longer than the test waits: a stream that wakes in time was woken by NOTIFY.
SLOW_POLL_S = 60.0


@dataclass
class Pair:
    """Two replicas and the CRM's key."""

    urls: tuple[str, str]
    key: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}


@pytest.fixture
def pair(emulator: EmulatorServer, pg_url: str) -> Iterator[Pair]:
    config = ServeConfig(sse_poll_s=SLOW_POLL_S, sse_ping_s=SLOW_POLL_S, webhook_poll_s=SLOW_POLL_S)
    with running_replicas(emulator, pg_url, count=2, config=config) as (urls, key):
        yield Pair((urls[0], urls[1]), key)


def test_a_retry_on_the_other_replica_replays(pair: Pair, emulator: EmulatorServer) -> None:
    body = {"agent": ALICE, "to": ANSWERS}
    headers = pair.headers(**{"Idempotency-Key": "crm-1"})
    first = httpx.post(f"{pair.urls[0]}/v1/calls", json=body, headers=headers, timeout=30)
    again = httpx.post(f"{pair.urls[1]}/v1/calls", json=body, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(emulator.calls_created()) == 1


def test_sse_on_one_replica_hears_a_dial_on_the_other_at_once(pair: Pair) -> None:
    heard: list[dict[str, str]] = []
    listening = threading.Event()

    def listen() -> None:
        with contextlib.suppress(httpx.HTTPError), httpx.Client(timeout=30) as http:
            url = f"{pair.urls[1]}/v1/events"
            with http.stream("GET", url, headers=pair.headers()) as stream:
                listening.set()
                event: dict[str, str] = {}
                for line in stream.iter_lines():
                    if not line:
                        if event.get("event") == "call.placed":
                            heard.append(event)
                            return
                        event = {}
                        continue
                    field, _, value = line.partition(":")
                    event[field] = value.strip()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert listening.wait(10)
    time.sleep(0.3)  # the stream has read the current last event id
    started = time.monotonic()
    answer = httpx.post(
        f"{pair.urls[0]}/v1/calls",
        json={"agent": ALICE, "to": ANSWERS},
        headers=pair.headers(**{"Idempotency-Key": "crm-sse"}),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    listener.join(timeout=10)
    assert heard, "the other replica's stream never heard the dial"
    assert time.monotonic() - started < 10 < SLOW_POLL_S
    assert json.loads(heard[0]["data"])["call"]["id"] == answer.json()["id"]


def test_a_store_outage_is_a_503_and_the_same_key_then_dials_once(
    pair: Pair, pg_cluster: PgCluster, emulator: EmulatorServer
) -> None:
    body = {"agent": ALICE, "to": ANSWERS}
    headers = pair.headers(**{"Idempotency-Key": "crm-outage"})
    pg_cluster.stop_server()
    try:
        down = httpx.post(f"{pair.urls[0]}/v1/calls", json=body, headers=headers, timeout=30)
    finally:
        pg_cluster.start_server()
    assert down.status_code == 503
    assert down.json()["error"]["type"] == "store_unavailable"
    assert "retry-after" in down.headers
    assert emulator.calls_created() == []
    up = httpx.post(f"{pair.urls[1]}/v1/calls", json=body, headers=headers, timeout=30)
    assert up.status_code == 202, up.text
    assert up.json()["status"] == "placed"
    assert len(emulator.calls_created()) == 1


def test_postgres_restarting_while_the_create_call_is_out_places_one_call(
    pair: Pair, pg_cluster: PgCluster, emulator: EmulatorServer
) -> None:
    """The key is claimed, the create-call is slow, PostgreSQL restarts meanwhile: the answer is
    stored once the database is back, and a retry on the other replica replays it."""
    emulator.add_fault(route="create_call", mode="latency", seconds=1.5, count=1)
    body = {"agent": ALICE, "to": ANSWERS}
    headers = pair.headers(**{"Idempotency-Key": "crm-restart"})
    answers: list[httpx.Response] = []
    dial = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{pair.urls[0]}/v1/calls", json=body, headers=headers, timeout=30)
        )
    )
    dial.start()
    deadline = time.monotonic() + 10
    while not any(
        route.startswith("POST") and "calls" in route
        for route in emulator.request_counts()["byRoute"]
    ):
        assert time.monotonic() < deadline, "the create-call never reached the emulator"
        time.sleep(0.02)
    pg_cluster.restart()
    dial.join(timeout=30)
    assert answers, "the dial never answered"
    assert answers[0].status_code == 202, answers[0].text
    assert answers[0].json()["status"] == "placed"
    again = httpx.post(f"{pair.urls[1]}/v1/calls", json=body, headers=headers, timeout=30)
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == answers[0].json()["id"]
    assert len(emulator.calls_created()) == 1


def test_a_dial_stalled_past_its_takeover_is_never_sent(
    pair: Pair, pg_url: str, emulator: EmulatorServer
) -> None:
    """A replica whose dial stalls (here on the agent check) after its call's row was written,
    while another replica takes the call over (its ladder lease, as recovery takes it once the
    claim is stale), checks just before the POST and does not send it."""
    emulator.add_fault(route="users", mode="latency", seconds=1.5)
    answers: list[httpx.Response] = []
    dial = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                f"{pair.urls[0]}/v1/calls",
                json={"agent": ALICE, "to": ANSWERS},
                headers=pair.headers(**{"Idempotency-Key": "crm-stalled"}),
                timeout=60,
            )
        )
    )
    dial.start()
    store = PostgresStore(pg_url)
    try:
        deadline = time.monotonic() + 30
        placing = store.calls_with_status("placing")
        while not placing and time.monotonic() < deadline:
            time.sleep(0.02)
            placing = store.calls_with_status("placing")
        assert placing, "the call's row never appeared"
        taken = store.acquire_lease(
            f"ladder:{placing[0].id}", "other-replica:ladder", now=time.time(), ttl_s=60
        )
        assert taken
        dial.join(timeout=45)
    finally:
        store.close()
        emulator.clear_faults()
    assert emulator.calls_created() == []
    assert answers, "the dial never answered"
    call = answers[0].json()
    assert answers[0].status_code == 202, answers[0].text
    assert call["status"] == "not_placed", call
    assert "another replica took it over" in call["detail"]


def test_a_dial_whose_agent_went_to_another_call_while_it_stalled_is_never_sent(
    emulator: EmulatorServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica stalls after claiming the agent's row and before its POST (a frozen process);
    the row lapses and another replica's dial takes the agent. Just before the POST the stalled
    one finds its agent's row gone to that call and does not send: one call per agent."""
    from gcdial.client import AsyncClient
    from gcdial.serve.app import create_app
    from gcdial.serve.keys import new_api_key
    from gcdial.serve.server import ServeServer

    store = PostgresStore(pg_url)
    other = PostgresStore(pg_url)
    made = new_api_key("crm", now=time.time(), scopes=("dial", "watch"), rate_per_minute=100_000)
    store.add_api_key(made.record)
    app = create_app(
        store,
        lambda: AsyncClient(
            base_url=emulator.base_url,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
        ),
        ServeConfig(instance_id="stalled"),
        single_process=False,
    )
    service = app.state.service.core
    notify = service.hub.notify

    async def stalled_notify(event_id: int) -> None:
        # The row is this dial's now; meanwhile it lapses and another replica's dial takes it.
        for call in other.calls_with_status("placing"):
            agent = call.agent_id or call.agent
            other.release_agent(call.id)
            assert (
                other.claim_agent(agent, "call_other", owner="b", now=time.time(), ttl_s=60) is None
            )
        await notify(event_id)

    monkeypatch.setattr(service.hub, "notify", stalled_notify)
    server = ServeServer(app).start()
    try:
        answer = httpx.post(
            f"{server.base_url}/v1/calls",
            json={"agent": ALICE, "to": ANSWERS},
            headers={"Authorization": f"Bearer {made.key}", "Idempotency-Key": "crm-frozen"},
            timeout=60,
        )
    finally:
        server.stop()
        store.close()
        other.close()
    assert emulator.calls_created() == []
    call = answer.json()
    assert answer.status_code == 202, answer.text
    assert call["status"] == "not_placed", call
    assert "gave its agent another call" in call["detail"]
