"""Shared fixtures: the emulator under uvicorn on 127.0.0.1, a free port.

- ``emulator_server``: one server for the whole session (speed 50, admin API on).
- ``emulator``: that server, reset before the test (no calls, tokens, channels, faults or
  counters; speed back to 50). Use this one in most tests.
- ``make_emulator``: ``make_emulator(**config_fields)`` or ``make_emulator(EmulatorConfig(...))``
  starts a server with a custom config, stopped when the test ends.
"""

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gcdial.emulator import EmulatorConfig, EmulatorServer

TEST_SPEED = 50.0

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
