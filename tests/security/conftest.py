"""One emulator for the security checks, whose OAuth client has a distinctive secret."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcdial.emulator import EmulatorConfig, EmulatorServer

from .support import CLIENT_ID, SECRET, write_fixture


@pytest.fixture(scope="module")
def sec_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    fixture = write_fixture(tmp_path_factory.mktemp("fixture") / "org.json")
    config = EmulatorConfig(speed=50.0, admin=True, fixture=fixture)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def user_env(home: Path) -> dict[str, str]:
    """A clean user environment: own HOME and config dir, no colour, nothing of the developer's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GCDIAL_CALLING_WINDOW": "00:00-24:00",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
    }


@pytest.fixture
def creds_env(user_env: dict[str, str], sec_emulator: EmulatorServer) -> dict[str, str]:
    """``user_env`` with the distinctive credentials, pointed at the emulator."""
    assert sec_emulator.client_id == CLIENT_ID
    return {
        **user_env,
        "GENESYSCLOUD_OAUTHCLIENT_ID": CLIENT_ID,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET,
        "GCDIAL_BASE_URL": sec_emulator.base_url,
    }
