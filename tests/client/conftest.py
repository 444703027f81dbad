"""Fixtures for the client tests: clients wired to the emulator, with fake (instant) time."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gcdial.client import Client
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer

from .support import emu_settings
from .timefake import FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


MakeClient = Callable[..., Client]


@pytest.fixture
def make_client(emulator: EmulatorServer, fake_time: FakeTime) -> Iterator[MakeClient]:
    """``make_client(settings=None, **client_kwargs)``: a Client on the emulator, closed after."""
    made: list[Client] = []

    def make(settings: Settings | None = None, **kwargs: Any) -> Client:
        client = Client(
            settings if settings is not None else emu_settings(emulator),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            rng=random.Random(7),
            **kwargs,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
