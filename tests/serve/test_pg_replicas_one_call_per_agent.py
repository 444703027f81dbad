"""Two in-process replicas on one PostgreSQL, over HTTP: dials for the same agent sent to both at
the same moment; in every round exactly one goes (202), the other is 409 ``agent_busy`` naming
it, and the emulator never sees two live calls for the agent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from gcdial.emulator import EmulatorServer
from gcdial.serve.config import ServeConfig

from .replicas import running_replicas

ALICE = "alice@example.com"
ROUNDS = 6


@pytest.fixture
def replicas(emulator: EmulatorServer, pg_url: str) -> Iterator[tuple[list[str], str]]:
    with running_replicas(emulator, pg_url, count=2, config=ServeConfig(sse_poll_s=0.2)) as running:
        yield running


def test_two_replicas_dialing_one_agent_at_once_place_exactly_one_call(
    replicas: tuple[list[str], str], emulator: EmulatorServer
) -> None:
    urls, key = replicas
    for round_ in range(ROUNDS):
        barrier = threading.Barrier(2)
        answers: list[httpx.Response] = []

        def dial(url: str, n: int, round_: int = round_, barrier: threading.Barrier = barrier,
                 answers: list[httpx.Response] = answers) -> None:  # fmt: skip
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"r{round_}-{n}"}
            barrier.wait()
            body = {"agent": ALICE, "to": f"+141555501{10 + n}"}
            answers.append(httpx.post(f"{url}/v1/calls", json=body, headers=headers, timeout=30))

        threads = [threading.Thread(target=dial, args=(url, n)) for n, url in enumerate(urls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = sorted(a.status_code for a in answers)
        assert codes == [202, 409], [a.text for a in answers]
        went = next(a for a in answers if a.status_code == 202).json()
        refused = next(a for a in answers if a.status_code == 409).json()
        assert refused["error"]["type"] == "agent_busy"
        assert refused["liveCall"]["id"] == went["id"]
        _wait_ended(urls[0], key, went["id"])
    assert len(emulator.calls_created()) == ROUNDS
    assert emulator.overlaps()["total"] == 0


def _wait_ended(url: str, key: str, call_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        call = httpx.get(
            f"{url}/v1/calls/{call_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10
        ).json()
        if call.get("outcome") is not None or call["status"] in ("not_placed", "refused"):
            return
        time.sleep(0.05)
    raise AssertionError(f"call {call_id} did not end")
