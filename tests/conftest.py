"""Shared fixtures: the emulator under uvicorn on 127.0.0.1, a free port.

- ``emulator_server``: one server for the whole session (speed 50, admin API on).
- ``emulator``: that server, reset before the test (no calls, tokens, channels, faults or
  counters; speed back to 50). Use this one in most tests.
- ``make_emulator``: ``make_emulator(**config_fields)`` or ``make_emulator(EmulatorConfig(...))``
  starts a server with a custom config, stopped when the test ends.
- ``pg_cluster``: a throwaway PostgreSQL cluster for the session (tests/pgcluster.py).
- ``pg_url``: a new empty database on it for one test.
"""

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from gcdial.emulator import EmulatorConfig, EmulatorServer
from pgcluster import PgCluster, PgClusterError, skip_allowed

TEST_SPEED = 50.0

# The suite dials at whatever hour the real clock shows; the service's calling window (single
# calls) would refuse its numbers at night. Tests of the window set it themselves
# (tests/serve/test_call_rules.py); every other service, in-process or a CLI child, allows any
# hour. The docs' walkthroughs run in a fresh environment and say so on the page.
os.environ.setdefault("GCDIAL_SERVE_CALLING_WINDOW", "00:00-24:00")
os.environ.setdefault("GCDIAL_CALLING_WINDOW", "00:00-24:00")  # gcdial call, likewise

# A shell without job control starts background jobs with SIGINT ignored, and an ignored signal
# is inherited across exec: the CLI processes that tests interrupt with Ctrl-C would never see
# it. Restoring Python's handler here means children start with the default disposition again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One emulator for the whole session; prefer ``emulator``, which resets it."""
    with EmulatorServer(EmulatorConfig(speed=TEST_SPEED, admin=True)) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The session emulator, reset to a clean state at speed 50."""
    emulator_server.reset()
    emulator_server.set_speed(TEST_SPEED)
    return emulator_server


MakeEmulator = Callable[..., EmulatorServer]


@pytest.fixture
def make_emulator() -> Iterator[MakeEmulator]:
    """Factory for emulators with a custom config (speed 50 and admin on unless overridden)."""
    started: list[EmulatorServer] = []

    def make(config: EmulatorConfig | None = None, **fields: Any) -> EmulatorServer:
        if config is None:
            config = EmulatorConfig(**{"speed": TEST_SPEED, "admin": True, **fields})
        server = EmulatorServer(config).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the session, always stopped at the end.

    When it cannot start the tests that use it fail with the cause; a developer may set
    GCDIAL_PG_ALLOW_SKIP=1 to skip them instead, which CI (CI=true) never does.
    """
    cluster = PgCluster()
    try:
        cluster.start()
    except PgClusterError as exc:
        if skip_allowed():
            pytest.skip(f"PostgreSQL unavailable (GCDIAL_PG_ALLOW_SKIP=1): {exc}")
        pytest.fail(f"throwaway PostgreSQL did not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a new, empty database on the session cluster, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = pg_cluster.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_cluster.url(name)
    if not pg_cluster.is_running():
        pg_cluster.start_server()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
