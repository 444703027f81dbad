"""The fault suite of the resolution ladder: over a thousand ambiguous creates, zero wrong verdicts.

Every create-call of these runs is made ambiguous by one of the emulator's faults, about half of
them after the call was created (a cut-off answer, a hang past the client's timeout, a 500, 503
or 504) and half without creating it (the same answers, nothing placed). The emulator's own list
of created calls is the truth: a "placed" must name the call that exists, a "not placed" must
have no call. The share resolved automatically is printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import gcdial.emulator
from gcdial import AsyncClient, CallParams, Verdict
from gcdial.dialing import Dial
from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.monitor import CallMonitor

from .support import acted, settings_for, sim_time, wrong_verdict

GCDIAL = Path(sys.executable).parent / "gcdial"
AGENTS = 100
SPEED = 200.0
LIBRARY_ATTEMPTS = 1000
NO_ANALYTICS_ATTEMPTS = 200
CLI_ATTEMPTS = 12
CLIENT_TIMEOUT_S = 0.5
HANG_S = 2.0

# Each entry fires on a create that the ones before it let through: probabilities 1/8, 1/7, ...,
# 1/1 give each kind an eighth of the creates, and every create gets exactly one.
KINDS: list[dict[str, Any]] = [
    {"mode": "drop_after_create"},
    {"mode": "hang_after_create", "seconds": HANG_S},
    {"mode": "status_after_create", "status": 500},
    {"mode": "status_after_create", "status": 504},
    {"mode": "drop_without_create"},
    {"mode": "hang_without_create", "seconds": HANG_S},
    {"mode": "status_without_create", "status": 503},
    {"mode": "status_without_create", "status": 502},
]
_serial = itertools.count(1)


def _number() -> str:
    serial = next(_serial)
    # A fresh valid number per attempt; the last two digits 00 make the emulator's customer answer.
    return f"+1415{200 + serial // 100 % 800:03d}{serial % 100:02d}00"


def _fixture(path: Path) -> Path:
    default = Path(gcdial.emulator.__file__).parent / "default_fixture.json"
    data = json.loads(default.read_text())
    data["generate_agents"] = {"count": AGENTS, "email_domain": "suite.example.com"}
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def suite_emulator(tmp_path: Path) -> Any:
    config = EmulatorConfig(
        speed=SPEED,
        admin=True,
        fixture=_fixture(tmp_path / "fixture.json"),
        rate_limit_per_minute=1_000_000,
        analytics_ingestion_delay_s=5,
        seed=10,
    )
    with EmulatorServer(config) as emulator:
        yield emulator


def _arm(emulator: EmulatorServer) -> None:
    emulator.clear_faults()
    for index, kind in enumerate(KINDS):
        probability = 1 / (len(KINDS) - index)
        emulator.add_fault(route="create_call", probability=probability, **kind)


def _agents(emulator: EmulatorServer) -> list[str]:
    return [uid for uid, user in emulator.state.users.items() if "suite.example" in user.email]


async def _dial_many(
    emulator: EmulatorServer, attempts: int, *, analytics: bool, resolve_timeout_s: float
) -> list[Dial]:
    clock, sleep = sim_time(emulator)
    agents = _agents(emulator)
    settings = settings_for(
        emulator, analytics=analytics, analytics_settle_s=30.0, timeout_s=CLIENT_TIMEOUT_S
    )
    limit = asyncio.Semaphore(80)  # under the HTTP pool of 100: no pool timeouts
    async with AsyncClient(settings) as client, CallMonitor(client.transport) as monitor:
        await monitor.watch_agents(agents)

        async def one(index: int) -> Dial:
            async with limit:
                return await client.dial(
                    agents[index % len(agents)],
                    CallParams(to=_number()),
                    check_agent=False,
                    monitor=monitor,
                    resolve_timeout_s=resolve_timeout_s,
                    clock=clock,
                    sleep=sleep,
                )

        return await asyncio.gather(*(one(i) for i in range(attempts)))


def _report(name: str, dials: list[Dial], truth: dict[str, str]) -> Counter[str]:
    verdicts = Counter(d.resolution.verdict.value for d in dials)
    acted_count = sum(1 for d in dials if d.attempt_id in truth)
    resolved = verdicts["placed"] + verdicts["not_placed"]
    print(
        f"\n{name}: {len(dials)} ambiguous creates ({acted_count} acted), verdicts "
        f"{dict(verdicts)}, resolved automatically {resolved / len(dials):.1%}"
    )
    return verdicts


@pytest.mark.timeout(180)  # a thousand dials: about 40 s alone, 70 s on a loaded machine
def test_library_resolves_a_thousand_ambiguous_creates_without_a_wrong_verdict(
    suite_emulator: EmulatorServer,
) -> None:
    _arm(suite_emulator)
    dials = asyncio.run(
        _dial_many(suite_emulator, LIBRARY_ATTEMPTS, analytics=True, resolve_timeout_s=200)
    )
    truth = acted(suite_emulator)
    assert all(d.ambiguity is not None for d in dials), "every create was made ambiguous"
    wrong = [why for d in dials if (why := wrong_verdict(d, truth))]
    assert wrong == []
    verdicts = _report("library, with analytics", dials, truth)
    acted_share = sum(1 for d in dials if d.attempt_id in truth) / len(dials)
    assert 0.35 < acted_share < 0.65
    assert (verdicts["placed"] + verdicts["not_placed"]) / len(dials) >= 0.99
    # Every created call was found, and nothing was ever sent twice.
    assert len(suite_emulator.calls_created()) == len(truth)

    _arm(suite_emulator)
    blind = asyncio.run(
        _dial_many(suite_emulator, NO_ANALYTICS_ATTEMPTS, analytics=False, resolve_timeout_s=60)
    )
    truth = acted(suite_emulator)
    wrong = [why for d in blind if (why := wrong_verdict(d, truth))]
    assert wrong == []
    _report("library, without analytics", blind, truth)
    for dial in blind:
        if dial.attempt_id in truth:
            assert dial.resolution.verdict is Verdict.PLACED, dial.resolution.evidence
            assert dial.resolution.evidence[-1].source == "live"
        else:
            assert dial.resolution.verdict is Verdict.UNKNOWN


def _cli_call(emulator: EmulatorServer, agent: str, home: Path) -> tuple[int, dict[str, Any]]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GCDIAL_CALLING_WINDOW": "00:00-24:00",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "NO_COLOR": "1",
        "GCDIAL_BASE_URL": emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
        "GCDIAL_TIMEOUT_S": str(CLIENT_TIMEOUT_S),
        # The CLI times the settle on the real clock: 1 s is 200 simulated seconds here.
        "GCDIAL_ANALYTICS_SETTLE_S": "1",
    }
    args = [str(GCDIAL), "call", _number(), "--agent", agent, "--no-check", "--json"]
    proc = subprocess.run(
        [*args, "--resolve-timeout", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_cli_resolves_ambiguous_creates_without_a_wrong_verdict(
    suite_emulator: EmulatorServer, tmp_path: Path
) -> None:
    _arm(suite_emulator)
    agents = _agents(suite_emulator)
    with ThreadPoolExecutor(4) as pool:
        runs = list(
            pool.map(lambda i: _cli_call(suite_emulator, agents[i], tmp_path), range(CLI_ATTEMPTS))
        )
    truth = acted(suite_emulator)
    codes = {"placed": 0, "not_placed": 40, "unknown": 5}
    for code, data in runs:
        verdict = data["resolution"]["verdict"]
        assert code == codes[verdict], data
        created = truth.get(data["attemptId"])
        if verdict == "placed":
            assert created == data["conversationId"], data
        if verdict == "not_placed":
            assert created is None, data
    resolved = sum(1 for _, d in runs if d["resolution"]["verdict"] != "unknown")
    print(f"\nCLI: {len(runs)} ambiguous creates, resolved automatically {resolved}/{len(runs)}")
    assert resolved == len(runs)
