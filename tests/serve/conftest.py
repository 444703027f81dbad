"""Fixtures of the serve tests.

``store`` yields each store implementation in turn: ``STORE_FACTORIES`` maps a backend name to a
context-manager factory taking pytest's ``request`` and ``tmp_path``. The PostgreSQL backend adds
itself there, so every test in ``test_store.py`` runs against both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import Store

StoreFactory = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[Store]]


@contextmanager
def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = SqliteStore(tmp_path / "serve.sqlite3")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = PostgresStore(request.getfixturevalue("pg_url"))
    try:
        yield store
    finally:
        store.close()


STORE_FACTORIES: dict[str, StoreFactory] = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store implementation, fresh and empty."""
    with STORE_FACTORIES[request.param](request, tmp_path) as opened:
        yield opened


@dataclass
class Running:
    """``gcdial serve`` under uvicorn against the emulator, with an admin key and a CRM key."""

    base_url: str
    store: SqliteStore
    emulator: EmulatorServer
    admin_key: str
    key: str
    http: httpx.Client
    make_key: Callable[..., str]
    server: ServeServer

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        """Bearer auth with ``key`` (the CRM key by default) and extra headers."""
        return {"Authorization": f"Bearer {key or self.key}", **extra}

    def dial(self, body: dict[str, Any], idem: str, key: str | None = None) -> httpx.Response:
        """POST /v1/calls with an Idempotency-Key."""
        return self.http.post(
            "/v1/calls", json=body, headers=self.headers(key, **{"Idempotency-Key": idem})
        )

    def set_presence(self, user_id: str, presence: str) -> None:
        """Change an agent's presence in Genesys (the emulator), as the agent would."""
        token = httpx.post(
            self.emulator.base_url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(self.emulator.client_id, self.emulator.client_secret),
        ).json()["access_token"]
        changed = httpx.patch(
            f"{self.emulator.base_url}/api/v2/users/{user_id}/presences/purecloud",
            json={"presenceDefinition": {"systemPresence": presence}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert changed.status_code == 200, changed.text

    def wait_call(
        self, call_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 20
    ) -> dict[str, Any]:
        """Poll GET /v1/calls/{id} until ``done(call)``."""
        deadline = time.monotonic() + timeout_s
        while True:
            call: dict[str, Any] = self.http.get(
                f"/v1/calls/{call_id}", headers=self.headers()
            ).json()
            if done(call) or time.monotonic() > deadline:
                return call
            time.sleep(0.05)


def start_service(
    emulator: EmulatorServer, path: Path, config: ServeConfig | None = None
) -> tuple[ServeServer, SqliteStore]:
    """The app on a SQLite file at ``path`` against ``emulator``, served on 127.0.0.1:0."""
    store = SqliteStore(path)
    app = create_app(
        store,
        lambda: AsyncClient(
            base_url=emulator.base_url,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
        ),
        config
        or ServeConfig(
            webhook_schedule=(0.2, 0.4, 0.8),
            sse_poll_s=0.2,
            campaigns_dir=str(path.parent / "campaigns"),
            allow_insecure_webhooks=True,
        ),
        single_process=True,
    )
    return ServeServer(app).start(), store


@pytest.fixture
def serve_config() -> ServeConfig:
    """The service config of ``running`` (override in a test module to change it); its
    webhook receivers listen on 127.0.0.1, hence ``allow_insecure_webhooks``."""
    return ServeConfig(
        webhook_schedule=(0.2, 0.4, 0.8),
        sse_poll_s=0.2,
        webhook_poll_s=0.1,
        resolve_timeout_s=3,
        allow_insecure_webhooks=True,
    )


@pytest.fixture
def running(
    emulator: EmulatorServer, tmp_path: Path, serve_config: ServeConfig
) -> Iterator[Running]:
    """The service, fresh store, against the reset session emulator."""
    config = replace(serve_config, campaigns_dir=str(tmp_path / "campaigns"))
    server, store = start_service(emulator, tmp_path / "serve.sqlite3", config)

    def make_key(name: str, **fields: Any) -> str:
        made = new_api_key(name, now=time.time(), **fields)
        store.add_api_key(made.record)
        return made.key

    admin = make_key("admin", scopes=("admin",), rate_per_minute=100_000)
    key = make_key("crm", scopes=("dial", "watch"), rate_per_minute=100_000)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        try:
            yield Running(server.base_url, store, emulator, admin, key, http, make_key, server)
        finally:
            server.stop()
            store.close()
